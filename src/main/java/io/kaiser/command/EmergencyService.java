package io.kaiser.command;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;

import javax.sql.DataSource;

import io.kaiser.api.ApiProblem;
import io.kaiser.live.LiveEvent;
import io.kaiser.mqtt.TopicBuilder;

/**
 * Emergency stop and clear (contract decision 8). A stop creates, in one transaction and before anything is
 * published, the incident, the latch (per device or '*' for all) and one {@code emergency_stop} OFF command per
 * targeted actuator ({@code correlation_id = {incident}:{esp_id}:{gpio}}), plus for a single device the
 * {@code actuator/emergency} message as a command ({@code {incident}:{esp_id}}) so its emergency ack completes it.
 * The routes then publish the broadcast (all devices) and the commands through the command path: what cannot be
 * published stays in the outbox and, since emergency commands never expire, goes out when the broker returns.
 * Never rate-limited, never deduplicated: every stop is a new incident.
 */
public final class EmergencyService {
    public static final int MAX_REASON = 500;
    /** Command type of the broadcast (kaiser.command.*.emergency_broadcast properties). */
    public static final String BROADCAST_TYPE = "emergency_broadcast";

    private final DataSource dataSource;
    private final CommandService commands;
    private final TopicBuilder topics;
    private final int maxGpio;

    public EmergencyService(DataSource dataSource, CommandService commands, TopicBuilder topics, int maxGpio) {
        this.dataSource = dataSource;
        this.commands = commands;
        this.topics = topics;
        this.maxGpio = maxGpio;
    }

    /**
     * A stored stop, ready to publish.
     *
     * @param commands what to publish through direct:command-publish, in order: the broadcast (all devices) or the
     *                 device's actuator/emergency message, then one OFF per actuator
     */
    public record Stop(String incidentId, String espId, Integer gpio, String reason, String issuedBy, long timestamp,
                       int devicesStopped, int actuatorsStopped, List<Command> commands, List<Map<String, Object>> targets) {

        public String location() {
            return "/api/v1/actuators/emergency/" + incidentId;
        }

        /** The REST answer. */
        public Map<String, Object> response() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("incident_id", incidentId);
            m.put("incident_correlation_id", incidentId);
            m.put("scope", espId == null ? "all" : espId);
            if (gpio != null) {
                m.put("gpio", gpio);
            }
            m.put("devices_stopped", devicesStopped);
            m.put("actuators_stopped", actuatorsStopped);
            m.put("reason", reason);
            m.put("timestamp", Instant.ofEpochSecond(timestamp).toString());
            m.put("commands", targets);
            return m;
        }

