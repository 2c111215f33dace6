package io.kaiser.e2e;

import java.time.Instant;
import java.util.List;
import java.util.Map;

import io.kaiser.support.E2eStack;
import io.kaiser.support.Http;
import io.kaiser.support.TcpLink;
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

/**
 * Offline mode: a device cut off from the broker for longer than its grace period runs its offline rules on its own,
 * keeps its readings, and on reconnect hands over: a new session epoch, its actuators' real state and the buffered
 * readings reach the server, and its metrics count the offline episode.
 */
@Tag("e2e")
class OfflineFlowE2E {
    static E2eStack stack;

    @BeforeAll
    static void start() {
        stack = new E2eStack("e2eoff", Map.of(
                "kaiser.registration.auto-approve-patterns", "ESP_OFF.*",
                "kaiser.command.rate-limit.burst", "50")).start();
    }

    @AfterAll
    static void stop() {
        stack.close();
    }

    @Test
    void should_run_offline_rules_when_cut_off_and_hand_over_on_reconnect() {
        String esp = "ESP_OFF0001";
        try (TcpLink link = stack.link();
             VirtualDevices device = VirtualDevices.start(stack.kaiserId(), link.deviceUrl(), "ESP_OFF", 1,
                     "--heartbeat-s", "2", "--data-s", "1", "--offline-grace-s", "3")) {
            FlowKit.awaitReady(stack, esp, 5, 18);
            await().atMost(WAIT).until(() -> device.stat("registered") == 1);
            // offline rule: the pump (gpio 5) runs while the air (sht31 on gpio 21) is above 1 °C, i.e. always; the fan has no rule
            String config = """
                    {"sensors":[{"gpio":21,"sensor_type":"sht31","sensor_name":"Air","i2c_address":68,"measurement_interval_seconds":1},
                                {"gpio":4,"sensor_type":"ds18b20","sensor_name":"Soil","onewire_address":"28FF641E8D3C0C79","measurement_interval_seconds":1}],
                     "actuators":[{"gpio":5,"actuator_type":"pump","actuator_name":"Pump"},{"gpio":18,"actuator_type":"pwm","actuator_name":"Fan"}],
                     "offline_rules":[{"actuator_gpio":5,"sensor_gpio":21,"sensor_value_type":"sht31_temp","activate_above":1.0,"deactivate_below":0.5}]}""";
            assertThat(command(stack, "/esp/devices/" + esp + "/config", config).json()).containsEntry("status", "applied");
            assertThat(command(stack, "/actuators/" + esp + "/18/command", "{\"command\":\"PWM\",\"value\":0.6}").json())
                    .containsEntry("status", "applied");
            FlowKit.awaitActuator(stack, esp, 18, "pwm");
            FlowKit.awaitActuator(stack, esp, 5, "off");
            await().atMost(WAIT).until(() -> device.stat("actuators_on") == 1); // the fan
            long replayedBefore = device.stat("replayed");

            Instant cutAt = Instant.now();
            link.unreachable();
            // the broker sees the connection die: the server marks the device offline (LWT)
            FlowKit.awaitStatus(stack, esp, "offline");
            // after the grace period the device is in offline mode; its rule switches the pump on, the uncovered fan went off
            await().atMost(WAIT).until(() -> device.stat("offline_entered") == 1 && device.stat("offline_active") == 1);
            await().atMost(WAIT).until(() -> device.stat("actuators_on") == 1 && device.stat("buffered") > 0);
            Instant restoredAt = Instant.now();
            link.restore();

            // handover: online again, the handover of its offline session completed (the heartbeat says so), and the
            // device's own actuator state wins over the server's offline reset
            FlowKit.awaitStatus(stack, esp, "online");
            await().atMost(WAIT).until(() -> device.stat("offline_active") == 0);
            await().atMost(WAIT).until(() -> {
                Map<String, Object> hb = map(FlowKit.device(stack, esp).get("last_heartbeat"));
                return ((Number) hb.get("active_handover_epoch")).intValue() >= 1
                        && ((Number) hb.get("handover_completed_epoch")).intValue() == ((Number) hb.get("active_handover_epoch")).intValue();
            });
            FlowKit.awaitActuator(stack, esp, 5, "on");
            assertThat(FlowKit.actuatorStatus(stack, esp, 5).json()).containsEntry("command_source", "firmware:offline_rule");
            FlowKit.awaitActuator(stack, esp, 18, "off");

            // readings taken while cut off were buffered and replayed, with their own time
            await().atMost(WAIT).until(() -> device.stat("replayed") > replayedBefore);
            await().atMost(WAIT).until(() -> !Http.get(stack.baseUrl() + "/sensors/data?esp_id=" + esp + "&gpio=4&start_time="
                    + (cutAt.getEpochSecond() + 1) + "&end_time=" + (restoredAt.getEpochSecond() - 1)).list("readings").isEmpty());
            // its metrics count the offline episode, and the connection loss it reported arrives after the fact
            await().atMost(WAIT).until(() -> {
                Object metrics = FlowKit.device(stack, esp).get("heartbeat_metrics");
                return metrics instanceof Map<?, ?> m && Integer.valueOf(1).equals(m.get("offline_enter_count"));
            });
            await().atMost(WAIT).until(() -> Http.get(stack.baseUrl() + "/errors?esp_id=" + esp).body().contains("3014"));
            Map<String, Object> disconnect = map(FlowKit.device(stack, esp).get("last_disconnect"));
            assertThat(disconnect).containsEntry("source", "lwt");
            List<String> lines = device.lines();
            assertThat(lines).isNotEmpty();
        }
    }
}
