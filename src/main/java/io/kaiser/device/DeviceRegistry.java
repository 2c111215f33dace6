package io.kaiser.device;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;

import javax.sql.DataSource;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kaiser.api.ApiProblem;
import io.kaiser.live.LiveEvent;
import org.apache.camel.Header;
import io.kaiser.KaiserHeaders;

/**
 * Registration and liveness of devices: heartbeat and its ACK, session announce, LWT, heartbeat timeout,
 * approval and rejection. The database is the only state, so several server instances agree.
 */
public final class DeviceRegistry {
    public static final String PENDING = "pending_approval";
    public static final String APPROVED = "approved";
    public static final String ONLINE = "online";
    public static final String OFFLINE = "offline";
    public static final String REJECTED = "rejected";

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger("kaiser.devices");

    private final DataSource dataSource;
    private final String kaiserId;
    private final boolean autoApproveAll;
    private final List<Pattern> autoApprovePatterns;
    private final Duration rejectionCooldown;
    private final Duration heartbeatTimeout;
    private final Duration flappingWindow;
    private final int flappingThreshold;
    private final Set<String> known = ConcurrentHashMap.newKeySet();
    private final Map<String, PendingHeartbeats> registering = new ConcurrentHashMap<>();
    private volatile Duration ackMaxAge = Duration.ofSeconds(30);
    private volatile Duration dataRefresh = Duration.ZERO;
    /** When data last refreshed a device's last_seen (see {@link #touch}). */
    private final Map<String, Long> dataRefreshedAt = new ConcurrentHashMap<>();

    public DeviceRegistry(DataSource dataSource, String kaiserId, boolean autoApproveAll, String autoApprovePatterns,
                          Duration rejectionCooldown, Duration heartbeatTimeout, Duration flappingWindow, int flappingThreshold) {
        this.dataSource = dataSource;
        this.kaiserId = kaiserId;
        this.autoApproveAll = autoApproveAll;
        this.autoApprovePatterns = new ArrayList<>();
        if (autoApprovePatterns != null) {
            for (String p : autoApprovePatterns.split(",")) {
                if (!p.isBlank()) {
                    this.autoApprovePatterns.add(Pattern.compile(p.trim()));
                }
            }
        }
        this.rejectionCooldown = rejectionCooldown;
        this.heartbeatTimeout = heartbeatTimeout;
        this.flappingWindow = flappingWindow;
        this.flappingThreshold = flappingThreshold;
    }

    /** What a heartbeat leads to: the ACK to publish, whether to clear the retained will, and live events. */
    public record HeartbeatResult(String espId, Map<String, Object> ack, boolean clearWill, List<LiveEvent> events, boolean fresh) { }

    boolean autoApproves(String espId) {
        return autoApproveAll || autoApprovePatterns.stream().anyMatch(p -> p.matcher(espId).matches());
    }

    /** Whether the device is known without asking the database. */
    boolean isKnownCached(String espId) {
        return known.contains(espId);
    }

    /**
     * The first heartbeat of a device not known yet waits in the current ingest batch ({@link HeartbeatStore}); a
     * message of that device later in the same batch stores it first (the drainer runs one batch at a time, so a new
     * batch starts with none).
     */
    void registering(String espId, PendingHeartbeats store) {
        registering.put(espId, store);
    }

    void newIngestBatch() {
        registering.clear();
    }

    /** The device's heartbeat was stored: it exists. */
    void registered(String espId) {
        known.add(espId);
        registering.remove(espId);
    }

    /** Stores the heartbeats a batch holds so far. */
    interface PendingHeartbeats {
        void store() throws SQLException;
    }

    String kaiserId() {
        return kaiserId;
    }

    Duration rejectionCooldown() {
        return rejectionCooldown;
    }

    /** An ACK for a heartbeat this old is still worth sending. */
    boolean isFresh(long receivedAt) {
        return System.currentTimeMillis() - receivedAt < ackMaxAge.toMillis();
    }

