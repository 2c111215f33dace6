package io.kaiser.telemetry;

import java.sql.Timestamp;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/** Unit test of the sensor_data rows: conversions, processing mode, timestamps, addresses, batches. */
class TelemetryRowsTest {
    static final long NOW = 1_767_225_600_000L; // 2026-01-01T00:00:00Z
    static final TelemetryRows ROWS = new TelemetryRows(300);

    static Map<String, Object> reading(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("esp_id", "ESP_A1");
        m.put("gpio", 4);
        m.put("sensor_type", "ds18b20");
        for (int i = 0; i < kv.length; i += 2) {
            if (kv[i + 1] == null) {
                m.remove((String) kv[i]);
            } else {
                m.put((String) kv[i], kv[i + 1]);
            }
        }
        return m;
    }

    static Map<String, Object> row(Map<String, Object> p) {
        TelemetryRows.Batch b = ROWS.newBatch();
        ROWS.reading(b, "ESP_A1", p, NOW);
        assertThat(b.rows()).hasSize(1);
        return b.rows().get(0);
    }

    static long measured(Map<String, Object> row) {
        return ((Timestamp) row.get("measured_at")).getTime();
    }

    @Test
    void should_convert_ds18b20_raw_times_0_0625() {
        Map<String, Object> r = row(reading("raw", 356, "value", 99.0, "ts", 1_767_225_000L));
        assertThat((Double) r.get("value")).isEqualTo(22.25);
        assertThat(r).containsEntry("raw_value", 356.0).containsEntry("unit", "°C").containsEntry("processing_mode", "raw_conversion")
                .containsEntry("esp_id", "ESP_A1").containsEntry("gpio", 4).containsEntry("sensor_type", "ds18b20");
        assertThat((Double) row(reading("raw", -176, "ts", 1_767_225_000L)).get("value")).isEqualTo(-11.0);
        // raw_value is accepted as the name of the raw field too
        assertThat((Double) row(reading("raw_value", 400, "ts", 1_767_225_000L)).get("value")).isEqualTo(25.0);
    }

    @Test
    void should_convert_sht31_temperature_and_humidity() {
        Map<String, Object> t = row(reading("sensor_type", "SHT31_TEMP", "gpio", 21, "raw", 26214, "ts", 1_767_225_000L));
        assertThat((Double) t.get("value")).isCloseTo(-45 + 175 * 26214 / 65535.0, within(1e-9));
        assertThat((Double) t.get("value")).isCloseTo(25.0, within(0.01));
        assertThat(t).containsEntry("unit", "°C").containsEntry("sensor_type", "sht31_temp");
        Map<String, Object> h = row(reading("sensor_type", "sht31_humidity", "gpio", 21, "raw", 39321, "ts", 1_767_225_000L));
        assertThat((Double) h.get("value")).isCloseTo(60.0, within(0.01));
        assertThat(h).containsEntry("unit", "%");
        assertThat((Double) row(reading("sensor_type", "sht31_humidity", "raw", 65535, "ts", 1_767_225_000L)).get("value")).isEqualTo(100.0);
        assertThat((Double) row(reading("sensor_type", "sht31_temp", "raw", 0, "ts", 1_767_225_000L)).get("value")).isEqualTo(-45.0);
    }

    @Test
    void should_use_the_device_value_when_raw_mode_is_false() {
        Map<String, Object> r = row(reading("raw", 356, "value", 21.5, "unit", "°F", "raw_mode", false, "ts", 1_767_225_000L));
        assertThat(r).containsEntry("value", 21.5).containsEntry("processing_mode", "local").containsEntry("unit", "°F")
                .containsEntry("raw_value", 356.0);
    }

    @Test
    void should_keep_the_device_value_or_raw_for_unknown_sensor_types() {
        Map<String, Object> withValue = row(reading("sensor_type", "moisture", "raw", 2048, "value", 37.5, "unit", "%", "ts", 1_767_225_000L));
        assertThat(withValue).containsEntry("value", 37.5).containsEntry("processing_mode", "raw").containsEntry("unit", "%");
        Map<String, Object> rawOnly = row(reading("sensor_type", "moisture", "raw", 2048, "ts", 1_767_225_000L));
        assertThat(rawOnly).containsEntry("value", 2048.0).containsEntry("processing_mode", "raw");
    }

