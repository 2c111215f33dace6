/*
 * Config flow (`config` -> `config_response`): correlation check, admission, size limit, dedupe,
 * generation guard, then upsert of sensors and actuators and replacement of the offline rules.
 * One config_response per push: status success | partial_success | error, with a failures list.
 * The applied sections are persisted (storage keys cfg_sensors, cfg_actuators, cfg_rules) and
 * re-applied at boot.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cJSON.h"
#include "kaiser_core.h"
#include "kaiser_internal.h"

void k_config_outcome(kaiser_device_t *d, const char *corr, const cJSON *root, const char *result, const char *code,
                      const char *reason, bool retryable);
int k_config_admit(kaiser_device_t *d, const char **code);

#define MAX_LISTED_FAILURES 10

typedef struct {
    cJSON *failures;
    int ok;
    int failed;
} agg_t;

static void add_failure(agg_t *g, const char *type, int gpio, int code, const char *err, const char *detail) {
    g->failed++;
    if (cJSON_GetArraySize(g->failures) >= MAX_LISTED_FAILURES) return;
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "type", type);
    cJSON_AddNumberToObject(f, "gpio", gpio);
    cJSON_AddNumberToObject(f, "error_code", code);
    cJSON_AddStringToObject(f, "error", err);
    cJSON_AddStringToObject(f, "detail", detail);
    cJSON_AddItemToArray(g->failures, f);
}

static const cJSON *field(const cJSON *o, const char *a, const char *b) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);
    if (v == NULL && b) v = cJSON_GetObjectItemCaseSensitive(o, b);
    return v;
}

static bool bool_field(const cJSON *o, const char *a, const char *b, bool dflt) {
    const cJSON *v = field(o, a, b);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

static double num_field(const cJSON *o, const char *a, double dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

/* Integer field clamped to [lo, hi] before the cast (a double outside the target range is UB in C). */
static long long int_field(const cJSON *o, const char *a, long long lo, long long hi, long long dflt) {
    double v = num_field(o, a, (double)dflt);
    if (!(v >= (double)lo)) return v != v ? dflt : lo; /* NaN -> default */
    if (v > (double)hi) return hi;
    return (long long)v;
}

static void normalise_type(const char *in, char *out, size_t cap) {
    char low[32];
    size_t i = 0;
    for (; in[i] && i + 1 < sizeof low; i++) low[i] = (char)tolower((unsigned char)in[i]);
    low[i] = '\0';
    static const char *const map[][2] = {{"temperature_ds18b20", "ds18b20"}, {"soil_moisture", "moisture"},
                                         {"temperature_sht31", "sht31"},      {"humidity_sht31", "sht31"},
                                         {"ph_sensor", "ph"},                 {"ec_sensor", "ec"}};
    for (size_t k = 0; k < sizeof map / sizeof map[0]; k++) {
        if (strcmp(low, map[k][0]) == 0) {
            k_copy(out, cap, map[k][1]);
            return;
        }
    }
    k_copy(out, cap, low);
}

static bool is_i2c(const char *t) { return strncmp(t, "sht31", 5) == 0 || strncmp(t, "bm", 2) == 0; }

static bool hex16(const char *s) {
    if (s == NULL || strlen(s) != 16) return false;
    for (int i = 0; i < 16; i++)
        if (!isxdigit((unsigned char)s[i])) return false;
    return true;
}

/* Read the required int gpio; returns -1 and records a failure when missing or mistyped. */
static int req_gpio(const cJSON *item, agg_t *g, const char *type) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(item, "gpio");
    if (v == NULL) {
        add_failure(g, type, 255, 2011, "MISSING_FIELD", "gpio is required");
        return -1;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valueint < 0 || v->valueint > KAISER_GPIO_MAX) {
        add_failure(g, type, 255, 2010, "TYPE_MISMATCH", "gpio must be an integer 0..48");
        return -1;
    }
    return v->valueint;
}

