/* Near cache (platform/nearcache.h): a hash table per module in front of
 * Redis, emptied key by key by Redis's invalidation messages and entirely
 * whenever the connection that receives them is not up. It must never serve
 * a value Redis already replaced when the hit started (up to invalidations
 * still in flight inside Redis or the kernel), never insert a value read
 * before a racing write, and never hold anything while it is not tracking.
 *
 * Invariants, with `generation` bumped on every change of `tracking`:
 *   - a reader captures generation, then tracking, then the key's epoch,
 *     before it sends the read to Redis;
 *   - it inserts only under the key's stripe lock, and only if tracking is
 *     still true and neither generation nor the epoch moved;
 *   - an invalidation bumps the epoch and unlinks the key under the same
 *     lock; a flush sets tracking false, bumps generation, then empties every
 *     stripe. */
#include "platform/nearcache.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "platform/arena.h"
#include "platform/clock.h"
#include "platform/config.h"
#include "platform/err.h"
#include "platform/log.h"
#include "platform/metrics.h"
#include "platform/module.h"
#include "platform/redis.h"
#include "redis_internal.h"

enum {
    NC_MAX_CACHES = 16,
    NC_BUCKETS = 4096, /* a power of two */
    NC_STRIPES = 64,
    NC_KEY_MAX = 256,
    NC_RETRY_MIN_MS = 50,
    NC_RETRY_MAX_MS = 2000,
    NC_WAKE_MS = 100, /* how often the invalidation thread looks at its stop flag */
};

static const char INVALIDATE_CHANNEL[] = "__redis__:invalidate";

struct nc_entry {
    struct nc_entry *next;
    int64_t expires_ms;
    size_t klen, vlen;
    bool present; /* false: the key did not exist */
    char data[];  /* key, NUL, value, NUL */
};

struct nearcache {
    char user[BH_MODULE_NAME_MAX + 1];
    char prefix[BH_MODULE_NAME_MAX + 2]; /* "<user>:" */
    size_t prefix_len;
    pthread_t thread;
    atomic_bool stop;
    atomic_bool tracking; /* the invalidation connection is subscribed */
    atomic_int fd;        /* its socket, -1 when down */
    atomic_int in_flight; /* 1 while the thread reads and applies messages */
    atomic_uint_fast64_t generation;
    atomic_size_t bytes;
    atomic_uint_fast64_t entries, hits, misses, invalidations, flushes;
    struct bh_counter *c_hits, *c_misses, *c_invalidations, *c_flushes;
    pthread_mutex_t stripes[NC_STRIPES];
    struct nc_entry *buckets[NC_BUCKETS];    /* guarded by the bucket's stripe */
    atomic_uint_fast64_t epochs[NC_BUCKETS]; /* written under the stripe */
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct nearcache *_Atomic caches[NC_MAX_CACHES];
static bool gauges_registered; /* under registry_lock */

static struct {
    bool loaded, enabled;
    long ttl_ms;
    size_t max_bytes;
} settings; /* under registry_lock, read-only once a cache runs */

/* ---- table --------------------------------------------------------------------- */

static uint32_t key_hash(const char *k, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)k[i];
        h *= 16777619u;
    }
    return h;
}

static size_t bucket_of(uint32_t h)
{
    return h & (NC_BUCKETS - 1);
}

static pthread_mutex_t *stripe_of(struct nearcache *nc, size_t b)
{
    return &nc->stripes[b % NC_STRIPES];
}

static size_t entry_size(const struct nc_entry *e)
{
    return sizeof *e + e->klen + e->vlen + 2;
}

static void entry_free(struct nearcache *nc, struct nc_entry *e)
{
    atomic_fetch_sub(&nc->bytes, entry_size(e));
    atomic_fetch_sub(&nc->entries, 1);
    free(e);
}

/* Unlinks and frees key's entry in bucket b (stripe held). */
static void bucket_drop(struct nearcache *nc, size_t b, const char *key, size_t klen)
{
    for (struct nc_entry **pp = &nc->buckets[b]; *pp != NULL; pp = &(*pp)->next) {
        struct nc_entry *e = *pp;

        if (e->klen == klen && memcmp(e->data, key, klen) == 0) {
            *pp = e->next;
            entry_free(nc, e);
            return;
        }
    }
}

