/*
 * Inbound message handling: heartbeat ACK (registration), actuator / sensor / system commands,
 * emergency, zone and subzone, server status. Every command that carries a correlation_id runs
 * at most once (dedupe ring, survives reconnects); every answer echoes the correlation_id.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cJSON.h"
#include "kaiser_core.h"
#include "kaiser_internal.h"

/* ------------------------------------------------------------------ JSON access */

static const char *jstr(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Metadata is read top-level or from a nested `data` object; top-level wins. */
static const cJSON *meta(const cJSON *root, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (v != NULL) return v;
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    return cJSON_IsObject(data) ? cJSON_GetObjectItemCaseSensitive(data, key) : NULL;
}

static const char *meta_str(const cJSON *root, const char *key) {
    const cJSON *v = meta(root, key);
    return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

static double meta_num(const cJSON *root, const char *key, double dflt) {
    const cJSON *v = meta(root, key);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static const char *corr_of(kaiser_device_t *d, const cJSON *root, char *fallback, size_t cap) {
    const char *c = root ? meta_str(root, "correlation_id") : NULL;
    if (c == NULL && root) c = meta_str(root, "intent_id");
    if (c != NULL) return c;
    snprintf(fallback, cap, "fw_%s_%llu_%u", d->esp_id, (unsigned long long)k_now(d), (unsigned)++d->fallback_n);
    return fallback;
}

/* ------------------------------------------------------------------ outcomes */

static void outcome(kaiser_device_t *d, const char *flow, const char *corr, const cJSON *root, const char *result,
                    const char *code, const char *reason, bool retryable) {
    bool terminal = strcmp(result, "accepted") != 0;
    const char *legacy = strcmp(result, "persisted") == 0 ? "success"
                         : (strcmp(result, "accepted") == 0 || strcmp(result, "applied") == 0) ? "processing"
                                                                                                : result;
    const char *intent = root ? meta_str(root, "intent_id") : NULL;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "seq", k_next_seq(d));
    cJSON_AddStringToObject(o, "flow", flow);
    cJSON_AddStringToObject(o, "intent_id", intent ? intent : corr);
    cJSON_AddStringToObject(o, "correlation_id", corr);
    cJSON_AddNumberToObject(o, "generation", root ? meta_num(root, "generation", 0) : 0);
    cJSON_AddNumberToObject(o, "created_at_ms", root ? meta_num(root, "created_at_ms", 0) : 0);
    cJSON_AddNumberToObject(o, "ttl_ms", root ? meta_num(root, "ttl_ms", 0) : 0);
    cJSON_AddNumberToObject(o, "epoch", d->safety_epoch);
    cJSON_AddStringToObject(o, "outcome", result);
    cJSON_AddNumberToObject(o, "contract_version", 2);
    cJSON_AddStringToObject(o, "semantic_mode", "target");
    cJSON_AddStringToObject(o, "legacy_status", legacy);
    cJSON_AddStringToObject(o, "target_status", result);
    cJSON_AddStringToObject(o, "code", code);
    cJSON_AddStringToObject(o, "reason", reason);
    cJSON_AddBoolToObject(o, "retryable", retryable);
    cJSON_AddBoolToObject(o, "critical", terminal);
    cJSON_AddNumberToObject(o, "retry_limit", 5);
    cJSON_AddNumberToObject(o, "retry_count", 0);
    cJSON_AddBoolToObject(o, "recovered", false);
    cJSON_AddStringToObject(o, "delivery_mode", "direct");
    cJSON_AddNumberToObject(o, "outcome_retry_count", 0);
    cJSON_AddNumberToObject(o, "outcome_recovered_count", 0);
    cJSON_AddNumberToObject(o, "outcome_drop_count_critical", d->outbox.dropped_critical);
    cJSON_AddNumberToObject(o, "outcome_final_confirmed_count", d->stats.commands_executed);
    cJSON_AddNumberToObject(o, "ts", (double)kaiser_ts(d));
    k_send_json(d, KT_INTENT_OUTCOME, 0, o);
}

/* Intent-chain lifecycle event (schema intent_chain_stage_v1), emitted when admission rejects. */
static void lifecycle_stage(kaiser_device_t *d, const char *flow, const char *stage, const char *corr,
                            const cJSON *root, const char *code, const char *detail) {
    const char *intent = root ? meta_str(root, "intent_id") : NULL;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "event_type", "intent_chain_stage");
    cJSON_AddStringToObject(o, "schema", "intent_chain_stage_v1");
    cJSON_AddStringToObject(o, "flow", flow);
    cJSON_AddStringToObject(o, "stage", stage);
    cJSON_AddStringToObject(o, "intent_id", intent ? intent : corr);
    cJSON_AddStringToObject(o, "correlation_id", corr);
    cJSON_AddNumberToObject(o, "generation", root ? meta_num(root, "generation", 0) : 0);
    cJSON_AddNumberToObject(o, "epoch", d->safety_epoch);
    cJSON_AddStringToObject(o, "code", code);
    cJSON_AddStringToObject(o, "detail", detail);
    cJSON_AddNumberToObject(o, "ts", (double)kaiser_ts(d));
    cJSON_AddNumberToObject(o, "seq", k_next_seq(d));
    k_send_json(d, KT_INTENT_LIFECYCLE, 0, o);
}

/* ------------------------------------------------------------------ admission */

typedef enum { SUB_ACTUATOR, SUB_SENSOR, SUB_SYSTEM, SUB_CONFIG } subtype_t;

static bool allow_listed(const char *cmd) {
    static const char *const ok[] = {"status", "diagnostics", "get_config", "set_log_level", "safe_mode"};
    for (size_t i = 0; cmd && i < sizeof ok / sizeof ok[0]; i++)
        if (strcmp(cmd, ok[i]) == 0) return true;
    return false;
}

/* Returns NULL when accepted, else the reject code. */
static const char *admit(kaiser_device_t *d, subtype_t st, const char *cmd) {
    if (d->state == KAISER_STATE_SAFE_MODE && st != SUB_SYSTEM) return "SAFETY_LOCKED";
    if (!d->registered) return "REGISTRATION_PENDING";
    bool pass = st == SUB_CONFIG || (st == SUB_SYSTEM && allow_listed(cmd));
    if (d->state == KAISER_STATE_PENDING_APPROVAL && !pass) return "PENDING_APPROVAL_BLOCKED";
    if (d->state == KAISER_STATE_ERROR && !pass) return "DEGRADED_MODE_BLOCKED";
    return NULL;
}

/* ------------------------------------------------------------------ heartbeat ACK */

static void ack_reject(kaiser_device_t *d, const char *code) {
    d->handover_reject_count++;
    d->stats.acks_rejected++;
    k_copy(d->handover_last_reject, sizeof d->handover_last_reject, code);
}

static void handle_heartbeat_ack(kaiser_device_t *d, const cJSON *root) {
    const char *status = jstr(root, "status");
    if (status == NULL) { ack_reject(d, "MISSING_ACK_STATUS"); return; }
    if (strcmp(status, "online") != 0 && strcmp(status, "approved") != 0 && strcmp(status, "pending_approval") != 0 &&
        strcmp(status, "rejected") != 0 && strcmp(status, "error") != 0)
        { ack_reject(d, "UNKNOWN_ACK_STATUS"); return; }
    const cJSON *ep = cJSON_GetObjectItemCaseSensitive(root, "handover_epoch");
    if (ep == NULL) { ack_reject(d, "MISSING_HANDOVER_EPOCH"); return; }
    if (!cJSON_IsNumber(ep) || ep->valuedouble < 0 || ep->valuedouble != floor(ep->valuedouble) ||
        ep->valuedouble > 4294967295.0)
        { ack_reject(d, "INVALID_HANDOVER_EPOCH_TYPE"); return; }
    uint32_t epoch = (uint32_t)ep->valuedouble;
    if (epoch == 0) { ack_reject(d, "INVALID_HANDOVER_EPOCH"); return; }
    if (d->offline == KAISER_OFFLINE_RECONNECTING || d->offline == KAISER_OFFLINE_ACTIVE) {
        if (d->active_handover_epoch == 0) { ack_reject(d, "MISSING_ACTIVE_SESSION_EPOCH"); return; }
        if (epoch != d->active_handover_epoch) { ack_reject(d, "HANDOVER_EPOCH_MISMATCH"); return; }
    }
    /* Contract-valid ACK, whatever its status: the gate opens. */
    bool was_registered = d->registered;
    d->registered = true;
    d->last_valid_ack_ms = k_now(d);
    d->stats.acks_valid++;
    k_offline_on_valid_ack(d, epoch);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(root, "server_time");
    if ((d->port.wall_s == NULL || d->port.wall_s(d->port.ctx) <= 0) && cJSON_IsNumber(st) && st->valuedouble > 1.7e9) {
        d->time_offset_s = (int64_t)st->valuedouble - (int64_t)((k_now(d) - d->boot_ms) / 1000u);
    }
    if (strcmp(status, "online") == 0 || strcmp(status, "approved") == 0) {
        if (!d->approved) {
            d->approved = true;
            k_store_u32(d, "dev_appr", 1);
        }
        if (d->state == KAISER_STATE_PENDING_APPROVAL || d->state == KAISER_STATE_ERROR || d->state == KAISER_STATE_BOOT)
            d->state = d->zone_assigned ? KAISER_STATE_ZONE_CONFIGURED : KAISER_STATE_OPERATIONAL;
    } else if (strcmp(status, "pending_approval") == 0) {
        if (d->approved) {
            d->approved = false;
            k_store_u32(d, "dev_appr", 0);
        }
        if (d->state != KAISER_STATE_SAFE_MODE) d->state = KAISER_STATE_PENDING_APPROVAL;
    } else if (strcmp(status, "rejected") == 0) {
        d->approved = false;
        k_store_u32(d, "dev_appr", 0);
        if (d->state != KAISER_STATE_ERROR) kaiser_report_error(d, 4200, 3, "Device rejected by server");
        d->state = KAISER_STATE_ERROR;
    }
    if (!was_registered) {
        /* heartbeat cadence switches from 5 s to the registered interval, counted from now */
        d->last_hb_ms = k_now(d);
    }
}

/* ------------------------------------------------------------------ actuator commands */

static void actuator_response(kaiser_device_t *d, int gpio, const char *cmd, double value, double duration, bool ok,
                              const char *message, const char *corr, const char *issued_by) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "esp_id", d->esp_id);
    cJSON_AddNumberToObject(o, "seq", k_next_seq(d));
    cJSON_AddStringToObject(o, "zone_id", d->zone_id);
    cJSON_AddNumberToObject(o, "ts", (double)kaiser_ts(d));
    cJSON_AddNumberToObject(o, "gpio", gpio);
    cJSON_AddStringToObject(o, "command", cmd);
    cJSON_AddNumberToObject(o, "value", isfinite(value) && fabs(value) < 1e9 ? round(value * 1000.0) / 1000.0 : 0.0);
    cJSON_AddNumberToObject(o, "duration", duration);
    cJSON_AddBoolToObject(o, "success", ok);
    cJSON_AddStringToObject(o, "message", message);
    cJSON_AddStringToObject(o, "correlation_id", corr);
    cJSON_AddStringToObject(o, "issued_by", issued_by);
    k_send_json(d, KT_ACTUATOR_RESPONSE, gpio, o);
}

