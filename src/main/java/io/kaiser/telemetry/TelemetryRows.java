package io.kaiser.telemetry;

import java.sql.Timestamp;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import io.kaiser.live.LiveEvent;
import org.apache.camel.Header;
import org.apache.camel.ExchangeProperty;
import org.apache.camel.Body;
import io.kaiser.KaiserHeaders;

/**
 * Turns sensor readings into {@code sensor_data} rows. The device's own {@code value} is only a preview; the
 * server recomputes from {@code raw} where the sensor type's conversion is known, as the original does.
 */
public final class TelemetryRows {
    /** 2020-01-01: device clocks before this are not set. */
    private static final long EARLIEST_VALID_TS = 1_577_836_800L;
    private final long maxFutureSkewSeconds;

    public TelemetryRows(long maxFutureSkewSeconds) {
        this.maxFutureSkewSeconds = maxFutureSkewSeconds;
    }

    /** Rows accumulated for one journal batch; written with one multi-row INSERT. */
    public static final class Batch {
        private final List<Map<String, Object>> rows = new ArrayList<>();

        public List<Map<String, Object>> rows() {
            return rows;
        }

        public boolean isEmpty() {
            return rows.isEmpty();
        }

        public java.util.Set<String> espIds() {
            java.util.Set<String> ids = new java.util.HashSet<>();
            rows.forEach(r -> ids.add((String) r.get("esp_id")));
            return ids;
        }

        public List<LiveEvent> events() {
            List<LiveEvent> events = new ArrayList<>(rows.size());
            for (Map<String, Object> r : rows) {
                Map<String, Object> d = new LinkedHashMap<>();
                d.put("esp_id", r.get("esp_id"));
                d.put("device_id", r.get("esp_id"));
                d.put("gpio", r.get("gpio"));
                d.put("sensor_type", r.get("sensor_type"));
                d.put("value", r.get("value"));
                d.put("raw", r.get("raw_value"));
                d.put("unit", r.get("unit"));
                d.put("quality", r.get("quality"));
                d.put("timestamp", ((Timestamp) r.get("measured_at")).getTime() / 1000);
                d.put("zone_id", r.get("zone_id"));
                d.put("subzone_id", r.get("subzone_id"));
                if (!"".equals(r.get("sensor_address"))) {
                    d.put("sensor_address", r.get("sensor_address"));
                }
                events.add(LiveEvent.of("sensor_data", (String) r.get("esp_id"), d));
            }
            return events;
        }
    }

    public Batch newBatch() {
        return new Batch();
    }

    /** One {@code sensor/{gpio}/data} message. */
    public void reading(@ExchangeProperty(KaiserHeaders.TELEMETRY_BATCH) Batch batch, @Header(KaiserHeaders.ESP_ID) String espId,
                        @Body Map<String, Object> p, @Header(KaiserHeaders.RECEIVED_AT) long receivedAt) {
        batch.rows.add(row(espId, p, null, receivedAt));
    }

    /** One {@code sensor/batch} message: each reading becomes a row, defaulting to the batch's ts. */
    @SuppressWarnings("unchecked")
    public void readings(@ExchangeProperty(KaiserHeaders.TELEMETRY_BATCH) Batch batch, @Header(KaiserHeaders.ESP_ID) String espId,
                         @Body Map<String, Object> p, @Header(KaiserHeaders.RECEIVED_AT) long receivedAt) {
        for (Object r : (List<Object>) p.get("readings")) {
            batch.rows.add(row(espId, (Map<String, Object>) r, p.get("ts"), receivedAt));
        }
    }

    Map<String, Object> row(String espId, Map<String, Object> p, Object defaultTs, long receivedAt) {
        String type = p.get("sensor_type").toString().toLowerCase();
        Double raw = number(p.containsKey("raw") ? p.get("raw") : p.get("raw_value"));
        boolean rawMode = !Boolean.FALSE.equals(p.get("raw_mode"));
        Double deviceValue = number(p.get("value"));
        Double value;
        String unit = p.get("unit") == null ? null : p.get("unit").toString();
        String mode;
        if (!rawMode && deviceValue != null) {
            value = deviceValue;
            mode = "local";
        } else {
            Conversion conv = Conversion.of(type);
            if (conv != null && raw != null) {
                value = conv.apply(raw);
                unit = conv.unit;
                mode = "raw_conversion";
            } else {
                value = deviceValue != null ? deviceValue : raw;
                mode = "raw";
            }
        }
        Object ts = p.containsKey("ts") ? p.get("ts") : p.containsKey("timestamp") ? p.get("timestamp") : defaultTs;
        long measuredAt = measuredAt(ts, Boolean.FALSE.equals(p.get("time_valid")), receivedAt);
        String address = p.get("onewire_address") != null ? p.get("onewire_address").toString().toUpperCase()
                : p.get("i2c_address") instanceof Number n && n.intValue() != 0 ? "i2c:" + n.intValue() : "";
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("esp_id", espId);
        row.put("gpio", ((Number) p.get("gpio")).intValue());
        row.put("sensor_type", type);
        row.put("sensor_address", address);
        row.put("measured_at", new Timestamp(measuredAt));
        row.put("received_at", new Timestamp(receivedAt));
        row.put("raw_value", raw);
        row.put("value", value);
        row.put("unit", unit);
        row.put("quality", p.get("quality") == null ? "unknown" : p.get("quality").toString());
        row.put("processing_mode", mode);
        row.put("zone_id", p.get("zone_id") == null ? null : p.get("zone_id").toString());
        row.put("subzone_id", p.get("subzone_id") == null ? null : p.get("subzone_id").toString());
        row.put("seq", p.get("seq") instanceof Number n ? n.longValue() : null);
        return row;
    }

    /** Device time when it is plausible (seconds, or milliseconds above 1e10), else the server's receive time. */
    long measuredAt(Object ts, boolean timeInvalid, long receivedAt) {
        if (timeInvalid || !(ts instanceof Number n)) {
            return receivedAt;
        }
        double v = n.doubleValue();
        long millis = v > 1e10 ? (long) v : (long) (v * 1000);
        if (millis < EARLIEST_VALID_TS * 1000 || millis > receivedAt + maxFutureSkewSeconds * 1000) {
            return receivedAt;
        }
        return millis;
    }

    private static Double number(Object o) {
        return o instanceof Number n ? n.doubleValue() : null;
    }

    /** Known raw conversions (firmware contract section 3.3). */
    enum Conversion {
        DS18B20("°C") {
            double apply(double raw) {
                return raw * 0.0625;
            }
        },
        SHT31_TEMP("°C") {
            double apply(double raw) {
                return -45 + 175 * raw / 65535;
            }
        },
        SHT31_HUMIDITY("%") {
            double apply(double raw) {
                return 100 * raw / 65535;
            }
        };

        final String unit;

        Conversion(String unit) {
            this.unit = unit;
        }

        abstract double apply(double raw);

        static Conversion of(String type) {
            return switch (type) {
                case "ds18b20" -> DS18B20;
                case "sht31_temp" -> SHT31_TEMP;
                case "sht31_humidity" -> SHT31_HUMIDITY;
                default -> null;
            };
        }
    }
}
