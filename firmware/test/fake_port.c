#include "fake_port.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cJSON.h"

static int fp_publish(void *ctx, const char *topic, const char *payload, size_t len, int qos, bool retain) {
    fake_port_t *fp = ctx;
    if (fp->publish_fail || fp->npubs >= FP_MAX_PUBS) return -1;
    fp_pub_t *p = &fp->pubs[fp->npubs++];
    snprintf(p->topic, sizeof p->topic, "%s", topic);
    p->payload = malloc(len + 1);
    memcpy(p->payload, payload, len);
    p->payload[len] = '\0';
    p->qos = qos;
    p->retain = retain;
    return 0;
}

static int fp_subscribe(void *ctx, const char *topic, int qos) {
    fake_port_t *fp = ctx;
    if (fp->nsubs < 32) {
        snprintf(fp->subs[fp->nsubs], sizeof fp->subs[0], "%s", topic);
        fp->sub_qos[fp->nsubs++] = qos;
    }
    return ++fp->next_mid;
}

static uint64_t fp_now(void *ctx) { return ((fake_port_t *)ctx)->now; }
static int64_t fp_wall(void *ctx) {
    fake_port_t *fp = ctx;
    return fp->wall ? fp->wall + (int64_t)(fp->now / 1000u) : 0;
}
static uint32_t fp_random(void *ctx) { return ((fake_port_t *)ctx)->rnd; }

static int kv_find(fake_port_t *fp, const char *key) {
    for (int i = 0; i < FP_MAX_KV; i++)
        if (fp->keys[i] && strcmp(fp->keys[i], key) == 0) return i;
    return -1;
}

static int fp_get(void *ctx, const char *key, char *buf, size_t cap) {
    fake_port_t *fp = ctx;
    int i = kv_find(fp, key);
    if (i < 0) return -1;
    size_t n = strlen(fp->vals[i]);
    if (n >= cap) return -1;
    memcpy(buf, fp->vals[i], n + 1);
    return (int)n;
}

static int fp_set(void *ctx, const char *key, const char *val) {
    fake_port_t *fp = ctx;
    if (fp->storage_fail) return -1;
    int i = kv_find(fp, key);
    if (val == NULL) {
        if (i >= 0) {
            free(fp->keys[i]);
            free(fp->vals[i]);
            fp->keys[i] = fp->vals[i] = NULL;
        }
        return 0;
    }
    if (i < 0) {
        for (i = 0; i < FP_MAX_KV && fp->keys[i]; i++) {
        }
        if (i == FP_MAX_KV) return -1;
        fp->keys[i] = strdup(key);
    } else {
        free(fp->vals[i]);
    }
    fp->vals[i] = strdup(val);
    return 0;
}

static int fp_gpio(void *ctx, int gpio, bool level) {
    fake_port_t *fp = ctx;
    fp->gpio[gpio] = level;
    fp->gpio_writes++;
    return 0;
}
static int fp_pwm(void *ctx, int gpio, uint8_t duty) {
    fake_port_t *fp = ctx;
    fp->pwm[gpio] = duty;
    fp->gpio_writes++;
    return 0;
}
static int fp_sensor(void *ctx, int gpio, const char *type, int32_t *raw) {
    fake_port_t *fp = ctx;
    if (fp->sensor_fail) return -1;
    *raw = fp->raw[gpio][strcmp(type, "sht31_humidity") == 0 ? 1 : 0];
    return 0;
}
static void fp_vitals(void *ctx, kaiser_vitals_t *v) {
    (void)ctx;
    v->heap_free = 142336;
    v->heap_min_free = 120000;
    v->wifi_rssi = -61;
    snprintf(v->wifi_ip, sizeof v->wifi_ip, "192.168.0.50");
    v->reset_reason = "POWERON";
}
static void fp_restart(void *ctx) { ((fake_port_t *)ctx)->restarts++; }

void fp_init(fake_port_t *fp) {
    memset(fp, 0, sizeof *fp);
    fp->now = 1000;
    fp->wall = 1735818000 - 1;
}

