/* Boot and connect sequence, session announce, LWT, registration gate, heartbeat cadence,
 * heartbeat ACK contract, reconnect backoff, circuit breaker and the offline buffer on the device. */
#include "test_common.h"

static void test_Boot_ShouldDriveActuatorsToDefaultStateAndCountBoots_WhenConfigPersisted(void **state) {
    FX;
    assert_int_equal(d->boot_count, 1);
    assert_int_equal(kaiser_apply_config_json(d, "{\"actuators\":[{\"gpio\":5,\"actuator_type\":\"relay\",\"actuator_name\":\"R\","
                                                 "\"default_state\":true},{\"gpio\":6,\"actuator_type\":\"pump\",\"actuator_name\":\"P\","
                                                 "\"inverted_logic\":true}]}"), 0);
    memset(fp->gpio, 0, sizeof fp->gpio);
    kaiser_device_t *d2 = calloc(1, sizeof *d2);
    kaiser_port_t p = fp_port(fp);
    assert_int_equal(kaiser_init(d2, &p, NULL, "ESP_A1B2C3", NULL), 0);
    assert_int_equal(d2->boot_count, 2);
    assert_true(fp->gpio[5]);  /* default_state ON */
    assert_true(fp->gpio[6]);  /* OFF with inverted logic = high level */
    assert_int_equal(d2->state, KAISER_STATE_PENDING_APPROVAL);
    assert_false(d2->connected);
    assert_int_equal(fp->npubs, 0); /* nothing is published before the connect */
    kaiser_deinit(d2);
    free(d2);
}

static void test_BootLoop_ShouldEnterSafeMode_AfterSixShortBoots_AndExitOnCommand(void **state) {
    FX; /* fx_setup was boot 1 */
    assert_int_equal(kaiser_apply_config_json(d, "{\"actuators\":[{\"gpio\":5,\"actuator_type\":\"pump\",\"actuator_name\":\"P\"}]}"), 0);
    kaiser_port_t p = fp_port(fp);
    for (int boot = 2; boot <= 6; boot++) {
        kaiser_deinit(d);
        assert_int_equal(kaiser_init(d, &p, NULL, "ESP_A1B2C3", NULL), 0);
        fp_advance(fp, d, 10000); /* dies after 10 s each time */
    }
    assert_int_equal(d->short_boots, 6);
    assert_int_equal(d->state, KAISER_STATE_SAFE_MODE);
    fp_register(fp, d);
    assert_int_equal(d->state, KAISER_STATE_SAFE_MODE); /* an online ACK does not lift the lockout */
    assert_string_equal(fp_field(fp, "system/heartbeat", "runtime_state_degraded"), "true");
    fp_advance(fp, d, 100);
    cmd(d, 5, "{\"command\":\"ON\",\"correlation_id\":\"sl\"}");
    assert_false(fp->gpio[5]);
    assert_string_equal(fp_field(fp, "actuator/5/response", "message"), "Rejected before execution (reason_code=SAFETY_LOCKED)");
    fp_inject(d, "system/command", "{\"command\":\"exit_safe_mode\",\"correlation_id\":\"x\"}");
    assert_int_equal(d->state, KAISER_STATE_OPERATIONAL);
    cmd(d, 5, "{\"command\":\"ON\",\"correlation_id\":\"on\"}");
    assert_true(fp->gpio[5]);
}

static void test_BootLoop_ShouldResetShortBootCounter_AfterStableUptime(void **state) {
    FX;
    assert_string_equal(fp_kv(fp, "boot_short"), "1");
    fp_advance(fp, d, 59000);
    assert_string_equal(fp_kv(fp, "boot_short"), "1");
    fp_advance(fp, d, 1100);
    assert_string_equal(fp_kv(fp, "boot_short"), "0");
}

