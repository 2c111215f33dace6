package io.kaiser.integration;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.stream.Stream;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.kaiser.contract.TopicTable;
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
 * Every device-to-server topic, fed with the firmware's own golden vector (contract/vectors), is stored where
 * the contract says and produces its live event: both ends agree on the wire.
 */
class TopicFamiliesIT {
    static final ObjectMapper JSON = new ObjectMapper();
    static KaiserServer server;
    static MqttTestClient device;

    @BeforeAll
    static void start() {
        server = new KaiserServer("families", Map.of("kaiser.registration.auto-approve", "true")).start();
        device = new MqttTestClient(server.mqttUrl());
        await().atMost(Duration.ofSeconds(20)).until(() -> Http.get(server.baseUrl() + "/health").status() == 200);
    }

    @AfterAll
    static void stop() {
        device.close();
        server.stop();
    }

    /** topic key, SQL that counts what the message must have stored, live event type (null: none). */
    static Stream<Arguments> families() {
        return Stream.of(
                Arguments.of("sensor-data", "SELECT count(*) FROM sensor_data WHERE esp_id = '%s'", "sensor_data"),
                Arguments.of("sensor-batch", "SELECT count(*) FROM sensor_data WHERE esp_id = '%s'", "sensor_data"),
                Arguments.of("sensor-response", "SELECT count(*) FROM device_answers WHERE esp_id = '%s' AND topic_key = 'sensor-response'", null),
                Arguments.of("actuator-status", "SELECT count(*) FROM actuator_states s JOIN actuator_history h USING (esp_id, gpio)"
                        + " WHERE s.esp_id = '%s' AND h.event = 'status'", "actuator_status"),
                Arguments.of("actuator-response", "SELECT count(*) FROM actuator_history h JOIN device_answers a USING (esp_id)"
                        + " WHERE h.esp_id = '%s' AND h.event = 'response' AND a.topic_key = 'actuator-response'", "actuator_response"),
                Arguments.of("actuator-alert", "SELECT count(*) FROM actuator_history WHERE esp_id = '%s' AND event = 'alert'", "actuator_alert"),
                Arguments.of("emergency-ack", "SELECT count(*) FROM device_answers WHERE esp_id = '%s' AND topic_key = 'emergency-ack'", "emergency_ack"),
                Arguments.of("recovery-confirm", "SELECT count(*) FROM device_answers WHERE esp_id = '%s' AND topic_key = 'recovery-confirm'", "recovery_confirmed"),
                Arguments.of("heartbeat", "SELECT count(*) FROM heartbeat_logs WHERE esp_id = '%s'", "esp_health"),
                Arguments.of("heartbeat-metrics", "SELECT count(*) FROM devices WHERE esp_id = '%s' AND heartbeat_metrics IS NOT NULL", null),
                Arguments.of("session-announce", "SELECT count(*) FROM device_events WHERE esp_id = '%s' AND event_type = 'session_announce'", "esp_session"),
                Arguments.of("will", "SELECT count(*) FROM devices WHERE esp_id = '%s' AND status = 'offline'", "esp_health"),
                Arguments.of("system-error", "SELECT count(*) FROM error_events WHERE esp_id = '%s'", "error_event"),
                Arguments.of("diagnostics", "SELECT count(*) FROM devices WHERE esp_id = '%s' AND diagnostics IS NOT NULL", "esp_diagnostics"),
                Arguments.of("queue-pressure", "SELECT count(*) FROM device_events WHERE esp_id = '%s' AND event_type = 'queue_pressure'", "queue_pressure"),
                Arguments.of("intent-outcome", "SELECT count(*) FROM device_answers WHERE esp_id = '%s' AND topic_key = 'intent-outcome' AND correlation_id IS NOT NULL", "intent_outcome"),
                Arguments.of("intent-lifecycle", "SELECT count(*) FROM device_answers WHERE esp_id = '%s' AND topic_key = 'intent-lifecycle'", "intent_outcome_lifecycle"),
                Arguments.of("config-response", "SELECT count(*) FROM device_answers WHERE esp_id = '%s' AND topic_key = 'config-response' AND correlation_id IS NOT NULL", "config_response"),
                Arguments.of("zone-ack", "SELECT count(*) FROM devices WHERE esp_id = '%s' AND zone_id IS NOT NULL", "zone_assignment"),
                Arguments.of("subzone-ack", "SELECT count(*) FROM device_answers WHERE esp_id = '%s' AND topic_key = 'subzone-ack'", "subzone_assignment"),
                Arguments.of("system-command-response", "SELECT count(*) FROM device_answers WHERE esp_id = '%s' AND topic_key = 'system-command-response' AND correlation_id IS NOT NULL", "system_command_response"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("families")
    void should_store_the_firmware_vector_and_push_its_event(String key, String countSql, String eventType) throws Exception {
        TopicTable.Topic topic = new TopicTable().inbound(key);
        Path dir = Path.of("contract/vectors", topic.schema());
        String payload;
        try (Stream<Path> files = Files.list(dir)) {
            payload = Files.readString(files.filter(p -> p.toString().endsWith(".json")).sorted().findFirst().orElseThrow());
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> parsed = JSON.readValue(payload, Map.class);
        // each topic gets its own device so the checks never see each other's rows
        String esp = "ESP_" + key.replace("-", "").toUpperCase().substring(0, Math.min(12, key.replace("-", "").length()));
        String body = parsed.containsKey("esp_id") ? payload.replace("\"esp_id\":\"" + parsed.get("esp_id") + "\"", "\"esp_id\":\"" + esp + "\"") : payload;
        if (!key.equals("heartbeat")) {
            registerOnline(esp);
        }
        Integer gpio = parsed.get("gpio") instanceof Number n && n.intValue() <= 48 ? n.intValue() : 4;
        String t = topic.topic(server.kaiserId(), esp, topic.hasGpio() ? gpio : null);
        try (LiveClient live = new LiveClient(server.wsUrl() + "?esp_ids=" + esp)) {
            device.publish(t, body, topic.qos());
            await().atMost(Duration.ofSeconds(5)).untilAsserted(() ->
                    assertThat(server.count(countSql.formatted(esp))).as(key + " stored").isGreaterThan(0));
            if (eventType != null) {
                assertThat(live.await(e -> eventType.equals(e.get("type")), Duration.ofSeconds(3))).as(eventType + " event").isNotNull();
            }
        }
        assertThat(server.count("SELECT count(*) FROM dead_letters WHERE esp_id = '" + esp + "'")).as("dead letters of " + key).isZero();
    }

    /**
     * Diagnostics snapshots and queue pressure events are written once per ingest batch (deferred writes): however the
     * stream falls into batches, every device keeps its latest snapshot and every event is stored once.
     */
    @Test
    void should_keep_each_devices_latest_snapshot_when_many_are_written_together() throws Exception {
        String[] esps = {"ESP_DIAGMANY1", "ESP_DIAGMANY2", "ESP_DIAGMANY3"};
        for (String esp : esps) {
            registerOnline(esp);
        }
        TopicTable.Topic diagnostics = new TopicTable().inbound("diagnostics");
        TopicTable.Topic pressure = new TopicTable().inbound("queue-pressure");
        String pressureVector;
        try (Stream<Path> files = Files.list(Path.of("contract/vectors", pressure.schema()))) {
            pressureVector = Files.readString(files.filter(p -> p.toString().endsWith(".json")).sorted().findFirst().orElseThrow());
        }
        int snapshots = 200;
        for (int i = 1; i <= snapshots; i++) {
            for (String esp : esps) {
                device.publish(diagnostics.topic(server.kaiserId(), esp, null),
                        "{\"ts\":1735818060,\"esp_id\":\"" + esp + "\",\"heap_free\":" + i + ",\"wifi_rssi\":-60,\"uptime_seconds\":" + i + "}", 1);
            }
            if (i % 50 == 0) {
                device.publish(pressure.topic(server.kaiserId(), esps[0], null), pressureVector.replace("ESP_A1B2C3", esps[0]), pressure.qos());
            }
        }
        for (String esp : esps) {
            await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(server.count(
                    "SELECT count(*) FROM devices WHERE esp_id = '" + esp + "' AND (diagnostics->>'heap_free')::int = " + snapshots))
                    .as(esp + " keeps the last snapshot").isEqualTo(1));
        }
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(server.count(
                "SELECT count(*) FROM device_events WHERE esp_id = '" + esps[0] + "' AND event_type = 'queue_pressure'"))
                .as("queue pressure events").isEqualTo(snapshots / 50));
        assertThat(server.count("SELECT count(*) FROM dead_letters WHERE esp_id LIKE 'ESP_DIAGMANY%'")).isZero();
    }

    private static void registerOnline(String esp) throws IOException {
        device.publish(server.topic(esp, "system/heartbeat"), "{\"ts\":1735818000,\"uptime\":1,\"heap_free\":1,\"wifi_rssi\":-50}", 0);
        await().atMost(Duration.ofSeconds(5)).until(() ->
                server.count("SELECT count(*) FROM devices WHERE esp_id = '" + esp + "' AND status = 'online'") == 1);
    }
}
