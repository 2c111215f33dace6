package io.kaiser.e2e;

import java.time.Duration;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import io.kaiser.support.E2eStack;
import io.kaiser.support.Http;
import io.kaiser.support.TcpLink;
import io.kaiser.support.VirtualDevices;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Fault: PostgreSQL unreachable for 60 s under load. The machine's PostgreSQL is shared with other tests, so only
 * this server loses it: its JDBC URL points at a {@link TcpLink} in front of PostgreSQL, and the link is cut
 * (every pooled connection reset, new ones refused) for 60 s while 20 virtual devices and a numbered client stream
 * QoS 1 readings. Nothing may be lost or doubled, and each device's readings are stored in the order it sent them.
 */
@Tag("e2e")
class DatabaseOutageE2E {
    static final Duration OUTAGE = Duration.ofSeconds(60);

    @Test
    void should_lose_nothing_and_keep_each_devices_order_while_postgres_is_unreachable_for_60_seconds() {
        FaultFigures figures = new FaultFigures("db-outage");
        try (E2eStack stack = new E2eStack("e2edbout", Map.of(
                "kaiser.registration.auto-approve", "true",
                "kaiser.db.connection-timeout-ms", "1000"))) {
            String direct = stack.server().jdbcUrl();
            Matcher m = Pattern.compile("//([^:/]+):(\\d+)/").matcher(direct);
            assertThat(m.find()).as("host:port in " + direct).isTrue();
            try (TcpLink pgLink = new TcpLink(Integer.parseInt(m.group(2)))) {
                stack.server().with("kaiser.db.url", direct.replace(m.group(0), "//127.0.0.1:" + pgLink.port() + "/"));
                stack.start();
                try (VirtualDevices fleet = stack.devices("DBO", 20, "--heartbeat-s", "5", "--data-s", "1");
                     NumberedReadings numbered = new NumberedReadings(stack, stack.broker().url(), "ESP_DBO_NUM", 50)) {
                    numbered.heartbeat();
                    await().atMost(Duration.ofSeconds(30)).until(() ->
                            stack.count("SELECT count(*) FROM devices WHERE status = 'online'") == 21);
                    numbered.startStreaming();
                    await().atMost(Duration.ofSeconds(30)).until(() -> numbered.acked() >= 200
                            && stack.count("SELECT count(DISTINCT esp_id) FROM sensor_data") == 21);

                    long fleetDataBefore = fleet.stat("data");
                    int ackedBefore = numbered.acked();
                    pgLink.cut();
                    long cutAt = System.nanoTime();
                    await().atMost(Duration.ofSeconds(15)).until(() -> "DOWN".equals(database(stack)));
                    // the outage: the server keeps answering and keeps acknowledging the devices' readings
                    long[] maxBacklog = {0};
                    await().during(OUTAGE.minusNanos(System.nanoTime() - cutAt)).atMost(OUTAGE.plusSeconds(20)).until(() -> {
                        Http.Response h = Http.get(stack.baseUrl() + "/health");
                        Object backlog = ((Map<?, ?>) h.json().get("ingest")).get("backlog_bytes");
                        maxBacklog[0] = Math.max(maxBacklog[0], ((Number) backlog).longValue());
                        return h.status() == 503 && "DOWN".equals(((Map<?, ?>) h.json().get("database")).get("status"));
                    });
                    int duringOutage = numbered.acked() - ackedBefore;
                    long fleetDuringOutage = fleet.stat("data") - fleetDataBefore;
                    assertThat(duringOutage).as("numbered readings acknowledged during the outage").isGreaterThan(1500);

                    pgLink.restore();
                    long restoredAt = System.nanoTime();
                    await().atMost(Duration.ofSeconds(60)).ignoreExceptions().until(() -> "UP".equals(database(stack)));
                    await().atMost(Duration.ofSeconds(30)).until(() -> numbered.acked() >= ackedBefore + duringOutage + 250);
                    int total = numbered.stop();
                    fleet.stop();
                    await().atMost(Duration.ofSeconds(120)).pollInterval(Duration.ofMillis(500)).until(() ->
                            stack.count("SELECT count(*) FROM sensor_data WHERE esp_id = 'ESP_DBO_NUM'") >= total
                                    && backlog(stack) == 0);
                    long drainMs = (System.nanoTime() - restoredAt) / 1_000_000;

                    assertThat(stack.count("SELECT count(*) FROM sensor_data WHERE esp_id = 'ESP_DBO_NUM'")).as("rows").isEqualTo(total);
                    assertThat(stack.count("SELECT count(DISTINCT seq) FROM sensor_data WHERE esp_id = 'ESP_DBO_NUM' AND seq < " + total))
                            .as("every seq 0..n-1 once").isEqualTo(total);
                    assertThat(stack.count("""
                            SELECT count(*) FROM (SELECT seq, lag(seq) OVER (ORDER BY id) AS prev FROM sensor_data
                             WHERE esp_id = 'ESP_DBO_NUM') s WHERE prev IS NOT NULL AND seq <> prev + 1""")).as("stored in sent order").isZero();
                    // the firmware devices: their readings kept arriving, and each device's are in its own order
                    assertThat(stack.count("""
                            SELECT count(*) FROM (SELECT seq, lag(seq) OVER (PARTITION BY esp_id ORDER BY id) AS prev FROM sensor_data
                             WHERE esp_id LIKE 'DBO%') s WHERE prev IS NOT NULL AND seq < prev""")).as("per-device order of the vdevs").isZero();
                    long fleetRows = stack.count("SELECT count(DISTINCT (esp_id, seq)) FROM sensor_data WHERE esp_id LIKE 'DBO%'");
                    long fleetSent = fleet.stat("data");
                    // every reading the devices published directly is stored (buffered and replayed ones come on top)
                    assertThat(fleetRows).as("vdev data messages stored (published directly: %d)", fleetSent).isGreaterThanOrEqualTo(fleetSent);

                    figures.put("outage_s", OUTAGE.toSeconds())
                            .put("load", "20 vdevs x 3 sensors every 1 s + numbered client 50 msg/s QoS 1")
                            .put("numbered_acked_total", total)
                            .put("numbered_acked_during_outage", duringOutage)
                            .put("numbered_publish_retries", numbered.retries())
                            .put("vdev_data_msgs_total", fleetSent)
                            .put("vdev_rows_distinct_seq", fleetRows)
                            .put("vdev_data_msgs_during_outage", fleetDuringOutage)
                            .put("journal_backlog_peak_bytes", maxBacklog[0])
                            .put("drain_after_restore_ms", drainMs)
                            .put("lost", total - stack.count("SELECT count(DISTINCT seq) FROM sensor_data WHERE esp_id = 'ESP_DBO_NUM'"))
                            .write();
                }
            }
        }
    }

    static String database(E2eStack stack) {
        return (String) ((Map<?, ?>) Http.get(stack.baseUrl() + "/health").json().get("database")).get("status");
    }

    static long backlog(E2eStack stack) {
        return ((Number) ((Map<?, ?>) Http.get(stack.baseUrl() + "/health").json().get("ingest")).get("backlog_bytes")).longValue();
    }
}
