/**
 * @file kaiser_port.h
 * @brief The narrow port interface between the portable Kaiser core and a platform.
 *
 * The core never includes a platform header. Everything it needs from the outside world goes
 * through this struct of function pointers: the ESP-IDF port (components/kaiser_port_esp32), the
 * Linux virtual device (linux/) and the recording fake used by the host tests (test/fake_port.c)
 * each fill one in. All calls are made from the thread that drives the core (kaiser_tick and the
 * kaiser_on_* entry points); the core is not re-entrant and holds no locks.
 */
#ifndef KAISER_PORT_H
#define KAISER_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Board vitals for heartbeat and diagnostics (all optional). */
typedef struct {
    uint32_t heap_free;
    uint32_t heap_min_free;
    int wifi_rssi;
    char wifi_ip[16];
    const char *reset_reason; /**< POWERON, SW, PANIC, ... (static string) */
} kaiser_vitals_t;

typedef struct kaiser_port {
    /** Opaque platform context passed back to every call. */
    void *ctx;
    /** Publish one MQTT message. Returns 0 when handed to the client, negative on error. */
    int (*publish)(void *ctx, const char *topic, const char *payload, size_t len, int qos, bool retain);
    /** Subscribe. Returns the message id (>= 0) whose SUBACK is reported through kaiser_on_suback(), or negative. */
    int (*subscribe)(void *ctx, const char *topic, int qos);
    /** Monotonic milliseconds (never goes backwards). */
    uint64_t (*now_ms)(void *ctx);
    /** Wall clock in Unix seconds, or 0 when not known (no NTP yet). */
    int64_t (*wall_s)(void *ctx);
    /** 32 random bits (jitter only; not for secrets). */
    uint32_t (*random)(void *ctx);
    /** Read a persisted value (NVS on the board). Returns its length, or -1 when absent. */
    int (*storage_get)(void *ctx, const char *key, char *buf, size_t cap);
    /** Persist a value; val == NULL erases the key. Returns 0 on success. */
    int (*storage_set)(void *ctx, const char *key, const char *val);
    /** Drive a digital output (level already accounts for inverted logic). Returns 0 on success. */
    int (*gpio_write)(void *ctx, int gpio, bool level);
    /** Set a PWM duty 0..255. Returns 0 on success. */
    int (*pwm_write)(void *ctx, int gpio, uint8_t duty);
    /** Read one raw sensor value (value_type: ds18b20, sht31_temp, sht31_humidity, moisture, ...). 0 on success. */
    int (*sensor_read)(void *ctx, int gpio, const char *value_type, int32_t *raw);
    /** Fill board vitals (may be NULL: zeros are reported). */
    void (*vitals)(void *ctx, kaiser_vitals_t *out);
    /** Restart the device (may be NULL: the core then only resets its own state). */
    void (*restart)(void *ctx);
} kaiser_port_t;

#ifdef __cplusplus
}
#endif
#endif
