package io.kaiser.e2e;

import java.nio.file.Files;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import io.kaiser.support.E2eStack;
import io.kaiser.support.Http;
import io.kaiser.support.VirtualDevices;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Fault: the broker (the project's mosquitto.conf, persistence on) restarts under a steady stream: 20 virtual
 * devices and a numbered client publish QoS 1 readings. No acknowledged reading is lost or stored twice, devices and
 * server reconnect by themselves, and commands fired around the restart run at most once on each device, with a
 * truthful final status (applied exactly when the device ran it); during the outage devices become offline.
 */
@Tag("e2e")
class BrokerRestartE2E {

    @Test
    void should_lose_nothing_reconnect_everyone_and_run_each_command_once_across_a_broker_restart() throws Exception {
        FaultFigures figures = new FaultFigures("broker-restart");
        try (E2eStack stack = new E2eStack("e2ebrk", Map.of(
                "kaiser.registration.auto-approve", "true",
                "kaiser.command.ack-timeout.actuator", "30s",
                "kaiser.command.rate-limit.burst", "100")).start();
             VirtualDevices fleet = stack.devices("BRK", 20, "--heartbeat-s", "5", "--data-s", "1");
             NumberedReadings numbered = new NumberedReadings(stack, stack.broker().url(), "ESP_BRK_NUM", 50)) {
            numbered.heartbeat();
            await().atMost(Duration.ofSeconds(30)).until(() -> stack.count("SELECT count(*) FROM devices WHERE status = 'online'") == 21);
            numbered.startStreaming();
            await().atMost(Duration.ofSeconds(30)).until(() -> numbered.acked() >= 200);

            // a burst of commands fired right before the broker goes: some run before it, some are in flight across it
            List<String> around = new ArrayList<>();
            for (int d = 1; d <= 20; d++) {
                around.add(command(stack, d, "ON"));
            }
            long connectsBefore = fleet.stat("connects");
            stack.broker().stop();
            long downAt = System.nanoTime();
            await().atMost(Duration.ofSeconds(10)).until(() -> fleet.stat("connected") == 0);
            // while the broker is away: Mosquitto published every device's will as it shut down; once the server has
            // settled them (takeover grace) it refuses commands to the offline devices (409); a command accepted before
            // that waits in the outbox and ends truthfully (the device runs it, refuses it, or it times out)
            Map<Integer, Long> duringOutage = new java.util.TreeMap<>();
            List<String> accepted = new ArrayList<>(around);
            for (int d = 1; d <= 20; d++) {
                Http.Response r = post(stack, d, "OFF");
                duringOutage.merge(r.status(), 1L, Long::sum);
                if (r.status() == 202 || r.status() == 200) {
                    accepted.add((String) r.json().get("correlation_id"));
                } else {
                    assertThat(r.status()).as(r.body()).isIn(409, 503);
                }
            }
            stack.broker().start();
            long upAt = System.nanoTime();

            await().atMost(Duration.ofSeconds(60)).until(() -> fleet.stat("connected") == 20 && fleet.stat("registered") == 20);
            long devicesBackMs = (System.nanoTime() - upAt) / 1_000_000;
            await().atMost(Duration.ofSeconds(60)).until(() -> "UP".equals(Http.get(stack.baseUrl() + "/health").json().get("status")));
            long serverBackMs = (System.nanoTime() - upAt) / 1_000_000;
            await().atMost(Duration.ofSeconds(30)).until(() ->
                    stack.count("SELECT count(*) FROM devices WHERE esp_id LIKE 'BRK%' AND status = 'online'") == 20);
            long onlineBackMs = (System.nanoTime() - upAt) / 1_000_000;
            // after the restart: commands work again
            List<String> after = new ArrayList<>();
            for (int d = 1; d <= 20; d++) {
                after.add(command(stack, d, "OFF"));
            }
            accepted.addAll(after);
            int ackedAtUp = numbered.acked();
            await().atMost(Duration.ofSeconds(30)).until(() -> numbered.acked() >= ackedAtUp + 250);
            int total = numbered.stop();

            await().atMost(Duration.ofSeconds(90)).pollInterval(Duration.ofMillis(500)).until(() ->
                    stack.count("SELECT count(*) FROM sensor_data WHERE esp_id = 'ESP_BRK_NUM'") >= total
                            && stack.count("SELECT count(*) FROM commands WHERE status NOT IN ('applied','failed','timed_out','expired')") == 0);
            assertThat(stack.count("SELECT count(*) FROM sensor_data WHERE esp_id = 'ESP_BRK_NUM'")).as("rows").isEqualTo(total);
            assertThat(stack.count("SELECT count(DISTINCT seq) FROM sensor_data WHERE esp_id = 'ESP_BRK_NUM' AND seq < " + total))
                    .as("every acknowledged seq once").isEqualTo(total);

            // commands: each ran at most once, the server's final status says truthfully whether it ran (applied, or
            // timed_out with the device's answer in late_answers; failed = the device refused it, e.g. not registered
            // again yet when the outbox sent it)
            String executedSql = "SELECT count(*) FROM commands WHERE status = 'applied' OR (status = 'timed_out' AND late_answers IS NOT NULL)";
            await().atMost(Duration.ofSeconds(10)).until(() -> fleet.stat("commands") == stack.count(executedSql));
            assertThat(fleet.stat("commands")).as("executions on the devices = commands answered").isEqualTo(stack.count(executedSql));
            assertThat(stack.count("SELECT count(*) FROM commands")).isEqualTo(accepted.size());
            for (String id : after) {
                assertThat(stack.query("SELECT status FROM commands WHERE correlation_id = '" + id + "'").get(0)).containsEntry("status", "applied");
            }
            Map<String, Long> byStatus = new java.util.TreeMap<>();
            stack.query("SELECT status, count(*) AS n FROM commands WHERE correlation_id IN ('" + String.join("','", around) + "') GROUP BY status")
                    .forEach(r -> byStatus.put((String) r.get("status"), ((Number) r.get("n")).longValue()));

            // the devices' own readings kept coming after the restart
            long vdevRowsAfter = stack.count("SELECT count(DISTINCT esp_id) FROM sensor_data WHERE esp_id LIKE 'BRK%' AND received_at > now() - interval '10 seconds'");
            String log = Files.readString(stack.broker().log());
            long brokerDrops = log.lines().filter(l -> l.contains("dropped")).count();
            figures.put("load", "20 vdevs x 3 sensors every 1 s + numbered client 50 msg/s QoS 1")
                    .put("broker_down_ms", (upAt - downAt) / 1_000_000)
                    .put("readings_acked", total)
                    .put("readings_lost", total - stack.count("SELECT count(DISTINCT seq) FROM sensor_data WHERE esp_id = 'ESP_BRK_NUM'"))
                    .put("numbered_publish_retries", numbered.retries())
                    .put("devices_reconnected_after_ms", devicesBackMs)
                    .put("server_up_after_ms", serverBackMs)
                    .put("vdev_connects_during_restart", fleet.stat("connects") - connectsBefore)
                    .put("vdevs_streaming_after", vdevRowsAfter)
                    .put("devices_online_in_db_after_ms", onlineBackMs)
                    .put("commands_around_restart_final_status", byStatus)
                    .put("commands_during_outage_http_status", duringOutage)
                    .put("commands_accepted", accepted.size())
                    .put("device_executions", fleet.stat("commands"))
                    .put("device_duplicates_ignored", fleet.stat("duplicates"))
                    .put("broker_log_drop_lines", brokerDrops)
                    .write();
            assertThat(vdevRowsAfter).isEqualTo(20);
        }
    }

    static Http.Response post(E2eStack stack, int device, String command) {
        return Http.post(stack.baseUrl() + "/actuators/BRK" + String.format("%04d", device) + "/5/command",
                "{\"command\":\"" + command + "\",\"value\":1}");
    }

    static String command(E2eStack stack, int device, String command) {
        Http.Response r = post(stack, device, command);
        assertThat(r.status()).as(r.body()).isIn(200, 202);
        return (String) r.json().get("correlation_id");
    }
}
