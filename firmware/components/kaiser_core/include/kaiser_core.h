/**
 * @file kaiser_core.h
 * @brief The portable Kaiser device: every protocol and safety decision lives here.
 *
 * The platform drives one kaiser_device_t through these calls only:
 *  - kaiser_init() once, then kaiser_will() to set the LWT before connecting;
 *  - kaiser_connect_due() says when to (re)connect (backoff with jitter + circuit breaker);
 *  - kaiser_on_connected(), kaiser_on_connect_failed(), kaiser_on_disconnected(),
 *    kaiser_on_suback(), kaiser_on_message() report MQTT events;
 *  - kaiser_tick() every 10..100 ms runs timers (heartbeat, sensors, runtime limits, offline mode).
 * The core calls back into the platform only through kaiser_port_t.
 */
#ifndef KAISER_CORE_H
#define KAISER_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kaiser_policy.h"
#include "kaiser_port.h"
#include "kaiser_topic.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KAISER_FW_VERSION "kaiser-1.0.0"
#define KAISER_MAX_SENSORS 20
#define KAISER_MAX_ACTUATORS 12
#define KAISER_MAX_RULES 8
#define KAISER_MAX_SUBZONES 8
#define KAISER_CONFIG_MAX_BYTES 4352
#define KAISER_HB_GATED_MS 5000u
#define KAISER_HB_REGISTERED_MS 60000u
#define KAISER_OFFLINE_GRACE_MS 30000u
#define KAISER_RULE_EVAL_MS 5000u
#define KAISER_EMERGENCY_HOLDOFF_MS 5000u
#define KAISER_ACK_TIMEOUT_MS 120000u
#define KAISER_ERROR_THROTTLE_MS 60000u
#define KAISER_DEFAULT_MAX_RUNTIME_MS 3600000u
#define KAISER_PUMP_MAX_ACTIVATIONS_PER_HOUR 60
#define KAISER_BOOT_LOOP_LIMIT 5        /**< more consecutive short boots than this: SAFE_MODE */
#define KAISER_BOOT_STABLE_MS 60000u    /**< uptime after which a boot counts as stable */

/** System states; the integers are what `config_status.state` and `status` report. */
typedef enum {
    KAISER_STATE_BOOT = 0,
    KAISER_STATE_ZONE_CONFIGURED = 6,
    KAISER_STATE_OPERATIONAL = 9,
    KAISER_STATE_PENDING_APPROVAL = 10,
    KAISER_STATE_SAFE_MODE = 12,
    KAISER_STATE_ERROR = 14,
} kaiser_state_t;

typedef enum {
    KAISER_OFFLINE_ONLINE = 0,
    KAISER_OFFLINE_DISCONNECTED,   /**< grace period running (opt.offline_grace_ms, 30 s) */
    KAISER_OFFLINE_ACTIVE,         /**< running the offline rules */
    KAISER_OFFLINE_RECONNECTING,   /**< link back, waiting for a heartbeat ACK with the epoch */
} kaiser_offline_t;

typedef struct {
    bool used;
    int gpio;
    char sensor_type[24];   /**< normalised: ds18b20, sht31, moisture, ph, ec, ... */
    char name[33];
    char subzone_id[33];
    char onewire_address[17];
    int i2c_address;
    bool raw_mode;
    bool continuous;
    uint32_t interval_ms;
    uint64_t last_ms;
    uint64_t first_due_ms;  /**< with opt.data_phase_spread: when the first measurement is due (0 = not set yet) */
} kaiser_sensor_t;

typedef struct {
    bool used;
    int gpio;
    char type[8];           /**< pump, relay, valve, pwm */
    char name[33];
    char subzone_id[33];
    bool inverted;
    bool default_state;
    uint8_t default_pwm;
    uint32_t max_runtime_ms;
    bool state;
    uint8_t pwm;
    uint64_t on_since_ms;
    uint64_t duration_end_ms; /**< 0 = no auto-off pending */
    bool latched;             /**< emergency / runtime-protection latch */
    char command_source[48];
    uint32_t activations_s[KAISER_PUMP_MAX_ACTIVATIONS_PER_HOUR]; /**< pump/relay: uptime s of recent switch-ons */
    uint8_t activation_next;
} kaiser_actuator_t;

