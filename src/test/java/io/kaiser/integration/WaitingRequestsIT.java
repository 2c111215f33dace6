package io.kaiser.integration;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import io.kaiser.support.Http;
import io.kaiser.support.KaiserServer;
import io.kaiser.support.ScriptedDevice;
import io.kaiser.support.ScriptedDevice.Mode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Many requests waiting for their commands at once. Camel's platform-http-vertx parks a Vert.x worker thread per
 * request while it waits; with Vert.x's default pool of 20 the 21st waiting caller queued behind the first 20.
 */
class WaitingRequestsIT {
    static final int CALLERS = 30;
    static final int WAIT_SECONDS = 3;
    static KaiserServer server;

    @BeforeAll
    static void start() {
        server = new KaiserServer("waiting", Map.of(
                "kaiser.registration.auto-approve", "true",
                "kaiser.command.rate-limit.per-second", "100",
                "kaiser.command.rate-limit.burst", "100")).start();
        await().atMost(Duration.ofSeconds(20)).until(() -> Http.get(server.baseUrl() + "/health").status() == 200);
    }

    @AfterAll
    static void stop() {
        server.stop();
    }

    @Test
    void should_let_more_callers_wait_at_once_than_vertx_has_worker_threads_by_default() throws Exception {
        try (ScriptedDevice dev = new ScriptedDevice(server, server.mqttUrl(), "ESP_WAIT01")) {
            dev.announce(5);
            await().atMost(Duration.ofSeconds(5)).until(() -> Http.get(server.baseUrl() + "/actuators/ESP_WAIT01/5/status").status() == 200);
            dev.mode(Mode.SILENT);
            ExecutorService callers = Executors.newFixedThreadPool(CALLERS);
            try {
                long start = System.nanoTime();
                List<Future<Http.Response>> answers = new ArrayList<>();
                for (int i = 0; i < CALLERS; i++) {
                    answers.add(callers.submit(() -> Http.post(server.baseUrl() + "/actuators/ESP_WAIT01/5/command", "{\"command\":\"ON\"}",
                            "Prefer", "wait=" + WAIT_SECONDS)));
                }
                for (Future<Http.Response> a : answers) {
                    assertThat(a.get().status()).isEqualTo(504);
                }
                // every caller waited its WAIT_SECONDS side by side; a caller queued behind 20 others would need twice that
                assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(WAIT_SECONDS * 2L - 1));
            } finally {
                callers.shutdownNow();
            }
        }
    }
}