/* Execute one actuator command; returns success and fills msg. */
static bool actuator_execute(kaiser_device_t *d, int gpio, const char *cmd, const cJSON *root, bool has_corr,
                             const char *issued_by, char *msg, size_t cap) {
    kaiser_actuator_t *a = kaiser_find_actuator(d, gpio);
    if (a == NULL) {
        snprintf(msg, cap, "Actuator not configured on GPIO %d. Configure via API first.", gpio);
        kaiser_report_error(d, 1052, 1, "Actuator not found");
        return false;
    }
    const cJSON *jv = cJSON_GetObjectItemCaseSensitive(root, "value");
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(root, "duration");
    double value = cJSON_IsNumber(jv) ? jv->valuedouble : (strcmp(cmd, "PWM") == 0 ? NAN : 1.0);
    double duration = cJSON_IsNumber(jd) ? jd->valuedouble : 0.0;
    bool known = !strcmp(cmd, "ON") || !strcmp(cmd, "OFF") || !strcmp(cmd, "PWM") || !strcmp(cmd, "TOGGLE");
    if (!known) {
        snprintf(msg, cap, "Unknown command: %s", cmd);
        return false;
    }
    if (!(duration >= 0.0 && duration <= 86400.0)) {
        snprintf(msg, cap, "Duration out of range (0-86400 s)");
        return false;
    }
    if (strcmp(cmd, "PWM") == 0 && !(value >= 0.0 && value <= 1.0)) {
        snprintf(msg, cap, "Value out of range (0.0-1.0)");
        return false;
    }
    bool target;
    uint8_t duty = 255;
    if (strcmp(cmd, "ON") == 0) target = true;
    else if (strcmp(cmd, "OFF") == 0) target = false;
    else if (strcmp(cmd, "PWM") == 0) {
        if (strcmp(a->type, "pwm") == 0) {
            duty = (uint8_t)lround(value * 255.0);
            target = duty > 0;
        } else {
            target = value >= 0.5;
        }
    } else {
        /* TOGGLE is not idempotent: it needs a correlation_id so a redelivery cannot flip it back. */
        if (!has_corr) {
            snprintf(msg, cap, "TOGGLE requires correlation_id");
            return false;
        }
        target = !a->state;
        duty = a->default_pwm ? a->default_pwm : 255;
    }
    /* OFF is always safe and always allowed; anything that could switch on is refused while latched. */
    if (target && (a->latched || d->emergency)) {
        snprintf(msg, cap, "Actuator in emergency stop state. Clear emergency first.");
        k_alert(d, gpio, "emergency_stop", "Command refused: emergency latch active");
        k_publish_status(d, a);
        return false;
    }
    if (d->offline == KAISER_OFFLINE_ACTIVE || d->offline == KAISER_OFFLINE_RECONNECTING) {
        for (int i = 0; i < d->rule_count; i++)
            if (d->rules[i].actuator_gpio == gpio) d->rules[i].server_override = true;
    }
    bool same = a->state == target && (!target || strcmp(a->type, "pwm") != 0 || a->pwm == duty);
    if (same) {
        if (target && duration > 0) a->duration_end_ms = k_now(d) + (uint64_t)(duration * 1000.0);
        k_copy(a->command_source, sizeof a->command_source, issued_by);
        snprintf(msg, cap, "Command executed (no change)");
        k_publish_status(d, a);
        return true;
    }
    if (target && k_pump_protected(d, a)) {
        snprintf(msg, cap, "Pump protection: activation limit reached (%d per hour)", KAISER_PUMP_MAX_ACTIVATIONS_PER_HOUR);
        kaiser_report_error(d, 1050, 1, "Pump protection: activation refused");
        return false;
    }
    if (!k_set_output(d, a, target, duty, issued_by)) {
        snprintf(msg, cap, target ? "Failed to turn actuator ON" : "Failed to turn actuator OFF");
        return false;
    }
    if (target && duration > 0) a->duration_end_ms = k_now(d) + (uint64_t)(duration * 1000.0);
    snprintf(msg, cap, "Command executed");
    k_publish_status(d, a);
    return true;
}

