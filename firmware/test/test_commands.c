/* System commands (lowercase vocabulary, answered on system/command/response), zone and subzone
 * assign with acks echoing correlation_id, sensor measure command, sensor data. */
#include "test_common.h"

static int setup(void **state) {
    if (fx_setup(state) != 0) return -1;
    fixture_t *f = *state;
    fx_hardware(f);
    fp_register(&f->fp, &f->dev);
    fp_advance(&f->fp, &f->dev, 100);
    fp_clear_pubs(&f->fp);
    return 0;
}

#define SYS(json) fp_inject(d, "system/command", json)
#define RESP(k) fp_field(fp, "system/command/response", k)

static void test_SystemCommand_ShouldAnswerStatus_WithCorrelationId(void **state) {
    FX;
    SYS("{\"command\":\"status\",\"correlation_id\":\"s-1\",\"intent_id\":\"s-1\"}");
    assert_string_equal(RESP("command"), "status");
    assert_string_equal(RESP("success"), "true");
    assert_string_equal(RESP("correlation_id"), "s-1");
    assert_string_equal(RESP("actuator_count"), "2");
    assert_string_equal(RESP("state"), "9");
    assert_int_equal(fp_last(fp, "system/command/response")->qos, 1);
}

static void test_SystemCommand_ShouldBeUnknown_WhenUpperCase(void **state) {
    FX;
    SYS("{\"command\":\"STATUS\",\"correlation_id\":\"s-2\"}");
    assert_string_equal(RESP("success"), "false");
    assert_string_equal(RESP("error"), "Unknown command");
}

static void test_SystemCommand_ShouldScheduleRestart_WhenReboot(void **state) {
    FX;
    SYS("{\"command\":\"reboot\",\"correlation_id\":\"r-1\"}");
    assert_string_equal(RESP("success"), "true");
    assert_int_equal(fp->restarts, 0);
    fp_advance(fp, d, 1100);
    assert_int_equal(fp->restarts, 1);
}

static void test_SystemCommand_ShouldRequireConfirm_WhenFactoryReset(void **state) {
    FX;
    SYS("{\"command\":\"factory_reset\",\"correlation_id\":\"f-1\"}");
    assert_string_equal(RESP("success"), "false");
    assert_non_null(fp_kv(fp, "cfg_actuators"));
    SYS("{\"command\":\"factory_reset\",\"params\":{\"confirm\":true},\"correlation_id\":\"f-2\"}");
    assert_string_equal(RESP("status"), "factory_reset_initiated");
    assert_null(fp_kv(fp, "cfg_actuators"));
    fp_advance(fp, d, 3100);
    assert_int_equal(fp->restarts, 1);
}

static void test_SystemCommand_ShouldStopAllWithoutStateChange_WhenSafeMode_AndClearOnExit(void **state) {
    FX;
    cmd(d, 5, "{\"command\":\"ON\",\"correlation_id\":\"on\"}");
    SYS("{\"command\":\"safe_mode\",\"correlation_id\":\"sm\"}");
    assert_false(fp->gpio[5]);
    assert_true(d->actuators[0].latched);
    assert_int_equal(d->state, KAISER_STATE_OPERATIONAL);
    SYS("{\"command\":\"exit_safe_mode\",\"correlation_id\":\"xsm\"}");
    assert_string_equal(RESP("success"), "true");
    assert_false(d->actuators[0].latched);
    assert_false(fp->gpio[5]);
}

static void test_SystemCommand_ShouldPersistLogLevel_WhenValid(void **state) {
    FX;
    SYS("{\"command\":\"set_log_level\",\"params\":{\"level\":\"DEBUG\"},\"correlation_id\":\"l-1\"}");
    assert_string_equal(RESP("level"), "DEBUG");
    assert_string_equal(fp_kv(fp, "log_level"), "DEBUG");
    SYS("{\"command\":\"set_log_level\",\"params\":{\"level\":\"LOUD\"},\"correlation_id\":\"l-2\"}");
    assert_string_equal(RESP("success"), "false");
    assert_string_equal(RESP("requested_level"), "LOUD");
}

static void test_SystemCommand_ShouldListConfiguredDs18b20_WhenOnewireScan(void **state) {
    FX;
    SYS("{\"command\":\"onewire/scan\",\"params\":{\"pin\":4},\"correlation_id\":\"ow\"}");
    assert_string_equal(RESP("found_count"), "1");
    assert_non_null(strstr(RESP("devices"), "28FF641E8D3C0C79"));
}

