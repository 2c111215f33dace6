package io.kaiser.integration;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.networknt.schema.JsonSchema;
import com.networknt.schema.JsonSchemaFactory;
import com.networknt.schema.SpecVersion;
import io.kaiser.support.Http;
import io.kaiser.support.KaiserServer;
import org.eclipse.paho.mqttv5.client.IMqttToken;
import org.eclipse.paho.mqttv5.client.MqttCallback;
import org.eclipse.paho.mqttv5.client.MqttClient;
import org.eclipse.paho.mqttv5.client.MqttConnectionOptions;
import org.eclipse.paho.mqttv5.client.MqttDisconnectResponse;
import org.eclipse.paho.mqttv5.client.persist.MemoryPersistence;
import org.eclipse.paho.mqttv5.common.MqttException;
import org.eclipse.paho.mqttv5.common.MqttMessage;
import org.eclipse.paho.mqttv5.common.packet.MqttProperties;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Config push, zone and subzone commands against the real broker and database, with a device that answers like the
 * firmware (config_response, zone/ack, subzone/ack in the shapes of contract/vectors). The device's zone and subzones
 * in the database follow its acks, never the publish.
 */
class ZoneConfigIT {
    static KaiserServer server;

    @BeforeAll
    static void start() {
        server = new KaiserServer("zones", Map.of(
                "kaiser.registration.auto-approve", "true",
                "kaiser.command.ack-timeout.zone_assign", "2s",
                "kaiser.command.ack-timeout.subzone_assign", "2s",
                "kaiser.command.rate-limit.burst", "50")).start();
        await().atMost(Duration.ofSeconds(20)).until(() -> Http.get(server.baseUrl() + "/health").status() == 200);
    }

    @AfterAll
    static void stop() {
        server.stop();
    }

    static FirmwareDevice device(String esp) {
        FirmwareDevice d = new FirmwareDevice(esp);
        await().atMost(Duration.ofSeconds(5)).until(() -> {
            Http.Response r = Http.get(server.baseUrl() + "/esp/devices/" + esp);
            return r.status() == 200 && "online".equals(r.json().get("status"));
        });
        return d;
    }

    @Test
    void should_apply_a_config_push_and_keep_a_partial_success_with_its_failures() {
        try (FirmwareDevice dev = device("ESP_CFG01")) {
            String body = """
                    {"sensors":[{"gpio":4,"sensor_type":"ds18b20","sensor_name":"Soil temp","onewire_address":"28FF641E8D3C0C79"}],
                     "actuators":[{"gpio":5,"actuator_type":"pump","actuator_name":"Pump 1","max_runtime_ms":600000}],
                     "offline_rules":[{"actuator_gpio":5,"sensor_gpio":4,"activate_above":28.0,"deactivate_below":24.0}]}""";
            Http.Response r = Http.post(server.baseUrl() + "/esp/devices/ESP_CFG01/config", body, "Prefer", "wait=5");
            assertThat(r.status()).isEqualTo(200);
            assertThat(r.json()).containsEntry("status", "applied");
            String id = (String) r.json().get("correlation_id");
            Map<String, Object> sent = dev.received().get(0);
            assertThat(sent.get("_topic")).isEqualTo(server.topic("ESP_CFG01", "config"));
            assertThat(sent).containsEntry("correlation_id", id).containsEntry("intent_id", id).containsEntry("request_id", id)
                    .containsEntry("reason_code", "manual_config_sync").containsKeys("timestamp");
            assertThat(((Number) sent.get("generation")).longValue()).isGreaterThan(1_700_000_000_000L);
            assertThat((String) sent.get("config_fingerprint")).matches("[0-9a-f]{64}");
            assertThat((List<?>) sent.get("sensors")).hasSize(1);
            assertThat((List<?>) sent.get("offline_rules")).hasSize(1);
            Map<String, Object> view = Http.get(server.baseUrl() + "/commands/" + id).json();
            assertThat(view).containsEntry("command_type", "config").containsEntry("answer_topic", "config-response").containsEntry("qos", 2);

            dev.mode(Mode.PARTIAL);
            Http.Response partial = Http.post(server.baseUrl() + "/esp/devices/ESP_CFG01/config",
                    "{\"sensors\":[{\"gpio\":32,\"sensor_type\":\"moisture\",\"sensor_name\":\"Bed\"},{\"gpio\":33,\"sensor_type\":\"ph\"}]}",
                    "Prefer", "wait=5");
            assertThat(partial.status()).isEqualTo(200);
            assertThat(partial.json()).containsEntry("status", "applied");
            Map<String, Object> answer = asMap(Http.get(server.baseUrl() + "/commands/" + partial.json().get("correlation_id")).json().get("answer"));
            assertThat(answer).containsEntry("status", "partial_success").containsEntry("failed_count", 1);
            assertThat((List<?>) answer.get("failures")).hasSize(1);
            // the same config gives the same fingerprint, a new generation
            Http.post(server.baseUrl() + "/esp/devices/ESP_CFG01/config", body, "Prefer", "wait=5");
            Map<String, Object> again = dev.received().get(2);
            assertThat(again.get("config_fingerprint")).isEqualTo(sent.get("config_fingerprint"));
            assertThat(((Number) again.get("generation")).longValue()).isGreaterThanOrEqualTo(((Number) sent.get("generation")).longValue());
        }
    }