/* Empties bucket b (stripe held). */
static void bucket_clear(struct nearcache *nc, size_t b)
{
    struct nc_entry *e = nc->buckets[b];

    nc->buckets[b] = NULL;
    while (e != NULL) {
        struct nc_entry *next = e->next;

        entry_free(nc, e);
        e = next;
    }
}

/* Stops serving and empties the table. tracking goes false first, so no
 * reader captures a state this flush does not invalidate. */
static void nc_flush(struct nearcache *nc, bool count)
{
    atomic_store(&nc->tracking, false);
    atomic_fetch_add(&nc->generation, 1);
    for (size_t b = 0; b < NC_BUCKETS; b++) {
        pthread_mutex_t *m = stripe_of(nc, b);

        pthread_mutex_lock(m);
        bucket_clear(nc, b);
        pthread_mutex_unlock(m);
    }
    if (count) {
        atomic_fetch_add(&nc->flushes, 1);
        bh_counter_add(nc->c_flushes, 1);
    }
}

/* Applies one invalidated key: a later insert of a value read before now is
 * refused (epoch), and the entry goes. */
static void nc_invalidate(struct nearcache *nc, const char *key, size_t klen)
{
    size_t b = bucket_of(key_hash(key, klen));
    pthread_mutex_t *m = stripe_of(nc, b);

    pthread_mutex_lock(m);
    atomic_fetch_add(&nc->epochs[b], 1);
    bucket_drop(nc, b, key, klen);
    pthread_mutex_unlock(m);
    atomic_fetch_add(&nc->invalidations, 1);
    bh_counter_add(nc->c_invalidations, 1);
}

/* A hit copies the value into a: 1 on a hit, 0 on a miss, BH_ENOMEM. */
static int nc_lookup(struct nearcache *nc, struct bh_arena *a, const char *key, size_t klen,
                     const char **val, size_t *len)
{
    size_t b = bucket_of(key_hash(key, klen));
    pthread_mutex_t *m = stripe_of(nc, b);
    int64_t now = bh_now_ms();
    int rc = 0;

    pthread_mutex_lock(m);
    for (struct nc_entry **pp = &nc->buckets[b]; *pp != NULL; pp = &(*pp)->next) {
        struct nc_entry *e = *pp;

        if (e->klen != klen || memcmp(e->data, key, klen) != 0)
            continue;
        if (e->expires_ms <= now) {
            *pp = e->next;
            entry_free(nc, e);
            break;
        }
        if (!e->present) {
            *val = NULL;
            *len = 0;
            rc = 1;
        } else {
            char *copy = bh_arena_strndup(a, e->data + klen + 1, e->vlen);

            *val = copy;
            *len = e->vlen;
            rc = copy != NULL ? 1 : BH_ENOMEM;
        }
        break;
    }
    pthread_mutex_unlock(m);
    return rc;
}

/* Inserts what a reader got from Redis, if still true (see the invariants). */
static void nc_insert(struct nearcache *nc, uint64_t gen, uint64_t epoch, const char *key,
                      size_t klen, const char *val, size_t vlen)
{
    size_t b = bucket_of(key_hash(key, klen));
    pthread_mutex_t *m = stripe_of(nc, b);
    struct nc_entry *e = malloc(sizeof *e + klen + (val ? vlen : 0) + 2);

    if (e == NULL)
        return;
    e->klen = klen;
    e->vlen = val ? vlen : 0;
    e->present = val != NULL;
    e->expires_ms = bh_now_ms() + settings.ttl_ms;
    memcpy(e->data, key, klen);
    e->data[klen] = '\0';
    if (val != NULL)
        memcpy(e->data + klen + 1, val, vlen);
    e->data[klen + 1 + e->vlen] = '\0';

    pthread_mutex_lock(m);
    if (!atomic_load(&nc->tracking) || atomic_load(&nc->generation) != gen ||
        atomic_load(&nc->epochs[b]) != epoch) {
        pthread_mutex_unlock(m);
        free(e);
        return;
    }
    bucket_drop(nc, b, key, klen);
    if (atomic_load(&nc->bytes) + entry_size(e) > settings.max_bytes)
        bucket_clear(nc, b); /* make room where the key lands */
    if (atomic_load(&nc->bytes) + entry_size(e) > settings.max_bytes) {
        pthread_mutex_unlock(m);
        free(e);
        return;
    }
    e->next = nc->buckets[b];
    nc->buckets[b] = e;
    atomic_fetch_add(&nc->bytes, entry_size(e));
    atomic_fetch_add(&nc->entries, 1);
    pthread_mutex_unlock(m);
}

