package io.kaiser.e2e;

import java.util.Map;

import io.kaiser.support.E2eStack;
import io.kaiser.support.Http;
import io.kaiser.support.VirtualDevices;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import static io.kaiser.e2e.FlowKit.WAIT;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Registration beyond the approve path of {@link RegistrationE2E}: an auto-approve pattern lets matching devices in at
 * once and holds the others; a rejected device is told so, reports it, takes no commands, and can be approved later.
 * (As in the original server, readings of a pending or rejected device that the server knows are stored.)
 */
@Tag("e2e")
class RegistrationFlowE2E {
    static E2eStack stack;

    @BeforeAll
    static void start() {
        stack = new E2eStack("e2eregf", Map.of("kaiser.registration.auto-approve-patterns", "ESP_AUTO.*")).start();
    }

    @AfterAll
    static void stop() {
        stack.close();
    }

    static long readings(String esp) {
        return stack.count("SELECT count(*) FROM sensor_data WHERE esp_id = '" + esp + "'");
    }

    @Test
    void should_let_devices_matching_the_auto_approve_pattern_in_and_hold_the_others() {
        try (VirtualDevices auto = stack.devices("ESP_AUTO", 2, FlowKit.chatty());
             VirtualDevices manual = stack.devices("ESP_MANU", 1, FlowKit.chatty())) {
            FlowKit.awaitStatus(stack, "ESP_AUTO0001", "online");
            FlowKit.awaitStatus(stack, "ESP_AUTO0002", "online");
            await().atMost(WAIT).until(() -> auto.stat("registered") == 2);
            await().atMost(WAIT).until(() -> readings("ESP_AUTO0001") > 0 && readings("ESP_AUTO0002") > 0);
            assertThat(FlowKit.device(stack, "ESP_AUTO0001")).containsEntry("approved_by", "auto-approve");

            await().atMost(WAIT).until(() -> Http.get(stack.baseUrl() + "/esp/devices/pending").body().contains("ESP_MANU0001"));
            assertThat(FlowKit.status(stack, "ESP_MANU0001")).isEqualTo("pending_approval");
            assertThat(Http.get(stack.baseUrl() + "/esp/devices/pending").body()).doesNotContain("ESP_AUTO");
            // a pending device takes no commands
            assertThat(Http.post(stack.baseUrl() + "/esp/devices/ESP_MANU0001/system-command", "{\"command\":\"status\"}").status())
                    .isEqualTo(409);
        }
    }

    @Test
    void should_tell_a_rejected_device_so_and_let_it_in_once_approved() {
        String esp = "ESP_REJ0001";
        try (VirtualDevices device = stack.devices("ESP_REJ", 1, FlowKit.chatty())) {
            FlowKit.awaitStatus(stack, esp, "pending_approval");
            Http.Response rejected = Http.post(stack.baseUrl() + "/esp/devices/" + esp + "/reject", "{\"reason\":\"unknown hardware\"}");
            assertThat(rejected.status()).as(rejected.body()).isEqualTo(200);
            assertThat(FlowKit.status(stack, esp)).isEqualTo("rejected");
            assertThat(FlowKit.device(stack, esp)).containsEntry("rejection_reason", "unknown hardware");
            // the next heartbeat ACK says rejected: the device reports error 4200 (rejected by server)
            await().atMost(WAIT).until(() -> Http.get(stack.baseUrl() + "/errors?esp_id=" + esp).body().contains("4200"));
            assertThat(FlowKit.status(stack, esp)).isEqualTo("rejected");
            assertThat(Http.post(stack.baseUrl() + "/esp/devices/" + esp + "/system-command", "{\"command\":\"status\"}").status())
                    .isEqualTo(409);

            // an operator changes their mind: approved, the device comes online and takes commands
            assertThat(Http.post(stack.baseUrl() + "/esp/devices/" + esp + "/approve", "{}").status()).isEqualTo(200);
            FlowKit.awaitStatus(stack, esp, "online");
            long data = readings(esp);
            await().atMost(WAIT).until(() -> readings(esp) > data);
            Http.Response status = FlowKit.command(stack, "/esp/devices/" + esp + "/system-command", "{\"command\":\"status\"}");
            assertThat(status.json()).as(status.body()).containsEntry("status", "applied");
            assertThat(FlowKit.device(stack, esp)).containsEntry("approved_by", "api");
        }
    }
}