    /** Whether the device exists (cached; a miss asks the database, so devices of other instances count). */
    public boolean isKnown(String espId) throws SQLException {
        if (known.contains(espId)) {
            return true;
        }
        try (Connection c = dataSource.getConnection();
             PreparedStatement ps = c.prepareStatement("SELECT 1 FROM devices WHERE esp_id = ?")) {
            ps.setString(1, espId);
            try (ResultSet rs = ps.executeQuery()) {
                if (rs.next()) {
                    known.add(espId);
                    return true;
                }
                return false;
            }
        }
    }

    /** An ACK for a heartbeat replayed from the journal later than this is not sent: the device has sent newer ones. */
    public void setAckMaxAge(Duration ackMaxAge) {
        this.ackMaxAge = ackMaxAge;
    }

    /** Rejects messages of devices that never sent a heartbeat (they have no row to belong to). */
    public void requireKnown(@Header(KaiserHeaders.ESP_ID) String espId) throws SQLException {
        PendingHeartbeats pending = known.contains(espId) ? null : registering.get(espId);
        if (pending != null) {
            pending.store();
        }
        if (!isKnown(espId)) {
            throw new io.kaiser.contract.KaiserRejection("unknown_device", "device " + espId + " has not registered: send a heartbeat first");
        }
    }

    /**
     * Data keeps a device alive: refreshes last_seen of the online devices among these, at most once per
     * {@link #setDataRefresh data refresh} per device (heartbeats keep it exact). Refreshing on every reading rewrote
     * each device row of a fleet several times a minute: two thirds of the ingest drainer's time with 10,000 devices
     * (docs/benchmarks.md).
     */
    public void touch(java.util.Collection<String> espIds) throws SQLException {
        long at = System.currentTimeMillis();
        long refreshedBefore = at - dataRefresh.toMillis();
        List<String> due = new ArrayList<>();
        for (String espId : espIds) {
            Long last = dataRefreshedAt.get(espId);
            if (last == null || last < refreshedBefore) {
                due.add(espId);
            }
        }
        if (due.isEmpty()) {
            return;
        }
        try (Connection c = dataSource.getConnection();
             PreparedStatement ps = c.prepareStatement(
                     "UPDATE devices SET last_seen = ? WHERE esp_id = ANY (?) AND status = 'online' AND last_seen < ?")) {
            ps.setTimestamp(1, new Timestamp(at));
            ps.setArray(2, c.createArrayOf("text", due.toArray()));
            ps.setTimestamp(3, new Timestamp(refreshedBefore));
            ps.executeUpdate();
        }
        for (String espId : due) {
            dataRefreshedAt.put(espId, at);
        }
    }

    /**
     * How stale last_seen may get while a device sends data: as the original, 60 s; at most a third of the heartbeat
     * timeout, so a device that only sends data never times out.
     */
    public void setDataRefresh(Duration dataRefresh) {
        Duration third = heartbeatTimeout.dividedBy(3);
        this.dataRefresh = dataRefresh.compareTo(third) > 0 ? third : dataRefresh;
    }

    /** The heartbeat ACK of the contract; {@code status} one of online, pending_approval, rejected, error. */
    public static Map<String, Object> ack(String espId, String status, int epoch) {
        long now = System.currentTimeMillis() / 1000;
        Map<String, Object> ack = new LinkedHashMap<>();
        ack.put("status", status);
        ack.put("config_available", false);
        ack.put("server_time", now);
        ack.put("handover_epoch", epoch);
        ack.put("ack_type", "heartbeat");
        ack.put("contract_version", 2);
        ack.put("session_id", espId + ":handover:" + epoch + ":" + now);
        return ack;
    }

