package io.kaiser.device;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

import javax.sql.DataSource;

import io.kaiser.live.LiveEvent;
import org.apache.camel.Header;
import org.apache.camel.ExchangeProperty;
import org.apache.camel.Body;
import io.kaiser.KaiserHeaders;

/**
 * Heartbeats of one ingest batch, applied together: the devices' rows are locked with one query, the registration
 * rules of {@link DeviceRegistry} run in memory in arrival order, and the inserts and updates go out as JDBC batches
 * in one transaction. A fleet's heartbeats cost a handful of round trips per batch instead of four or five per
 * heartbeat, which is what decides how many devices one server holds. The ACKs, will clears and live events are
 * handed out only after the commit, so a device never hears of a state the database does not have.
 *
 * <p>A message of a device whose first heartbeat is still pending in the batch (a device that does not wait for its
 * ACK) stores the batch's heartbeats first, through {@link DeviceRegistry#requireKnown}: arrival order is kept.
 */
public final class HeartbeatStore {
    private static final String INSERT_DEVICE = """
            INSERT INTO devices (esp_id, kaiser_id, status, hardware_type, ip_address, zone_id, master_zone_id,
                                 last_seen, last_heartbeat, heartbeat_count, approved_at, approved_by)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?::jsonb, 1, ?, ?) ON CONFLICT (esp_id) DO NOTHING""";
    private static final String REDISCOVER = """
            UPDATE devices SET status = 'pending_approval', status_changed_at = now(), last_seen = ?, last_heartbeat = ?::jsonb
             WHERE esp_id = ?""";
    private static final String REFRESH_PENDING = """
            UPDATE devices SET heartbeat_count = heartbeat_count + 1, last_seen = ?, last_heartbeat = ?::jsonb,
                               ip_address = coalesce(?, ip_address)
             WHERE esp_id = ?""";
    private static final String REFRESH_ONLINE = """
            UPDATE devices SET status = 'online', last_seen = ?, heartbeat_count = heartbeat_count + 1, last_heartbeat = ?::jsonb,
                               ip_address = coalesce(?, ip_address),
                               status_changed_at = CASE WHEN status <> 'online' THEN now() ELSE status_changed_at END
             WHERE esp_id = ?""";
    private static final String INSERT_LOG = """
            INSERT INTO heartbeat_logs (ingest_pos, esp_id, received_at, device_ts, uptime_s, heap_free, wifi_rssi,
                                        sensor_count, actuator_count, system_state, payload)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?::jsonb) ON CONFLICT (ingest_pos) DO NOTHING""";
    private static final String INSERT_EVENT = """
            INSERT INTO device_events (ingest_pos, esp_id, event_type, details) VALUES (?, ?, ?, ?::jsonb)
            ON CONFLICT DO NOTHING""";

    private final DataSource dataSource;
    private final DeviceRegistry registry;

    public HeartbeatStore(DataSource dataSource, DeviceRegistry registry) {
        this.dataSource = dataSource;
        this.registry = registry;
    }

    /** The heartbeats of one ingest batch: pending ones, and the results of those already stored. */
    public static final class Batch {
        private final List<Heartbeat> pending = new ArrayList<>();
        private final List<DeviceRegistry.HeartbeatResult> stored = new ArrayList<>();

        public boolean isEmpty() {
            return pending.isEmpty() && stored.isEmpty();
        }
    }

    private record Heartbeat(String espId, Map<String, Object> payload, long receivedAt, String ingestPos, String json) { }

    /** A device's row as the batch sees it, changed by each heartbeat applied in memory. */
    private static final class DeviceState {
        String status;
        int epoch;
        Timestamp rejectedAt;

        DeviceState(String status, int epoch, Timestamp rejectedAt) {
            this.status = status;
            this.epoch = epoch;
            this.rejectedAt = rejectedAt;
        }
    }

    public Batch newBatch() {
        registry.newIngestBatch();
        return new Batch();
    }

    /** Adds one validated heartbeat to the batch (nothing is written yet). */
    public void add(@ExchangeProperty(KaiserHeaders.HEARTBEAT_BATCH) Batch batch, @Header(KaiserHeaders.ESP_ID) String espId,
                    @Body Map<String, Object> payload, @Header(KaiserHeaders.RECEIVED_AT) long receivedAt,
                    @Header(KaiserHeaders.INGEST_POS) String ingestPos) {
        batch.pending.add(new Heartbeat(espId, payload, receivedAt, ingestPos, DeviceRegistry.json(payload)));
        if (!registry.isKnownCached(espId)) {
            registry.registering(espId, () -> storePending(batch));
        }
    }

    /**
     * Stores what is still pending and returns every heartbeat of the batch with its ACK and live events, in arrival
     * order, for the route to publish.
     */
    public List<DeviceRegistry.HeartbeatResult> store(Batch batch) throws java.sql.SQLException {
        storePending(batch);
        return batch.stored;
    }

