/**
 * @file kaiser_policy.h
 * @brief Small pure policies of the core: circuit breaker, reconnect backoff, offline ring buffer
 *        and the command dedupe ring. No I/O; time is passed in.
 */
#ifndef KAISER_POLICY_H
#define KAISER_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ circuit breaker */
#define KAISER_CB_THRESHOLD 5
#define KAISER_CB_OPEN_MS 30000u
#define KAISER_CB_HALF_OPEN_MS 10000u

typedef enum { KAISER_CB_CLOSED = 0, KAISER_CB_OPEN = 1, KAISER_CB_HALF_OPEN = 2 } kaiser_cb_state_t;

typedef struct {
    kaiser_cb_state_t state;
    uint32_t failures;
    uint64_t since_ms; /**< time of the last transition */
} kaiser_breaker_t;

/** Reset to CLOSED. */
void kaiser_breaker_init(kaiser_breaker_t *b);
/** May a request go out now? Moves OPEN to HALF_OPEN after 30 s and HALF_OPEN back to OPEN after 10 s. */
bool kaiser_breaker_allow(kaiser_breaker_t *b, uint64_t now_ms);
/** Record a success: closes from HALF_OPEN, resets the count in CLOSED, nothing while OPEN. */
void kaiser_breaker_success(kaiser_breaker_t *b, uint64_t now_ms);
/** Record a failure: the 5th in CLOSED, or any in HALF_OPEN, opens the breaker. */
void kaiser_breaker_failure(kaiser_breaker_t *b, uint64_t now_ms);

/* ------------------------------------------------------------------ reconnect backoff */
/**
 * Delay before reconnect attempt number @p attempt (0-based):
 * min(1500 ms << min(attempt, 6), 12000 ms) + jitter, jitter = ((rnd & 0x3FF) ^ last_char) % 650.
 */
uint32_t kaiser_backoff_ms(uint32_t attempt, uint32_t rnd, char esp_id_last_char);

/* ------------------------------------------------------------------ offline ring buffer */
#define KAISER_OUTBOX_CAP 100

typedef struct {
    char *topic;
    char *payload;
    size_t len;
    uint8_t qos;
    bool retain;
    bool critical;
} kaiser_msg_t;

typedef struct {
    kaiser_msg_t items[KAISER_OUTBOX_CAP];
    size_t head;  /**< index of the oldest */
    size_t count;
    uint32_t dropped_noncritical;
    uint32_t dropped_critical;
    uint32_t high_watermark;
} kaiser_outbox_t;

typedef enum {
    KAISER_OUTBOX_QUEUED = 0,          /**< stored, nothing lost */
    KAISER_OUTBOX_EVICTED_OLDEST = 1,  /**< stored after evicting the oldest non-critical entry */
    KAISER_OUTBOX_DROPPED_NEW = 2,     /**< not stored: buffer full of critical entries and the new one is not critical */
    KAISER_OUTBOX_EVICTED_CRITICAL = 3,/**< stored (critical) after evicting the oldest critical entry */
    KAISER_OUTBOX_NOMEM = -1,
} kaiser_outbox_rc_t;

void kaiser_outbox_init(kaiser_outbox_t *o);
/** Free every stored message. */
void kaiser_outbox_clear(kaiser_outbox_t *o);
/**
 * Append a copy of a message. Drop policy when full (100): evict the oldest non-critical entry;
 * if every entry is critical, a non-critical newcomer is dropped and a critical newcomer evicts
 * the oldest critical entry. Order of the survivors is always preserved (FIFO replay).
 */
kaiser_outbox_rc_t kaiser_outbox_push(kaiser_outbox_t *o, const char *topic, const char *payload, size_t len, int qos,
                                      bool retain, bool critical);
/** The oldest entry, or NULL when empty. */
const kaiser_msg_t *kaiser_outbox_peek(const kaiser_outbox_t *o);
/** Remove (and free) the oldest entry. */
void kaiser_outbox_pop(kaiser_outbox_t *o);

/* ------------------------------------------------------------------ dedupe ring */
#define KAISER_DEDUPE_CAP 64
#define KAISER_CORR_MAX 64

typedef struct {
    char ids[KAISER_DEDUPE_CAP][KAISER_CORR_MAX];
    bool ok[KAISER_DEDUPE_CAP];
    size_t next;
} kaiser_dedupe_t;

void kaiser_dedupe_init(kaiser_dedupe_t *d);
/** True (and *ok = recorded result) if @p id was seen. Empty ids are never duplicates. */
bool kaiser_dedupe_seen(const kaiser_dedupe_t *d, const char *id, bool *ok);
/** Remember @p id with its result, evicting the oldest of the last 64. */
void kaiser_dedupe_remember(kaiser_dedupe_t *d, const char *id, bool ok);

#ifdef __cplusplus
}
#endif
#endif
