package io.kaiser.integration;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.kaiser.support.Heartbeats;
import io.kaiser.support.Http;
import io.kaiser.support.KaiserServer;
import io.kaiser.support.LiveClient;
import io.kaiser.support.MqttTestClient;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Every kind of bad device input against a real server: each lands in dead_letters with its reason and topic,
 * is pushed as an error_event, is listed by the REST API, and the ingest route keeps storing good readings.
 */
class BadInputIT {
    static final ObjectMapper JSON = new ObjectMapper();
    static final String ESP = "ESP_BAD1";
    static final int MAX_PAYLOAD = 2048;
    static final AtomicLong SEQ = new AtomicLong();

    static KaiserServer server;
    static MqttTestClient device;

    @BeforeAll
    static void start() throws Exception {
        server = new KaiserServer("badinput", Map.of(
                "kaiser.registration.auto-approve", "true",
                "kaiser.ingest.max-payload-bytes", Integer.toString(MAX_PAYLOAD))).start();
        device = new MqttTestClient(server.mqttUrl());
        device.subscribe("kaiser/" + server.kaiserId() + "/esp/+/system/heartbeat/ack", 0);
        await().atMost(Duration.ofSeconds(20)).until(() -> Http.get(server.baseUrl() + "/health").status() == 200);
        register(ESP);
        register("ESP_FUZZ");
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

    static void register(String esp) throws Exception {
        device.publish(server.topic(esp, "system/heartbeat"), Heartbeats.original(esp), 0);
        MqttTestClient.Received ack = serverAck(esp, Duration.ofSeconds(5));
        assertThat(ack).as("heartbeat ACK for " + esp).isNotNull();
        assertThat(JSON.readValue(ack.payload(), Map.class)).containsEntry("status", "online");
    }

    static MqttTestClient.Received serverAck(String esp, Duration timeout) {
        return Heartbeats.serverAck(device, server, esp, timeout);
    }

    /** A valid ds18b20 reading with a unique raw value and timestamp (ms). */
    static String reading(String esp, int gpio, long raw, long tsMillis) {
        return "{\"esp_id\":\"" + esp + "\",\"gpio\":" + gpio + ",\"sensor_type\":\"ds18b20\",\"raw\":" + raw
                + ",\"value\":1.0,\"unit\":\"°C\",\"quality\":\"good\",\"ts\":" + tsMillis + ",\"raw_mode\":true}";
    }

    static String validReading() {
        long n = SEQ.incrementAndGet();
        return reading(ESP, 4, 100_000 + n, System.currentTimeMillis() - 60_000 + n);
    }

    static Stream<Arguments> badInputs() {
        String good = reading(ESP, 4, 356, 1_767_225_600_000L);
        return Stream.of(
                Arguments.of("invalid JSON", "sensor/4/data", "{\"esp_id\":\"ESP_BAD1\",\"gpio\":4,", "invalid_json"),
                Arguments.of("missing required field", "sensor/4/data", good.replace("\"sensor_type\":\"ds18b20\",", ""), "schema_violation"),
                Arguments.of("wrong type", "sensor/4/data", good.replace("\"gpio\":4", "\"gpio\":\"four\""), "schema_violation"),
                Arguments.of("oversize", "sensor/4/data", good.replace("\"unit\"", "\"zone_id\":\"" + "z".repeat(MAX_PAYLOAD) + "\",\"unit\""), "oversize"),
                Arguments.of("esp_id mismatch", "sensor/4/data", good.replace("\"esp_id\":\"ESP_BAD1\"", "\"esp_id\":\"ESP_OTHER\""), "esp_id_mismatch"),
                Arguments.of("gpio mismatch", "sensor/5/data", good, "gpio_mismatch"),
                Arguments.of("gpio 99 in the topic", "sensor/99/data", good.replace("\"gpio\":4", "\"gpio\":99"), "unknown_gpio"),
                Arguments.of("non-numeric gpio in the topic", "sensor/four/data", good, "unknown_gpio"),
                Arguments.of("JSON array", "sensor/4/data", "[" + good + "]", "not_an_object"),
                Arguments.of("empty payload", "sensor/4/data", "", "empty_payload"),
                Arguments.of("invalid batch", "sensor/batch", "{\"esp_id\":\"ESP_BAD1\",\"ts\":1,\"readings\":[]}", "schema_violation"),
                Arguments.of("NUL bytes and invalid UTF-8", "sensor/4/data", "\u0000\u0000{\"a\":\uFFFF}", "invalid_json"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("badInputs")
    void should_dead_letter_bad_input_push_an_error_event_list_it_and_keep_storing(String name, String suffix, String payload, String reason)
            throws Exception {
        assertRejectedAndRouteAlive(ESP, server.topic(ESP, suffix), payload.getBytes(StandardCharsets.UTF_8), reason);
    }

    @Test
    void should_store_every_reading_of_the_firmware_batch_vector() throws Exception {
        String batch = java.nio.file.Files.readString(java.nio.file.Path.of("contract/vectors/sensor-batch/cached.json"))
                .replace("ESP_A1B2C3", ESP);
        device.publish(server.topic(ESP, "sensor/batch"), batch, 1);
        await().atMost(Duration.ofSeconds(10)).until(() -> server.count("SELECT count(*) FROM sensor_data WHERE esp_id = '" + ESP
                + "' AND measured_at = to_timestamp(1735818001)") == 4);
        assertThat(server.count("SELECT count(*) FROM dead_letters WHERE topic = '" + server.topic(ESP, "sensor/batch")
                + "' AND payload_excerpt LIKE '%\"seq\":37%'")).isZero();
        assertThat(server.query("SELECT value FROM sensor_data WHERE esp_id = '" + ESP + "' AND measured_at = to_timestamp(1735818001)"
                + " AND sensor_type = 'sht31_humidity'").get(0)).containsEntry("value", 60.0);
    }

    @Test
    void should_dead_letter_data_from_a_device_that_never_sent_a_heartbeat() throws Exception {
        String esp = "ESP_NEVERSEEN";
        assertRejectedAndRouteAlive(esp, server.topic(esp, "sensor/4/data"),
                reading(esp, 4, 356, System.currentTimeMillis() - 1000).getBytes(StandardCharsets.UTF_8), "unknown_device");
        assertThat(server.count("SELECT count(*) FROM sensor_data WHERE esp_id = 'ESP_NEVERSEEN'")).isZero();
        assertThat(Http.get(server.baseUrl() + "/esp/devices/ESP_NEVERSEEN").status()).isEqualTo(404);
    }

    @Test
    void should_answer_an_invalid_heartbeat_with_an_error_ack() throws Exception {
        String esp = "ESP_BADHB";
        String topic = server.topic(esp, "system/heartbeat");
        device.clear();
        assertRejectedAndRouteAlive(esp, topic, "{\"esp_id\":\"ESP_BADHB\",\"ts\":1735818000,\"heap_free\":1}".getBytes(StandardCharsets.UTF_8),
                "schema_violation");
        MqttTestClient.Received ack = serverAck(esp, Duration.ofSeconds(5));
        assertThat(ack).as("error ACK").isNotNull();
        @SuppressWarnings("unchecked")
        Map<String, Object> body = JSON.readValue(ack.payload(), Map.class);
        assertThat(body).containsEntry("status", "error");
        assertThat((String) body.get("error")).isEqualTo("invalid_payload:schema_violation");
        // an invalid heartbeat registers nothing
        assertThat(server.count("SELECT count(*) FROM devices WHERE esp_id = 'ESP_BADHB'")).isZero();

        // a heartbeat that is not JSON gets an error ACK naming that
        device.publish(topic, "garbage", 0);
        MqttTestClient.Received ack2 = serverAck(esp, Duration.ofSeconds(5));
        assertThat(ack2).isNotNull();
        assertThat(ack2.payload()).contains("\"status\":\"error\"").contains("invalid_payload:invalid_json");
    }

    static long deadLetters(String topic, String reason) {
        return server.count("SELECT count(*) FROM dead_letters WHERE topic = '" + topic.replace("'", "''") + "' AND reason_code = '" + reason + "'");
    }

    static void assertRejectedAndRouteAlive(String esp, String topic, byte[] payload, String reason) throws Exception {
        long before = deadLetters(topic, reason);
        try (LiveClient live = new LiveClient(server.wsUrl() + "?types=error_event")) {
            device.publish(topic, payload, 1);
            await().atMost(Duration.ofSeconds(10)).until(() -> deadLetters(topic, reason) == before + 1);

            Map<String, Object> event = live.await(e -> "error_event".equals(e.get("type"))
                    && topic.equals(LiveClient.data(e).get("topic")), Duration.ofSeconds(5));
            assertThat(event).as("error_event for " + topic).isNotNull();
            assertThat(LiveClient.data(event)).containsEntry("error_code", 5209).containsEntry("category", "CONTRACT");
            assertThat((String) LiveClient.data(event).get("title")).contains(reason);
        }
        Map<String, Object> row = server.query("SELECT * FROM dead_letters WHERE topic = '" + topic.replace("'", "''")
                + "' AND reason_code = '" + reason + "' ORDER BY id DESC LIMIT 1").get(0);
        assertThat(row).containsEntry("esp_id", esp).containsEntry("payload_size", payload.length);
        assertThat((String) row.get("reason")).isNotBlank();

        Http.Response listed = Http.get(server.baseUrl() + "/errors/dead-letters?esp_id=" + esp + "&limit=1000");
        assertThat(listed.status()).isEqualTo(200);
        assertThat(listed.list("dead_letters")).anySatisfy(d -> assertThat(d)
                .containsEntry("topic", topic).containsEntry("reason_code", reason).containsEntry("esp_id", esp));

        // the route keeps running: a valid reading right after is stored
        String valid = validReading();
        long raw = JSON.readTree(valid).get("raw").asLong();
        device.publish(server.topic(ESP, "sensor/4/data"), valid, 1);
        await().atMost(Duration.ofSeconds(10)).until(() ->
                server.count("SELECT count(*) FROM sensor_data WHERE esp_id = '" + ESP + "' AND raw_value = " + raw) == 1);
    }

    @Test
    void should_survive_a_mix_of_valid_readings_and_random_garbage() throws Exception {
        Random random = new Random(20261126L);
        String esp = "ESP_FUZZ";
        long base = System.currentTimeMillis() - 3_600_000L;
        int valid = 0;
        int invalid = 0;
        for (int i = 0; i < 2000; i++) {
            int gpio = random.nextInt(49);
            String good = reading(esp, gpio, random.nextInt(4096), base + i);
            String topic = server.topic(esp, "sensor/" + gpio + "/data");
            int kind = random.nextInt(10);
            if (kind < 5) {
                publishPaced(topic, good.getBytes(StandardCharsets.UTF_8));
                valid++;
                continue;
            }
            byte[] bad = switch (kind) {
                case 5 -> randomBytes(random, 1 + random.nextInt(300));
                case 6 -> good.substring(0, random.nextInt(good.length() - 1)).getBytes(StandardCharsets.UTF_8);
                case 7 -> good.replace("\"gpio\":" + gpio, "\"gpio\":" + (random.nextBoolean() ? "\"x\"" : "null"))
                        .getBytes(StandardCharsets.UTF_8);
                case 8 -> ("[" + good + "]").getBytes(StandardCharsets.UTF_8);
                default -> good.replace("\"sensor_type\":\"ds18b20\"", "\"sensor_type\":" + random.nextInt())
                        .getBytes(StandardCharsets.UTF_8);
            };
            if (kind == 5 && random.nextBoolean()) {
                // garbage in the topic instead: a gpio level that is no gpio
                topic = server.topic(esp, "sensor/" + (random.nextBoolean() ? "x" + random.nextInt(100) : Integer.toString(49 + random.nextInt(1000))) + "/data");
                bad = good.getBytes(StandardCharsets.UTF_8);
            }
            publishPaced(topic, bad);
            invalid++;
        }
        int expectedValid = valid;
        int expectedInvalid = invalid;
        await().atMost(Duration.ofSeconds(90)).pollInterval(Duration.ofMillis(500)).until(() ->
                server.count("SELECT count(*) FROM sensor_data WHERE esp_id = 'ESP_FUZZ'") >= expectedValid
                        && server.count("SELECT count(*) FROM dead_letters WHERE esp_id = 'ESP_FUZZ'") >= expectedInvalid);
        await().atMost(Duration.ofSeconds(10)).until(() -> server.bean("ingestDrainer", io.kaiser.ingest.IngestDrainer.class).backlogBytes() == 0);
        assertThat(server.count("SELECT count(*) FROM sensor_data WHERE esp_id = 'ESP_FUZZ'")).as("valid readings stored").isEqualTo(expectedValid);
        assertThat(server.count("SELECT count(DISTINCT measured_at) FROM sensor_data WHERE esp_id = 'ESP_FUZZ'")).as("each once").isEqualTo(expectedValid);
        assertThat(server.count("SELECT count(*) FROM dead_letters WHERE esp_id = 'ESP_FUZZ'")).as("invalid ones dead-lettered").isEqualTo(expectedInvalid);
        Http.Response health = Http.get(server.baseUrl() + "/health");
        assertThat(health.status()).isEqualTo(200);
        assertThat(health.json()).containsEntry("status", "UP");
        // and still working afterwards
        String after = validReading();
        long raw = JSON.readTree(after).get("raw").asLong();
        device.publish(server.topic(ESP, "sensor/4/data"), after, 1);
        await().atMost(Duration.ofSeconds(10)).until(() ->
                server.count("SELECT count(*) FROM sensor_data WHERE esp_id = '" + ESP + "' AND raw_value = " + raw) == 1);
    }

    /** Publishes at QoS 1, waiting while the client has its maximum of publishes in flight. */
    static void publishPaced(String topic, byte[] payload) {
        await().atMost(Duration.ofSeconds(20)).pollDelay(Duration.ZERO).pollInterval(Duration.ofMillis(2)).until(() -> {
            try {
                device.publish(topic, payload, 1);
                return true;
            } catch (IllegalStateException e) {
                if (e.getCause() instanceof org.eclipse.paho.mqttv5.common.MqttException m && m.getReasonCode() == 32202) {
                    return false; // too many publishes in progress
                }
                throw e;
            }
        });
    }

    static byte[] randomBytes(Random random, int n) {
        byte[] b = new byte[n];
        random.nextBytes(b);
        return b;
    }
}