static void handle_actuator_command(kaiser_device_t *d, int gpio, const cJSON *root) {
    char fb[80], msg[128];
    const char *corr = corr_of(d, root, fb, sizeof fb);
    bool has_corr = meta_str(root, "correlation_id") != NULL || meta_str(root, "intent_id") != NULL;
    const char *raw_cmd = jstr(root, "command");
    char cmd[16] = "";
    for (size_t i = 0; raw_cmd && raw_cmd[i] && i + 1 < sizeof cmd; i++) {
        cmd[i] = (char)toupper((unsigned char)raw_cmd[i]);
        cmd[i + 1] = '\0';
    }
    const char *issued_by = jstr(root, "issued_by");
    if (issued_by == NULL || issued_by[0] == '\0') issued_by = "system:unknown";
    const cJSON *jv = cJSON_GetObjectItemCaseSensitive(root, "value");
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(root, "duration");
    double value = cJSON_IsNumber(jv) ? jv->valuedouble : 0.0;
    double duration = cJSON_IsNumber(jd) ? jd->valuedouble : 0.0;
    bool prev_ok;
    if (has_corr && kaiser_dedupe_seen(&d->dedupe, corr, &prev_ok)) {
        d->stats.duplicates_ignored++;
        actuator_response(d, gpio, cmd, value, duration, prev_ok, "Duplicate command ignored (already executed)", corr,
                          issued_by);
        return;
    }
    const char *rej = admit(d, SUB_ACTUATOR, cmd);
    bool ok = false;
    if (rej != NULL) {
        snprintf(msg, sizeof msg, "Rejected before execution (reason_code=%s)", rej);
        lifecycle_stage(d, "command", "admission_reject", corr, root, rej, msg);
        actuator_response(d, gpio, cmd, value, duration, false, msg, corr, issued_by);
        outcome(d, "command", corr, root, "rejected", rej, msg, true);
        return; /* not remembered: a retry after registration may run */
    }
    double ttl = meta_num(root, "ttl_ms", 0), created = meta_num(root, "created_at_ms", 0);
    int64_t now_wall_ms = kaiser_ts(d) * 1000;
    if (ttl > 0 && created > 0 && now_wall_ms > 0 && (double)now_wall_ms - created > ttl) {
        actuator_response(d, gpio, cmd, value, duration, false, "Command expired (TTL_EXPIRED)", corr, issued_by);
        outcome(d, "command", corr, root, "expired", "TTL_EXPIRED", "Command expired before execution", false);
        kaiser_dedupe_remember(&d->dedupe, corr, false);
        return;
    }
    ok = actuator_execute(d, gpio, cmd, root, has_corr, issued_by, msg, sizeof msg);
    d->stats.commands_executed++;
    actuator_response(d, gpio, cmd, value, duration, ok, msg, corr, issued_by);
    outcome(d, "command", corr, root, ok ? "applied" : "failed", ok ? "NONE" : "EXECUTE_FAIL", msg, !ok);
    if (has_corr) kaiser_dedupe_remember(&d->dedupe, corr, ok);
}

/* ------------------------------------------------------------------ emergency */

void k_stop_all(kaiser_device_t *d, const char *reason) {
    d->safety_epoch++;
    d->emergency = true;
    d->emergency_ms = k_now(d);
    d->offline = KAISER_OFFLINE_ONLINE;
    d->active_handover_epoch = 0;
    d->handover_completed_epoch = 0;
    for (int i = 0; i < d->rule_count; i++) {
        d->rules[i].is_active = false;
        d->rules[i].server_override = false;
    }
    for (int i = 0; i < KAISER_MAX_ACTUATORS; i++) {
        kaiser_actuator_t *a = &d->actuators[i];
        if (!a->used) continue;
        k_set_output(d, a, false, 0, "firmware:emergency_stop");
        a->latched = true;
        k_alert(d, a->gpio, "emergency_stop", reason);
        k_publish_status(d, a);
    }
}

static int clear_latches(kaiser_device_t *d) {
    int n = 0;
    d->emergency = false;
    for (int i = 0; i < KAISER_MAX_ACTUATORS; i++) {
        if (d->actuators[i].used && d->actuators[i].latched) {
            d->actuators[i].latched = false;
            n++;
        }
    }
    return n;
}

