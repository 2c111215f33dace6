/* Actuator commands and safety: value range, max runtime with latch, duration, emergency latch and
 * the 5 s clear hold-off, TOGGLE, command dedupe by correlation_id, admission. */
#include "test_common.h"

static int setup(void **state) {
    if (fx_setup(state) != 0) return -1;
    fixture_t *f = *state;
    fx_hardware(f);
    fp_register(&f->fp, &f->dev);
    fp_advance(&f->fp, &f->dev, 100); /* drain what the closed gate held */
    fp_clear_pubs(&f->fp);
    return 0;
}

static void test_ActuatorCommand_ShouldSwitchOnAndAnswerWithCorrelationId_WhenOn(void **state) {
    FX;
    cmd(d, 5, "{\"command\":\"ON\",\"value\":1.0,\"issued_by\":\"user:robin\",\"correlation_id\":\"c-1\",\"intent_id\":\"c-1\"}");
    assert_true(fp->gpio[5]);
    assert_string_equal(fp_field(fp, "actuator/5/response", "success"), "true");
    assert_string_equal(fp_field(fp, "actuator/5/response", "correlation_id"), "c-1");
    assert_string_equal(fp_field(fp, "actuator/5/response", "issued_by"), "user:robin");
    assert_string_equal(fp_field(fp, "actuator/5/status", "state"), "true");
    assert_string_equal(fp_field(fp, "system/intent_outcome", "outcome"), "applied");
    assert_int_equal(fp_last(fp, "actuator/5/response")->qos, 1);
}

static void test_ActuatorCommand_ShouldRejectPwmValue_WhenOutOfRange(void **state) {
    FX;
    cmd(d, 18, "{\"command\":\"PWM\",\"value\":1.5,\"correlation_id\":\"c-2\"}");
    assert_string_equal(fp_field(fp, "actuator/18/response", "success"), "false");
    assert_string_equal(fp_field(fp, "actuator/18/response", "message"), "Value out of range (0.0-1.0)");
    assert_int_equal(fp->pwm[18], 0);
    cmd(d, 18, "{\"command\":\"PWM\",\"value\":-0.1,\"correlation_id\":\"c-3\"}");
    assert_string_equal(fp_field(fp, "actuator/18/response", "success"), "false");
    cmd(d, 18, "{\"command\":\"PWM\",\"correlation_id\":\"c-3b\"}");
    assert_string_equal(fp_field(fp, "actuator/18/response", "success"), "false");
    cmd(d, 18, "{\"command\":\"PWM\",\"value\":0.5,\"correlation_id\":\"c-4\"}");
    assert_string_equal(fp_field(fp, "actuator/18/response", "success"), "true");
    assert_int_equal(fp->pwm[18], 128);
    assert_string_equal(fp_field(fp, "actuator/18/status", "pwm"), "128");
}

static void test_ActuatorCommand_ShouldFail_WhenGpioUnknownOrCommandUnknown(void **state) {
    FX;
    cmd(d, 7, "{\"command\":\"ON\",\"correlation_id\":\"c-5\"}");
    assert_string_equal(fp_field(fp, "actuator/7/response", "message"), "Actuator not configured on GPIO 7. Configure via API first.");
    cmd(d, 5, "{\"command\":\"STOP\",\"correlation_id\":\"c-6\"}");
    assert_string_equal(fp_field(fp, "actuator/5/response", "message"), "Unknown command: STOP");
    assert_string_equal(fp_field(fp, "system/intent_outcome", "outcome"), "failed");
}

static void test_ActuatorCommand_ShouldBeNoOpSuccess_WhenAlreadyInState(void **state) {
    FX;
    cmd(d, 5, "{\"command\":\"ON\",\"correlation_id\":\"a\"}");
    int writes = fp->gpio_writes;
    cmd(d, 5, "{\"command\":\"ON\",\"correlation_id\":\"b\"}");
    assert_int_equal(fp->gpio_writes, writes); /* no hardware re-trigger */
    assert_string_equal(fp_field(fp, "actuator/5/response", "success"), "true");
    assert_int_equal(fp_count(fp, "actuator/5/status"), 2);
}