    @Test
    void should_refuse_a_config_over_4352_bytes_with_413_and_publish_nothing() {
        try (FirmwareDevice dev = device("ESP_CFG02")) {
            StringBuilder sensors = new StringBuilder();
            for (int i = 0; i < 40; i++) {
                sensors.append(i == 0 ? "" : ",").append("{\"gpio\":4,\"sensor_type\":\"ds18b20\",\"sensor_name\":\"Soil temperature probe number ")
                        .append(i).append("\",\"onewire_address\":\"28FF641E8D3C0C79\"}");
            }
            Http.Response r = Http.post(server.baseUrl() + "/esp/devices/ESP_CFG02/config", "{\"sensors\":[" + sensors + "]}");
            assertThat(r.status()).isEqualTo(413);
            assertThat(r.contentType()).startsWith("application/problem+json");
            assertThat((String) r.json().get("detail")).contains("4352");
            assertThat(server.count("SELECT count(*) FROM commands WHERE esp_id = 'ESP_CFG02'")).isZero();
            // a config just under the limit goes out
            Http.Response small = Http.post(server.baseUrl() + "/esp/devices/ESP_CFG02/config",
                    "{\"sensors\":[" + sensors.substring(0, sensors.length() / 3).replaceAll(",\\{[^{]*$", "") + "]}", "Prefer", "wait=5");
            assertThat(small.status()).isEqualTo(200);
            assertThat(dev.received()).hasSize(1);
            assertThat(dev.receivedBytes().get(0)).isLessThanOrEqualTo(4352);
        }
    }

    @Test
    void should_publish_a_config_of_exactly_4352_bytes_and_refuse_one_byte_more() {
        try (FirmwareDevice dev = device("ESP_CFG04")) {
            String probe = "{\"sensors\":[{\"gpio\":4,\"sensor_type\":\"ds18b20\",\"sensor_name\":\"" + "x".repeat(10) + "\"}]}";
            assertThat(Http.post(server.baseUrl() + "/esp/devices/ESP_CFG04/config", probe, "Prefer", "wait=5").status()).isEqualTo(200);
            int fill = 10 + 4352 - dev.receivedBytes().get(0);
            String exact = "{\"sensors\":[{\"gpio\":4,\"sensor_type\":\"ds18b20\",\"sensor_name\":\"" + "x".repeat(fill) + "\"}]}";
            assertThat(Http.post(server.baseUrl() + "/esp/devices/ESP_CFG04/config", exact, "Prefer", "wait=5").status()).isEqualTo(200);
            assertThat(dev.receivedBytes().get(1)).isEqualTo(4352);
            String over = "{\"sensors\":[{\"gpio\":4,\"sensor_type\":\"ds18b20\",\"sensor_name\":\"" + "x".repeat(fill + 1) + "\"}]}";
            assertThat(Http.post(server.baseUrl() + "/esp/devices/ESP_CFG04/config", over).status()).isEqualTo(413);
            assertThat(dev.received()).hasSize(2);
        }
    }

