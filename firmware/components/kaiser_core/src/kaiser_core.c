/*
 * Kaiser device core: connection lifecycle, registration gate, publish path with offline buffer,
 * heartbeat, sensors, offline mode and error reporting. Inbound command handling lives in
 * kaiser_commands.c. Everything here is single-threaded and platform-free.
 */
#include "kaiser_core.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cJSON.h"
#include "kaiser_internal.h"

/* ------------------------------------------------------------------ small helpers */

uint64_t k_now(kaiser_device_t *d) { return d->port.now_ms(d->port.ctx); }

int64_t kaiser_ts(kaiser_device_t *d) {
    int64_t w = d->port.wall_s ? d->port.wall_s(d->port.ctx) : 0;
    if (w > 0) return w;
    if (d->time_offset_s > 0) return d->time_offset_s + (int64_t)((k_now(d) - d->boot_ms) / 1000u);
    return 0;
}

bool k_time_valid(kaiser_device_t *d) { return kaiser_ts(d) > 0; }

uint32_t k_next_seq(kaiser_device_t *d) { return ++d->seq; }

void k_vitals(kaiser_device_t *d, kaiser_vitals_t *v) {
    memset(v, 0, sizeof *v);
    v->reset_reason = "POWERON";
    if (d->port.vitals) d->port.vitals(d->port.ctx, v);
    if (v->reset_reason == NULL) v->reset_reason = "UNKNOWN";
}

void k_copy(char *dst, size_t cap, const char *src) {
    if (cap == 0) return;
    if (src == NULL) src = "";
    size_t n = strlen(src);
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void k_store(kaiser_device_t *d, const char *key, const char *val) {
    if (d->port.storage_set && d->port.storage_set(d->port.ctx, key, val) != 0) {
        kaiser_report_error(d, 2003, 2, "NVS write failed");
    }
}

void k_store_u32(kaiser_device_t *d, const char *key, uint32_t v) {
    char buf[16];
    snprintf(buf, sizeof buf, "%u", (unsigned)v);
    k_store(d, key, buf);
}

static bool load(kaiser_device_t *d, const char *key, char *buf, size_t cap) {
    if (!d->port.storage_get) return false;
    int n = d->port.storage_get(d->port.ctx, key, buf, cap);
    if (n < 0 || (size_t)n >= cap) return false;
    buf[n] = '\0';
    return true;
}

static uint32_t load_u32(kaiser_device_t *d, const char *key, uint32_t dflt) {
    char buf[16];
    if (!load(d, key, buf, sizeof buf)) return dflt;
    return (uint32_t)strtoul(buf, NULL, 10);
}

/* ------------------------------------------------------------------ topic classes */

/* Topics allowed before a valid heartbeat ACK: heartbeats, acks, responses and errors. */
static bool gate_exempt(kaiser_topic_kind_t k) {
    switch (k) {
    case KT_HEARTBEAT:
    case KT_SESSION_ANNOUNCE:
    case KT_CONFIG_RESPONSE:
    case KT_ZONE_ACK:
    case KT_SUBZONE_ACK:
    case KT_SYSTEM_COMMAND_RESPONSE:
    case KT_ACTUATOR_RESPONSE:
    case KT_SENSOR_RESPONSE:
    case KT_SYSTEM_ERROR:
        return true;
    default:
        return false;
    }
}

bool k_is_critical(kaiser_topic_kind_t k) {
    switch (k) {
    case KT_ACTUATOR_ALERT:
    case KT_ACTUATOR_RESPONSE:
    case KT_SENSOR_RESPONSE:
    case KT_CONFIG_RESPONSE:
    case KT_ZONE_ACK:
    case KT_SUBZONE_ACK:
    case KT_SYSTEM_COMMAND_RESPONSE:
    case KT_SYSTEM_ERROR:
    case KT_INTENT_OUTCOME:
    case KT_EMERGENCY_ACK:
    case KT_RECOVERY_CONFIRM:
        return true;
    default:
        return false;
    }
}

/* ------------------------------------------------------------------ publish path */

static void buffer_or_drop(kaiser_device_t *d, kaiser_topic_kind_t kind, const char *topic, const char *payload,
                           size_t len) {
    int qos = kaiser_topic_qos(kind);
    if (qos == 0) return; /* heartbeats and diagnostics are stale once late: never buffered */
    kaiser_outbox_rc_t rc =
        kaiser_outbox_push(&d->outbox, topic, payload, len, qos, kaiser_topic_retained(kind), k_is_critical(kind));
    if (rc == KAISER_OUTBOX_NOMEM || rc == KAISER_OUTBOX_DROPPED_NEW) return;
    d->stats.buffered++;
}

static bool direct_publish(kaiser_device_t *d, const char *topic, const char *payload, size_t len, int qos,
                           bool retain) {
    int rc = d->port.publish(d->port.ctx, topic, payload, len, qos, retain);
    if (rc < 0) {
        d->stats.publish_failed++;
        kaiser_breaker_failure(&d->breaker, k_now(d));
        return false;
    }
    d->stats.published++;
    kaiser_breaker_success(&d->breaker, k_now(d));
    return true;
}

int k_send(kaiser_device_t *d, kaiser_topic_kind_t kind, int gpio, const char *payload) {
    char topic[KAISER_TOPIC_MAX];
    if (kaiser_topic_build(topic, sizeof topic, kind, d->kaiser_id, d->esp_id, gpio) != KAISER_TOPIC_OK) {
        return -1;
    }
    size_t len = strlen(payload);
    if (len == 0) return -1;
    int qos = kaiser_topic_qos(kind);
    bool retain = kaiser_topic_retained(kind);
    bool exempt = gate_exempt(kind);
    if (!d->connected || !kaiser_breaker_allow(&d->breaker, k_now(d))) {
        buffer_or_drop(d, kind, topic, payload, len);
        return 1;
    }
    if (kind != KT_SESSION_ANNOUNCE && !d->registered && !exempt) {
        buffer_or_drop(d, kind, topic, payload, len); /* held until the gate opens */
        return 1;
    }
    if (d->registered && d->outbox.count > 0 && qos > 0) {
        buffer_or_drop(d, kind, topic, payload, len); /* keep FIFO order behind the backlog */
        return 1;
    }
    if (!direct_publish(d, topic, payload, len, qos, retain)) {
        buffer_or_drop(d, kind, topic, payload, len);
        return 1;
    }
    return 0;
}

int k_send_json(kaiser_device_t *d, kaiser_topic_kind_t kind, int gpio, cJSON *obj) {
    char *s = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    if (s == NULL) return -1;
    int rc = k_send(d, kind, gpio, s);
    cJSON_free(s);
    return rc;
}

static void drain_outbox(kaiser_device_t *d) {
    for (int i = 0; i < 20 && d->outbox.count > 0; i++) {
        if (!d->connected || !d->registered || !kaiser_breaker_allow(&d->breaker, k_now(d))) return;
        const kaiser_msg_t *m = kaiser_outbox_peek(&d->outbox);
        if (!direct_publish(d, m->topic, m->payload, m->len, m->qos, m->retain)) return;
        d->stats.replayed++;
        kaiser_outbox_pop(&d->outbox);
    }
}

/* ------------------------------------------------------------------ errors */

static const char *error_category(int code) {
    if (code >= 1000 && code < 2000) return "HARDWARE";
    if (code >= 2000 && code < 3000) return "SERVICE";
    if (code >= 3000 && code < 4000) return "COMMUNICATION";
    return "APPLICATION";
}

void kaiser_report_error(kaiser_device_t *d, int code, int severity, const char *message) {
    uint64_t now = k_now(d);
    unsigned slot = (unsigned)code % 32u;
    d->error_count++;
    if (d->error_last_code[slot] == code && d->error_last_ms[slot] != 0 && now - d->error_last_ms[slot] < KAISER_ERROR_THROTTLE_MS)
        return;
    d->error_last_code[slot] = (uint16_t)code;
    d->error_last_ms[slot] = now == 0 ? 1 : now;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "error_code", code);
    cJSON_AddNumberToObject(o, "severity", severity);
    cJSON_AddStringToObject(o, "category", error_category(code));
    cJSON_AddStringToObject(o, "message", message);
    cJSON *ctx = cJSON_AddObjectToObject(o, "context");
    cJSON_AddStringToObject(ctx, "esp_id", d->esp_id);
    cJSON_AddNumberToObject(ctx, "uptime_ms", (double)(now - d->boot_ms));
    cJSON_AddNumberToObject(o, "ts", (double)kaiser_ts(d));
    k_send_json(d, KT_SYSTEM_ERROR, 0, o);
}