        /** Live event actuator_alert. */
        public List<LiveEvent> events() {
            Map<String, Object> d = new LinkedHashMap<>();
            d.put("esp_id", espId == null ? "ALL" : espId);
            d.put("actuator_type", "all");
            d.put("alert_type", "emergency_stop");
            d.put("reason", reason);
            d.put("devices_stopped", devicesStopped);
            d.put("actuators_stopped", actuatorsStopped);
            d.put("issued_by", issuedBy);
            d.put("incident_correlation_id", incidentId);
            if (gpio != null) {
                d.put("gpio", gpio);
            }
            return List.of(LiveEvent.of("actuator_alert", espId == null ? "ALL" : espId, d));
        }
    }

    /** A stored clear, ready to publish. */
    public record Clear(String espId, String reason, long timestamp, List<String> incidents, List<Command> commands) {

        public Map<String, Object> response() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("scope", espId == null ? "all" : espId);
            m.put("cleared_incidents", incidents);
            m.put("devices_cleared", commands.size());
            m.put("reason", reason);
            m.put("timestamp", Instant.ofEpochSecond(timestamp).toString());
            List<Map<String, Object>> cs = new ArrayList<>();
            for (Command c : commands) {
                Map<String, Object> t = new LinkedHashMap<>();
                t.put("esp_id", c.espId());
                t.put("correlation_id", c.correlationId());
                cs.add(t);
            }
            m.put("commands", cs);
            return m;
        }

        public List<LiveEvent> events() {
            Map<String, Object> d = new LinkedHashMap<>();
            d.put("esp_id", espId == null ? "ALL" : espId);
            d.put("actuator_type", "all");
            d.put("alert_type", "emergency_cleared");
            d.put("reason", reason);
            d.put("devices_cleared", commands.size());
            d.put("incident_correlation_ids", incidents);
            if (incidents.size() == 1) {
                d.put("incident_correlation_id", incidents.get(0));
            }
            return List.of(LiveEvent.of("actuator_alert", espId == null ? "ALL" : espId, d));
        }
    }

    /** {@code POST /actuators/emergency_stop {esp_id?, gpio?, reason}}. */
    public Stop stop(Map<String, Object> body, String issuedBy) throws SQLException {
        body = body == null ? Map.of() : body;
        unknownFields(body, Set.of("esp_id", "gpio", "reason"));
        String reason = reason(body.get("reason"), true);
        String espId = espId(body.get("esp_id"));
        Integer gpio = gpio(body.get("gpio"));
        String incident = UUID.randomUUID().toString();
        long now = System.currentTimeMillis() / 1000;
        List<Command> out = new ArrayList<>();
        List<Map<String, Object>> targets = new ArrayList<>();
        int devices;
        try (Connection c = dataSource.getConnection()) {
            c.setAutoCommit(false);
            try {
                if (espId != null) {
                    requireDevice(c, espId);
                }
                update(c, "INSERT INTO emergency_incidents (incident_id, scope, gpio, reason, issued_by) VALUES (?, ?, ?, ?, ?)",
                        incident, espId == null ? "*" : espId, gpio, reason, issuedBy);
                update(c, """
                        INSERT INTO emergency_latches (scope, incident_id, reason, issued_by) VALUES (?, ?, ?, ?)
                        ON CONFLICT (scope) DO UPDATE SET incident_id = excluded.incident_id, reason = excluded.reason,
                               issued_by = excluded.issued_by, latched_at = now()""",
                        espId == null ? "*" : espId, incident, reason, issuedBy);
                if (espId != null) {
                    // the device's own emergency topic: its emergency/ack completes this command
                    Map<String, Object> f = new LinkedHashMap<>();
                    f.put("command", "emergency_stop");
                    f.put("reason", reason);
                    out.add(commands.create(c, new CommandSpec("emergency_stop", espId, null, "actuator-emergency", f,
                            "emergency-stop"), incident + ":" + espId, incident, issuedBy));
                }
                Set<String> stoppedDevices = new LinkedHashSet<>();
                try (PreparedStatement ps = c.prepareStatement("""
                        SELECT a.esp_id, a.gpio FROM actuator_states a JOIN devices d ON d.esp_id = a.esp_id
                         WHERE (CAST(? AS text) IS NULL OR a.esp_id = ?) AND (CAST(? AS integer) IS NULL OR a.gpio = ?)
                         ORDER BY a.esp_id, a.gpio""")) {
                    ps.setString(1, espId);
                    ps.setString(2, espId);
                    ps.setObject(3, gpio, java.sql.Types.INTEGER);
                    ps.setObject(4, gpio, java.sql.Types.INTEGER);
                    try (ResultSet rs = ps.executeQuery()) {
                        while (rs.next()) {
                            String esp = rs.getString(1);
                            int g = rs.getInt(2);
                            Map<String, Object> f = new LinkedHashMap<>();
                            f.put("command", "OFF");
                            f.put("value", 0.0);
                            f.put("duration", 0);
                            String corr = incident + ":" + esp + ":" + g;
                            out.add(commands.create(c, new CommandSpec("emergency_stop", esp, g, "actuator-command", f, "emergency-stop"),
                                    corr, incident, issuedBy));
                            stoppedDevices.add(esp);
                            Map<String, Object> t = new LinkedHashMap<>();
                            t.put("esp_id", esp);
                            t.put("gpio", g);
                            t.put("correlation_id", corr);
                            targets.add(t);
                        }
                    }
                }
                if (espId != null) {
                    devices = 1;
                } else {
                    devices = Math.max(stoppedDevices.size(), gpio == null ? count(c, "SELECT count(*) FROM devices") : 0);
                    // the broadcast is a command too (esp_id '*'): durable in the outbox, published once, first
                    Map<String, Object> b = new LinkedHashMap<>();
                    b.put("command", "emergency_stop");
                    b.put("reason", reason);
                    b.put("issued_by", issuedBy);
                    b.put("incident_correlation_id", incident);
                    b.put("devices_stopped", devices);
                    b.put("actuators_stopped", targets.size());
                    if (gpio != null) {
                        b.put("gpio", gpio);
                    }
                    String corr = broadcastId(incident);
                    out.add(0, commands.create(c, new CommandSpec(BROADCAST_TYPE, "*", null, "broadcast-emergency", b, "emergency-stop"),
                            corr, incident, issuedBy));
                    // rows of one transaction share created_at; the outbox sends the broadcast first all the same
                    update(c, "UPDATE commands SET created_at = created_at - interval '1 millisecond' WHERE correlation_id = ?", corr);
                }
                c.commit();
            } catch (SQLException | RuntimeException e) {
                c.rollback();
                throw e;
            }
        }
        return new Stop(incident, espId, gpio, reason, issuedBy, now, devices, targets.size(), out, targets);
    }

    /** The broadcast's command id: {incident}:broadcast (as in contract/vectors/broadcast-emergency). */
    public static String broadcastId(String incident) {
        return incident + ":broadcast";
    }

    /**
     * Nobody answers a broadcast: once it is published its command is done (applied). Called after the stop's
     * publishing and when the incident is viewed (a broadcast sent later from the outbox). A device's intent_outcome
     * for the broadcast (the firmware sends one) may come first and leave it 'accepted': that is done too.
     */
    public void broadcastDone(String incident) throws SQLException {
        try (Connection c = dataSource.getConnection()) {
            update(c, """
                    UPDATE commands SET status = 'applied', completed_at = now(), accepted_at = coalesce(accepted_at, published_at),
                           status_reason = 'published to every device; no answer expected'
                     WHERE correlation_id = ? AND status IN ('pending', 'accepted') AND published_at IS NOT NULL""", broadcastId(incident));
        }
    }

    /** {@code POST /actuators/clear_emergency {esp_id?, reason?}}: releases the latch(es) and tells the devices. */
    public Clear clear(Map<String, Object> body, String issuedBy) throws SQLException {
        body = body == null ? Map.of() : body;
        unknownFields(body, Set.of("esp_id", "reason"));
        String reason = reason(body.get("reason"), false);
        if (reason == null) {
            reason = "manual";
        }
        String espId = espId(body.get("esp_id"));
        long now = System.currentTimeMillis() / 1000;
        List<Command> out = new ArrayList<>();
        List<String> incidents = new ArrayList<>();
        try (Connection c = dataSource.getConnection()) {
            c.setAutoCommit(false);
            try {
                Map<String, String> latches = new LinkedHashMap<>();
                if (espId != null) {
                    requireDevice(c, espId);
                }
                try (PreparedStatement ps = c.prepareStatement(
                        "SELECT scope, incident_id FROM emergency_latches ORDER BY scope FOR UPDATE")) {
                    try (ResultSet rs = ps.executeQuery()) {
                        while (rs.next()) {
                            latches.put(rs.getString(1), rs.getString(2));
                        }
                    }
                }
                Map<String, String> targets = new LinkedHashMap<>(); // esp_id -> incident
                if (espId != null) {
                    if (!latches.containsKey(espId)) {
                        throw ApiProblem.conflict(latches.containsKey("*")
                                ? "device " + espId + " has no latch of its own; all devices are emergency-stopped (incident "
                                        + latches.get("*") + "): clear without esp_id"
                                : "device " + espId + " is not emergency-stopped");
                    }
                    update(c, "DELETE FROM emergency_latches WHERE scope = ?", espId);
                    targets.put(espId, latches.get(espId));
                    markCleared(c, espId, reason, incidents);
                } else {
                    if (latches.isEmpty()) {
                        throw ApiProblem.conflict("nothing is emergency-stopped");
                    }
                    update(c, "DELETE FROM emergency_latches");
                    if (latches.containsKey("*")) {
                        try (PreparedStatement ps = c.prepareStatement("SELECT esp_id FROM devices ORDER BY esp_id");
                             ResultSet rs = ps.executeQuery()) {
                            while (rs.next()) {
                                targets.put(rs.getString(1), latches.get("*"));
                            }
                        }
                    }
                    for (Map.Entry<String, String> l : latches.entrySet()) {
                        if (!l.getKey().equals("*")) {
                            targets.put(l.getKey(), l.getValue());
                        }
                    }
                    markCleared(c, null, reason, incidents);
                }
                for (Map.Entry<String, String> t : targets.entrySet()) {
                    Map<String, Object> f = new LinkedHashMap<>();
                    f.put("command", "clear_emergency");
                    f.put("reason", reason);
                    out.add(commands.create(c, new CommandSpec("emergency_clear", t.getKey(), null, "actuator-emergency", f,
                            "emergency-clear"), UUID.randomUUID().toString(), t.getValue(), issuedBy));
                }
                c.commit();
            } catch (SQLException | RuntimeException e) {
                c.rollback();
                throw e;
            }
        }
        return new Clear(espId, reason, now, incidents, out);
    }

    private static void markCleared(Connection c, String espId, String reason, List<String> incidents) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("""
                UPDATE emergency_incidents SET cleared_at = now(), clear_reason = ?
                 WHERE cleared_at IS NULL AND (CAST(? AS text) IS NULL OR scope = ?)
                RETURNING incident_id""")) {
            ps.setString(1, reason);
            ps.setString(2, espId);
            ps.setString(3, espId);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    incidents.add(rs.getString(1));
                }
            }
        }
    }

    /** {@code GET /actuators/emergency/{incident_id}}: the incident with every device's and actuator's acknowledgement. */
    public Map<String, Object> view(String incidentId) throws SQLException {
        if (incidentId == null || incidentId.length() > 128) {
            throw ApiProblem.badRequest("incident_id is not valid");
        }
        broadcastDone(incidentId);
        Map<String, Object> m = new LinkedHashMap<>();
        try (Connection c = dataSource.getConnection()) {
            try (PreparedStatement ps = c.prepareStatement("""
                    SELECT incident_id, scope, gpio, reason, issued_by, created_at, cleared_at, clear_reason,
                           EXISTS (SELECT 1 FROM emergency_latches l WHERE l.incident_id = i.incident_id)
                      FROM emergency_incidents i WHERE incident_id = ?""")) {
                ps.setString(1, incidentId);
                try (ResultSet rs = ps.executeQuery()) {
                    if (!rs.next()) {
                        throw ApiProblem.notFound("emergency incident " + incidentId + " not found");
                    }
                    m.put("incident_id", rs.getString(1));
                    m.put("scope", "*".equals(rs.getString(2)) ? "all" : rs.getString(2));
                    m.put("gpio", rs.getObject(3));
                    m.put("reason", rs.getString(4));
                    m.put("issued_by", rs.getString(5));
                    m.put("created_at", iso(rs.getTimestamp(6)));
                    m.put("cleared_at", iso(rs.getTimestamp(7)));
                    m.put("clear_reason", rs.getString(8));
                    m.put("latched", rs.getBoolean(9));
                }
            }
            // device-level emergency acks ({incident}:{esp_id}[...]) as stored answers
            Map<String, Map<String, Object>> acks = new LinkedHashMap<>();
            try (PreparedStatement ps = c.prepareStatement("""
                    SELECT DISTINCT ON (esp_id) esp_id, status, received_at, correlation_id FROM device_answers
                     WHERE topic_key = 'emergency-ack' AND left(correlation_id, length(?) + 1) = ? || ':'
                     ORDER BY esp_id, received_at DESC""")) {
                ps.setString(1, incidentId);
                ps.setString(2, incidentId);
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        Map<String, Object> a = new LinkedHashMap<>();
                        a.put("status", rs.getString(2));
                        a.put("received_at", iso(rs.getTimestamp(3)));
                        a.put("correlation_id", rs.getString(4));
                        acks.put(rs.getString(1), a);
                    }
                }
            }
            Map<String, Map<String, Object>> devices = new LinkedHashMap<>();
            int acknowledged = 0;
            int pending = 0;
            int failed = 0;
            List<Map<String, Object>> clears = new ArrayList<>();
            try (PreparedStatement ps = c.prepareStatement("""
                    SELECT correlation_id, esp_id, command_type, gpio, status, status_reason, published_at, completed_at, answer_topic
                      FROM commands WHERE incident_id = ? ORDER BY esp_id, gpio NULLS FIRST, created_at""")) {
                ps.setString(1, incidentId);
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        String esp = rs.getString(2);
                        String type = rs.getString(3);
                        Integer gpio = (Integer) rs.getObject(4, Integer.class);
                        String status = rs.getString(5);
                        Map<String, Object> cmd = new LinkedHashMap<>();
                        cmd.put("correlation_id", rs.getString(1));
                        if (gpio != null) {
                            cmd.put("gpio", gpio);
                        }
                        cmd.put("status", status);
                        cmd.put("status_reason", rs.getString(6));
                        cmd.put("published_at", iso(rs.getTimestamp(7)));
                        cmd.put("completed_at", iso(rs.getTimestamp(8)));
                        cmd.put("answer_topic", rs.getString(9));
                        if (BROADCAST_TYPE.equals(type)) {
                            m.put("broadcast", cmd);
                            continue;
                        }
                        if ("emergency_clear".equals(type)) {
                            cmd.put("esp_id", esp);
                            clears.add(cmd);
                            continue;
                        }
                        Map<String, Object> dev = devices.computeIfAbsent(esp, e -> {
                            Map<String, Object> d = new LinkedHashMap<>();
                            d.put("esp_id", e);
                            d.put("emergency_ack", acks.get(e));
                            d.put("actuators", new ArrayList<Map<String, Object>>());
                            return d;
                        });
                        if (gpio == null) {
                            dev.put("emergency_message", cmd);
                            continue;
                        }
                        Map<String, Object> ack = acks.get(esp);
                        boolean ackExecuted = ack != null && "applied".equals(CommandService.outcome("emergency-ack", (String) ack.get("status")));
                        String state;
                        if ("applied".equals(status) || ackExecuted) {
                            state = "acknowledged";
                            acknowledged++;
                        } else if ("pending".equals(status) || "accepted".equals(status)) {
                            state = "pending";
                            pending++;
                        } else {
                            state = "failed";
                            failed++;
                        }
                        cmd.put("acknowledgement", state);
                        @SuppressWarnings("unchecked")
                        List<Map<String, Object>> list = (List<Map<String, Object>>) dev.get("actuators");
                        list.add(cmd);
                    }
                }
            }
            Map<String, Object> counts = new LinkedHashMap<>();
            counts.put("actuators", acknowledged + pending + failed);
            counts.put("acknowledged", acknowledged);
            counts.put("pending", pending);
            counts.put("failed", failed);
            counts.put("devices", devices.size());
            counts.put("devices_acknowledged", devices.values().stream().filter(EmergencyService::deviceAcknowledged).count());
            m.putIfAbsent("broadcast", null);
            m.put("counts", counts);
            m.put("devices", new ArrayList<>(devices.values()));
            m.put("clear_commands", clears);
        }
        return m;
    }

    @SuppressWarnings("unchecked")
    private static boolean deviceAcknowledged(Map<String, Object> d) {
        List<Map<String, Object>> acts = (List<Map<String, Object>>) d.get("actuators");
        if (acts.isEmpty()) {
            Map<String, Object> msg = (Map<String, Object>) d.get("emergency_message");
            return d.get("emergency_ack") != null || msg != null && "applied".equals(msg.get("status"));
        }
        return acts.stream().allMatch(a -> "acknowledged".equals(a.get("acknowledgement")));
    }

    private String reason(Object raw, boolean required) {
        if (raw == null) {
            if (required) {
                throw ApiProblem.badRequest("reason is required (1 to " + MAX_REASON + " characters)");
            }
            return null;
        }
        if (!(raw instanceof String s) || s.isBlank() || s.length() > MAX_REASON) {
            throw ApiProblem.badRequest("reason must be a text of 1 to " + MAX_REASON + " characters");
        }
        return s.trim();
    }

    private static String espId(Object raw) {
        if (raw == null) {
            return null;
        }
        if (!(raw instanceof String s) || s.isBlank() || s.length() > 64) {
            throw ApiProblem.badRequest("esp_id must be a device id text");
        }
        return s;
    }

    private Integer gpio(Object raw) {
        if (raw == null) {
            return null;
        }
        if (!(raw instanceof Integer g) || g < 0 || g > maxGpio) {
            throw ApiProblem.badRequest("gpio must be an integer from 0 to " + maxGpio);
        }
        return g;
    }

    private static void requireDevice(Connection c, String espId) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT 1 FROM devices WHERE esp_id = ?")) {
            ps.setString(1, espId);
            try (ResultSet rs = ps.executeQuery()) {
                if (!rs.next()) {
                    throw ApiProblem.notFound("device " + espId + " is unknown");
                }
            }
        }
    }

    private static void unknownFields(Map<String, Object> body, Set<String> allowed) {
        List<String> unknown = body.keySet().stream().filter(k -> !allowed.contains(k)).sorted().toList();
        if (!unknown.isEmpty()) {
            throw ApiProblem.badRequest("unknown field(s): " + String.join(", ", unknown));
        }
    }

    private static int count(Connection c, String sql) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(sql); ResultSet rs = ps.executeQuery()) {
            rs.next();
            return rs.getInt(1);
        }
    }

    private static void update(Connection c, String sql, Object... params) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(sql)) {
            for (int i = 0; i < params.length; i++) {
                ps.setObject(i + 1, params[i]);
            }
            ps.executeUpdate();
        }
    }

    private static String iso(Timestamp t) {
        return t == null ? null : t.toInstant().toString();
    }
}
