/* Recording fake port for the host tests: records publishes and subscriptions, holds an in-memory
 * key-value store, simulated GPIO/PWM/sensors, and lets the test drive time. */
#ifndef FAKE_PORT_H
#define FAKE_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kaiser_core.h"

#define FP_MAX_PUBS 4096
#define FP_MAX_KV 64

typedef struct {
    char topic[KAISER_TOPIC_MAX];
    char *payload;
    int qos;
    bool retain;
} fp_pub_t;

typedef struct {
    uint64_t now;
    int64_t wall;            /* 0 = no clock */
    uint32_t rnd;
    fp_pub_t pubs[FP_MAX_PUBS];
    size_t npubs;
    char subs[32][KAISER_TOPIC_MAX];
    int sub_qos[32];
    size_t nsubs;
    int next_mid;
    char *keys[FP_MAX_KV];
    char *vals[FP_MAX_KV];
    bool gpio[KAISER_GPIO_MAX + 1];
    uint8_t pwm[KAISER_GPIO_MAX + 1];
    int gpio_writes;
    int32_t raw[KAISER_GPIO_MAX + 1][2]; /* [gpio][0]=first value type, [1]=second (sht31 humidity) */
    bool sensor_fail;
    bool publish_fail;
    bool storage_fail;
    int restarts;
} fake_port_t;

void fp_init(fake_port_t *fp);
void fp_free(fake_port_t *fp);
kaiser_port_t fp_port(fake_port_t *fp);
void fp_clear_pubs(fake_port_t *fp);
/* Last publish whose topic ends with suffix (NULL if none). */
const fp_pub_t *fp_last(const fake_port_t *fp, const char *suffix);
int fp_count(const fake_port_t *fp, const char *suffix);
/* Advance time by ms, ticking the device every 100 ms. */
void fp_advance(fake_port_t *fp, kaiser_device_t *d, uint64_t ms);
/* Inject an inbound message on `kaiser/{kaiser_id}/esp/{esp_id}/<suffix>` (or an absolute topic starting with "kaiser/"). */
void fp_inject(kaiser_device_t *d, const char *suffix, const char *json);
/* Connect, SUBACK everything, tick once (bootstrap heartbeat). */
void fp_connect(fake_port_t *fp, kaiser_device_t *d);
/* fp_connect + a valid `online` heartbeat ACK with epoch 1. */
void fp_register(fake_port_t *fp, kaiser_device_t *d);
/* The value of a JSON field of the last publish on suffix, as text ("" if absent). */
const char *fp_field(const fake_port_t *fp, const char *suffix, const char *key);
/* Stored value or NULL. */
const char *fp_kv(const fake_port_t *fp, const char *key);

#endif
