/* Pure policies: circuit breaker, reconnect backoff with jitter, offline ring buffer, dedupe ring. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "kaiser_policy.h"

static void test_CircuitBreaker_ShouldOpen_WhenFiveFailuresInClosed(void **state) {
    (void)state;
    kaiser_breaker_t b;
    kaiser_breaker_init(&b);
    for (int i = 0; i < 4; i++) kaiser_breaker_failure(&b, 1000);
    assert_int_equal(b.state, KAISER_CB_CLOSED);
    assert_true(kaiser_breaker_allow(&b, 1000));
    kaiser_breaker_failure(&b, 1000);
    assert_int_equal(b.state, KAISER_CB_OPEN);
    assert_false(kaiser_breaker_allow(&b, 1000));
    assert_false(kaiser_breaker_allow(&b, 1000 + 29999));
}

static void test_CircuitBreaker_ShouldGoHalfOpenAfter30s_AndCloseOnSuccess(void **state) {
    (void)state;
    kaiser_breaker_t b;
    kaiser_breaker_init(&b);
    for (int i = 0; i < 5; i++) kaiser_breaker_failure(&b, 0);
    assert_true(kaiser_breaker_allow(&b, 30000));
    assert_int_equal(b.state, KAISER_CB_HALF_OPEN);
    kaiser_breaker_success(&b, 31000);
    assert_int_equal(b.state, KAISER_CB_CLOSED);
    assert_int_equal(b.failures, 0);
}

static void test_CircuitBreaker_ShouldReopen_WhenHalfOpenFailsOrWindowExpires(void **state) {
    (void)state;
    kaiser_breaker_t b;
    kaiser_breaker_init(&b);
    for (int i = 0; i < 5; i++) kaiser_breaker_failure(&b, 0);
    assert_true(kaiser_breaker_allow(&b, 30000));
    kaiser_breaker_failure(&b, 30500);
    assert_int_equal(b.state, KAISER_CB_OPEN);
    assert_false(kaiser_breaker_allow(&b, 31000));
    /* half-open window of 10 s without a success goes back to OPEN */
    assert_true(kaiser_breaker_allow(&b, 60500));
    assert_true(kaiser_breaker_allow(&b, 70499));
    assert_false(kaiser_breaker_allow(&b, 70500));
    assert_int_equal(b.state, KAISER_CB_OPEN);
}

static void test_CircuitBreaker_ShouldIgnoreSuccess_WhenOpen(void **state) {
    (void)state;
    kaiser_breaker_t b;
    kaiser_breaker_init(&b);
    for (int i = 0; i < 5; i++) kaiser_breaker_failure(&b, 0);
    kaiser_breaker_success(&b, 100);
    assert_int_equal(b.state, KAISER_CB_OPEN);
}

static void test_Backoff_ShouldGrowAndCap_WithBoundedJitter(void **state) {
    (void)state;
    assert_int_equal(kaiser_backoff_ms(0, 0, 0), 1500);
    assert_int_equal(kaiser_backoff_ms(1, 0, 0), 3000);
    assert_int_equal(kaiser_backoff_ms(3, 0, 0), 12000);
    assert_int_equal(kaiser_backoff_ms(30, 0, 0), 12000);
    for (uint32_t r = 0; r < 5000; r += 7) {
        uint32_t v = kaiser_backoff_ms(2, r * 2654435761u, '3');
        assert_true(v >= 6000 && v < 6650);
    }
    /* two devices with different ids get different jitter for the same random value */
    assert_int_not_equal(kaiser_backoff_ms(0, 100, '1'), kaiser_backoff_ms(0, 100, '2'));
}

static void push(kaiser_outbox_t *o, int i, bool critical) {
    char t[32], p[32];
    snprintf(t, sizeof t, "t/%d", i);
    snprintf(p, sizeof p, "%d", i);
    kaiser_outbox_push(o, t, p, strlen(p), 1, false, critical);
}

static void test_OfflineBuffer_ShouldReplayInFifoOrder_WhenNotFull(void **state) {
    (void)state;
    kaiser_outbox_t o;
    kaiser_outbox_init(&o);
    for (int i = 0; i < 10; i++) push(&o, i, false);
    for (int i = 0; i < 10; i++) {
        char p[8];
        snprintf(p, sizeof p, "%d", i);
        assert_string_equal(kaiser_outbox_peek(&o)->payload, p);
        kaiser_outbox_pop(&o);
    }
    assert_null(kaiser_outbox_peek(&o));
}