    @Test
    void should_refuse_zone_commands_to_an_emergency_stopped_device_with_423() {
        try (FirmwareDevice dev = device("ESP_ZONE05")) {
            server.query("INSERT INTO emergency_latches (scope, incident_id, reason) VALUES ('ESP_ZONE05', 'inc-zone-1', 'test') RETURNING 1");
            try {
                assertThat(Http.post(server.baseUrl() + "/zone/devices/ESP_ZONE05/assign", "{\"zone_id\":\"gh\"}").status()).isEqualTo(423);
                assertThat(Http.post(server.baseUrl() + "/esp/devices/ESP_ZONE05/config", "{\"sensors\":[]}").status()).isEqualTo(423);
                assertThat(delete("/subzone/devices/ESP_ZONE05/subzones/bed_a").status()).isEqualTo(423);
            } finally {
                server.query("DELETE FROM emergency_latches WHERE scope = 'ESP_ZONE05' RETURNING 1");
            }
            assertThat(dev.received()).isEmpty();
        }
    }

    @Test
    void should_refuse_an_invalid_config_with_400_naming_the_field() {
        try (FirmwareDevice dev = device("ESP_CFG03")) {
            assertThat(detail400("/esp/devices/ESP_CFG03/config",
                    "{\"sensors\":[{\"gpio\":4,\"sensor_type\":\"ds18b20\"},{\"gpio\":49,\"sensor_type\":\"sht31\"}]}")).contains("sensors[1].gpio");
            assertThat(detail400("/esp/devices/ESP_CFG03/config", "{\"sensors\":[{\"gpio\":4}]}")).contains("sensors[0].sensor_type");
            assertThat(detail400("/esp/devices/ESP_CFG03/config", "{\"actuators\":[{\"gpio\":5}]}")).contains("actuators[0].actuator_type");
            assertThat(detail400("/esp/devices/ESP_CFG03/config", "{\"actuators\":[{\"gpio\":\"5\",\"actuator_type\":\"relay\"}]}"))
                    .contains("actuators[0].gpio");
            assertThat(detail400("/esp/devices/ESP_CFG03/config", "{\"offline_rules\":[{\"actuator_gpio\":5}]}")).contains("offline_rules[0].sensor_gpio");
            assertThat(detail400("/esp/devices/ESP_CFG03/config", "{\"sensors\":{\"gpio\":4}}")).contains("sensors");
            assertThat(detail400("/esp/devices/ESP_CFG03/config", "{\"sensors\":[4]}")).contains("sensors[0]");
            assertThat(detail400("/esp/devices/ESP_CFG03/config", "{\"wifi\":{}}")).contains("wifi");
            assertThat(Http.post(server.baseUrl() + "/esp/devices/ESP_NOPE/config", "{\"sensors\":[]}").status()).isEqualTo(404);
            assertThat(dev.received()).isEmpty();
        }
    }

    @Test
    void should_show_the_zone_only_after_the_ack_and_time_out_when_the_device_is_silent() {
        try (FirmwareDevice dev = device("ESP_ZONE01")) {
            dev.mode(Mode.SILENT);
            Http.Response silent = Http.post(server.baseUrl() + "/zone/devices/ESP_ZONE01/assign",
                    "{\"zone_id\":\"gh_1\",\"master_zone_id\":\"gh\",\"zone_name\":\"Greenhouse 1\"}", "Prefer", "wait=1");
            assertThat(silent.status()).isEqualTo(504);
            String timedOut = (String) silent.json().get("correlation_id");
            await().atMost(Duration.ofSeconds(5)).untilAsserted(() ->
                    assertThat(Http.get(server.baseUrl() + "/commands/" + timedOut).json()).containsEntry("status", "timed_out"));
            assertThat(Http.get(server.baseUrl() + "/esp/devices/ESP_ZONE01").json()).containsEntry("zone_id", null).containsEntry("zone_name", null);

            dev.mode(Mode.ANSWER);
            Http.Response r = Http.post(server.baseUrl() + "/zone/devices/ESP_ZONE01/assign",
                    "{\"zone_id\":\"gh_1\",\"master_zone_id\":\"gh\",\"zone_name\":\"Greenhouse 1\"}", "Prefer", "wait=5");
            assertThat(r.status()).isEqualTo(200);
            assertThat(r.json()).containsEntry("status", "applied");
            assertThat(Http.get(server.baseUrl() + "/esp/devices/ESP_ZONE01").json()).containsEntry("zone_id", "gh_1")
                    .containsEntry("master_zone_id", "gh").containsEntry("zone_name", "Greenhouse 1");
            Map<String, Object> sent = dev.received().get(1);
            assertThat(sent.get("_topic")).isEqualTo(server.topic("ESP_ZONE01", "zone/assign"));
            assertThat(sent).containsEntry("zone_id", "gh_1").containsEntry("kaiser_id", server.kaiserId())
                    .containsEntry("correlation_id", r.json().get("correlation_id"));
        }
    }