    @Test
    void should_accept_timestamps_in_seconds_and_milliseconds() {
        long sec = 1_767_225_000L;
        assertThat(measured(row(reading("raw", 1, "ts", sec)))).isEqualTo(sec * 1000);
        assertThat(measured(row(reading("raw", 1, "ts", sec * 1000 + 123)))).isEqualTo(sec * 1000 + 123);
        assertThat(measured(row(reading("raw", 1, "timestamp", sec)))).isEqualTo(sec * 1000);
        assertThat(measured(row(reading("raw", 1, "ts", sec + 0.5)))).isEqualTo(sec * 1000 + 500);
        assertThat(((Timestamp) row(reading("raw", 1, "ts", sec)).get("received_at")).getTime()).isEqualTo(NOW);
    }

    @Test
    void should_fall_back_to_the_receive_time_for_invalid_early_or_future_timestamps() {
        assertThat(measured(row(reading("raw", 1)))).as("no ts").isEqualTo(NOW);
        assertThat(measured(row(reading("raw", 1, "ts", "yesterday")))).as("not a number").isEqualTo(NOW);
        assertThat(measured(row(reading("raw", 1, "ts", 1000)))).as("uptime-like ts").isEqualTo(NOW);
        assertThat(measured(row(reading("raw", 1, "ts", 1_577_836_799L)))).as("before 2020").isEqualTo(NOW);
        assertThat(measured(row(reading("raw", 1, "ts", 1_577_836_800L)))).as("2020-01-01 exactly").isEqualTo(1_577_836_800_000L);
        assertThat(measured(row(reading("raw", 1, "ts", NOW / 1000 + 301)))).as("beyond the future skew").isEqualTo(NOW);
        assertThat(measured(row(reading("raw", 1, "ts", NOW / 1000 + 299)))).as("within the skew").isEqualTo(NOW + 299_000);
        assertThat(measured(row(reading("raw", 1, "ts", 1_767_225_000L, "time_valid", false)))).as("time_valid false").isEqualTo(NOW);
        assertThat(measured(row(reading("raw", 1, "ts", -5)))).as("negative").isEqualTo(NOW);
    }

    @Test
    void should_uppercase_the_onewire_address_into_sensor_address() {
        assertThat(row(reading("raw", 1, "onewire_address", "28ff641e8d3c0c79", "ts", 1_767_225_000L)))
                .containsEntry("sensor_address", "28FF641E8D3C0C79");
        assertThat(row(reading("sensor_type", "sht31_temp", "raw", 1, "i2c_address", 68, "ts", 1_767_225_000L)))
                .containsEntry("sensor_address", "i2c:68");
        assertThat(row(reading("raw", 1, "ts", 1_767_225_000L))).containsEntry("sensor_address", "");
    }

    @Test
    void should_carry_quality_zone_subzone_and_seq() {
        Map<String, Object> r = row(reading("raw", 1, "quality", "good", "zone_id", "gh_1", "subzone_id", "bed_a", "seq", 30, "ts", 1_767_225_000L));
        assertThat(r).containsEntry("quality", "good").containsEntry("zone_id", "gh_1").containsEntry("subzone_id", "bed_a").containsEntry("seq", 30L);
        assertThat(row(reading("raw", 1, "ts", 1_767_225_000L))).containsEntry("quality", "unknown").containsEntry("seq", null);
    }

    @Test
    void should_default_batch_readings_to_the_batch_ts() {
        long batchTs = 1_767_225_030L;
        Map<String, Object> batch = new LinkedHashMap<>();
        batch.put("esp_id", "ESP_A1");
        batch.put("ts", batchTs);
        batch.put("readings", List.of(
                reading("raw", 356),
                reading("sensor_type", "sht31_temp", "gpio", 21, "value", 25),
                reading("sensor_type", "moisture", "gpio", 32, "value", 0, "ts", 1_767_225_010L)));
        TelemetryRows.Batch b = ROWS.newBatch();
        ROWS.readings(b, "ESP_A1", batch, NOW);
        assertThat(b.rows()).hasSize(3);
        assertThat(measured(b.rows().get(0))).isEqualTo(batchTs * 1000);
        assertThat((Double) b.rows().get(0).get("value")).isEqualTo(22.25);
        assertThat(measured(b.rows().get(1))).isEqualTo(batchTs * 1000);
        // a firmware batch reading has only a value: it is stored as reported
        assertThat(b.rows().get(1)).containsEntry("value", 25.0).containsEntry("raw_value", null);
        assertThat(measured(b.rows().get(2))).as("own ts wins").isEqualTo(1_767_225_010_000L);
        assertThat(b.espIds()).containsExactly("ESP_A1");
        assertThat(b.events()).hasSize(3).allSatisfy(e -> assertThat(e.type()).isEqualTo("sensor_data"));
        assertThat(b.events().get(0).data()).containsEntry("timestamp", batchTs).containsEntry("gpio", 4);
    }
}
