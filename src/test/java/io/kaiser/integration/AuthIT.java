package io.kaiser.integration;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.WebSocket;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletionException;

import io.kaiser.support.Http;
import io.kaiser.support.KaiserServer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

/** Bearer tokens on REST and WebSocket: 401 without, 403 for a viewer that writes, operator allowed. */
class AuthIT {
    static final String OPERATOR = "op-token-0123456789abcdef";
    static KaiserServer server;
    static final HttpClient CLIENT = HttpClient.newHttpClient();

    @BeforeAll
    static void start() {
        server = new KaiserServer("auth", Map.of("kaiser.auth.enabled", "true", "kaiser.mode", "production",
                "kaiser.auth.bootstrap-tokens", "admin:operator:" + OPERATOR)).start();
        await().atMost(Duration.ofSeconds(20)).until(() -> Http.get(server.baseUrl() + "/health").status() == 200);
    }

    @AfterAll
    static void stop() {
        server.stop();
    }

    static HttpResponse<String> call(String method, String path, String token, String body) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(server.baseUrl() + path))
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body))
                .header("Content-Type", "application/json");
        if (token != null) {
            b.header("Authorization", "Bearer " + token);
        }
        return CLIENT.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void should_refuse_requests_without_a_valid_token_with_401_and_a_problem_body() throws Exception {
        HttpResponse<String> none = call("GET", "/esp/devices", null, null);
        assertThat(none.statusCode()).isEqualTo(401);
        assertThat(none.headers().firstValue("Content-Type")).hasValueSatisfying(v -> assertThat(v).startsWith("application/problem+json"));
        assertThat(none.headers().firstValue("WWW-Authenticate")).isPresent();
        assertThat(none.body()).contains("\"status\":401");
        assertThat(call("GET", "/esp/devices", "not-a-real-token", null).statusCode()).isEqualTo(401);
        // probes need no token
        assertThat(call("GET", "/health", null, null).statusCode()).isEqualTo(200);
    }

    @Test
    void should_let_a_viewer_read_and_refuse_it_commands_with_403_while_an_operator_commands() throws Exception {
        HttpResponse<String> created = call("POST", "/auth/tokens", OPERATOR, "{\"name\":\"screen\",\"role\":\"viewer\"}");
        assertThat(created.statusCode()).as(created.body()).isEqualTo(201);
        String viewer = created.body().replaceAll(".*\"token\":\"([^\"]+)\".*", "$1");
        assertThat(call("GET", "/esp/devices", viewer, null).statusCode()).isEqualTo(200);
        HttpResponse<String> forbidden = call("POST", "/actuators/ESP_X/5/command", viewer, "{\"command\":\"ON\"}");
        assertThat(forbidden.statusCode()).isEqualTo(403);
        assertThat(forbidden.body()).contains("operator");
        assertThat(call("GET", "/auth/tokens", viewer, null).statusCode()).isEqualTo(403);
        // the operator gets through to the command checks (unknown device)
        assertThat(call("POST", "/actuators/ESP_X/5/command", OPERATOR, "{\"command\":\"ON\"}").statusCode()).isEqualTo(404);
        // stored hashed: the secret is nowhere in the database
        assertThat(server.count("SELECT count(*) FROM api_tokens WHERE token_sha256 = '" + viewer + "'")).isZero();
        assertThat(call("GET", "/auth/tokens", OPERATOR, null).body()).contains("screen").doesNotContain(viewer);

        assertThat(call("DELETE", "/auth/tokens/screen", OPERATOR, null).statusCode()).isEqualTo(204);
        assertThat(call("GET", "/esp/devices", viewer, null).statusCode()).isEqualTo(401);
    }

    @Test
    void should_require_a_token_for_the_websocket() {
        assertThatThrownBy(() -> CLIENT.newWebSocketBuilder().buildAsync(URI.create(server.wsUrl()), new WebSocket.Listener() { }).join())
                .isInstanceOf(CompletionException.class);
        WebSocket ok = CLIENT.newWebSocketBuilder().buildAsync(URI.create(server.wsUrl() + "?access_token=" + OPERATOR),
                new WebSocket.Listener() { }).join();
        assertThat(ok.isInputClosed()).isFalse();
        ok.abort();
    }

    @Test
    void should_refuse_to_start_in_production_mode_with_authentication_off() {
        KaiserServer open = new KaiserServer("authoff", Map.of("kaiser.auth.enabled", "false", "kaiser.mode", "production"));
        assertThatThrownBy(open::start).hasStackTraceContaining("kaiser.mode=production needs kaiser.auth.enabled=true");
        open.stop();
    }
}