static void test_SystemCommand_ShouldAnswerGetConfigAndDiagnostics(void **state) {
    FX;
    SYS("{\"command\":\"get_config\",\"correlation_id\":\"g\"}");
    assert_string_equal(RESP("sensor_count"), "2");
    SYS("{\"command\":\"diagnostics\",\"correlation_id\":\"dg\"}");
    assert_string_equal(RESP("kaiser_id"), "god");
}

static void test_SystemCommand_ShouldAllowAllowListOnly_WhenPendingApproval(void **state) {
    FX;
    fp_inject(d, "system/heartbeat/ack", "{\"status\":\"pending_approval\",\"handover_epoch\":1}");
    SYS("{\"command\":\"factory_reset\",\"params\":{\"confirm\":true},\"correlation_id\":\"pa\"}");
    assert_string_equal(RESP("reason_code"), "PENDING_APPROVAL_BLOCKED");
    SYS("{\"command\":\"status\",\"correlation_id\":\"pb\"}");
    assert_string_equal(RESP("success"), "true");
}

static void test_SystemCommand_ShouldRunOnce_WhenCorrelationIdRepeats(void **state) {
    FX;
    SYS("{\"command\":\"reboot\",\"correlation_id\":\"once\"}");
    fp_advance(fp, d, 1100);
    SYS("{\"command\":\"reboot\",\"correlation_id\":\"once\"}");
    fp_advance(fp, d, 1100);
    assert_int_equal(fp->restarts, 1);
    assert_string_equal(RESP("message"), "Duplicate command ignored (already executed)");
}

static void test_SystemCommand_ShouldAnswerJsonParseError_WhenPayloadInvalid(void **state) {
    FX;
    SYS("{oops");
    assert_string_equal(RESP("error"), "JSON_PARSE_ERROR");
}

static void test_ZoneAssign_ShouldAckWithCorrelationId_AndForceHeartbeat(void **state) {
    FX;
    fp_inject(d, "zone/assign", "{\"zone_id\":\"gh_1\",\"master_zone_id\":\"gh\",\"zone_name\":\"GH\",\"kaiser_id\":\"god\",\"correlation_id\":\"z-1\"}");
    assert_string_equal(fp_field(fp, "zone/ack", "status"), "zone_assigned");
    assert_string_equal(fp_field(fp, "zone/ack", "correlation_id"), "z-1");
    assert_string_equal(fp_field(fp, "zone/ack", "zone_id"), "gh_1");
    assert_int_equal(d->state, KAISER_STATE_ZONE_CONFIGURED);
    assert_string_equal(fp_field(fp, "system/heartbeat", "zone_id"), "gh_1");
}

static void test_ZoneAssign_ShouldRemoveZoneAndSubzones_WhenZoneIdEmpty(void **state) {
    FX;
    fp_inject(d, "zone/assign", "{\"zone_id\":\"gh_1\",\"kaiser_id\":\"god\",\"correlation_id\":\"z-1\"}");
    fp_inject(d, "subzone/assign", "{\"subzone_id\":\"bed_a\",\"parent_zone_id\":\"gh_1\",\"assigned_gpios\":[4,5],\"correlation_id\":\"s-1\"}");
    fp_inject(d, "zone/assign", "{\"zone_id\":\"\",\"kaiser_id\":\"god\",\"correlation_id\":\"z-2\"}");
    assert_string_equal(fp_field(fp, "zone/ack", "status"), "zone_removed");
    assert_false(d->subzones[0].used);
    assert_int_equal(d->state, KAISER_STATE_PENDING_APPROVAL);
}

static void test_ZoneAssign_ShouldAckError_WhenZoneIdInvalid(void **state) {
    FX;
    fp_inject(d, "zone/assign", "{\"zone_id\":\"bad zone!\",\"kaiser_id\":\"god\",\"correlation_id\":\"z-3\"}");
    assert_string_equal(fp_field(fp, "zone/ack", "status"), "error");
    assert_string_equal(fp_field(fp, "zone/ack", "correlation_id"), "z-3");
}

