/* Offline mode: 30 s grace, OFFLINE_ACTIVE running the pushed rules with hysteresis, actuators
 * without a rule to their default state, recovery on the next heartbeat ACK (handover epoch). */
#include "test_common.h"

#define RAW_C(c) ((int32_t)(((c) + 45.0) * 65535.0 / 175.0 + 0.5))

static const char RULE_CONFIG[] =
    "{\"correlation_id\":\"rules\",\"sensors\":[{\"gpio\":21,\"sensor_type\":\"sht31\",\"sensor_name\":\"Air\","
    "\"measurement_interval_seconds\":1}],"
    "\"offline_rules\":[{\"actuator_gpio\":5,\"sensor_gpio\":21,\"sensor_value_type\":\"sht31_temp\","
    "\"activate_above\":28.0,\"deactivate_below\":24.0,\"activate_below\":0.0,\"deactivate_above\":0.0}]}";

static int setup(void **state) {
    if (fx_setup(state) != 0) return -1;
    fixture_t *f = *state;
    fx_hardware(f);
    f->fp.raw[21][0] = RAW_C(26.0);
    fp_register(&f->fp, &f->dev);
    fp_inject(&f->dev, "config", RULE_CONFIG);
    fp_advance(&f->fp, &f->dev, 100);
    fp_clear_pubs(&f->fp);
    return 0;
}

static void test_Disconnect_ShouldDriveUncoveredActuatorsToDefault_AndHoldCoveredOnes(void **state) {
    FX;
    cmd(d, 5, "{\"command\":\"ON\",\"correlation_id\":\"a\"}");
    cmd(d, 18, "{\"command\":\"ON\",\"correlation_id\":\"b\"}");
    kaiser_on_disconnected(d);
    assert_true(fp->gpio[5]);       /* covered by a rule: keeps running */
    assert_int_equal(fp->pwm[18], 0); /* no rule: default (off) at once */
    assert_int_equal(d->offline, KAISER_OFFLINE_DISCONNECTED);
}

static void test_Disconnect_ShouldDriveAllToDefault_WhenNoRules(void **state) {
    FX;
    fp_inject(d, "config", "{\"correlation_id\":\"clear\",\"offline_rules\":[]}");
    assert_int_equal(d->rule_count, 0);
    cmd(d, 5, "{\"command\":\"ON\",\"correlation_id\":\"a\"}");
    kaiser_on_disconnected(d);
    assert_false(fp->gpio[5]);
}

static void test_OfflineMode_ShouldActivateAfter30sGrace_AndRunHysteresisRule(void **state) {
    FX;
    kaiser_on_disconnected(d);
    fp_advance(fp, d, 29900);
    assert_int_equal(d->offline, KAISER_OFFLINE_DISCONNECTED);
    fp_advance(fp, d, 200);
    assert_int_equal(d->offline, KAISER_OFFLINE_ACTIVE);
    assert_int_equal(d->offline_enter_count, 1);
    fp->raw[21][0] = RAW_C(29.0);
    fp_advance(fp, d, 20000); /* warm-up: 3 valid samples, then decide */
    assert_true(fp->gpio[5]);
    fp->raw[21][0] = RAW_C(26.0); /* between thresholds: hold */
    fp_advance(fp, d, 20000);
    assert_true(fp->gpio[5]);
    fp->raw[21][0] = RAW_C(23.0);
    fp_advance(fp, d, 10000);
    assert_false(fp->gpio[5]);
}

static void test_OfflineMode_ShouldNeverSwitchOn_WhenRuleUsesCalibrationType(void **state) {
    FX;
    fp_inject(d, "config", "{\"correlation_id\":\"ph\",\"sensors\":[{\"gpio\":33,\"sensor_type\":\"ph\",\"sensor_name\":\"pH\",\"measurement_interval_seconds\":1}],"
                           "\"offline_rules\":[{\"actuator_gpio\":5,\"sensor_gpio\":33,\"sensor_value_type\":\"ph\",\"activate_above\":1.0}]}");
    fp->raw[33][0] = 3000;
    kaiser_on_disconnected(d);
    fp_advance(fp, d, 60000);
    assert_false(fp->gpio[5]);
}