static const char *req_str(const cJSON *item, const char *a, const char *b, agg_t *g, const char *type, int gpio) {
    const cJSON *v = field(item, a, b);
    char detail[64];
    if (v == NULL) {
        snprintf(detail, sizeof detail, "%s is required", a);
        add_failure(g, type, gpio, 2011, "MISSING_FIELD", detail);
        return NULL;
    }
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0') {
        snprintf(detail, sizeof detail, "%s must be a non-empty string", a);
        add_failure(g, type, gpio, 2010, "TYPE_MISMATCH", detail);
        return NULL;
    }
    return v->valuestring;
}

static void apply_sensors(kaiser_device_t *d, const cJSON *arr, agg_t *g) {
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        if (!cJSON_IsObject(it)) {
            add_failure(g, "sensor", 255, 2010, "TYPE_MISMATCH", "sensor item must be an object");
            continue;
        }
        int gpio = req_gpio(it, g, "sensor");
        if (gpio < 0) continue;
        const char *stype = req_str(it, "sensor_type", NULL, g, "sensor", gpio);
        if (stype == NULL) continue;
        const char *name = req_str(it, "sensor_name", NULL, g, "sensor", gpio);
        if (name == NULL) continue;
        char type[24];
        normalise_type(stype, type, sizeof type);
        kaiser_sensor_t *slot = NULL, *free_slot = NULL;
        for (int i = 0; i < KAISER_MAX_SENSORS; i++) {
            kaiser_sensor_t *s = &d->sensors[i];
            if (s->used && s->gpio == gpio && strcmp(s->sensor_type, type) == 0) slot = s;
            if (!s->used && free_slot == NULL) free_slot = s;
        }
        if (!bool_field(it, "active", NULL, true)) {
            if (slot) memset(slot, 0, sizeof *slot);
            g->ok++;
            continue;
        }
        if (!is_i2c(type) && (gpio == 0 || gpio > 39)) {
            add_failure(g, "sensor", gpio, 2010, "VALIDATION_FAILED", "gpio not usable for this sensor type");
            continue;
        }
        const char *ow = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "onewire_address"));
        if (ow && ow[0] && !hex16(ow)) {
            add_failure(g, "sensor", gpio, 2010, "VALIDATION_FAILED", "onewire_address must be 16 hex chars");
            continue;
        }
        if (kaiser_find_actuator(d, gpio) != NULL && !is_i2c(type)) {
            add_failure(g, "sensor", gpio, 1002, "GPIO_CONFLICT", "gpio is used by an actuator");
            continue;
        }
        if (slot == NULL) slot = free_slot;
        if (slot == NULL) {
            add_failure(g, "sensor", gpio, 1041, "CONFIG_FAILED", "too many sensors");
            continue;
        }
        kaiser_sensor_t s = {0};
        s.used = true;
        s.gpio = gpio;
        k_copy(s.sensor_type, sizeof s.sensor_type, type);
        k_copy(s.name, sizeof s.name, name);
        k_copy(s.subzone_id, sizeof s.subzone_id, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "subzone_id")));
        k_copy(s.onewire_address, sizeof s.onewire_address, ow);
        s.i2c_address = (int)int_field(it, "i2c_address", 0, 127, 0);
        s.raw_mode = bool_field(it, "raw_mode", NULL, true);
        const char *mode = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "operating_mode"));
        s.continuous = mode == NULL || strcmp(mode, "continuous") == 0;
        double iv = num_field(it, "measurement_interval_seconds", 0);
        if (iv > 0) s.interval_ms = (uint32_t)(iv < 1 ? 1 : iv > 300 ? 300 : iv) * 1000u;
        s.last_ms = 0;
        *slot = s;
        g->ok++;
    }
}

static const char *const ACT_TYPES[] = {"pump", "valve", "pwm", "relay"};

