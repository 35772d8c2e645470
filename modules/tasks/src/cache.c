/* Cache-aside for single tasks in Redis, as the module's own ACL user:
 *   tasks:task:<id>  "<version> <org_id> <task JSON>", with a TTL
 *   tasks:fill:<id>  the single-flight fill lease (a random token, short PX)
 * A reader that misses takes the lease, reads Postgres and fills only if the
 * lease is still its own; a writer deletes both keys after it commits. So a
 * fill that raced a write is refused instead of caching the old version, and
 * one reader per key goes to Postgres when a hot entry expires.
 * Reads go through this process's near cache (platform/nearcache.h), which
 * Redis keeps exact by invalidation messages for "tasks:*"; writes go to
 * Redis, and every process's near cache drops the key when Redis says so.
 * Redis trouble is never an error here: callers get BH_EUNAVAILABLE and
 * answer from Postgres. An invalidation Redis missed is kept and replayed
 * before this process reads the cache again, so an entry that survived an
 * outage (Redis keeps its data across restarts) is never served stale.
 * Never cache anything but what Postgres returned. */
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "platform/config.h"
#include "platform/err.h"
#include "platform/log.h"
#include "platform/metrics.h"
#include "lua_scripts.h"
#include "platform/nearcache.h"
#include "platform/redis.h"

enum {
    LEASE_TTL_MS = 1000,
    MAX_PENDING = 1024, /* invalidations kept while Redis is unreachable */
    KEY_LEN = 52,       /* "tasks:task:" or "tasks:listver:" + a UUID */
};

static long ttl_ms = 60000;
static struct bh_counter *results[3];
static struct bh_counter *loads;

/* Invalidations Redis did not take (it was down): the keys to delete before
 * this process trusts the cache again. n_pending is read without the lock on
 * the hot path; it is only a hint, the lock guards the list. */
static pthread_mutex_t pending_lock = PTHREAD_MUTEX_INITIALIZER;
static char pending[MAX_PENDING][KEY_LEN];
static int pending_len;
static _Atomic int n_pending;
static bool pending_overflowed;

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

static void pending_add(const char *key)
{
    pthread_mutex_lock(&pending_lock);
    if (pending_len < MAX_PENDING) {
        snprintf(pending[pending_len++], KEY_LEN, "%s", key);
        atomic_store(&n_pending, pending_len);
    } else if (!pending_overflowed) {
        pending_overflowed = true;
        bh_log_error("more than %d task invalidations missed while Redis was down: "
                     "some entries may be stale until their TTL",
                     MAX_PENDING);
    }
    pthread_mutex_unlock(&pending_lock);
}

/* Deletes the keys whose invalidation Redis missed, in one DEL. 0 when none
 * are left, BH_EUNAVAILABLE when Redis still cannot take them. */
static int pending_replay(void)
{
    if (atomic_load_explicit(&n_pending, memory_order_relaxed) == 0)
        return 0;
    int rc = 0;
    pthread_mutex_lock(&pending_lock);
    if (pending_len > 0) {
        const char *argv[MAX_PENDING + 1];
        argv[0] = "DEL";
        for (int i = 0; i < pending_len; i++)
            argv[i + 1] = pending[i];
        redisReply *r = NULL;
        rc = bh_redis_argv(&r, pending_len + 1, argv, NULL);
        if (r)
            freeReplyObject(r);
        if (rc == 0) {
            bh_log_info("replayed %d task invalidations Redis had missed", pending_len);
            pending_len = 0;
            pending_overflowed = false;
            atomic_store(&n_pending, 0);
        } else {
            rc = BH_EUNAVAILABLE;
        }
    }
    pthread_mutex_unlock(&pending_lock);
    return rc;
}

int tasks__cache_get(struct bh_arena *a, const char *id, const char **entry, size_t *len)
{
    char key[KEY_LEN + 16];
    const char *keys[1] = {key};
    if (pending_replay() != 0)
        return BH_EUNAVAILABLE;
    snprintf(key, sizeof key, "tasks:task:%s", id);
    /* This process's near cache first, Redis behind it (platform/nearcache.h). */
    int rc = bh_nearcache_mget(a, 1, keys, entry, len, NULL);
    if (rc == BH_ENOMEM)
        return rc;
    if (rc != 0)
        return BH_EUNAVAILABLE; /* an error reply is as good as no cache */
    return *entry != NULL ? 0 : BH_ENOTFOUND;
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
    char ttl_text[24];
    snprintf(ttl_text, sizeof ttl_text, "%ld", ttl);
    const char *args[] = {lease, key, token, entry, ttl_text};
    const size_t lens[] = {strlen(lease), strlen(key), strlen(token), len, strlen(ttl_text)};
    redisReply *r = NULL;
    if (bh_redis_script(&tasks__lua_cache_fill, &r, 2, 5, args, lens) == 0 &&
        r->type == REDIS_REPLY_INTEGER && r->integer == 0)
        bh_log_debug("task %s changed while it was read: not cached", id);
    if (r)
        freeReplyObject(r);
}

void tasks__cache_release(const char *id, const char *token)
{
    char lease[64];
    snprintf(lease, sizeof lease, "tasks:fill:%s", id);
    const char *args[] = {lease, token};
    redisReply *r = NULL;
    /* Best effort: otherwise the lease expires on its own. */
    bh_redis_script(&tasks__lua_cache_release, &r, 1, 2, args, NULL);
    if (r)
        freeReplyObject(r);
}