/* ------------------------------------------------------------------ payload builders */

static cJSON *config_status(kaiser_device_t *d) {
    cJSON *cs = cJSON_CreateObject();
    int subzones = 0;
    for (int i = 0; i < KAISER_MAX_SUBZONES; i++) subzones += d->subzones[i].used ? 1 : 0;
    cJSON_AddBoolToObject(cs, "wifi_configured", true);
    cJSON_AddBoolToObject(cs, "zone_assigned", d->zone_assigned);
    cJSON_AddBoolToObject(cs, "system_configured", true);
    cJSON_AddNumberToObject(cs, "subzone_count", subzones);
    cJSON_AddNumberToObject(cs, "boot_count", d->boot_count);
    cJSON_AddNumberToObject(cs, "state", d->state);
    return cs;
}

int k_sensor_count(kaiser_device_t *d) {
    int n = 0;
    for (int i = 0; i < KAISER_MAX_SENSORS; i++) n += d->sensors[i].used ? 1 : 0;
    return n;
}
int k_actuator_count(kaiser_device_t *d) {
    int n = 0;
    for (int i = 0; i < KAISER_MAX_ACTUATORS; i++) n += d->actuators[i].used ? 1 : 0;
    return n;
}

static void add_boot_segment(kaiser_device_t *d, cJSON *o, const kaiser_vitals_t *v) {
    char bsid[64];
    int rr = 1;
    snprintf(bsid, sizeof bsid, "%s-b%u-r%d", d->esp_id, (unsigned)d->boot_count, rr);
    cJSON_AddStringToObject(o, "boot_sequence_id", bsid);
    cJSON_AddStringToObject(o, "reset_reason", v->reset_reason);
    cJSON_AddNumberToObject(o, "segment_start_ts", (double)d->segment_start_ts);
}

static bool degraded(kaiser_device_t *d) { return d->state == KAISER_STATE_SAFE_MODE || d->state == KAISER_STATE_ERROR; }

char *k_build_heartbeat(kaiser_device_t *d) {
    kaiser_vitals_t v;
    k_vitals(d, &v);
    int64_t ts = kaiser_ts(d);
    if (d->segment_start_ts == 0 && ts > 0) d->segment_start_ts = ts;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "esp_id", d->esp_id);
    cJSON_AddStringToObject(o, "zone_id", d->zone_id);
    cJSON_AddStringToObject(o, "master_zone_id", d->master_zone_id);
    cJSON_AddBoolToObject(o, "zone_assigned", d->zone_assigned);
    cJSON_AddNumberToObject(o, "ts", (double)ts);
    cJSON_AddBoolToObject(o, "time_valid", ts > 0);
    add_boot_segment(d, o, &v);
    cJSON_AddNumberToObject(o, "uptime", (double)((k_now(d) - d->boot_ms) / 1000u));
    cJSON_AddNumberToObject(o, "heap_free", v.heap_free);
    cJSON_AddNumberToObject(o, "wifi_rssi", v.wifi_rssi);
    cJSON_AddNumberToObject(o, "sensor_count", k_sensor_count(d));
    cJSON_AddNumberToObject(o, "actuator_count", k_actuator_count(d));
    cJSON_AddStringToObject(o, "wifi_ip", v.wifi_ip);
    cJSON_AddNumberToObject(o, "active_handover_epoch", d->active_handover_epoch);
    cJSON_AddNumberToObject(o, "handover_completed_epoch", d->handover_completed_epoch);
    cJSON_AddBoolToObject(o, "persistence_degraded", false);
    cJSON_AddStringToObject(o, "persistence_degraded_reason", "NONE");
    cJSON_AddBoolToObject(o, "runtime_state_degraded", degraded(d));
    cJSON_AddBoolToObject(o, "mqtt_circuit_breaker_open", d->breaker.state == KAISER_CB_OPEN);
    cJSON_AddBoolToObject(o, "wifi_circuit_breaker_open", false);
    cJSON_AddBoolToObject(o, "network_degraded", d->breaker.state != KAISER_CB_CLOSED);
    cJSON_AddItemToObject(o, "config_status", config_status(d));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static void send_heartbeat(kaiser_device_t *d) {
    char *s = k_build_heartbeat(d);
    if (s == NULL) return;
    d->last_hb_ms = k_now(d);
    d->hb_count++;
    if (k_send(d, KT_HEARTBEAT, 0, s) == 0) d->stats.heartbeats++;
    cJSON_free(s);
    if (d->registered && d->opt.metrics_every > 0 && d->hb_count % d->opt.metrics_every == 0) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "esp_id", d->esp_id);
        cJSON_AddNumberToObject(m, "ts", (double)kaiser_ts(d));
        cJSON_AddNumberToObject(m, "metrics_schema_version", 1);
        cJSON_AddNumberToObject(m, "offline_enter_count", d->offline_enter_count);
        cJSON_AddNumberToObject(m, "handover_contract_reject_count", d->handover_reject_count);
        cJSON_AddStringToObject(m, "handover_contract_last_reject", d->handover_last_reject);
        cJSON_AddNumberToObject(m, "critical_outcome_drop_count", d->outbox.dropped_critical);
        cJSON_AddNumberToObject(m, "publish_outbox_drop_count", d->outbox.dropped_noncritical);
        cJSON_AddNumberToObject(m, "publish_queue_fill", (double)d->outbox.count);
        cJSON_AddNumberToObject(m, "publish_queue_hwm", d->outbox.high_watermark);
        cJSON_AddNumberToObject(m, "publish_queue_shed_count", d->outbox.dropped_noncritical);
        cJSON_AddNumberToObject(m, "publish_queue_drop_count", d->outbox.dropped_critical);
        k_send_json(d, KT_HEARTBEAT_METRICS, 0, m);
    }
}

