package io.kaiser.e2e;

import java.time.Duration;
import java.util.Map;

import io.kaiser.support.E2eStack;
import io.kaiser.support.Http;
import io.kaiser.support.VirtualDevices;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/** Boot and registration: a new device is pending, is approved over REST, and its next heartbeat makes it online. */
@Tag("e2e")
class RegistrationE2E {
    static E2eStack stack;

    @BeforeAll
    static void start() {
        stack = new E2eStack("e2ereg", Map.of()).start();
    }

    @AfterAll
    static void stop() {
        stack.close();
    }

    @Test
    void should_hold_a_new_device_pending_until_approved_then_bring_it_online() {
        try (VirtualDevices device = stack.devices("ESP_REG", 1, "--heartbeat-s", "2", "--data-s", "2")) {
            await().atMost(Duration.ofSeconds(30)).until(() ->
                    Http.get(stack.baseUrl() + "/esp/devices/pending").body().contains("ESP_REG0001"));
            // as in the original server, a pending device's readings are stored; what approval changes is its status
            assertThat(stack.count("SELECT count(*) FROM devices WHERE esp_id = 'ESP_REG0001' AND status = 'pending_approval'"))
                    .isEqualTo(1);

            assertThat(Http.post(stack.baseUrl() + "/esp/devices/ESP_REG0001/approve", "{}").status()).isEqualTo(200);

            await().atMost(Duration.ofSeconds(30)).until(() ->
                    stack.count("SELECT count(*) FROM devices WHERE esp_id = 'ESP_REG0001' AND status = 'online'") == 1
                            && stack.count("SELECT count(*) FROM sensor_data WHERE esp_id = 'ESP_REG0001'") > 0);
        }
    }
}
