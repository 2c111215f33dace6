/*
 * Golden payload vectors shared with the Java tests (contract/vectors/<schema>/<case>.json).
 *
 * Device-to-server vectors are produced by this test: one deterministic scenario (fake clock at
 * Unix 1735818000, esp_id ESP_A1B2C3, kaiser_id god, fixed vitals) drives the core with the
 * server-to-device vectors, and every payload the core publishes is compared byte for byte with
 * its vector file. KAISER_WRITE_VECTORS=1 rewrites the device-to-server files instead (then review
 * the diff). Server-to-device vectors are hand-written and must parse and take effect here.
 */
#include "test_common.h"

#include "cJSON.h"

static bool writing(void) {
    const char *w = getenv("KAISER_WRITE_VECTORS");
    return w != NULL && strcmp(w, "1") == 0;
}

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    buf[got] = '\0';
    fclose(f);
    return buf;
}

static int outbound_checked;

/* Compare (or write) one device-to-server vector. */
static void vec(const char *schema, const char *name, const char *payload) {
    char path[512];
    assert_non_null(payload);
    snprintf(path, sizeof path, "%s/%s/%s.json", KAISER_VECTORS_DIR, schema, name);
    outbound_checked++;
    if (writing()) {
        char dir[512];
        snprintf(dir, sizeof dir, "mkdir -p '%s/%s'", KAISER_VECTORS_DIR, schema);
        assert_int_equal(system(dir), 0);
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        fputs(payload, f);
        fclose(f);
        return;
    }
    char *want = read_all(path);
    if (want == NULL) fail_msg("missing vector %s (run with KAISER_WRITE_VECTORS=1)", path);
    if (strcmp(want, payload) != 0) fail_msg("vector %s differs:\n want %s\n got  %s", path, want, payload);
    free(want);
}

static const char *last(fake_port_t *fp, const char *suffix) {
    const fp_pub_t *p = fp_last(fp, suffix);
    if (p == NULL) fail_msg("nothing published on *%s", suffix);
    return p->payload;
}

/* First publish on suffix whose payload contains needle, searching from the newest. */
static const char *last_with(fake_port_t *fp, const char *suffix, const char *needle) {
    for (size_t i = fp->npubs; i > 0; i--) {
        const fp_pub_t *p = &fp->pubs[i - 1];
        size_t a = strlen(p->topic), b = strlen(suffix);
        if (a >= b && strcmp(p->topic + a - b, suffix) == 0 && strstr(p->payload, needle)) return p->payload;
    }
    fail_msg("nothing on *%s containing %s", suffix, needle);
    return NULL;
}

/* Inject a server-to-device vector on its topic. */
static void inbound(kaiser_device_t *d, const char *schema, const char *name, const char *suffix) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s/%s.json", KAISER_VECTORS_DIR, schema, name);
    char *json = read_all(path);
    if (json == NULL) fail_msg("missing inbound vector %s", path);
    cJSON *o = cJSON_Parse(json);
    assert_true(cJSON_IsObject(o)); /* every vector is one JSON object */
    cJSON_Delete(o);
    fp_inject(d, suffix, json);
    free(json);
}