static void apply_actuators(kaiser_device_t *d, const cJSON *arr, agg_t *g) {
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        if (!cJSON_IsObject(it)) {
            add_failure(g, "actuator", 255, 2010, "TYPE_MISMATCH", "actuator item must be an object");
            continue;
        }
        int gpio = req_gpio(it, g, "actuator");
        if (gpio < 0) continue;
        const char *type = req_str(it, "actuator_type", "type", g, "actuator", gpio);
        if (type == NULL) continue;
        const char *name = req_str(it, "actuator_name", "name", g, "actuator", gpio);
        if (name == NULL) continue;
        kaiser_actuator_t *cur = kaiser_find_actuator(d, gpio);
        if (!bool_field(it, "active", NULL, true)) {
            if (cur) {
                k_set_output(d, cur, false, 0, "firmware:config_remove");
                memset(cur, 0, sizeof *cur);
            }
            g->ok++;
            continue;
        }
        bool type_ok = false;
        for (int k = 0; k < 4; k++) type_ok = type_ok || strcmp(type, ACT_TYPES[k]) == 0;
        if (!type_ok) {
            add_failure(g, "actuator", gpio, 2010, "VALIDATION_FAILED", "actuator_type must be pump, valve, pwm or relay");
            continue;
        }
        bool conflict = false;
        for (int i = 0; i < KAISER_MAX_SENSORS; i++)
            conflict = conflict || (d->sensors[i].used && d->sensors[i].gpio == gpio && !is_i2c(d->sensors[i].sensor_type));
        if (conflict) {
            add_failure(g, "actuator", gpio, 1002, "GPIO_CONFLICT", "gpio is used by a sensor");
            continue;
        }
        double def_pwm = num_field(it, "default_pwm", 0), max_rt = num_field(it, "max_runtime_ms", 0);
        if (def_pwm < 0 || def_pwm > 255) {
            add_failure(g, "actuator", gpio, 2010, "OUT_OF_RANGE", "default_pwm must be 0..255");
            continue;
        }
        kaiser_actuator_t n = {0};
        n.used = true;
        n.gpio = gpio;
        k_copy(n.type, sizeof n.type, type);
        k_copy(n.name, sizeof n.name, name);
        k_copy(n.subzone_id, sizeof n.subzone_id, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "subzone_id")));
        n.inverted = bool_field(it, "inverted_logic", "inverted", false);
        n.default_state = bool_field(it, "default_state", NULL, false);
        n.default_pwm = (uint8_t)def_pwm;
        n.max_runtime_ms = max_rt > 0 ? (uint32_t)int_field(it, "max_runtime_ms", 1, 86400000, KAISER_DEFAULT_MAX_RUNTIME_MS)
                                      : KAISER_DEFAULT_MAX_RUNTIME_MS;
        if (cur != NULL) {
            bool structural = strcmp(cur->type, n.type) != 0 || cur->inverted != n.inverted;
            if (!structural) {
                /* soft fields in place: no GPIO touch, state and latch kept */
                k_copy(cur->name, sizeof cur->name, n.name);
                k_copy(cur->subzone_id, sizeof cur->subzone_id, n.subzone_id);
                cur->default_state = n.default_state;
                cur->default_pwm = n.default_pwm;
                cur->max_runtime_ms = n.max_runtime_ms;
                g->ok++;
                continue;
            }
            k_set_output(d, cur, false, 0, "firmware:reconfigure");
            memset(cur, 0, sizeof *cur);
        } else {
            for (int i = 0; i < KAISER_MAX_ACTUATORS && cur == NULL; i++)
                if (!d->actuators[i].used) cur = &d->actuators[i];
            if (cur == NULL) {
                add_failure(g, "actuator", gpio, 1051, "CONFIG_FAILED", "too many actuators");
                continue;
            }
        }
        k_copy(n.command_source, sizeof n.command_source, "firmware:config");
        *cur = n;
        cur->state = !n.default_state; /* force the first write to the default state */
        k_set_output(d, cur, n.default_state && !d->emergency, n.default_pwm, "firmware:config");
        g->ok++;
    }
}