/* True when the cache may answer now: tracking, and every invalidation that
 * reached this process's socket has been applied. The socket is polled
 * before in_flight is read: bytes the thread took after the poll are
 * covered by in_flight, which it sets before reading. */
static bool nc_quiet(struct nearcache *nc)
{
    int fd = atomic_load(&nc->fd);
    struct pollfd p = {.fd = fd, .events = POLLIN};

    if (fd < 0 || !atomic_load(&nc->tracking))
        return false;
    if (poll(&p, 1, 0) != 0)
        return false;
    return atomic_load(&nc->in_flight) == 0 && atomic_load(&nc->tracking);
}

/* ---- the invalidation connection ---------------------------------------------- */

static bool reply_ok(redisReply *r, int type)
{
    bool ok = r != NULL && r->type == type;

    if (r != NULL)
        freeReplyObject(r);
    return ok;
}

/* Turns tracking on for the prefix, redirected to this same connection, and
 * subscribes to the invalidation channel. 0 or -1. */
static int nc_subscribe(struct nearcache *nc, redisContext *c)
{
    redisReply *r = redisCommand(c, "CLIENT SETNAME bh-nearcache-%s", nc->user);
    long long id;

    if (!reply_ok(r, REDIS_REPLY_STATUS))
        return -1;
    r = redisCommand(c, "CLIENT ID");
    if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
        reply_ok(r, REDIS_REPLY_INTEGER);
        return -1;
    }
    id = r->integer;
    freeReplyObject(r);
    r = redisCommand(c, "CLIENT TRACKING on REDIRECT %lld BCAST PREFIX %s", id, nc->prefix);
    if (r != NULL && r->type == REDIS_REPLY_ERROR)
        bh_log(BH_LOG_WARN, "platform", "near cache %s: CLIENT TRACKING refused: %s", nc->user,
               r->str);
    if (!reply_ok(r, REDIS_REPLY_STATUS))
        return -1;
    r = redisCommand(c, "SUBSCRIBE %s", INVALIDATE_CHANNEL);
    if (r != NULL && r->type == REDIS_REPLY_ERROR)
        bh_log(BH_LOG_WARN, "platform", "near cache %s: SUBSCRIBE refused: %s", nc->user, r->str);
    return reply_ok(r, REDIS_REPLY_ARRAY) ? 0 : -1;
}

/* One pushed message: a list of keys, or nil when Redis flushed everything. */
static void nc_message(struct nearcache *nc, redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING || strcmp(r->element[0]->str, "message") != 0)
        return; /* a subscription confirmation */
    redisReply *keys = r->element[2];

    if (keys->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < keys->elements; i++)
            if (keys->element[i]->type == REDIS_REPLY_STRING)
                nc_invalidate(nc, keys->element[i]->str, keys->element[i]->len);
        return;
    }
    /* FLUSHALL / FLUSHDB: everything goes, and the cache keeps serving. */
    nc_flush(nc, false);
    atomic_fetch_add(&nc->generation, 1);
    atomic_store(&nc->tracking, true);
}

/* Applies messages until the connection fails or the cache stops. On
 * return the cache is already empty and not tracking. */