void k_force_heartbeat(kaiser_device_t *d) {
    if (d->connected) send_heartbeat(d);
}

cJSON *k_actuator_status_json(kaiser_device_t *d, const kaiser_actuator_t *a) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "esp_id", d->esp_id);
    cJSON_AddNumberToObject(o, "seq", k_next_seq(d));
    cJSON_AddStringToObject(o, "zone_id", d->zone_id);
    cJSON_AddStringToObject(o, "subzone_id", a->subzone_id);
    cJSON_AddNumberToObject(o, "ts", (double)kaiser_ts(d));
    cJSON_AddNumberToObject(o, "gpio", a->gpio);
    cJSON_AddStringToObject(o, "type", a->type);
    cJSON_AddBoolToObject(o, "state", a->state);
    cJSON_AddNumberToObject(o, "pwm", a->pwm);
    cJSON_AddNumberToObject(o, "runtime_ms", a->state && a->on_since_ms ? (double)(k_now(d) - a->on_since_ms) : 0);
    cJSON_AddStringToObject(o, "emergency", a->latched || d->emergency ? "active" : "normal");
    cJSON_AddStringToObject(o, "command_source", a->command_source);
    return o;
}

void k_publish_status(kaiser_device_t *d, kaiser_actuator_t *a) {
    k_send_json(d, KT_ACTUATOR_STATUS, a->gpio, k_actuator_status_json(d, a));
}

void k_publish_all_status(kaiser_device_t *d) {
    for (int i = 0; i < KAISER_MAX_ACTUATORS; i++)
        if (d->actuators[i].used) k_publish_status(d, &d->actuators[i]);
}

void k_alert(kaiser_device_t *d, int gpio, const char *type, const char *msg) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "esp_id", d->esp_id);
    cJSON_AddNumberToObject(o, "seq", k_next_seq(d));
    cJSON_AddStringToObject(o, "zone_id", d->zone_id);
    cJSON_AddNumberToObject(o, "ts", (double)kaiser_ts(d));
    cJSON_AddNumberToObject(o, "gpio", gpio);
    cJSON_AddStringToObject(o, "alert_type", type);
    cJSON_AddStringToObject(o, "message", msg);
    k_send_json(d, KT_ACTUATOR_ALERT, gpio, o);
}

/* ------------------------------------------------------------------ actuator output */

kaiser_actuator_t *kaiser_find_actuator(kaiser_device_t *d, int gpio) {
    for (int i = 0; i < KAISER_MAX_ACTUATORS; i++)
        if (d->actuators[i].used && d->actuators[i].gpio == gpio) return &d->actuators[i];
    return NULL;
}

static bool is_pump(const kaiser_actuator_t *a) { return strcmp(a->type, "pump") == 0 || strcmp(a->type, "relay") == 0; }

/* Pump driver protection: at most 60 switch-ons per rolling hour for pumps and relays. */
bool k_pump_protected(kaiser_device_t *d, const kaiser_actuator_t *a) {
    if (!is_pump(a) || a->state) return false;
    uint32_t now_s = (uint32_t)((k_now(d) - d->boot_ms) / 1000u) + 3600u; /* +1 h: empty slots (0) are old */
    int recent = 0;
    for (int i = 0; i < KAISER_PUMP_MAX_ACTIVATIONS_PER_HOUR; i++)
        if (a->activations_s[i] != 0 && now_s - a->activations_s[i] < 3600u) recent++;
    return recent >= KAISER_PUMP_MAX_ACTIVATIONS_PER_HOUR;
}

bool k_set_output(kaiser_device_t *d, kaiser_actuator_t *a, bool on, uint8_t pwm, const char *source) {
    int rc;
    if (on && k_pump_protected(d, a)) {
        kaiser_report_error(d, 1050, 1, "Pump protection: more than 60 activations in one hour refused");
        return false;
    }
    if (strcmp(a->type, "pwm") == 0) {
        uint8_t duty = on ? (pwm == 0 ? 255 : pwm) : 0;
        rc = d->port.pwm_write ? d->port.pwm_write(d->port.ctx, a->gpio, duty) : 0;
        if (rc == 0) a->pwm = duty;
    } else {
        rc = d->port.gpio_write ? d->port.gpio_write(d->port.ctx, a->gpio, a->inverted ? !on : on) : 0;
        if (rc == 0) a->pwm = on ? 255 : 0;
    }
    if (rc != 0) {
        kaiser_report_error(d, 1050, 2, "Actuator set failed");
        return false;
    }
    if (on && !a->state) {
        a->on_since_ms = k_now(d);
        if (is_pump(a)) {
            a->activations_s[a->activation_next] = (uint32_t)((k_now(d) - d->boot_ms) / 1000u) + 3600u;
            a->activation_next = (uint8_t)((a->activation_next + 1) % KAISER_PUMP_MAX_ACTIVATIONS_PER_HOUR);
        }
    }
    if (!on) {
        a->on_since_ms = 0;
        a->duration_end_ms = 0;
    }
    a->state = on;
    if (source) k_copy(a->command_source, sizeof a->command_source, source);
    return true;
}

/* Default (safe) state, used on boot, disconnect without rules and OFFLINE_ACTIVE. */
void k_to_default(kaiser_device_t *d, kaiser_actuator_t *a, const char *source) {
    bool on = a->default_state && !a->latched && !d->emergency;
    if (a->state == on) return;
    k_set_output(d, a, on, a->default_pwm, source);
}

/* ------------------------------------------------------------------ sensors */