void fp_clear_pubs(fake_port_t *fp) {
    for (size_t i = 0; i < fp->npubs; i++) free(fp->pubs[i].payload);
    fp->npubs = 0;
}

void fp_free(fake_port_t *fp) {
    fp_clear_pubs(fp);
    for (int i = 0; i < FP_MAX_KV; i++) {
        free(fp->keys[i]);
        free(fp->vals[i]);
        fp->keys[i] = fp->vals[i] = NULL;
    }
}

kaiser_port_t fp_port(fake_port_t *fp) {
    kaiser_port_t p = {0};
    p.ctx = fp;
    p.publish = fp_publish;
    p.subscribe = fp_subscribe;
    p.now_ms = fp_now;
    p.wall_s = fp_wall;
    p.random = fp_random;
    p.storage_get = fp_get;
    p.storage_set = fp_set;
    p.gpio_write = fp_gpio;
    p.pwm_write = fp_pwm;
    p.sensor_read = fp_sensor;
    p.vitals = fp_vitals;
    p.restart = fp_restart;
    return p;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

const fp_pub_t *fp_last(const fake_port_t *fp, const char *suffix) {
    for (size_t i = fp->npubs; i > 0; i--)
        if (ends_with(fp->pubs[i - 1].topic, suffix)) return &fp->pubs[i - 1];
    return NULL;
}

int fp_count(const fake_port_t *fp, const char *suffix) {
    int n = 0;
    for (size_t i = 0; i < fp->npubs; i++) n += ends_with(fp->pubs[i].topic, suffix) ? 1 : 0;
    return n;
}

void fp_advance(fake_port_t *fp, kaiser_device_t *d, uint64_t ms) {
    uint64_t end = fp->now + ms;
    while (fp->now < end) {
        uint64_t step = end - fp->now < 100 ? end - fp->now : 100;
        fp->now += step;
        kaiser_tick(d);
    }
}

void fp_inject(kaiser_device_t *d, const char *suffix, const char *json) {
    char topic[KAISER_TOPIC_MAX * 2];
    if (strncmp(suffix, "kaiser/", 7) == 0)
        snprintf(topic, sizeof topic, "%s", suffix);
    else
        snprintf(topic, sizeof topic, "kaiser/%s/esp/%s/%s", d->kaiser_id, d->esp_id, suffix);
    kaiser_on_message(d, topic, json, strlen(json));
}

void fp_connect(fake_port_t *fp, kaiser_device_t *d) {
    size_t first = fp->nsubs;
    int first_mid = fp->next_mid;
    kaiser_on_connected(d);
    (void)first;
    for (int mid = first_mid + 1; mid <= fp->next_mid; mid++) kaiser_on_suback(d, mid);
    fp_advance(fp, d, 100);
}

void fp_register(fake_port_t *fp, kaiser_device_t *d) {
    fp_connect(fp, d);
    fp_inject(d, "system/heartbeat/ack", "{\"status\":\"online\",\"handover_epoch\":1,\"server_time\":1735818000}");
}

const char *fp_field(const fake_port_t *fp, const char *suffix, const char *key) {
    static char out[4096];
    out[0] = '\0';
    const fp_pub_t *p = fp_last(fp, suffix);
    if (p == NULL) return out;
    cJSON *o = cJSON_Parse(p->payload);
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsString(v)) {
        snprintf(out, sizeof out, "%s", v->valuestring);
    } else if (v != NULL) {
        char *s = cJSON_PrintUnformatted(v);
        snprintf(out, sizeof out, "%s", s);
        cJSON_free(s);
    }
    cJSON_Delete(o);
    return out;
}

const char *fp_kv(const fake_port_t *fp, const char *key) {
    for (int i = 0; i < FP_MAX_KV; i++)
        if (fp->keys[i] && strcmp(fp->keys[i], key) == 0) return fp->vals[i];
    return NULL;
}