static void nc_listen(struct nearcache *nc, redisContext *c)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};

    while (!atomic_load(&nc->stop)) {
        int n = poll(&p, 1, NC_WAKE_MS);

        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            continue;
        atomic_store(&nc->in_flight, 1);
        bool failed = n < 0 || redisBufferRead(c) != REDIS_OK;
        void *reply = NULL;

        while (!failed && redisGetReplyFromReader(c, &reply) == REDIS_OK && reply != NULL) {
            nc_message(nc, reply);
            freeReplyObject(reply);
            reply = NULL;
        }
        failed = failed || c->err != 0;
        if (failed) {
            bh_log(BH_LOG_WARN, "platform",
                   "near cache %s: invalidation connection lost (%s): emptied, reading Redis",
                   nc->user, c->errstr[0] ? c->errstr : "poll failed");
            atomic_store(&nc->fd, -1);
            nc_flush(nc, true);
            atomic_store(&nc->in_flight, 0);
            return;
        }
        atomic_store(&nc->in_flight, 0);
    }
    atomic_store(&nc->fd, -1);
    nc_flush(nc, false);
}

static void *nc_thread(void *arg)
{
    struct nearcache *nc = arg;
    int retry_ms = NC_RETRY_MIN_MS;

    while (!atomic_load(&nc->stop)) {
        redisContext *c = bh__redis_connect(nc->user);

        if (c != NULL && nc_subscribe(nc, c) == 0) {
            retry_ms = NC_RETRY_MIN_MS;
            atomic_store(&nc->fd, c->fd);
            /* From here every change under the prefix reaches us. */
            atomic_fetch_add(&nc->generation, 1);
            atomic_store(&nc->tracking, true);
            bh_log(BH_LOG_INFO, "platform", "near cache %s: tracking %s*", nc->user, nc->prefix);
            nc_listen(nc, c);
        }
        if (c != NULL)
            redisFree(c);
        for (int waited = 0; waited < retry_ms && !atomic_load(&nc->stop); waited += NC_WAKE_MS)
            bh_sleep_ms(retry_ms - waited < NC_WAKE_MS ? retry_ms - waited : NC_WAKE_MS);
        retry_ms = retry_ms * 2 > NC_RETRY_MAX_MS ? NC_RETRY_MAX_MS : retry_ms * 2;
    }
    return NULL;
}

/* ---- registry, metrics ---------------------------------------------------------- */

static struct nearcache *nc_find(const char *user)
{
    for (int i = 0; i < NC_MAX_CACHES; i++) {
        struct nearcache *nc = atomic_load(&caches[i]);

        if (nc != NULL && strcmp(nc->user, user) == 0)
            return nc;
    }
    return NULL;
}

static void render_gauges(struct bh_buf *out, void *arg)
{
    (void)arg;
    for (int i = 0; i < NC_MAX_CACHES; i++) {
        struct nearcache *nc = atomic_load(&caches[i]);

        if (nc == NULL)
            continue;
        bh_metrics_printf(out, "bulkhead_redis_nearcache_entries{user=\"%s\"} %llu\n", nc->user,
                          (unsigned long long)atomic_load(&nc->entries));
    }
}

static void render_tracking(struct bh_buf *out, void *arg)
{
    (void)arg;
    for (int i = 0; i < NC_MAX_CACHES; i++) {
        struct nearcache *nc = atomic_load(&caches[i]);

        if (nc != NULL)
            bh_metrics_printf(out, "bulkhead_redis_nearcache_tracking{user=\"%s\"} %d\n", nc->user,
                              atomic_load(&nc->tracking) ? 1 : 0);
    }
}

static void load_settings(void)
{
    if (settings.loaded)
        return;
    settings.enabled = bh_config_int("BULKHEAD_NEARCACHE", 1, 0, 1) == 1;
    settings.ttl_ms = bh_config_int("BULKHEAD_NEARCACHE_TTL_MS", 30000, 1, 3600000);
    settings.max_bytes = (size_t)bh_config_int("BULKHEAD_NEARCACHE_BYTES", 4L << 20, 0, 1L << 30);
    settings.loaded = true;
}

static struct nearcache *nc_new(const char *user)
{
    struct nearcache *nc = calloc(1, sizeof *nc);
    char labels[64];