static void apply_rules(kaiser_device_t *d, const cJSON *arr, agg_t *g) {
    kaiser_rule_t rules[KAISER_MAX_RULES];
    int n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        if (n >= KAISER_MAX_RULES) break; /* extras are ignored */
        if (!cJSON_IsObject(it)) {
            add_failure(g, "offline_rule", 255, 2010, "TYPE_MISMATCH", "rule must be an object");
            continue;
        }
        kaiser_rule_t r = {0};
        r.actuator_gpio = (int)int_field(it, "actuator_gpio", 0, 255, 255);
        r.sensor_gpio = (int)int_field(it, "sensor_gpio", 0, 255, 255);
        const char *vt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "sensor_value_type"));
        r.enabled = vt != NULL && strlen(vt) <= 23 && r.actuator_gpio != 255;
        k_copy(r.value_type, sizeof r.value_type, vt);
        r.activate_above = num_field(it, "activate_above", 0);
        r.deactivate_below = num_field(it, "deactivate_below", 0);
        r.activate_below = num_field(it, "activate_below", 0);
        r.deactivate_above = num_field(it, "deactivate_above", 0);
        r.is_active = bool_field(it, "current_state_active", NULL, false);
        const cJSON *tf = cJSON_GetObjectItemCaseSensitive(it, "time_filter");
        r.tf_days_mask = 0x7F;
        if (cJSON_IsObject(tf)) {
            r.tf_enabled = bool_field(tf, "enabled", NULL, false);
            double sh = num_field(tf, "start_hour", 0), sm = num_field(tf, "start_minute", 0);
            double eh = num_field(tf, "end_hour", 0), em = num_field(tf, "end_minute", 0);
            if (sh < 0 || sh > 23 || sm < 0 || sm > 59 || eh < 0 || eh > 23 || em < 0 || em > 59) {
                add_failure(g, "offline_rule", r.actuator_gpio, 2010, "OUT_OF_RANGE", "time_filter hour/minute out of range");
                continue;
            }
            r.tf_start_min = (uint16_t)(sh * 60 + sm);
            r.tf_end_min = (uint16_t)(eh * 60 + em);
            r.tf_days_mask = (uint8_t)(int_field(tf, "days_of_week_mask", 0, 0x7F, 0x7F) & 0x7F);
            const char *tz = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(tf, "timezone"));
            r.tf_berlin = tz && (!strcmp(tz, "Europe/Berlin") || !strcmp(tz, "CET") || !strcmp(tz, "CEST"));
        }
        if (strncmp(r.value_type, "__twindow_", 10) == 0) r.enabled = r.actuator_gpio != 255 && r.tf_enabled;
        rules[n++] = r;
        g->ok++;
    }
    memcpy(d->rules, rules, sizeof(kaiser_rule_t) * (size_t)n);
    d->rule_count = n;
}

