/* Cache-aside for single tasks in Redis, as the module's own ACL user:
 *   tasks:task:<id>  "<version> <org_id> <task JSON>", with a TTL
 *   tasks:fill:<id>  the single-flight fill lease (a random token, short PX)
 * A reader that misses takes the lease, reads Postgres and fills only if the
 * lease is still its own; a writer deletes both keys after it commits. So a
 * fill that raced a write is refused instead of caching the old version, and
 * one reader per key goes to Postgres when a hot entry expires.
 * Redis trouble is never an error here: callers get BH_EUNAVAILABLE and
 * answer from Postgres. Never cache anything but what Postgres returned. */
#include <hiredis/hiredis.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "platform/config.h"
#include "platform/err.h"
#include "platform/log.h"
#include "platform/metrics.h"
#include "platform/redis.h"

enum { LEASE_TTL_MS = 1000 };

/* Fills only while the lease holds the caller's token, then drops it.
 * KEYS: lease, entry. ARGV: token, entry text, TTL in ms. */
static const char FILL_SCRIPT[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                                  "redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3]) "
                                  "redis.call('DEL', KEYS[1]) return 1 end return 0";

static long ttl_ms = 60000;
static struct bh_counter *results[3];
static struct bh_counter *loads;

int tasks__cache_init(void)
{
    ttl_ms = bh_config_int("BULKHEAD_TASKS_CACHE_TTL_MS", 60000, 100, 86400000);
    static const char help[] = "GET-one task lookups by cache outcome.";
    results[TASKS__CACHE_HIT] =
        bh_counter_get("bulkhead_tasks_cache_requests_total", help, "result=\"hit\"");
    results[TASKS__CACHE_MISS] =
        bh_counter_get("bulkhead_tasks_cache_requests_total", help, "result=\"miss\"");
    results[TASKS__CACHE_BYPASS] =
        bh_counter_get("bulkhead_tasks_cache_requests_total", help, "result=\"bypass\"");
    loads =
        bh_counter_get("bulkhead_tasks_cache_db_loads_total",
                       "Tasks read from Postgres by the GET-one path (misses and bypasses).", "");
    return 0;
}

const char *tasks__cache_result_name(enum tasks__cache_result r)
{
    switch (r) {
    case TASKS__CACHE_HIT: return "hit";
    case TASKS__CACHE_MISS: return "miss";
    default: return "bypass";
    }
}

void tasks__cache_count(enum tasks__cache_result r)
{
    bh_counter_add(results[r], 1);
}
void tasks__cache_count_load(void)
{
    bh_counter_add(loads, 1);
}

int tasks__cache_get(struct bh_arena *a, const char *id, const char **entry, size_t *len)
{
    redisReply *r = NULL;
    int rc = bh_redis(&r, "GET tasks:task:%s", id);
    if (rc != 0) {
        rc = BH_EUNAVAILABLE; /* an error reply is as good as no cache */
    } else if (r->type == REDIS_REPLY_STRING) {
        char *copy = bh_arena_strndup(a, r->str, r->len);
        *entry = copy;
        *len = r->len;
        rc = copy ? 0 : BH_ENOMEM;
    } else {
        rc = BH_ENOTFOUND;
    }
    if (r)
        freeReplyObject(r);
    return rc;
}

int tasks__cache_lease(const char *id, char token[33])
{
    unsigned char raw[16];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(token, 33, raw, sizeof raw);
    redisReply *r = NULL;
    int rc = bh_redis(&r, "SET tasks:fill:%s %s NX PX %d", id, token, LEASE_TTL_MS);
    if (rc != 0)
        rc = BH_EUNAVAILABLE;
    else if (r->type != REDIS_REPLY_STATUS) /* nil: someone else holds it */
        rc = BH_ECONFLICT;
    if (r)
        freeReplyObject(r);
    return rc;
}

void tasks__cache_fill(const char *id, const char *token, const char *entry, size_t len)
{
    /* +-10 % jitter: entries filled together do not all expire together. */
    long jitter = ttl_ms / 10;
    long ttl = ttl_ms - jitter + (long)randombytes_uniform((uint32_t)(2 * jitter + 1));
    char lease[64], key[64];
    snprintf(lease, sizeof lease, "tasks:fill:%s", id);
    snprintf(key, sizeof key, "tasks:task:%s", id);
    redisReply *r = NULL;
    if (bh_redis(&r, "EVAL %s 2 %s %s %s %b %ld", FILL_SCRIPT, lease, key, token, entry, len,
                 ttl) == 0 &&
        r->type == REDIS_REPLY_INTEGER && r->integer == 0)
        bh_log_debug("task %s changed while it was read: not cached", id);
    if (r)
        freeReplyObject(r);
}

void tasks__cache_invalidate(const char *id)
{
    redisReply *r = NULL;
    int rc = bh_redis(&r, "DEL tasks:task:%s tasks:fill:%s", id, id);
    if (rc != 0)
        /* The entry, if Redis kept one, expires within the TTL. */
        bh_log_warn("could not invalidate the cached task %s: %s", id, bh_err_name(rc));
    if (r)
        freeReplyObject(r);
}