static void cache_value(kaiser_device_t *d, int gpio, const char *type, double v, int32_t raw, const char *unit,
                        const char *quality) {
    kaiser_value_t *slot = NULL;
    for (size_t i = 0; i < sizeof d->values / sizeof d->values[0]; i++) {
        kaiser_value_t *c = &d->values[i];
        if (c->valid && c->gpio == gpio && strcmp(c->value_type, type) == 0) {
            slot = c;
            break;
        }
        if (!c->valid && slot == NULL) slot = c;
    }
    if (slot == NULL) return;
    slot->valid = true;
    slot->gpio = gpio;
    k_copy(slot->value_type, sizeof slot->value_type, type);
    slot->value = v;
    slot->raw = raw;
    slot->unit = unit;
    slot->quality = quality;
    slot->at_ms = k_now(d);
}

bool k_cached_value(kaiser_device_t *d, int gpio, const char *type, double *v) {
    for (size_t i = 0; i < sizeof d->values / sizeof d->values[0]; i++) {
        kaiser_value_t *c = &d->values[i];
        if (c->valid && c->gpio == gpio && strcmp(c->value_type, type) == 0) {
            if (k_now(d) - c->at_ms > 300000u) return false; /* older than 5 min: stale */
            *v = c->value;
            return true;
        }
    }
    return false;
}

/* Local preview conversion; the server recomputes from raw. */
void k_convert(const char *type, int32_t raw, double *value, const char **unit, const char **quality) {
    *quality = "good";
    if (strcmp(type, "ds18b20") == 0) {
        *value = raw * 0.0625;
        *unit = "\xC2\xB0" "C";
        if (*value < -55.0 || *value > 125.0) *quality = "suspect";
    } else if (strcmp(type, "sht31_temp") == 0) {
        *value = -45.0 + 175.0 * raw / 65535.0;
        *unit = "\xC2\xB0" "C";
    } else if (strcmp(type, "sht31_humidity") == 0) {
        *value = 100.0 * raw / 65535.0;
        *unit = "%";
    } else {
        *value = raw;
        *unit = "raw";
        if (raw <= 50 || raw >= 4045) *quality = "suspect";
    }
    *value = round(*value * 1000.0) / 1000.0;
}

static int value_types(const char *sensor_type, const char *out[2]) {
    if (strcmp(sensor_type, "sht31") == 0) {
        out[0] = "sht31_temp";
        out[1] = "sht31_humidity";
        return 2;
    }
    out[0] = sensor_type;
    return 1;
}

/* Measure one sensor: publishes one data message per value type; returns the number published (or -1 on error). */
int k_measure(kaiser_device_t *d, kaiser_sensor_t *s, int32_t *last_raw, const char **last_quality) {
    const char *types[2];
    int n = value_types(s->sensor_type, types);
    int ok = 0;
    for (int i = 0; i < n; i++) {
        int32_t raw = 0;
        if (d->port.sensor_read == NULL || d->port.sensor_read(d->port.ctx, s->gpio, types[i], &raw) != 0) {
            kaiser_report_error(d, 1040, 2, "Sensor read failed");
            return -1;
        }
        if (strcmp(types[i], "ds18b20") == 0 && raw == -2032) {
            kaiser_report_error(d, 1060, 2, "DS18B20 sensor fault (-127 C)");
            return -1;
        }
        double value;
        const char *unit, *quality;
        k_convert(types[i], raw, &value, &unit, &quality);
        cache_value(d, s->gpio, types[i], value, raw, unit, quality);
        if (last_raw) *last_raw = raw;
        if (last_quality) *last_quality = quality;
        int64_t ts = kaiser_ts(d);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "esp_id", d->esp_id);
        cJSON_AddNumberToObject(o, "seq", k_next_seq(d));
        cJSON_AddStringToObject(o, "zone_id", d->zone_id);
        cJSON_AddStringToObject(o, "subzone_id", s->subzone_id);
        cJSON_AddNumberToObject(o, "gpio", s->gpio);
        cJSON_AddStringToObject(o, "sensor_type", types[i]);
        cJSON_AddNumberToObject(o, "raw", raw);
        cJSON_AddNumberToObject(o, "value", value);
        cJSON_AddStringToObject(o, "unit", unit);
        cJSON_AddStringToObject(o, "quality", quality);
        cJSON_AddNumberToObject(o, "ts", (double)ts);
        cJSON_AddBoolToObject(o, "time_valid", ts > 0);
        cJSON_AddBoolToObject(o, "raw_mode", s->raw_mode);
        if (s->onewire_address[0]) cJSON_AddStringToObject(o, "onewire_address", s->onewire_address);
        if (s->i2c_address > 0) cJSON_AddNumberToObject(o, "i2c_address", s->i2c_address);
        if (k_send_json(d, KT_SENSOR_DATA, s->gpio, o) == 0) d->stats.data_msgs++;
        ok++;
    }
    return ok;
}

int kaiser_publish_sensor_batch(kaiser_device_t *d) {
    int64_t ts = kaiser_ts(d);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "esp_id", d->esp_id);
    cJSON_AddNumberToObject(o, "seq", k_next_seq(d));
    cJSON_AddStringToObject(o, "zone_id", d->zone_id);
    cJSON_AddNumberToObject(o, "ts", (double)ts);
    cJSON_AddBoolToObject(o, "time_valid", ts > 0);
    cJSON *arr = cJSON_AddArrayToObject(o, "readings");
    for (size_t i = 0; i < sizeof d->values / sizeof d->values[0]; i++) {
        kaiser_value_t *c = &d->values[i];
        if (!c->valid) continue;
        int64_t rts = ts > 0 ? ts - (int64_t)((k_now(d) - c->at_ms) / 1000u) : 0;
        cJSON *r = cJSON_CreateObject();
        cJSON_AddNumberToObject(r, "gpio", c->gpio);
        cJSON_AddStringToObject(r, "sensor_type", c->value_type);
        cJSON_AddNumberToObject(r, "raw", c->raw);
        cJSON_AddNumberToObject(r, "value", c->value);
        cJSON_AddStringToObject(r, "unit", c->unit);
        cJSON_AddStringToObject(r, "quality", c->quality);
        cJSON_AddNumberToObject(r, "ts", (double)rts);
        cJSON_AddItemToArray(arr, r);
    }
    if (cJSON_GetArraySize(arr) == 0) {
        cJSON_Delete(o);
        return -1; /* nothing measured yet: no empty batch */
    }
    return k_send_json(d, KT_SENSOR_BATCH, 0, o) < 0 ? -1 : 0;
}

/* A stable phase in [0, interval) per device and sensor (FNV-1a of esp_id and gpio). */
static uint32_t sensor_phase_ms(const kaiser_device_t *d, int gpio, uint32_t interval_ms) {
    uint32_t h = 2166136261u;
    for (const char *c = d->esp_id; *c; c++) h = (h ^ (uint8_t)*c) * 16777619u;
    h = (h ^ (uint32_t)gpio) * 16777619u;
    return interval_ms ? h % interval_ms : 0;
}

