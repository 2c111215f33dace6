package io.kaiser.command;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.kaiser.api.ApiProblem;

/**
 * Turns {@code POST /esp/devices/{esp_id}/config {sensors, actuators, offline_rules}} into a config {@link CommandSpec}
 * (upstream 2.21): every bad field is a 400 naming it, a wire payload over the firmware's limit is a 413.
 * {@code correlation_id}, {@code intent_id}, {@code request_id}, {@code generation}, {@code timestamp} and
 * {@code traceparent} are added when
 * the command is created ({@link CommandService}); the size check counts them exactly.
 */
public final class ConfigRequests {
    /** The firmware's config buffer: a larger push is never published (contract decision 9). */
    public static final int MAX_CONFIG_BYTES = 4352;
    /** Time-window-only offline rules use this sensor gpio. */
    static final int NO_SENSOR_GPIO = 255;
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final ObjectMapper CANONICAL = new ObjectMapper().configure(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS, true);
    private static final String SAMPLE_ID = "00000000-0000-4000-8000-000000000000";
    private static final String SAMPLE_TRACEPARENT = "00-00000000000000000000000000000000-0000000000000000-01";

    private final int maxGpio;

    public ConfigRequests(int maxGpio) {
        this.maxGpio = maxGpio;
    }

    public CommandSpec config(String espId, Map<String, Object> body) {
        List<String> unknown = body.keySet().stream().filter(k -> !Set.of("sensors", "actuators", "offline_rules", "reason_code").contains(k))
                .sorted().toList();
        if (!unknown.isEmpty()) {
            throw ApiProblem.badRequest("unknown field(s): " + String.join(", ", unknown));
        }
        List<Map<String, Object>> sensors = objects(body, "sensors");
        List<Map<String, Object>> actuators = objects(body, "actuators");
        List<Map<String, Object>> rules = objects(body, "offline_rules");
        if (!body.containsKey("sensors") && !body.containsKey("actuators") && !body.containsKey("offline_rules")) {
            throw ApiProblem.badRequest("sensors, actuators or offline_rules is required");
        }
        for (int i = 0; i < sensors.size(); i++) {
            gpio(sensors.get(i), "sensors[" + i + "].gpio", "gpio", false);
            text(sensors.get(i), "sensors[" + i + "].sensor_type", "sensor_type");
        }
        Map<Integer, String> actuatorGpios = new HashMap<>();
        for (int i = 0; i < actuators.size(); i++) {
            int gpio = gpio(actuators.get(i), "actuators[" + i + "].gpio", "gpio", false);
            text(actuators.get(i), "actuators[" + i + "].actuator_type", "actuator_type");
            String earlier = actuatorGpios.putIfAbsent(gpio, "actuators[" + i + "]");
            if (earlier != null) {
                throw ApiProblem.badRequest("actuators[" + i + "].gpio " + gpio + " is already used by " + earlier);
            }
        }
        for (int i = 0; i < sensors.size(); i++) {
            Object g = sensors.get(i).get("gpio");
            if (actuatorGpios.containsKey(((Number) g).intValue())) {
                throw ApiProblem.badRequest("sensors[" + i + "].gpio " + g + " is already used by " + actuatorGpios.get(((Number) g).intValue()));
            }
        }
        for (int i = 0; i < rules.size(); i++) {
            gpio(rules.get(i), "offline_rules[" + i + "].actuator_gpio", "actuator_gpio", false);
            gpio(rules.get(i), "offline_rules[" + i + "].sensor_gpio", "sensor_gpio", true);
        }
        Object reason = body.getOrDefault("reason_code", "manual_config_sync");
        if (!(reason instanceof String r) || r.isBlank() || r.length() > 64) {
            throw ApiProblem.badRequest("reason_code must be a string of 1 to 64 characters");
        }
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("sensors", sensors);
        f.put("actuators", actuators);
        f.put("offline_rules", rules);
        f.put("config_fingerprint", fingerprint(sensors, actuators, rules));
        f.put("reason_code", reason);
        int size = wireSize(f);
        if (size > MAX_CONFIG_BYTES) {
            throw new ApiProblem(413, "Payload too large", "the config payload would be " + size + " bytes; the device accepts at most "
                    + MAX_CONFIG_BYTES + " bytes (error 4031 PAYLOAD_TOO_LARGE)");
        }
        return new CommandSpec("config", espId, null, "config", f, "config");
    }

    /** The serialized payload as the command will carry it (ids and times have a fixed length). */
    static int wireSize(Map<String, Object> fields) {
        Map<String, Object> p = new LinkedHashMap<>(fields);
        p.put("correlation_id", SAMPLE_ID);
        p.put("intent_id", SAMPLE_ID);
        p.put("timestamp", System.currentTimeMillis() / 1000);
        p.put("request_id", SAMPLE_ID);
        p.put("generation", System.currentTimeMillis());
        // W3C traceparent (CommandService adds it to every command; fixed length)
        p.put(CommandTrace.NAME, SAMPLE_TRACEPARENT);
        try {
            return JSON.writeValueAsBytes(p).length;
        } catch (JsonProcessingException e) {
            throw ApiProblem.badRequest("config cannot be serialized: " + e.getOriginalMessage());
        }
    }

    /** SHA-256 of the canonical config (keys sorted, no whitespace). */
    static String fingerprint(List<Map<String, Object>> sensors, List<Map<String, Object>> actuators, List<Map<String, Object>> rules) {
        Map<String, Object> canonical = new TreeMap<>();
        canonical.put("actuators", actuators);
        canonical.put("offline_rules", rules);
        canonical.put("sensors", sensors);
        try {
            byte[] bytes = CANONICAL.writeValueAsBytes(canonical);
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (JsonProcessingException | NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    @SuppressWarnings("unchecked")
    private static List<Map<String, Object>> objects(Map<String, Object> body, String field) {
        Object v = body.get(field);
        if (v == null) {
            return new ArrayList<>();
        }
        if (!(v instanceof List<?> list)) {
            throw ApiProblem.badRequest(field + " must be an array of objects");
        }
        List<Map<String, Object>> out = new ArrayList<>();
        for (int i = 0; i < list.size(); i++) {
            if (!(list.get(i) instanceof Map)) {
                throw ApiProblem.badRequest(field + "[" + i + "] must be an object");
            }
            out.add((Map<String, Object>) list.get(i));
        }
        return out;
    }

    private int gpio(Map<String, Object> item, String name, String key, boolean noSensorAllowed) {
        Object g = item.get(key);
        if (g instanceof Integer n && (n >= 0 && n <= maxGpio || noSensorAllowed && n == NO_SENSOR_GPIO)) {
            return n;
        }
        throw ApiProblem.badRequest(name + " must be an integer from 0 to " + maxGpio + (noSensorAllowed ? " (or 255: no sensor)" : ""));
    }

    private static void text(Map<String, Object> item, String name, String key) {
        if (!(item.get(key) instanceof String s) || s.isBlank() || s.length() > 32) {
            throw ApiProblem.badRequest(name + " is required (a string of 1 to 32 characters)");
        }
    }
}
