/* /health/live, /health/ready and /metrics (an operational route: behind
 * the ops token). Readiness checks every module's Postgres pool and Redis
 * user and says which is down. The Postgres checks
 * share one short budget, so a frozen database cannot hold the probe; the
 * Redis checks are bounded by the Redis timeout and fail fast once a user's
 * breaker is open. */
#include "platform/health.h"

#include <stdlib.h>

#include "platform/clock.h"
#include "platform/db.h"
#include "platform/err.h"
#include "platform/metrics.h"
#include "platform/redis.h"

enum { READY_TIMEOUT_MS = 500 };

static const char *const *checked;
static int n_checked;

static void pool_gauges(struct bh_buf *out, void *arg);

void bh_health_init(const char *const *modules, int n_modules)
{
    checked = modules;
    n_checked = n_modules;
    bh_gauge_register("bulkhead_db_pool_connections",
                      "Postgres pool connections per module by state.", pool_gauges, NULL);
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
