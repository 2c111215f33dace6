package io.kaiser.e2e;

import java.util.List;
import java.util.Map;

import io.kaiser.support.E2eStack;
import io.kaiser.support.Http;
import io.kaiser.support.VirtualDevices;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import static io.kaiser.e2e.FlowKit.WAIT;
import static io.kaiser.e2e.FlowKit.command;
import static io.kaiser.e2e.FlowKit.map;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/** Config push, zone and subzone assignment against the firmware's virtual device: it acks, the server follows the ack. */
@Tag("e2e")
class ZoneConfigFlowE2E {
    static E2eStack stack;

    @BeforeAll
    static void start() {
        stack = new E2eStack("e2ezone", Map.of(
                "kaiser.registration.auto-approve-patterns", "ESP_ZC.*",
                "kaiser.command.rate-limit.burst", "50")).start();
    }

    @AfterAll
    static void stop() {
        stack.close();
    }

    static Map<String, Object> answer(Map<String, Object> result) {
        return map(FlowKit.commandView(stack, (String) result.get("correlation_id")).get("answer"));
    }

    /** The newest heartbeat the device sent, as stored. */
    static Map<String, Object> lastHeartbeat(String esp) {
        return stack.query("SELECT sensor_count, actuator_count, payload->>'zone_id' AS zone_id, payload->>'zone_assigned' AS zone_assigned FROM heartbeat_logs WHERE esp_id = '" + esp
                + "' ORDER BY received_at DESC LIMIT 1").get(0);
    }

    @Test
    void should_push_a_config_the_device_applies_and_reports_back() {
        try (VirtualDevices device = stack.devices("ESP_ZCC", 1, FlowKit.chatty())) {
            String esp = "ESP_ZCC0001";
            FlowKit.awaitReady(stack, esp, 5, 18);
            await().atMost(WAIT).until(() -> device.stat("registered") == 1);
            assertThat(FlowKit.actuatorStatus(stack, esp, 26).status()).isEqualTo(404);
            String config = """
                    {"sensors":[{"gpio":4,"sensor_type":"ds18b20","sensor_name":"Soil temp","onewire_address":"28FF641E8D3C0C79"},
                                {"gpio":32,"sensor_type":"moisture","sensor_name":"Bed moisture"}],
                     "actuators":[{"gpio":5,"actuator_type":"pump","actuator_name":"Pump"},
                                  {"gpio":18,"actuator_type":"pwm","actuator_name":"Fan"},
                                  {"gpio":26,"actuator_type":"relay","actuator_name":"Vent"}],
                     "offline_rules":[]}""";
            Map<String, Object> r = FlowKit.applied(command(stack, "/esp/devices/" + esp + "/config", config));
            assertThat(r).containsEntry("answer_topic", "config-response");
            assertThat(answer(r)).containsEntry("status", "success");
            // the device reports its new actuator, and its heartbeats count it
            FlowKit.awaitActuator(stack, esp, 26, "off");
            assertThat(FlowKit.actuatorStatus(stack, esp, 26).json()).containsEntry("actuator_type", "relay");
            // (sensors and actuators are upserted by gpio, offline rules replaced: pump, fan and the new vent)
            await().atMost(WAIT).until(() -> Integer.valueOf(3).equals(lastHeartbeat(esp).get("actuator_count")));
            // and it runs the new actuator
            FlowKit.applied(command(stack, "/actuators/" + esp + "/26/command", "{\"command\":\"ON\"}"));
            FlowKit.awaitActuator(stack, esp, 26, "on");

            // a config the device refuses (an actuator on the sensor's gpio): the command fails, nothing changes
            Http.Response bad = command(stack, "/esp/devices/" + esp + "/config",
                    "{\"actuators\":[{\"gpio\":4,\"actuator_type\":\"relay\",\"actuator_name\":\"Clash\"}]}");
            assertThat(bad.status()).as(bad.body()).isEqualTo(200);
            assertThat(bad.json()).as(bad.body()).containsEntry("status", "failed");
            assertThat(FlowKit.actuatorStatus(stack, esp, 4).status()).isEqualTo(404);
        }
    }

    @Test
    void should_assign_zone_and_subzones_and_remove_them_as_the_device_acks() {
        try (VirtualDevices device = stack.devices("ESP_ZCZ", 1, FlowKit.chatty())) {
            String esp = "ESP_ZCZ0001";
            FlowKit.awaitReady(stack, esp, 5);
            await().atMost(WAIT).until(() -> device.stat("registered") == 1);
            Map<String, Object> zone = FlowKit.applied(command(stack, "/zone/devices/" + esp + "/assign",
                    "{\"zone_id\":\"gh_flow\",\"master_zone_id\":\"gh\",\"zone_name\":\"Flow house\"}"));
            assertThat(zone).containsEntry("answer_topic", "zone-ack");
            assertThat(FlowKit.device(stack, esp)).containsEntry("zone_id", "gh_flow").containsEntry("master_zone_id", "gh")
                    .containsEntry("zone_name", "Flow house");
            // the device itself now says so in its heartbeats
            await().atMost(WAIT).until(() -> "gh_flow".equals(lastHeartbeat(esp).get("zone_id")));

            FlowKit.applied(command(stack, "/subzone/devices/" + esp + "/subzones/assign",
                    "{\"subzone_id\":\"bed_a\",\"subzone_name\":\"Bed A\",\"assigned_gpios\":[4,5]}"));
            List<Map<String, Object>> subzones = Http.get(stack.baseUrl() + "/subzone/devices/" + esp + "/subzones").list("subzones");
            assertThat(subzones).singleElement().satisfies(s -> assertThat(s).containsEntry("subzone_id", "bed_a")
                    .containsEntry("parent_zone_id", "gh_flow").containsEntry("assigned_gpios", List.of(4, 5)));

            FlowKit.applied(FlowKit.delete(stack.baseUrl() + "/subzone/devices/" + esp + "/subzones/bed_a/safe-mode", "Prefer", "wait=15"));
            assertThat(Http.get(stack.baseUrl() + "/subzone/devices/" + esp + "/subzones").list("subzones").get(0))
                    .containsEntry("safe_mode_active", false);
            FlowKit.applied(Http.post(stack.baseUrl() + "/subzone/devices/" + esp + "/subzones/bed_a/safe-mode", "{\"reason\":\"flow test\"}",
                    "Prefer", "wait=15"));
            assertThat(Http.get(stack.baseUrl() + "/subzone/devices/" + esp + "/subzones").list("subzones").get(0))
                    .containsEntry("safe_mode_active", true);

            FlowKit.applied(FlowKit.delete(stack.baseUrl() + "/subzone/devices/" + esp + "/subzones/bed_a", "Prefer", "wait=15"));
            assertThat(Http.get(stack.baseUrl() + "/subzone/devices/" + esp + "/subzones").list("subzones")).isEmpty();

            FlowKit.applied(FlowKit.delete(stack.baseUrl() + "/zone/devices/" + esp + "/zone", "Prefer", "wait=15"));
            assertThat(FlowKit.device(stack, esp)).containsEntry("zone_id", null);
            await().atMost(WAIT).until(() -> "false".equals(lastHeartbeat(esp).get("zone_assigned")));
        }
    }
}
