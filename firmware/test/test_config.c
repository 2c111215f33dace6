/* Config apply: generations, config_response (success, partial_success, error with failures),
 * correlation and size checks, dedupe, persistence across a reboot. */
#include "test_common.h"

static int setup(void **state) {
    if (fx_setup(state) != 0) return -1;
    fixture_t *f = *state;
    fp_register(&f->fp, &f->dev);
    fp_advance(&f->fp, &f->dev, 100);
    fp_clear_pubs(&f->fp);
    return 0;
}

static void test_Config_ShouldRespondSuccess_WhenAllItemsValid(void **state) {
    FX;
    fp_inject(d, "config",
              "{\"correlation_id\":\"5f1c\",\"generation\":7,\"sensors\":[{\"gpio\":4,\"sensor_type\":\"temperature_ds18b20\","
              "\"sensor_name\":\"Soil\"}],\"actuators\":[{\"gpio\":5,\"actuator_type\":\"pump\",\"actuator_name\":\"P\"}]}");
    const fp_pub_t *p = fp_last(fp, "config_response");
    assert_non_null(p);
    assert_int_equal(p->qos, 2);
    assert_string_equal(fp_field(fp, "config_response", "status"), "success");
    assert_string_equal(fp_field(fp, "config_response", "count"), "2");
    assert_string_equal(fp_field(fp, "config_response", "correlation_id"), "5f1c");
    assert_string_equal(d->sensors[0].sensor_type, "ds18b20");
    assert_int_equal(d->applied_gen, 7);
    assert_string_equal(fp_field(fp, "system/intent_outcome", "outcome"), "persisted");
}

static void test_Config_ShouldRespondPartialSuccess_WithFailures_WhenSomeItemsInvalid(void **state) {
    FX;
    fp_inject(d, "config",
              "{\"correlation_id\":\"c2\",\"sensors\":[{\"gpio\":4,\"sensor_type\":\"ds18b20\",\"sensor_name\":\"ok\"},"
              "{\"gpio\":32,\"sensor_type\":\"moisture\"}],"
              "\"actuators\":[{\"gpio\":4,\"actuator_type\":\"pump\",\"actuator_name\":\"clash\"},"
              "{\"gpio\":6,\"actuator_type\":\"laser\",\"actuator_name\":\"bad\"}]}");
    assert_string_equal(fp_field(fp, "config_response", "status"), "partial_success");
    assert_string_equal(fp_field(fp, "config_response", "failed_count"), "3");
    const char *failures = fp_field(fp, "config_response", "failures");
    assert_non_null(strstr(failures, "\"error\":\"MISSING_FIELD\""));
    assert_non_null(strstr(failures, "\"error_code\":2011"));
    assert_non_null(strstr(failures, "\"error\":\"GPIO_CONFLICT\""));
    assert_non_null(strstr(failures, "\"error_code\":1002"));
    assert_non_null(strstr(failures, "\"error\":\"VALIDATION_FAILED\""));
    assert_string_equal(fp_field(fp, "system/intent_outcome", "code"), "COMMIT_FAILED");
}

static void test_Config_ShouldRespondError_WhenNoItemSucceeds(void **state) {
    FX;
    fp_inject(d, "config", "{\"correlation_id\":\"c3\",\"actuators\":[{\"gpio\":\"5\",\"actuator_type\":\"pump\"}]}");
    assert_string_equal(fp_field(fp, "config_response", "status"), "error");
    assert_string_equal(fp_field(fp, "config_response", "type"), "actuator");
    assert_non_null(strstr(fp_field(fp, "config_response", "failures"), "TYPE_MISMATCH"));
}

static void test_Config_ShouldRejectWithoutApplying_WhenCorrelationIdMissing(void **state) {
    FX;
    fp_inject(d, "config", "{\"actuators\":[{\"gpio\":5,\"actuator_type\":\"pump\",\"actuator_name\":\"P\"}]}");
    assert_string_equal(fp_field(fp, "config_response", "error_code"), "CONTRACT_MISSING_CORRELATION");
    assert_null(kaiser_find_actuator(d, 5));
}

static void test_Config_ShouldRespondJsonParseError_WhenPayloadInvalid(void **state) {
    FX;
    fp_inject(d, "config", "{not json");
    assert_string_equal(fp_field(fp, "config_response", "status"), "error");
    assert_string_equal(fp_field(fp, "config_response", "error_code"), "JSON_PARSE_ERROR");
}

static void test_Config_ShouldRejectPayloadTooLarge_WhenOver4352Bytes(void **state) {
    FX;
    size_t n = 5000;
    char *big = malloc(n + 1);
    int off = snprintf(big, n, "{\"correlation_id\":\"big\",\"pad\":\"");
    memset(big + off, 'x', n - (size_t)off - 3);
    memcpy(big + n - 3, "\"}", 3);
    fp_inject(d, "config", big);
    free(big);
    assert_string_equal(fp_field(fp, "config_response", "error_code"), "PAYLOAD_TOO_LARGE");
    assert_string_equal(fp_field(fp, "config_response", "correlation_id"), "big");
}

