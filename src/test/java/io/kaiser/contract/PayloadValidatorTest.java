package io.kaiser.contract;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Unit test of {@link PayloadValidator#check}: one test per reason code, plus the payloads it must accept. */
class PayloadValidatorTest {
    static final int MAX_BYTES = 2048;
    static final String K = "god";
    /** A heartbeat exactly as the original firmware sends it. */
    static final String ORIGINAL_HEARTBEAT = io.kaiser.support.Heartbeats.original("ESP_A1");
    static final String DS18B20 = "{\"esp_id\":\"ESP_A1\",\"gpio\":4,\"sensor_type\":\"ds18b20\",\"raw\":356,\"value\":22.25,"
            + "\"unit\":\"°C\",\"quality\":\"good\",\"ts\":1735818000,\"raw_mode\":true,\"onewire_address\":\"28FF641E8D3C0C79\"}";

    static PayloadValidator validator;

    @BeforeAll
    static void load() {
        validator = new PayloadValidator(new TopicTable(), MAX_BYTES, 48);
    }

    static String data(String esp, String gpio) {
        return "kaiser/" + K + "/esp/" + esp + "/sensor/" + gpio + "/data";
    }

    static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static PayloadValidator.Parsed check(String key, String topic, String payload) {
        return validator.check(key, topic, payload == null ? null : bytes(payload));
    }

    static void rejected(String key, String topic, String payload, String reason) {
        assertThatThrownBy(() -> check(key, topic, payload))
                .isInstanceOf(KaiserRejection.class)
                .satisfies(e -> assertThat(((KaiserRejection) e).getReasonCode()).as(e.getMessage()).isEqualTo(reason));
    }

    // ------------------------------------------------------------------ accepted

    @Test
    void should_accept_the_original_firmware_heartbeat() {
        PayloadValidator.Parsed p = check("heartbeat", "kaiser/god/esp/ESP_A1/system/heartbeat", ORIGINAL_HEARTBEAT);
        assertThat(p.espId()).isEqualTo("ESP_A1");
        assertThat(p.gpio()).isNull();
        assertThat(p.payload()).containsEntry("uptime", 999).containsEntry("reset_reason", "POWERON");
        assertThat(p.payload().get("config_status")).isInstanceOf(Map.class);
    }

    @Test
    void should_accept_a_ds18b20_reading_and_take_esp_id_and_gpio_from_the_topic() {
        PayloadValidator.Parsed p = check("sensor-data", data("ESP_A1", "4"), DS18B20);
        assertThat(p.espId()).isEqualTo("ESP_A1");
        assertThat(p.gpio()).isEqualTo(4);
        assertThat(p.payload()).containsEntry("raw", 356).containsEntry("sensor_type", "ds18b20");
    }

    @Test
    void should_accept_a_sensor_batch() {
        String batch = "{\"esp_id\":\"ESP_A1\",\"seq\":37,\"zone_id\":\"gh_1\",\"ts\":1735818030,\"time_valid\":true,\"readings\":["
                + "{\"gpio\":4,\"sensor_type\":\"ds18b20\",\"value\":22.25,\"age_ms\":29900},"
                + "{\"gpio\":21,\"sensor_type\":\"sht31_temp\",\"value\":25,\"age_ms\":29900}]}";
        PayloadValidator.Parsed p = check("sensor-batch", "kaiser/god/esp/ESP_A1/sensor/batch", batch);
        assertThat(p.gpio()).isNull();
        assertThat((List<?>) p.payload().get("readings")).hasSize(2);
    }

    @Test
    void should_accept_unicode_strings() {
        String payload = DS18B20.replace("\"zone_id\"", "\"x\"").replace("}", ",\"zone_id\":\"Gewächshaus 🌱 温室\",\"subzone_id\":\"Beet \\u00e4\"}");
        PayloadValidator.Parsed p = check("sensor-data", data("ESP_A1", "4"), payload);
        assertThat(p.payload()).containsEntry("zone_id", "Gewächshaus 🌱 温室").containsEntry("subzone_id", "Beet ä");
    }

    @Test
    void should_accept_a_large_but_finite_number() {
        PayloadValidator.Parsed p = check("sensor-data", data("ESP_A1", "4"), DS18B20.replace("\"raw\":356", "\"raw\":1.7976931348623157E308"));
        assertThat(((Number) p.payload().get("raw")).doubleValue()).isEqualTo(Double.MAX_VALUE);
    }

    @Test
    void should_accept_gpio_255_in_the_payload_as_all_actuators() {
        String alert = "{\"esp_id\":\"ESP_A1\",\"gpio\":255,\"alert_type\":\"emergency_stop\",\"message\":\"stop\",\"ts\":1735818000}";
        PayloadValidator.Parsed p = check("actuator-alert", "kaiser/god/esp/ESP_A1/actuator/5/alert", alert);
        assertThat(p.gpio()).isEqualTo(5);
        rejected("actuator-alert", "kaiser/god/esp/ESP_A1/actuator/5/alert", alert.replace("255", "6"), "gpio_mismatch");
    }

    // ------------------------------------------------------------------ one test per reason code

    @Test
    void should_reject_a_topic_of_the_wrong_shape_as_invalid_topic() {
        rejected("sensor-data", "kaiser/god/esp/ESP_A1/sensor/data", DS18B20, "invalid_topic");
        rejected("heartbeat", "kaiser/god/esp/ESP_A1/system/heartbeat/extra", ORIGINAL_HEARTBEAT, "invalid_topic");
    }

    @Test
    void should_reject_a_bad_esp_id_in_the_topic_as_invalid_esp_id() {
        rejected("sensor-data", data("ESP A1!", "4"), DS18B20, "invalid_esp_id");
        rejected("sensor-data", data("E".repeat(33), "4"), DS18B20, "invalid_esp_id");
        rejected("sensor-data", data("", "4"), DS18B20, "invalid_esp_id");
    }

    @Test
    void should_reject_gpio_outside_the_range_or_not_a_number_as_unknown_gpio() {
        rejected("sensor-data", data("ESP_A1", "99"), DS18B20.replace("\"gpio\":4", "\"gpio\":99"), "unknown_gpio");
        rejected("sensor-data", data("ESP_A1", "-1"), DS18B20, "unknown_gpio");
        rejected("sensor-data", data("ESP_A1", "four"), DS18B20, "unknown_gpio");
        rejected("sensor-data", data("ESP_A1", "49"), DS18B20, "unknown_gpio");
        assertThat(check("sensor-data", data("ESP_A1", "48"), DS18B20.replace("\"gpio\":4", "\"gpio\":48")).gpio()).isEqualTo(48);
    }

    @Test
    void should_reject_an_empty_payload() {
        rejected("sensor-data", data("ESP_A1", "4"), "", "empty_payload");
        rejected("sensor-data", data("ESP_A1", "4"), null, "empty_payload");
    }

    @Test
    void should_reject_a_payload_above_the_limit_as_oversize() {
        String padded = DS18B20.replace("}", ",\"zone_id\":\"" + "x".repeat(MAX_BYTES) + "\"}");
        rejected("sensor-data", data("ESP_A1", "4"), padded, "oversize");
        // exactly at the limit is still checked as JSON, not rejected for size
        String atLimit = DS18B20.replace("}", ",\"zone_id\":\"\"}");
        atLimit = atLimit.replace("\"zone_id\":\"\"", "\"zone_id\":\"" + "y".repeat(MAX_BYTES - bytes(atLimit).length) + "\"");
        assertThat(bytes(atLimit)).hasSize(MAX_BYTES);
        assertThat(check("sensor-data", data("ESP_A1", "4"), atLimit).payload()).containsKey("zone_id");
    }

    @Test
    void should_reject_malformed_json_as_invalid_json() {
        rejected("sensor-data", data("ESP_A1", "4"), "{\"esp_id\":\"ESP_A1\",", "invalid_json");
        rejected("sensor-data", data("ESP_A1", "4"), "not json at all", "invalid_json");
        rejected("sensor-data", data("ESP_A1", "4"), DS18B20 + " {}", "invalid_json");
        rejected("sensor-data", data("ESP_A1", "4"), DS18B20.replace("\"raw\":356", "\"raw\":NaN"), "invalid_json");
    }

    @Test
    void should_reject_duplicate_keys_as_invalid_json() {
        rejected("sensor-data", data("ESP_A1", "4"), DS18B20.replace("\"raw\":356", "\"raw\":356,\"raw\":1"), "invalid_json");
    }

    @Test
    void should_reject_deep_nesting_as_invalid_json() {
        String deep = "[".repeat(100) + "]".repeat(100);
        rejected("sensor-data", data("ESP_A1", "4"), DS18B20.replace("}", ",\"extra\":" + deep + "}"), "invalid_json");
    }

    @Test
    void should_reject_a_number_with_too_many_digits_as_invalid_json() {
        rejected("sensor-data", data("ESP_A1", "4"), DS18B20.replace("\"raw\":356", "\"raw\":" + "9".repeat(200)), "invalid_json");
    }

    @Test
    void should_reject_an_array_or_scalar_as_not_an_object() {
        rejected("sensor-data", data("ESP_A1", "4"), "[" + DS18B20 + "]", "not_an_object");
        rejected("sensor-data", data("ESP_A1", "4"), "42", "not_an_object");
        rejected("sensor-data", data("ESP_A1", "4"), "\"text\"", "not_an_object");
        rejected("sensor-data", data("ESP_A1", "4"), "null", "not_an_object");
    }

    @Test
    void should_reject_missing_fields_and_wrong_types_as_schema_violation() {
        rejected("sensor-data", data("ESP_A1", "4"), DS18B20.replace("\"sensor_type\":\"ds18b20\",", ""), "schema_violation");
        rejected("sensor-data", data("ESP_A1", "4"), DS18B20.replace("\"gpio\":4", "\"gpio\":\"four\""), "schema_violation");
        rejected("sensor-data", data("ESP_A1", "4"), DS18B20.replace("\"quality\":\"good\"", "\"quality\":\"excellent\""), "schema_violation");
        rejected("heartbeat", "kaiser/god/esp/ESP_A1/system/heartbeat", "{\"esp_id\":\"ESP_A1\",\"ts\":1}", "schema_violation");
        assertThatThrownBy(() -> check("sensor-data", data("ESP_A1", "4"), DS18B20.replace("\"gpio\":4", "\"gpio\":\"four\"")))
                .hasMessageContaining("sensor-data").hasMessageContaining("gpio");
    }

    @Test
    void should_reject_a_payload_esp_id_that_differs_from_the_topic_as_esp_id_mismatch() {
        rejected("sensor-data", data("ESP_B2", "4"), DS18B20, "esp_id_mismatch");
        rejected("heartbeat", "kaiser/god/esp/ESP_OTHER/system/heartbeat", ORIGINAL_HEARTBEAT, "esp_id_mismatch");
    }

    @Test
    void should_reject_a_payload_gpio_that_differs_from_the_topic_as_gpio_mismatch() {
        rejected("sensor-data", data("ESP_A1", "5"), DS18B20, "gpio_mismatch");
    }

    @Test
    void should_check_the_cheap_things_before_parsing() {
        // a bad topic is reported even when the payload is garbage too, and an oversize payload is never parsed
        rejected("sensor-data", data("ESP_A1", "99"), "garbage", "unknown_gpio");
        rejected("sensor-data", data("ESP_A1", "4"), "{" + " ".repeat(MAX_BYTES + 10), "oversize");
    }
}