    if (nc == NULL)
        return NULL;
    snprintf(nc->user, sizeof nc->user, "%s", user);
    nc->prefix_len = (size_t)snprintf(nc->prefix, sizeof nc->prefix, "%s:", user);
    atomic_init(&nc->fd, -1);
    for (int i = 0; i < NC_STRIPES; i++)
        pthread_mutex_init(&nc->stripes[i], NULL);
    snprintf(labels, sizeof labels, "user=\"%s\"", user);
    char l2[96];
    snprintf(l2, sizeof l2, "user=\"%s\",result=\"hit\"", user);
    nc->c_hits = bh_counter_get("bulkhead_redis_nearcache_requests_total",
                                "Near-cache lookups by result.", l2);
    snprintf(l2, sizeof l2, "user=\"%s\",result=\"miss\"", user);
    nc->c_misses = bh_counter_get("bulkhead_redis_nearcache_requests_total",
                                  "Near-cache lookups by result.", l2);
    nc->c_invalidations = bh_counter_get(
        "bulkhead_redis_nearcache_invalidations_total",
        "Keys dropped from the near cache on Redis's invalidation messages.", labels);
    nc->c_flushes = bh_counter_get(
        "bulkhead_redis_nearcache_flushes_total",
        "Times the near cache was emptied because its invalidation connection dropped.", labels);
    return nc;
}

static void nc_free(struct nearcache *nc)
{
    for (size_t b = 0; b < NC_BUCKETS; b++)
        bucket_clear(nc, b);
    for (int i = 0; i < NC_STRIPES; i++)
        pthread_mutex_destroy(&nc->stripes[i]);
    free(nc);
}

/* ---- public API ------------------------------------------------------------------ */

int bh_nearcache_start_as(const char *user)
{
    int rc = 0, slot = -1;

    if (!bh_module_name_valid(user))
        return BH_EINVAL;
    pthread_mutex_lock(&registry_lock);
    load_settings();
    if (!settings.enabled || nc_find(user) != NULL)
        goto out;
    for (int i = 0; i < NC_MAX_CACHES && slot < 0; i++)
        if (atomic_load(&caches[i]) == NULL)
            slot = i;
    if (slot < 0) {
        rc = BH_EINVAL;
        goto out;
    }
    struct nearcache *nc = nc_new(user);

    if (nc == NULL) {
        rc = BH_ENOMEM;
        goto out;
    }
    if (pthread_create(&nc->thread, NULL, nc_thread, nc) != 0) {
        nc_free(nc);
        rc = BH_ENOMEM;
        goto out;
    }
    atomic_store(&caches[slot], nc);
    if (!gauges_registered) {
        bh_gauge_register("bulkhead_redis_nearcache_entries", "Entries held by each near cache.",
                          render_gauges, NULL);
        bh_gauge_register("bulkhead_redis_nearcache_tracking",
                          "1 while the near cache's invalidation connection is up.",
                          render_tracking, NULL);
        gauges_registered = true;
    }
out:
    pthread_mutex_unlock(&registry_lock);
    return rc;
}

void bh_nearcache_stop_as(const char *user)
{
    struct nearcache *nc = NULL;

    pthread_mutex_lock(&registry_lock);
    for (int i = 0; i < NC_MAX_CACHES && nc == NULL; i++) {
        struct nearcache *c = atomic_load(&caches[i]);

        if (c != NULL && strcmp(c->user, user) == 0) {
            nc = c;
            atomic_store(&caches[i], NULL);
        }
    }
    pthread_mutex_unlock(&registry_lock);
    if (nc == NULL)
        return;
    atomic_store(&nc->stop, true);
    pthread_join(nc->thread, NULL);
    nc_free(nc);
}

/* Reads the keys the near cache did not hold (keys[miss[0..n_miss)]) with
 * one MGET, and puts them in the cache while it is tracking. */
