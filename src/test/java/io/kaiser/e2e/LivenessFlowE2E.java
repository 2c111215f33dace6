package io.kaiser.e2e;

import java.util.Map;

import io.kaiser.support.E2eStack;
import io.kaiser.support.LiveClient;
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
 * Liveness: a device that goes silent is marked offline after the heartbeat timeout; a device that dies is marked
 * offline at once by its last will; both come back online when they talk again. Offline means off for the server's
 * view of the actuators.
 */
@Tag("e2e")
class LivenessFlowE2E {
    static E2eStack stack;

    @BeforeAll
    static void start() {
        stack = new E2eStack("e2eliv", Map.of(
                "kaiser.registration.auto-approve-patterns", "ESP_LIV.*",
                "kaiser.heartbeat.timeout-seconds", "8",
                "kaiser.heartbeat.check-interval", "1s",
                "kaiser.command.rate-limit.burst", "50")).start();
    }

    @AfterAll
    static void stop() {
        stack.close();
    }

    @Test
    void should_mark_a_silent_device_offline_after_the_heartbeat_timeout_and_online_when_it_talks_again() {
        String esp = "ESP_LIVH0001";
        try (TcpLink link = stack.link();
             VirtualDevices device = stack.devices(link, "ESP_LIVH", 1, FlowKit.chatty());
             LiveClient live = new LiveClient(stack.wsUrl() + "?types=esp_health&esp_ids=" + esp)) {
            FlowKit.awaitReady(stack, esp, 5);
            await().atMost(WAIT).until(() -> device.stat("registered") == 1);
            assertThat(command(stack, "/actuators/" + esp + "/5/command", "{\"command\":\"ON\"}").json()).containsEntry("status", "applied");
            FlowKit.awaitActuator(stack, esp, 5, "on");

            // the link swallows everything but stays open: no will, the device itself notices nothing
            link.blackhole();
            Map<String, Object> offline = live.await(e -> "offline".equals(LiveClient.data(e).get("status")), WAIT);
            assertThat(offline).as("esp_health offline pushed live").isNotNull();
            assertThat(LiveClient.data(offline)).containsEntry("esp_id", esp).containsEntry("source", "heartbeat_timeout")
                    .containsEntry("timeout_seconds", 8);
            assertThat(FlowKit.status(stack, esp)).isEqualTo("offline");
            assertThat(map(FlowKit.device(stack, esp).get("last_disconnect"))).containsEntry("source", "heartbeat_timeout");
            assertThat(FlowKit.actuatorState(stack, esp, 5)).isEqualTo("off");
            assertThat(device.stat("disconnects")).isZero();

            // the link heals (the stale connection is reset): the device reconnects and is online again
            link.restore();
            FlowKit.awaitStatus(stack, esp, "online");
            await().atMost(WAIT).until(() -> device.stat("connects") >= 2 && device.stat("registered") == 1);
            // its pump kept running all along (nothing told it otherwise): it reports so after reconnecting
            FlowKit.awaitActuator(stack, esp, 5, "on");
        }
    }

    @Test
    void should_mark_a_killed_device_offline_by_its_will_and_online_when_it_comes_back() {
        String esp = "ESP_LIVW0001";
        try (LiveClient live = new LiveClient(stack.wsUrl() + "?types=esp_health&esp_ids=" + esp)) {
            VirtualDevices device = stack.devices("ESP_LIVW", 1, FlowKit.chatty());
            try {
                FlowKit.awaitReady(stack, esp, 5);
                await().atMost(WAIT).until(() -> device.stat("registered") == 1);
                assertThat(command(stack, "/actuators/" + esp + "/5/command", "{\"command\":\"ON\"}").json()).containsEntry("status", "applied");
                FlowKit.awaitActuator(stack, esp, 5, "on");
            } finally {
                device.kill(); // SIGKILL: no DISCONNECT, the broker publishes the will
            }
            Map<String, Object> offline = live.await(e -> "offline".equals(LiveClient.data(e).get("status")), WAIT);
            assertThat(offline).as("esp_health offline pushed live").isNotNull();
            assertThat(LiveClient.data(offline)).containsEntry("esp_id", esp).containsEntry("source", "lwt")
                    .containsEntry("reason", "unexpected_disconnect").containsEntry("actuator_states_reset", 1);
            assertThat(FlowKit.status(stack, esp)).isEqualTo("offline");
            assertThat(map(FlowKit.device(stack, esp).get("last_disconnect"))).containsEntry("source", "lwt")
                    .containsEntry("reason", "unexpected_disconnect");
            assertThat(FlowKit.actuatorState(stack, esp, 5)).isEqualTo("off");

            // powered up again: online, and its retained will is cleared so a new subscriber does not see it offline
            try (VirtualDevices again = stack.devices("ESP_LIVW", 1, FlowKit.chatty())) {
                FlowKit.awaitStatus(stack, esp, "online");
                await().atMost(WAIT).until(() -> again.stat("registered") == 1);
                Map<String, Object> online = live.await(e -> "online".equals(LiveClient.data(e).get("status")), WAIT);
                assertThat(online).as("esp_health online pushed live").isNotNull();
            }
        }
    }
}