static void test_ZoneAssign_ShouldRunOnce_WhenCorrelationIdRepeats(void **state) {
    FX;
    const char *z = "{\"zone_id\":\"gh_1\",\"kaiser_id\":\"god\",\"correlation_id\":\"z-dup\"}";
    fp_inject(d, "zone/assign", z);
    fp_inject(d, "zone/assign", "{\"zone_id\":\"gh_2\",\"kaiser_id\":\"god\",\"correlation_id\":\"z-other\"}");
    int hb = fp_count(fp, "system/heartbeat");
    fp_inject(d, "zone/assign", z); /* redelivered late: must not move the device back to gh_1 */
    assert_string_equal(d->zone_id, "gh_2");
    assert_string_equal(fp_field(fp, "zone/ack", "correlation_id"), "z-dup");
    assert_string_equal(fp_field(fp, "zone/ack", "message"), "Duplicate command ignored (already executed)");
    assert_int_equal(fp_count(fp, "system/heartbeat"), hb); /* nothing executed */
    fp_inject(d, "subzone/assign", "{\"subzone_id\":\"bed_a\",\"assigned_gpios\":[4],\"correlation_id\":\"s-dup\"}");
    fp_inject(d, "subzone/remove", "{\"subzone_id\":\"bed_a\",\"correlation_id\":\"s-rm\"}");
    fp_inject(d, "subzone/assign", "{\"subzone_id\":\"bed_a\",\"assigned_gpios\":[4],\"correlation_id\":\"s-dup\"}");
    assert_false(d->subzones[0].used); /* not re-created by the duplicate */
    assert_int_equal(d->stats.duplicates_ignored, 2);
}

static void test_SubzoneAssign_ShouldValidateZoneParentAndGpioConflicts(void **state) {
    FX;
    fp_inject(d, "subzone/assign", "{\"subzone_id\":\"bed_a\",\"assigned_gpios\":[4],\"correlation_id\":\"s-0\"}");
    assert_string_equal(fp_field(fp, "subzone/ack", "message"), "ESP zone not assigned");
    fp_inject(d, "zone/assign", "{\"zone_id\":\"gh_1\",\"kaiser_id\":\"god\",\"correlation_id\":\"z\"}");
    fp_inject(d, "subzone/assign", "{\"subzone_id\":\"bed_a\",\"parent_zone_id\":\"other\",\"correlation_id\":\"s-1\"}");
    assert_string_equal(fp_field(fp, "subzone/ack", "message"), "parent_zone_id mismatch");
    fp_inject(d, "subzone/assign", "{\"subzone_id\":\"bed_a\",\"parent_zone_id\":\"gh_1\",\"assigned_gpios\":[4,5],\"correlation_id\":\"s-2\"}");
    assert_string_equal(fp_field(fp, "subzone/ack", "status"), "subzone_assigned");
    assert_string_equal(fp_field(fp, "subzone/ack", "correlation_id"), "s-2");
    fp_inject(d, "subzone/assign", "{\"subzone_id\":\"bed_b\",\"assigned_gpios\":[5],\"correlation_id\":\"s-3\"}");
    assert_string_equal(fp_field(fp, "subzone/ack", "reason_code"), "GPIO_CONFLICT");
    fp_inject(d, "subzone/safe", "{\"subzone_id\":\"bed_a\",\"action\":\"enable\",\"correlation_id\":\"s-4\"}");
    assert_string_equal(fp_field(fp, "subzone/ack", "status"), "safe_mode_enabled");
    fp_inject(d, "subzone/remove", "{\"subzone_id\":\"bed_a\",\"correlation_id\":\"s-5\"}");
    assert_string_equal(fp_field(fp, "subzone/ack", "status"), "subzone_removed");
    fp_inject(d, "subzone/remove", "{\"subzone_id\":\"bed_a\",\"correlation_id\":\"s-6\"}");
    assert_string_equal(fp_field(fp, "subzone/ack", "reason_code"), "SUBZONE_NOT_FOUND");
}

static void test_SensorData_ShouldPublishConvertedValues_PerInterval(void **state) {
    FX;
    fp_advance(fp, d, 30000);
    assert_int_equal(fp_count(fp, "sensor/4/data"), 1);
    assert_string_equal(fp_field(fp, "sensor/4/data", "value"), "22.25");
    assert_string_equal(fp_field(fp, "sensor/4/data", "raw"), "356");
    assert_string_equal(fp_field(fp, "sensor/4/data", "onewire_address"), "28FF641E8D3C0C79");
    assert_int_equal(fp_count(fp, "sensor/21/data"), 2); /* sht31: temp + humidity */
    assert_int_equal(fp_last(fp, "sensor/4/data")->qos, 1);
}