static void run_sensors(kaiser_device_t *d) {
    uint64_t now = k_now(d);
    for (int i = 0; i < KAISER_MAX_SENSORS; i++) {
        kaiser_sensor_t *s = &d->sensors[i];
        if (!s->used || !s->continuous) continue;
        uint32_t iv = s->interval_ms ? s->interval_ms : d->opt.data_ms;
        if (s->last_ms == 0 && d->opt.data_phase_spread) {
            if (s->first_due_ms == 0) s->first_due_ms = now + sensor_phase_ms(d, s->gpio, iv) + 1;
            if (now < s->first_due_ms) continue;
        }
        if (s->last_ms != 0 && now - s->last_ms < iv) continue;
        s->last_ms = now == 0 ? 1 : now; /* updated before the attempt: failures wait a full interval */
        k_measure(d, s, NULL, NULL);
    }
}

/* ------------------------------------------------------------------ actuator timers */

static void run_actuators(kaiser_device_t *d) {
    uint64_t now = k_now(d);
    for (int i = 0; i < KAISER_MAX_ACTUATORS; i++) {
        kaiser_actuator_t *a = &d->actuators[i];
        if (!a->used || !a->state) continue;
        if (a->duration_end_ms != 0 && now >= a->duration_end_ms) {
            k_set_output(d, a, false, 0, "firmware:auto_duration");
            k_publish_status(d, a);
            continue;
        }
        if (a->max_runtime_ms > 0 && a->on_since_ms != 0 && now - a->on_since_ms >= a->max_runtime_ms) {
            k_set_output(d, a, false, 0, "firmware:runtime_protection");
            a->latched = true;
            k_alert(d, a->gpio, "emergency_stop", "Max runtime exceeded: actuator stopped and latched");
            k_publish_status(d, a);
            k_alert(d, a->gpio, "runtime_protection", "Runtime protection triggered");
        }
    }
}

/* ------------------------------------------------------------------ offline mode */

static bool rule_covers(kaiser_device_t *d, int gpio) {
    for (int i = 0; i < d->rule_count; i++)
        if (d->rules[i].enabled && d->rules[i].actuator_gpio == gpio) return true;
    return false;
}

void k_offline_on_disconnect(kaiser_device_t *d, bool link_lost) {
    if (d->offline == KAISER_OFFLINE_RECONNECTING) {
        d->offline = KAISER_OFFLINE_ACTIVE;
        return;
    }
    if (d->offline != KAISER_OFFLINE_ONLINE) return;
    d->offline = KAISER_OFFLINE_DISCONNECTED;
    d->offline_since_ms = k_now(d);
    /* Actuators without a rule go to their default state at once; with rules present only the
     * uncovered ones do. A hint (server/status offline, ACK timeout) with rules forces nothing. */
    for (int i = 0; i < KAISER_MAX_ACTUATORS; i++) {
        kaiser_actuator_t *a = &d->actuators[i];
        if (!a->used) continue;
        bool covered = rule_covers(d, a->gpio);
        if (covered && a->state) {
            k_alert(d, a->gpio, "offline_rule_hold", "Offline rule keeps actuator running");
            continue;
        }
        if (covered || (!link_lost && d->rule_count > 0)) continue;
        if (a->state != a->default_state) {
            if (a->state) k_alert(d, a->gpio, "safety_forced_off", "Disconnected: actuator forced to default state");
            k_to_default(d, a, "firmware:offline_safe_state");
            k_publish_status(d, a);
        }
    }
}

static void enter_offline_active(kaiser_device_t *d) {
    d->offline = KAISER_OFFLINE_ACTIVE;
    d->offline_enter_count++;
    d->last_rule_eval_ms = 0;
    for (int i = 0; i < d->rule_count; i++) {
        kaiser_rule_t *r = &d->rules[i];
        kaiser_actuator_t *a = kaiser_find_actuator(d, r->actuator_gpio);
        r->warmup = 0;
        r->is_active = a ? a->state : false;
    }
    for (int i = 0; i < KAISER_MAX_ACTUATORS; i++) {
        kaiser_actuator_t *a = &d->actuators[i];
        if (a->used && !rule_covers(d, a->gpio)) k_to_default(d, a, "firmware:offline_safe_state");
    }
}

/* Days since 1970-01-01 of a civil date (proleptic Gregorian; H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int64_t year_of_days(int64_t z) {
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned m = mp < 10 ? mp + 3 : mp - 9;
    return (int64_t)yoe + era * 400 + (m <= 2);
}

static int64_t last_sunday(int64_t year, unsigned month) {
    int64_t last = days_from_civil(month == 12 ? year + 1 : year, month == 12 ? 1 : month + 1, 1) - 1;
    int64_t wd = ((last % 7) + 7 + 4) % 7; /* 0 = Sunday; 1970-01-01 was a Thursday */
    return last - wd;
}

bool kaiser_rule_window_open(const kaiser_rule_t *r, int64_t ts) {
    if (!r->tf_enabled) return true;
    int64_t local = ts;
    if (r->tf_berlin) {
        int64_t year = year_of_days(ts >= 0 ? ts / 86400 : (ts - 86399) / 86400);
        int64_t dst_on = last_sunday(year, 3) * 86400 + 3600, dst_off = last_sunday(year, 10) * 86400 + 3600;
        local += (ts >= dst_on && ts < dst_off) ? 7200 : 3600;
    }
    int64_t days = local >= 0 ? local / 86400 : (local - 86399) / 86400;
    int wd = (int)(((days % 7) + 7 + 4) % 7);
    if (!(r->tf_days_mask & (1u << wd))) return false;
    unsigned minute = (unsigned)((local - days * 86400) / 60);
    unsigned s = r->tf_start_min, e = r->tf_end_min;
    if (s == e) return true;
    return s < e ? (minute >= s && minute < e) : (minute >= s || minute < e);
}

static bool calibration_type(const char *t) {
    return strcmp(t, "ph") == 0 || strcmp(t, "ec") == 0 || strcmp(t, "moisture") == 0 || strncmp(t, "soil", 4) == 0;
}