static void test_OfflineMode_ShouldNotRunRules_WhenAckArrivesWithinGrace(void **state) {
    FX;
    kaiser_on_disconnected(d);
    fp_advance(fp, d, 10000);
    fp_register(fp, d);
    assert_int_equal(d->offline, KAISER_OFFLINE_ONLINE);
    fp->raw[21][0] = RAW_C(35.0);
    fp_advance(fp, d, 60000);
    assert_false(fp->gpio[5]);
    assert_int_equal(d->offline_enter_count, 0);
}

static void test_OfflineRecovery_ShouldRequireMatchingEpoch_AndPublishStatuses(void **state) {
    FX;
    kaiser_on_disconnected(d);
    fp_advance(fp, d, 31000);
    assert_int_equal(d->offline, KAISER_OFFLINE_ACTIVE);
    fp_connect(fp, d);
    assert_int_equal(d->offline, KAISER_OFFLINE_RECONNECTING);
    assert_int_equal(d->active_handover_epoch, 1);
    assert_string_equal(fp_field(fp, "session/announce", "handover_epoch"), "1");
    assert_string_equal(fp_field(fp, "system/heartbeat", "active_handover_epoch"), "1");
    fp_inject(d, "system/heartbeat/ack", "{\"status\":\"online\",\"handover_epoch\":7}");
    assert_string_equal(d->handover_last_reject, "HANDOVER_EPOCH_MISMATCH");
    assert_int_equal(d->offline, KAISER_OFFLINE_RECONNECTING);
    fp_clear_pubs(fp);
    fp_inject(d, "system/heartbeat/ack", "{\"status\":\"online\",\"handover_epoch\":1}");
    assert_int_equal(d->offline, KAISER_OFFLINE_ONLINE);
    assert_int_equal(d->handover_completed_epoch, 1);
    fp_advance(fp, d, 1000); /* behind the backlog held while offline */
    assert_true(fp_count(fp, "actuator/5/status") >= 1);
}

static void test_OfflineMode_ShouldSetServerOverride_WhenCommandArrivesWhileActive(void **state) {
    FX;
    fp_inject(d, "kaiser/god/server/status", "{\"status\":\"offline\",\"reason\":\"graceful_shutdown\",\"timestamp\":1}");
    assert_int_equal(d->offline, KAISER_OFFLINE_DISCONNECTED);
    fp_advance(fp, d, 31000);
    /* still connected: active, and the handover has already begun (see the ACK-timeout test below) */
    assert_int_equal(d->offline, KAISER_OFFLINE_RECONNECTING);
    assert_int_equal(d->offline_enter_count, 1);
    cmd(d, 5, "{\"command\":\"OFF\",\"correlation_id\":\"ov\"}");
    assert_true(d->rules[0].server_override);
    fp->raw[21][0] = RAW_C(35.0);
    fp_advance(fp, d, 30000);
    assert_false(fp->gpio[5]); /* overridden rule is skipped */
}

static void test_ServerStatus_ShouldIgnoreStaleRetainedOffline_RightAfterReconnect(void **state) {
    FX;
    kaiser_on_disconnected(d);
    fp_connect(fp, d);
    fp_inject(d, "system/heartbeat/ack", "{\"status\":\"online\",\"handover_epoch\":1}");
    kaiser_on_disconnected(d);
    fp_connect(fp, d); /* not yet registered */
    int before = d->offline;
    fp_inject(d, "kaiser/god/server/status", "{\"status\":\"offline\",\"reason\":\"unexpected_disconnect\",\"timestamp\":1}");
    assert_int_equal(d->offline, before);
}

static void test_AckTimeout_ShouldEnterOfflineGrace_WhenNoValidAckFor120s(void **state) {
    FX;
    fp_inject(d, "config", "{\"correlation_id\":\"clear\",\"offline_rules\":[]}");
    cmd(d, 5, "{\"command\":\"ON\",\"correlation_id\":\"on\"}");
    fp_advance(fp, d, 119000);
    assert_int_equal(d->offline, KAISER_OFFLINE_ONLINE);
    fp_advance(fp, d, 1200);
    assert_int_equal(d->offline, KAISER_OFFLINE_DISCONNECTED);
    assert_false(fp->gpio[5]); /* 0 rules: safe state */
    fp_inject(d, "system/heartbeat/ack", "{\"status\":\"online\",\"handover_epoch\":1}");
    assert_int_equal(d->offline, KAISER_OFFLINE_ONLINE);
}

