/**
 * @file kaiser_topic.h
 * @brief Buffer-safe MQTT topic builder and parser for `kaiser/{kaiser_id}/esp/{esp_id}/...`.
 *
 * The patterns mirror contract/topics.yaml (the firmware tests check every pattern of that table).
 * Truncation is an error: a topic that does not fit is never published half-built.
 */
#ifndef KAISER_TOPIC_H
#define KAISER_TOPIC_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KAISER_TOPIC_MAX 160
#define KAISER_ESP_ID_MAX 32
#define KAISER_KAISER_ID_MAX 63
#define KAISER_GPIO_MAX 48

typedef enum {
    KAISER_TOPIC_OK = 0,
    KAISER_TOPIC_ERR_TRUNCATED = -1, /**< the buffer is too small */
    KAISER_TOPIC_ERR_INVALID = -2,   /**< bad esp_id, kaiser_id or gpio */
} kaiser_topic_rc_t;

/** Topic kinds, one per row of contract/topics.yaml (plus UNKNOWN). */
typedef enum {
    KT_UNKNOWN = 0,
    /* device to server */
    KT_SENSOR_DATA, KT_SENSOR_BATCH, KT_SENSOR_RESPONSE, KT_ACTUATOR_STATUS, KT_ACTUATOR_RESPONSE,
    KT_ACTUATOR_ALERT, KT_EMERGENCY_ACK, KT_RECOVERY_CONFIRM, KT_HEARTBEAT, KT_HEARTBEAT_METRICS,
    KT_SESSION_ANNOUNCE, KT_WILL, KT_SYSTEM_ERROR, KT_DIAGNOSTICS, KT_QUEUE_PRESSURE, KT_INTENT_OUTCOME,
    KT_INTENT_LIFECYCLE, KT_CONFIG_RESPONSE, KT_ZONE_ACK, KT_SUBZONE_ACK, KT_SYSTEM_COMMAND_RESPONSE,
    /* server to device */
    KT_HEARTBEAT_ACK, KT_SENSOR_COMMAND, KT_ACTUATOR_COMMAND, KT_ACTUATOR_EMERGENCY, KT_SYSTEM_COMMAND,
    KT_CONFIG, KT_ZONE_ASSIGN, KT_SUBZONE_ASSIGN, KT_SUBZONE_REMOVE, KT_SUBZONE_SAFE,
    /* absolute */
    KT_BROADCAST_EMERGENCY, KT_SERVER_STATUS,
    KT__COUNT
} kaiser_topic_kind_t;

/** True when s matches `^[A-Za-z0-9_-]{1,32}$`. */
bool kaiser_esp_id_valid(const char *s);
/** True when s is 1..63 chars of `[A-Za-z0-9_-]`. */
bool kaiser_kaiser_id_valid(const char *s);
/** True when the kind's pattern has a {gpio} placeholder. */
bool kaiser_topic_has_gpio(kaiser_topic_kind_t kind);
/** The pattern string of a kind, exactly as in contract/topics.yaml, or NULL. */
const char *kaiser_topic_pattern(kaiser_topic_kind_t kind);
/** QoS of a kind per contract/topics.yaml. */
int kaiser_topic_qos(kaiser_topic_kind_t kind);
/** Retain flag of a kind per contract/topics.yaml. */
bool kaiser_topic_retained(kaiser_topic_kind_t kind);

/**
 * Build the topic of @p kind into @p buf (capacity @p cap, always NUL-terminated on success).
 * @p gpio is used only by kinds with a {gpio} placeholder, which accept 0..48; pass -1 for a
 * subscription wildcard `+`.
 */
kaiser_topic_rc_t kaiser_topic_build(char *buf, size_t cap, kaiser_topic_kind_t kind, const char *kaiser_id,
                                     const char *esp_id, int gpio);

/**
 * Classify an inbound topic for this device. Returns KT_UNKNOWN if the topic is not one of ours
 * (other kaiser_id, other esp_id, bad gpio). @p gpio receives the gpio or -1.
 */
kaiser_topic_kind_t kaiser_topic_parse(const char *topic, const char *kaiser_id, const char *esp_id, int *gpio);

#ifdef __cplusplus
}
#endif
#endif