static void test_ConfigGeneration_ShouldRejectStaleScope_AndApplyNewerPartialPush(void **state) {
    FX;
    const char *g7 = "{\"correlation_id\":\"g7\",\"generation\":7,\"sensors\":[{\"gpio\":4,\"sensor_type\":\"ds18b20\",\"sensor_name\":\"s\"}],"
                     "\"actuators\":[{\"gpio\":5,\"actuator_type\":\"pump\",\"actuator_name\":\"P\"}]}";
    fp_inject(d, "config", g7);
    assert_string_equal(fp_field(fp, "config_response", "status"), "success");
    fp_inject(d, "config", "{\"correlation_id\":\"g7b\",\"generation\":7,\"sensors\":[]}");
    assert_string_equal(fp_field(fp, "config_response", "error_code"), "STALE_SCOPE");
    fp_inject(d, "config", "{\"correlation_id\":\"g8\",\"generation\":8,\"sensors\":[{\"gpio\":33,\"sensor_type\":\"ph\",\"sensor_name\":\"pH\"}]}");
    assert_string_equal(fp_field(fp, "config_response", "status"), "success");
    assert_non_null(kaiser_find_actuator(d, 5)); /* actuator scope unaffected */
    assert_int_equal(d->applied_gen_act, 7);
    assert_int_equal(d->applied_gen_sensor, 8);
}

static void test_Config_ShouldAnswerDuplicateWithoutReapplying_WhenSameCorrelationId(void **state) {
    FX;
    const char *c = "{\"correlation_id\":\"dup\",\"actuators\":[{\"gpio\":5,\"actuator_type\":\"pump\",\"actuator_name\":\"P\"}]}";
    fp_inject(d, "config", c);
    int writes = fp->gpio_writes;
    fp_inject(d, "config", c);
    assert_int_equal(fp->gpio_writes, writes);
    assert_string_equal(fp_field(fp, "config_response", "message"), "Duplicate config ignored (already applied)");
    assert_int_equal(fp_count(fp, "config_response"), 2);
}

static void test_Config_ShouldRemoveItem_WhenActiveFalse_AndKeepUnlisted(void **state) {
    FX;
    fx_hardware(f);
    fp_inject(d, "config", "{\"correlation_id\":\"rm\",\"actuators\":[{\"gpio\":5,\"actuator_type\":\"pump\",\"actuator_name\":\"P\",\"active\":false}]}");
    assert_null(kaiser_find_actuator(d, 5));
    assert_non_null(kaiser_find_actuator(d, 18));
}

static void test_Config_ShouldNotTouchGpio_WhenIdenticalActuatorRepushed(void **state) {
    FX;
    const char *c1 = "{\"correlation_id\":\"i1\",\"actuators\":[{\"gpio\":5,\"actuator_type\":\"pump\",\"actuator_name\":\"P\"}]}";
    const char *c2 = "{\"correlation_id\":\"i2\",\"actuators\":[{\"gpio\":5,\"actuator_type\":\"pump\",\"actuator_name\":\"P\"}]}";
    fp_inject(d, "config", c1);
    int writes = fp->gpio_writes;
    fp_inject(d, "config", c2);
    assert_int_equal(fp->gpio_writes, writes);
    assert_string_equal(fp_field(fp, "config_response", "status"), "success");
}

static void test_Config_ShouldSurviveReboot_WhenPersisted(void **state) {
    FX;
    fx_hardware(f);
    fp_inject(d, "zone/assign", "{\"zone_id\":\"gh_1\",\"master_zone_id\":\"gh\",\"kaiser_id\":\"god\",\"correlation_id\":\"z\"}");
    fp_inject(d, "subzone/assign", "{\"subzone_id\":\"bed_a\",\"parent_zone_id\":\"gh_1\",\"assigned_gpios\":[4,5],\"correlation_id\":\"s\"}");
    kaiser_device_t *d2 = calloc(1, sizeof *d2);
    kaiser_port_t p = fp_port(fp);
    assert_int_equal(kaiser_init(d2, &p, NULL, "ESP_A1B2C3", NULL), 0);
    assert_non_null(kaiser_find_actuator(d2, 5));
    assert_non_null(kaiser_find_actuator(d2, 18));
    assert_int_equal(d2->sensors[0].gpio, 4);
    assert_string_equal(d2->zone_id, "gh_1");
    assert_true(d2->subzones[0].used);
    assert_string_equal(d2->subzones[0].id, "bed_a");
    assert_int_equal(d2->subzones[0].gpio_count, 2);
    assert_int_equal(d2->subzones[0].gpios[1], 5);
    assert_true(d2->approved);
    assert_int_equal(d2->boot_count, 2);
    kaiser_deinit(d2);
    free(d2);
}

/* argv[1], when given, runs only the cmocka test of that name (one ctest per behaviour). */
int main(int argc, char **argv) {
    if (argc > 1) cmocka_set_test_filter(argv[1]);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(test_Config_ShouldRespondSuccess_WhenAllItemsValid),
        T(test_Config_ShouldRespondPartialSuccess_WithFailures_WhenSomeItemsInvalid),
        T(test_Config_ShouldRespondError_WhenNoItemSucceeds),
        T(test_Config_ShouldRejectWithoutApplying_WhenCorrelationIdMissing),
        T(test_Config_ShouldRespondJsonParseError_WhenPayloadInvalid),
        T(test_Config_ShouldRejectPayloadTooLarge_WhenOver4352Bytes),
        T(test_ConfigGeneration_ShouldRejectStaleScope_AndApplyNewerPartialPush),
        T(test_Config_ShouldAnswerDuplicateWithoutReapplying_WhenSameCorrelationId),
        T(test_Config_ShouldRemoveItem_WhenActiveFalse_AndKeepUnlisted),
        T(test_Config_ShouldNotTouchGpio_WhenIdenticalActuatorRepushed),
        T(test_Config_ShouldSurviveReboot_WhenPersisted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