static void test_OfflineMode_ShouldStartHandover_WhenActivatedWhileConnected(void **state) {
    FX;
    /* no valid ACK for 120 s (a server busy with a fleet's power-on), then the 30 s grace: offline while connected */
    fp_advance(fp, d, 121000);
    assert_int_equal(d->offline, KAISER_OFFLINE_DISCONNECTED);
    fp_clear_pubs(fp);
    fp_advance(fp, d, 31000);
    assert_int_equal(d->offline_enter_count, 1);
    assert_int_equal(d->offline, KAISER_OFFLINE_RECONNECTING);
    assert_int_equal(d->active_handover_epoch, 1);
    assert_string_equal(fp_field(fp, "session/announce", "handover_epoch"), "1");
    assert_string_equal(fp_field(fp, "session/announce", "reason"), "reconnect");
    /* a late ACK of the old session is still refused; the ACK echoing the new epoch ends the offline mode */
    fp_inject(d, "system/heartbeat/ack", "{\"status\":\"online\",\"handover_epoch\":2}");
    assert_string_equal(d->handover_last_reject, "HANDOVER_EPOCH_MISMATCH");
    fp_clear_pubs(fp);
    fp_advance(fp, d, 61000); /* the next heartbeat carries the new epoch, which the server echoes */
    assert_string_equal(fp_field(fp, "system/heartbeat", "active_handover_epoch"), "1");
    fp_inject(d, "system/heartbeat/ack", "{\"status\":\"online\",\"handover_epoch\":1}");
    assert_int_equal(d->offline, KAISER_OFFLINE_ONLINE);
    assert_int_equal(d->handover_completed_epoch, 1);
    assert_true(d->registered);
}

static void test_OfflineRuleWindow_ShouldWrapMidnight_AndFollowBerlinDst(void **state) {
    (void)state;
    const int64_t jan2 = 1735776000; /* 2025-01-02 00:00 UTC, a Thursday */
    const int64_t jul2 = 1751414400; /* 2025-07-02 00:00 UTC */
    kaiser_rule_t r = {0};
    r.tf_enabled = true;
    r.tf_start_min = 22 * 60;
    r.tf_end_min = 6 * 60;
    r.tf_days_mask = 0x7F;
    assert_true(kaiser_rule_window_open(&r, jan2 + 23 * 3600));
    assert_true(kaiser_rule_window_open(&r, jan2 + 5 * 3600 + 59 * 60));
    assert_false(kaiser_rule_window_open(&r, jan2 + 6 * 3600));
    assert_false(kaiser_rule_window_open(&r, jan2 + 12 * 3600));
    r.tf_berlin = true;
    assert_true(kaiser_rule_window_open(&r, jan2 + 21 * 3600 + 1800));  /* 22:30 CET */
    assert_false(kaiser_rule_window_open(&r, jan2 + 20 * 3600 + 1800)); /* 21:30 CET */
    assert_true(kaiser_rule_window_open(&r, jul2 + 20 * 3600 + 1800));  /* 22:30 CEST */
    assert_false(kaiser_rule_window_open(&r, jul2 + 19 * 3600 + 1800)); /* 21:30 CEST */
    /* DST starts 2025-03-30 01:00 UTC: 03:00 CEST; a 02:00-03:00 local window is skipped that night */
    r.tf_start_min = 2 * 60;
    r.tf_end_min = 3 * 60;
    assert_false(kaiser_rule_window_open(&r, 1743296400 - 1800)); /* 00:30 UTC = 01:30 CET */
    assert_false(kaiser_rule_window_open(&r, 1743296400));        /* 01:00 UTC = 03:00 CEST: skipped */
    r.tf_start_min = 1 * 60;
    assert_true(kaiser_rule_window_open(&r, 1743296400 - 1800));  /* 01:30 CET inside 01:00-03:00 */
    assert_false(kaiser_rule_window_open(&r, 1743296400 + 60));   /* 03:01 CEST */
    /* weekday mask: Thursday is bit 4 */
    r.tf_berlin = false;
    r.tf_start_min = r.tf_end_min = 0; /* whole day */
    r.tf_days_mask = 0x7F & ~(1u << 4);
    assert_false(kaiser_rule_window_open(&r, jan2 + 12 * 3600));
    r.tf_days_mask = 1u << 4;
    assert_true(kaiser_rule_window_open(&r, jan2 + 12 * 3600));
}

