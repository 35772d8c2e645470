/* Unit tests of the circuit breaker state machine (platform/src/breaker.c).
 * The clock is injected: every time below is a made-up monotonic millisecond
 * value, so the tests never sleep and never depend on the machine's speed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "platform/breaker.h"
#include "platform/clock.h"

enum { THRESHOLD = 3, COOLDOWN_MS = 2000, T0 = 100000 };

static int setup_breaker(void **state)
{
    static struct bh_breaker b;

    bh_breaker_init(&b, "test", THRESHOLD, COOLDOWN_MS);
    *state = &b;
    return 0;
}

static int teardown_breaker(void **state)
{
    struct bh_breaker *b = *state;

    pthread_mutex_destroy(&b->lock);
    return 0;
}

/* Drives a closed breaker to open with THRESHOLD failures at time t. */
static void fail_until_open(struct bh_breaker *b, int64_t t)
{
    for (int i = 0; i < THRESHOLD; i++) {
        assert_true(bh_breaker_allow(b, t));
        bh_breaker_failure(b, t);
    }
    assert_int_equal(bh_breaker_state(b), BH_BREAKER_OPEN);
}

static void breaker_starts_closed_and_allows_calls(void **state)
{
    struct bh_breaker *b = *state;

    assert_int_equal(bh_breaker_state(b), BH_BREAKER_CLOSED);
    for (int i = 0; i < 10; i++)
        assert_true(bh_breaker_allow(b, T0 + i));
}

static void breaker_stays_closed_below_threshold(void **state)
{
    struct bh_breaker *b = *state;

    for (int i = 0; i < THRESHOLD - 1; i++)
        bh_breaker_failure(b, T0);
    assert_int_equal(bh_breaker_state(b), BH_BREAKER_CLOSED);
    assert_true(bh_breaker_allow(b, T0));
}

static void breaker_success_resets_the_failure_count(void **state)
{
    struct bh_breaker *b = *state;

    /* Failures must be in a row: a success in between starts over. */
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < THRESHOLD - 1; i++)
            bh_breaker_failure(b, T0);
        bh_breaker_success(b);
    }
    assert_int_equal(bh_breaker_state(b), BH_BREAKER_CLOSED);
}

static void breaker_opens_after_threshold_failures(void **state)
{
    struct bh_breaker *b = *state;

    fail_until_open(b, T0);
    assert_false(bh_breaker_allow(b, T0));
}

static void breaker_refuses_calls_until_the_cooldown_ends(void **state)
{
    struct bh_breaker *b = *state;

    fail_until_open(b, T0);
    assert_false(bh_breaker_allow(b, T0 + 1));
    assert_false(bh_breaker_allow(b, T0 + COOLDOWN_MS - 1));
    assert_int_equal(bh_breaker_state(b), BH_BREAKER_OPEN);
}

static void breaker_allows_one_trial_after_cooldown(void **state)
{
    struct bh_breaker *b = *state;

    fail_until_open(b, T0);
    assert_true(bh_breaker_allow(b, T0 + COOLDOWN_MS));
    assert_int_equal(bh_breaker_state(b), BH_BREAKER_HALF_OPEN);
    /* While the trial is in flight, every other call is refused. */
    assert_false(bh_breaker_allow(b, T0 + COOLDOWN_MS));
    assert_false(bh_breaker_allow(b, T0 + 10 * COOLDOWN_MS));
}

static void breaker_closes_after_successful_trial(void **state)
{
    struct bh_breaker *b = *state;

    fail_until_open(b, T0);
    assert_true(bh_breaker_allow(b, T0 + COOLDOWN_MS));
    bh_breaker_success(b);
    assert_int_equal(bh_breaker_state(b), BH_BREAKER_CLOSED);
    assert_true(bh_breaker_allow(b, T0 + COOLDOWN_MS));
    assert_true(bh_breaker_allow(b, T0 + COOLDOWN_MS));
}

