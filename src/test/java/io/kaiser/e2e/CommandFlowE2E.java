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
import static io.kaiser.e2e.FlowKit.actuatorStatus;
import static io.kaiser.e2e.FlowKit.command;
import static io.kaiser.e2e.FlowKit.map;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Every command type against the firmware's virtual device: REST waits for the device's answer (Prefer: wait), the
 * device really executed it (its own command counter), and the actuator's state on REST follows the device.
 * The vdev's default config: pump on gpio 5, PWM fan on gpio 18, ds18b20 on gpio 4.
 */
@Tag("e2e")
class CommandFlowE2E {
    static E2eStack stack;

    @BeforeAll
    static void start() {
        stack = new E2eStack("e2ecmd", Map.of(
                "kaiser.registration.auto-approve-patterns", "ESP_CMD.*",
                "kaiser.command.rate-limit.burst", "50")).start();
    }

    @AfterAll
    static void stop() {
        stack.close();
    }

    @Test
    void should_execute_on_off_pwm_and_toggle_and_show_the_devices_state() {
        try (VirtualDevices device = stack.devices("ESP_CMDA", 1, FlowKit.chatty())) {
            String esp = "ESP_CMDA0001";
            FlowKit.awaitReady(stack, esp, 5, 18);
            await().atMost(WAIT).until(() -> device.stat("registered") == 1);
            long before = device.stat("commands");

            Map<String, Object> on = FlowKit.applied(command(stack, "/actuators/" + esp + "/5/command", "{\"command\":\"ON\"}"));
            assertThat(on).containsEntry("answer_topic", "actuator-response");
            FlowKit.awaitActuator(stack, esp, 5, "on");
            assertThat(FlowKit.commandView(stack, (String) on.get("correlation_id"))).containsEntry("status", "applied");

            FlowKit.applied(command(stack, "/actuators/" + esp + "/5/command", "{\"command\":\"OFF\"}"));
            FlowKit.awaitActuator(stack, esp, 5, "off");

            FlowKit.applied(command(stack, "/actuators/" + esp + "/18/command", "{\"command\":\"PWM\",\"value\":0.5}"));
            FlowKit.awaitActuator(stack, esp, 18, "pwm");
            // the device reports its duty cycle (128/255)
            await().atMost(WAIT).untilAsserted(() -> assertThat(((Number) actuatorStatus(stack, esp, 18).json().get("value")).doubleValue())
                    .isCloseTo(0.5, org.assertj.core.data.Offset.offset(0.01)));

            FlowKit.applied(command(stack, "/actuators/" + esp + "/5/command", "{\"command\":\"TOGGLE\"}"));
            FlowKit.awaitActuator(stack, esp, 5, "on");
            FlowKit.applied(command(stack, "/actuators/" + esp + "/5/command", "{\"command\":\"TOGGLE\"}"));
            FlowKit.awaitActuator(stack, esp, 5, "off");

            // ON for 2 s: the device switches itself off and says so
            FlowKit.applied(command(stack, "/actuators/" + esp + "/5/command", "{\"command\":\"ON\",\"duration\":2}"));
            FlowKit.awaitActuator(stack, esp, 5, "off");

            // the device executed each of the 6 commands once
            await().atMost(WAIT).until(() -> device.stat("commands") >= before + 6);
            assertThat(device.stat("commands")).isEqualTo(before + 6);
            assertThat(device.stat("duplicates")).isZero();
            List<Map<String, Object>> history = Http.get(stack.baseUrl() + "/actuators/" + esp + "/5/history?limit=200").list("history");
            assertThat(history).filteredOn(h -> "response".equals(h.get("event"))).extracting(h -> h.get("command"))
                    .contains("ON", "OFF", "TOGGLE");
        }
    }