/* Serialise the live config back into config-shaped arrays for storage. */
static void persist(kaiser_device_t *d) {
    cJSON *s = cJSON_CreateArray(), *a = cJSON_CreateArray(), *r = cJSON_CreateArray();
    for (int i = 0; i < KAISER_MAX_SENSORS; i++) {
        kaiser_sensor_t *x = &d->sensors[i];
        if (!x->used) continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "gpio", x->gpio);
        cJSON_AddStringToObject(o, "sensor_type", x->sensor_type);
        cJSON_AddStringToObject(o, "sensor_name", x->name);
        cJSON_AddStringToObject(o, "subzone_id", x->subzone_id);
        cJSON_AddStringToObject(o, "onewire_address", x->onewire_address);
        cJSON_AddNumberToObject(o, "i2c_address", x->i2c_address);
        cJSON_AddBoolToObject(o, "raw_mode", x->raw_mode);
        cJSON_AddStringToObject(o, "operating_mode", x->continuous ? "continuous" : "on_demand");
        cJSON_AddNumberToObject(o, "measurement_interval_seconds", x->interval_ms / 1000u);
        cJSON_AddItemToArray(s, o);
    }
    for (int i = 0; i < KAISER_MAX_ACTUATORS; i++) {
        kaiser_actuator_t *x = &d->actuators[i];
        if (!x->used) continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "gpio", x->gpio);
        cJSON_AddStringToObject(o, "actuator_type", x->type);
        cJSON_AddStringToObject(o, "actuator_name", x->name);
        cJSON_AddStringToObject(o, "subzone_id", x->subzone_id);
        cJSON_AddBoolToObject(o, "inverted_logic", x->inverted);
        cJSON_AddBoolToObject(o, "default_state", x->default_state);
        cJSON_AddNumberToObject(o, "default_pwm", x->default_pwm);
        cJSON_AddNumberToObject(o, "max_runtime_ms", x->max_runtime_ms);
        cJSON_AddItemToArray(a, o);
    }
    for (int i = 0; i < d->rule_count; i++) {
        kaiser_rule_t *x = &d->rules[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "actuator_gpio", x->actuator_gpio);
        cJSON_AddNumberToObject(o, "sensor_gpio", x->sensor_gpio);
        cJSON_AddStringToObject(o, "sensor_value_type", x->value_type);
        cJSON_AddNumberToObject(o, "activate_above", x->activate_above);
        cJSON_AddNumberToObject(o, "deactivate_below", x->deactivate_below);
        cJSON_AddNumberToObject(o, "activate_below", x->activate_below);
        cJSON_AddNumberToObject(o, "deactivate_above", x->deactivate_above);
        cJSON_AddBoolToObject(o, "current_state_active", x->is_active);
        cJSON *tf = cJSON_AddObjectToObject(o, "time_filter");
        cJSON_AddBoolToObject(tf, "enabled", x->tf_enabled);
        cJSON_AddNumberToObject(tf, "start_hour", x->tf_start_min / 60);
        cJSON_AddNumberToObject(tf, "start_minute", x->tf_start_min % 60);
        cJSON_AddNumberToObject(tf, "end_hour", x->tf_end_min / 60);
        cJSON_AddNumberToObject(tf, "end_minute", x->tf_end_min % 60);
        cJSON_AddNumberToObject(tf, "days_of_week_mask", x->tf_days_mask);
        cJSON_AddStringToObject(tf, "timezone", x->tf_berlin ? "Europe/Berlin" : "UTC");
        cJSON_AddItemToArray(r, o);
    }
    cJSON *arrs[3] = {s, a, r};
    static const char *const keys[3] = {"cfg_sensors", "cfg_actuators", "cfg_rules"};
    for (int i = 0; i < 3; i++) {
        char *txt = cJSON_PrintUnformatted(arrs[i]);
        if (txt) k_store(d, keys[i], txt);
        cJSON_free(txt);
        cJSON_Delete(arrs[i]);
    }
}

void k_load_persisted_config(kaiser_device_t *d) {
    if (d->port.storage_get == NULL) return;
    static const char *const keys[3] = {"cfg_sensors", "cfg_actuators", "cfg_rules"};
    char *buf = malloc(8192);
    if (buf == NULL) return;
    for (int i = 0; i < 3; i++) {
        int n = d->port.storage_get(d->port.ctx, keys[i], buf, 8192);
        if (n <= 0 || n >= 8192) continue;
        buf[n] = '\0';
        cJSON *arr = cJSON_Parse(buf);
        if (cJSON_IsArray(arr)) {
            agg_t g = {cJSON_CreateArray(), 0, 0};
            if (i == 0) apply_sensors(d, arr, &g);
            if (i == 1) apply_actuators(d, arr, &g);
            if (i == 2) apply_rules(d, arr, &g);
            cJSON_Delete(g.failures);
        }
        cJSON_Delete(arr);
    }
    free(buf);
}

int kaiser_apply_config_json(kaiser_device_t *d, const char *json) {
    cJSON *root = cJSON_Parse(json);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return -1;
    }
    agg_t g = {cJSON_CreateArray(), 0, 0};
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, "sensors");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "actuators");
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(root, "offline_rules");
    if (cJSON_IsArray(s)) apply_sensors(d, s, &g);
    if (cJSON_IsArray(a)) apply_actuators(d, a, &g);
    if (cJSON_IsArray(r)) apply_rules(d, r, &g);
    persist(d);
    int failed = g.failed;
    cJSON_Delete(g.failures);
    cJSON_Delete(root);
    return failed;
}