    /** The live events of stored heartbeats, in order. */
    public List<LiveEvent> events(List<DeviceRegistry.HeartbeatResult> results) {
        List<LiveEvent> events = new ArrayList<>();
        results.forEach(r -> events.addAll(r.events()));
        return events;
    }

    private void storePending(Batch batch) throws SQLException {
        if (batch.pending.isEmpty()) {
            return;
        }
        List<Heartbeat> heartbeats = new ArrayList<>(batch.pending);
        List<DeviceRegistry.HeartbeatResult> results = new ArrayList<>(heartbeats.size());
        try (Connection c = dataSource.getConnection()) {
            c.setAutoCommit(false);
            try (PreparedStatement insertDevice = c.prepareStatement(INSERT_DEVICE);
                 PreparedStatement rediscover = c.prepareStatement(REDISCOVER);
                 PreparedStatement refreshPending = c.prepareStatement(REFRESH_PENDING);
                 PreparedStatement refreshOnline = c.prepareStatement(REFRESH_ONLINE);
                 PreparedStatement insertLog = c.prepareStatement(INSERT_LOG);
                 PreparedStatement insertEvent = c.prepareStatement(INSERT_EVENT)) {
                Map<String, DeviceState> devices = lock(c, heartbeats);
                for (Heartbeat hb : heartbeats) {
                    results.add(apply(hb, devices, insertDevice, rediscover, refreshPending, refreshOnline, insertLog, insertEvent));
                }
                // statements of one kind in arrival order; the kinds in the order a device's row can move through them
                for (PreparedStatement ps : List.of(insertDevice, rediscover, refreshPending, refreshOnline, insertLog, insertEvent)) {
                    ps.executeBatch();
                }
                c.commit();
            } catch (SQLException | RuntimeException e) {
                c.rollback();
                throw e;
            }
        }
        batch.pending.clear();
        for (Heartbeat hb : heartbeats) {
            registry.registered(hb.espId());
        }
        batch.stored.addAll(results);
    }