static void handle_emergency(kaiser_device_t *d, const cJSON *root) {
    char fb[80];
    const char *corr = corr_of(d, root, fb, sizeof fb);
    const char *cmd = jstr(root, "command");
    bool prev;
    if (meta_str(root, "correlation_id") && kaiser_dedupe_seen(&d->dedupe, corr, &prev)) {
        d->stats.duplicates_ignored++;
        return; /* a stop or clear runs once; the first answer stands */
    }
    if (cmd && strcmp(cmd, "emergency_stop") == 0) {
        const char *reason = jstr(root, "reason");
        k_stop_all(d, reason ? reason : "Emergency stop");
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "ts", (double)kaiser_ts(d));
        cJSON_AddStringToObject(o, "esp_id", d->esp_id);
        cJSON_AddStringToObject(o, "correlation_id", corr);
        cJSON_AddStringToObject(o, "command", "emergency_stop");
        cJSON_AddNumberToObject(o, "gpio_count", k_actuator_count(d));
        cJSON_AddStringToObject(o, "outcome", "executed");
        cJSON_AddNumberToObject(o, "seq", k_next_seq(d));
        k_send_json(d, KT_EMERGENCY_ACK, 0, o);
        outcome(d, "command", corr, root, "applied", "EMERGENCY_STOP_TRIGGERED", "Emergency stop executed", false);
        d->stats.commands_executed++;
        kaiser_dedupe_remember(&d->dedupe, corr, true);
    } else if (cmd && strcmp(cmd, "clear_emergency") == 0) {
        bool early = d->emergency && k_now(d) - d->emergency_ms < KAISER_EMERGENCY_HOLDOFF_MS;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "ts", (double)kaiser_ts(d));
        cJSON_AddStringToObject(o, "esp_id", d->esp_id);
        cJSON_AddStringToObject(o, "correlation_id", corr);
        cJSON_AddStringToObject(o, "command", "clear_emergency");
        if (early) {
            cJSON_AddStringToObject(o, "state", "rejected");
            cJSON_AddStringToObject(o, "reason", "clear_failed: less than 5 s since the emergency stop");
        } else {
            clear_latches(d);
            cJSON_AddStringToObject(o, "state", "cleared");
        }
        cJSON_AddNumberToObject(o, "seq", k_next_seq(d));
        k_send_json(d, KT_RECOVERY_CONFIRM, 0, o);
        if (early) {
            outcome(d, "command", corr, root, "failed", "EMERGENCY_CLEAR_REJECTED", "Clear within 5 s hold-off", true);
            /* not remembered: the server may retry after the hold-off */
        } else {
            outcome(d, "command", corr, root, "applied", "EMERGENCY_CLEAR_APPLIED", "Emergency cleared; actuators stay OFF",
                    false);
            kaiser_dedupe_remember(&d->dedupe, corr, true);
            k_publish_all_status(d);
        }
        d->stats.commands_executed++;
    } else {
        outcome(d, "command", corr, root, "rejected", "VALIDATION_FAIL", "Unknown emergency command", false);
        kaiser_report_error(d, 3016, 2, "Malformed emergency payload");
    }
}

/* Broadcast contract: returns NULL when valid, else the detail code; *stop says whether to fail safe. */
const char *kaiser_broadcast_contract(const cJSON *root, bool *stop);
const char *kaiser_broadcast_contract(const cJSON *root, bool *stop) {
    *stop = false;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(root, "command");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "action");
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(root, "auth_token");
    if (c != NULL && !cJSON_IsString(c)) return (*stop = true, "FIELD_TYPE_COMMAND");
    if (tok != NULL && !cJSON_IsString(tok)) return (*stop = true, "FIELD_TYPE_AUTH_TOKEN");
    if (a != NULL && !cJSON_IsString(a)) return "FIELD_TYPE_ACTION";
    static const char *const str_fields[] = {"reason", "issued_by", "timestamp"};
    static const char *const codes[] = {"FIELD_TYPE_REASON", "FIELD_TYPE_ISSUED_BY", "FIELD_TYPE_TIMESTAMP"};
    for (int i = 0; i < 3; i++) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(root, str_fields[i]);
        if (f != NULL && !cJSON_IsString(f) && !(i == 2 && cJSON_IsNumber(f))) return codes[i];
    }
    if (c != NULL && a != NULL && strcmp(c->valuestring, a->valuestring) != 0) return (*stop = true, "CONFLICTING_COMMAND_FIELDS");
    const char *cmd = c ? c->valuestring : a ? a->valuestring : NULL;
    if (cmd == NULL) return "MISSING_COMMAND_FIELD";
    if (strcmp(cmd, "stop_all") != 0 && strcmp(cmd, "emergency_stop") != 0) return "UNKNOWN_COMMAND_VALUE";
    return NULL;
}

static void handle_broadcast(kaiser_device_t *d, const cJSON *root) {
    char fb[80];
    const char *corr = corr_of(d, root, fb, sizeof fb);
    bool stop;
    const char *err = kaiser_broadcast_contract(root, &stop);
    if (err != NULL) {
        outcome(d, "command", corr, root, "failed", "EMERGENCY_CONTRACT_MISMATCH", err, false);
        kaiser_report_error(d, 3016, 2, "Broadcast emergency contract mismatch");
        if (stop) k_stop_all(d, "Fail-safe stop: broadcast contract mismatch");
        return;
    }
    const char *reason = jstr(root, "reason");
    k_stop_all(d, reason ? reason : "Broadcast emergency stop");
    outcome(d, "command", corr, root, "applied", "BROADCAST_EMERGENCY_STOP_TRIGGERED", "Broadcast emergency stop", false);
}

/* ------------------------------------------------------------------ sensor command */

static void handle_sensor_command(kaiser_device_t *d, int gpio, const cJSON *root) {
    char fb[80];
    const char *corr = corr_of(d, root, fb, sizeof fb);
    const char *cmd = jstr(root, "command");
    const char *request_id = jstr(root, "request_id");
    bool prev;
    if (meta_str(root, "correlation_id") && kaiser_dedupe_seen(&d->dedupe, corr, &prev)) {
        d->stats.duplicates_ignored++;
        return;
    }
    const char *reason = "NONE";
    bool ok = false;
    int32_t raw = 0;
    const char *quality = "error";
    kaiser_sensor_t *s = NULL;
    for (int i = 0; i < KAISER_MAX_SENSORS; i++)
        if (d->sensors[i].used && d->sensors[i].gpio == gpio) s = &d->sensors[i];
    const char *rej = admit(d, SUB_SENSOR, cmd);
    if (cmd == NULL || strcmp(cmd, "measure") != 0) reason = "UNKNOWN_COMMAND";
    else if (rej != NULL) reason = rej;
    else if (s == NULL) reason = "SENSOR_NOT_FOUND";
    else if (k_measure(d, s, &raw, &quality) <= 0) reason = "MEASUREMENT_FAILED";
    else ok = true;
    if (request_id == NULL || request_id[0] == '\0') request_id = corr;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "request_id", request_id);
    cJSON_AddNumberToObject(o, "gpio", gpio);
    cJSON_AddStringToObject(o, "command", cmd ? cmd : "");
    cJSON_AddBoolToObject(o, "success", ok);
    cJSON_AddBoolToObject(o, "measurement_ok", ok);
    cJSON_AddBoolToObject(o, "publish_ok", ok);
    cJSON_AddBoolToObject(o, "timeout", false);
    cJSON_AddStringToObject(o, "reason_code", reason);
    cJSON_AddStringToObject(o, "quality", ok ? quality : "error");
    cJSON_AddStringToObject(o, "sensor_type", s ? s->sensor_type : "");
    cJSON_AddNumberToObject(o, "raw", raw);
    cJSON_AddNumberToObject(o, "ts", (double)kaiser_ts(d));
    cJSON_AddNumberToObject(o, "seq", k_next_seq(d));
    const char *intent = meta_str(root, "intent_id");
    cJSON_AddStringToObject(o, "intent_id", intent ? intent : corr);
    cJSON_AddStringToObject(o, "correlation_id", corr);
    cJSON_AddNumberToObject(o, "ttl_ms", meta_num(root, "ttl_ms", 0));
    k_send_json(d, KT_SENSOR_RESPONSE, gpio, o);
    outcome(d, "command", corr, root, ok ? "applied" : (rej ? "rejected" : "failed"), reason, ok ? "Measured" : reason,
            !ok);
    d->stats.commands_executed++;
    if (rej == NULL) kaiser_dedupe_remember(&d->dedupe, corr, ok);
}

