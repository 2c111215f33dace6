package io.kaiser.ingest;

import java.sql.Timestamp;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kaiser.KaiserHeaders;
import io.kaiser.live.LiveEvent;
import org.apache.camel.Body;
import org.apache.camel.Header;

/**
 * Maps validated device payloads to the rows the YAML routes insert with camel-sql (named parameters), and
 * rows to live events. No SQL here: the statements live in the routes, where integrators see them.
 */
public final class IngestRows {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Set<String> ALERTS_THAT_SWITCH_OFF = Set.of("emergency_stop", "runtime_protection", "safety_violation",
            "safety_forced_off");
    private static final int MAX_EXCERPT = 2048;
    private final java.util.concurrent.atomic.LongAdder deadLetters = new java.util.concurrent.atomic.LongAdder();

    /** Messages dead-lettered since this server started. */
    public long deadLetters() {
        return deadLetters.sum();
    }

    /** {@code actuator/{gpio}/status}: the device's own view of an actuator, upserted into actuator_states. */
    public Map<String, Object> actuatorStatus(String espId, int gpio, Map<String, Object> p, long receivedAt, String pos) {
        Object rawState = p.get("state");
        Double value = p.containsKey("pwm") ? num(p.get("pwm")) / 255.0 : num(p.get("value"));
        String state;
        if (rawState instanceof Boolean b) {
            state = b ? (value != null && value > 0 && value < 1 ? "pwm" : "on") : "off";
        } else {
            state = rawState.toString().toLowerCase();
        }
        Map<String, Object> row = base(espId, gpio, receivedAt, pos);
        row.put("actuator_type", p.containsKey("actuator_type") ? p.get("actuator_type") : p.get("type"));
        row.put("state", state);
        row.put("value", value);
        row.put("emergency", p.get("emergency"));
        row.put("last_command", p.containsKey("last_command") ? p.get("last_command") : p.get("command"));
        row.put("command_source", p.get("command_source"));
        row.put("correlation_id", p.get("correlation_id"));
        row.put("runtime_ms", p.get("runtime_ms") instanceof Number n ? n.longValue() : null);
        row.put("payload", json(p));
        return row;
    }

    /** {@code actuator/{gpio}/response}: an actuator_history row (the device's answer to a command). */
    public Map<String, Object> actuatorResponse(String espId, int gpio, Map<String, Object> p, long receivedAt, String pos) {
        Map<String, Object> row = base(espId, gpio, receivedAt, pos);
        row.put("event", "response");
        row.put("command", p.get("command"));
        row.put("value", num(p.get("value")));
        row.put("success", p.get("success"));
        row.put("issued_by", p.getOrDefault("issued_by", "esp32_response"));
        row.put("message", p.get("message"));
        row.put("correlation_id", p.get("correlation_id"));
        row.put("payload", json(p));
        return row;
    }

    /** {@code actuator/{gpio}/alert}: an actuator_history row; safety alerts also mean the actuator is off. */
    public Map<String, Object> actuatorAlert(String espId, int gpio, Map<String, Object> p, long receivedAt, String pos) {
        String type = (p.containsKey("alert_type") ? p.get("alert_type") : p.get("type")).toString();
        Map<String, Object> row = base(espId, gpio, receivedAt, pos);
        row.put("event", "alert");
        row.put("command", "ALERT_" + type.toUpperCase());
        row.put("value", null);
        row.put("success", false);
        row.put("issued_by", "esp32_alert");
        row.put("message", p.get("message"));
        row.put("correlation_id", p.get("correlation_id"));
        row.put("payload", json(p));
        row.put("alert_type", type);
        row.put("switches_off", gpio != 255 && ALERTS_THAT_SWITCH_OFF.contains(type));
        row.put("severity", Set.of("emergency_stop", "safety_violation").contains(type) ? "critical" : "warning");
        return row;
    }

    /**
     * Any answer to a server request (acks, responses, outcomes): a device_answers row keyed by the correlation id
     * the device echoed ({@code correlation_id}, else {@code intent_id}, else {@code request_id}).
     */
    public Map<String, Object> answer(String topicKey, String espId, Integer gpio, Map<String, Object> p, long receivedAt, String pos) {
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("ingest_pos", pos);
        row.put("esp_id", espId);
        row.put("topic_key", topicKey);
        row.put("gpio", gpio);
        row.put("correlation_id", firstString(p, "correlation_id", "intent_id", "request_id"));
        Object status = answerStatus(topicKey, p);
        row.put("status", status == null ? null : status.toString());
        row.put("payload", json(p));
        row.put("received_at", new Timestamp(receivedAt));
        return row;
    }

