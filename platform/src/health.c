/* /health/live, /health/ready and /metrics (an operational route: behind
 * the ops token). Readiness checks every module's Postgres pool and Redis
 * user and says which is down. The Postgres checks
 * share one short budget, so a frozen database cannot hold the probe; the
 * Redis checks are bounded by the Redis timeout and fail fast once a user's
 * breaker is open.
 *
 * The warm-up runs every one of those checks once at start, all at once,
 * one thread each: so the pools' first connections (a SCRAM exchange for
 * Postgres, AUTH for Redis) open side by side while the process is still
 * starting, instead of one after another inside the first probe. The
 * first probe waits for the warm-up (within its budget) rather than
 * opening second connections of its own; what the warm-up could not open
 * the probe retries, so a process started during an outage becomes ready
 * when the dependency comes back. */
#include "platform/health.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "platform/clock.h"
#include "platform/db.h"
#include "platform/err.h"
#include "platform/log.h"
#include "platform/metrics.h"
#include "platform/redis.h"

enum {
    READY_TIMEOUT_MS = 500,
    /* A frozen database holds a warm-up thread (and a shutdown that joins
     * it) this long at most; the connect also stops at DATABASE_URL's budget. */
    WARM_PG_TIMEOUT_MS = 5000,
};

static const char *const *checked;
static int n_checked;

/* One check of the warm-up: a Postgres pool or a Redis user. */
struct warm_check {
    pthread_t thread;
    bool started;
    const char *name;
    bool redis;
    bool up;
};

/* The warm-up's threads and what they found; pending is guarded by lock. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t done; /* broadcast when pending reaches 0 */
    struct warm_check *checks;
    int n_checks;
    int pending;
    int64_t started_ms;
} warm = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void pool_gauges(struct bh_buf *out, void *arg);

void bh_health_init(const char *const *modules, int n_modules)
{
    checked = modules;
    n_checked = n_modules;
    bh_gauge_register("bulkhead_db_pool_connections",
                      "Postgres pool connections per module by state.", pool_gauges, NULL);
}

/* Says once what the warm-up opened and how long it took. Under warm.lock. */
static void warm_report(void)
{
    char failed[256];
    size_t len = 0;
    int up = 0;

    failed[0] = '\0';
    for (int i = 0; i < warm.n_checks; i++) {
        const struct warm_check *w = &warm.checks[i];
        if (w->up) {
            up++;
        } else if (len < sizeof failed) {
            int n = snprintf(failed + len, sizeof failed - len, " %s.%s",
                             w->redis ? "redis" : "postgres", w->name);
            len += n > 0 ? (size_t)n : 0;
        }
    }
    bh_log(up == warm.n_checks ? BH_LOG_INFO : BH_LOG_WARN, "platform",
           "warm-up: %d of %d connections open in %lld ms%s%s", up, warm.n_checks,
           (long long)(bh_now_ms() - warm.started_ms), failed[0] ? "; not reachable:" : "", failed);
}

static void *warm_main(void *arg)
{
    struct warm_check *w = arg;
    int64_t t0 = bh_now_ms();
    bool up = w->redis ? bh_redis_ping(w->name) == 0 : bh_db_ping(w->name, WARM_PG_TIMEOUT_MS) == 0;

    bh_log(BH_LOG_DEBUG, "platform", "warm-up: %s.%s %s in %lld ms",
           w->redis ? "redis" : "postgres", w->name, up ? "up" : "down",
           (long long)(bh_now_ms() - t0));

    pthread_mutex_lock(&warm.lock);
    w->up = up;
    if (--warm.pending == 0) {
        warm_report();
        pthread_cond_broadcast(&warm.done);
    }
    pthread_mutex_unlock(&warm.lock);
    return NULL;
}

int bh_health_warm_up(void)
{
    pthread_condattr_t attr;
    int n = 2 * (n_checked + 1), rc = 0;

    struct warm_check *checks;

    if (warm.checks != NULL)
        return BH_EINVAL; /* once per process */
    checks = calloc((size_t)n, sizeof *checks);
    if (checks == NULL)
        return BH_ENOMEM;
    /* Waits are budgets: measure them on a clock that never jumps. */
    if (pthread_condattr_init(&attr) != 0) {
        free(checks);
        return BH_ENOMEM;
    }
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    rc = pthread_cond_init(&warm.done, &attr) != 0 ? BH_ENOMEM : 0;
    pthread_condattr_destroy(&attr);
    if (rc != 0) {
        free(checks);
        return rc;
    }
    pthread_mutex_lock(&warm.lock);
    warm.checks = checks;
    warm.started_ms = bh_now_ms();
    for (int i = 0; i < n; i++) {
        struct warm_check *w = &warm.checks[warm.n_checks];
        int m = i / 2 - 1;

        w->name = m < 0 ? "platform" : checked[m];
        w->redis = i % 2 == 1;
        if (pthread_create(&w->thread, NULL, warm_main, w) != 0) {
            /* The checks not started are left to the first probe. */
            bh_log(BH_LOG_WARN, "platform", "warm-up: cannot start a thread; %d of %d checks run",
                   warm.n_checks, n);
            break;
        }
        w->started = true;
        warm.n_checks++;
        warm.pending++;
    }
    pthread_mutex_unlock(&warm.lock);
    return 0;
}

