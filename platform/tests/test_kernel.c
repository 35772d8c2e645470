/* Unit tests of the platform's pure pieces: arena, UUIDs, JSON guards,
 * the error-to-status mapping and the metrics exposition. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "platform/arena.h"
#include "platform/err.h"
#include "platform/http.h"
#include "platform/json.h"
#include "platform/metrics.h"
#include "platform/uuid.h"

static void arena_allocations_are_zeroed_aligned_and_survive_growth(void **state)
{
    struct bh_arena *a = bh_arena_new();
    assert_non_null(a);
    char *first = bh_arena_strdup(a, "first");
    for (int i = 0; i < 1000; i++) {
        unsigned char *p = bh_arena_alloc(a, 100);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
        for (int k = 0; k < 100; k++)
            assert_int_equal(p[k], 0);
        memset(p, 0xAB, 100);
    }
    char *big = bh_arena_alloc(a, 1 << 20);
    assert_non_null(big);
    assert_string_equal(first, "first");
    assert_string_equal(bh_arena_printf(a, "%s-%d", "x", 42), "x-42");
    assert_string_equal(bh_arena_strndup(a, "abcdef", 3), "abc");
    bh_arena_free(a);
}

static void uuid_parse_accepts_any_case_and_rejects_garbage(void **state)
{
    bh_uuid u;
    assert_true(bh_uuid_parse("0F8FAD5B-D9CB-469F-A165-70867728950E", &u));
    assert_string_equal(u.str, "0f8fad5b-d9cb-469f-a165-70867728950e");
    assert_false(bh_uuid_parse("0f8fad5b-d9cb-469f-a165-70867728950", &u));
    assert_false(bh_uuid_parse("0f8fad5b-d9cb-469f-a165-70867728950ez", &u));
    assert_false(bh_uuid_parse("0f8fad5bxd9cb-469f-a165-70867728950e", &u));
    assert_false(bh_uuid_parse("'; DROP TABLE users; --------------", &u));
    assert_false(bh_uuid_parse(NULL, &u));
}

static void uuid_v7_is_time_ordered_and_versioned(void **state)
{
    bh_uuid a = bh_uuid_v7(), b = bh_uuid_v7(), r = bh_uuid_v4(), p;
    assert_true(bh_uuid_parse(a.str, &p));
    assert_int_equal(a.str[14], '7');
    assert_int_equal(r.str[14], '4');
    assert_true(strncmp(a.str, b.str, 13) <= 0); /* same or later millisecond */
}

static void json_depth_guard_counts_nesting_outside_strings(void **state)
{
    const char *flat = "{\"a\": \"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"}";
    assert_false(bh_json_too_deep(flat, strlen(flat), 3));
    const char *deep = "{\"a\":[[[[1]]]]}";
    assert_true(bh_json_too_deep(deep, strlen(deep), 4));
    assert_false(bh_json_too_deep(deep, strlen(deep), 5));
    const char *escaped = "{\"a\":\"\\\"[[[[[[\"}";
    assert_false(bh_json_too_deep(escaped, strlen(escaped), 1));
}

static void utf8_length_counts_characters_not_bytes(void **state)
{
    assert_int_equal(bh_utf8_len(""), 0);
    assert_int_equal(bh_utf8_len("abc"), 3);
    assert_int_equal(bh_utf8_len("h\xc3\xa9llo"), 5);      /* é */
    assert_int_equal(bh_utf8_len("\xf0\x9f\x98\x80!"), 2); /* emoji */
}

static void every_error_maps_to_one_status(void **state)
{
    assert_int_equal(bh_err_status(BH_EINVAL), 400);
    assert_int_equal(bh_err_status(BH_EUNAUTH), 401);
    assert_int_equal(bh_err_status(BH_ELIMIT), 402);
    assert_int_equal(bh_err_status(BH_EFORBIDDEN), 403);
    assert_int_equal(bh_err_status(BH_ENOTFOUND), 404);
    assert_int_equal(bh_err_status(BH_ECONFLICT), 409);
    assert_int_equal(bh_err_status(BH_EPRECONDITION), 412);
    assert_int_equal(bh_err_status(BH_EUNPROCESSABLE), 422);
    assert_int_equal(bh_err_status(BH_ERATELIMIT), 429);
    assert_int_equal(bh_err_status(BH_EUNAVAILABLE), 503);
    assert_int_equal(bh_err_status(BH_EINTERNAL), 500);
    assert_string_equal(bh_err_name(BH_ELIMIT), "plan_limit_exceeded");
}

static void metrics_render_counters_and_cumulative_histograms(void **state)
{
    struct bh_counter *c =
        bh_counter_get("bulkhead_http_t_requests_total", "Requests.", "route=\"/x\"");
    assert_ptr_equal(c,
                     bh_counter_get("bulkhead_http_t_requests_total", "Requests.", "route=\"/x\""));
    bh_counter_add(c, 3);
    struct bh_histogram *h = bh_histogram_get("bulkhead_http_t_latency_seconds", "Latency.", "");
    bh_histogram_observe(h, 0.0001);
    bh_histogram_observe(h, 0.2);
    bh_histogram_observe(h, 100);
    size_t len = 0;
    char *text = bh_metrics_render(&len);
    assert_non_null(text);
    assert_non_null(strstr(text, "# TYPE bulkhead_http_t_requests_total counter\n"));
    assert_non_null(strstr(text, "bulkhead_http_t_requests_total{route=\"/x\"} 3\n"));
    assert_non_null(strstr(text, "bulkhead_http_t_latency_seconds_bucket{le=\"0.0005\"} 1\n"));
    assert_non_null(strstr(text, "bulkhead_http_t_latency_seconds_bucket{le=\"0.25\"} 2\n"));
    assert_non_null(strstr(text, "bulkhead_http_t_latency_seconds_bucket{le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(text, "bulkhead_http_t_latency_seconds_count 3\n"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(arena_allocations_are_zeroed_aligned_and_survive_growth),
        cmocka_unit_test(uuid_parse_accepts_any_case_and_rejects_garbage),
        cmocka_unit_test(uuid_v7_is_time_ordered_and_versioned),
        cmocka_unit_test(json_depth_guard_counts_nesting_outside_strings),
        cmocka_unit_test(utf8_length_counts_characters_not_bytes),
        cmocka_unit_test(every_error_maps_to_one_status),
        cmocka_unit_test(metrics_render_counters_and_cumulative_histograms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
