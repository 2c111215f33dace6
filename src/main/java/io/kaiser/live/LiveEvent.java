package io.kaiser.live;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One live event as pushed over the WebSocket: envelope {@code {type, timestamp, data, correlation_id?}}.
 *
 * @param type          event name from the contract (sensor_data, esp_health, error_event, ...)
 * @param timestamp     unix seconds
 * @param espId         device it concerns (for subscription filters), may be null
 * @param data          event fields
 * @param correlationId optional correlation id
 */
public record LiveEvent(String type, long timestamp, String espId, Map<String, Object> data, String correlationId) {

    public static LiveEvent of(String type, String espId, Map<String, Object> data) {
        Object corr = data.get("correlation_id");
        return new LiveEvent(type, System.currentTimeMillis() / 1000, espId, data, corr == null ? null : corr.toString());
    }

    public Map<String, Object> envelope() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("type", type);
        m.put("timestamp", timestamp);
        m.put("data", data);
        if (correlationId != null) {
            m.put("correlation_id", correlationId);
        }
        return m;
    }
}