static void test_Vectors_ShouldMatchEncoderOutput_ForEveryDeviceToServerTopic(void **state) {
    FX;
    fp->raw[4][0] = 356;
    fp->raw[21][0] = 26214;
    fp->raw[21][1] = 39321;
    char topic[KAISER_TOPIC_MAX], will[256];
    assert_int_equal(kaiser_will(d, topic, sizeof topic, will, sizeof will), 0);
    vec("will", "offline", will);

    kaiser_on_connected(d);
    vec("session-announce", "boot", last(fp, "session/announce"));
    for (int mid = 1; mid <= fp->next_mid; mid++) kaiser_on_suback(d, mid);
    kaiser_tick(d);
    vec("heartbeat", "pending-before-ack", last(fp, "system/heartbeat"));

    /* unregistered: an actuator command is rejected by admission */
    inbound(d, "actuator-command", "on", "actuator/5/command");
    vec("actuator-response", "rejected-registration-pending", last(fp, "actuator/5/response"));

    inbound(d, "heartbeat-ack", "online", "system/heartbeat/ack");
    assert_true(d->registered);
    fp_advance(fp, d, 100);
    vec("intent-lifecycle", "admission-reject", last(fp, "system/intent_outcome/lifecycle")); /* held by the gate */
    vec("intent-outcome", "command-rejected", last_with(fp, "system/intent_outcome", "\"outcome\":\"rejected\""));

    inbound(d, "config", "full", "config");
    vec("config-response", "success", last(fp, "config_response"));
    vec("intent-outcome", "config-persisted", last(fp, "system/intent_outcome"));
    assert_int_equal(d->rule_count, 1);
    inbound(d, "config", "partial-invalid", "config");
    vec("config-response", "partial-success", last(fp, "config_response"));

    inbound(d, "zone-assign", "assign", "zone/assign");
    vec("zone-ack", "zone-assigned", last(fp, "zone/ack"));
    vec("heartbeat", "registered-zone-assigned", last(fp, "system/heartbeat"));
    inbound(d, "subzone-assign", "assign", "subzone/assign");
    vec("subzone-ack", "subzone-assigned", last(fp, "subzone/ack"));
    inbound(d, "subzone-safe", "enable", "subzone/safe");
    vec("subzone-ack", "subzone-safe-enabled", last(fp, "subzone/ack"));

    inbound(d, "actuator-command", "on", "actuator/5/command");
    assert_true(fp->gpio[5]);
    vec("actuator-response", "on", last(fp, "actuator/5/response"));
    vec("actuator-status", "pump-on", last(fp, "actuator/5/status"));
    vec("intent-outcome", "command-applied", last(fp, "system/intent_outcome"));
    inbound(d, "actuator-command", "pwm", "actuator/18/command");
    assert_int_equal(fp->pwm[18], 128);
    vec("actuator-response", "pwm", last(fp, "actuator/18/response"));
    vec("actuator-status", "pwm-half", last(fp, "actuator/18/status"));
    inbound(d, "actuator-command", "toggle", "actuator/18/command");
    assert_int_equal(fp->pwm[18], 0);
    inbound(d, "actuator-command", "on-with-duration", "actuator/5/command");
    inbound(d, "actuator-command", "off", "actuator/5/command");
    assert_false(fp->gpio[5]);
    vec("actuator-response", "off", last(fp, "actuator/5/response"));

    inbound(d, "sensor-command", "measure", "sensor/4/command");
    vec("sensor-response", "measure", last(fp, "sensor/4/response"));
    vec("sensor-data", "ds18b20", last(fp, "sensor/4/data"));
    fp_advance(fp, d, 30000);
    vec("sensor-data", "sht31-temp", last_with(fp, "sensor/21/data", "sht31_temp"));
    vec("sensor-data", "sht31-humidity", last_with(fp, "sensor/21/data", "sht31_humidity"));
    assert_int_equal(kaiser_publish_sensor_batch(d), 0);
    vec("sensor-batch", "cached", last(fp, "sensor/batch"));

    inbound(d, "system-command", "status", "system/command");
    vec("system-command-response", "status", last(fp, "system/command/response"));
    inbound(d, "system-command", "set_log_level", "system/command");
    vec("system-command-response", "set-log-level", last(fp, "system/command/response"));
    inbound(d, "system-command", "onewire_scan", "system/command");
    vec("system-command-response", "onewire-scan", last(fp, "system/command/response"));
    inbound(d, "system-command", "reboot", "system/command");
    vec("system-command-response", "reboot", last(fp, "system/command/response"));

    inbound(d, "actuator-command", "on", "actuator/5/command"); /* duplicate id: not run again */
    vec("actuator-response", "duplicate", last(fp, "actuator/5/response"));

    inbound(d, "emergency-command", "emergency_stop", "actuator/emergency");
    vec("emergency-ack", "executed", last(fp, "actuator/emergency/ack"));
    vec("actuator-alert", "emergency-stop", last(fp, "actuator/5/alert"));
    inbound(d, "emergency-command", "clear_emergency", "actuator/emergency");
    vec("recovery-confirm", "rejected-hold-off", last(fp, "actuator/recovery_confirm"));
    fp_advance(fp, d, 5000);
    inbound(d, "emergency-command", "clear_emergency", "actuator/emergency");
    vec("recovery-confirm", "cleared", last(fp, "actuator/recovery_confirm"));
    assert_false(d->emergency);

    inbound(d, "broadcast-emergency", "stop_all", "kaiser/broadcast/emergency");
    assert_true(d->emergency);

    kaiser_report_error(d, 1040, 2, "Sensor read failed");
    vec("system-error", "sensor-read-failed", last(fp, "system/error"));

    for (int i = 0; i < 5; i++) { /* diagnostics and every-5th-heartbeat metrics, the server answering each heartbeat */
        fp_advance(fp, d, 60000);
        inbound(d, "heartbeat-ack", "online", "system/heartbeat/ack");
    }
    assert_int_equal(d->offline, KAISER_OFFLINE_ONLINE);
    vec("diagnostics", "periodic", last(fp, "system/diagnostics"));
    vec("heartbeat-metrics", "periodic", last(fp, "system/heartbeat_metrics"));

    /* offline: the buffer fills, pressure is reported and delivered after the reconnect */
    inbound(d, "server-status", "online", "kaiser/god/server/status");
    kaiser_on_disconnected(d);
    fp_advance(fp, d, 1300000);
    assert_true(d->pressure);
    fp_connect(fp, d);
    inbound(d, "heartbeat-ack", "online", "system/heartbeat/ack");
    fp_advance(fp, d, 2000);
    vec("queue-pressure", "entered", last_with(fp, "system/queue_pressure", "entered_pressure"));
    assert_true(outbound_checked >= 30);
}