void bh_health_shutdown(void)
{
    if (warm.checks == NULL)
        return;
    for (int i = 0; i < warm.n_checks; i++)
        if (warm.checks[i].started)
            pthread_join(warm.checks[i].thread, NULL);
    pthread_cond_destroy(&warm.done);
    free(warm.checks);
    warm.checks = NULL;
    warm.n_checks = 0;
}

/* Waits until the warm-up is over or deadline_ms (monotonic) comes. */
static void warm_wait(int64_t deadline_ms)
{
    pthread_mutex_lock(&warm.lock);
    if (warm.checks != NULL) {
        int64_t left = deadline_ms - bh_now_ms();
        struct timespec until = bh_deadline_ms(left > 0 ? (int)left : 0);

        while (warm.pending > 0 && pthread_cond_timedwait(&warm.done, &warm.lock, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&warm.lock);
}

void bh_health_warm_wait(void)
{
    /* Every check ends by itself: Redis within its timeout, Postgres
     * within WARM_PG_TIMEOUT_MS. */
    warm_wait(bh_now_ms() + WARM_PG_TIMEOUT_MS + 1000);
}

static int live(struct bh_req *req)
{
    return bh_reply_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

/* The readiness policy (docs/adr/0003-readiness-policy.md): Postgres is
 * required, so any module's Postgres down is 503; Redis is not (reads fall
 * back to Postgres, events wait in the outbox), so Redis down is 200 with
 * status "degraded" and the failed checks named: a Redis outage must not
 * pull every replica out of the load balancer at once. */
static int ready(struct bh_req *req)
{
    json_t *pg = json_object(), *redis = json_object(), *failed = json_array();
    bool pg_ok = true, redis_ok = true;
    /* One budget for all the checks: a frozen Postgres costs it once, and
     * what is left unchecked when it runs out counts as down. */
    int64_t deadline = bh_now_ms() + READY_TIMEOUT_MS;
    /* While the warm-up opens the first connections, checking now would
     * open second ones, one after another: wait for it instead. */
    warm_wait(deadline);
    for (int i = -1; i < n_checked; i++) {
        const char *name = i < 0 ? "platform" : checked[i];
        int64_t left = deadline - bh_now_ms();
        bool pg_up = left > 0 && bh_db_ping(name, (int)left) == 0;
        bool redis_up = bh_redis_ping(name) == 0;
        pg_ok = pg_ok && pg_up;
        redis_ok = redis_ok && redis_up;
        json_object_set_new(pg, name, json_string(pg_up ? "up" : "down"));
        json_object_set_new(redis, name, json_string(redis_up ? "up" : "down"));
        if (!pg_up)
            json_array_append_new(failed, json_sprintf("postgres.%s", name));
        if (!redis_up)
            json_array_append_new(failed, json_sprintf("redis.%s", name));
    }
    const char *status = !pg_ok ? "unavailable" : !redis_ok ? "degraded" : "ready";
    json_t *body = json_pack("{s:s, s:o, s:{s:o, s:o}}", "status", status, "failed", failed,
                             "checks", "postgres", pg, "redis", redis);
    if (!pg_ok)
        bh_reply_header(req, "Retry-After", "1");
    bh_reply_header(req, "Cache-Control", "no-store");
    return bh_reply_json(req, pg_ok ? 200 : 503, body);
}

static void pool_gauges(struct bh_buf *out, void *arg)
{
    for (int i = -1; i < n_checked; i++) {
        const char *name = i < 0 ? "platform" : checked[i];
        struct bh_db_pool_stats s;
        if (bh_db_pool_stats(name, &s) != 0)
            continue;
        bh_metrics_printf(out, "bulkhead_db_pool_connections{module=\"%s\",state=\"in_use\"} %d\n",
                          name, s.in_use);
        bh_metrics_printf(out, "bulkhead_db_pool_connections{module=\"%s\",state=\"open\"} %d\n",
                          name, s.open);
        bh_metrics_printf(out, "bulkhead_db_pool_connections{module=\"%s\",state=\"size\"} %d\n",
                          name, s.size);
        bh_metrics_printf(out, "bulkhead_db_pool_connections{module=\"%s\",state=\"waiting\"} %d\n",
                          name, s.waiting);
    }
}

static int metrics(struct bh_req *req)
{
    size_t len = 0;
    char *text = bh_metrics_render(&len);
    if (!text)
        return BH_ENOMEM;
    int rc = bh_reply_raw(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
    return rc;
}

const struct bh_route bh_health_routes[] = {
    {"GET", "/health/live", live, 0},
    {"GET", "/health/ready", ready, 0},
    {"GET", "/metrics", metrics, BH_ROUTE_OPS},
};
const size_t bh_health_routes_count = sizeof bh_health_routes / sizeof bh_health_routes[0];
