package io.kaiser.metrics;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;

import javax.sql.DataSource;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Timer;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.apache.camel.Header;
import io.kaiser.KaiserHeaders;

/**
 * Kaiser's own meters in Prometheus form ({@code GET /api/v1/metrics}): messages ingested per topic, dead letters
 * by reason, command ack latency per type, and, refreshed from the database every few seconds, commands by type
 * and status, outbox depth and devices by status; plus ingest backlog and WebSocket clients.
 */
public final class KaiserMetrics implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(KaiserMetrics.class);

    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final Map<String, Counter> ingested = new ConcurrentHashMap<>();
    private final Map<String, Counter> deadLetters = new ConcurrentHashMap<>();
    private final Map<String, Timer> ackLatency = new ConcurrentHashMap<>();
    private final Map<String, AtomicLong> dbGauges = new ConcurrentHashMap<>();
    private final DataSource dataSource;
    private final ScheduledExecutorService refresher = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "metrics-refresh");
        t.setDaemon(true);
        return t;
    });

    public KaiserMetrics(DataSource dataSource) {
        this.dataSource = dataSource;
    }

    public void start(long refreshMillis) {
        refresher.scheduleWithFixedDelay(this::refresh, 0, refreshMillis, TimeUnit.MILLISECONDS);
    }

    /** A gauge read from a live value (backlog, WebSocket clients). */
    public void gauge(String name, String help, LongSupplier value) {
        // Micrometer holds a gauge's object weakly: a lambda nobody else references is collected and the gauge reads NaN
        Gauge.builder(name, value, LongSupplier::getAsLong).description(help).strongReference(true).register(registry);
    }

    /** One valid message of this topic went into its route. */
    public void ingested(@Header(KaiserHeaders.TOPIC_KEY) String topicKey) {
        ingested.computeIfAbsent(topicKey == null ? "unknown" : topicKey, k -> Counter.builder("kaiser_ingested_messages")
                .description("device messages accepted by the contract, per topic").tag("topic", k).register(registry)).increment();
    }

    /** One message went to the dead letter. */
    public void deadLettered(String reasonCode) {
        deadLetters.computeIfAbsent(reasonCode == null ? "unknown" : reasonCode, k -> Counter.builder("kaiser_dead_letters")
                .description("device messages rejected, per reason").tag("reason", k).register(registry)).increment();
    }

    /** A device answered a command this long after it was published. */
    public void ackLatency(String commandType, Duration latency) {
        ackLatency.computeIfAbsent(commandType, k -> Timer.builder("kaiser_command_ack").description("publish to device answer, per command type")
                .tag("type", k).publishPercentileHistogram().register(registry)).record(latency);
    }

    private void refresh() {
        try (Connection c = dataSource.getConnection()) {
            set(c, "SELECT command_type, status, count(*) FROM commands GROUP BY 1, 2", "kaiser_commands", "commands by type and status", "type", "status");
            set(c, "SELECT status, count(*) FROM devices GROUP BY 1", "kaiser_devices", "devices by status", "status");
            set(c, "SELECT count(*) FROM commands WHERE published_at IS NULL AND status = 'pending'", "kaiser_outbox_depth",
                    "commands waiting for the broker");
        } catch (Exception e) {
            LOG.debug("metrics refresh skipped: {}", e.getMessage());
        }
    }

    private void set(Connection c, String sql, String name, String help, String... tags) throws Exception {
        try (PreparedStatement ps = c.prepareStatement(sql); ResultSet rs = ps.executeQuery()) {
            // series that vanished from the result count zero
            dbGauges.forEach((k, v) -> {
                if (k.startsWith(name + "|")) {
                    v.set(0);
                }
            });
            while (rs.next()) {
                String[] tagValues = new String[tags.length * 2];
                StringBuilder key = new StringBuilder(name);
                for (int i = 0; i < tags.length; i++) {
                    tagValues[2 * i] = tags[i];
                    tagValues[2 * i + 1] = rs.getString(i + 1);
                    key.append('|').append(rs.getString(i + 1));
                }
                long value = rs.getLong(tags.length + 1);
                dbGauges.computeIfAbsent(key.toString(), k -> {
                    AtomicLong holder = new AtomicLong();
                    Gauge.builder(name, holder, AtomicLong::get).description(help).tags(tagValues).register(registry);
                    return holder;
                }).set(value);
            }
        }
    }

    /** Prometheus text exposition format. */
    public String scrape() {
        return registry.scrape();
    }

    @Override
    public void close() {
        refresher.shutdownNow();
        registry.close();
    }
}