/* Every server-to-device vector parses and is acted on by the core. */
static void test_Vectors_ShouldBeAcceptedByDecoder_ForEveryServerToDeviceTopic(void **state) {
    FX;
    fx_hardware(f);
    fp_connect(fp, d);
    inbound(d, "heartbeat-ack", "error", "system/heartbeat/ack");
    assert_true(d->registered);
    inbound(d, "heartbeat-ack", "pending_approval", "system/heartbeat/ack");
    assert_int_equal(d->state, KAISER_STATE_PENDING_APPROVAL);
    inbound(d, "heartbeat-ack", "rejected", "system/heartbeat/ack");
    assert_int_equal(d->state, KAISER_STATE_ERROR);
    inbound(d, "heartbeat-ack", "online", "system/heartbeat/ack");
    assert_int_equal(d->state, KAISER_STATE_OPERATIONAL);
    fp_advance(fp, d, 100);
    inbound(d, "zone-assign", "assign", "zone/assign");
    inbound(d, "subzone-assign", "assign", "subzone/assign");
    inbound(d, "subzone-remove", "remove", "subzone/remove");
    assert_string_equal(fp_field(fp, "subzone/ack", "status"), "subzone_removed");
    inbound(d, "system-command", "factory_reset", "system/command");
    assert_string_equal(fp_field(fp, "system/command/response", "status"), "factory_reset_initiated");
    inbound(d, "zone-assign", "remove", "zone/assign");
    assert_string_equal(fp_field(fp, "zone/ack", "status"), "zone_removed");
    inbound(d, "server-status", "offline", "kaiser/god/server/status");
    assert_int_equal(d->offline, KAISER_OFFLINE_DISCONNECTED);
}

/* argv[1], when given, runs only the cmocka test of that name (one ctest per behaviour). */
int main(int argc, char **argv) {
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_Vectors_ShouldMatchEncoderOutput_ForEveryDeviceToServerTopic, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_Vectors_ShouldBeAcceptedByDecoder_ForEveryServerToDeviceTopic, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
