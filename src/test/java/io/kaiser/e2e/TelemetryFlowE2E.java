package io.kaiser.e2e;

import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;

import io.kaiser.support.E2eStack;
import io.kaiser.support.Http;
import io.kaiser.support.LiveClient;
import io.kaiser.support.VirtualDevices;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import static io.kaiser.e2e.FlowKit.WAIT;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/** Telemetry: a virtual device's sensor readings reach REST ({@code GET /sensors/data}) and the filtered WebSocket. */
@Tag("e2e")
class TelemetryFlowE2E {
    static E2eStack stack;

    @BeforeAll
    static void start() {
        stack = new E2eStack("e2etel", Map.of("kaiser.registration.auto-approve-patterns", "ESP_TEL.*")).start();
    }

    @AfterAll
    static void stop() {
        stack.close();
    }

    @Test
    void should_serve_device_readings_on_rest_and_push_only_the_filtered_ones_live() {
        Instant before = Instant.now().minusSeconds(5);
        List<Map<String, Object>> seen = new CopyOnWriteArrayList<>();
        try (LiveClient live = new LiveClient(stack.wsUrl() + "?types=sensor_data&esp_ids=ESP_TEL0001");
             VirtualDevices devices = stack.devices("ESP_TEL", 2, FlowKit.chatty())) {
            // three readings of the ds18b20 (gpio 4) of device 1 pushed live; everything the socket sees is recorded
            for (int i = 0; i < 3; i++) {
                Map<String, Object> e = live.await(ev -> {
                    seen.add(ev);
                    return "sensor_data".equals(ev.get("type")) && "ESP_TEL0001".equals(LiveClient.data(ev).get("esp_id"))
                            && Integer.valueOf(4).equals(LiveClient.data(ev).get("gpio"));
                }, WAIT);
                assertThat(e).as("live sensor_data #%d of ESP_TEL0001 gpio 4", i).isNotNull();
                assertThat(LiveClient.data(e)).containsEntry("sensor_type", "ds18b20").containsEntry("unit", "°C")
                        .containsEntry("sensor_address", "28FF641E8D3C0C79");
                assertThat(((Number) LiveClient.data(e).get("value")).doubleValue()).isBetween(5.0, 35.0);
            }
            // device 2 publishes just as often: the filter kept its readings (and every other event type) away
            await().atMost(WAIT).until(() -> stack.count("SELECT count(*) FROM sensor_data WHERE esp_id = 'ESP_TEL0002'") >= 3);
            assertThat(seen).allSatisfy(ev -> assertThat(ev.get("type")).isEqualTo("sensor_data"));
            assertThat(seen).allSatisfy(ev -> assertThat(LiveClient.data(ev).get("esp_id")).isEqualTo("ESP_TEL0001"));
            assertThat(seen).extracting(ev -> LiveClient.data(ev).get("gpio")).contains(4, 21, 32);

            // REST: filtered by esp_id, gpio and time, newest first
            Http.Response r = Http.get(stack.baseUrl() + "/sensors/data?esp_id=ESP_TEL0001&gpio=4&limit=50&start_time="
                    + before.getEpochSecond());
            assertThat(r.status()).isEqualTo(200);
            List<Map<String, Object>> readings = r.list("readings");
            assertThat(readings).hasSizeGreaterThanOrEqualTo(3)
                    .allSatisfy(row -> assertThat(row).containsEntry("esp_id", "ESP_TEL0001").containsEntry("gpio", 4)
                            .containsEntry("sensor_type", "ds18b20"));
            List<String> times = readings.stream().map(row -> (String) row.get("measured_at")).toList();
            assertThat(times).isSortedAccordingTo(java.util.Comparator.reverseOrder());
            assertThat(Instant.parse(times.get(times.size() - 1))).isAfterOrEqualTo(before);
            // the sht31 yields two readings per measurement, the moisture probe one; all of both devices are stored
            Http.Response all = Http.get(stack.baseUrl() + "/sensors/data?esp_id=ESP_TEL0001&limit=1000");
            assertThat(all.list("readings")).extracting(row -> row.get("gpio")).contains(4, 21, 32);
            assertThat(all.list("readings")).extracting(row -> row.get("sensor_type")).contains("ds18b20", "moisture");
            Http.Response none = Http.get(stack.baseUrl() + "/sensors/data?esp_id=ESP_TEL0001&end_time=" + (before.getEpochSecond() - 3600));
            assertThat(none.list("readings")).isEmpty();
            assertThat(stack.query("SELECT topic, reason FROM dead_letters WHERE esp_id LIKE 'ESP_TEL%'")).as("dead letters").isEmpty();
        }
    }
}