    @Test
    void should_clear_the_zone_when_the_device_acks_its_removal() {
        try (FirmwareDevice dev = device("ESP_ZONE02")) {
            assertThat(Http.post(server.baseUrl() + "/zone/devices/ESP_ZONE02/assign", "{\"zone_id\":\"bed-2\",\"zone_name\":\"Bed\"}",
                    "Prefer", "wait=5").json()).containsEntry("status", "applied");
            assertThat(Http.get(server.baseUrl() + "/esp/devices/ESP_ZONE02").json()).containsEntry("zone_id", "bed-2");
            assertThat(Http.post(server.baseUrl() + "/subzone/devices/ESP_ZONE02/subzones/assign", "{\"subzone_id\":\"row_1\",\"assigned_gpios\":[4]}",
                    "Prefer", "wait=5").json()).containsEntry("status", "applied");
            assertThat(server.count("SELECT count(*) FROM subzones WHERE esp_id = 'ESP_ZONE02'")).isEqualTo(1);
            Http.Response r = delete("/zone/devices/ESP_ZONE02/zone", "Prefer", "wait=5");
            assertThat(r.status()).isEqualTo(200);
            assertThat(r.json()).containsEntry("status", "applied");
            assertThat(dev.received().get(2)).containsEntry("zone_id", "").containsEntry("master_zone_id", "");
            assertThat(Http.get(server.baseUrl() + "/commands/" + r.json().get("correlation_id")).json()).containsEntry("command_type", "zone_remove");
            assertThat(Http.get(server.baseUrl() + "/esp/devices/ESP_ZONE02").json()).containsEntry("zone_id", null).containsEntry("zone_name", null);
            // the firmware deletes its subzones with the zone
            assertThat(server.count("SELECT count(*) FROM subzones WHERE esp_id = 'ESP_ZONE02'")).isZero();
        }
    }

    @Test
    void should_refuse_invalid_zone_and_subzone_requests_with_400() {
        try (FirmwareDevice dev = device("ESP_ZONE03")) {
            assertThat(detail400("/zone/devices/ESP_ZONE03/assign", "{\"zone_id\":\"green house\"}")).contains("zone_id");
            assertThat(detail400("/zone/devices/ESP_ZONE03/assign", "{\"zone_id\":\"" + "z".repeat(33) + "\"}")).contains("zone_id");
            assertThat(detail400("/zone/devices/ESP_ZONE03/assign", "{}")).contains("zone_id");
            assertThat(detail400("/subzone/devices/ESP_ZONE03/subzones/assign", "{\"subzone_id\":\"" + "s".repeat(33) + "\"}")).contains("subzone_id");
            assertThat(detail400("/subzone/devices/ESP_ZONE03/subzones/assign", "{\"subzone_id\":\"a\",\"assigned_gpios\":[4,49]}"))
                    .contains("assigned_gpios[1]");
            List<Integer> many = new ArrayList<>();
            for (int i = 0; i < 21; i++) {
                many.add(i);
            }
            assertThat(detail400("/subzone/devices/ESP_ZONE03/subzones/assign", "{\"subzone_id\":\"a\",\"assigned_gpios\":" + many + "}"))
                    .contains("assigned_gpios");
            assertThat(detail400("/subzone/devices/ESP_ZONE03/subzones/assign", "{\"subzone_id\":\"a\",\"assigned_gpios\":[4]}"))
                    .contains("has no zone");
            assertThat(Http.post(server.baseUrl() + "/zone/devices/ESP_NOPE/assign", "{\"zone_id\":\"gh\"}").status()).isEqualTo(404);
            assertThat(Http.post(server.baseUrl() + "/subzone/devices/ESP_NOPE/subzones/assign", "{\"subzone_id\":\"a\"}").status()).isEqualTo(404);
            assertThat(Http.get(server.baseUrl() + "/subzone/devices/ESP_NOPE/subzones").status()).isEqualTo(404);
            assertThat(dev.received()).isEmpty();
        }
    }