    /** ACK for a heartbeat that broke the contract: the device hears about it instead of silence. */
    public static Map<String, Object> errorAck(String espId, String reason) {
        Map<String, Object> ack = ack(espId, "error", 1);
        String r = reason == null ? "invalid" : reason;
        ack.put("error", "invalid_payload:" + (r.length() > 50 ? r.substring(0, 50) : r));
        return ack;
    }

    public List<LiveEvent> sessionAnnounce(String espId, Map<String, Object> payload, String ingestPos) throws SQLException {
        Object epoch = payload.containsKey("handover_epoch") ? payload.get("handover_epoch") : payload.get("session_epoch");
        int e = epoch instanceof Number n ? n.intValue() : 1;
        // the epoch and its event in one transaction: one commit per announce (a fleet powering on sends thousands)
        inTransaction(c -> {
            if (update(c, "UPDATE devices SET handover_epoch = ? WHERE esp_id = ?", e, espId) > 0) {
                deviceEvent(c, ingestPos, espId, "session_announce", payload);
            }
            return null;
        });
        Map<String, Object> d = new LinkedHashMap<>();
        d.put("esp_id", espId);
        d.put("handover_epoch", e);
        d.put("reason", payload.getOrDefault("reason", e > 1 ? "reconnect" : "boot"));
        return List.of(LiveEvent.of("esp_session", espId, d));
    }

    private volatile Duration takeoverGrace = Duration.ZERO;
    private volatile java.util.function.Consumer<List<LiveEvent>> settledWillEvents = events -> { };
    private java.util.concurrent.ScheduledExecutorService willTimer;

    /**
     * Session takeover: a device that comes back on a new connection (same client id, clean start) while the broker
     * still holds its old one makes the broker publish the old connection's will, just before the new connection's
     * first messages. A will is therefore settled after this grace: if a heartbeat of the device was received in the
     * grace after the will, the will belonged to a connection already replaced and changes nothing (event
     * {@code lwt_superseded}; a heartbeat later than the grace but already processed when the will is settled:
     * {@code lwt_after_return}, the device is back and stays online); otherwise the device goes offline as before.
     * Zero: every will at once. Events of a will settled later go to {@code sink}.
     */
    public synchronized void setTakeoverGrace(Duration grace, java.util.function.Consumer<List<LiveEvent>> sink) {
        this.takeoverGrace = grace == null || grace.isNegative() ? Duration.ZERO : grace;
        this.settledWillEvents = sink;
        if (!takeoverGrace.isZero() && willTimer == null) {
            // a few threads: a broker restart or a cut link brings a will from every device at once
            willTimer = java.util.concurrent.Executors.newScheduledThreadPool(4, r -> {
                Thread t = new Thread(r, "kaiser-will-settle");
                t.setDaemon(true);
                return t;
            });
        }
    }

