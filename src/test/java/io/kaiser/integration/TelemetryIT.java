package io.kaiser.integration;

import java.time.Duration;
import java.util.List;
import java.util.Map;

import io.kaiser.support.Http;
import io.kaiser.support.KaiserServer;
import io.kaiser.support.LiveClient;
import io.kaiser.support.MqttTestClient;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/** Sensor data from MQTT to PostgreSQL, REST and WebSocket. */
class TelemetryIT {
    static KaiserServer server;
    static MqttTestClient device;

    @BeforeAll
    static void start() {
        server = new KaiserServer("telemetry", Map.of("kaiser.registration.auto-approve", "true")).start();
        device = new MqttTestClient(server.mqttUrl());
        await().atMost(Duration.ofSeconds(20)).until(() -> Http.get(server.baseUrl() + "/health").status() == 200);
        for (String esp : List.of("ESP_TEL01", "ESP_TEL02", "ESP_TEL03")) {
            device.publish(server.topic(esp, "system/heartbeat"), "{\"ts\":1735818000,\"uptime\":1,\"heap_free\":1,\"wifi_rssi\":-50}", 0);
        }
        await().atMost(Duration.ofSeconds(5)).until(() -> server.count("SELECT count(*) FROM devices WHERE status = 'online'") == 3);
    }

    @AfterAll
    static void stop() {
        device.close();
        server.stop();
    }

    @Test
    void should_make_a_reading_readable_over_rest_and_push_it_over_websocket_within_two_seconds() {
        try (LiveClient live = new LiveClient(server.wsUrl())) {
            live.send("{\"action\":\"subscribe\",\"filters\":{\"types\":[\"sensor_data\"],\"esp_ids\":[\"ESP_TEL01\"]}}");
            assertThat(live.await(e -> "subscribed".equals(e.get("type")), Duration.ofSeconds(2))).isNotNull();
            long start = System.nanoTime();
            device.publish(server.topic("ESP_TEL01", "sensor/4/data"),
                    "{\"ts\":1795700000,\"esp_id\":\"ESP_TEL01\",\"gpio\":4,\"sensor_type\":\"ds18b20\",\"raw\":356,\"raw_mode\":true,"
                            + "\"quality\":\"good\",\"onewire_address\":\"28ff641e8d3c0c79\"}", 1);
            Map<String, Object> event = live.await(e -> "sensor_data".equals(e.get("type")), Duration.ofSeconds(2));
            assertThat(event).as("sensor_data event within 2 s").isNotNull();
            assertThat(LiveClient.data(event)).containsEntry("esp_id", "ESP_TEL01").containsEntry("gpio", 4).containsEntry("value", 22.25)
                    .containsEntry("sensor_address", "28FF641E8D3C0C79");
            await().atMost(Duration.ofMillis(2000) .minusNanos(System.nanoTime() - start)).untilAsserted(() ->
                    assertThat(Http.get(server.baseUrl() + "/sensors/data?esp_id=ESP_TEL01&gpio=4").list("readings")).hasSize(1));
            Map<String, Object> reading = Http.get(server.baseUrl() + "/sensors/data?esp_id=ESP_TEL01&gpio=4").list("readings").get(0);
            assertThat(reading).containsEntry("sensor_type", "ds18b20").containsEntry("value", 22.25).containsEntry("unit", "°C")
                    .containsEntry("processing_mode", "raw_conversion").containsEntry("measured_at", "2026-11-26T13:33:20Z");
        }
    }

    @Test
    void should_not_push_events_of_other_devices_to_a_filtered_client() {
        try (LiveClient live = new LiveClient(server.wsUrl() + "?types=sensor_data&esp_ids=ESP_TEL03")) {
            device.publish(server.topic("ESP_TEL02", "sensor/5/data"),
                    "{\"ts\":1795700001,\"esp_id\":\"ESP_TEL02\",\"gpio\":5,\"sensor_type\":\"moisture\",\"raw\":2100}", 1);
            device.publish(server.topic("ESP_TEL03", "sensor/5/data"),
                    "{\"ts\":1795700002,\"esp_id\":\"ESP_TEL03\",\"gpio\":5,\"sensor_type\":\"moisture\",\"raw\":2200}", 1);
            Map<String, Object> event = live.await(e -> "sensor_data".equals(e.get("type")), Duration.ofSeconds(3));
            assertThat(event).isNotNull();
            assertThat(LiveClient.data(event)).containsEntry("esp_id", "ESP_TEL03");
        }
    }

