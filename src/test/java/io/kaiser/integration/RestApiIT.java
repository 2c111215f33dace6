package io.kaiser.integration;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.kaiser.support.Heartbeats;
import io.kaiser.support.Http;
import io.kaiser.support.KaiserServer;
import io.kaiser.support.MqttTestClient;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/** REST API against a real server: problem+json for every bad request, health, reading filters, device lists. */
class RestApiIT {
    static final ObjectMapper JSON = new ObjectMapper();
    /** Readings are at T0 + n minutes. */
    static final long T0 = Instant.parse("2026-01-10T10:00:00Z").getEpochSecond();

    static KaiserServer server;
    static MqttTestClient device;
    static String api;

    @BeforeAll
    static void start() throws Exception {
        server = new KaiserServer("restapi", Map.of("kaiser.registration.auto-approve-patterns", "ESP_ON.*")).start();
        api = server.baseUrl();
        device = new MqttTestClient(server.mqttUrl());
        device.subscribe("kaiser/" + server.kaiserId() + "/esp/+/system/heartbeat/ack", 0);
        await().atMost(Duration.ofSeconds(20)).until(() -> Http.get(api + "/health").status() == 200);
        assertThat(heartbeat("ESP_ON1")).isEqualTo("online");
        assertThat(heartbeat("ESP_ON2")).isEqualTo("online");
        assertThat(heartbeat("ESP_PEND1")).isEqualTo("pending_approval");
        // ESP_ON1: ds18b20 on gpio 4 at minutes 0, 1, 2; sht31_temp on gpio 21 at minute 1. ESP_ON2: ds18b20 gpio 4 at minute 0.
        reading("ESP_ON1", 4, "ds18b20", 320, 0);
        reading("ESP_ON1", 4, "ds18b20", 336, 1);
        reading("ESP_ON1", 4, "ds18b20", 352, 2);
        reading("ESP_ON1", 21, "sht31_temp", 26214, 1);
        reading("ESP_ON2", 4, "ds18b20", 400, 0);
        await().atMost(Duration.ofSeconds(10)).until(() -> server.count("SELECT count(*) FROM sensor_data") == 5);
    }

    @AfterAll
    static void stop() {
        if (device != null) {
            device.close();
        }
        if (server != null) {
            server.stop();
        }
    }

    static String heartbeat(String esp) throws Exception {
        device.publish(server.topic(esp, "system/heartbeat"), Heartbeats.original(esp), 0);
        MqttTestClient.Received ack = serverAck(esp, Duration.ofSeconds(5));
        assertThat(ack).as("heartbeat ACK for " + esp).isNotNull();
        return (String) JSON.readValue(ack.payload(), Map.class).get("status");
    }

    static MqttTestClient.Received serverAck(String esp, Duration timeout) {
        return Heartbeats.serverAck(device, server, esp, timeout);
    }

    static void reading(String esp, int gpio, String type, int raw, int minute) {
        device.publish(server.topic(esp, "sensor/" + gpio + "/data"), "{\"esp_id\":\"" + esp + "\",\"gpio\":" + gpio + ",\"sensor_type\":\"" + type
                + "\",\"raw\":" + raw + ",\"quality\":\"good\",\"ts\":" + (T0 + 60L * minute) + "}", 1);
    }

    static Map<String, Object> problem(Http.Response r, int status) {
        assertThat(r.status()).as(r.body()).isEqualTo(status);
        assertThat(r.contentType()).startsWith("application/problem+json");
        Map<String, Object> body = r.json();
        assertThat(body).containsKeys("type", "title", "status", "detail").containsEntry("status", status);
        assertThat((String) body.get("type")).isNotBlank();
        assertThat((String) body.get("title")).isNotBlank();
        assertThat((String) body.get("detail")).isNotBlank();
        return body;
    }

    static List<Map<String, Object>> readings(String query) {
        Http.Response r = Http.get(api + "/sensors/data?" + query);
        assertThat(r.status()).as(r.body()).isEqualTo(200);
        assertThat(r.contentType()).startsWith("application/json");
        return r.list("readings");
    }

    // ------------------------------------------------------------------ problems

    @Test
    void should_answer_404_problem_for_an_unknown_device() {
        assertThat((String) problem(Http.get(api + "/esp/devices/ESP_NOPE"), 404).get("detail")).contains("not found");
    }

