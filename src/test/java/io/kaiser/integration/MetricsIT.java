package io.kaiser.integration;

import java.time.Duration;
import java.util.Map;

import io.kaiser.support.Http;
import io.kaiser.support.KaiserServer;
import io.kaiser.support.MqttTestClient;
import io.kaiser.support.ScriptedDevice;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/** Prometheus metrics with Kaiser's own meters. */
class MetricsIT {

    @Test
    void should_expose_ingest_dead_letter_command_and_device_meters_for_prometheus() {
        KaiserServer server = new KaiserServer("metrics", Map.of("kaiser.registration.auto-approve", "true", "kaiser.metrics.refresh-ms", "200")).start();
        try (ScriptedDevice dev = new ScriptedDevice(server, server.mqttUrl(), "ESP_MET1"); MqttTestClient raw = new MqttTestClient(server.mqttUrl())) {
            await().atMost(Duration.ofSeconds(20)).until(() -> Http.get(server.baseUrl() + "/health").status() == 200);
            dev.announce(5);
            await().atMost(Duration.ofSeconds(5)).until(() -> Http.get(server.baseUrl() + "/actuators/ESP_MET1/5/status").status() == 200);
            raw.publish(server.topic("ESP_MET1", "sensor/4/data"), "{\"ts\":1795000000,\"esp_id\":\"ESP_MET1\",\"gpio\":4,\"sensor_type\":\"ph\",\"raw\":7}", 1);
            raw.publish(server.topic("ESP_MET1", "sensor/4/data"), "{not json", 1);
            assertThat(Http.post(server.baseUrl() + "/actuators/ESP_MET1/5/command", "{\"command\":\"ON\"}", "Prefer", "wait=5").status()).isEqualTo(200);

            await().atMost(Duration.ofSeconds(5)).untilAsserted(() -> {
                Http.Response r = Http.get(server.baseUrl() + "/metrics");
                assertThat(r.status()).isEqualTo(200);
                assertThat(r.contentType()).startsWith("text/plain");
                assertThat(r.body())
                        .containsPattern("kaiser_ingested_messages_total\\{topic=\"sensor-data\"\\} [1-9]")
                        .containsPattern("kaiser_dead_letters_total\\{reason=\"invalid_json\"\\} 1")
                        .containsPattern("kaiser_command_ack_seconds_count\\{type=\"actuator\"\\} 1")
                        .containsPattern("kaiser_command_ack_seconds_bucket\\{type=\"actuator\",le=\"[^\"]+\"\\}")
                        .containsPattern("kaiser_commands\\{status=\"applied\",type=\"actuator\"\\} 1")
                        .containsPattern("kaiser_devices\\{status=\"online\"\\} 1")
                        .containsPattern("kaiser_outbox_depth 0")
                        .containsPattern("kaiser_ingest_stored [1-9]")
                        .containsPattern("kaiser_ingest_lag_ms [0-9]")
                        .contains("kaiser_websocket_clients", "kaiser_ingest_backlog_bytes", "kaiser_mqtt_connected 1")
                        .doesNotContain("NaN");
            });
        } finally {
            server.stop();
        }
    }
}
