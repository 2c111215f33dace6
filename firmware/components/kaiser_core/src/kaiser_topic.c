/* Topic builder: every pattern below is copied from contract/topics.yaml (test_topics checks it). */
#include "kaiser_topic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *pattern;
    int qos;
    bool retained;
} topic_row_t;

static const topic_row_t ROWS[KT__COUNT] = {
    [KT_SENSOR_DATA] = {"kaiser/{kaiser_id}/esp/{esp_id}/sensor/{gpio}/data", 1, false},
    [KT_SENSOR_BATCH] = {"kaiser/{kaiser_id}/esp/{esp_id}/sensor/batch", 1, false},
    [KT_SENSOR_RESPONSE] = {"kaiser/{kaiser_id}/esp/{esp_id}/sensor/{gpio}/response", 1, false},
    [KT_ACTUATOR_STATUS] = {"kaiser/{kaiser_id}/esp/{esp_id}/actuator/{gpio}/status", 1, false},
    [KT_ACTUATOR_RESPONSE] = {"kaiser/{kaiser_id}/esp/{esp_id}/actuator/{gpio}/response", 1, false},
    [KT_ACTUATOR_ALERT] = {"kaiser/{kaiser_id}/esp/{esp_id}/actuator/{gpio}/alert", 1, false},
    [KT_EMERGENCY_ACK] = {"kaiser/{kaiser_id}/esp/{esp_id}/actuator/emergency/ack", 1, false},
    [KT_RECOVERY_CONFIRM] = {"kaiser/{kaiser_id}/esp/{esp_id}/actuator/recovery_confirm", 1, false},
    [KT_HEARTBEAT] = {"kaiser/{kaiser_id}/esp/{esp_id}/system/heartbeat", 0, false},
    [KT_HEARTBEAT_METRICS] = {"kaiser/{kaiser_id}/esp/{esp_id}/system/heartbeat_metrics", 0, false},
    [KT_SESSION_ANNOUNCE] = {"kaiser/{kaiser_id}/esp/{esp_id}/session/announce", 1, false},
    [KT_WILL] = {"kaiser/{kaiser_id}/esp/{esp_id}/system/will", 1, true},
    [KT_SYSTEM_ERROR] = {"kaiser/{kaiser_id}/esp/{esp_id}/system/error", 1, false},
    [KT_DIAGNOSTICS] = {"kaiser/{kaiser_id}/esp/{esp_id}/system/diagnostics", 0, false},
    [KT_QUEUE_PRESSURE] = {"kaiser/{kaiser_id}/esp/{esp_id}/system/queue_pressure", 1, false},
    [KT_INTENT_OUTCOME] = {"kaiser/{kaiser_id}/esp/{esp_id}/system/intent_outcome", 1, false},
    [KT_INTENT_LIFECYCLE] = {"kaiser/{kaiser_id}/esp/{esp_id}/system/intent_outcome/lifecycle", 1, false},
    [KT_CONFIG_RESPONSE] = {"kaiser/{kaiser_id}/esp/{esp_id}/config_response", 2, false},
    [KT_ZONE_ACK] = {"kaiser/{kaiser_id}/esp/{esp_id}/zone/ack", 1, false},
    [KT_SUBZONE_ACK] = {"kaiser/{kaiser_id}/esp/{esp_id}/subzone/ack", 1, false},
    [KT_SYSTEM_COMMAND_RESPONSE] = {"kaiser/{kaiser_id}/esp/{esp_id}/system/command/response", 1, false},
    [KT_HEARTBEAT_ACK] = {"kaiser/{kaiser_id}/esp/{esp_id}/system/heartbeat/ack", 0, false},
    [KT_SENSOR_COMMAND] = {"kaiser/{kaiser_id}/esp/{esp_id}/sensor/{gpio}/command", 2, false},
    [KT_ACTUATOR_COMMAND] = {"kaiser/{kaiser_id}/esp/{esp_id}/actuator/{gpio}/command", 2, false},
    [KT_ACTUATOR_EMERGENCY] = {"kaiser/{kaiser_id}/esp/{esp_id}/actuator/emergency", 1, false},
    [KT_SYSTEM_COMMAND] = {"kaiser/{kaiser_id}/esp/{esp_id}/system/command", 2, false},
    [KT_CONFIG] = {"kaiser/{kaiser_id}/esp/{esp_id}/config", 2, false},
    [KT_ZONE_ASSIGN] = {"kaiser/{kaiser_id}/esp/{esp_id}/zone/assign", 1, false},
    [KT_SUBZONE_ASSIGN] = {"kaiser/{kaiser_id}/esp/{esp_id}/subzone/assign", 1, false},
    [KT_SUBZONE_REMOVE] = {"kaiser/{kaiser_id}/esp/{esp_id}/subzone/remove", 1, false},
    [KT_SUBZONE_SAFE] = {"kaiser/{kaiser_id}/esp/{esp_id}/subzone/safe", 1, false},
    [KT_BROADCAST_EMERGENCY] = {"kaiser/broadcast/emergency", 2, false},
    [KT_SERVER_STATUS] = {"kaiser/{kaiser_id}/server/status", 1, true},
};