static void breaker_reopens_when_trial_fails(void **state)
{
    struct bh_breaker *b = *state;
    const int64_t trial_at = T0 + COOLDOWN_MS + 500;

    fail_until_open(b, T0);
    assert_true(bh_breaker_allow(b, trial_at));
    bh_breaker_failure(b, trial_at);
    assert_int_equal(bh_breaker_state(b), BH_BREAKER_OPEN);
    /* The new cool-down counts from the failed trial, not the first opening. */
    assert_false(bh_breaker_allow(b, trial_at + COOLDOWN_MS - 1));
    assert_true(bh_breaker_allow(b, trial_at + COOLDOWN_MS));
    assert_int_equal(bh_breaker_state(b), BH_BREAKER_HALF_OPEN);
}

static void breaker_reopens_after_a_single_failure_once_a_trial_failed(void **state)
{
    struct bh_breaker *b = *state;

    /* Half-open is not closed: one failed trial is enough to open again,
     * whatever the threshold. */
    fail_until_open(b, T0);
    assert_true(bh_breaker_allow(b, T0 + COOLDOWN_MS));
    bh_breaker_failure(b, T0 + COOLDOWN_MS);
    assert_false(bh_breaker_allow(b, T0 + COOLDOWN_MS + 1));
}

static void late_failure_does_not_extend_the_cooldown(void **state)
{
    struct bh_breaker *b = *state;

    /* A call let through before the breaker opened reports afterwards. */
    fail_until_open(b, T0);
    bh_breaker_failure(b, T0 + 1500);
    assert_true(bh_breaker_allow(b, T0 + COOLDOWN_MS));
}

static void breaker_needs_threshold_failures_again_after_closing(void **state)
{
    struct bh_breaker *b = *state;

    fail_until_open(b, T0);
    assert_true(bh_breaker_allow(b, T0 + COOLDOWN_MS));
    bh_breaker_success(b);
    for (int i = 0; i < THRESHOLD - 1; i++)
        bh_breaker_failure(b, T0 + COOLDOWN_MS + 1);
    assert_int_equal(bh_breaker_state(b), BH_BREAKER_CLOSED);
}

static void state_names_are_stable(void **state)
{
    (void)state;
    assert_string_equal(bh_breaker_state_name(BH_BREAKER_CLOSED), "closed");
    assert_string_equal(bh_breaker_state_name(BH_BREAKER_OPEN), "open");
    assert_string_equal(bh_breaker_state_name(BH_BREAKER_HALF_OPEN), "half_open");
}

static void monotonic_clock_never_goes_backwards(void **state)
{
    int64_t a = bh_now_ms();
    int64_t b = bh_now_ms();

    (void)state;
    assert_true(a > 0);
    assert_true(b >= a);
}

static void sleep_waits_its_milliseconds_and_none_for_zero(void **state)
{
    (void)state;
    int64_t t0 = bh_now_ms();
    bh_sleep_ms(30);
    int64_t t1 = bh_now_ms();
    assert_true(t1 - t0 >= 30);
    bh_sleep_ms(0);
    bh_sleep_ms(-5);
    assert_true(bh_now_ms() - t1 < 25);
}

int main(void)
{
#define BREAKER_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup_breaker, teardown_breaker)
    const struct CMUnitTest tests[] = {
        BREAKER_TEST(breaker_starts_closed_and_allows_calls),
        BREAKER_TEST(breaker_stays_closed_below_threshold),
        BREAKER_TEST(breaker_success_resets_the_failure_count),
        BREAKER_TEST(breaker_opens_after_threshold_failures),
        BREAKER_TEST(breaker_refuses_calls_until_the_cooldown_ends),
        BREAKER_TEST(breaker_allows_one_trial_after_cooldown),
        BREAKER_TEST(breaker_closes_after_successful_trial),
        BREAKER_TEST(breaker_reopens_when_trial_fails),
        BREAKER_TEST(breaker_reopens_after_a_single_failure_once_a_trial_failed),
        BREAKER_TEST(late_failure_does_not_extend_the_cooldown),
        BREAKER_TEST(breaker_needs_threshold_failures_again_after_closing),
        cmocka_unit_test(state_names_are_stable),
        cmocka_unit_test(monotonic_clock_never_goes_backwards),
        cmocka_unit_test(sleep_waits_its_milliseconds_and_none_for_zero),
    };
#undef BREAKER_TEST
    return cmocka_run_group_tests_name("breaker", tests, NULL, NULL);
}