/* ------------------------------------------------------------------ system commands */

static cJSON *sys_reply(kaiser_device_t *d, const char *cmd, bool ok, const char *corr, const char *message) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "command", cmd);
    cJSON_AddBoolToObject(o, "success", ok);
    cJSON_AddStringToObject(o, "correlation_id", corr);
    cJSON_AddStringToObject(o, "message", message);
    cJSON_AddNumberToObject(o, "ts", (double)kaiser_ts(d));
    cJSON_AddNumberToObject(o, "seq", k_next_seq(d));
    cJSON_AddStringToObject(o, "esp_id", d->esp_id);
    return o;
}

static void add_status_fields(kaiser_device_t *d, cJSON *o, const kaiser_vitals_t *v) {
    cJSON_AddNumberToObject(o, "state", d->state);
    cJSON_AddNumberToObject(o, "uptime", (double)((k_now(d) - d->boot_ms) / 1000u));
    cJSON_AddNumberToObject(o, "heap_free", v->heap_free);
    cJSON_AddNumberToObject(o, "wifi_rssi", v->wifi_rssi);
    cJSON_AddNumberToObject(o, "sensor_count", k_sensor_count(d));
    cJSON_AddNumberToObject(o, "actuator_count", k_actuator_count(d));
    cJSON_AddStringToObject(o, "zone_id", d->zone_id);
    cJSON_AddBoolToObject(o, "zone_assigned", d->zone_assigned);
}

static const char *param_str(const cJSON *root, const char *key) {
    const char *s = jstr(root, key);
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "params");
    if (s == NULL && cJSON_IsObject(p)) s = jstr(p, key);
    return s;
}

static bool param_true(const cJSON *root, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "params");
    if (v == NULL && cJSON_IsObject(p)) v = cJSON_GetObjectItemCaseSensitive(p, key);
    return cJSON_IsTrue(v);
}

static void handle_system_command(kaiser_device_t *d, const cJSON *root) {
    char fb[80];
    const char *corr = corr_of(d, root, fb, sizeof fb);
    const char *cmd = jstr(root, "command");
    if (cmd == NULL) cmd = "";
    bool prev;
    if (meta_str(root, "correlation_id") && kaiser_dedupe_seen(&d->dedupe, corr, &prev)) {
        d->stats.duplicates_ignored++;
        k_send_json(d, KT_SYSTEM_COMMAND_RESPONSE, 0,
                    sys_reply(d, cmd, prev, corr, "Duplicate command ignored (already executed)"));
        return;
    }
    const char *rej = admit(d, SUB_SYSTEM, cmd);
    if (rej != NULL) {
        char msg[96];
        snprintf(msg, sizeof msg, "Rejected before execution (reason_code=%s)", rej);
        cJSON *o = sys_reply(d, cmd, false, corr, msg);
        cJSON_AddStringToObject(o, "error", rej);
        cJSON_AddStringToObject(o, "reason_code", rej);
        lifecycle_stage(d, "command", "admission_reject", corr, root, rej, msg);
        k_send_json(d, KT_SYSTEM_COMMAND_RESPONSE, 0, o);
        outcome(d, "command", corr, root, "rejected", rej, msg, true);
        return;
    }
    kaiser_vitals_t v;
    k_vitals(d, &v);
    cJSON *o = NULL;
    bool ok = true;
    if (strcmp(cmd, "status") == 0) {
        o = sys_reply(d, cmd, true, corr, "Status");
        add_status_fields(d, o, &v);
    } else if (strcmp(cmd, "diagnostics") == 0) {
        o = sys_reply(d, cmd, true, corr, "Diagnostics");
        add_status_fields(d, o, &v);
        cJSON_AddNumberToObject(o, "heap_min", v.heap_min_free);
        cJSON_AddStringToObject(o, "sdk_version", KAISER_FW_VERSION);
        cJSON_AddStringToObject(o, "wifi_ip", v.wifi_ip);
        cJSON_AddStringToObject(o, "master_zone_id", d->master_zone_id);
        cJSON_AddStringToObject(o, "kaiser_id", d->kaiser_id);
        cJSON_AddNumberToObject(o, "boot_count", d->boot_count);
        cJSON_AddStringToObject(o, "mqtt_cb_state", d->breaker.state == KAISER_CB_CLOSED ? "CLOSED" : "OPEN");
        cJSON_AddNumberToObject(o, "offline_buffer_fill", (double)d->outbox.count);
    } else if (strcmp(cmd, "get_config") == 0) {
        o = sys_reply(d, cmd, true, corr, "Current config");
        cJSON *z = cJSON_AddObjectToObject(o, "zone");
        cJSON_AddStringToObject(z, "zone_id", d->zone_id);
        cJSON_AddStringToObject(z, "master_zone_id", d->master_zone_id);
        cJSON_AddStringToObject(z, "zone_name", d->zone_name);
        cJSON_AddStringToObject(z, "kaiser_id", d->kaiser_id);
        cJSON_AddBoolToObject(z, "zone_assigned", d->zone_assigned);
        cJSON *sa = cJSON_AddArrayToObject(o, "sensors");
        for (int i = 0; i < KAISER_MAX_SENSORS; i++) {
            if (!d->sensors[i].used) continue;
            cJSON *s = cJSON_CreateObject();
            cJSON_AddNumberToObject(s, "gpio", d->sensors[i].gpio);
            cJSON_AddStringToObject(s, "sensor_type", d->sensors[i].sensor_type);
            cJSON_AddItemToArray(sa, s);
        }
        cJSON_AddNumberToObject(o, "sensor_count", k_sensor_count(d));
        cJSON *aa = cJSON_AddArrayToObject(o, "actuators");
        for (int i = 0; i < KAISER_MAX_ACTUATORS; i++) {
            if (!d->actuators[i].used) continue;
            cJSON *a = cJSON_CreateObject();
            cJSON_AddNumberToObject(a, "gpio", d->actuators[i].gpio);
            cJSON_AddStringToObject(a, "actuator_type", d->actuators[i].type);
            cJSON_AddItemToArray(aa, a);
        }
        cJSON_AddNumberToObject(o, "actuator_count", k_actuator_count(d));
    } else if (strcmp(cmd, "safe_mode") == 0) {
        k_stop_all(d, "safe_mode system command");
        o = sys_reply(d, cmd, true, corr, "All actuators stopped and latched");
    } else if (strcmp(cmd, "exit_safe_mode") == 0) {
        int n = clear_latches(d);
        char msg[96];
        if (d->state == KAISER_STATE_SAFE_MODE) {
            /* leave the boot-loop lockout: the operator has looked at the device */
            d->state = d->approved ? (d->zone_assigned ? KAISER_STATE_ZONE_CONFIGURED : KAISER_STATE_OPERATIONAL)
                                   : KAISER_STATE_PENDING_APPROVAL;
            d->short_boots = 0;
            k_store_u32(d, "boot_short", 0);
        }
        snprintf(msg, sizeof msg, "Cleared %d latch(es); actuators stay OFF; state %s", n, k_state_name(d->state));
        o = sys_reply(d, cmd, true, corr, msg);
    } else if (strcmp(cmd, "set_log_level") == 0) {
        const char *lvl = param_str(root, "level");
        static const char *const levels[] = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"};
        ok = false;
        for (int i = 0; lvl && i < 5; i++) ok = ok || strcmp(lvl, levels[i]) == 0;
        if (ok) {
            k_copy(d->log_level, sizeof d->log_level, lvl);
            k_store(d, "log_level", lvl);
            o = sys_reply(d, cmd, true, corr, "Log level set");
            cJSON_AddStringToObject(o, "level", lvl);
            cJSON_AddBoolToObject(o, "persisted", true);
        } else {
            o = sys_reply(d, cmd, false, corr, "Invalid log level");
            cJSON_AddStringToObject(o, "requested_level", lvl ? lvl : "");
        }
    } else if (strcmp(cmd, "onewire/scan") == 0) {
        const cJSON *pp = cJSON_GetObjectItemCaseSensitive(root, "params");
        const cJSON *pin = cJSON_IsObject(pp) ? cJSON_GetObjectItemCaseSensitive(pp, "pin") : NULL;
        int p = cJSON_IsNumber(pin) ? pin->valueint : 4;
        o = sys_reply(d, cmd, true, corr, "OneWire scan complete");
        cJSON *devs = cJSON_AddArrayToObject(o, "devices");
        int found = 0;
        for (int i = 0; i < KAISER_MAX_SENSORS; i++) {
            kaiser_sensor_t *s = &d->sensors[i];
            if (!s->used || s->gpio != p || strcmp(s->sensor_type, "ds18b20") != 0) continue;
            cJSON *dv = cJSON_CreateObject();
            cJSON_AddStringToObject(dv, "rom_code", s->onewire_address);
            cJSON_AddStringToObject(dv, "device_type", "DS18B20");
            cJSON_AddNumberToObject(dv, "pin", p);
            cJSON_AddItemToArray(devs, dv);
            found++;
        }
        cJSON_AddStringToObject(o, "status", "ok");
        cJSON_AddNumberToObject(o, "found_count", found);
        cJSON_AddNumberToObject(o, "pin", p);
    } else if (strcmp(cmd, "reboot") == 0) {
        o = sys_reply(d, cmd, true, corr, "Rebooting in 1 s");
        d->restart_at_ms = k_now(d) + 1000u;
    } else if (strcmp(cmd, "factory_reset") == 0 && param_true(root, "confirm")) {
        static const char *const keys[] = {"zone_id", "master_zone_id", "zone_name", "kaiser_id", "dev_appr", "subzones",
                                           "cfg_sensors", "cfg_actuators", "cfg_rules", "applied_gen", "gen_sensor",
                                           "gen_act", "gen_off", "log_level"};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) k_store(d, keys[i], NULL);
        o = sys_reply(d, cmd, true, corr, "Factory reset initiated; rebooting in 3 s");
        cJSON_AddStringToObject(o, "status", "factory_reset_initiated");
        d->restart_at_ms = k_now(d) + 3000u;
    } else {
        ok = false;
        o = sys_reply(d, cmd, false, corr, "Unknown command");
        cJSON_AddStringToObject(o, "error", "Unknown command");
    }
    k_send_json(d, KT_SYSTEM_COMMAND_RESPONSE, 0, o);
    outcome(d, "command", corr, root, ok ? "applied" : "failed", ok ? "NONE" : "EXECUTE_FAIL", cmd, false);
    d->stats.commands_executed++;
    kaiser_dedupe_remember(&d->dedupe, corr, ok);
}

