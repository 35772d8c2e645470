/* Unit tests of exponential backoff with full jitter (platform/src/backoff.c).
 * The random source is injected: each test scripts the values it returns, so
 * the expected delays are exact and nothing sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "backoff.h"

/* A scripted random source: returns values[0], values[1], ... in turn. */
struct scripted {
    const uint64_t *values;
    int n, next;
};

static uint64_t scripted_random(void *arg)
{
    struct scripted *s = arg;

    assert_true(s->next < s->n);
    return s->values[s->next++];
}

static void cap_doubles_from_base_after_each_failure(void **state)
{
    const struct bh__backoff b = {.base_ms = 100, .max_ms = 100000};

    assert_int_equal(bh__backoff_cap_ms(&b, 1), 100);
    assert_int_equal(bh__backoff_cap_ms(&b, 2), 200);
    assert_int_equal(bh__backoff_cap_ms(&b, 3), 400);
    assert_int_equal(bh__backoff_cap_ms(&b, 8), 12800);
}

static void cap_never_exceeds_max_even_for_huge_attempts(void **state)
{
    const struct bh__backoff b = {.base_ms = 1000, .max_ms = 3600000};

    assert_int_equal(bh__backoff_cap_ms(&b, 12), 2048000);
    assert_int_equal(bh__backoff_cap_ms(&b, 13), 3600000);
    assert_int_equal(bh__backoff_cap_ms(&b, 64), 3600000);
    assert_int_equal(bh__backoff_cap_ms(&b, 1000000), 3600000);
}

static void cap_survives_bounds_that_would_overflow(void **state)
{
    const struct bh__backoff b = {.base_ms = INT64_MAX / 3, .max_ms = INT64_MAX};

    assert_int_equal(bh__backoff_cap_ms(&b, 2), (INT64_MAX / 3) * 2);
    assert_int_equal(bh__backoff_cap_ms(&b, 3), INT64_MAX);
}

static void cap_treats_bad_bounds_as_the_smallest_sane_ones(void **state)
{
    const struct bh__backoff zero = {.base_ms = 0, .max_ms = 0};
    const struct bh__backoff inverted = {.base_ms = 500, .max_ms = 10};

    assert_int_equal(bh__backoff_cap_ms(&zero, 5), 1);
    assert_int_equal(bh__backoff_cap_ms(&inverted, 3), 500);
}

static void delay_spans_zero_to_cap_inclusive(void **state)
{
    const struct bh__backoff b = {.base_ms = 100, .max_ms = 100000};
    /* attempt 3: cap 400, so the delay is r mod 401. */
    const uint64_t values[] = {0, 400, 401, 802 + 7};
    struct scripted s = {values, 4, 0};

    assert_int_equal(bh__backoff_delay_ms(&b, 3, scripted_random, &s), 0);
    assert_int_equal(bh__backoff_delay_ms(&b, 3, scripted_random, &s), 400);
    assert_int_equal(bh__backoff_delay_ms(&b, 3, scripted_random, &s), 0);
    assert_int_equal(bh__backoff_delay_ms(&b, 3, scripted_random, &s), 7);
}

static void delay_redraws_values_that_would_bias_low_delays(void **state)
{
    const struct bh__backoff b = {.base_ms = 100, .max_ms = 100};
    /* span 101: the top (UINT64_MAX % 101) + 1 values are rejected. */
    const uint64_t top = UINT64_MAX - UINT64_MAX % 101;
    const uint64_t values[] = {UINT64_MAX, top, 205};
    struct scripted s = {values, 3, 0};

    assert_int_equal(bh__backoff_delay_ms(&b, 1, scripted_random, &s), 205 % 101);
    assert_int_equal(s.next, 3);
}

static void delay_never_exceeds_its_cap(void **state)
{
    const struct bh__backoff b = {.base_ms = 50, .max_ms = 5000};

    for (int attempt = 1; attempt <= 20; attempt++)
        for (int i = 0; i < 200; i++) {
            int64_t d = bh__backoff_delay_ms(&b, attempt, bh__backoff_os_random, NULL);

            assert_true(d >= 0);
            assert_true(d <= bh__backoff_cap_ms(&b, attempt));
        }
}

/* Full jitter spreads retries over the whole window: with a fair source the
 * mean is close to cap / 2 (not close to cap, as with "equal jitter"). */
static void delay_mean_is_half_the_cap_with_a_fair_source(void **state)
{
    const struct bh__backoff b = {.base_ms = 1000, .max_ms = 1000};
    double sum = 0;
    enum { N = 20000 };

    for (int i = 0; i < N; i++)
        sum += (double)bh__backoff_delay_ms(&b, 1, bh__backoff_os_random, NULL);
    assert_true(sum / N > 470 && sum / N < 530);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cap_doubles_from_base_after_each_failure),
        cmocka_unit_test(cap_never_exceeds_max_even_for_huge_attempts),
        cmocka_unit_test(cap_survives_bounds_that_would_overflow),
        cmocka_unit_test(cap_treats_bad_bounds_as_the_smallest_sane_ones),
        cmocka_unit_test(delay_spans_zero_to_cap_inclusive),
        cmocka_unit_test(delay_redraws_values_that_would_bias_low_delays),
        cmocka_unit_test(delay_never_exceeds_its_cap),
        cmocka_unit_test(delay_mean_is_half_the_cap_with_a_fair_source),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