    /** The device's LWT: offline (after the takeover grace), unless it is unknown or not online (dedupe). */
    public List<LiveEvent> will(String espId, Map<String, Object> payload, long receivedAt, String ingestPos) throws SQLException {
        Duration grace = takeoverGrace;
        if (grace.isZero()) {
            return applyWill(espId, payload, receivedAt, ingestPos);
        }
        willTimer.schedule(() -> {
            try {
                settledWillEvents.accept(settleWill(espId, payload, receivedAt, ingestPos, grace));
            } catch (Exception e) {
                LOG.warn("will of {} not settled (the heartbeat timeout still marks a silent device offline): {}", espId, e.toString());
            }
        }, grace.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
        return List.of();
    }

    List<LiveEvent> settleWill(String espId, Map<String, Object> payload, long receivedAt, String ingestPos, Duration grace) throws SQLException {
        try (Connection c = dataSource.getConnection();
             PreparedStatement ps = c.prepareStatement("SELECT min(received_at) FROM heartbeat_logs WHERE esp_id = ? AND received_at > ?")) {
            ps.setString(1, espId);
            ps.setTimestamp(2, new Timestamp(receivedAt));
            try (ResultSet rs = ps.executeQuery()) {
                Timestamp back = rs.next() ? rs.getTimestamp(1) : null;
                if (back != null) {
                    // the device spoke after its will: within the grace it was a takeover; later, it was away and is
                    // back already (the will was settled late, e.g. replayed): recorded, but it is not made offline now
                    long after = back.getTime() - receivedAt;
                    Map<String, Object> d = new LinkedHashMap<>();
                    d.put("source", "lwt");
                    d.put("reason", after <= grace.toMillis() ? "session_takeover" : canonicalReason(payload.get("reason")));
                    d.put("raw_reason", payload.get("reason"));
                    d.put("will_received_at", receivedAt);
                    d.put("heartbeat_after_ms", after);
                    deviceEvent(c, ingestPos, espId, after <= grace.toMillis() ? "lwt_superseded" : "lwt_after_return", d);
                    return List.of();
                }
            }
        }
        return applyWill(espId, payload, receivedAt, ingestPos);
    }

    private List<LiveEvent> applyWill(String espId, Map<String, Object> payload, long receivedAt, String ingestPos) throws SQLException {
        String reason = canonicalReason(payload.get("reason"));
        return inTransaction(c -> {
            Map<String, Object> row = lockDevice(c, espId);
            if (row == null || !ONLINE.equals(row.get("status"))) {
                return List.of();
            }
            int recent = countRecentWills(c, espId, receivedAt);
            boolean flapping = recent + 1 >= flappingThreshold;
            Map<String, Object> disconnect = new LinkedHashMap<>();
            disconnect.put("source", "lwt");
            disconnect.put("reason", reason);
            disconnect.put("raw_reason", payload.get("reason"));
            disconnect.put("timestamp", receivedAt / 1000);
            disconnect.put("lwt_count_window", recent + 1);
            disconnect.put("is_flapping", flapping);
            update(c, "UPDATE devices SET status = 'offline', status_changed_at = now(), last_disconnect = ?::jsonb WHERE esp_id = ?",
                    json(disconnect), espId);
            int reset = resetActuators(c, espId, "system:lwt_disconnect", receivedAt);
            deviceEvent(c, ingestPos, espId, "lwt_received", disconnect);
            Map<String, Object> d = new LinkedHashMap<>(disconnect);
            d.put("esp_id", espId);
            d.put("status", OFFLINE);
            d.put("actuator_states_reset", reset);
            return List.of(LiveEvent.of("esp_health", espId, d));
        });
    }

    private int countRecentWills(Connection c, String espId, long receivedAt) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(
                "SELECT count(*) FROM device_events WHERE esp_id = ? AND event_type = 'lwt_received' AND at > ?")) {
            ps.setString(1, espId);
            ps.setTimestamp(2, new Timestamp(receivedAt - flappingWindow.toMillis()));
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getInt(1);
            }
        }
    }

    static String canonicalReason(Object raw) {
        String r = raw == null ? "" : raw.toString().toLowerCase();
        return switch (r) {
            case "unexpected_disconnect", "network_failure", "power_loss", "broker_timeout", "watchdog_reset", "crash" -> r;
            case "timeout" -> "broker_timeout";
            case "wdt_reset" -> "watchdog_reset";
            default -> "unexpected_disconnect";
        };
    }

    /** Marks every online device silent for longer than the heartbeat timeout offline. */
    public List<LiveEvent> sweepTimeouts() throws SQLException {
        List<LiveEvent> events = new ArrayList<>();
        long now = System.currentTimeMillis();
        try (Connection c = dataSource.getConnection()) {
            c.setAutoCommit(false);
            try {
                List<String> timedOut = new ArrayList<>();
                try (PreparedStatement ps = c.prepareStatement("""
                        UPDATE devices SET status = 'offline', status_changed_at = now(),
                               last_disconnect = jsonb_build_object('source', 'heartbeat_timeout', 'reason', 'heartbeat_timeout',
                                                                    'timestamp', extract(epoch from now())::bigint)
                         WHERE status = 'online' AND last_seen < ? RETURNING esp_id""")) {
                    ps.setTimestamp(1, new Timestamp(now - heartbeatTimeout.toMillis()));
                    try (ResultSet rs = ps.executeQuery()) {
                        while (rs.next()) {
                            timedOut.add(rs.getString(1));
                        }
                    }
                }
                for (String espId : timedOut) {
                    int reset = resetActuators(c, espId, "system:heartbeat_timeout", now);
                    deviceEvent(c, null, espId, "device_offline", Map.of("source", "heartbeat_timeout"));
                    Map<String, Object> d = new LinkedHashMap<>();
                    d.put("esp_id", espId);
                    d.put("status", OFFLINE);
                    d.put("reason", "heartbeat_timeout");
                    d.put("source", "heartbeat_timeout");
                    d.put("timeout_seconds", heartbeatTimeout.toSeconds());
                    d.put("actuator_states_reset", reset);
                    events.add(LiveEvent.of("esp_health", espId, d));
                }
                c.commit();
            } catch (SQLException | RuntimeException e) {
                c.rollback();
                throw e;
            }
        }
        return events;
    }

    /** Offline means off in the server's view: every actuator not already off is reset, with a history row. */
    private int resetActuators(Connection c, String espId, String issuedBy, long at) throws SQLException {
        List<Integer> gpios = new ArrayList<>();
        try (PreparedStatement ps = c.prepareStatement("""
                UPDATE actuator_states SET state = 'off', value = 0, updated_at = ?, command_source = ?
                 WHERE esp_id = ? AND state NOT IN ('off', 'emergency_stop') RETURNING gpio""")) {
            ps.setTimestamp(1, new Timestamp(at));
            ps.setString(2, issuedBy);
            ps.setString(3, espId);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    gpios.add(rs.getInt(1));
                }
            }
        }
        for (int gpio : gpios) {
            try (PreparedStatement ps = c.prepareStatement("""
                    INSERT INTO actuator_history (esp_id, gpio, event, command, value, success, issued_by, message, at)
                    VALUES (?, ?, 'reset', 'OFF', 0, true, ?, 'device offline: state reset to off', ?)""")) {
                ps.setString(1, espId);
                ps.setInt(2, gpio);
                ps.setString(3, issuedBy);
                ps.setTimestamp(4, new Timestamp(at));
                ps.executeUpdate();
            }
        }
        return gpios.size();
    }

    public Map<String, Object> approve(String espId, String approvedBy, String name) throws SQLException {
        inTransaction(c -> {
            String status = lockedStatus(c, espId);
            if (!PENDING.equals(status) && !REJECTED.equals(status)) {
                throw ApiProblem.conflict("device " + espId + " is " + status + ": only pending_approval or rejected devices can be approved");
            }
            update(c, "UPDATE devices SET status = 'approved', status_changed_at = now(), approved_at = now(), approved_by = ?,"
                    + " name = coalesce(?, name), rejected_at = NULL, rejection_reason = NULL WHERE esp_id = ?", approvedBy, name, espId);
            deviceEvent(c, null, espId, "device_approved", Map.of("approved_by", approvedBy));
            return null;
        });
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("device_id", espId);
        out.put("status", APPROVED);
        out.put("approved_by", approvedBy);
        out.put("approved_at", System.currentTimeMillis() / 1000);
        return out;
    }

    public Map<String, Object> reject(String espId, String reason) throws SQLException {
        inTransaction(c -> {
            if (REJECTED.equals(lockedStatus(c, espId))) {
                throw ApiProblem.conflict("device " + espId + " is already rejected");
            }
            update(c, "UPDATE devices SET status = 'rejected', status_changed_at = now(), rejected_at = now(), rejection_reason = ?"
                    + " WHERE esp_id = ?", reason, espId);
            resetActuators(c, espId, "system:rejected", System.currentTimeMillis());
            deviceEvent(c, null, espId, "device_rejected", Map.of("reason", reason == null ? "" : reason));
            return null;
        });
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("device_id", espId);
        out.put("status", REJECTED);
        out.put("rejection_reason", reason);
        out.put("rejected_at", System.currentTimeMillis() / 1000);
        return out;
    }

    /** The device's status, its row locked for this transaction; 404 when it does not exist. */
    private static String lockedStatus(Connection c, String espId) throws SQLException {
        Map<String, Object> row = lockDevice(c, espId);
        if (row == null) {
            throw ApiProblem.notFound("device " + espId + " is unknown");
        }
        return (String) row.get("status");
    }

    /** Work done in one database transaction. */
    private interface Work<T> {
        T run(Connection c) throws SQLException;
    }

    private <T> T inTransaction(Work<T> work) throws SQLException {
        try (Connection c = dataSource.getConnection()) {
            c.setAutoCommit(false);
            try {
                T result = work.run(c);
                c.commit();
                return result;
            } catch (SQLException | RuntimeException e) {
                c.rollback();
                throw e;
            }
        }
    }

    LiveEvent health(String espId, Map<String, Object> hb, String status, String source) {
        Map<String, Object> d = new LinkedHashMap<>();
        d.put("esp_id", espId);
        d.put("status", status);
        d.put("source", source);
        d.put("heap_free", heapFree(hb));
        d.put("wifi_rssi", hb.get("wifi_rssi"));
        d.put("uptime", hb.get("uptime"));
        d.put("sensor_count", hb.get("sensor_count"));
        d.put("actuator_count", hb.get("actuator_count"));
        d.put("system_state", hb.get("system_state"));
        d.put("timestamp", hb.get("ts"));
        return LiveEvent.of("esp_health", espId, d);
    }

    static Object heapFree(Map<String, Object> hb) {
        return hb.containsKey("heap_free") ? hb.get("heap_free") : hb.get("free_heap");
    }

    void deviceEvent(Connection c, String ingestPos, String espId, String type, Map<String, ?> details) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("""
                INSERT INTO device_events (ingest_pos, esp_id, event_type, details) VALUES (?, ?, ?, ?::jsonb)
                ON CONFLICT DO NOTHING""")) {
            ps.setObject(1, ingestPos);
            ps.setString(2, espId);
            ps.setString(3, type);
            ps.setString(4, json(details));
            ps.executeUpdate();
        }
    }

    private static Map<String, Object> lockDevice(Connection c, String espId) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(
                "SELECT status, handover_epoch, rejected_at, last_seen FROM devices WHERE esp_id = ? FOR UPDATE")) {
            ps.setString(1, espId);
            try (ResultSet rs = ps.executeQuery()) {
                if (!rs.next()) {
                    return null;
                }
                Map<String, Object> row = new LinkedHashMap<>();
                row.put("status", rs.getString(1));
                row.put("handover_epoch", rs.getInt(2));
                row.put("rejected_at", rs.getTimestamp(3));
                row.put("last_seen", rs.getTimestamp(4));
                return row;
            }
        }
    }

    private static int update(Connection c, String sql, Object... args) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(sql)) {
            for (int i = 0; i < args.length; i++) {
                ps.setObject(i + 1, args[i]);
            }
            return ps.executeUpdate();
        }
    }

    static String json(Object o) {
        try {
            return JSON.writeValueAsString(o);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(e);
        }
    }

    static String str(Object o) {
        return o == null ? null : o.toString();
    }

    static String blankToNull(Object o) {
        return o == null || o.toString().isBlank() ? null : o.toString();
    }

    static Long longOrNull(Object o) {
        return o instanceof Number n ? n.longValue() : null;
    }

    static Integer intOrNull(Object o) {
        return o instanceof Number n ? n.intValue() : null;
    }
}
