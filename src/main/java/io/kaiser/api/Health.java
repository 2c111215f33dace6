package io.kaiser.api;

import java.util.LinkedHashMap;
import java.util.Map;

import io.kaiser.db.Database;
import io.kaiser.ingest.IngestDrainer;
import io.kaiser.ingest.IngestReceiver;
import io.kaiser.live.LiveEventHub;
import io.kaiser.mqtt.KaiserMqttClient;

/** The body of {@code GET /api/v1/health}: broker, database, ingest and live-event state. */
public final class Health {
    private final KaiserMqttClient ingress;
    private final KaiserMqttClient publisher;
    private final Database database;
    private final IngestReceiver receiver;
    private final IngestDrainer drainer;
    private final LiveEventHub live;
    private java.util.function.LongSupplier deadLetters = () -> 0;

    public Health(KaiserMqttClient ingress, KaiserMqttClient publisher, Database database, IngestReceiver receiver,
                  IngestDrainer drainer, LiveEventHub live) {
        this.ingress = ingress;
        this.publisher = publisher;
        this.database = database;
        this.receiver = receiver;
        this.drainer = drainer;
        this.live = live;
    }

    private java.util.function.LongSupplier outboxDepth = () -> 0;

    /** Commands waiting for the broker (read only while the database answers). */
    public void setOutboxDepth(java.util.function.LongSupplier outboxDepth) {
        this.outboxDepth = outboxDepth;
    }

    public void setDeadLetters(java.util.function.LongSupplier deadLetters) {
        this.deadLetters = deadLetters;
    }

    public Map<String, Object> report() {
        boolean mqttUp = ingress.isConnected() && publisher.isConnected();
        boolean dbUp = database.reachable();
        Map<String, Object> mqtt = new LinkedHashMap<>();
        mqtt.put("status", mqttUp ? "UP" : "DOWN");
        mqtt.put("broker", ingress.getServerURI());
        mqtt.put("ingest_client", client(ingress));
        mqtt.put("publisher_client", client(publisher));
        Map<String, Object> db = new LinkedHashMap<>();
        db.put("status", dbUp ? "UP" : "DOWN");
        db.put("schema_migrated", database.migrated());
        Map<String, Object> ingest = new LinkedHashMap<>();
        ingest.put("received", receiver.received());
        ingest.put("stored", drainer.processed());
        ingest.put("dead_lettered", deadLetters.getAsLong());
        ingest.put("backlog_bytes", drainer.backlogBytes());
        ingest.put("lag_ms", drainer.lagMillis());
        ingest.put("last_batch", Map.of("messages", drainer.lastBatchSize(), "ms", drainer.lastBatchMillis()));
        ingest.put("stalled", drainer.stalled());
        ingest.put("last_failure", drainer.lastFailure());
        // the database circuit breaker around ingest batches: open while batches are refused without being tried
        ingest.put("database_breaker", drainer.stalled() && drainer.lastFailure() != null
                && drainer.lastFailure().startsWith("CircuitOpenException") ? "OPEN" : "CLOSED");
        Map<String, Object> ws = new LinkedHashMap<>();
        ws.put("clients", live.clientCount());
        ws.put("events_published", live.published());
        ws.put("events_dropped", live.dropped());
        Map<String, Object> commands = new LinkedHashMap<>();
        try {
            commands.put("outbox_depth", outboxDepth.getAsLong());
        } catch (RuntimeException e) {
            commands.put("outbox_depth", null);
        }
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("status", mqttUp && dbUp ? "UP" : "DEGRADED");
        out.put("mqtt", mqtt);
        out.put("database", db);
        out.put("ingest", ingest);
        out.put("commands", commands);
        out.put("live", ws);
        return out;
    }

    public boolean isUp() {
        return "UP".equals(report().get("status"));
    }

    private static Map<String, Object> client(KaiserMqttClient c) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("client_id", c.getClientId());
        m.put("connected", c.isConnected());
        if (!c.isConnected()) {
            m.put("last_error", c.lastError());
        }
        return m;
    }
}
