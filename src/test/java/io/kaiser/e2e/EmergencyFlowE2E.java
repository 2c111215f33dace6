package io.kaiser.e2e;

import java.time.Duration;
import java.time.Instant;
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

/**
 * Emergency stop of every device and its clear, with the firmware's virtual devices: every device acknowledges, every
 * actuator is off on REST, commands are refused with 423 while latched, and after the clear they run again.
 */
@Tag("e2e")
class EmergencyFlowE2E {
    static final List<String> DEVICES = List.of("ESP_EMG0001", "ESP_EMG0002");
    static E2eStack stack;

    @BeforeAll
    static void start() {
        stack = new E2eStack("e2eemg", Map.of(
                "kaiser.registration.auto-approve-patterns", "ESP_EMG.*",
                "kaiser.command.rate-limit.burst", "50")).start();
    }

    @AfterAll
    static void stop() {
        stack.close();
    }

    @Test
    @SuppressWarnings("unchecked")
    void should_stop_every_device_refuse_commands_while_latched_and_run_again_after_the_clear() {
        try (VirtualDevices devices = stack.devices("ESP_EMG", 2, FlowKit.chatty())) {
            for (String esp : DEVICES) {
                FlowKit.awaitReady(stack, esp, 5, 18);
            }
            await().atMost(WAIT).until(() -> devices.stat("registered") == 2);
            for (String esp : DEVICES) {
                assertThat(command(stack, "/actuators/" + esp + "/5/command", "{\"command\":\"ON\"}").json()).containsEntry("status", "applied");
                assertThat(command(stack, "/actuators/" + esp + "/18/command", "{\"command\":\"PWM\",\"value\":0.7}").json())
                        .containsEntry("status", "applied");
                FlowKit.awaitActuator(stack, esp, 5, "on");
                FlowKit.awaitActuator(stack, esp, 18, "pwm");
            }
            long commandsBefore = devices.stat("commands");

            Instant stoppedAt = Instant.now();
            Http.Response stop = Http.post(stack.baseUrl() + "/actuators/emergency_stop", "{\"reason\":\"flow test: smoke\"}");
            assertThat(stop.status()).as(stop.body()).isEqualTo(200);
            String incident = (String) stop.json().get("incident_id");
            assertThat(stop.json()).containsEntry("devices_stopped", 2).containsEntry("actuators_stopped", 4);

            // every device acknowledges, every actuator's OFF is applied
            await().atMost(WAIT).untilAsserted(() -> {
                Map<String, Object> view = Http.get(stack.baseUrl() + "/actuators/emergency/" + incident).json();
                assertThat(view).containsEntry("latched", true);
                assertThat(map(view.get("counts"))).containsEntry("acknowledged", 4).containsEntry("pending", 0)
                        .containsEntry("failed", 0).containsEntry("devices_acknowledged", 2);
                assertThat(map(view.get("broadcast"))).containsEntry("status", "applied");
                assertThat((List<Map<String, Object>>) view.get("devices")).hasSize(2);
            });
            // the actuators are off as the devices report them
            for (String esp : DEVICES) {
                for (int gpio : new int[] {5, 18}) {
                    await().atMost(WAIT).untilAsserted(() ->
                            assertThat(FlowKit.actuatorState(stack, esp, gpio)).isIn("off", "emergency_stop"));
                }
            }
            // each device executed the stop itself (emergency message and the OFF of each actuator)
            await().atMost(WAIT).until(() -> devices.stat("commands") >= commandsBefore + 4);

            // latched: commands are refused, for every device
            for (String esp : DEVICES) {
                Http.Response refused = Http.post(stack.baseUrl() + "/actuators/" + esp + "/5/command", "{\"command\":\"ON\"}");
                assertThat(refused.status()).isEqualTo(423);
                assertThat(refused.contentType()).startsWith("application/problem+json");
                assertThat((String) refused.json().get("detail")).contains(incident);
            }
            assertThat(FlowKit.actuatorState(stack, "ESP_EMG0001", 5)).isIn("off", "emergency_stop");

            // the firmware refuses a clear within 5 s of the stop (its hold-off): clear after it
            await().atMost(Duration.ofSeconds(30)).until(() -> Instant.now().isAfter(stoppedAt.plusSeconds(6)));
            Http.Response clear = Http.post(stack.baseUrl() + "/actuators/clear_emergency", "{\"reason\":\"flow test: all clear\"}");
            assertThat(clear.status()).as(clear.body()).isEqualTo(200);
            assertThat(clear.json()).containsEntry("devices_cleared", 2).containsEntry("cleared_incidents", List.of(incident));
            await().atMost(WAIT).untilAsserted(() -> {
                Map<String, Object> view = Http.get(stack.baseUrl() + "/actuators/emergency/" + incident).json();
                assertThat(view).containsEntry("latched", false);
                assertThat((List<Map<String, Object>>) view.get("clear_commands")).hasSize(2)
                        .allSatisfy(c -> assertThat(c).as("clear of %s", c.get("esp_id")).containsEntry("status", "applied"));
            });

            // released: the devices run commands again (their actuators stayed off until told)
            for (String esp : DEVICES) {
                assertThat(FlowKit.actuatorState(stack, esp, 5)).isEqualTo("off");
                Http.Response on = command(stack, "/actuators/" + esp + "/5/command", "{\"command\":\"ON\"}");
                assertThat(on.status()).as(on.body()).isEqualTo(200);
                assertThat(on.json()).containsEntry("status", "applied");
                FlowKit.awaitActuator(stack, esp, 5, "on");
            }
            assertThat(Http.post(stack.baseUrl() + "/actuators/clear_emergency", "{}").status()).isEqualTo(409);
        }
    }
}
