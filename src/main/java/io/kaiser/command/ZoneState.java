package io.kaiser.command;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import javax.sql.DataSource;

import io.kaiser.api.ApiProblem;

/**
 * The device's zone and subzones in the database. Applies zone and subzone acks to the device's state in the database: the state follows the ack, not the publish.
 * What the ack does not carry (zone name, subzone gpios) comes from the command it answers (by correlation_id).
 * Runs before the answer completes its command, so a REST caller waiting with {@code Prefer: wait} reads the new state.
 * Every step is idempotent: a replayed ack changes nothing more.
 */
public final class ZoneState {
    private final DataSource dataSource;

    public ZoneState(DataSource dataSource) {
        this.dataSource = dataSource;
    }

    /** zone/ack: {@code zone_assigned} sets zone, master zone and the zone name of the answered command. */
    public void zoneAck(String espId, Map<String, Object> ack) throws SQLException {
        if ("zone_removed".equals(ack.get("status"))) {
            // the firmware cascade-deletes its subzones with the zone (upstream-firmware 7); the zone fields are
            // cleared here too, before the answer completes the command (acks-zone-ack clears them again, harmlessly)
            try (Connection c = dataSource.getConnection()) {
                try (PreparedStatement ps = c.prepareStatement("DELETE FROM subzones WHERE esp_id = ?")) {
                    ps.setString(1, espId);
                    ps.executeUpdate();
                }
                try (PreparedStatement ps = c.prepareStatement(
                        "UPDATE devices SET zone_id = NULL, master_zone_id = NULL, zone_name = NULL WHERE esp_id = ?")) {
                    ps.setString(1, espId);
                    ps.executeUpdate();
                }
            }
            return;
        }
        if (!"zone_assigned".equals(ack.get("status"))) {
            return; // error: nothing changed on the device
        }
        String zone = text(ack.get("zone_id"));
        String master = text(ack.get("master_zone_id"));
        String corr = text(ack.get("correlation_id"));
        try (Connection c = dataSource.getConnection()) {
            String name = null;
            boolean fromCommand = false;
            if (!corr.isEmpty()) {
                try (PreparedStatement ps = c.prepareStatement("""
                        SELECT NULLIF(payload->>'zone_name', '') FROM commands
                         WHERE correlation_id = ? AND esp_id = ? AND command_type = 'zone_assign' AND payload->>'zone_id' = ?""")) {
                    ps.setString(1, corr);
                    ps.setString(2, espId);
                    ps.setString(3, zone);
                    try (ResultSet rs = ps.executeQuery()) {
                        if (rs.next()) {
                            fromCommand = true;
                            name = rs.getString(1);
                        }
                    }
                }
            }
            try (PreparedStatement ps = c.prepareStatement("""
                    UPDATE devices SET zone_name = CASE WHEN ? THEN ? WHEN zone_id IS NOT DISTINCT FROM NULLIF(?, '') THEN zone_name END,
                           zone_id = NULLIF(?, ''), master_zone_id = NULLIF(?, '')
                     WHERE esp_id = ?""")) {
                ps.setBoolean(1, fromCommand);
                ps.setString(2, name);
                ps.setString(3, zone);
                ps.setString(4, zone);
                ps.setString(5, master);
                ps.setString(6, espId);
                ps.executeUpdate();
            }
        }
    }

    /** subzone/ack: assigned upserts (gpios from the command), removed deletes, safe-mode enabled/disabled sets the flag. */
    public void subzoneAck(String espId, Map<String, Object> ack) throws SQLException {
        String status = text(ack.get("status"));
        String subzone = text(ack.get("subzone_id"));
        String corr = text(ack.get("correlation_id"));
        if (subzone.isEmpty()) {
            return;
        }
        try (Connection c = dataSource.getConnection()) {
            switch (status) {
                case "subzone_assigned" -> {
                    int n = 0;
                    if (!corr.isEmpty()) {
                        try (PreparedStatement ps = c.prepareStatement("""
                                INSERT INTO subzones (esp_id, subzone_id, subzone_name, parent_zone_id, assigned_gpios, safe_mode_active,
                                                      correlation_id, assigned_at, last_ack_at)
                                SELECT c.esp_id, c.payload->>'subzone_id', NULLIF(c.payload->>'subzone_name', ''),
                                       coalesce(NULLIF(c.payload->>'parent_zone_id', ''), (SELECT d.zone_id FROM devices d WHERE d.esp_id = c.esp_id)),
                                       ARRAY(SELECT e.v::smallint FROM jsonb_array_elements_text(coalesce(c.payload->'assigned_gpios', '[]'::jsonb))
                                             WITH ORDINALITY AS e(v, n) ORDER BY e.n),
                                       coalesce((c.payload->>'safe_mode_active')::boolean, true), c.correlation_id, now(), now()
                                  FROM commands c
                                 WHERE c.correlation_id = ? AND c.esp_id = ? AND c.command_type = 'subzone_assign'
                                   AND c.payload->>'subzone_id' = ?
                                ON CONFLICT (esp_id, subzone_id) DO UPDATE SET subzone_name = EXCLUDED.subzone_name,
                                       parent_zone_id = EXCLUDED.parent_zone_id, assigned_gpios = EXCLUDED.assigned_gpios,
                                       safe_mode_active = EXCLUDED.safe_mode_active, correlation_id = EXCLUDED.correlation_id,
                                       last_ack_at = now()""")) {
                            ps.setString(1, corr);
                            ps.setString(2, espId);
                            ps.setString(3, subzone);
                            n = ps.executeUpdate();
                        }
                    }
                    if (n == 0) {
                        // an ack for no command of ours (e.g. a resync): confirm what we have, invent nothing
                        update(c, "UPDATE subzones SET last_ack_at = now() WHERE esp_id = ? AND subzone_id = ?", espId, subzone);
                    }
                }
                case "subzone_removed" -> update(c, "DELETE FROM subzones WHERE esp_id = ? AND subzone_id = ?", espId, subzone);
                case "safe_mode_enabled", "subzone_safe_enabled" -> update(c, """
                        UPDATE subzones SET safe_mode_active = true, safe_mode_changed_at = now(), last_ack_at = now()
                         WHERE esp_id = ? AND subzone_id = ?""", espId, subzone);
                case "safe_mode_disabled", "subzone_safe_disabled" -> update(c, """
                        UPDATE subzones SET safe_mode_active = false, safe_mode_changed_at = now(), last_ack_at = now()
                         WHERE esp_id = ? AND subzone_id = ?""", espId, subzone);
                default -> { } // error: nothing changed on the device
            }
        }
    }