static void test_Connect_ShouldAnnounceSessionAndSubscribe12Topics_WhenConnected(void **state) {
    FX;
    kaiser_on_connected(d);
    assert_int_equal(fp->npubs, 1);
    assert_string_equal(fp->pubs[0].topic, "kaiser/god/esp/ESP_A1B2C3/session/announce");
    assert_int_equal(fp->pubs[0].qos, 1);
    assert_false(fp->pubs[0].retain);
    assert_string_equal(fp_field(fp, "session/announce", "reason"), "boot");
    assert_string_equal(fp_field(fp, "session/announce", "handover_epoch"), "1");
    assert_int_equal(fp->nsubs, 12);
    assert_string_equal(fp->subs[0], "kaiser/god/esp/ESP_A1B2C3/system/heartbeat/ack");
    assert_string_equal(fp->subs[1], "kaiser/god/esp/ESP_A1B2C3/config");
    assert_int_equal(fp->sub_qos[1], 2);
    assert_string_equal(fp->subs[3], "kaiser/broadcast/emergency");
    assert_string_equal(fp->subs[4], "kaiser/god/esp/ESP_A1B2C3/actuator/+/command");
    assert_int_equal(fp->sub_qos[4], 2);
    assert_string_equal(fp->subs[11], "kaiser/god/server/status");
}

static void test_Connect_ShouldUseConfiguredKaiserId_ForAnnounceAndSubscriptions(void **state) {
    (void)state;
    fake_port_t *fp = calloc(1, sizeof *fp);
    kaiser_device_t *d = calloc(1, sizeof *d);
    fp_init(fp);
    kaiser_port_t p = fp_port(fp);
    assert_int_equal(kaiser_init(d, &p, NULL, "ESP_X", "farm7"), 0);
    fp_connect(fp, d);
    assert_string_equal(fp->pubs[0].topic, "kaiser/farm7/esp/ESP_X/session/announce");
    assert_string_equal(fp->subs[11], "kaiser/farm7/server/status");
    assert_non_null(fp_last(fp, "kaiser/farm7/esp/ESP_X/system/heartbeat"));
    kaiser_deinit(d);
    fp_free(fp);
    free(fp);
    free(d);
}

static void test_Will_ShouldBeRetainedQos1OfflinePayload_WhenBuilt(void **state) {
    FX;
    char topic[KAISER_TOPIC_MAX], payload[256];
    assert_int_equal(kaiser_will(d, topic, sizeof topic, payload, sizeof payload), 0);
    assert_string_equal(topic, "kaiser/god/esp/ESP_A1B2C3/system/will");
    assert_int_equal(kaiser_topic_qos(KT_WILL), 1);
    assert_true(kaiser_topic_retained(KT_WILL));
    assert_string_equal(payload,
                        "{\"status\":\"offline\",\"esp_id\":\"ESP_A1B2C3\",\"reason\":\"unexpected_disconnect\",\"timestamp\":1735818000}");
    assert_int_equal(kaiser_will(d, topic, 10, payload, sizeof payload), -1);
}

static void test_Heartbeat_ShouldWaitForSubacks_WhenBootstrapping(void **state) {
    FX;
    kaiser_on_connected(d);
    fp_advance(fp, d, 1000);
    assert_int_equal(fp_count(fp, "system/heartbeat"), 0);
    kaiser_on_suback(d, 1);
    fp_advance(fp, d, 100);
    assert_int_equal(fp_count(fp, "system/heartbeat"), 0); /* config SUBACK still missing */
    kaiser_on_suback(d, 2);
    fp_advance(fp, d, 100);
    assert_int_equal(fp_count(fp, "system/heartbeat"), 1);
    assert_int_equal(fp_last(fp, "system/heartbeat")->qos, 0);
}

static void test_Heartbeat_ShouldRepeatEvery5s_WhileGateClosed_And60sAfterAck(void **state) {
    FX;
    fp_connect(fp, d);
    assert_int_equal(fp_count(fp, "system/heartbeat"), 1);
    fp_advance(fp, d, 15000);
    assert_int_equal(fp_count(fp, "system/heartbeat"), 4);
    fp_inject(d, "system/heartbeat/ack", "{\"status\":\"online\",\"handover_epoch\":1}");
    fp_clear_pubs(fp);
    fp_advance(fp, d, 59900);
    assert_int_equal(fp_count(fp, "system/heartbeat"), 0);
    fp_advance(fp, d, 200);
    assert_int_equal(fp_count(fp, "system/heartbeat"), 1);
}