/* ------------------------------------------------------------------ zone / subzone */

static cJSON *zone_ack(kaiser_device_t *d, const char *status, const char *corr) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "esp_id", d->esp_id);
    cJSON_AddStringToObject(o, "status", status);
    cJSON_AddStringToObject(o, "zone_id", d->zone_id);
    cJSON_AddStringToObject(o, "master_zone_id", d->master_zone_id);
    cJSON_AddNumberToObject(o, "ts", (double)kaiser_ts(d));
    cJSON_AddNumberToObject(o, "seq", k_next_seq(d));
    cJSON_AddStringToObject(o, "correlation_id", corr);
    return o;
}

static kaiser_subzone_t *find_subzone(kaiser_device_t *d, const char *id);
static bool subzone_ack(kaiser_device_t *d, const char *status, const char *sid, const char *corr, const char *message,
                        const char *reason_code);
static bool handle_subzone(kaiser_device_t *d, kaiser_topic_kind_t kind, const cJSON *root, const char *corr);

static bool zone_id_ok(const char *s) { return s[0] == '\0' || (strlen(s) <= 32 && kaiser_esp_id_valid(s)); }

static bool handle_zone_assign(kaiser_device_t *d, const cJSON *root, const char *corr) {
    const char *zid = jstr(root, "zone_id");
    const char *mz = jstr(root, "master_zone_id");
    const char *zn = jstr(root, "zone_name");
    const char *kid = jstr(root, "kaiser_id");
    if (kid == NULL || kid[0] == '\0') kid = d->kaiser_id;
    if (mz == NULL) mz = "";
    if (zn == NULL) zn = "";
    if (zid == NULL || !zone_id_ok(zid) || strlen(mz) > 32 || strlen(zn) > 64 || !kaiser_kaiser_id_valid(kid)) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "esp_id", d->esp_id);
        cJSON_AddStringToObject(o, "status", "error");
        cJSON_AddNumberToObject(o, "ts", (double)kaiser_ts(d));
        cJSON_AddNumberToObject(o, "seq", k_next_seq(d));
        cJSON_AddStringToObject(o, "message", "Zone validation failed");
        cJSON_AddStringToObject(o, "correlation_id", corr);
        k_send_json(d, KT_ZONE_ACK, 0, o);
        return false;
    }
    if (zid[0] == '\0') {
        memset(d->subzones, 0, sizeof d->subzones);
        k_persist_subzones(d);
        d->zone_id[0] = d->master_zone_id[0] = d->zone_name[0] = '\0';
        d->zone_assigned = false;
        k_store(d, "zone_id", NULL);
        k_store(d, "master_zone_id", NULL);
        k_store(d, "zone_name", NULL);
        k_send_json(d, KT_ZONE_ACK, 0, zone_ack(d, "zone_removed", corr));
        d->state = KAISER_STATE_PENDING_APPROVAL;
        k_force_heartbeat(d);
        return true;
    }
    k_copy(d->zone_id, sizeof d->zone_id, zid);
    k_copy(d->master_zone_id, sizeof d->master_zone_id, mz);
    k_copy(d->zone_name, sizeof d->zone_name, zn);
    d->zone_assigned = true;
    k_store(d, "zone_id", zid);
    k_store(d, "master_zone_id", mz);
    k_store(d, "zone_name", zn);
    k_send_json(d, KT_ZONE_ACK, 0, zone_ack(d, "zone_assigned", corr));
    if (strcmp(kid, d->kaiser_id) != 0) {
        k_copy(d->kaiser_id, sizeof d->kaiser_id, kid);
        k_store(d, "kaiser_id", kid);
        k_subscribe_all(d); /* the old prefix goes away with the next reconnect */
    }
    if (d->state != KAISER_STATE_ERROR && d->state != KAISER_STATE_SAFE_MODE && d->state != KAISER_STATE_PENDING_APPROVAL)
        d->state = KAISER_STATE_ZONE_CONFIGURED;
    k_force_heartbeat(d);
    return true;
}