    /** Locks the batch's devices in esp_id order (two batches or a sweep never wait on each other in a cycle). */
    private static Map<String, DeviceState> lock(Connection c, List<Heartbeat> heartbeats) throws SQLException {
        TreeSet<String> ids = new TreeSet<>();
        heartbeats.forEach(h -> ids.add(h.espId()));
        Map<String, DeviceState> devices = new HashMap<>();
        try (PreparedStatement ps = c.prepareStatement("""
                SELECT esp_id, status, handover_epoch, rejected_at FROM devices WHERE esp_id = ANY (?) ORDER BY esp_id FOR UPDATE""")) {
            ps.setArray(1, c.createArrayOf("text", ids.toArray()));
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    devices.put(rs.getString(1), new DeviceState(rs.getString(2), rs.getInt(3), rs.getTimestamp(4)));
                }
            }
        }
        return devices;
    }

    private DeviceRegistry.HeartbeatResult apply(Heartbeat h, Map<String, DeviceState> devices, PreparedStatement insertDevice,
                                                 PreparedStatement rediscover, PreparedStatement refreshPending,
                                                 PreparedStatement refreshOnline, PreparedStatement insertLog,
                                                 PreparedStatement insertEvent) throws SQLException {
        String espId = h.espId();
        Map<String, Object> hb = h.payload();
        Timestamp now = new Timestamp(h.receivedAt());
        List<LiveEvent> events = new ArrayList<>();
        boolean clearWill = false;
        String ackStatus;
        DeviceState device = devices.get(espId);
        if (device == null) {
            String status = registry.autoApproves(espId) ? DeviceRegistry.ONLINE : DeviceRegistry.PENDING;
            boolean online = DeviceRegistry.ONLINE.equals(status);
            insertDevice.setString(1, espId);
            insertDevice.setString(2, registry.kaiserId());
            insertDevice.setString(3, status);
            insertDevice.setString(4, DeviceRegistry.str(hb.getOrDefault("hardware_type", "ESP32_WROOM")));
            insertDevice.setString(5, DeviceRegistry.str(hb.get("wifi_ip")));
            insertDevice.setString(6, DeviceRegistry.blankToNull(hb.get("zone_id")));
            insertDevice.setString(7, DeviceRegistry.blankToNull(hb.get("master_zone_id")));
            insertDevice.setTimestamp(8, now);
            insertDevice.setString(9, h.json());
            insertDevice.setTimestamp(10, online ? now : null);
            insertDevice.setString(11, online ? "auto-approve" : null);
            insertDevice.addBatch();
            event(insertEvent, h, "device_discovered", Map.of("status", status));
            Map<String, Object> d = new LinkedHashMap<>();
            d.put("esp_id", espId);
            d.put("device_id", espId);
            d.put("status", status);
            d.put("discovered_at", h.receivedAt() / 1000);
            d.put("heap_free", DeviceRegistry.heapFree(hb));
            d.put("wifi_rssi", hb.get("wifi_rssi"));
            d.put("sensor_count", hb.get("sensor_count"));
            d.put("actuator_count", hb.get("actuator_count"));
            d.put("ip_address", hb.get("wifi_ip"));
            events.add(LiveEvent.of("device_discovered", espId, d));
            if (online) {
                log(insertLog, h, now);
                events.add(registry.health(espId, hb, DeviceRegistry.ONLINE, "heartbeat"));
            }
            devices.put(espId, new DeviceState(status, 1, null));
            ackStatus = status;
        } else {
            switch (device.status) {
                case DeviceRegistry.REJECTED -> {
                    if (device.rejectedAt == null || h.receivedAt() - device.rejectedAt.getTime() > registry.rejectionCooldown().toMillis()) {
                        rediscover.setTimestamp(1, now);
                        rediscover.setString(2, h.json());
                        rediscover.setString(3, espId);
                        rediscover.addBatch();
                        event(insertEvent, h, "device_rediscovered", Map.of());
                        events.add(LiveEvent.of("device_rediscovered", espId, Map.of("esp_id", espId, "device_id", espId,
                                "rediscovered_at", h.receivedAt() / 1000)));
                        device.status = DeviceRegistry.PENDING;
                        ackStatus = DeviceRegistry.PENDING;
                    } else {
                        ackStatus = DeviceRegistry.REJECTED;
                    }
                }
                case DeviceRegistry.PENDING -> {
                    refresh(refreshPending, h, now);
                    ackStatus = DeviceRegistry.PENDING;
                }
                default -> {
                    String previous = device.status;
                    refresh(refreshOnline, h, now);
                    log(insertLog, h, now);
                    if (!DeviceRegistry.ONLINE.equals(previous)) {
                        event(insertEvent, h, "device_online", Map.of("previous_status", previous));
                        clearWill = true;
                    }
                    LiveEvent health = registry.health(espId, hb, DeviceRegistry.ONLINE, "heartbeat");
                    health.data().put("is_reconnect", DeviceRegistry.OFFLINE.equals(previous));
                    events.add(health);
                    device.status = DeviceRegistry.ONLINE;
                    ackStatus = DeviceRegistry.ONLINE;
                }
            }
        }
        int epoch = device == null ? 1 : device.epoch;
        if (hb.get("active_handover_epoch") instanceof Number n && n.intValue() > 0) {
            epoch = n.intValue();
        }
        return new DeviceRegistry.HeartbeatResult(espId, DeviceRegistry.ack(espId, ackStatus, Math.max(1, epoch)), clearWill, events,
                registry.isFresh(h.receivedAt()));
    }

    private static void refresh(PreparedStatement ps, Heartbeat h, Timestamp now) throws SQLException {
        ps.setTimestamp(1, now);
        ps.setString(2, h.json());
        ps.setString(3, DeviceRegistry.str(h.payload().get("wifi_ip")));
        ps.setString(4, h.espId());
        ps.addBatch();
    }

    private static void log(PreparedStatement ps, Heartbeat h, Timestamp at) throws SQLException {
        Map<String, Object> hb = h.payload();
        ps.setString(1, h.ingestPos());
        ps.setString(2, h.espId());
        ps.setTimestamp(3, at);
        ps.setObject(4, DeviceRegistry.longOrNull(hb.get("ts")), java.sql.Types.BIGINT);
        ps.setObject(5, DeviceRegistry.longOrNull(hb.get("uptime")), java.sql.Types.BIGINT);
        ps.setObject(6, DeviceRegistry.longOrNull(DeviceRegistry.heapFree(hb)), java.sql.Types.BIGINT);
        ps.setObject(7, DeviceRegistry.intOrNull(hb.get("wifi_rssi")), java.sql.Types.INTEGER);
        ps.setObject(8, DeviceRegistry.intOrNull(hb.get("sensor_count")), java.sql.Types.INTEGER);
        ps.setObject(9, DeviceRegistry.intOrNull(hb.get("actuator_count")), java.sql.Types.INTEGER);
        ps.setString(10, DeviceRegistry.str(hb.get("system_state")));
        ps.setString(11, h.json());
        ps.addBatch();
    }

    private static void event(PreparedStatement ps, Heartbeat h, String type, Map<String, ?> details) throws SQLException {
        ps.setString(1, h.ingestPos());
        ps.setString(2, h.espId());
        ps.setString(3, type);
        ps.setString(4, DeviceRegistry.json(details));
        ps.addBatch();
    }
}