static void test_OfflineMode_ShouldForceOff_WhenRuleTimeWindowClosed(void **state) {
    FX;
    /* the fake clock is 2025-01-02 ~11:40 UTC; the rule only runs 22:00-06:00 UTC */
    fp_inject(d, "config", "{\"correlation_id\":\"tw\",\"offline_rules\":[{\"actuator_gpio\":5,\"sensor_gpio\":21,"
                           "\"sensor_value_type\":\"sht31_temp\",\"activate_above\":28.0,\"deactivate_below\":24.0,"
                           "\"time_filter\":{\"enabled\":true,\"start_hour\":22,\"start_minute\":0,\"end_hour\":6,"
                           "\"end_minute\":0,\"days_of_week_mask\":127,\"timezone\":\"UTC\"}}]}");
    assert_string_equal(fp_field(fp, "config_response", "status"), "success");
    assert_true(d->rules[0].tf_enabled);
    cmd(d, 5, "{\"command\":\"ON\",\"correlation_id\":\"on\"}");
    fp->raw[21][0] = RAW_C(35.0);
    kaiser_on_disconnected(d);
    assert_true(fp->gpio[5]); /* covered: held during the grace */
    fp_advance(fp, d, 31000);
    assert_false(fp->gpio[5]); /* outside the window: forced OFF although it is hot */
}

static void test_OfflineMode_ShouldHoldState_WhenTimeWindowAndNoValidTime(void **state) {
    FX;
    fp->wall = 0;
    d->time_offset_s = 0;
    fp_inject(d, "config", "{\"correlation_id\":\"tw2\",\"offline_rules\":[{\"actuator_gpio\":5,\"sensor_gpio\":21,"
                           "\"sensor_value_type\":\"sht31_temp\",\"activate_above\":28.0,\"deactivate_below\":24.0,"
                           "\"time_filter\":{\"enabled\":true,\"start_hour\":22,\"end_hour\":6}}]}");
    cmd(d, 5, "{\"command\":\"ON\",\"correlation_id\":\"on\"}");
    fp->raw[21][0] = RAW_C(20.0);
    kaiser_on_disconnected(d);
    fp_advance(fp, d, 60000);
    assert_true(fp->gpio[5]); /* no clock: neither the window nor the hysteresis may switch it */
}

/* argv[1], when given, runs only the cmocka test of that name (one ctest per behaviour). */
int main(int argc, char **argv) {
    if (argc > 1) cmocka_set_test_filter(argv[1]);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(test_Disconnect_ShouldDriveUncoveredActuatorsToDefault_AndHoldCoveredOnes),
        T(test_Disconnect_ShouldDriveAllToDefault_WhenNoRules),
        T(test_OfflineMode_ShouldActivateAfter30sGrace_AndRunHysteresisRule),
        T(test_OfflineMode_ShouldNeverSwitchOn_WhenRuleUsesCalibrationType),
        T(test_OfflineMode_ShouldNotRunRules_WhenAckArrivesWithinGrace),
        T(test_OfflineRecovery_ShouldRequireMatchingEpoch_AndPublishStatuses),
        T(test_OfflineMode_ShouldSetServerOverride_WhenCommandArrivesWhileActive),
        T(test_ServerStatus_ShouldIgnoreStaleRetainedOffline_RightAfterReconnect),
        T(test_AckTimeout_ShouldEnterOfflineGrace_WhenNoValidAckFor120s),
        T(test_OfflineMode_ShouldStartHandover_WhenActivatedWhileConnected),
        T(test_OfflineRuleWindow_ShouldWrapMidnight_AndFollowBerlinDst),
        T(test_OfflineMode_ShouldForceOff_WhenRuleTimeWindowClosed),
        T(test_OfflineMode_ShouldHoldState_WhenTimeWindowAndNoValidTime),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