    @Test
    void should_follow_subzone_acks_in_the_subzones_table() {
        try (FirmwareDevice dev = device("ESP_SUB01")) {
            assertThat(Http.post(server.baseUrl() + "/zone/devices/ESP_SUB01/assign", "{\"zone_id\":\"gh_1\"}", "Prefer", "wait=5").json())
                    .containsEntry("status", "applied");
            assertThat(detail400("/subzone/devices/ESP_SUB01/subzones/assign", "{\"subzone_id\":\"a\",\"parent_zone_id\":\"gh_2\"}"))
                    .contains("parent_zone_id");
            dev.received().clear();
            Http.Response r = Http.post(server.baseUrl() + "/subzone/devices/ESP_SUB01/subzones/assign",
                    "{\"subzone_id\":\"bed_a\",\"subzone_name\":\"Bed A\",\"parent_zone_id\":\"gh_1\",\"assigned_gpios\":[4,5,5]}",
                    "Prefer", "wait=5");
            assertThat(r.status()).isEqualTo(200);
            assertThat(r.json()).containsEntry("status", "applied");
            assertThat(dev.received().get(0)).containsEntry("assigned_gpios", List.of(4, 5)).containsEntry("safe_mode_active", true)
                    .containsEntry("_topic", server.topic("ESP_SUB01", "subzone/assign"));
            assertThat(subzone("ESP_SUB01", "bed_a")).containsEntry("gpios", "4,5").containsEntry("subzone_name", "Bed A")
                    .containsEntry("parent_zone_id", "gh_1").containsEntry("safe_mode_active", true);
            assertThat(Http.post(server.baseUrl() + "/subzone/devices/ESP_SUB01/subzones/assign",
                    "{\"subzone_id\":\"bed_b\",\"assigned_gpios\":[12],\"safe_mode_active\":false}", "Prefer", "wait=5").json())
                    .containsEntry("status", "applied");
            List<Map<String, Object>> listed = Http.get(server.baseUrl() + "/subzone/devices/ESP_SUB01/subzones").list("subzones");
            assertThat(listed).hasSize(2);
            assertThat(listed.get(0)).containsEntry("subzone_id", "bed_a").containsEntry("assigned_gpios", List.of(4, 5));
            // no parent given: the device's zone
            assertThat(listed.get(1)).containsEntry("subzone_id", "bed_b").containsEntry("parent_zone_id", "gh_1")
                    .containsEntry("safe_mode_active", false);
            dev.received().remove(1);

            Http.Response off = delete("/subzone/devices/ESP_SUB01/subzones/bed_a/safe-mode", "Prefer", "wait=5");
            assertThat(off.json()).containsEntry("status", "applied");
            assertThat(dev.received().get(1)).containsEntry("action", "disable").containsEntry("_topic", server.topic("ESP_SUB01", "subzone/safe"));
            assertThat(subzone("ESP_SUB01", "bed_a")).containsEntry("safe_mode_active", false);

            Http.Response on = Http.post(server.baseUrl() + "/subzone/devices/ESP_SUB01/subzones/bed_a/safe-mode", "{\"reason\":\"maintenance\"}",
                    "Prefer", "wait=5");
            assertThat(on.json()).containsEntry("status", "applied");
            assertThat(dev.received().get(2)).containsEntry("action", "enable").containsEntry("reason", "maintenance");
            assertThat(subzone("ESP_SUB01", "bed_a")).containsEntry("safe_mode_active", true);

            Http.Response removed = delete("/subzone/devices/ESP_SUB01/subzones/bed_a", "Prefer", "wait=5");
            assertThat(removed.json()).containsEntry("status", "applied");
            assertThat(dev.received().get(3)).containsEntry("_topic", server.topic("ESP_SUB01", "subzone/remove"));
            assertThat(server.count("SELECT count(*) FROM subzones WHERE esp_id = 'ESP_SUB01' AND subzone_id = 'bed_a'")).isZero();
            assertThat(Http.get(server.baseUrl() + "/subzone/devices/ESP_SUB01/subzones").list("subzones")).hasSize(1);
        }
    }

