package io.kaiser.e2e;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;

import io.kaiser.support.E2eStack;
import io.kaiser.support.Http;
import io.kaiser.support.VirtualDevices;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Fault: the server process is killed with SIGKILL under load, with actuator commands in every stage (just
 * accepted, in the outbox, published, answered) and started again. Nothing it acknowledged is lost, every command
 * ends in a truthful final state (applied when the device did it, timed_out/expired otherwise; none stays
 * pending), no command runs twice on a device, and the outbox drains.
 */
@Tag("e2e")
class ServerKillE2E {

    @Test
    void should_lose_nothing_and_resolve_every_command_after_a_sigkill_under_load() {
        FaultFigures figures = new FaultFigures("server-kill");
        try (E2eStack stack = new E2eStack("e2ekill", Map.of(
                "kaiser.registration.auto-approve", "true",
                "kaiser.command.ack-timeout.actuator", "20s",
                "kaiser.command.rate-limit.burst", "100")).start();
             VirtualDevices fleet = stack.devices("K9V", 10, "--heartbeat-s", "5", "--data-s", "2");
             NumberedReadings numbered = new NumberedReadings(stack, stack.broker().url(), "ESP_K9_NUM", 10)) {
            numbered.heartbeat();
            await().atMost(Duration.ofSeconds(30)).until(() -> stack.count("SELECT count(*) FROM devices WHERE status = 'online'") == 11);
            numbered.startStreaming();
            await().atMost(Duration.ofSeconds(30)).until(() -> numbered.acked() >= 50);

            // commands before the kill: some complete, the last burst is in flight when the process dies
            List<String> accepted = new CopyOnWriteArrayList<>();
            for (int round = 0; round < 3; round++) {
                for (int d = 1; d <= 10; d++) {
                    command(stack, d, round % 2 == 0 ? "ON" : "OFF", accepted);
                }
            }
            Thread burst = new Thread(() -> {
                for (int round = 3; round < 13; round++) {
                    for (int d = 1; d <= 10; d++) {
                        try {
                            command(stack, d, round % 2 == 0 ? "ON" : "OFF", accepted);
                        } catch (RuntimeException e) {
                            return; // the server is gone
                        }
                    }
                }
            });
            burst.start();
            await().atMost(Duration.ofSeconds(30)).until(() -> accepted.size() >= 45);
            stack.killServer();
            long killedAt = System.nanoTime();
            int ackedAtKill = numbered.acked();
            try {
                burst.join(30_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            long inDbAtKill = stack.count("SELECT count(*) FROM commands");
            long openAtKill = stack.count("SELECT count(*) FROM commands WHERE status IN ('pending','accepted')");
            stack.startServer();
            long restartMs = (System.nanoTime() - killedAt) / 1_000_000;

            await().atMost(Duration.ofSeconds(30)).until(() -> numbered.acked() >= ackedAtKill + 100);
            // and commands work again after the restart
            for (int d = 1; d <= 10; d++) {
                command(stack, d, "OFF", accepted);
            }
            int total = numbered.stop();
            await().atMost(Duration.ofSeconds(90)).pollInterval(Duration.ofMillis(500)).until(() ->
                    stack.count("SELECT count(*) FROM sensor_data WHERE esp_id = 'ESP_K9_NUM'") >= total
                            && stack.count("SELECT count(*) FROM commands WHERE status NOT IN ('applied','failed','timed_out','expired')") == 0);
            // answers still on their way after the last status change: let the device's counters settle
            await().atMost(Duration.ofSeconds(30)).until(() -> fleet.stat("commands")
                    == stack.count("SELECT count(*) FROM commands WHERE status = 'applied' OR (status = 'timed_out' AND late_answers IS NOT NULL)"));

            assertThat(stack.count("SELECT count(*) FROM sensor_data WHERE esp_id = 'ESP_K9_NUM'")).as("rows").isEqualTo(total);
            assertThat(stack.count("SELECT count(DISTINCT seq) FROM sensor_data WHERE esp_id = 'ESP_K9_NUM' AND seq < " + total)).isEqualTo(total);
            for (String id : accepted) {
                assertThat(stack.count("SELECT count(*) FROM commands WHERE correlation_id = '" + id + "'")).as(id).isEqualTo(1);
            }
            assertThat(stack.count("SELECT count(*) FROM commands WHERE published_at IS NULL AND status = 'pending'")).as("outbox").isZero();
            Map<?, ?> health = Http.get(stack.baseUrl() + "/health").json();
            assertThat(((Map<?, ?>) health.get("commands")).get("outbox_depth")).isEqualTo(0);
            // at most once on the device: every execution is one applied command (or a late answer on a timed-out one)
            long applied = stack.count("SELECT count(*) FROM commands WHERE status = 'applied'");
            long executed = fleet.stat("commands");
            assertThat(executed).as("commands executed by the devices").isEqualTo(
                    stack.count("SELECT count(*) FROM commands WHERE status = 'applied' OR (status = 'timed_out' AND late_answers IS NOT NULL)"));

            Map<String, Long> byStatus = new java.util.TreeMap<>();
            stack.query("SELECT status, count(*) AS n FROM commands GROUP BY status")
                    .forEach(r -> byStatus.put((String) r.get("status"), ((Number) r.get("n")).longValue()));
            figures.put("load", "10 vdevs x 3 sensors every 2 s + numbered client 10 msg/s QoS 1 + actuator commands")
                    .put("readings_acked", total)
                    .put("readings_lost", total - stack.count("SELECT count(DISTINCT seq) FROM sensor_data WHERE esp_id = 'ESP_K9_NUM'"))
                    .put("kill_to_healthy_ms", restartMs)
                    .put("commands_accepted_by_rest", accepted.size())
                    .put("commands_in_db_at_kill", inDbAtKill)
                    .put("commands_open_at_kill", openAtKill)
                    .put("commands_by_final_status", byStatus)
                    .put("commands_applied", applied)
                    .put("device_executions", executed)
                    .put("device_duplicates_ignored", fleet.stat("duplicates"))
                    .write();
        }
    }

    static void command(E2eStack stack, int device, String command, List<String> accepted) {
        Http.Response r = Http.post(stack.baseUrl() + "/actuators/K9V" + String.format("%04d", device) + "/5/command",
                "{\"command\":\"" + command + "\",\"value\":1}");
        if (r.status() == 202 || r.status() == 200) {
            accepted.add((String) r.json().get("correlation_id"));
        } else {
            throw new IllegalStateException("command refused: " + r.status() + " " + r.body());
        }
    }
}
