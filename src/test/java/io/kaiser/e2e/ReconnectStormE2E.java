package io.kaiser.e2e;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;

import io.kaiser.support.E2eStack;
import io.kaiser.support.Http;
import io.kaiser.support.TcpLink;
import io.kaiser.support.VirtualDevices;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Fault: 1,000 devices lose the broker at the same instant (one kaiser-vdev process behind a {@link TcpLink} that is
 * cut: every connection reset, so the broker publishes 1,000 wills) and find it again when the link is restored.
 * No storm: the firmware's jittered backoff spreads the reconnects, the server answers {@code /health} within a
 * second throughout, and all 1,000 devices are online again.
 */
@Tag("e2e")
class ReconnectStormE2E {
    static final int DEVICES = 1000;

    @Test
    void should_bring_1000_devices_back_online_without_a_storm_after_they_all_lost_the_broker_at_once() {
        FaultFigures figures = new FaultFigures("reconnect-storm");
        try (E2eStack stack = new E2eStack("e2estorm", Map.of("kaiser.registration.auto-approve", "true")).start();
             TcpLink link = stack.link();
             VirtualDevices fleet = stack.devices(link, "STM", DEVICES, "--heartbeat-s", "30", "--data-s", "30", "--ramp-ms", "5")) {
            await().atMost(Duration.ofSeconds(120)).pollInterval(Duration.ofSeconds(1)).until(() -> fleet.stat("registered") == DEVICES
                    && stack.count("SELECT count(*) FROM devices WHERE esp_id LIKE 'STM%' AND status = 'online'") == DEVICES);

            List<Long> latencies = new CopyOnWriteArrayList<>();
            AtomicBoolean probing = new AtomicBoolean(true);
            Thread probe = new Thread(() -> {
                while (probing.get()) {
                    long t = System.nanoTime();
                    int status = Http.get(stack.baseUrl() + "/health").status();
                    latencies.add((System.nanoTime() - t) / 1_000_000);
                    assert status > 0;
                    java.util.concurrent.locks.LockSupport.parkNanos(100_000_000L);
                }
            }, "health-probe");
            probe.setDaemon(true);
            probe.start();

            long connectsBefore = fleet.stat("connects");
            link.cut();
            long cutAt = System.nanoTime();
            await().atMost(Duration.ofSeconds(30)).until(() -> fleet.stat("connected") == 0);
            // every device is marked offline by its will
            await().atMost(Duration.ofSeconds(90)).pollInterval(Duration.ofMillis(500)).until(() ->
                    stack.count("SELECT count(*) FROM devices WHERE esp_id LIKE 'STM%' AND status = 'offline'") == DEVICES);
            long willsMs = (System.nanoTime() - cutAt) / 1_000_000;
            int statsAtRestore = fleet.history().size();
            link.restore();
            long restoredAt = System.nanoTime();
            await().atMost(Duration.ofSeconds(60)).until(() -> fleet.stat("connected") == DEVICES);
            long allConnectedMs = (System.nanoTime() - restoredAt) / 1_000_000;
            await().atMost(Duration.ofSeconds(120)).pollInterval(Duration.ofMillis(500)).until(() ->
                    stack.count("SELECT count(*) FROM devices WHERE esp_id LIKE 'STM%' AND status = 'online'") == DEVICES);
            long allOnlineMs = (System.nanoTime() - restoredAt) / 1_000_000;
            // heartbeat ACKs are QoS 0: a device whose ACK was lost in the rush registers with its next heartbeat (5 s)
            await().atMost(Duration.ofSeconds(60)).until(() -> fleet.stat("registered") == DEVICES);
            long allRegisteredMs = (System.nanoTime() - restoredAt) / 1_000_000;
            probing.set(false);

            // reconnects per stats second after the restore: the spread of the storm
            List<Map<String, Object>> history = fleet.history();
            List<Long> perSecond = new ArrayList<>();
            long prev = ((Number) history.get(statsAtRestore - 1).get("connects")).longValue();
            for (int i = statsAtRestore; i < history.size(); i++) {
                long c = ((Number) history.get(i).get("connects")).longValue();
                perSecond.add(c - prev);
                prev = c;
                if (((Number) history.get(i).get("connected")).longValue() == DEVICES) {
                    break;
                }
            }
            long maxLatency = latencies.stream().mapToLong(Long::longValue).max().orElse(-1);
            figures.put("devices", DEVICES)
                    .put("load", "1000 vdevs (heartbeat 30 s, 3 sensors every 30 s) behind one TCP link")
                    .put("reconnects_total", fleet.stat("connects") - connectsBefore)
                    .put("reconnects_per_second_after_restore", perSecond)
                    .put("peak_reconnects_per_second", perSecond.stream().mapToLong(Long::longValue).max().orElse(0))
                    .put("all_connected_after_ms", allConnectedMs)
                    .put("cut_to_all_offline_in_db_ms", willsMs)
                    .put("all_online_in_db_after_ms", allOnlineMs)
                    .put("all_registered_after_ms", allRegisteredMs)
                    .put("health_probes", latencies.size())
                    .put("health_latency_median_ms", FaultFigures.median(latencies))
                    .put("health_latency_p99_ms", FaultFigures.percentile(latencies, 0.99))
                    .put("health_latency_max_ms", maxLatency)
                    .write();
            assertThat(maxLatency).as("/health latency during the storm (ms)").isLessThan(1000);
        }
    }
}