    @Test
    void should_leave_the_subzones_unchanged_when_the_device_does_not_answer() {
        try (FirmwareDevice dev = device("ESP_SUB02")) {
            Http.post(server.baseUrl() + "/zone/devices/ESP_SUB02/assign", "{\"zone_id\":\"gh_2\"}", "Prefer", "wait=5");
            dev.mode(Mode.SILENT);
            Http.Response r = Http.post(server.baseUrl() + "/subzone/devices/ESP_SUB02/subzones/assign",
                    "{\"subzone_id\":\"bed_b\",\"assigned_gpios\":[12]}");
            assertThat(r.status()).isEqualTo(202);
            String id = (String) r.json().get("correlation_id");
            await().atMost(Duration.ofSeconds(5)).untilAsserted(() ->
                    assertThat(Http.get(server.baseUrl() + "/commands/" + id).json()).containsEntry("status", "timed_out"));
            assertThat(server.count("SELECT count(*) FROM subzones WHERE esp_id = 'ESP_SUB02'")).isZero();
        }
    }

    @Test
    void should_fail_the_command_on_an_error_ack_and_change_nothing() {
        try (FirmwareDevice dev = device("ESP_ERR01")) {
            Http.post(server.baseUrl() + "/zone/devices/ESP_ERR01/assign", "{\"zone_id\":\"gh_8\",\"zone_name\":\"Eight\"}", "Prefer", "wait=5");
            dev.mode(Mode.ERROR);
            Http.Response zone = Http.post(server.baseUrl() + "/zone/devices/ESP_ERR01/assign", "{\"zone_id\":\"gh_9\"}", "Prefer", "wait=5");
            assertThat(zone.status()).isEqualTo(200);
            assertThat(zone.json()).containsEntry("status", "failed");
            assertThat(Http.get(server.baseUrl() + "/esp/devices/ESP_ERR01").json()).containsEntry("zone_id", "gh_8").containsEntry("zone_name", "Eight");
            Http.Response sub = Http.post(server.baseUrl() + "/subzone/devices/ESP_ERR01/subzones/assign",
                    "{\"subzone_id\":\"bed_c\",\"assigned_gpios\":[4]}", "Prefer", "wait=5");
            assertThat(sub.json()).containsEntry("status", "failed");
            assertThat(server.count("SELECT count(*) FROM subzones WHERE esp_id = 'ESP_ERR01'")).isZero();
            Http.Response cfg = Http.post(server.baseUrl() + "/esp/devices/ESP_ERR01/config",
                    "{\"actuators\":[{\"gpio\":5,\"actuator_type\":\"relay\"}]}", "Prefer", "wait=5");
            assertThat(cfg.json()).containsEntry("status", "failed");
            assertThat(Http.get(server.baseUrl() + "/commands/" + cfg.json().get("correlation_id")).json())
                    .containsEntry("status_reason", "GPIO conflict");
        }
    }

    @Test
    void should_replay_an_idempotent_zone_assign_without_publishing_again() {
        try (FirmwareDevice dev = device("ESP_ZONE04")) {
            Http.Response first = Http.post(server.baseUrl() + "/zone/devices/ESP_ZONE04/assign", "{\"zone_id\":\"gh_4\"}",
                    "Idempotency-Key", "zone-k1", "Prefer", "wait=5");
            Http.Response again = Http.post(server.baseUrl() + "/zone/devices/ESP_ZONE04/assign", "{\"zone_id\":\"gh_4\"}",
                    "Idempotency-Key", "zone-k1", "Prefer", "wait=5");
            assertThat(again.json().get("correlation_id")).isEqualTo(first.json().get("correlation_id"));
            assertThat(again.json()).containsEntry("status", "applied");
            assertThat(Http.post(server.baseUrl() + "/zone/devices/ESP_ZONE04/assign", "{\"zone_id\":\"gh_5\"}",
                    "Idempotency-Key", "zone-k1").status()).isEqualTo(422);
            assertThat(dev.received()).hasSize(1);
        }
    }