static void test_OfflineBuffer_ShouldEvictOldestNoncritical_WhenFull(void **state) {
    (void)state;
    kaiser_outbox_t o;
    kaiser_outbox_init(&o);
    push(&o, 0, true); /* critical, oldest */
    for (int i = 1; i < KAISER_OUTBOX_CAP; i++) push(&o, i, false);
    assert_int_equal(o.count, 100);
    assert_int_equal(kaiser_outbox_push(&o, "t/new", "new", 3, 1, false, false), KAISER_OUTBOX_EVICTED_OLDEST);
    assert_int_equal(o.count, 100);
    assert_string_equal(kaiser_outbox_peek(&o)->payload, "0"); /* the critical one survives */
    kaiser_outbox_pop(&o);
    assert_string_equal(kaiser_outbox_peek(&o)->payload, "2"); /* "1" was the oldest non-critical */
    assert_int_equal(o.dropped_noncritical, 1);
    kaiser_outbox_clear(&o);
}

static void test_OfflineBuffer_ShouldKeepCriticalOutcomes_WhenFullOfCritical(void **state) {
    (void)state;
    kaiser_outbox_t o;
    kaiser_outbox_init(&o);
    for (int i = 0; i < KAISER_OUTBOX_CAP; i++) push(&o, i, true);
    assert_int_equal(kaiser_outbox_push(&o, "t/x", "x", 1, 1, false, false), KAISER_OUTBOX_DROPPED_NEW);
    assert_int_equal(o.count, 100);
    assert_string_equal(kaiser_outbox_peek(&o)->payload, "0");
    assert_int_equal(kaiser_outbox_push(&o, "t/c", "c", 1, 1, false, true), KAISER_OUTBOX_EVICTED_CRITICAL);
    assert_string_equal(kaiser_outbox_peek(&o)->payload, "1");
    assert_int_equal(o.dropped_critical, 1);
    kaiser_outbox_clear(&o);
    assert_int_equal(o.count, 0);
}

static void test_Dedupe_ShouldRememberResult_AndForgetAfter64(void **state) {
    (void)state;
    kaiser_dedupe_t d;
    kaiser_dedupe_init(&d);
    bool ok = false;
    assert_false(kaiser_dedupe_seen(&d, "a", &ok));
    kaiser_dedupe_remember(&d, "a", true);
    assert_true(kaiser_dedupe_seen(&d, "a", &ok));
    assert_true(ok);
    assert_false(kaiser_dedupe_seen(&d, "", &ok));
    for (int i = 0; i < KAISER_DEDUPE_CAP; i++) {
        char id[16];
        snprintf(id, sizeof id, "id-%d", i);
        kaiser_dedupe_remember(&d, id, false);
    }
    assert_false(kaiser_dedupe_seen(&d, "a", &ok));
    assert_true(kaiser_dedupe_seen(&d, "id-63", &ok));
}

/* argv[1], when given, runs only the cmocka test of that name (one ctest per behaviour). */
int main(int argc, char **argv) {
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_CircuitBreaker_ShouldOpen_WhenFiveFailuresInClosed),
        cmocka_unit_test(test_CircuitBreaker_ShouldGoHalfOpenAfter30s_AndCloseOnSuccess),
        cmocka_unit_test(test_CircuitBreaker_ShouldReopen_WhenHalfOpenFailsOrWindowExpires),
        cmocka_unit_test(test_CircuitBreaker_ShouldIgnoreSuccess_WhenOpen),
        cmocka_unit_test(test_Backoff_ShouldGrowAndCap_WithBoundedJitter),
        cmocka_unit_test(test_OfflineBuffer_ShouldReplayInFifoOrder_WhenNotFull),
        cmocka_unit_test(test_OfflineBuffer_ShouldEvictOldestNoncritical_WhenFull),
        cmocka_unit_test(test_OfflineBuffer_ShouldKeepCriticalOutcomes_WhenFullOfCritical),
        cmocka_unit_test(test_Dedupe_ShouldRememberResult_AndForgetAfter64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
