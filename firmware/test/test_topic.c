/* Topic builder: buffer safety, validation and agreement with contract/topics.yaml. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kaiser_topic.h"

static void test_TopicBuilder_ShouldBuildSensorDataTopic_WhenIdsAreValid(void **state) {
    (void)state;
    char buf[KAISER_TOPIC_MAX];
    assert_int_equal(kaiser_topic_build(buf, sizeof buf, KT_SENSOR_DATA, "god", "ESP_A1B2C3", 4), KAISER_TOPIC_OK);
    assert_string_equal(buf, "kaiser/god/esp/ESP_A1B2C3/sensor/4/data");
    assert_int_equal(kaiser_topic_build(buf, sizeof buf, KT_BROADCAST_EMERGENCY, "god", "ESP_A1B2C3", 0), KAISER_TOPIC_OK);
    assert_string_equal(buf, "kaiser/broadcast/emergency");
}

static void test_TopicBuilder_ShouldUseConfiguredKaiserId_WhenNotGod(void **state) {
    (void)state;
    char buf[KAISER_TOPIC_MAX];
    assert_int_equal(kaiser_topic_build(buf, sizeof buf, KT_SENSOR_DATA, "custom_kaiser", "custom_esp", 10), KAISER_TOPIC_OK);
    assert_string_equal(buf, "kaiser/custom_kaiser/esp/custom_esp/sensor/10/data");
    assert_int_equal(kaiser_topic_build(buf, sizeof buf, KT_SESSION_ANNOUNCE, "k2", "ESP_1", 0), KAISER_TOPIC_OK);
    assert_string_equal(buf, "kaiser/k2/esp/ESP_1/session/announce");
    assert_int_equal(kaiser_topic_build(buf, sizeof buf, KT_SERVER_STATUS, "k2", "ESP_1", 0), KAISER_TOPIC_OK);
    assert_string_equal(buf, "kaiser/k2/server/status");
}

static void test_TopicBuilder_ShouldReturnTruncated_WhenBufferTooSmall(void **state) {
    (void)state;
    char buf[30];
    memset(buf, 'x', sizeof buf);
    assert_int_equal(kaiser_topic_build(buf, sizeof buf, KT_SENSOR_DATA, "god", "ESP_A1B2C3", 4), KAISER_TOPIC_ERR_TRUNCATED);
    assert_string_equal(buf, ""); /* never a half-built topic */
    char exact[sizeof "kaiser/god/esp/ESP_A1B2C3/sensor/4/data"];
    assert_int_equal(kaiser_topic_build(exact, sizeof exact, KT_SENSOR_DATA, "god", "ESP_A1B2C3", 4), KAISER_TOPIC_OK);
    assert_int_equal(kaiser_topic_build(exact, sizeof exact - 1, KT_SENSOR_DATA, "god", "ESP_A1B2C3", 4),
                     KAISER_TOPIC_ERR_TRUNCATED);
}

static void test_TopicBuilder_ShouldRejectInvalidIds_WhenCharsOrLengthBad(void **state) {
    (void)state;
    char buf[KAISER_TOPIC_MAX];
    assert_int_equal(kaiser_topic_build(buf, sizeof buf, KT_HEARTBEAT, "god", "ESP/1", 0), KAISER_TOPIC_ERR_INVALID);
    assert_int_equal(kaiser_topic_build(buf, sizeof buf, KT_HEARTBEAT, "god", "", 0), KAISER_TOPIC_ERR_INVALID);
    assert_int_equal(kaiser_topic_build(buf, sizeof buf, KT_HEARTBEAT, "g+d", "ESP_1", 0), KAISER_TOPIC_ERR_INVALID);
    assert_int_equal(kaiser_topic_build(buf, sizeof buf, KT_HEARTBEAT, "god", "A23456789012345678901234567890123", 0),
                     KAISER_TOPIC_ERR_INVALID);
    assert_true(kaiser_esp_id_valid("A2345678901234567890123456789012"));
    assert_int_equal(kaiser_topic_build(buf, sizeof buf, KT_ACTUATOR_COMMAND, "god", "ESP_1", 49), KAISER_TOPIC_ERR_INVALID);
    assert_int_equal(kaiser_topic_build(buf, sizeof buf, KT_ACTUATOR_COMMAND, "god", "ESP_1", -1), KAISER_TOPIC_OK);
    assert_string_equal(buf, "kaiser/god/esp/ESP_1/actuator/+/command");
}