void k_rules_evaluate(kaiser_device_t *d) {
    for (int i = 0; i < d->rule_count; i++) {
        kaiser_rule_t *r = &d->rules[i];
        if (!r->enabled || r->server_override) continue;
        kaiser_actuator_t *a = kaiser_find_actuator(d, r->actuator_gpio);
        if (a == NULL || a->latched || d->emergency) continue;
        if (calibration_type(r->value_type)) {
            if (r->is_active && k_set_output(d, a, false, 0, "firmware:offline_rule")) r->is_active = false;
            continue;
        }
        if (r->tf_enabled) {
            int64_t ts = kaiser_ts(d);
            if (ts <= 0) continue; /* no valid time: hold the state */
            bool open = kaiser_rule_window_open(r, ts);
            if (strncmp(r->value_type, "__twindow_", 10) == 0) {
                /* time-window-only rule: fixed target inside the window, OFF outside */
                bool target = open && strcmp(r->value_type, "__twindow_on") == 0;
                if ((a->state != target || r->is_active != target) && k_set_output(d, a, target, 0, "firmware:offline_rule")) {
                    r->is_active = target;
                    k_publish_status(d, a);
                }
                continue;
            }
            if (!open) {
                if ((r->is_active || a->state) && k_set_output(d, a, false, 0, "firmware:offline_rule")) {
                    r->is_active = false;
                    k_publish_status(d, a);
                }
                continue;
            }
        }
        double v;
        if (!k_cached_value(d, r->sensor_gpio, r->value_type, &v)) {
            r->warmup = 0;
            continue;
        }
        if (r->warmup < 3) r->warmup++;
        if (r->warmup < 3) continue;
        bool target = r->is_active;
        bool heating = r->activate_below != 0.0 || r->deactivate_above != 0.0;
        bool cooling = r->activate_above != 0.0 || r->deactivate_below != 0.0;
        if (heating) {
            if (!target && v < r->activate_below) target = true;
            else if (target && v > r->deactivate_above) target = false;
        }
        if (cooling) {
            if (!target && v > r->activate_above) target = true;
            else if (target && v < r->deactivate_below) target = false;
        }
        if (target != r->is_active || a->state != target) {
            if (k_set_output(d, a, target, 0, "firmware:offline_rule")) {
                r->is_active = target;
                k_publish_status(d, a);
            }
        }
    }
}

static void run_offline(kaiser_device_t *d) {
    uint64_t now = k_now(d);
    uint32_t grace = d->opt.offline_grace_ms ? d->opt.offline_grace_ms : KAISER_OFFLINE_GRACE_MS;
    if (d->offline == KAISER_OFFLINE_DISCONNECTED && now - d->offline_since_ms >= grace) {
        enter_offline_active(d);
        /* Still connected (ACK silence or a server offline hint led here, or the ACK of a reconnect came later than
         * the grace): the handover starts at once, as on a reconnect. An active offline mode without an epoch of its
         * own rejects every ACK (MISSING_ACTIVE_SESSION_EPOCH) until the link drops: seen with devices stuck
         * unregistered for minutes under a 15,000-device power-on. The rules keep running until the ACK comes. */
        if (d->connected) {
            d->offline = KAISER_OFFLINE_RECONNECTING;
            d->active_handover_epoch++;
            k_announce_session(d, true);
        }
    }
    if ((d->offline == KAISER_OFFLINE_ACTIVE || d->offline == KAISER_OFFLINE_RECONNECTING) &&
        (d->last_rule_eval_ms == 0 || now - d->last_rule_eval_ms >= KAISER_RULE_EVAL_MS)) {
        d->last_rule_eval_ms = now == 0 ? 1 : now;
        k_rules_evaluate(d);
    }
    /* P1: connected but no valid heartbeat ACK for 120 s -> treat as offline (safe state, grace). */
    if (d->connected && d->offline == KAISER_OFFLINE_ONLINE && d->last_valid_ack_ms != 0 &&
        now - d->last_valid_ack_ms >= KAISER_ACK_TIMEOUT_MS) {
        k_offline_on_disconnect(d, false);
    }
}

void k_offline_on_valid_ack(kaiser_device_t *d, uint32_t epoch) {
    switch (d->offline) {
    case KAISER_OFFLINE_DISCONNECTED:
        d->offline = KAISER_OFFLINE_ONLINE;
        break;
    case KAISER_OFFLINE_ACTIVE:
    case KAISER_OFFLINE_RECONNECTING:
        d->handover_completed_epoch = epoch;
        d->offline = KAISER_OFFLINE_ONLINE;
        for (int i = 0; i < d->rule_count; i++) d->rules[i].server_override = false;
        k_publish_all_status(d); /* adopt: physical state is left alone, the server learns it */
        break;
    default:
        break;
    }
}

/* ------------------------------------------------------------------ diagnostics / pressure */

static void run_diagnostics(kaiser_device_t *d) {
    uint64_t now = k_now(d);
    if (!d->registered || (d->last_diag_ms != 0 && now - d->last_diag_ms < 60000u)) return;
    d->last_diag_ms = now == 0 ? 1 : now;
    uint32_t sig = (uint32_t)d->state * 1000003u ^ (uint32_t)k_sensor_count(d) * 131u ^
                   (uint32_t)k_actuator_count(d) * 7919u ^ (d->error_count / 5u) ^ (d->breaker.state << 20);
    if (sig == d->diag_sig && d->diag_sig != 0) return;
    d->diag_sig = sig == 0 ? 1 : sig;
    kaiser_vitals_t v;
    k_vitals(d, &v);
    cJSON *o = k_diagnostics_json(d, &v);
    k_send_json(d, KT_DIAGNOSTICS, 0, o);
}

const char *k_state_name(kaiser_state_t s) {
    switch (s) {
    case KAISER_STATE_BOOT: return "BOOT";
    case KAISER_STATE_ZONE_CONFIGURED: return "ZONE_CONFIGURED";
    case KAISER_STATE_OPERATIONAL: return "OPERATIONAL";
    case KAISER_STATE_PENDING_APPROVAL: return "PENDING_APPROVAL";
    case KAISER_STATE_SAFE_MODE: return "SAFE_MODE";
    case KAISER_STATE_ERROR: return "ERROR";
    }
    return "UNKNOWN";
}

static const char *cb_name(kaiser_cb_state_t s) {
    return s == KAISER_CB_CLOSED ? "CLOSED" : s == KAISER_CB_OPEN ? "OPEN" : "HALF_OPEN";
}