static void test_CommandDedupe_ShouldRunCommandOnce_WhenCorrelationIdRepeats(void **state) {
    FX;
    cmd(d, 5, "{\"command\":\"TOGGLE\",\"correlation_id\":\"t-1\"}");
    assert_true(fp->gpio[5]);
    cmd(d, 5, "{\"command\":\"TOGGLE\",\"correlation_id\":\"t-1\"}"); /* QoS redelivery */
    assert_true(fp->gpio[5]);
    assert_int_equal(d->stats.duplicates_ignored, 1);
    assert_string_equal(fp_field(fp, "actuator/5/response", "message"), "Duplicate command ignored (already executed)");
    assert_string_equal(fp_field(fp, "actuator/5/response", "success"), "true");
}

static void test_CommandDedupe_ShouldSurviveReconnect_WhenSameIdArrivesAgain(void **state) {
    FX;
    cmd(d, 18, "{\"command\":\"TOGGLE\",\"correlation_id\":\"t-2\"}");
    assert_int_equal(fp->pwm[18], 255);
    kaiser_on_disconnected(d); /* no rules: the fan goes to its default (off) at once */
    assert_int_equal(fp->pwm[18], 0);
    fp_register(fp, d);
    cmd(d, 18, "{\"command\":\"TOGGLE\",\"correlation_id\":\"t-2\"}"); /* redelivered after the reconnect */
    assert_int_equal(fp->pwm[18], 0);
    assert_int_equal(d->stats.duplicates_ignored, 1);
}

static void test_Toggle_ShouldReturnToOriginalState_WhenToggledTwice(void **state) {
    FX;
    cmd(d, 5, "{\"command\":\"TOGGLE\",\"correlation_id\":\"t-a\"}");
    assert_true(fp->gpio[5]);
    cmd(d, 5, "{\"command\":\"TOGGLE\",\"correlation_id\":\"t-b\"}");
    assert_false(fp->gpio[5]);
}

static void test_Toggle_ShouldBeRefused_WhenNoCorrelationId(void **state) {
    FX;
    cmd(d, 5, "{\"command\":\"TOGGLE\"}");
    assert_false(fp->gpio[5]);
    assert_string_equal(fp_field(fp, "actuator/5/response", "message"), "TOGGLE requires correlation_id");
}

static void test_PumpProtection_ShouldRefuseOn_After60ActivationsPerHour(void **state) {
    FX;
    char json[96];
    for (int i = 0; i < 60; i++) {
        snprintf(json, sizeof json, "{\"command\":\"ON\",\"correlation_id\":\"p-on-%d\"}", i);
        cmd(d, 5, json);
        assert_true(fp->gpio[5]);
        snprintf(json, sizeof json, "{\"command\":\"OFF\",\"correlation_id\":\"p-off-%d\"}", i);
        cmd(d, 5, json);
        fp_advance(fp, d, 1000);
    }
    cmd(d, 5, "{\"command\":\"ON\",\"correlation_id\":\"p-61\"}");
    assert_false(fp->gpio[5]);
    assert_string_equal(fp_field(fp, "actuator/5/response", "message"), "Pump protection: activation limit reached (60 per hour)");
    fp_advance(fp, d, 3600000 - 60000 + 1000); /* the first activation leaves the rolling hour */
    cmd(d, 5, "{\"command\":\"ON\",\"correlation_id\":\"p-62\"}");
    assert_true(fp->gpio[5]);
    /* PWM actuators are not pumps: no activation limit */
    for (int i = 0; i < 70; i++) {
        snprintf(json, sizeof json, "{\"command\":\"TOGGLE\",\"correlation_id\":\"f-%d\"}", i);
        cmd(d, 18, json);
    }
    assert_int_equal(fp->pwm[18], 0);
}

static void test_MaxRuntime_ShouldStopAndLatch_WhenOnTooLong(void **state) {
    FX;
    fp_inject(d, "config", "{\"correlation_id\":\"cfg\",\"actuators\":[{\"gpio\":5,\"actuator_type\":\"pump\",\"actuator_name\":\"P\",\"max_runtime_ms\":5000}]}");
    cmd(d, 5, "{\"command\":\"ON\",\"correlation_id\":\"m-1\"}");
    fp_advance(fp, d, 4900);
    assert_true(fp->gpio[5]);
    fp_advance(fp, d, 200);
    assert_false(fp->gpio[5]);
    assert_string_equal(fp_field(fp, "actuator/5/alert", "alert_type"), "runtime_protection");
    assert_string_equal(fp_field(fp, "actuator/5/status", "emergency"), "active");
    cmd(d, 5, "{\"command\":\"ON\",\"correlation_id\":\"m-2\"}"); /* latched */
    assert_false(fp->gpio[5]);
    assert_string_equal(fp_field(fp, "actuator/5/response", "success"), "false");
    fp_inject(d, "actuator/emergency", "{\"command\":\"clear_emergency\",\"correlation_id\":\"clr\"}");
    cmd(d, 5, "{\"command\":\"ON\",\"correlation_id\":\"m-3\"}");
    assert_true(fp->gpio[5]);
}