    @Test
    void should_show_the_devices_own_state_when_pwm_switches_a_pump_off_or_on() {
        try (VirtualDevices device = stack.devices("ESP_CMDB", 1, FlowKit.chatty())) {
            String esp = "ESP_CMDB0001";
            FlowKit.awaitReady(stack, esp, 5);
            await().atMost(WAIT).until(() -> device.stat("registered") == 1);
            // gpio 19 is no actuator on the device: the server does not know it either (404, nothing published)
            assertThat(Http.post(stack.baseUrl() + "/actuators/" + esp + "/19/command", "{\"command\":\"ON\"}").status()).isEqualTo(404);
            // PWM on a pump is on/off for the firmware (>= 0.5 is on): REST shows what the device reports, not the request
            FlowKit.applied(command(stack, "/actuators/" + esp + "/5/command", "{\"command\":\"PWM\",\"value\":0.8}"));
            FlowKit.awaitActuator(stack, esp, 5, "on");
            FlowKit.applied(command(stack, "/actuators/" + esp + "/5/command", "{\"command\":\"PWM\",\"value\":0.2}"));
            FlowKit.awaitActuator(stack, esp, 5, "off");
            assertThat(actuatorStatus(stack, esp, 5).json()).containsEntry("value", 0.0);
        }
    }

    @Test
    void should_measure_on_request_and_store_the_fresh_reading() {
        try (VirtualDevices device = stack.devices("ESP_CMDM", 1, "--heartbeat-s", "2", "--data-s", "300")) {
            String esp = "ESP_CMDM0001";
            FlowKit.awaitReady(stack, esp, 5);
            await().atMost(WAIT).until(() -> device.stat("registered") == 1);
            long readings = stack.count("SELECT count(*) FROM sensor_data WHERE esp_id = '" + esp + "' AND gpio = 4");
            long before = device.stat("commands");
            Map<String, Object> r = FlowKit.applied(Http.post(stack.baseUrl() + "/sensors/" + esp + "/4/measure", null, "Prefer", "wait=15"));
            assertThat(r).containsEntry("answer_topic", "sensor-response");
            assertThat(map(FlowKit.commandView(stack, (String) r.get("correlation_id")).get("answer"))).containsEntry("success", true);
            await().atMost(WAIT).until(() -> device.stat("commands") == before + 1);
            // the reading taken on request is stored like any other (the periodic interval is 300 s)
            await().atMost(WAIT).until(() ->
                    stack.count("SELECT count(*) FROM sensor_data WHERE esp_id = '" + esp + "' AND gpio = 4") > readings);
        }
    }

    @Test
    void should_answer_system_commands_in_the_firmware_vocabulary_and_reboot() {
        try (VirtualDevices device = stack.devices("ESP_CMDS", 1, FlowKit.chatty())) {
            String esp = "ESP_CMDS0001";
            FlowKit.awaitReady(stack, esp, 5);
            await().atMost(WAIT).until(() -> device.stat("registered") == 1);
            long before = device.stat("commands");

            Map<String, Object> status = FlowKit.applied(command(stack, "/esp/devices/" + esp + "/system-command", "{\"command\":\"status\"}"));
            assertThat(status).containsEntry("answer_topic", "system-command-response");
            assertThat(map(FlowKit.commandView(stack, (String) status.get("correlation_id")).get("answer")))
                    .containsEntry("command", "status").containsEntry("success", true);

            Map<String, Object> scan = FlowKit.applied(command(stack, "/esp/devices/" + esp + "/system-command",
                    "{\"command\":\"onewire/scan\",\"params\":{\"pin\":4}}"));
            Map<String, Object> scanned = map(FlowKit.commandView(stack, (String) scan.get("correlation_id")).get("answer"));
            assertThat(scanned).containsEntry("found_count", 1);

            FlowKit.applied(command(stack, "/esp/devices/" + esp + "/system-command", "{\"command\":\"diagnostics\"}"));
            FlowKit.applied(command(stack, "/esp/devices/" + esp + "/system-command", "{\"command\":\"set_log_level\",\"params\":{\"level\":\"DEBUG\"}}"));
            await().atMost(WAIT).until(() -> device.stat("commands") >= before + 4);

            // reboot: answered, then the device restarts (a new connection) and comes back online
            long connects = device.stat("connects");
            FlowKit.applied(command(stack, "/esp/devices/" + esp + "/system-command", "{\"command\":\"reboot\"}"));
            await().atMost(WAIT).until(() -> device.stat("connects") > connects && device.stat("registered") == 1);
            FlowKit.awaitStatus(stack, esp, "online");
            assertThat(device.stat("commands")).isEqualTo(before + 5);
        }
    }
}