/* Zone and subzone commands run at most once per correlation_id; a duplicate gets the ack of the
 * current state (or an error ack if the first run failed) without touching anything. */
static void handle_zone_family(kaiser_device_t *d, kaiser_topic_kind_t kind, const cJSON *root) {
    char fb[80];
    const char *corr = corr_of(d, root, fb, sizeof fb);
    bool has_corr = meta_str(root, "correlation_id") != NULL || meta_str(root, "intent_id") != NULL;
    bool prev;
    if (has_corr && kaiser_dedupe_seen(&d->dedupe, corr, &prev)) {
        d->stats.duplicates_ignored++;
        if (kind == KT_ZONE_ASSIGN) {
            cJSON *o = zone_ack(d, !prev ? "error" : d->zone_assigned ? "zone_assigned" : "zone_removed", corr);
            cJSON_AddStringToObject(o, "message", "Duplicate command ignored (already executed)");
            k_send_json(d, KT_ZONE_ACK, 0, o);
        } else {
            const char *sid = jstr(root, "subzone_id");
            kaiser_subzone_t *sz = find_subzone(d, sid);
            const char *status = !prev                       ? "error"
                                 : kind == KT_SUBZONE_ASSIGN ? "subzone_assigned"
                                 : kind == KT_SUBZONE_REMOVE ? "subzone_removed"
                                 : (sz && sz->safe_mode)     ? "safe_mode_enabled"
                                                             : "safe_mode_disabled";
            subzone_ack(d, status, sid, corr, prev ? NULL : "Duplicate command ignored (already executed)",
                        prev ? NULL : "DUPLICATE");
        }
        return;
    }
    bool ok = kind == KT_ZONE_ASSIGN ? handle_zone_assign(d, root, corr) : handle_subzone(d, kind, root, corr);
    d->stats.commands_executed++;
    if (has_corr) kaiser_dedupe_remember(&d->dedupe, corr, ok);
}

static bool subzone_ack(kaiser_device_t *d, const char *status, const char *sid, const char *corr, const char *message,
                        const char *reason_code) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "esp_id", d->esp_id);
    cJSON_AddStringToObject(o, "status", status);
    cJSON_AddStringToObject(o, "subzone_id", sid ? sid : "unknown");
    cJSON_AddNumberToObject(o, "timestamp", (double)kaiser_ts(d));
    cJSON_AddNumberToObject(o, "seq", k_next_seq(d));
    cJSON_AddStringToObject(o, "correlation_id", corr);
    if (message) {
        cJSON_AddStringToObject(o, "message", message);
        if (reason_code) cJSON_AddStringToObject(o, "reason_code", reason_code);
        else cJSON_AddNumberToObject(o, "error_code", 2506);
    }
    k_send_json(d, KT_SUBZONE_ACK, 0, o);
    return strcmp(status, "error") != 0;
}

static kaiser_subzone_t *find_subzone(kaiser_device_t *d, const char *id) {
    for (int i = 0; id && i < KAISER_MAX_SUBZONES; i++)
        if (d->subzones[i].used && strcmp(d->subzones[i].id, id) == 0) return &d->subzones[i];
    return NULL;
}

/* Subzones persist as one JSON array under storage key "subzones" (re-read by kaiser_init). */
void k_persist_subzones(kaiser_device_t *d) {
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < KAISER_MAX_SUBZONES; i++) {
        kaiser_subzone_t *z = &d->subzones[i];
        if (!z->used) continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "subzone_id", z->id);
        cJSON_AddStringToObject(o, "subzone_name", z->name);
        cJSON_AddStringToObject(o, "parent_zone_id", z->parent_zone_id);
        cJSON_AddItemToObject(o, "assigned_gpios", cJSON_CreateIntArray(z->gpios, z->gpio_count));
        cJSON_AddBoolToObject(o, "safe_mode_active", z->safe_mode);
        cJSON_AddItemToArray(arr, o);
    }
    char *txt = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    if (txt) k_store(d, "subzones", txt);
    cJSON_free(txt);
}

void k_load_subzones(kaiser_device_t *d, const char *json) {
    cJSON *arr = cJSON_Parse(json);
    const cJSON *o;
    int n = 0;
    cJSON_ArrayForEach(o, arr) {
        if (n >= KAISER_MAX_SUBZONES || !cJSON_IsObject(o)) break;
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "subzone_id"));
        if (id == NULL || id[0] == '\0') continue;
        kaiser_subzone_t *z = &d->subzones[n++];
        z->used = true;
        k_copy(z->id, sizeof z->id, id);
        k_copy(z->name, sizeof z->name, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "subzone_name")));
        k_copy(z->parent_zone_id, sizeof z->parent_zone_id,
               cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "parent_zone_id")));
        z->safe_mode = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "safe_mode_active"));
        const cJSON *g;
        cJSON_ArrayForEach(g, cJSON_GetObjectItemCaseSensitive(o, "assigned_gpios")) {
            if (z->gpio_count < 16 && cJSON_IsNumber(g) && g->valueint >= 0 && g->valueint <= KAISER_GPIO_MAX)
                z->gpios[z->gpio_count++] = g->valueint;
        }
    }
    cJSON_Delete(arr);
}

