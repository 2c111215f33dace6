package io.kaiser.command;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

import io.kaiser.api.ApiProblem;

/**
 * Turns the zone and subzone REST bodies into {@link CommandSpec}s (upstream 2.23, 2.24); every bad field is a 400
 * naming the field. The device's zone and subzones in the database change only when its ack confirms them.
 */
public final class ZoneRequests {
    /** The firmware stores zone ids of at most 32 characters; longer ones would only come back as an error ack. */
    private static final Pattern ZONE_ID = Pattern.compile("^[A-Za-z0-9_-]{1,32}$");
    private static final Pattern SUBZONE_ID = Pattern.compile("^[A-Za-z0-9_-]{1,32}$");
    /** The firmware keeps at most 64 characters of a zone name (upstream-firmware 7). */
    private static final int MAX_NAME = 64;
    private static final int MAX_GPIOS = 20;

    private final String kaiserId;
    private final int maxGpio;

    public ZoneRequests(String kaiserId, int maxGpio) {
        this.kaiserId = kaiserId;
        this.maxGpio = maxGpio;
    }

    /** {@code POST /zone/devices/{esp_id}/assign {zone_id, master_zone_id?, zone_name?}}. */
    public CommandSpec assign(String espId, Map<String, Object> body) {
        unknownFields(body, Set.of("zone_id", "master_zone_id", "zone_name"));
        Object zone = body.get("zone_id");
        if (!(zone instanceof String z) || !ZONE_ID.matcher(z).matches()) {
            throw ApiProblem.badRequest("zone_id is required: 1 to 32 characters (the firmware's limit) A-Z, a-z, 0-9, _ or -");
        }
        Object master = body.getOrDefault("master_zone_id", "");
        if (!(master instanceof String m) || !m.isEmpty() && !ZONE_ID.matcher(m).matches()) {
            throw ApiProblem.badRequest("master_zone_id must be empty or 1 to 32 characters (the firmware's limit) A-Z, a-z, 0-9, _ or -");
        }
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("zone_id", z);
        f.put("master_zone_id", m);
        f.put("zone_name", name(body, "zone_name"));
        f.put("kaiser_id", kaiserId);
        return new CommandSpec("zone_assign", espId, null, "zone-assign", f, "zone-assign");
    }

    /** {@code DELETE /zone/devices/{esp_id}/zone}: zone/assign with an empty zone_id. */
    public CommandSpec remove(String espId, Map<String, Object> body) {
        unknownFields(body, Set.of());
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("zone_id", "");
        f.put("master_zone_id", "");
        f.put("zone_name", "");
        f.put("kaiser_id", kaiserId);
        return new CommandSpec("zone_remove", espId, null, "zone-assign", f, "zone-remove");
    }

    /** {@code POST /subzone/devices/{esp_id}/subzones/assign {subzone_id, subzone_name?, parent_zone_id?, assigned_gpios, safe_mode_active?}}. */
    public CommandSpec subzoneAssign(String espId, Map<String, Object> body) {
        unknownFields(body, Set.of("subzone_id", "subzone_name", "parent_zone_id", "assigned_gpios", "safe_mode_active"));
        String subzone = subzoneId(body.get("subzone_id"));
        Object parent = body.getOrDefault("parent_zone_id", "");
        if (!(parent instanceof String p) || !p.isEmpty() && !ZONE_ID.matcher(p).matches()) {
            throw ApiProblem.badRequest("parent_zone_id must be empty or 1 to 32 characters (the firmware's limit) A-Z, a-z, 0-9, _ or -");
        }
        Object raw = body.getOrDefault("assigned_gpios", List.of());
        if (!(raw instanceof List<?> list)) {
            throw ApiProblem.badRequest("assigned_gpios must be an array of gpios from 0 to " + maxGpio);
        }
        Set<Integer> gpios = new LinkedHashSet<>();
        for (int i = 0; i < list.size(); i++) {
            if (!(list.get(i) instanceof Integer g) || g < 0 || g > maxGpio) {
                throw ApiProblem.badRequest("assigned_gpios[" + i + "] must be an integer from 0 to " + maxGpio);
            }
            gpios.add(g);
        }
        if (gpios.size() > MAX_GPIOS) {
            throw ApiProblem.badRequest("assigned_gpios may hold at most " + MAX_GPIOS + " different gpios");
        }
        Object safe = body.getOrDefault("safe_mode_active", true);
        if (!(safe instanceof Boolean s)) {
            throw ApiProblem.badRequest("safe_mode_active must be true or false");
        }
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("subzone_id", subzone);
        f.put("subzone_name", name(body, "subzone_name"));
        f.put("parent_zone_id", p);
        f.put("assigned_gpios", new ArrayList<>(gpios));
        f.put("safe_mode_active", s);
        return new CommandSpec("subzone_assign", espId, null, "subzone-assign", f, "subzone-assign");
    }

    /** {@code DELETE /subzone/devices/{esp_id}/subzones/{subzone_id}}. */
    public CommandSpec subzoneRemove(String espId, String subzoneId, Map<String, Object> body) {
        unknownFields(body, Set.of("reason"));
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("subzone_id", subzoneId(subzoneId));
        f.put("reason", reason(body));
        return new CommandSpec("subzone_remove", espId, null, "subzone-remove", f, "subzone-remove");
    }

    /** {@code POST|DELETE /subzone/devices/{esp_id}/subzones/{subzone_id}/safe-mode {reason?}}: enable or disable. */
    public CommandSpec subzoneSafe(String espId, String subzoneId, boolean enable, Map<String, Object> body) {
        unknownFields(body, Set.of("reason"));
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("subzone_id", subzoneId(subzoneId));
        f.put("action", enable ? "enable" : "disable");
        f.put("safe_mode", enable);
        f.put("reason", reason(body));
        return new CommandSpec("subzone_safe", espId, null, "subzone-safe", f, enable ? "subzone-safe-enable" : "subzone-safe-disable");
    }

    private static String subzoneId(Object v) {
        if (!(v instanceof String s) || !SUBZONE_ID.matcher(s).matches()) {
            throw ApiProblem.badRequest("subzone_id is required: 1 to 32 characters A-Z, a-z, 0-9, _ or -");
        }
        return s;
    }

    private static String name(Map<String, Object> body, String field) {
        Object v = body.getOrDefault(field, "");
        if (v == null) {
            return "";
        }
        if (!(v instanceof String s) || s.length() > MAX_NAME) {
            throw ApiProblem.badRequest(field + " must be a string of at most " + MAX_NAME + " characters");
        }
        return s;
    }

    private static String reason(Map<String, Object> body) {
        Object v = body.getOrDefault("reason", "manual");
        if (!(v instanceof String s) || s.isBlank() || s.length() > 64) {
            throw ApiProblem.badRequest("reason must be a string of 1 to 64 characters");
        }
        return s;
    }

    private static void unknownFields(Map<String, Object> body, Set<String> allowed) {
        List<String> unknown = body.keySet().stream().filter(k -> !allowed.contains(k)).sorted().toList();
        if (!unknown.isEmpty()) {
            throw ApiProblem.badRequest("unknown field(s): " + String.join(", ", unknown));
        }
    }
}
