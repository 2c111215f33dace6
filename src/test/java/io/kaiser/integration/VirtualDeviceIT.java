package io.kaiser.integration;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

import io.kaiser.support.Http;
import io.kaiser.support.KaiserServer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * The firmware's core, run as virtual devices (firmware/build/linux/kaiser-vdev), against a real server: it
 * registers, its heartbeats and data are stored, and it executes and answers the server's commands.
 */
class VirtualDeviceIT {
    static KaiserServer server;
    static Process vdev;

    @BeforeAll
    static void start() throws Exception {
        io.kaiser.support.Firmware.vdev();
        server = new KaiserServer("vdev", Map.of("kaiser.registration.auto-approve-patterns", "ESP_VDI.*")).start();
        await().atMost(Duration.ofSeconds(20)).until(() -> Http.get(server.baseUrl() + "/health").status() == 200);
        vdev = new ProcessBuilder(io.kaiser.support.Firmware.vdev().toString(), "--count", "3", "--prefix", "ESP_VDI", "--kaiser-id", server.kaiserId(),
                "--url", server.mqttUrl().replace("tcp://", "mqtt://"), "--heartbeat-s", "5", "--data-s", "2", "--duration", "120",
                "--stats-s", "10")
                .redirectErrorStream(true).redirectOutput(new File("target/vdev-" + server.kaiserId() + ".log")).start();
    }

    @AfterAll
    static void stop() {
        if (vdev != null) {
            vdev.destroy();
        }
        server.stop();
    }

    @Test
    void should_register_virtual_devices_store_their_data_and_have_them_answer_commands() {
        await().atMost(Duration.ofSeconds(30)).until(() ->
                server.count("SELECT count(*) FROM devices WHERE esp_id LIKE 'ESP_VDI%' AND status = 'online'") == 3);
        await().atMost(Duration.ofSeconds(30)).until(() ->
                server.count("SELECT count(DISTINCT esp_id) FROM sensor_data WHERE esp_id LIKE 'ESP_VDI%'") == 3
                        && server.count("SELECT count(*) FROM actuator_states WHERE esp_id = 'ESP_VDI0001'") > 0);
        int actuator = ((Number) server.query("SELECT min(gpio) AS g FROM actuator_states WHERE esp_id = 'ESP_VDI0001'").get(0).get("g")).intValue();
        int sensor = ((Number) server.query("SELECT min(gpio) AS g FROM sensor_data WHERE esp_id = 'ESP_VDI0001'").get(0).get("g")).intValue();

        Http.Response on = Http.post(server.baseUrl() + "/actuators/ESP_VDI0001/" + actuator + "/command",
                "{\"command\":\"ON\",\"duration\":30}", "Prefer", "wait=10");
        assertThat(on.status()).as(on.body()).isEqualTo(200);
        assertThat(on.json()).containsEntry("status", "applied");
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() ->
                assertThat(Http.get(server.baseUrl() + "/actuators/ESP_VDI0001/" + actuator + "/status").json()).containsEntry("state", "on"));

        Http.Response measure = Http.post(server.baseUrl() + "/sensors/ESP_VDI0002/" + sensor + "/measure", null, "Prefer", "wait=10");
        assertThat(measure.status()).as(measure.body()).isEqualTo(200);
        assertThat(measure.json()).containsEntry("status", "applied");

        Http.Response system = Http.post(server.baseUrl() + "/esp/devices/ESP_VDI0003/system-command", "{\"command\":\"status\"}",
                "Prefer", "wait=10");
        assertThat(system.status()).as(system.body()).isEqualTo(200);
        assertThat(system.json()).containsEntry("status", "applied");

        Http.Response zone = Http.post(server.baseUrl() + "/zone/devices/ESP_VDI0002/assign",
                "{\"zone_id\":\"greenhouse_1\",\"zone_name\":\"Greenhouse 1\"}", "Prefer", "wait=10");
        assertThat(zone.status()).as(zone.body()).isEqualTo(200);
        assertThat(zone.json()).containsEntry("status", "applied");
        assertThat(Http.get(server.baseUrl() + "/esp/devices/ESP_VDI0002").json()).containsEntry("zone_id", "greenhouse_1");

        Http.Response config = Http.post(server.baseUrl() + "/esp/devices/ESP_VDI0003/config",
                "{\"sensors\":[{\"gpio\":4,\"sensor_type\":\"ds18b20\",\"sensor_name\":\"soil\",\"active\":true}],"
                        + "\"actuators\":[{\"gpio\":5,\"actuator_type\":\"relay\",\"actuator_name\":\"pump\",\"active\":true}],"
                        + "\"offline_rules\":[]}", "Prefer", "wait=15");
        assertThat(config.status()).as(config.body()).isEqualTo(200);
        assertThat(config.json()).containsEntry("status", "applied").containsEntry("answer_topic", "config-response");

        assertThat(server.query("SELECT topic, reason FROM dead_letters WHERE esp_id LIKE 'ESP_VDI%'")).as("dead letters").isEmpty();
    }
}