typedef struct {
    bool enabled;
    int actuator_gpio;
    int sensor_gpio;
    char value_type[24];
    double activate_above, deactivate_below, activate_below, deactivate_above;
    bool is_active;
    bool server_override;
    uint8_t warmup;
    /* time filter: active only inside [start, end) local time on the days of days_mask (bit0 = Sunday) */
    bool tf_enabled;
    bool tf_berlin;          /**< Europe/Berlin (CET/CEST) instead of UTC */
    uint16_t tf_start_min, tf_end_min;
    uint8_t tf_days_mask;
} kaiser_rule_t;

typedef struct {
    bool used;
    char id[33];
    char name[65];
    char parent_zone_id[33];
    int gpios[16];
    int gpio_count;
    bool safe_mode;
} kaiser_subzone_t;

typedef struct {
    bool valid;
    int gpio;
    char value_type[24];
    double value;
    int32_t raw;
    const char *unit;    /* static string */
    const char *quality; /* static string */
    uint64_t at_ms;
} kaiser_value_t;

/** Counters reported by kaiser-vdev and the heartbeat metrics. */
typedef struct {
    uint32_t published, publish_failed, buffered, replayed, received;
    uint32_t heartbeats, data_msgs, commands_executed, duplicates_ignored, acks_valid, acks_rejected;
    uint32_t connects, disconnects;
} kaiser_stats_t;

/** Tunables (defaults from kaiser_default_options()). */
typedef struct {
    uint32_t heartbeat_ms;       /**< interval once registered (default 60 s) */
    uint32_t heartbeat_gated_ms; /**< interval while the registration gate is closed (5 s) */
    uint32_t data_ms;            /**< default sensor interval when config gives none (30 s) */
    uint32_t metrics_every;      /**< heartbeat_metrics every Nth heartbeat (5) */
    uint32_t offline_grace_ms;   /**< disconnected this long before the offline rules run (30 s; 0 = default) */
    bool data_phase_spread;      /**< first measurement of each sensor after a phase within its interval taken from
                                      the esp_id and gpio, so a fleet powered on together does not publish in step
                                      (default off: measure at once; the ESP-IDF app turns it on) */
} kaiser_options_t;

typedef struct kaiser_device {
    kaiser_port_t port;
    kaiser_options_t opt;
    char esp_id[KAISER_ESP_ID_MAX + 1];
    char kaiser_id[KAISER_KAISER_ID_MAX + 1];
    char zone_id[33], master_zone_id[33], zone_name[65];
    bool zone_assigned;
    kaiser_state_t state;
    bool approved;
    uint32_t boot_count;
    uint32_t short_boots;     /**< consecutive boots that did not reach 60 s of uptime */
    bool boot_stable;
    uint64_t boot_ms;
    int64_t time_offset_s;   /**< server_time - uptime, when the port has no clock */
    int64_t segment_start_ts;
    uint32_t seq;

    /* connection */
    bool connected;
    bool registered;          /**< the registration gate is open */
    bool ever_connected;
    uint32_t reconnect_attempt;
    uint64_t next_connect_ms;
    kaiser_breaker_t breaker;
    int sub_mid_ack, sub_mid_config;
    bool sub_ack_ok, sub_config_ok, bootstrap_pending;
    uint64_t last_hb_ms, last_valid_ack_ms, connected_ms;
    uint32_t hb_count;
    kaiser_outbox_t outbox;
    bool pressure;

    /* commands */
    kaiser_dedupe_t dedupe;
    uint32_t fallback_n;

    /* hardware model */
    kaiser_sensor_t sensors[KAISER_MAX_SENSORS];
    kaiser_actuator_t actuators[KAISER_MAX_ACTUATORS];
    kaiser_rule_t rules[KAISER_MAX_RULES];
    int rule_count;
    kaiser_subzone_t subzones[KAISER_MAX_SUBZONES];
    kaiser_value_t values[KAISER_MAX_SENSORS * 2];
    uint32_t applied_gen, applied_gen_sensor, applied_gen_act, applied_gen_off;

    /* safety */
    bool emergency;
    uint64_t emergency_ms;
    uint32_t safety_epoch;

    /* offline mode */
    kaiser_offline_t offline;
    uint64_t offline_since_ms, last_rule_eval_ms;
    uint32_t active_handover_epoch, handover_completed_epoch, offline_enter_count, handover_reject_count;
    char handover_last_reject[32];

    /* errors */
    uint64_t error_last_ms[32];
    uint16_t error_last_code[32];
    uint32_t error_count;
    char log_level[12];

    uint64_t last_diag_ms;
    uint32_t diag_sig;
    uint64_t restart_at_ms;
    kaiser_stats_t stats;
} kaiser_device_t;