static bool handle_subzone(kaiser_device_t *d, kaiser_topic_kind_t kind, const cJSON *root, const char *corr) {
    const char *sid = jstr(root, "subzone_id");
    bool valid_id = sid && sid[0] && strlen(sid) <= 32;
    if (kind == KT_SUBZONE_REMOVE || kind == KT_SUBZONE_SAFE) {
        if (!valid_id) return subzone_ack(d, "error", NULL, corr, "subzone_id is required", "VALIDATION_ERROR");
        kaiser_subzone_t *sz = find_subzone(d, sid);
        if (sz == NULL) return subzone_ack(d, "error", sid, corr, "Subzone not found", "SUBZONE_NOT_FOUND");
        if (kind == KT_SUBZONE_REMOVE) {
            memset(sz, 0, sizeof *sz);
            k_persist_subzones(d);
            return subzone_ack(d, "subzone_removed", sid, corr, NULL, NULL);
        }
        const char *action = jstr(root, "action");
        const cJSON *sm = cJSON_GetObjectItemCaseSensitive(root, "safe_mode");
        bool enable = cJSON_IsBool(sm) ? cJSON_IsTrue(sm) : !(action && strcmp(action, "disable") == 0);
        sz->safe_mode = enable;
        k_persist_subzones(d);
        return subzone_ack(d, enable ? "safe_mode_enabled" : "safe_mode_disabled", sid, corr, NULL, NULL);
    }
    if (!valid_id) return subzone_ack(d, "error", NULL, corr, "subzone_id is required", "VALIDATION_ERROR");
    const char *parent = jstr(root, "parent_zone_id");
    if (parent && parent[0] && strcmp(parent, d->zone_id) != 0)
        return subzone_ack(d, "error", sid, corr, "parent_zone_id mismatch", "PARENT_MISMATCH");
    if (!d->zone_assigned) return subzone_ack(d, "error", sid, corr, "ESP zone not assigned", "ZONE_NOT_ASSIGNED");
    const cJSON *gp = cJSON_GetObjectItemCaseSensitive(root, "assigned_gpios");
    kaiser_subzone_t tmp = {0};
    tmp.used = true;
    k_copy(tmp.id, sizeof tmp.id, sid);
    k_copy(tmp.name, sizeof tmp.name, jstr(root, "subzone_name"));
    k_copy(tmp.parent_zone_id, sizeof tmp.parent_zone_id, d->zone_id);
    const cJSON *smode = cJSON_GetObjectItemCaseSensitive(root, "safe_mode_active");
    tmp.safe_mode = cJSON_IsBool(smode) ? cJSON_IsTrue(smode) : true;
    const cJSON *g;
    if (gp != NULL && !cJSON_IsArray(gp))
        return subzone_ack(d, "error", sid, corr, "subzone config validation failed", "VALIDATION_ERROR");
    cJSON_ArrayForEach(g, gp) {
        if (!cJSON_IsNumber(g) || g->valueint < 0 || g->valueint > KAISER_GPIO_MAX || tmp.gpio_count >= 16)
            return subzone_ack(d, "error", sid, corr, "GPIO assignment failed", "GPIO_INVALID");
        for (int i = 0; i < KAISER_MAX_SUBZONES; i++) {
            kaiser_subzone_t *o = &d->subzones[i];
            if (!o->used || strcmp(o->id, sid) == 0) continue;
            for (int k = 0; k < o->gpio_count; k++)
                if (o->gpios[k] == g->valueint)
                    return subzone_ack(d, "error", sid, corr, "GPIO assignment failed", "GPIO_CONFLICT");
        }
        tmp.gpios[tmp.gpio_count++] = g->valueint;
    }
    kaiser_subzone_t *slot = find_subzone(d, sid);
    for (int i = 0; slot == NULL && i < KAISER_MAX_SUBZONES; i++)
        if (!d->subzones[i].used) slot = &d->subzones[i];
    if (slot == NULL) return subzone_ack(d, "error", sid, corr, "subzone config validation failed", "SUBZONE_LIMIT");
    *slot = tmp;
    k_persist_subzones(d);
    return subzone_ack(d, "subzone_assigned", sid, corr, NULL, NULL);
}

/* ------------------------------------------------------------------ server status */

static void handle_server_status(kaiser_device_t *d, const cJSON *root) {
    const char *status = jstr(root, "status");
    const char *reason = jstr(root, "reason");
    if (status == NULL) return;
    if (strcmp(status, "offline") == 0) {
        /* A stale retained LWT right after a reconnect (not yet registered) is ignored. */
        bool stale = reason && strcmp(reason, "unexpected_disconnect") == 0 && !d->registered &&
                     k_now(d) - d->connected_ms < 15000u;
        if (!stale) k_offline_on_disconnect(d, d->rule_count == 0);
    }
    /* `online` is only a hint: recovery happens on the next valid heartbeat ACK. */
}

/* ------------------------------------------------------------------ dispatch */

void kaiser_on_message(kaiser_device_t *d, const char *topic, const char *payload, size_t len) {
    int gpio = -1;
    kaiser_topic_kind_t kind = kaiser_topic_parse(topic, d->kaiser_id, d->esp_id, &gpio);
    if (kind == KT_UNKNOWN) return;
    d->stats.received++;
    if (kind == KT_CONFIG) {
        k_handle_config(d, payload, len);
        return;
    }
    cJSON *root = cJSON_ParseWithLength(payload, len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        char fb[80];
        const char *corr = corr_of(d, NULL, fb, sizeof fb);
        if (kind == KT_BROADCAST_EMERGENCY || kind == KT_ACTUATOR_EMERGENCY) {
            outcome(d, "command", corr, NULL, "failed", "EMERGENCY_PARSE_ERROR", "Invalid JSON", false);
        } else if (kind == KT_SYSTEM_COMMAND) {
            cJSON *o = sys_reply(d, "", false, corr, "Invalid JSON");
            cJSON_AddStringToObject(o, "error", "JSON_PARSE_ERROR");
            k_send_json(d, KT_SYSTEM_COMMAND_RESPONSE, 0, o);
        } else if (kind != KT_HEARTBEAT_ACK && kind != KT_SERVER_STATUS) {
            kaiser_report_error(d, 4021, 2, "Command payload is not valid JSON");
        }
        return;
    }
    switch (kind) {
    case KT_HEARTBEAT_ACK: handle_heartbeat_ack(d, root); break;
    case KT_ACTUATOR_COMMAND: handle_actuator_command(d, gpio, root); break;
    case KT_SENSOR_COMMAND: handle_sensor_command(d, gpio, root); break;
    case KT_ACTUATOR_EMERGENCY: handle_emergency(d, root); break;
    case KT_BROADCAST_EMERGENCY: handle_broadcast(d, root); break;
    case KT_SYSTEM_COMMAND: handle_system_command(d, root); break;
    case KT_ZONE_ASSIGN:
    case KT_SUBZONE_ASSIGN:
    case KT_SUBZONE_REMOVE:
    case KT_SUBZONE_SAFE: handle_zone_family(d, kind, root); break;
    case KT_SERVER_STATUS: handle_server_status(d, root); break;
    default: break;
    }
    cJSON_Delete(root);
}

/* Exposed for kaiser_config.c */
void k_config_outcome(kaiser_device_t *d, const char *corr, const cJSON *root, const char *result, const char *code,
                      const char *reason, bool retryable);
void k_config_outcome(kaiser_device_t *d, const char *corr, const cJSON *root, const char *result, const char *code,
                      const char *reason, bool retryable) {
    outcome(d, "config", corr, root, result, code, reason, retryable);
}
int k_config_admit(kaiser_device_t *d, const char **code);
int k_config_admit(kaiser_device_t *d, const char **code) {
    *code = admit(d, SUB_CONFIG, NULL);
    return *code == NULL ? 0 : -1;
}