    @Test
    void should_answer_400_problem_for_an_invalid_esp_id_in_the_path() {
        assertThat((String) problem(Http.get(api + "/esp/devices/ESP~BAD"), 400).get("detail")).contains("esp_id");
        problem(Http.get(api + "/esp/devices/" + "E".repeat(33)), 400);
        problem(Http.get(api + "/actuators/ESP%24X/4/status"), 400);
        problem(Http.post(api + "/esp/devices/ESP~BAD/approve", "{}"), 400);
    }

    @Test
    void should_answer_400_problem_for_gpio_99() {
        assertThat((String) problem(Http.get(api + "/actuators/ESP_ON1/99/status"), 400).get("detail")).contains("gpio");
        problem(Http.get(api + "/actuators/ESP_ON1/x/history"), 400);
        problem(Http.get(api + "/sensors/data?gpio=99"), 400);
    }

    @Test
    void should_answer_400_problem_for_bad_limits() {
        assertThat((String) problem(Http.get(api + "/sensors/data?limit=0"), 400).get("detail")).contains("limit");
        assertThat((String) problem(Http.get(api + "/sensors/data?limit=abc"), 400).get("detail")).contains("limit");
        problem(Http.get(api + "/sensors/data?limit=1001"), 400);
        problem(Http.get(api + "/esp/devices?offset=-1"), 400);
    }

    @Test
    void should_answer_400_problem_for_a_bad_time_range() {
        assertThat((String) problem(Http.get(api + "/sensors/data?start_time=yesterday"), 400).get("detail")).contains("start_time");
        problem(Http.get(api + "/sensors/data?end_time=2026-13-45T99:00:00Z"), 400);
        problem(Http.get(api + "/sensors/data?start_time=2026-01-02T00:00:00Z&end_time=2026-01-01T00:00:00Z"), 400);
    }

    @Test
    void should_answer_415_problem_for_an_approve_body_that_is_not_json() {
        problem(Http.post(api + "/esp/devices/ESP_PEND1/approve", "name=Greenhouse", "text/plain"), 415);
        problem(Http.post(api + "/esp/devices/ESP_PEND1/approve", "name=Greenhouse", "application/x-www-form-urlencoded"), 415);
        assertThat(Http.get(api + "/esp/devices/ESP_PEND1").json()).containsEntry("status", "pending_approval");
    }

    @Test
    void should_answer_400_problem_for_malformed_approve_json() {
        problem(Http.post(api + "/esp/devices/ESP_PEND1/approve", "{\"name\":", "application/json"), 400);
        problem(Http.post(api + "/esp/devices/ESP_PEND1/approve", "[1,2]", "application/json"), 400);
        problem(Http.post(api + "/esp/devices/ESP_PEND1/approve", "{\"name\":42}", "application/json"), 400);
        problem(Http.post(api + "/esp/devices/ESP_PEND1/approve", "{\"name\":\"" + "n".repeat(129) + "\"}", "application/json"), 400);
        assertThat(Http.get(api + "/esp/devices/ESP_PEND1").json()).containsEntry("status", "pending_approval");
    }

    @Test
    void should_answer_409_problem_for_approving_an_online_device() {
        assertThat((String) problem(Http.post(api + "/esp/devices/ESP_ON1/approve", "{}"), 409).get("title")).isEqualTo("Conflict");
        assertThat(Http.get(api + "/esp/devices/ESP_ON1").json()).containsEntry("status", "online");
    }

    @Test
    void should_answer_404_problem_for_an_actuator_that_never_reported() {
        problem(Http.get(api + "/actuators/ESP_ON1/7/status"), 404);
        problem(Http.post(api + "/esp/devices/ESP_NOPE/approve", "{}"), 404);
    }

    @ParameterizedTest
    @ValueSource(strings = {
            "/esp/devices?status=bogus", "/esp/devices?limit=-5", "/esp/devices?limit=99999999999999",
            "/sensors/data?gpio=-1", "/sensors/data?gpio=4.5", "/sensors/data?esp_id=%00", "/sensors/data?esp_id=a%27%3B--",
            "/sensors/data?start_time=99999999999999999999", "/sensors/data?offset=abc", "/errors?start_time=%27",
            "/errors/dead-letters?limit=%20", "/actuators/ESP_ON1/-1/status", "/actuators/ESP_ON1/4/history?limit=0",
            "/esp/devices/%20"})
    void should_never_answer_500_for_bad_input(String path) {
        Http.Response r = Http.get(api + path);
        assertThat(r.status()).as(path + " -> " + r.body()).isBetween(200, 499);
        if (r.status() >= 400) {
            problem(r, r.status());
        }
    }