static void test_RegistrationGate_ShouldHoldDataButPassAcks_WhenNoValidAck(void **state) {
    FX;
    fx_hardware(f);
    fp_connect(fp, d);
    fp_advance(fp, d, 31000); /* sensors measured: data must be held */
    assert_int_equal(fp_count(fp, "/data"), 0);
    assert_true(d->outbox.count > 0);
    fp_inject(d, "zone/assign", "{\"zone_id\":\"gh_1\",\"master_zone_id\":\"gh\",\"kaiser_id\":\"god\",\"correlation_id\":\"z-1\"}");
    assert_int_equal(fp_count(fp, "zone/ack"), 1); /* acks pass the closed gate */
    fp_inject(d, "system/heartbeat/ack", "{\"status\":\"pending_approval\",\"handover_epoch\":1}");
    assert_true(d->registered); /* any contract-valid ACK opens the gate */
    fp_advance(fp, d, 100);
    assert_true(fp_count(fp, "/data") >= 3); /* held data replayed in order */
    assert_int_equal(d->outbox.count, 0);
}

static void test_RegistrationGate_ShouldClose_WhenDisconnected(void **state) {
    FX;
    fp_register(fp, d);
    assert_true(d->registered);
    kaiser_on_disconnected(d);
    assert_false(d->registered);
    kaiser_on_connected(d);
    assert_false(d->registered);
    assert_string_equal(fp_field(fp, "session/announce", "reason"), "reconnect");
}

static void test_HeartbeatAck_ShouldBeRejected_WhenContractInvalid(void **state) {
    FX;
    fp_connect(fp, d);
    fp_inject(d, "system/heartbeat/ack", "{\"handover_epoch\":1}");
    assert_string_equal(d->handover_last_reject, "MISSING_ACK_STATUS");
    fp_inject(d, "system/heartbeat/ack", "{\"status\":\"online\"}");
    assert_string_equal(d->handover_last_reject, "MISSING_HANDOVER_EPOCH");
    fp_inject(d, "system/heartbeat/ack", "{\"status\":\"online\",\"handover_epoch\":\"1\"}");
    assert_string_equal(d->handover_last_reject, "INVALID_HANDOVER_EPOCH_TYPE");
    fp_inject(d, "system/heartbeat/ack", "{\"status\":\"online\",\"handover_epoch\":0}");
    assert_string_equal(d->handover_last_reject, "INVALID_HANDOVER_EPOCH");
    fp_inject(d, "system/heartbeat/ack", "{\"status\":\"bogus\",\"handover_epoch\":1}");
    assert_string_equal(d->handover_last_reject, "UNKNOWN_ACK_STATUS");
    fp_inject(d, "system/heartbeat/ack", "not json");
    assert_false(d->registered);
    assert_int_equal(d->handover_reject_count, 5);
}

static void test_HeartbeatAck_ShouldDriveApprovalState_ForEachStatus(void **state) {
    FX;
    fp_connect(fp, d);
    assert_int_equal(d->state, KAISER_STATE_PENDING_APPROVAL);
    fp_inject(d, "system/heartbeat/ack", "{\"status\":\"online\",\"handover_epoch\":1}");
    assert_int_equal(d->state, KAISER_STATE_OPERATIONAL);
    assert_string_equal(fp_kv(fp, "dev_appr"), "1");
    fp_inject(d, "system/heartbeat/ack", "{\"status\":\"pending_approval\",\"handover_epoch\":1}");
    assert_int_equal(d->state, KAISER_STATE_PENDING_APPROVAL);
    assert_string_equal(fp_kv(fp, "dev_appr"), "0");
    fp_inject(d, "system/heartbeat/ack", "{\"status\":\"rejected\",\"handover_epoch\":1}");
    assert_int_equal(d->state, KAISER_STATE_ERROR);
    assert_string_equal(fp_field(fp, "system/error", "error_code"), "4200");
    fp_inject(d, "system/heartbeat/ack", "{\"status\":\"error\",\"handover_epoch\":1}");
    assert_int_equal(d->state, KAISER_STATE_ERROR);
    fp_inject(d, "system/heartbeat/ack", "{\"status\":\"online\",\"handover_epoch\":1}");
    assert_int_equal(d->state, KAISER_STATE_OPERATIONAL);
}