static void test_Duration_ShouldAutoOff_WithAutoDurationSource(void **state) {
    FX;
    cmd(d, 5, "{\"command\":\"ON\",\"duration\":2,\"correlation_id\":\"d-1\"}");
    fp_advance(fp, d, 1900);
    assert_true(fp->gpio[5]);
    fp_advance(fp, d, 200);
    assert_false(fp->gpio[5]);
    assert_string_equal(fp_field(fp, "actuator/5/status", "command_source"), "firmware:auto_duration");
    assert_false(d->actuators[0].latched);
}

static void test_EmergencyStop_ShouldLatchAllAndAck_WhenEspEmergency(void **state) {
    FX;
    cmd(d, 5, "{\"command\":\"ON\",\"correlation_id\":\"e-0\"}");
    fp_inject(d, "actuator/emergency", "{\"command\":\"emergency_stop\",\"reason\":\"test\",\"correlation_id\":\"e-1\"}");
    assert_false(fp->gpio[5]);
    assert_string_equal(fp_field(fp, "actuator/emergency/ack", "correlation_id"), "e-1");
    assert_string_equal(fp_field(fp, "actuator/emergency/ack", "gpio_count"), "2");
    cmd(d, 5, "{\"command\":\"ON\",\"correlation_id\":\"e-2\"}");
    assert_false(fp->gpio[5]);
    assert_string_equal(fp_field(fp, "actuator/5/response", "message"), "Actuator in emergency stop state. Clear emergency first.");
    /* OFF is always allowed: the server's per-actuator OFF after a stop succeeds */
    cmd(d, 5, "{\"command\":\"OFF\",\"correlation_id\":\"e-3\"}");
    assert_string_equal(fp_field(fp, "actuator/5/response", "success"), "true");
}

static void test_EmergencyClear_ShouldBeRejected_Within5s_AndAcceptedAfter(void **state) {
    FX;
    fp_inject(d, "actuator/emergency", "{\"command\":\"emergency_stop\",\"correlation_id\":\"e-1\"}");
    fp_advance(fp, d, 4000);
    fp_inject(d, "actuator/emergency", "{\"command\":\"clear_emergency\",\"correlation_id\":\"c-1\"}");
    assert_string_equal(fp_field(fp, "actuator/recovery_confirm", "state"), "rejected");
    assert_true(d->emergency);
    fp_advance(fp, d, 1100);
    fp_inject(d, "actuator/emergency", "{\"command\":\"clear_emergency\",\"correlation_id\":\"c-1\"}");
    assert_string_equal(fp_field(fp, "actuator/recovery_confirm", "state"), "cleared");
    assert_false(d->emergency);
    assert_false(fp->gpio[5]); /* actuators stay OFF until re-commanded */
}

static void test_BroadcastEmergency_ShouldStopAll_WhenValidAndFailSafe_WhenCritical(void **state) {
    FX;
    cmd(d, 5, "{\"command\":\"ON\",\"correlation_id\":\"b-0\"}");
    fp_inject(d, "kaiser/broadcast/emergency", "{\"command\":\"pause_all\"}");
    assert_true(fp->gpio[5]); /* unsupported: no stop */
    fp_inject(d, "kaiser/broadcast/emergency", "{\"reason\":\"x\"}");
    assert_true(fp->gpio[5]); /* malformed: no stop */
    fp_inject(d, "kaiser/broadcast/emergency", "{\"command\":123}");
    assert_false(fp->gpio[5]); /* critical_unknown: fail-safe stop */
    assert_true(d->emergency);
    fp_advance(fp, d, 6000);
    fp_inject(d, "actuator/emergency", "{\"command\":\"clear_emergency\",\"correlation_id\":\"c\"}");
    cmd(d, 5, "{\"command\":\"ON\",\"correlation_id\":\"b-1\"}");
    fp_inject(d, "kaiser/broadcast/emergency", "{\"command\":\"stop_all\",\"reason\":\"fire\",\"issued_by\":\"op\"}");
    assert_false(fp->gpio[5]);
    assert_string_equal(fp_field(fp, "system/intent_outcome", "code"), "BROADCAST_EMERGENCY_STOP_TRIGGERED");
}