    /**
     * Refuses a subzone assign the device would refuse (upstream-firmware 7): the device must have a zone and
     * parent_zone_id, when given, must be that zone. An unknown device passes here and is a 404 when issued.
     */
    public CommandSpec checkSubzoneAssign(CommandSpec spec) throws SQLException {
        try (Connection c = dataSource.getConnection();
             PreparedStatement ps = c.prepareStatement("SELECT zone_id FROM devices WHERE esp_id = ?")) {
            ps.setString(1, spec.espId());
            try (ResultSet rs = ps.executeQuery()) {
                if (!rs.next()) {
                    return spec;
                }
                String zone = rs.getString(1);
                String parent = text(spec.fields().get("parent_zone_id"));
                if (zone == null) {
                    throw ApiProblem.badRequest("device " + spec.espId() + " has no zone: assign a zone before its subzones");
                }
                if (!parent.isEmpty() && !parent.equals(zone)) {
                    throw ApiProblem.badRequest("parent_zone_id " + parent + " is not the zone of device " + spec.espId() + " (" + zone + ")");
                }
                return spec;
            }
        }
    }

    /** {@code GET /subzone/devices/{esp_id}/subzones}: the subzones the device confirmed, or 404 for an unknown device. */
    public Map<String, Object> subzones(String espId) throws SQLException {
        Map<String, Object> out = new LinkedHashMap<>();
        try (Connection c = dataSource.getConnection()) {
            try (PreparedStatement ps = c.prepareStatement("SELECT zone_id FROM devices WHERE esp_id = ?")) {
                ps.setString(1, espId);
                try (ResultSet rs = ps.executeQuery()) {
                    if (!rs.next()) {
                        throw ApiProblem.notFound("device " + espId + " is unknown");
                    }
                    out.put("esp_id", espId);
                    out.put("zone_id", rs.getString(1));
                }
            }
            List<Map<String, Object>> list = new ArrayList<>();
            try (PreparedStatement ps = c.prepareStatement("""
                    SELECT subzone_id, subzone_name, parent_zone_id, assigned_gpios, safe_mode_active, correlation_id,
                           assigned_at, last_ack_at, safe_mode_changed_at
                      FROM subzones WHERE esp_id = ? ORDER BY subzone_id""")) {
                ps.setString(1, espId);
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        Map<String, Object> m = new LinkedHashMap<>();
                        m.put("subzone_id", rs.getString(1));
                        m.put("subzone_name", rs.getString(2));
                        m.put("parent_zone_id", rs.getString(3));
                        List<Integer> gpios = new ArrayList<>();
                        for (Object g : (Object[]) rs.getArray(4).getArray()) {
                            gpios.add(((Number) g).intValue());
                        }
                        m.put("assigned_gpios", gpios);
                        m.put("safe_mode_active", rs.getBoolean(5));
                        m.put("correlation_id", rs.getString(6));
                        m.put("assigned_at", iso(rs.getTimestamp(7)));
                        m.put("last_ack_at", iso(rs.getTimestamp(8)));
                        m.put("safe_mode_changed_at", iso(rs.getTimestamp(9)));
                        list.add(m);
                    }
                }
            }
            out.put("subzones", list);
            out.put("count", list.size());
        }
        return out;
    }

    private static String iso(Timestamp t) {
        return t == null ? null : t.toInstant().toString();
    }

    private static void update(Connection c, String sql, String espId, String subzone) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(sql)) {
            ps.setString(1, espId);
            ps.setString(2, subzone);
            ps.executeUpdate();
        }
    }

    private static String text(Object v) {
        return v == null ? "" : v.toString();
    }
}
