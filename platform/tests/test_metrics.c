/* Unit tests of the metrics registry (platform/src/metrics.c): the one
 * naming rule, bulkhead_<part>_<what>_<unit>, and lookups that never wait
 * for the registry lock (held while /metrics renders). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics_internal.h"
#include "platform/metrics.h"

static void names_follow_bulkhead_part_what_unit(void **state)
{
    assert_true(bh__metric_name_valid("bulkhead_http_requests_total", "total"));
    assert_true(bh__metric_name_valid("bulkhead_jobs_wait_seconds", "seconds"));
    assert_true(bh__metric_name_valid("bulkhead_tasks_cache_requests_total", "total"));
    assert_true(bh__metric_name_valid("bulkhead_db_pool_connections", NULL));
    assert_true(bh__metric_name_valid("bulkhead_notifications_streams", NULL));
}

static void names_outside_the_rule_are_refused(void **state)
{
    assert_false(bh__metric_name_valid("bh_jobs_total", "total"));             /* old prefix */
    assert_false(bh__metric_name_valid("bulkhead_jobs_total", "total"));       /* no what */
    assert_false(bh__metric_name_valid("bulkhead_queue_runs_total", "total")); /* no such part */
    assert_false(bh__metric_name_valid("bulkhead_http_requests", "total"));    /* counter unit */
    assert_false(bh__metric_name_valid("bulkhead_http_wait_ms", "seconds"));
    assert_false(bh__metric_name_valid("bulkhead_http_Requests_total", "total"));
    assert_false(bh__metric_name_valid("bulkhead_http__total", "total"));
    assert_false(bh__metric_name_valid("bulkhead_http_", NULL));
    assert_false(bh__metric_name_valid(NULL, NULL));
}

static void registering_a_name_outside_the_rule_gives_no_handle(void **state)
{
    assert_null(bh_counter_get("bh_jobs_total", "Old name.", ""));
    assert_null(bh_counter_get("bulkhead_http_requests", "No unit.", ""));
    assert_null(bh_histogram_get("bulkhead_http_latency_ms", "Not seconds.", ""));
    bh_counter_add(NULL, 1); /* ignored, as documented */
    size_t len = 0;
    char *text = bh_metrics_render(&len);
    assert_non_null(text);
    assert_null(strstr(text, "bh_jobs_total"));
    assert_null(strstr(text, "bulkhead_http_latency_ms"));
    free(text);
}

/* A gauge callback runs while the registry renders, under its lock. A
 * lookup from another thread at that moment must not wait for it. */
static struct bh_counter *probe;
static atomic_bool looked_up;

static void *lookup_main(void *arg)
{
    struct bh_counter *c = bh_counter_get("bulkhead_http_probe_lookups_total", "Probe.", "");
    bh_counter_add(c, 1);
    atomic_store(&looked_up, c == probe);
    return NULL;
}

static void gauge_during_render(struct bh_buf *out, void *arg)
{
    pthread_t t;
    bool *done_in_time = arg;

    assert_int_equal(pthread_create(&t, NULL, lookup_main, NULL), 0);
    for (int i = 0; i < 200 && !atomic_load(&looked_up); i++)
        nanosleep(&(struct timespec){.tv_nsec = 5 * 1000 * 1000}, NULL);
    *done_in_time = atomic_load(&looked_up);
    bh_metrics_printf(out, "bulkhead_http_probe_gauge 1\n");
    /* With a lookup that takes the lock the thread finishes only after the
     * render: detach it rather than join it here. */
    pthread_detach(t);
}

static void a_lookup_does_not_wait_for_a_render_in_progress(void **state)
{
    static bool done_in_time;
    size_t len = 0;

    probe = bh_counter_get("bulkhead_http_probe_lookups_total", "Probe.", "");
    assert_non_null(probe);
    bh_gauge_register("bulkhead_http_probe_gauge", "Probe.", gauge_during_render, &done_in_time);
    char *text = bh_metrics_render(&len);
    assert_non_null(text);
    free(text);
    assert_true(done_in_time);
}

static void *register_shared(void *arg)
{
    *(struct bh_counter **)arg = bh_counter_get("bulkhead_http_shared_total", "Shared.", "k=\"v\"");
    return NULL;
}

static void many_threads_registering_one_name_share_one_handle(void **state)
{
    enum { N = 8 };
    pthread_t t[N];
    struct bh_counter *got[N];

    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_create(&t[i], NULL, register_shared, &got[i]), 0);
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    assert_non_null(got[0]);
    for (int i = 1; i < N; i++)
        assert_ptr_equal(got[0], got[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_follow_bulkhead_part_what_unit),
        cmocka_unit_test(names_outside_the_rule_are_refused),
        cmocka_unit_test(registering_a_name_outside_the_rule_gives_no_handle),
        cmocka_unit_test(a_lookup_does_not_wait_for_a_render_in_progress),
        cmocka_unit_test(many_threads_registering_one_name_share_one_handle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