    // ------------------------------------------------------------------ helpers

    private static String detail400(String path, String body) {
        Http.Response r = Http.post(server.baseUrl() + path, body);
        assertThat(r.status()).as(body).isEqualTo(400);
        assertThat(r.contentType()).startsWith("application/problem+json");
        return (String) r.json().get("detail");
    }

    private static Map<String, Object> subzone(String esp, String subzone) {
        List<Map<String, Object>> rows = server.query("SELECT subzone_name, parent_zone_id, array_to_string(assigned_gpios, ',') AS gpios, "
                + "safe_mode_active FROM subzones WHERE esp_id = '" + esp + "' AND subzone_id = '" + subzone + "'");
        assertThat(rows).hasSize(1);
        return rows.get(0);
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> asMap(Object o) {
        return (Map<String, Object>) o;
    }

    private static Http.Response delete(String path, String... headers) {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(server.baseUrl() + path)).DELETE();
        for (int i = 0; i + 1 < headers.length; i += 2) {
            b.header(headers[i], headers[i + 1]);
        }
        try {
            HttpResponse<String> r = HttpClient.newHttpClient().send(b.timeout(Duration.ofSeconds(20)).build(), HttpResponse.BodyHandlers.ofString());
            return new Http.Response(r.statusCode(), r.headers().firstValue("Content-Type").orElse(""), r.body(), r.headers());
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    enum Mode { ANSWER, SILENT, PARTIAL, ERROR }

    /**
     * A device that answers config, zone/assign and subzone/* like the firmware (contract/vectors config-response,
     * zone-ack, subzone-ack), echoing the command's correlation_id.
     */
    static final class FirmwareDevice implements AutoCloseable {
        private static final ObjectMapper JSON = new ObjectMapper();
        private final String espId;
        private final MqttClient client;
        private final List<Map<String, Object>> received = new CopyOnWriteArrayList<>();
        private final List<Integer> receivedBytes = new CopyOnWriteArrayList<>();
        private final List<String> schemaErrors = new CopyOnWriteArrayList<>();
        private final AtomicInteger seq = new AtomicInteger();
        private volatile Mode mode = Mode.ANSWER;

        FirmwareDevice(String espId) {
            this.espId = espId;
            try {
                client = new MqttClient(server.mqttUrl(), espId + "-" + server.kaiserId(), new MemoryPersistence());
                client.setCallback(new MqttCallback() {
                    public void disconnected(MqttDisconnectResponse r) { }
                    public void mqttErrorOccurred(MqttException e) { }
                    public void messageArrived(String topic, MqttMessage m) throws Exception {
                        onCommand(topic, m);
                    }
                    public void deliveryComplete(IMqttToken t) { }
                    public void connectComplete(boolean reconnect, String uri) { }
                    public void authPacketArrived(int code, MqttProperties p) { }
                });
                client.connect(new MqttConnectionOptions());
                client.subscribe(server.topic(espId, "config"), 2);
                client.subscribe(server.topic(espId, "zone/assign"), 1);
                // like the firmware: assign, remove and safe one by one (subzone/+ would also match its own subzone/ack)
                client.subscribe(server.topic(espId, "subzone/assign"), 1);
                client.subscribe(server.topic(espId, "subzone/remove"), 1);
                client.subscribe(server.topic(espId, "subzone/safe"), 1);
            } catch (MqttException e) {
                throw new IllegalStateException(e);
            }
            publish(server.topic(espId, "system/heartbeat"), "{\"ts\":1735818000,\"uptime\":1,\"heap_free\":1,\"wifi_rssi\":-50}", 0);
        }

        FirmwareDevice mode(Mode m) {
            this.mode = m;
            return this;
        }

        List<Map<String, Object>> received() {
            return received;
        }

        List<Integer> receivedBytes() {
            return receivedBytes;
        }

        @SuppressWarnings("unchecked")
        private void onCommand(String topic, MqttMessage m) throws Exception {
            Map<String, Object> cmd = JSON.readValue(m.getPayload(), Map.class);
            receivedBytes.add(m.getPayload().length);
            String schema = topic.endsWith("/config") ? "config" : topic.endsWith("/zone/assign") ? "zone-assign"
                    : "subzone-" + topic.substring(topic.lastIndexOf('/') + 1);
            schemaErrors.addAll(schema(schema).validate(JSON.readTree(m.getPayload())).stream().map(e -> schema + ": " + e.getMessage()).toList());
            cmd.put("_topic", topic);
            received.add(cmd);
            if (mode == Mode.SILENT) {
                return;
            }
            String corr = (String) cmd.get("correlation_id");
            long ts = System.currentTimeMillis() / 1000;
            int n = seq.incrementAndGet();
            if (topic.endsWith("/config")) {
                String answer = switch (mode) {
                    case PARTIAL -> "{\"seq\":" + n + ",\"status\":\"partial_success\",\"type\":\"sensor\",\"count\":1,\"failed_count\":1,"
                            + "\"message\":\"1 item(s) configured, 1 failed\",\"failures\":[{\"type\":\"sensor\",\"gpio\":33,\"error_code\":2011,"
                            + "\"error\":\"MISSING_FIELD\",\"detail\":\"sensor_name is required\"}],\"correlation_id\":\"" + corr + "\"}";
                    case ERROR -> "{\"seq\":" + n + ",\"status\":\"error\",\"type\":\"system\",\"count\":0,\"failed_count\":1,"
                            + "\"error_code\":\"GPIO_CONFLICT\",\"message\":\"GPIO conflict\",\"correlation_id\":\"" + corr + "\"}";
                    default -> "{\"seq\":" + n + ",\"status\":\"success\",\"type\":\"system\",\"count\":3,\"failed_count\":0,"
                            + "\"message\":\"Configured 3 item(s) successfully\",\"correlation_id\":\"" + corr + "\"}";
                };
                publish(server.topic(espId, "config_response"), answer, 2);
            } else if (topic.endsWith("/zone/assign")) {
                String zone = (String) cmd.get("zone_id");
                String status = mode == Mode.ERROR ? "error" : zone.isEmpty() ? "zone_removed" : "zone_assigned";
                publish(server.topic(espId, "zone/ack"), "{\"esp_id\":\"" + espId + "\",\"status\":\"" + status + "\",\"zone_id\":\"" + zone
                        + "\",\"master_zone_id\":\"" + cmd.get("master_zone_id") + "\",\"ts\":" + ts + ",\"seq\":" + n
                        + (mode == Mode.ERROR ? ",\"reason_code\":\"CONFIG_LANE_BUSY\",\"message\":\"config lane busy\"" : "")
                        + ",\"correlation_id\":\"" + corr + "\"}", 1);
            } else {
                String status;
                if (mode == Mode.ERROR) {
                    status = "error";
                } else if (topic.endsWith("/assign")) {
                    status = "subzone_assigned";
                } else if (topic.endsWith("/remove")) {
                    status = "subzone_removed";
                } else {
                    status = "enable".equals(cmd.get("action")) ? "safe_mode_enabled" : "safe_mode_disabled";
                }
                publish(server.topic(espId, "subzone/ack"), "{\"esp_id\":\"" + espId + "\",\"status\":\"" + status + "\",\"subzone_id\":\""
                        + cmd.get("subzone_id") + "\",\"timestamp\":" + ts + ",\"seq\":" + n
                        + (mode == Mode.ERROR ? ",\"error_code\":2501,\"message\":\"gpio already assigned\"" : "")
                        + ",\"correlation_id\":\"" + corr + "\"}", 1);
            }
        }

        private static JsonSchema schema(String name) throws java.io.IOException {
            try (var in = Files.newInputStream(Path.of("contract/schemas", name + ".schema.json"))) {
                return JsonSchemaFactory.getInstance(SpecVersion.VersionFlag.V7).getSchema(in);
            }
        }

        private void publish(String topic, String payload, int qos) {
            try {
                client.publish(topic, payload.getBytes(StandardCharsets.UTF_8), qos, false);
            } catch (MqttException e) {
                throw new IllegalStateException(e);
            }
        }

        /** Every payload the server sent must match its schema in contract/schemas. */
        @Override
        public void close() {
            assertThat(schemaErrors).as("server-to-device payloads against contract/schemas").isEmpty();
            try {
                client.disconnect();
                client.close();
            } catch (MqttException ignored) {
                // closing
            }
        }
    }
}