cJSON *k_diagnostics_json(kaiser_device_t *d, const kaiser_vitals_t *v) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "ts", (double)kaiser_ts(d));
    cJSON_AddStringToObject(o, "esp_id", d->esp_id);
    cJSON_AddNumberToObject(o, "heap_free", v->heap_free);
    cJSON_AddNumberToObject(o, "heap_min_free", v->heap_min_free);
    cJSON_AddNumberToObject(o, "heap_fragmentation", 0);
    cJSON_AddNumberToObject(o, "uptime_seconds", (double)((k_now(d) - d->boot_ms) / 1000u));
    cJSON_AddNumberToObject(o, "error_count", d->error_count);
    cJSON_AddBoolToObject(o, "wifi_connected", true);
    cJSON_AddNumberToObject(o, "wifi_rssi", v->wifi_rssi);
    cJSON_AddBoolToObject(o, "mqtt_connected", d->connected);
    cJSON_AddNumberToObject(o, "sensor_count", k_sensor_count(d));
    cJSON_AddNumberToObject(o, "actuator_count", k_actuator_count(d));
    cJSON_AddStringToObject(o, "system_state", k_state_name(d->state));
    cJSON_AddStringToObject(o, "boot_reason", v->reset_reason);
    add_boot_segment(d, o, v);
    cJSON_AddStringToObject(o, "mqtt_cb_state", cb_name(d->breaker.state));
    cJSON_AddNumberToObject(o, "mqtt_cb_failures", d->breaker.failures);
    cJSON_AddStringToObject(o, "wdt_mode", "PRODUCTION");
    cJSON_AddNumberToObject(o, "wdt_timeouts_24h", 0);
    cJSON_AddBoolToObject(o, "wdt_timeout_pending", false);
    cJSON_AddNumberToObject(o, "metrics_schema_version", 1);
    return o;
}

static void run_pressure(kaiser_device_t *d) {
    size_t fill = d->outbox.count;
    const char *ev = NULL;
    if (!d->pressure && fill >= 80) {
        d->pressure = true;
        ev = "entered_pressure";
    } else if (d->pressure && fill < 40) {
        d->pressure = false;
        ev = "recovered";
    }
    if (ev == NULL) return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "event", ev);
    cJSON_AddNumberToObject(o, "fill_level", (double)fill);
    cJSON_AddNumberToObject(o, "high_watermark", d->outbox.high_watermark);
    cJSON_AddNumberToObject(o, "shed_count", d->outbox.dropped_noncritical);
    cJSON_AddNumberToObject(o, "drop_count", d->outbox.dropped_critical);
    cJSON_AddNumberToObject(o, "threshold", 80);
    cJSON_AddNumberToObject(o, "ts", (double)kaiser_ts(d));
    k_send_json(d, KT_QUEUE_PRESSURE, 0, o);
}

/* ------------------------------------------------------------------ lifecycle */

kaiser_options_t kaiser_default_options(void) {
    kaiser_options_t o = {KAISER_HB_REGISTERED_MS, KAISER_HB_GATED_MS, 30000u, 5u, KAISER_OFFLINE_GRACE_MS, false};
    return o;
}

int kaiser_init(kaiser_device_t *d, const kaiser_port_t *port, const kaiser_options_t *opt, const char *esp_id,
                const char *kaiser_id) {
    memset(d, 0, sizeof *d);
    d->port = *port;
    d->opt = opt ? *opt : kaiser_default_options();
    if (!kaiser_esp_id_valid(esp_id)) return -1;
    k_copy(d->esp_id, sizeof d->esp_id, esp_id);
    char buf[96];
    if (kaiser_id != NULL && kaiser_id[0] != '\0') {
        k_copy(d->kaiser_id, sizeof d->kaiser_id, kaiser_id);
    } else if (load(d, "kaiser_id", buf, sizeof buf)) {
        k_copy(d->kaiser_id, sizeof d->kaiser_id, buf);
    } else {
        k_copy(d->kaiser_id, sizeof d->kaiser_id, "god");
    }
    if (!kaiser_kaiser_id_valid(d->kaiser_id)) return -1;
    kaiser_outbox_init(&d->outbox);
    kaiser_dedupe_init(&d->dedupe);
    kaiser_breaker_init(&d->breaker);
    d->boot_ms = k_now(d);
    d->next_connect_ms = d->boot_ms;
    d->sub_mid_ack = d->sub_mid_config = -1;
    k_copy(d->log_level, sizeof d->log_level, "INFO");
    k_copy(d->handover_last_reject, sizeof d->handover_last_reject, "NONE");
    d->boot_count = load_u32(d, "boot_count", 0) + 1;
    k_store_u32(d, "boot_count", d->boot_count);
    d->short_boots = load_u32(d, "boot_short", 0) + 1;
    k_store_u32(d, "boot_short", d->short_boots);
    d->approved = load_u32(d, "dev_appr", 0) != 0;
    if (load(d, "zone_id", buf, sizeof buf)) k_copy(d->zone_id, sizeof d->zone_id, buf);
    if (load(d, "master_zone_id", buf, sizeof buf)) k_copy(d->master_zone_id, sizeof d->master_zone_id, buf);
    if (load(d, "zone_name", buf, sizeof buf)) k_copy(d->zone_name, sizeof d->zone_name, buf);
    d->zone_assigned = d->zone_id[0] != '\0';
    {
        char *sz = malloc(4096);
        if (sz != NULL && load(d, "subzones", sz, 4096)) k_load_subzones(d, sz);
        free(sz);
    }
    d->applied_gen = load_u32(d, "applied_gen", 0);
    d->applied_gen_sensor = load_u32(d, "gen_sensor", 0);
    d->applied_gen_act = load_u32(d, "gen_act", 0);
    d->applied_gen_off = load_u32(d, "gen_off", 0);
    d->state = d->approved ? (d->zone_assigned ? KAISER_STATE_ZONE_CONFIGURED : KAISER_STATE_OPERATIONAL)
                           : KAISER_STATE_PENDING_APPROVAL;
    if (d->short_boots > KAISER_BOOT_LOOP_LIMIT) {
        /* boot loop: actuators stay in their default state and only system commands are accepted */
        d->state = KAISER_STATE_SAFE_MODE;
    }
    k_load_persisted_config(d);
    for (int i = 0; i < KAISER_MAX_ACTUATORS; i++) {
        kaiser_actuator_t *a = &d->actuators[i];
        if (a->used) {
            a->state = !a->default_state; /* force the write */
            k_set_output(d, a, a->default_state, a->default_pwm, "firmware:boot");
        }
    }
    return 0;
}

void kaiser_deinit(kaiser_device_t *d) { kaiser_outbox_clear(&d->outbox); }

int kaiser_will(kaiser_device_t *d, char *topic, size_t tcap, char *payload, size_t pcap) {
    if (kaiser_topic_build(topic, tcap, KT_WILL, d->kaiser_id, d->esp_id, 0) != KAISER_TOPIC_OK) return -1;
    int n = snprintf(payload, pcap, "{\"status\":\"offline\",\"esp_id\":\"%s\",\"reason\":\"unexpected_disconnect\",\"timestamp\":%lld}",
                     d->esp_id, (long long)kaiser_ts(d));
    return (n < 0 || (size_t)n >= pcap) ? -1 : 0;
}

