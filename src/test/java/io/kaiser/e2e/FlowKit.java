package io.kaiser.e2e;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Map;

import io.kaiser.support.E2eStack;
import io.kaiser.support.Http;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/** Small helpers shared by the flow tests (*FlowE2E): reading the system through REST, waiting for a state. */
final class FlowKit {
    /** Generous: two cores shared with other builds. */
    static final Duration WAIT = Duration.ofSeconds(45);
    private static final HttpClient CLIENT = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    private FlowKit() {
    }

    /** vdev flags for a device that talks often enough for short tests. */
    static String[] chatty(String... more) {
        String[] base = {"--heartbeat-s", "2", "--data-s", "2"};
        String[] all = new String[base.length + more.length];
        System.arraycopy(base, 0, all, 0, base.length);
        System.arraycopy(more, 0, all, base.length, more.length);
        return all;
    }

    static Map<String, Object> device(E2eStack stack, String esp) {
        return Http.get(stack.baseUrl() + "/esp/devices/" + esp).json();
    }

    static String status(E2eStack stack, String esp) {
        Http.Response r = Http.get(stack.baseUrl() + "/esp/devices/" + esp);
        return r.status() == 200 ? (String) r.json().get("status") : "http-" + r.status();
    }

    static void awaitStatus(E2eStack stack, String esp, String status) {
        await().atMost(WAIT).ignoreExceptions().until(() -> status.equals(status(stack, esp)));
    }

    static Http.Response actuatorStatus(E2eStack stack, String esp, int gpio) {
        return Http.get(stack.baseUrl() + "/actuators/" + esp + "/" + gpio + "/status");
    }

    /** The actuator's state as REST shows it, or null while it has none. */
    static String actuatorState(E2eStack stack, String esp, int gpio) {
        Http.Response r = actuatorStatus(stack, esp, gpio);
        return r.status() == 200 ? (String) r.json().get("state") : null;
    }

    static void awaitActuator(E2eStack stack, String esp, int gpio, String state) {
        await().atMost(WAIT).ignoreExceptions().until(() -> state.equals(actuatorState(stack, esp, gpio)));
    }

    /** Online, and the device has reported its actuators (it does so once its registration gate opens). */
    static void awaitReady(E2eStack stack, String esp, int... gpios) {
        awaitStatus(stack, esp, "online");
        for (int gpio : gpios) {
            await().atMost(WAIT).ignoreExceptions().until(() -> actuatorStatus(stack, esp, gpio).status() == 200);
        }
    }

    static Http.Response command(E2eStack stack, String path, String body) {
        return Http.post(stack.baseUrl() + path, body, "Prefer", "wait=15");
    }

    /** The REST answer of a command sent with Prefer: wait: 200, the device applied it. */
    static Map<String, Object> applied(Http.Response r) {
        assertThat(r.status()).as(r.body()).isEqualTo(200);
        assertThat(r.json()).as(r.body()).containsEntry("status", "applied");
        return r.json();
    }

    static Map<String, Object> commandView(E2eStack stack, String correlationId) {
        return Http.get(stack.baseUrl() + "/commands/" + correlationId).json();
    }

    static Http.Response delete(String url, String... headers) {
        try {
            HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(60)).DELETE();
            for (int i = 0; i + 1 < headers.length; i += 2) {
                b.header(headers[i], headers[i + 1]);
            }
            HttpResponse<String> r = CLIENT.send(b.build(), HttpResponse.BodyHandlers.ofString());
            return new Http.Response(r.statusCode(), r.headers().firstValue("Content-Type").orElse(""), r.body(), r.headers());
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> map(Object o) {
        return (Map<String, Object>) o;
    }
}