static void test_TopicParser_ShouldClassifyInboundTopics_WhenTheyAreOurs(void **state) {
    (void)state;
    int gpio;
    assert_int_equal(kaiser_topic_parse("kaiser/god/esp/ESP_1/actuator/25/command", "god", "ESP_1", &gpio), KT_ACTUATOR_COMMAND);
    assert_int_equal(gpio, 25);
    assert_int_equal(kaiser_topic_parse("kaiser/god/esp/ESP_1/actuator/emergency", "god", "ESP_1", &gpio), KT_ACTUATOR_EMERGENCY);
    assert_int_equal(kaiser_topic_parse("kaiser/god/esp/ESP_1/system/heartbeat/ack", "god", "ESP_1", &gpio), KT_HEARTBEAT_ACK);
    assert_int_equal(kaiser_topic_parse("kaiser/broadcast/emergency", "god", "ESP_1", &gpio), KT_BROADCAST_EMERGENCY);
    assert_int_equal(kaiser_topic_parse("kaiser/god/esp/ESP_2/system/command", "god", "ESP_1", &gpio), KT_UNKNOWN);
    assert_int_equal(kaiser_topic_parse("kaiser/other/esp/ESP_1/system/command", "god", "ESP_1", &gpio), KT_UNKNOWN);
    assert_int_equal(kaiser_topic_parse("kaiser/god/esp/ESP_1/actuator/49/command", "god", "ESP_1", &gpio), KT_UNKNOWN);
    assert_int_equal(kaiser_topic_parse("kaiser/god/esp/ESP_1/actuator/x/command", "god", "ESP_1", &gpio), KT_UNKNOWN);
}

/* Every row of contract/topics.yaml must match the builder's pattern, QoS and retain flag, and
 * every builder kind must appear in the table: a topic cannot drift between server and firmware. */
static void test_TopicTable_ShouldMatchContractTopicsYaml_WhenComparedRowByRow(void **state) {
    (void)state;
    FILE *f = fopen(KAISER_TOPICS_YAML, "r");
    assert_non_null(f);
    char line[512];
    int rows = 0;
    bool seen[KT__COUNT] = {false};
    while (fgets(line, sizeof line, f)) {
        char *p = strstr(line, "pattern: \"");
        if (strstr(line, "property:") == NULL) continue;
        if (p == NULL) continue;
        p += strlen("pattern: \"");
        char *e = strchr(p, '"');
        *e = '\0';
        const char *pattern = p;
        char *dir = strstr(e + 1, "direction: ");
        char *q = strstr(e + 1, "qos: ");
        char *r = strstr(e + 1, "retained: ");
        assert_non_null(dir);
        assert_non_null(q);
        assert_non_null(r);
        int qos = atoi(q + 5);
        int retained = strncmp(r + 10, "true", 4) == 0;
        bool to_device = strncmp(dir + 11, "server-to-device", 16) == 0;
        int found = 0;
        for (int k = 1; k < KT__COUNT; k++) {
            if (strcmp(kaiser_topic_pattern((kaiser_topic_kind_t)k), pattern) != 0) continue;
            /* system/will appears twice (device LWT and the server's retained clear) */
            bool kind_to_device = k >= KT_HEARTBEAT_ACK && k < KT_BROADCAST_EMERGENCY;
            if (k == KT_WILL && to_device) { found = 1; break; }
            if (k != KT_BROADCAST_EMERGENCY && k != KT_SERVER_STATUS && kind_to_device != to_device) continue;
            assert_int_equal(kaiser_topic_qos((kaiser_topic_kind_t)k), qos);
            assert_int_equal(kaiser_topic_retained((kaiser_topic_kind_t)k), retained);
            seen[k] = true;
            found = 1;
        }
        if (!found) fail_msg("topics.yaml pattern %s has no firmware kind", pattern);
        rows++;
    }
    fclose(f);
    assert_true(rows >= 30);
    for (int k = 1; k < KT__COUNT; k++)
        if (!seen[k]) fail_msg("firmware kind %s is not in topics.yaml", kaiser_topic_pattern((kaiser_topic_kind_t)k));
}

/* argv[1], when given, runs only the cmocka test of that name (one ctest per behaviour). */
int main(int argc, char **argv) {
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_TopicBuilder_ShouldBuildSensorDataTopic_WhenIdsAreValid),
        cmocka_unit_test(test_TopicBuilder_ShouldUseConfiguredKaiserId_WhenNotGod),
        cmocka_unit_test(test_TopicBuilder_ShouldReturnTruncated_WhenBufferTooSmall),
        cmocka_unit_test(test_TopicBuilder_ShouldRejectInvalidIds_WhenCharsOrLengthBad),
        cmocka_unit_test(test_TopicParser_ShouldClassifyInboundTopics_WhenTheyAreOurs),
        cmocka_unit_test(test_TopicTable_ShouldMatchContractTopicsYaml_WhenComparedRowByRow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
