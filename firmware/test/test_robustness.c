/* Robustness: malformed, truncated, mistyped and random payloads on every inbound topic never
 * crash the core (ASan/UBSan watch every byte) and never switch an actuator on. */
#include "test_common.h"

static const char *const SUFFIXES[] = {
    "system/heartbeat/ack", "config", "system/command", "kaiser/broadcast/emergency", "actuator/5/command",
    "actuator/emergency", "zone/assign", "subzone/assign", "subzone/remove", "subzone/safe", "sensor/4/command",
    "kaiser/god/server/status",
};
#define NSUF (sizeof SUFFIXES / sizeof SUFFIXES[0])

static int setup(void **state) {
    if (fx_setup(state) != 0) return -1;
    fixture_t *f = *state;
    fx_hardware(f);
    fp_register(&f->fp, &f->dev);
    fp_advance(&f->fp, &f->dev, 100);
    return 0;
}

static void inject_raw(kaiser_device_t *d, const char *suffix, const char *buf, size_t len) {
    char topic[KAISER_TOPIC_MAX * 2];
    if (strncmp(suffix, "kaiser/", 7) == 0)
        snprintf(topic, sizeof topic, "%s", suffix);
    else
        snprintf(topic, sizeof topic, "kaiser/%s/esp/%s/%s", d->kaiser_id, d->esp_id, suffix);
    kaiser_on_message(d, topic, buf, len);
}

static void test_Robustness_ShouldSurviveMalformedPayloads_OnEveryInboundTopic(void **state) {
    FX;
    static const char *const bad[] = {
        "", "{", "}", "[]", "null", "42", "\"str\"", "{\"command\":null}", "{\"command\":[1,2]}",
        "{\"command\":\"ON\",\"value\":\"high\",\"duration\":-5}", "{\"command\":\"PWM\",\"value\":1e308}",
        "{\"command\":\"PWM\",\"value\":-1e308}", "{\"status\":\"online\",\"handover_epoch\":1e20}",
        "{\"status\":\"online\",\"handover_epoch\":-1}", "{\"status\":\"online\",\"handover_epoch\":1.5}",
        "{\"sensors\":{},\"actuators\":\"x\",\"offline_rules\":5,\"correlation_id\":\"c\"}",
        "{\"sensors\":[{\"gpio\":1e10,\"sensor_type\":\"ds18b20\",\"sensor_name\":\"x\"}],\"correlation_id\":\"c2\"}",
        "{\"actuators\":[{\"gpio\":-3,\"actuator_type\":\"pump\",\"actuator_name\":\"x\"},{}],\"correlation_id\":\"c3\"}",
        "{\"offline_rules\":[{\"actuator_gpio\":5,\"sensor_value_type\":123,\"time_filter\":{\"start_hour\":99}}],\"correlation_id\":\"c4\"}",
        "{\"zone_id\":123,\"kaiser_id\":{}}", "{\"zone_id\":\"a\",\"kaiser_id\":\"bad kaiser id\"}",
        "{\"subzone_id\":\"x\",\"assigned_gpios\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]}",
        "{\"subzone_id\":\"\",\"assigned_gpios\":\"4\"}", "{\"data\":{\"correlation_id\":5}}",
        "{\"command\":\"emergency_stop\",\"action\":\"stop_all\"}", "{\"command\":\"clear_emergency\",\"correlation_id\":\"\"}",
        "{\"command\":\"onewire/scan\",\"params\":{\"pin\":\"x\"}}", "{\"command\":\"set_log_level\",\"params\":[]}",
        "{\"command\":\"factory_reset\",\"confirm\":\"yes\"}", "{\"command\":\"measure\",\"request_id\":7}",
        "{\"status\":\"offline\",\"reason\":5}",
        "{\"correlation_id\":\"big\",\"generation\":1e30,\"actuators\":[{\"gpio\":7,\"actuator_type\":\"pump\","
        "\"actuator_name\":\"x\",\"max_runtime_ms\":1e30,\"default_pwm\":1e30}],\"sensors\":[{\"gpio\":33,"
        "\"sensor_type\":\"ph\",\"sensor_name\":\"p\",\"i2c_address\":-1e30,\"measurement_interval_seconds\":1e30}],"
        "\"offline_rules\":[{\"actuator_gpio\":1e30,\"sensor_gpio\":-1e30,\"sensor_value_type\":\"ph\","
        "\"time_filter\":{\"enabled\":true,\"days_of_week_mask\":1e30}}]}",
        "{\"command\":\"ON\",\"value\":1e308,\"duration\":1e308,\"correlation_id\":\"huge\"}",
        "{\"command\":\"PWM\",\"value\":0.5,\"ttl_ms\":1e308,\"created_at_ms\":-1e308,\"correlation_id\":\"ttl\"}",
    };
    for (size_t s = 0; s < NSUF; s++)
        for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) inject_raw(d, SUFFIXES[s], bad[b], strlen(bad[b]));
    fp_advance(fp, d, 10000);
    assert_false(fp->gpio[5]);
    assert_int_equal(fp->pwm[18], 0);
}

static void test_Robustness_ShouldSurviveTruncatedAndRandomBytes_OnEveryInboundTopic(void **state) {
    FX;
    const char *good = "{\"command\":\"OFF\",\"value\":0.0,\"duration\":0,\"correlation_id\":\"9c1e6a52\",\"sensors\":[],"
                       "\"status\":\"online\",\"handover_epoch\":1,\"zone_id\":\"gh_1\",\"kaiser_id\":\"god\"}";
    size_t n = strlen(good);
    for (size_t s = 0; s < NSUF; s++)
        for (size_t cut = 0; cut <= n; cut += 3) inject_raw(d, SUFFIXES[s], good, cut); /* not NUL-terminated at cut */
    uint32_t x = 2463534242u;
    char buf[256];
    for (int i = 0; i < 3000; i++) {
        size_t len = 0;
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        len = x % sizeof buf;
        for (size_t k = 0; k < len; k++) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            static const char alphabet[] = "{}[]\":,0123456789.-eEtrufalsn \\\"abcONPWMTGLE_";
            buf[k] = (i % 3 == 0) ? (char)(x & 0xFF) : alphabet[x % (sizeof alphabet - 1)];
        }
        inject_raw(d, SUFFIXES[(size_t)i % NSUF], buf, len);
    }
    fp_advance(fp, d, 1000);
    assert_true(d->stats.received > 3000);
}

/* argv[1], when given, runs only the cmocka test of that name (one ctest per behaviour). */
int main(int argc, char **argv) {
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_Robustness_ShouldSurviveMalformedPayloads_OnEveryInboundTopic, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_Robustness_ShouldSurviveTruncatedAndRandomBytes_OnEveryInboundTopic, setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