static int mget_remote(const char *user, struct nearcache *nc, struct bh_arena *a, int n_miss,
                       const int *miss, const char *const *keys, const size_t *klens,
                       const char **vals, size_t *lens)
{
    const char *argv[BH_NEARCACHE_MGET_MAX + 1] = {"MGET"};
    uint64_t gen = 0, epochs[BH_NEARCACHE_MGET_MAX];
    bool fill = false;
    redisReply *r = NULL;
    int rc;

    /* Capture before the read is sent (see the invariants at the top). */
    if (nc != NULL) {
        gen = atomic_load(&nc->generation);
        fill = atomic_load(&nc->tracking);
        for (int j = 0; j < n_miss; j++)
            epochs[j] =
                atomic_load(&nc->epochs[bucket_of(key_hash(keys[miss[j]], klens[miss[j]]))]);
    }
    for (int j = 0; j < n_miss; j++)
        argv[j + 1] = keys[miss[j]];
    rc = bh_redis_argv_as(user, &r, n_miss + 1, argv, NULL);
    if (rc != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != (size_t)n_miss) {
        if (r != NULL)
            freeReplyObject(r);
        return rc == BH_ENOMEM ? rc : BH_EUNAVAILABLE;
    }
    rc = 0;
    for (int j = 0; j < n_miss; j++) {
        redisReply *v = r->element[j];
        int i = miss[j];

        if (v->type == REDIS_REPLY_STRING) {
            char *copy = bh_arena_strndup(a, v->str, v->len);

            if (copy == NULL) {
                rc = BH_ENOMEM;
                break;
            }
            vals[i] = copy;
            lens[i] = v->len;
        } else if (v->type != REDIS_REPLY_NIL) {
            rc = BH_EUNAVAILABLE; /* MGET answers strings and nils only */
            break;
        }
        if (fill)
            nc_insert(nc, gen, epochs[j], keys[i], klens[i], vals[i], lens[i]);
    }
    freeReplyObject(r);
    return rc;
}

int bh_nearcache_mget_as(const char *user, struct bh_arena *a, int n, const char *const *keys,
                         const char **vals, size_t *lens, int *hits)
{
    struct nearcache *nc;
    size_t klens[BH_NEARCACHE_MGET_MAX];
    int miss[BH_NEARCACHE_MGET_MAX], n_miss = 0, n_hits = 0;

    if (hits != NULL)
        *hits = 0;
    if (n < 1 || n > BH_NEARCACHE_MGET_MAX || keys == NULL || vals == NULL || lens == NULL)
        return BH_EINVAL;
    nc = nc_find(user);
    for (int i = 0; i < n; i++) {
        klens[i] = strnlen(keys[i], NC_KEY_MAX);
        if (klens[i] >= NC_KEY_MAX ||
            (nc != NULL && strncmp(keys[i], nc->prefix, nc->prefix_len) != 0))
            return BH_EINVAL; /* only the module's own keys are tracked */
        vals[i] = NULL;
        lens[i] = 0;
    }

    bool quiet = nc != NULL && nc_quiet(nc);
    for (int i = 0; i < n; i++) {
        int hit = quiet ? nc_lookup(nc, a, keys[i], klens[i], &vals[i], &lens[i]) : 0;

        if (hit < 0)
            return hit;
        if (hit == 1)
            n_hits++;
        else
            miss[n_miss++] = i;
    }
    if (nc != NULL) {
        atomic_fetch_add(&nc->hits, (uint64_t)n_hits);
        atomic_fetch_add(&nc->misses, (uint64_t)n_miss);
        bh_counter_add(nc->c_hits, (uint64_t)n_hits);
        bh_counter_add(nc->c_misses, (uint64_t)n_miss);
    }
    if (hits != NULL)
        *hits = n_hits;
    if (n_miss == 0)
        return 0;
    return mget_remote(user, nc, a, n_miss, miss, keys, klens, vals, lens);
}

int bh_nearcache_stats(const char *user, struct bh_nearcache_stats *out)
{
    struct nearcache *nc = nc_find(user);

    memset(out, 0, sizeof *out);
    if (nc == NULL)
        return BH_ENOTFOUND;
    out->entries = atomic_load(&nc->entries);
    out->bytes = atomic_load(&nc->bytes);
    out->hits = atomic_load(&nc->hits);
    out->misses = atomic_load(&nc->misses);
    out->invalidations = atomic_load(&nc->invalidations);
    out->flushes = atomic_load(&nc->flushes);
    out->tracking = atomic_load(&nc->tracking) ? 1 : 0;
    return 0;
}