bool kaiser_connect_due(kaiser_device_t *d) {
    if (d->connected) return false;
    uint64_t now = k_now(d);
    if (now < d->next_connect_ms) return false;
    if (!kaiser_breaker_allow(&d->breaker, now)) return false;
    /* Arm the next attempt now; kaiser_on_connected() or _failed() refines it. */
    d->next_connect_ms = now + kaiser_backoff_ms(d->reconnect_attempt, d->port.random ? d->port.random(d->port.ctx) : 0,
                                                 d->esp_id[strlen(d->esp_id) - 1]);
    return true;
}

void kaiser_on_connect_failed(kaiser_device_t *d) {
    uint64_t now = k_now(d);
    kaiser_breaker_failure(&d->breaker, now);
    d->next_connect_ms = now + kaiser_backoff_ms(d->reconnect_attempt, d->port.random ? d->port.random(d->port.ctx) : 0,
                                                 d->esp_id[strlen(d->esp_id) - 1]);
    d->reconnect_attempt++;
    kaiser_report_error(d, 3011, 2, "MQTT connect failed");
}

void k_subscribe_all(kaiser_device_t *d) {
    static const kaiser_topic_kind_t subs[] = {KT_HEARTBEAT_ACK,      KT_CONFIG,         KT_SYSTEM_COMMAND,
                                               KT_BROADCAST_EMERGENCY, KT_ACTUATOR_COMMAND, KT_ACTUATOR_EMERGENCY,
                                               KT_ZONE_ASSIGN,        KT_SUBZONE_ASSIGN, KT_SUBZONE_REMOVE,
                                               KT_SUBZONE_SAFE,       KT_SENSOR_COMMAND, KT_SERVER_STATUS};
    char topic[KAISER_TOPIC_MAX];
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        if (kaiser_topic_build(topic, sizeof topic, subs[i], d->kaiser_id, d->esp_id, -1) != KAISER_TOPIC_OK) continue;
        int mid = d->port.subscribe(d->port.ctx, topic, kaiser_topic_qos(subs[i]));
        if (mid < 0) kaiser_report_error(d, 3013, 2, "MQTT subscribe failed");
        if (subs[i] == KT_HEARTBEAT_ACK) {
            d->sub_mid_ack = mid;
            d->sub_ack_ok = mid < 0; /* a failed subscribe must not block heartbeats forever */
        }
        if (subs[i] == KT_CONFIG) {
            d->sub_mid_config = mid;
            d->sub_config_ok = mid < 0;
        }
    }
}

void k_announce_session(kaiser_device_t *d, bool reconnect) {
    uint64_t now = k_now(d);
    uint32_t epoch = d->active_handover_epoch ? d->active_handover_epoch : 1;
    if (d->segment_start_ts == 0) d->segment_start_ts = kaiser_ts(d);
    cJSON *o = cJSON_CreateObject();
    char boot_ts[24];
    snprintf(boot_ts, sizeof boot_ts, "%lld", (long long)d->segment_start_ts);
    int64_t ts = kaiser_ts(d);
    cJSON_AddStringToObject(o, "esp_id", d->esp_id);
    cJSON_AddNumberToObject(o, "handover_epoch", epoch);
    cJSON_AddNumberToObject(o, "session_epoch", epoch);
    cJSON_AddStringToObject(o, "reason", reconnect ? "reconnect" : "boot");
    cJSON_AddNumberToObject(o, "ts_ms", ts > 0 ? (double)ts * 1000.0 + (double)(now % 1000u) : (double)now);
    cJSON_AddStringToObject(o, "boot_ts", boot_ts);
    k_send_json(d, KT_SESSION_ANNOUNCE, 0, o);
}

void kaiser_on_connected(kaiser_device_t *d) {
    uint64_t now = k_now(d);
    bool reconnect = d->ever_connected;
    d->connected = true;
    d->ever_connected = true;
    d->registered = false;
    d->connected_ms = now;
    d->last_valid_ack_ms = now; /* P1 timer restarts on every connect */
    d->reconnect_attempt = 0;
    d->stats.connects++;
    kaiser_breaker_success(&d->breaker, now);
    if (d->offline == KAISER_OFFLINE_ACTIVE) {
        d->offline = KAISER_OFFLINE_RECONNECTING;
        d->active_handover_epoch++;
    }
    k_announce_session(d, reconnect);
    k_subscribe_all(d);
    d->bootstrap_pending = true;
    k_publish_all_status(d); /* gated: held until the ACK opens the gate */
}

void kaiser_on_disconnected(kaiser_device_t *d) {
    if (!d->connected) {
        kaiser_on_connect_failed(d);
        return;
    }
    uint64_t now = k_now(d);
    d->connected = false;
    d->registered = false;
    d->bootstrap_pending = false;
    d->stats.disconnects++;
    kaiser_breaker_failure(&d->breaker, now);
    d->reconnect_attempt = 0;
    d->next_connect_ms = now + kaiser_backoff_ms(0, d->port.random ? d->port.random(d->port.ctx) : 0,
                                                 d->esp_id[strlen(d->esp_id) - 1]);
    kaiser_report_error(d, 3014, 2, "MQTT connection lost"); /* buffered, sent after reconnect */
    k_offline_on_disconnect(d, true);
}

void kaiser_on_suback(kaiser_device_t *d, int mid) {
    if (mid == d->sub_mid_ack) d->sub_ack_ok = true;
    if (mid == d->sub_mid_config) d->sub_config_ok = true;
}

void kaiser_tick(kaiser_device_t *d) {
    uint64_t now = k_now(d);
    if (d->restart_at_ms != 0 && now >= d->restart_at_ms) {
        d->restart_at_ms = 0;
        if (d->port.restart) d->port.restart(d->port.ctx);
        return;
    }
    if (!d->boot_stable && now - d->boot_ms >= KAISER_BOOT_STABLE_MS) {
        d->boot_stable = true;
        k_store_u32(d, "boot_short", 0);
    }
    run_sensors(d);
    run_actuators(d);
    run_offline(d);
    if (d->connected) {
        if (d->bootstrap_pending) {
            /* The first heartbeat waits for the SUBACKs of heartbeat/ack and config (10 s fallback). */
            if ((d->sub_ack_ok && d->sub_config_ok) || now - d->connected_ms >= 10000u) {
                d->bootstrap_pending = false;
                send_heartbeat(d);
            }
        } else {
            uint32_t iv = d->registered ? d->opt.heartbeat_ms : d->opt.heartbeat_gated_ms;
            if (now - d->last_hb_ms >= iv) send_heartbeat(d);
        }
        drain_outbox(d);
        run_diagnostics(d);
    }
    run_pressure(d);
}