static void test_HeartbeatAck_ShouldAdoptServerTime_WhenDeviceHasNoClock(void **state) {
    FX;
    fp->wall = 0;
    fp_connect(fp, d);
    assert_string_equal(fp_field(fp, "system/heartbeat", "time_valid"), "false");
    fp_inject(d, "system/heartbeat/ack", "{\"status\":\"online\",\"handover_epoch\":1,\"server_time\":1735818000}");
    assert_true(kaiser_ts(d) >= 1735818000);
}

static void test_Reconnect_ShouldBackOffWithJitter_WhenConnectFails(void **state) {
    FX;
    fp->rnd = 0;
    assert_true(kaiser_connect_due(d));
    kaiser_on_connect_failed(d);
    assert_false(kaiser_connect_due(d));
    fp_advance(fp, d, 1400);
    assert_false(kaiser_connect_due(d));
    fp_advance(fp, d, 700); /* 1500 + jitter(0 ^ '3') = 1551 */
    assert_true(kaiser_connect_due(d));
    kaiser_on_connect_failed(d);
    fp_advance(fp, d, 2900);
    assert_false(kaiser_connect_due(d));
    fp_advance(fp, d, 800);
    assert_true(kaiser_connect_due(d));
}

static void test_CircuitBreaker_ShouldBlockConnectsFor30s_After5Failures(void **state) {
    FX;
    for (int i = 0; i < 5; i++) kaiser_on_connect_failed(d);
    assert_int_equal(d->breaker.state, KAISER_CB_OPEN);
    fp_advance(fp, d, 29000);
    assert_false(kaiser_connect_due(d));
    fp_advance(fp, d, 1100);
    assert_true(kaiser_connect_due(d));
    assert_int_equal(d->breaker.state, KAISER_CB_HALF_OPEN);
    fp_connect(fp, d);
    assert_int_equal(d->breaker.state, KAISER_CB_CLOSED);
}

static void test_CircuitBreaker_ShouldBufferPublishes_WhenPublishKeepsFailing(void **state) {
    FX;
    fx_hardware(f);
    fp_register(fp, d);
    fp->publish_fail = true;
    for (int i = 0; i < 5; i++) cmd(d, 5, "{\"command\":\"OFF\"}");
    fp_advance(fp, d, 1000); /* the drain retries once per tick: 5 failures open the breaker */
    assert_int_equal(d->breaker.state, KAISER_CB_OPEN);
    size_t held = d->outbox.count;
    assert_true(held >= 5);
    fp->publish_fail = false;
    fp_clear_pubs(fp);
    fp_advance(fp, d, 10000);
    assert_int_equal(fp_count(fp, "actuator/5/response"), 0); /* still open */
    fp_advance(fp, d, 21000);
    assert_int_equal(fp_count(fp, "actuator/5/response"), 5); /* half-open, success closes, backlog drained */
    assert_int_equal(d->breaker.state, KAISER_CB_CLOSED);
}

static void test_OfflineBuffer_ShouldReplayCriticalAndDataInOrder_AfterReconnectAndAck(void **state) {
    FX;
    fx_hardware(f);
    fp_register(fp, d);
    kaiser_on_disconnected(d);
    fp_clear_pubs(fp);
    fp_advance(fp, d, 61000); /* two measurement rounds while offline */
    assert_int_equal(fp->npubs, 0);
    size_t held = d->outbox.count;
    assert_true(held >= 6);
    fp_connect(fp, d);
    assert_int_equal(fp_count(fp, "/data"), 0); /* gate closed until the ACK */
    fp_inject(d, "system/heartbeat/ack", "{\"status\":\"online\",\"handover_epoch\":1}");
    fp_advance(fp, d, 200);
    assert_int_equal(d->outbox.count, 0);
    /* seq strictly increasing across the replayed data */
    long last = 0;
    for (size_t i = 0; i < fp->npubs; i++) {
        if (strstr(fp->pubs[i].topic, "/data") == NULL) continue;
        long seq = strtol(strstr(fp->pubs[i].payload, "\"seq\":") + 6, NULL, 10);
        assert_true(seq > last);
        last = seq;
    }
    assert_true(fp_count(fp, "system/error") >= 1); /* 3014 connection lost, reported after reconnect */
}