/* ------------------------------------------------------------------ config push */

static void respond(kaiser_device_t *d, const char *status, const char *type, int count, int failed, const char *message,
                    cJSON *failures, const char *error_code, const char *corr) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "seq", k_next_seq(d));
    cJSON_AddStringToObject(o, "status", status);
    cJSON_AddStringToObject(o, "type", type);
    cJSON_AddNumberToObject(o, "count", count);
    cJSON_AddNumberToObject(o, "failed_count", failed);
    cJSON_AddStringToObject(o, "message", message);
    if (error_code) cJSON_AddStringToObject(o, "error_code", error_code);
    if (failures != NULL) {
        int listed = cJSON_GetArraySize(failures);
        cJSON_AddItemToObject(o, "failures", failures);
        if (failed > listed) {
            cJSON_AddBoolToObject(o, "failures_truncated", true);
            cJSON_AddNumberToObject(o, "total_failures", failed);
        }
    }
    cJSON_AddStringToObject(o, "correlation_id", corr);
    k_send_json(d, KT_CONFIG_RESPONSE, 0, o);
}

static void whole_error(kaiser_device_t *d, const char *code, const char *message, const char *corr, const cJSON *root,
                        const char *outcome_result, const char *outcome_code, bool retryable) {
    respond(d, "error", "system", 0, 0, message, NULL, code, corr);
    k_config_outcome(d, corr, root, outcome_result, outcome_code, message, retryable);
}