    @Test
    void should_not_echo_request_parameters_as_response_headers_in_a_problem() throws Exception {
        var client = java.net.http.HttpClient.newHttpClient();
        var response = client.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create(api + "/sensors/data?limit=0&probe=echoed")).GET().build(),
                java.net.http.HttpResponse.BodyHandlers.ofString());
        assertThat(response.statusCode()).isEqualTo(400);
        assertThat(response.headers().firstValue("probe")).isEmpty();
        assertThat(response.headers().firstValue("limit")).isEmpty();
        assertThat(response.headers().firstValue("Content-Type")).hasValueSatisfying(v -> assertThat(v).startsWith("application/problem+json"));
    }

    // ------------------------------------------------------------------ health and reads

    @Test
    void should_report_health_up_with_mqtt_and_database_sections() {
        Http.Response r = Http.get(api + "/health");
        assertThat(r.status()).isEqualTo(200);
        assertThat(r.contentType()).startsWith("application/json");
        Map<String, Object> body = r.json();
        assertThat(body).containsEntry("status", "UP");
        @SuppressWarnings("unchecked")
        Map<String, Object> mqtt = (Map<String, Object>) body.get("mqtt");
        @SuppressWarnings("unchecked")
        Map<String, Object> db = (Map<String, Object>) body.get("database");
        assertThat(mqtt).containsEntry("status", "UP").containsKey("broker");
        assertThat(db).containsEntry("status", "UP").containsEntry("schema_migrated", true);
        assertThat(((Map<?, ?>) body.get("ingest")).get("database_breaker")).isEqualTo("CLOSED");
        assertThat(((Map<?, ?>) body.get("commands")).get("outbox_depth")).isEqualTo(0);
    }

    @Test
    void should_filter_sensor_data_by_esp_id_gpio_type_time_and_limit() {
        assertThat(readings("limit=1000")).hasSize(5);
        List<Map<String, Object>> on1 = readings("esp_id=ESP_ON1");
        assertThat(on1).hasSize(4).allSatisfy(r -> assertThat(r).containsEntry("esp_id", "ESP_ON1"));
        // newest first
        assertThat(on1.get(0).get("measured_at")).isEqualTo(Instant.ofEpochSecond(T0 + 120).toString());

        assertThat(readings("esp_id=ESP_ON1&gpio=21")).singleElement().satisfies(r ->
                assertThat(r).containsEntry("sensor_type", "sht31_temp").containsEntry("gpio", 21));
        assertThat(readings("sensor_type=ds18b20")).hasSize(4).allSatisfy(r -> assertThat(r).containsEntry("sensor_type", "ds18b20"));
        assertThat(readings("esp_id=ESP_ON1&sensor_type=ds18b20&gpio=4")).extracting(r -> ((Number) r.get("value")).doubleValue())
                .containsExactly(22.0, 21.0, 20.0);

        String from = Instant.ofEpochSecond(T0 + 60).toString();
        String to = Instant.ofEpochSecond(T0 + 60).toString();
        assertThat(readings("start_time=" + from + "&end_time=" + to)).hasSize(2)
                .allSatisfy(r -> assertThat(r).containsEntry("measured_at", from));
        assertThat(readings("start_time=" + (T0 + 61))).hasSize(1);
        assertThat(readings("end_time=" + (T0 - 1))).isEmpty();

        Http.Response limited = Http.get(api + "/sensors/data?esp_id=ESP_ON1&limit=2");
        assertThat(limited.list("readings")).hasSize(2);
        assertThat(limited.json()).containsEntry("count", 2).containsEntry("limit", 2).containsEntry("offset", 0);
        assertThat(readings("esp_id=ESP_ON1&limit=2&offset=3")).hasSize(1);
        assertThat(readings("esp_id=ESP_NOBODY")).isEmpty();
    }

    @Test
    void should_list_devices_without_pending_ones_unless_asked() {
        Http.Response all = Http.get(api + "/esp/devices");
        assertThat(all.status()).isEqualTo(200);
        assertThat(all.list("devices")).extracting(d -> d.get("esp_id")).contains("ESP_ON1", "ESP_ON2").doesNotContain("ESP_PEND1");
        assertThat(Http.get(api + "/esp/devices?status=pending_approval").list("devices")).extracting(d -> d.get("esp_id"))
                .contains("ESP_PEND1").doesNotContain("ESP_ON1", "ESP_ON2");
        assertThat(Http.get(api + "/esp/devices?status=online").list("devices")).extracting(d -> d.get("status")).containsOnly("online");
        assertThat(Http.get(api + "/esp/devices/pending").list("devices")).extracting(d -> d.get("esp_id")).contains("ESP_PEND1");
    }
}