/** Default tunables. */
kaiser_options_t kaiser_default_options(void);

/**
 * Initialise a device. @p kaiser_id NULL or "" means the stored one or "god".
 * Loads identity, approval, zone and the persisted config through storage_get.
 * Returns 0, or -1 if esp_id/kaiser_id are invalid.
 */
int kaiser_init(kaiser_device_t *d, const kaiser_port_t *port, const kaiser_options_t *opt, const char *esp_id,
                const char *kaiser_id);
/** Free heap memory held by the offline buffer. */
void kaiser_deinit(kaiser_device_t *d);
/** Build the Last Will (topic `system/will`, QoS 1, retained) for the next connect. 0 on success. */
int kaiser_will(kaiser_device_t *d, char *topic, size_t tcap, char *payload, size_t pcap);
/** True when the platform should start a connect attempt now (backoff and breaker allow it). */
bool kaiser_connect_due(kaiser_device_t *d);
/** A connect attempt failed (refused, timed out): counts for the breaker and schedules the next attempt. */
void kaiser_on_connect_failed(kaiser_device_t *d);
/** CONNACK received: announces the session, subscribes the 12 topics, closes the registration gate. */
void kaiser_on_connected(kaiser_device_t *d);
/** Connection lost (or a pending connect failed): closes the gate, drives the offline safety path. */
void kaiser_on_disconnected(kaiser_device_t *d);
/** SUBACK for message id @p mid (the bootstrap heartbeat waits for heartbeat/ack and config). */
void kaiser_on_suback(kaiser_device_t *d, int mid);
/** One inbound MQTT message; topics that are not this device's are ignored. */
void kaiser_on_message(kaiser_device_t *d, const char *topic, const char *payload, size_t len);
/** Run timers: sensors, runtime limits, heartbeat, offline mode, buffer replay. Call every 10..100 ms. */
void kaiser_tick(kaiser_device_t *d);

/** Apply a config document (the `config` payload) without publishing a response; used at boot and by vdev. */
int kaiser_apply_config_json(kaiser_device_t *d, const char *json);
/** Publish one `sensor/batch` with the latest cached reading of every sensor. 0 when sent or buffered. */
int kaiser_publish_sensor_batch(kaiser_device_t *d);
/** Report an error code (1xxx-4xxx) on system/error, throttled to one per code per 60 s. */
void kaiser_report_error(kaiser_device_t *d, int code, int severity, const char *message);
/** Find an actuator by gpio or NULL. */
kaiser_actuator_t *kaiser_find_actuator(kaiser_device_t *d, int gpio);
/**
 * Is Unix time @p ts inside the rule's time window? Europe/Berlin switches to CEST on the last
 * Sunday of March 01:00 UTC and back on the last Sunday of October 01:00 UTC. Windows with
 * end < start wrap midnight; start == end means the whole day.
 */
bool kaiser_rule_window_open(const kaiser_rule_t *r, int64_t ts);
/** Current timestamp in Unix seconds (0 when unknown). */
int64_t kaiser_ts(kaiser_device_t *d);

#ifdef __cplusplus
}
#endif
#endif