void k_handle_config(kaiser_device_t *d, const char *payload, size_t len) {
    char fb[80];
    snprintf(fb, sizeof fb, "fw_%s_%llu_%u", d->esp_id, (unsigned long long)k_now(d), (unsigned)++d->fallback_n);
    cJSON *root = cJSON_ParseWithLength(payload, len);
    if (!cJSON_IsObject(root)) {
        whole_error(d, "JSON_PARSE_ERROR", "Config payload is not valid JSON", fb, NULL, "failed", "JSON_PARSE_ERROR", false);
        cJSON_Delete(root);
        return;
    }
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(root, "correlation_id");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    if (!cJSON_IsString(c) && cJSON_IsObject(data)) c = cJSON_GetObjectItemCaseSensitive(data, "correlation_id");
    if (!cJSON_IsString(c) || c->valuestring[0] == '\0') {
        whole_error(d, "CONTRACT_MISSING_CORRELATION", "correlation_id is required", fb, root, "failed",
                    "CONTRACT_CORRELATION_MISSING", false);
        kaiser_report_error(d, 4033, 2, "Config without correlation_id");
        cJSON_Delete(root);
        return;
    }
    const char *corr = c->valuestring;
    const char *rej;
    if (k_config_admit(d, &rej) != 0) {
        char msg[96];
        snprintf(msg, sizeof msg, "Rejected before execution (reason_code=%s)", rej);
        whole_error(d, "VALIDATION_FAILED", msg, corr, root, "rejected", rej, true);
        cJSON_Delete(root);
        return;
    }
    if (len >= KAISER_CONFIG_MAX_BYTES) {
        whole_error(d, "PAYLOAD_TOO_LARGE", "Config payload exceeds 4352 bytes", corr, root, "rejected", "VALIDATION_FAIL",
                    false);
        cJSON_Delete(root);
        return;
    }
    bool prev;
    if (kaiser_dedupe_seen(&d->dedupe, corr, &prev)) {
        d->stats.duplicates_ignored++;
        respond(d, prev ? "success" : "error", "system", 0, 0, "Duplicate config ignored (already applied)", NULL, NULL, corr);
        cJSON_Delete(root);
        return;
    }
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, "sensors");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "actuators");
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(root, "offline_rules");
    const cJSON *gj = cJSON_GetObjectItemCaseSensitive(root, "generation");
    if (gj == NULL && cJSON_IsObject(data)) gj = cJSON_GetObjectItemCaseSensitive(data, "generation");
    uint32_t gen = cJSON_IsNumber(gj) && gj->valuedouble > 0
                       ? (gj->valuedouble >= 4294967295.0 ? 4294967295u : (uint32_t)gj->valuedouble)
                       : 0;
    bool stale_s = gen && s && gen <= d->applied_gen_sensor;
    bool stale_a = gen && a && gen <= d->applied_gen_act;
    bool stale_r = gen && r && gen <= d->applied_gen_off;
    int present = (s != NULL) + (a != NULL) + (r != NULL);
    int stale = stale_s + stale_a + stale_r;
    if (gen && present > 0 && stale == present && gen <= d->applied_gen) {
        whole_error(d, "STALE_SCOPE", "Config generation is not newer than the applied one", corr, root, "rejected",
                    "STALE_SCOPE", false);
        kaiser_dedupe_remember(&d->dedupe, corr, false);
        cJSON_Delete(root);
        return;
    }
    agg_t g = {cJSON_CreateArray(), 0, 0};
    if (s != NULL && !cJSON_IsArray(s)) add_failure(&g, "sensor", 255, 2010, "TYPE_MISMATCH", "sensors must be an array");
    if (a != NULL && !cJSON_IsArray(a)) add_failure(&g, "actuator", 255, 2010, "TYPE_MISMATCH", "actuators must be an array");
    if (r != NULL && !cJSON_IsArray(r))
        add_failure(&g, "offline_rule", 255, 2010, "TYPE_MISMATCH", "offline_rules must be an array");
    if (stale_s) add_failure(&g, "sensor", 255, 2010, "STALE_SENSOR_SCOPE", "sensor scope generation is stale");
    if (stale_a) add_failure(&g, "actuator", 255, 2010, "STALE_ACTUATOR_SCOPE", "actuator scope generation is stale");
    if (stale_r) add_failure(&g, "offline_rule", 255, 2010, "STALE_OFFLINE_SCOPE", "offline scope generation is stale");
    if (cJSON_IsArray(s) && !stale_s) apply_sensors(d, s, &g);
    if (cJSON_IsArray(a) && !stale_a) apply_actuators(d, a, &g);
    if (cJSON_IsArray(r) && !stale_r) apply_rules(d, r, &g);
    persist(d);
    if (gen) {
        if (s && !stale_s) k_store_u32(d, "gen_sensor", d->applied_gen_sensor = gen);
        if (a && !stale_a) k_store_u32(d, "gen_act", d->applied_gen_act = gen);
        if (r && !stale_r) k_store_u32(d, "gen_off", d->applied_gen_off = gen);
        if (gen > d->applied_gen) k_store_u32(d, "applied_gen", d->applied_gen = gen);
    }
    const char *type = present == 1 ? (s ? "sensor" : a ? "actuator" : "offline_rules") : "system";
    const char *status = g.failed == 0 ? "success" : g.ok > 0 ? "partial_success" : "error";
    char msg[96];
    if (g.failed == 0)
        snprintf(msg, sizeof msg, "Configured %d item(s) successfully", g.ok);
    else
        snprintf(msg, sizeof msg, "%d item(s) configured, %d failed", g.ok, g.failed);
    cJSON *failures = g.failed ? g.failures : NULL;
    if (!g.failed) cJSON_Delete(g.failures);
    respond(d, status, type, g.ok, g.failed, msg, failures, NULL, corr);
    bool ok = g.failed == 0;
    k_config_outcome(d, corr, root, ok ? "persisted" : (g.ok ? "failed" : "failed"), ok ? "NONE" : "COMMIT_FAILED", msg,
                     false);
    d->stats.commands_executed++;
    kaiser_dedupe_remember(&d->dedupe, corr, ok);
    k_publish_all_status(d);
    cJSON_Delete(root);
}