    @Test
    void should_store_every_reading_of_a_batch_and_a_redelivered_reading_once() {
        String batch = "{\"esp_id\":\"ESP_TEL02\",\"ts\":1795701000,\"readings\":["
                + "{\"gpio\":21,\"sensor_type\":\"sht31_temp\",\"raw\":26214},"
                + "{\"gpio\":21,\"sensor_type\":\"sht31_humidity\",\"raw\":32768},"
                + "{\"gpio\":34,\"sensor_type\":\"moisture\",\"raw\":1800,\"ts\":1795700999}]}";
        device.publish(server.topic("ESP_TEL02", "sensor/batch"), batch, 1);
        device.publish(server.topic("ESP_TEL02", "sensor/batch"), batch, 1);
        await().atMost(Duration.ofSeconds(5)).until(() ->
                server.count("SELECT count(*) FROM sensor_data WHERE esp_id = 'ESP_TEL02' AND gpio IN (21, 34)") >= 3
                        && server.bean("ingestDrainer", io.kaiser.ingest.IngestDrainer.class).backlogBytes() == 0);
        assertThat(server.count("SELECT count(*) FROM sensor_data WHERE esp_id = 'ESP_TEL02' AND gpio IN (21, 34)")).isEqualTo(3);
        List<Map<String, Object>> rows = server.query(
                "SELECT sensor_type, round(value::numeric, 2) AS v FROM sensor_data WHERE esp_id = 'ESP_TEL02' AND gpio = 21 ORDER BY sensor_type");
        assertThat(rows.get(0).get("v").toString()).isEqualTo("50.00");
        assertThat(rows.get(1).get("v").toString()).isEqualTo("25.00");
    }

    @Test
    void should_keep_the_order_of_one_devices_readings() {
        for (int i = 0; i < 300; i++) {
            device.publish(server.topic("ESP_TEL03", "sensor/33/data"),
                    "{\"ts\":" + (1795600000L + i) + ",\"esp_id\":\"ESP_TEL03\",\"gpio\":33,\"sensor_type\":\"ph\",\"raw\":" + i + ",\"seq\":" + i + "}", 1);
        }
        await().atMost(Duration.ofSeconds(10)).until(() -> server.count("SELECT count(*) FROM sensor_data WHERE esp_id = 'ESP_TEL03' AND gpio = 33") == 300);
        List<Map<String, Object>> rows = server.query("SELECT seq FROM sensor_data WHERE esp_id = 'ESP_TEL03' AND gpio = 33 ORDER BY id");
        for (int i = 0; i < rows.size(); i++) {
            assertThat(((Number) rows.get(i).get("seq")).intValue()).isEqualTo(i);
        }
    }

    @Test
    void should_store_text_and_numbers_exactly_as_the_device_sent_them() {
        // control characters and backslashes are text like any other; a seq above 2^53 stays exact
        device.publish(server.topic("ESP_TEL01", "sensor/35/data"),
                "{\"ts\":1795702000,\"esp_id\":\"ESP_TEL01\",\"gpio\":35,\"sensor_type\":\"ph\",\"raw\":-0.5,\"raw_mode\":false,"
                        + "\"value\":1.5e-7,\"unit\":\"a\\tb\\\\c\\nd\\re\",\"zone_id\":\"\\\\N\",\"subzone_id\":\"\",\"seq\":9007199254740993}", 1);
        await().atMost(Duration.ofSeconds(5)).until(() ->
                server.count("SELECT count(*) FROM sensor_data WHERE esp_id = 'ESP_TEL01' AND gpio = 35") == 1);
        Map<String, Object> row = server.query("SELECT raw_value, value, unit, zone_id, subzone_id, seq, measured_at = to_timestamp(1795702000)"
                + " AS measured FROM sensor_data WHERE esp_id = 'ESP_TEL01' AND gpio = 35").get(0);
        assertThat(row).containsEntry("raw_value", -0.5).containsEntry("value", 1.5e-7).containsEntry("unit", "a\tb\\c\nd\re")
                .containsEntry("zone_id", "\\N").containsEntry("subzone_id", "").containsEntry("seq", 9007199254740993L)
                .containsEntry("measured", true);
    }
}