static bool id_chars_ok(const char *s, size_t max) {
    if (s == NULL) return false;
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (!ok || n >= max) return false;
    }
    return n >= 1;
}

bool kaiser_esp_id_valid(const char *s) { return id_chars_ok(s, KAISER_ESP_ID_MAX); }
bool kaiser_kaiser_id_valid(const char *s) { return id_chars_ok(s, KAISER_KAISER_ID_MAX); }

const char *kaiser_topic_pattern(kaiser_topic_kind_t kind) {
    if (kind <= KT_UNKNOWN || kind >= KT__COUNT) return NULL;
    return ROWS[kind].pattern;
}
int kaiser_topic_qos(kaiser_topic_kind_t kind) { return (kind > KT_UNKNOWN && kind < KT__COUNT) ? ROWS[kind].qos : 0; }
bool kaiser_topic_retained(kaiser_topic_kind_t kind) {
    return (kind > KT_UNKNOWN && kind < KT__COUNT) ? ROWS[kind].retained : false;
}
bool kaiser_topic_has_gpio(kaiser_topic_kind_t kind) {
    const char *p = kaiser_topic_pattern(kind);
    return p != NULL && strstr(p, "{gpio}") != NULL;
}

/* Append src to buf at *pos; false on truncation. */
static bool put(char *buf, size_t cap, size_t *pos, const char *src) {
    size_t n = strlen(src);
    if (*pos + n + 1 > cap) return false;
    memcpy(buf + *pos, src, n);
    *pos += n;
    buf[*pos] = '\0';
    return true;
}

kaiser_topic_rc_t kaiser_topic_build(char *buf, size_t cap, kaiser_topic_kind_t kind, const char *kaiser_id,
                                     const char *esp_id, int gpio) {
    const char *p = kaiser_topic_pattern(kind);
    if (buf == NULL || cap == 0 || p == NULL) return KAISER_TOPIC_ERR_INVALID;
    buf[0] = '\0';
    size_t pos = 0;
    while (*p != '\0') {
        if (*p == '{') {
            const char *end = strchr(p, '}');
            size_t len = (size_t)(end - p) + 1;
            char num[8];
            const char *val = NULL;
            if (strncmp(p, "{kaiser_id}", len) == 0) {
                if (!kaiser_kaiser_id_valid(kaiser_id)) return KAISER_TOPIC_ERR_INVALID;
                val = kaiser_id;
            } else if (strncmp(p, "{esp_id}", len) == 0) {
                if (!kaiser_esp_id_valid(esp_id)) return KAISER_TOPIC_ERR_INVALID;
                val = esp_id;
            } else {
                if (gpio == -1) {
                    val = "+";
                } else if (gpio < 0 || gpio > KAISER_GPIO_MAX) {
                    return KAISER_TOPIC_ERR_INVALID;
                } else {
                    snprintf(num, sizeof num, "%d", gpio);
                    val = num;
                }
            }
            if (!put(buf, cap, &pos, val)) {
                buf[0] = '\0';
                return KAISER_TOPIC_ERR_TRUNCATED;
            }
            p = end + 1;
        } else {
            char one[2] = {*p, '\0'};
            if (!put(buf, cap, &pos, one)) {
                buf[0] = '\0';
                return KAISER_TOPIC_ERR_TRUNCATED;
            }
            p++;
        }
    }
    return KAISER_TOPIC_OK;
}

kaiser_topic_kind_t kaiser_topic_parse(const char *topic, const char *kaiser_id, const char *esp_id, int *gpio) {
    if (gpio) *gpio = -1;
    if (topic == NULL) return KT_UNKNOWN;
    char built[KAISER_TOPIC_MAX];
    for (int k = KT_HEARTBEAT_ACK; k < KT__COUNT; k++) {
        if (!kaiser_topic_has_gpio((kaiser_topic_kind_t)k)) {
            if (kaiser_topic_build(built, sizeof built, (kaiser_topic_kind_t)k, kaiser_id, esp_id, 0) == KAISER_TOPIC_OK &&
                strcmp(built, topic) == 0)
                return (kaiser_topic_kind_t)k;
            continue;
        }
        /* {gpio} kinds: build with '+' and match the wildcard segment by hand. */
        if (kaiser_topic_build(built, sizeof built, (kaiser_topic_kind_t)k, kaiser_id, esp_id, -1) != KAISER_TOPIC_OK)
            continue;
        const char *plus = strchr(built, '+');
        size_t pre = (size_t)(plus - built);
        if (strncmp(topic, built, pre) != 0) continue;
        const char *t = topic + pre;
        char *endp = NULL;
        if (*t < '0' || *t > '9') continue;
        long g = strtol(t, &endp, 10);
        if (endp == t || endp - t > 2 || strcmp(endp, plus + 1) != 0) continue;
        if (g < 0 || g > KAISER_GPIO_MAX) return KT_UNKNOWN;
        if (gpio) *gpio = (int)g;
        return (kaiser_topic_kind_t)k;
    }
    return KT_UNKNOWN;
}
