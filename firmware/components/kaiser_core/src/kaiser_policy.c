#include "kaiser_policy.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ circuit breaker */
void kaiser_breaker_init(kaiser_breaker_t *b) { memset(b, 0, sizeof *b); }

bool kaiser_breaker_allow(kaiser_breaker_t *b, uint64_t now_ms) {
    switch (b->state) {
    case KAISER_CB_CLOSED:
        return true;
    case KAISER_CB_OPEN:
        if (now_ms - b->since_ms >= KAISER_CB_OPEN_MS) {
            b->state = KAISER_CB_HALF_OPEN;
            b->since_ms = now_ms;
            return true;
        }
        return false;
    case KAISER_CB_HALF_OPEN:
        if (now_ms - b->since_ms >= KAISER_CB_HALF_OPEN_MS) {
            b->state = KAISER_CB_OPEN;
            b->since_ms = now_ms;
            return false;
        }
        return true;
    }
    return false;
}

void kaiser_breaker_success(kaiser_breaker_t *b, uint64_t now_ms) {
    if (b->state == KAISER_CB_HALF_OPEN) {
        b->state = KAISER_CB_CLOSED;
        b->since_ms = now_ms;
        b->failures = 0;
    } else if (b->state == KAISER_CB_CLOSED) {
        b->failures = 0;
    }
}

void kaiser_breaker_failure(kaiser_breaker_t *b, uint64_t now_ms) {
    if (b->state == KAISER_CB_HALF_OPEN) {
        b->state = KAISER_CB_OPEN;
        b->since_ms = now_ms;
        return;
    }
    if (b->state == KAISER_CB_OPEN) return;
    if (++b->failures >= KAISER_CB_THRESHOLD) {
        b->state = KAISER_CB_OPEN;
        b->since_ms = now_ms;
    }
}

/* ------------------------------------------------------------------ backoff */
uint32_t kaiser_backoff_ms(uint32_t attempt, uint32_t rnd, char last) {
    uint32_t shift = attempt > 6 ? 6 : attempt;
    uint32_t base = 1500u << shift;
    if (base > 12000u) base = 12000u;
    uint32_t jitter = ((rnd & 0x3FFu) ^ (uint32_t)(unsigned char)last) % 650u;
    return base + jitter;
}

/* ------------------------------------------------------------------ outbox */

/* strdup is POSIX, not C11: keep the core strictly portable. */
static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}
void kaiser_outbox_init(kaiser_outbox_t *o) { memset(o, 0, sizeof *o); }

static void msg_free(kaiser_msg_t *m) {
    free(m->topic);
    free(m->payload);
    memset(m, 0, sizeof *m);
}

void kaiser_outbox_clear(kaiser_outbox_t *o) {
    while (o->count > 0) kaiser_outbox_pop(o);
    o->head = 0;
}

const kaiser_msg_t *kaiser_outbox_peek(const kaiser_outbox_t *o) {
    return o->count == 0 ? NULL : &o->items[o->head];
}

void kaiser_outbox_pop(kaiser_outbox_t *o) {
    if (o->count == 0) return;
    msg_free(&o->items[o->head]);
    o->head = (o->head + 1) % KAISER_OUTBOX_CAP;
    o->count--;
}

/* Remove the logical i-th entry (0 = oldest), shifting the younger ones down to keep order. */
static void remove_at(kaiser_outbox_t *o, size_t i) {
    msg_free(&o->items[(o->head + i) % KAISER_OUTBOX_CAP]);
    for (size_t k = i; k + 1 < o->count; k++) {
        o->items[(o->head + k) % KAISER_OUTBOX_CAP] = o->items[(o->head + k + 1) % KAISER_OUTBOX_CAP];
    }
    memset(&o->items[(o->head + o->count - 1) % KAISER_OUTBOX_CAP], 0, sizeof(kaiser_msg_t));
    o->count--;
}

kaiser_outbox_rc_t kaiser_outbox_push(kaiser_outbox_t *o, const char *topic, const char *payload, size_t len, int qos,
                                      bool retain, bool critical) {
    kaiser_outbox_rc_t rc = KAISER_OUTBOX_QUEUED;
    if (o->count == KAISER_OUTBOX_CAP) {
        size_t victim = KAISER_OUTBOX_CAP;
        for (size_t i = 0; i < o->count; i++) {
            if (!o->items[(o->head + i) % KAISER_OUTBOX_CAP].critical) {
                victim = i;
                break;
            }
        }
        if (victim != KAISER_OUTBOX_CAP) {
            remove_at(o, victim);
            o->dropped_noncritical++;
            rc = KAISER_OUTBOX_EVICTED_OLDEST;
        } else if (!critical) {
            o->dropped_noncritical++;
            return KAISER_OUTBOX_DROPPED_NEW;
        } else {
            remove_at(o, 0);
            o->dropped_critical++;
            rc = KAISER_OUTBOX_EVICTED_CRITICAL;
        }
    }
    kaiser_msg_t m = {0};
    m.topic = dup_str(topic);
    m.payload = malloc(len + 1);
    if (m.topic == NULL || m.payload == NULL) {
        free(m.topic);
        free(m.payload);
        return KAISER_OUTBOX_NOMEM;
    }
    memcpy(m.payload, payload, len);
    m.payload[len] = '\0';
    m.len = len;
    m.qos = (uint8_t)qos;
    m.retain = retain;
    m.critical = critical;
    o->items[(o->head + o->count) % KAISER_OUTBOX_CAP] = m;
    o->count++;
    if (o->count > o->high_watermark) o->high_watermark = (uint32_t)o->count;
    return rc;
}

/* ------------------------------------------------------------------ dedupe */
void kaiser_dedupe_init(kaiser_dedupe_t *d) { memset(d, 0, sizeof *d); }

bool kaiser_dedupe_seen(const kaiser_dedupe_t *d, const char *id, bool *ok) {
    if (id == NULL || id[0] == '\0') return false;
    for (size_t i = 0; i < KAISER_DEDUPE_CAP; i++) {
        if (d->ids[i][0] != '\0' && strncmp(d->ids[i], id, KAISER_CORR_MAX - 1) == 0) {
            if (ok) *ok = d->ok[i];
            return true;
        }
    }
    return false;
}

void kaiser_dedupe_remember(kaiser_dedupe_t *d, const char *id, bool ok) {
    if (id == NULL || id[0] == '\0') return;
    for (size_t i = 0; i < KAISER_DEDUPE_CAP; i++) {
        if (strncmp(d->ids[i], id, KAISER_CORR_MAX - 1) == 0) {
            d->ok[i] = ok;
            return;
        }
    }
    strncpy(d->ids[d->next], id, KAISER_CORR_MAX - 1);
    d->ids[d->next][KAISER_CORR_MAX - 1] = '\0';
    d->ok[d->next] = ok;
    d->next = (d->next + 1) % KAISER_DEDUPE_CAP;
}