static void test_SensorData_ShouldStartAtAStablePerDevicePhase_WhenPhaseSpread(void **state) {
    FX;
    d->opt.data_phase_spread = true;
    assert_int_equal(kaiser_apply_config_json(d, TEST_CONFIG), 0); /* sensors start afresh */
    fp_clear_pubs(fp);
    /* FNV-1a("ESP_A1B2C3", gpio 4) % 30 s puts the first ds18b20 reading at 18.72 s, not at once */
    fp_advance(fp, d, 18000);
    assert_int_equal(fp_count(fp, "sensor/4/data"), 0);
    fp_advance(fp, d, 12000);
    assert_int_equal(fp_count(fp, "sensor/4/data"), 1);
    /* then every interval, counted from that phase */
    fp_advance(fp, d, 30000);
    assert_int_equal(fp_count(fp, "sensor/4/data"), 2);
}

static void test_SensorData_ShouldNotPublish_WhenDs18b20ReadsMinus127(void **state) {
    FX;
    fp->raw[4][0] = -2032;
    fp_advance(fp, d, 30000);
    assert_int_equal(fp_count(fp, "sensor/4/data"), 0);
    assert_string_equal(fp_field(fp, "system/error", "error_code"), "1060");
}

static void test_SensorCommand_ShouldMeasureAndRespond_WhenMeasure(void **state) {
    FX;
    fp_inject(d, "sensor/4/command", "{\"command\":\"measure\",\"request_id\":\"r-1\",\"correlation_id\":\"r-1\"}");
    assert_string_equal(fp_field(fp, "sensor/4/response", "success"), "true");
    assert_string_equal(fp_field(fp, "sensor/4/response", "correlation_id"), "r-1");
    assert_int_equal(fp_count(fp, "sensor/4/data"), 1);
    fp_inject(d, "sensor/9/command", "{\"command\":\"measure\",\"request_id\":\"r-2\",\"correlation_id\":\"r-2\"}");
    assert_string_equal(fp_field(fp, "sensor/9/response", "reason_code"), "SENSOR_NOT_FOUND");
}

static void test_SensorBatch_ShouldCarryCachedReadings(void **state) {
    FX;
    fp_advance(fp, d, 30000);
    assert_int_equal(kaiser_publish_sensor_batch(d), 0);
    assert_non_null(strstr(fp_field(fp, "sensor/batch", "readings"), "sht31_humidity"));
}

/* argv[1], when given, runs only the cmocka test of that name (one ctest per behaviour). */
int main(int argc, char **argv) {
    if (argc > 1) cmocka_set_test_filter(argv[1]);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(test_SystemCommand_ShouldAnswerStatus_WithCorrelationId),
        T(test_SystemCommand_ShouldBeUnknown_WhenUpperCase),
        T(test_SystemCommand_ShouldScheduleRestart_WhenReboot),
        T(test_SystemCommand_ShouldRequireConfirm_WhenFactoryReset),
        T(test_SystemCommand_ShouldStopAllWithoutStateChange_WhenSafeMode_AndClearOnExit),
        T(test_SystemCommand_ShouldPersistLogLevel_WhenValid),
        T(test_SystemCommand_ShouldListConfiguredDs18b20_WhenOnewireScan),
        T(test_SystemCommand_ShouldAnswerGetConfigAndDiagnostics),
        T(test_SystemCommand_ShouldAllowAllowListOnly_WhenPendingApproval),
        T(test_SystemCommand_ShouldRunOnce_WhenCorrelationIdRepeats),
        T(test_SystemCommand_ShouldAnswerJsonParseError_WhenPayloadInvalid),
        T(test_ZoneAssign_ShouldAckWithCorrelationId_AndForceHeartbeat),
        T(test_ZoneAssign_ShouldRemoveZoneAndSubzones_WhenZoneIdEmpty),
        T(test_ZoneAssign_ShouldAckError_WhenZoneIdInvalid),
        T(test_SubzoneAssign_ShouldValidateZoneParentAndGpioConflicts),
        T(test_ZoneAssign_ShouldRunOnce_WhenCorrelationIdRepeats),
        T(test_SensorData_ShouldPublishConvertedValues_PerInterval),
        T(test_SensorData_ShouldStartAtAStablePerDevicePhase_WhenPhaseSpread),
        T(test_SensorData_ShouldNotPublish_WhenDs18b20ReadsMinus127),
        T(test_SensorCommand_ShouldMeasureAndRespond_WhenMeasure),
        T(test_SensorBatch_ShouldCarryCachedReadings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