void tasks__cache_invalidate(const char *id)
{
    redisReply *r = NULL;
    int rc = bh_redis(&r, "DEL tasks:task:%s tasks:fill:%s", id, id);
    if (rc != 0) {
        /* Redis may keep the entry across its outage: delete it before this
         * process reads the cache again. */
        bh_log_warn("could not invalidate the cached task %s (%s): will retry", id,
                    bh_err_name(rc));
        char key[KEY_LEN];
        snprintf(key, sizeof key, "tasks:task:%s", id);
        pending_add(key);
    }
    if (r)
        freeReplyObject(r);
}

/* ------------------------------------------------------------ list pages
 * First pages of task lists, per org and query:
 *   tasks:listver:<org>                 the org's list version (random token)
 *   tasks:page:<org>:<version>:<query>  "<next cursor>\n<body>": the page as it
 *                                       is sent (see http.c), with a TTL
 * Any committed change to the org's tasks deletes the version (after the
 * commit, like a task entry), so pages cached under it are never read
 * again and expire on their own. A page filled from a read that raced a
 * change lands under the old version: orphaned, never served. */

/* The org's list version in out (33 bytes): the current one, or a new one
 * when there is none. 0 or BH_EUNAVAILABLE. */
static int list_version(struct bh_arena *a, const char *org, char out[33])
{
    char key[KEY_LEN];
    const char *keys[1] = {key}, *val = NULL;
    size_t len = 0;
    snprintf(key, sizeof key, "tasks:listver:%s", org);
    for (int attempt = 0; attempt < 2; attempt++) {
        if (bh_nearcache_mget(a, 1, keys, &val, &len, NULL) != 0)
            return BH_EUNAVAILABLE;
        if (val != NULL && len == 32) {
            memcpy(out, val, 33);
            return 0;
        }
        unsigned char raw[16];
        randombytes_buf(raw, sizeof raw);
        sodium_bin2hex(out, 33, raw, sizeof raw);
        redisReply *r = NULL;
        int rc = bh_redis(&r, "SET %s %s NX PX %ld", key, out, ttl_ms);
        bool set = rc == 0 && r->type == REDIS_REPLY_STATUS;
        if (r)
            freeReplyObject(r);
        if (rc != 0)
            return BH_EUNAVAILABLE;
        if (set)
            return 0;
        /* Another reader set one first: read it. */
    }
    return BH_EUNAVAILABLE;
}

static void list_key(char *out, size_t size, const char *org, const char *version,
                     const char *query)
{
    unsigned char h[16];
    char hex[33];
    crypto_generichash(h, sizeof h, (const unsigned char *)query, strlen(query), NULL, 0);
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    snprintf(out, size, "tasks:page:%s:%s:%s", org, version, hex);
}

int tasks__list_cache_get(struct bh_arena *a, const char *org, const char *query, const char **page,
                          size_t *len, char version[33])
{
    char key[160];
    const char *keys[1] = {key};
    if (pending_replay() != 0 || list_version(a, org, version) != 0)
        return BH_EUNAVAILABLE;
    list_key(key, sizeof key, org, version, query);
    int rc = bh_nearcache_mget(a, 1, keys, page, len, NULL);
    if (rc == BH_ENOMEM)
        return rc;
    if (rc != 0)
        return BH_EUNAVAILABLE;
    return *page != NULL ? 0 : BH_ENOTFOUND;
}

void tasks__list_cache_fill(const char *org, const char *version, const char *query,
                            const char *page, size_t len)
{
    char key[160];
    list_key(key, sizeof key, org, version, query);
    redisReply *r = NULL;
    /* Best effort: a page that is not cached is read from Postgres. */
    bh_redis(&r, "SET %s %b PX %ld", key, page, len, ttl_ms);
    if (r)
        freeReplyObject(r);
}

void tasks__list_cache_invalidate_many(const bh_uuid *orgs, int n)
{
    enum { MAX = 64 };
    char keys[MAX][KEY_LEN];
    const char *argv[MAX + 1] = {"DEL"};
    size_t lens[MAX + 1] = {3};
    if (n > MAX) { /* more orgs than one command takes: one by one */
        for (int i = 0; i < n; i++)
            tasks__list_cache_invalidate(orgs[i].str);
        return;
    }
    for (int i = 0; i < n; i++) {
        snprintf(keys[i], KEY_LEN, "tasks:listver:%s", orgs[i].str);
        argv[i + 1] = keys[i];
        lens[i + 1] = strlen(keys[i]);
    }
    redisReply *r = NULL;
    int rc = bh_redis_argv(&r, n + 1, argv, lens);
    if (rc != 0) {
        bh_log_warn("could not invalidate the cached lists of %d orgs (%s): will retry", n,
                    bh_err_name(rc));
        for (int i = 0; i < n; i++) {
            char key[KEY_LEN];
            snprintf(key, sizeof key, "tasks:listver:%s", orgs[i].str);
            pending_add(key);
        }
    }
    if (r)
        freeReplyObject(r);
}

void tasks__list_cache_invalidate(const char *org)
{
    char key[KEY_LEN];
    snprintf(key, sizeof key, "tasks:listver:%s", org);
    redisReply *r = NULL;
    int rc = bh_redis(&r, "DEL %s", key);
    if (rc != 0) {
        bh_log_warn("could not invalidate the cached lists of org %s (%s): will retry", org,
                    bh_err_name(rc));
        pending_add(key);
    }
    if (r)
        freeReplyObject(r);
}