static void test_Admission_ShouldRejectActuatorCommand_WhenPendingApproval(void **state) {
    FX;
    fp_inject(d, "system/heartbeat/ack", "{\"status\":\"pending_approval\",\"handover_epoch\":1}");
    cmd(d, 5, "{\"command\":\"ON\",\"correlation_id\":\"p-1\"}");
    assert_false(fp->gpio[5]);
    assert_string_equal(fp_field(fp, "actuator/5/response", "message"), "Rejected before execution (reason_code=PENDING_APPROVAL_BLOCKED)");
    assert_string_equal(fp_field(fp, "system/intent_outcome/lifecycle", "stage"), "admission_reject");
    /* a rejected id is not remembered: once approved, the retry runs */
    fp_inject(d, "system/heartbeat/ack", "{\"status\":\"online\",\"handover_epoch\":1}");
    cmd(d, 5, "{\"command\":\"ON\",\"correlation_id\":\"p-1\"}");
    assert_true(fp->gpio[5]);
}

static void test_Admission_ShouldRejectCommands_WhenNotRegistered(void **state) {
    FX;
    kaiser_on_disconnected(d);
    fp_connect(fp, d);
    cmd(d, 5, "{\"command\":\"ON\",\"correlation_id\":\"r-1\"}");
    assert_false(fp->gpio[5]);
    assert_string_equal(fp_field(fp, "actuator/5/response", "message"), "Rejected before execution (reason_code=REGISTRATION_PENDING)");
}

static void test_ActuatorCommand_ShouldExpire_WhenTtlElapsed(void **state) {
    FX;
    cmd(d, 5, "{\"command\":\"ON\",\"correlation_id\":\"x-1\",\"ttl_ms\":30000,\"created_at_ms\":1735000000000}");
    assert_false(fp->gpio[5]);
    assert_string_equal(fp_field(fp, "system/intent_outcome", "outcome"), "expired");
}

/* argv[1], when given, runs only the cmocka test of that name (one ctest per behaviour). */
int main(int argc, char **argv) {
    if (argc > 1) cmocka_set_test_filter(argv[1]);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(test_ActuatorCommand_ShouldSwitchOnAndAnswerWithCorrelationId_WhenOn),
        T(test_ActuatorCommand_ShouldRejectPwmValue_WhenOutOfRange),
        T(test_ActuatorCommand_ShouldFail_WhenGpioUnknownOrCommandUnknown),
        T(test_ActuatorCommand_ShouldBeNoOpSuccess_WhenAlreadyInState),
        T(test_CommandDedupe_ShouldRunCommandOnce_WhenCorrelationIdRepeats),
        T(test_CommandDedupe_ShouldSurviveReconnect_WhenSameIdArrivesAgain),
        T(test_Toggle_ShouldReturnToOriginalState_WhenToggledTwice),
        T(test_Toggle_ShouldBeRefused_WhenNoCorrelationId),
        T(test_MaxRuntime_ShouldStopAndLatch_WhenOnTooLong),
        T(test_PumpProtection_ShouldRefuseOn_After60ActivationsPerHour),
        T(test_Duration_ShouldAutoOff_WithAutoDurationSource),
        T(test_EmergencyStop_ShouldLatchAllAndAck_WhenEspEmergency),
        T(test_EmergencyClear_ShouldBeRejected_Within5s_AndAcceptedAfter),
        T(test_BroadcastEmergency_ShouldStopAll_WhenValidAndFailSafe_WhenCritical),
        T(test_Admission_ShouldRejectActuatorCommand_WhenPendingApproval),
        T(test_Admission_ShouldRejectCommands_WhenNotRegistered),
        T(test_ActuatorCommand_ShouldExpire_WhenTtlElapsed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