    private static Object answerStatus(String topicKey, Map<String, Object> p) {
        return switch (topicKey) {
            case "actuator-response", "sensor-response", "system-command-response" ->
                    p.get("success") == null ? null : Boolean.TRUE.equals(p.get("success")) ? "success" : "failed";
            case "intent-outcome", "emergency-ack" -> p.get("outcome");
            case "recovery-confirm" -> p.get("state");
            case "intent-lifecycle" -> p.get("event_type");
            default -> p.get("status");
        };
    }

    /**
     * The idempotency key of an answer: topic, correlation id and status (an intent may go accepted, then applied).
     * An answer without a correlation id is keyed by its journal position, so only a replay of it is a duplicate.
     */
    public String answerKey(String topicKey, String espId, Map<String, Object> p, String ingestKey) {
        String corr = firstString(p, "correlation_id", "intent_id", "request_id");
        String key = corr == null ? "msg|" + ingestKey : topicKey + "|" + espId + "|" + corr + "|" + answerStatus(topicKey, p);
        if (key.length() <= 100) {
            return key;
        }
        try {
            return "sha256|" + java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256")
                    .digest(key.getBytes(java.nio.charset.StandardCharsets.UTF_8)));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The live event for a stored answer, named after what the device answered to. */
    public List<LiveEvent> answerEvent(Map<String, Object> row, Map<String, Object> payload) {
        String key = (String) row.get("topic_key");
        String type = switch (key) {
            case "sensor-response" -> Boolean.TRUE.equals(payload.get("success")) ? "calibration_measurement_received"
                    : "calibration_measurement_failed";
            case "emergency-ack" -> "emergency_ack";
            case "recovery-confirm" -> "recovery_confirmed";
            case "intent-outcome" -> "intent_outcome";
            case "intent-lifecycle" -> "intent_outcome_lifecycle";
            case "config-response" -> "config_response";
            case "zone-ack" -> "zone_assignment";
            case "subzone-ack" -> "subzone_assignment";
            case "system-command-response" -> "system_command_response";
            default -> key.replace('-', '_');
        };
        Map<String, Object> d = new LinkedHashMap<>(payload);
        d.put("esp_id", row.get("esp_id"));
        if (row.get("correlation_id") != null) {
            d.put("correlation_id", row.get("correlation_id"));
        }
        if (row.get("gpio") != null) {
            d.put("gpio", row.get("gpio"));
        }
        return List.of(LiveEvent.of(type, (String) row.get("esp_id"), d));
    }

    /** {@code system/error}: an error_events row. Severity words become 0..3; the category follows the code range. */
    public Map<String, Object> deviceError(String espId, Map<String, Object> p, long receivedAt, String pos) {
        int code = ((Number) p.get("error_code")).intValue();
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("ingest_pos", pos);
        row.put("esp_id", espId);
        row.put("source", "device");
        row.put("error_code", code);
        row.put("severity", severity(p.get("severity")));
        row.put("category", p.get("category") != null ? p.get("category").toString().toUpperCase() : category(code));
        row.put("message", p.get("message"));
        row.put("context", p.get("context") == null ? null : json(p.get("context")));
        Object ts = p.containsKey("ts") ? p.get("ts") : p.get("timestamp");
        row.put("device_ts", ts instanceof Number n ? n.longValue() : null);
        row.put("received_at", new Timestamp(receivedAt));
        return row;
    }

    /** A dead_letters row for a message that broke the contract. */
    public Map<String, Object> deadLetter(InboundMessage m, String reasonCode, String reason) {
        deadLetters.increment();
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("ingest_pos", m.key());
        row.put("received_at", new Timestamp(m.receivedAt()));
        row.put("topic", m.topic());
        row.put("topic_key", m.topicKey());
        String[] levels = m.topic().split("/");
        row.put("esp_id", levels.length > 3 && levels[3].length() <= 64 ? levels[3] : null);
        row.put("reason_code", reasonCode);
        // reasons quote payload text; PostgreSQL text cannot hold NUL
        row.put("reason", reason == null ? reasonCode : reason.replace("\u0000", "\\u0000"));
        row.put("payload_size", m.payload().length);
        String text = m.payloadText().replace("\u0000", "\\u0000");
        row.put("payload_excerpt", text.length() > MAX_EXCERPT ? text.substring(0, MAX_EXCERPT) : text);
        return row;
    }

    /** The {@code error_event} pushed for a dead letter (server code 5209 INVALID_PAYLOAD_FORMAT). */
    public List<LiveEvent> deadLetterEvent(Map<String, Object> row) {
        Map<String, Object> d = new LinkedHashMap<>();
        d.put("esp_id", row.get("esp_id"));
        d.put("error_code", 5209);
        d.put("severity", 2);
        d.put("category", "CONTRACT");
        d.put("title", "Message rejected: " + row.get("reason_code"));
        d.put("message", row.get("reason"));
        d.put("topic", row.get("topic"));
        d.put("timestamp", ((Timestamp) row.get("received_at")).getTime() / 1000);
        return List.of(LiveEvent.of("error_event", (String) row.get("esp_id"), d));
    }

    /** A live event carrying the row's fields (without internal columns). */
    public List<LiveEvent> event(String type, Map<String, Object> row) {
        Map<String, Object> d = new LinkedHashMap<>();
        for (Map.Entry<String, Object> e : row.entrySet()) {
            switch (e.getKey()) {
                case "ingest_pos", "payload", "switches_off" -> { }
                case "received_at", "updated_at", "at" -> d.put("timestamp", ((Timestamp) e.getValue()).getTime() / 1000);
                default -> d.put(e.getKey(), e.getValue());
            }
        }
        return List.of(LiveEvent.of(type, (String) row.get("esp_id"), d));
    }

    /**
     * A device's payload kept as JSON (diagnostics snapshot, heartbeat metrics, queue pressure event): esp_id,
     * ingest_pos, the payload as {@code json} for the statement and as {@code payload} for the live event.
     */
    public Map<String, Object> payloadRow(@Header(KaiserHeaders.ESP_ID) String espId, @Header(KaiserHeaders.INGEST_POS) String pos,
            @Body Map<String, Object> p) {
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("esp_id", espId);
        row.put("ingest_pos", pos);
        row.put("json", json(p));
        row.put("payload", p);
        return row;
    }

    /** The live events of {@link #payloadRow payload rows} (the payload with the topic's esp_id), once they are written. */
    @SuppressWarnings("unchecked")
    public List<LiveEvent> payloadEvents(String type, List<Map<String, Object>> rows) {
        List<LiveEvent> events = new java.util.ArrayList<>(rows.size());
        for (Map<String, Object> row : rows) {
            String espId = (String) row.get("esp_id");
            Map<String, Object> d = new LinkedHashMap<>((Map<String, Object>) row.get("payload"));
            d.put("esp_id", espId);
            events.add(LiveEvent.of(type, espId, d));
        }
        return events;
    }

    static int severity(Object s) {
        if (s instanceof Number n) {
            return n.intValue();
        }
        return switch (String.valueOf(s)) {
            case "info" -> 0;
            case "warning" -> 1;
            case "critical" -> 3;
            default -> 2;
        };
    }

    static String category(int code) {
        return switch (code / 1000) {
            case 1 -> "HARDWARE";
            case 2 -> "SERVICE";
            case 3 -> "COMMUNICATION";
            case 4 -> "APPLICATION";
            default -> "UNKNOWN";
        };
    }

    public String json(Object o) {
        try {
            return JSON.writeValueAsString(o);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(e);
        }
    }

    private static Map<String, Object> base(String espId, int gpio, long receivedAt, String pos) {
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("ingest_pos", pos);
        row.put("esp_id", espId);
        row.put("gpio", gpio);
        row.put("at", new Timestamp(receivedAt));
        return row;
    }

    private static Double num(Object o) {
        return o instanceof Number n ? n.doubleValue() : null;
    }

    private static String firstString(Map<String, Object> p, String... keys) {
        for (String k : keys) {
            Object v = p.get(k);
            if (v != null && !v.toString().isBlank()) {
                return v.toString();
            }
        }
        if (p.get("data") instanceof Map<?, ?> data && data.get("correlation_id") != null) {
            return data.get("correlation_id").toString();
        }
        return null;
    }
}