static void test_OfflineBuffer_ShouldDropHeartbeats_WhenDisconnected(void **state) {
    FX;
    fp_register(fp, d);
    kaiser_on_disconnected(d);
    fp_advance(fp, d, 120000);
    for (size_t i = 0; i < d->outbox.count; i++) {
        const kaiser_msg_t *m = &d->outbox.items[(d->outbox.head + i) % KAISER_OUTBOX_CAP];
        assert_null(strstr(m->topic, "heartbeat"));
    }
}

static void test_ErrorReport_ShouldCarryCodeCategoryAndBeThrottled_PerCodePer60s(void **state) {
    FX;
    fp_register(fp, d);
    fp_clear_pubs(fp);
    kaiser_report_error(d, 1040, 2, "Sensor read failed");
    kaiser_report_error(d, 1040, 2, "Sensor read failed");
    kaiser_report_error(d, 2003, 2, "NVS write failed");
    kaiser_report_error(d, 3012, 2, "publish failed");
    kaiser_report_error(d, 4062, 2, "queue full");
    assert_int_equal(fp_count(fp, "system/error"), 4);
    const fp_pub_t *p = fp_last(fp, "system/error");
    assert_int_equal(p->qos, 1);
    assert_string_equal(fp_field(fp, "system/error", "category"), "APPLICATION");
    fp_advance(fp, d, 60000);
    kaiser_report_error(d, 1040, 2, "Sensor read failed");
    assert_int_equal(fp_count(fp, "system/error"), 5);
    assert_string_equal(fp_field(fp, "system/error", "category"), "HARDWARE");
}

/* argv[1], when given, runs only the cmocka test of that name (one ctest per behaviour). */
int main(int argc, char **argv) {
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_Boot_ShouldDriveActuatorsToDefaultStateAndCountBoots_WhenConfigPersisted, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_BootLoop_ShouldEnterSafeMode_AfterSixShortBoots_AndExitOnCommand, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_BootLoop_ShouldResetShortBootCounter_AfterStableUptime, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_Connect_ShouldAnnounceSessionAndSubscribe12Topics_WhenConnected, fx_setup, fx_teardown),
        cmocka_unit_test(test_Connect_ShouldUseConfiguredKaiserId_ForAnnounceAndSubscriptions),
        cmocka_unit_test_setup_teardown(test_Will_ShouldBeRetainedQos1OfflinePayload_WhenBuilt, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_Heartbeat_ShouldWaitForSubacks_WhenBootstrapping, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_Heartbeat_ShouldRepeatEvery5s_WhileGateClosed_And60sAfterAck, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_RegistrationGate_ShouldHoldDataButPassAcks_WhenNoValidAck, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_RegistrationGate_ShouldClose_WhenDisconnected, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_HeartbeatAck_ShouldBeRejected_WhenContractInvalid, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_HeartbeatAck_ShouldDriveApprovalState_ForEachStatus, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_HeartbeatAck_ShouldAdoptServerTime_WhenDeviceHasNoClock, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_Reconnect_ShouldBackOffWithJitter_WhenConnectFails, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_CircuitBreaker_ShouldBlockConnectsFor30s_After5Failures, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_CircuitBreaker_ShouldBufferPublishes_WhenPublishKeepsFailing, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_OfflineBuffer_ShouldReplayCriticalAndDataInOrder_AfterReconnectAndAck, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_OfflineBuffer_ShouldDropHeartbeats_WhenDisconnected, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_ErrorReport_ShouldCarryCodeCategoryAndBeThrottled_PerCodePer60s, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
