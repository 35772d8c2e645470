/* The access-token denylist: revoked sessions are written to Redis
 * (auth:deny:<sid>, auth:deny:<jti>) until every token they minted has
 * expired, and a reconciler keeps Redis complete against Postgres, the
 * source of truth (auth.sessions.revoked_at, redis_synced). It must never
 * let a miss in an incomplete denylist count as "not revoked": until this
 * process has seen the denylist complete, revocation is read from Postgres. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "lua_scripts.h"
#include "platform/arena.h"
#include "platform/clock.h"
#include "platform/err.h"
#include "platform/log.h"
#include "platform/metrics.h"
#include "platform/redis.h"

enum { PUSH_BATCH = 200, PENDING_MAX = 1024, FULL_SEED_MAX = 20000, PURGE_EVERY_MS = 600000 };

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool running, kicked;
    atomic_bool trusted;        /* the Redis denylist is complete, as far as this process knows */
    char *pending[PENDING_MAX]; /* cache keys to DEL on the next pass (malloc'd) */
    int n_pending;
    struct bh_counter *fallbacks;
} rv = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* How long a session's denial must last: its newest access token may have
 * been minted just before the revocation (60 s of slack for clock skew). */
static long long deny_ms(double age_s)
{
    long long ms = ((long long)auth__settings.access_ttl_s + 60) * 1000 - (long long)(age_s * 1000);
    return ms > 1000 ? ms : 1000;
}

bool auth__deny_trusted(void)
{
    bool t = atomic_load(&rv.trusted);
    if (!t)
        bh_counter_add(rv.fallbacks, 1);
    return t;
}

void auth__revoke_kick(void)
{
    pthread_mutex_lock(&rv.lock);
    rv.kicked = true;
    pthread_cond_signal(&rv.wake);
    pthread_mutex_unlock(&rv.lock);
}

void auth__revoke_drop_later(const char *key)
{
    char *copy = strdup(key);
    if (!copy)
        return;
    pthread_mutex_lock(&rv.lock);
    if (rv.n_pending == PENDING_MAX) {
        bh_log_warn("too many cache deletes queued; the oldest now relies on its TTL");
        free(rv.pending[0]);
        memmove(rv.pending, rv.pending + 1, sizeof rv.pending[0] * (PENDING_MAX - 1));
        rv.n_pending--;
    }
    rv.pending[rv.n_pending++] = copy;
    pthread_mutex_unlock(&rv.lock);
}

/* One script run (revoke_deny.lua) for up to PUSH_BATCH keys. 0 or
 * BH_EUNAVAILABLE. */
static int push(const char *const *keys, const long long *ttl_ms, int n)
{
    if (n == 0)
        return 0;
    const char **argv = calloc((size_t)(2 * n), sizeof *argv);
    char(*ttl_text)[24] = calloc((size_t)n, sizeof *ttl_text);
    int rc = BH_ENOMEM;
    if (!argv || !ttl_text)
        goto out;
    for (int i = 0; i < n; i++) {
        argv[i] = keys[i];
        snprintf(ttl_text[i], sizeof ttl_text[i], "%lld", ttl_ms[i]);
        argv[n + i] = ttl_text[i];
    }
    redisReply *r = NULL;
    rc = bh_redis_script(&auth__lua_revoke_deny, &r, n, 2 * n, argv, NULL);
    if (r)
        freeReplyObject(r);
    if (rc != 0)
        rc = BH_EUNAVAILABLE;
out:
    free(argv);
    free(ttl_text);
    return rc;
}

/* Pushes the sessions' denials in batches. */
static int push_sessions(const bh_uuid *sids, const double *age_s, int n)
{
    for (int at = 0; at < n; at += PUSH_BATCH) {
        int m = n - at < PUSH_BATCH ? n - at : PUSH_BATCH;
        char keys[PUSH_BATCH][64];
        const char *kp[PUSH_BATCH];
        long long ttl[PUSH_BATCH];
        for (int i = 0; i < m; i++) {
            snprintf(keys[i], sizeof keys[i], "auth:deny:%s", sids[at + i].str);
            kp[i] = keys[i];
            ttl[i] = deny_ms(age_s ? age_s[at + i] : 0);
        }
        int rc = push(kp, ttl, m);
        if (rc != 0)
            return rc;
    }
    return 0;
}

void auth__revoke_publish(const bh_uuid *sids, int n, const bh_uuid *jti)
{
    int rc = push_sessions(sids, NULL, n);
    if (rc == 0 && jti) {
        char key[64];
        const char *kp[1] = {key};
        long long ttl[1] = {deny_ms(0)};
        snprintf(key, sizeof key, "auth:deny:%s", jti->str);
        rc = push(kp, ttl, 1);
    }
    if (rc == 0 && n > 0)
        rc = auth__repo_revocations_synced(sids, n);
    if (rc != 0) {
        /* Postgres has the revocation; until the reconciler has pushed it,
         * this process reads revocations from Postgres. */
        atomic_store(&rv.trusted, false);
        bh_log_warn("revoked sessions not yet on the Redis denylist (%s); reconciling later",
                    bh_err_name(rc));
    }
}

/* Sends the queued cache deletes. Each key leaves the queue under the lock
 * before it is sent (request threads may push to a full queue meanwhile,
 * dropping its oldest entry), and goes back to the front if Redis fails. */
static int drop_pending(void)
{
    for (;;) {
        pthread_mutex_lock(&rv.lock);
        char *key = rv.n_pending ? rv.pending[0] : NULL;
        if (key) {
            rv.n_pending--;
            memmove(rv.pending, rv.pending + 1, sizeof rv.pending[0] * (size_t)rv.n_pending);
        }
        pthread_mutex_unlock(&rv.lock);
        if (!key)
            return 0;
        redisReply *r = NULL;
        int rc = bh_redis(&r, "DEL %s", key);
        if (r)
            freeReplyObject(r);
        if (rc == 0) {
            free(key);
            continue;
        }
        pthread_mutex_lock(&rv.lock);
        if (rv.n_pending < PENDING_MAX) {
            memmove(rv.pending + 1, rv.pending, sizeof rv.pending[0] * (size_t)rv.n_pending);
            rv.pending[0] = key;
            rv.n_pending++;
            key = NULL;
        }
        pthread_mutex_unlock(&rv.lock);
        free(key); /* no room: it relies on its TTL, like any overflow */
        return BH_EUNAVAILABLE;
    }
}

/* One reconciliation: make the Redis denylist hold every revocation that
 * still matters. Trust is granted only after a pass that fully succeeded,
 * and withdrawn when Redis fails it. A pass that cannot reach Postgres
 * changes nothing: no revocation can commit while Postgres is down, so the
 * denylist is as complete as before, and a cached read still works. */
static void reconcile(void)
{
    struct bh_arena *a = bh_arena_new();
    redisReply *r = NULL;
    int rc = a ? bh_redis(&r, "GET auth:deny:sync") : BH_ENOMEM;
    bool seeded = rc == 0 && r && r->type == REDIS_REPLY_STRING;
    if (r)
        freeReplyObject(r);
    if (rc != 0)
        goto fail;
    int window = auth__settings.access_ttl_s + 60;
    int n = 0;
    do {
        bh_uuid *sids = NULL;
        double *ages = NULL;
        int max = seeded ? PUSH_BATCH : FULL_SEED_MAX;
        if (auth__repo_revocations(a, !seeded, window, max, &sids, &ages, &n) != 0)
            goto out; /* Postgres is down: trust stays as it was */
        rc = push_sessions(sids, ages, n);
        if (rc != 0)
            goto fail;
        /* Pushed: Redis has them even if Postgres cannot record it now. */
        if (n > 0 && auth__repo_revocations_synced(sids, n) != 0)
            goto out;
        if (!seeded) {
            rc = bh_redis(&r, "SET auth:deny:sync 1");
            if (r)
                freeReplyObject(r);
            r = NULL;
            if (rc != 0)
                goto fail;
            seeded = true;
            n = PUSH_BATCH; /* then pick up what the seed marked as pending */
        }
    } while (n == PUSH_BATCH);
    if (drop_pending() != 0)
        goto fail;
    if (!atomic_exchange(&rv.trusted, true))
        bh_log_info("the Redis denylist is complete again");
out:
    bh_arena_free(a);
    return;
fail:
    atomic_store(&rv.trusted, false);
    bh_arena_free(a);
}

/* Old sessions and tokens, now and then (every process does it; the
 * deletes are idempotent and batched, so overlap costs nothing). */
static void purge_now_and_then(void)
{
    static int64_t next_ms;
    int64_t now = bh_now_ms();
    int deleted = 0;
    if (now < next_ms)
        return;
    next_ms = now + PURGE_EVERY_MS;
    if (auth__repo_purge(&deleted) == 0 && deleted > 0)
        bh_log_info("purged %d expired refresh tokens and old sessions", deleted);
}

static void *reconciler(void *arg)
{
    pthread_mutex_lock(&rv.lock);
    while (rv.running) {
        rv.kicked = false;
        pthread_mutex_unlock(&rv.lock);
        reconcile();
        purge_now_and_then();
        pthread_mutex_lock(&rv.lock);
        if (!rv.running || rv.kicked)
            continue;
        struct timespec until = bh_deadline_ms(auth__settings.deny_sync_ms);
        while (rv.running && !rv.kicked)
            if (pthread_cond_timedwait(&rv.wake, &rv.lock, &until) != 0)
                break;
    }
    pthread_mutex_unlock(&rv.lock);
    return NULL;
}

int auth__revoke_init(void)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&rv.wake, &attr);
    pthread_condattr_destroy(&attr);
    atomic_store(&rv.trusted, false);
    rv.fallbacks =
        bh_counter_get("bulkhead_auth_denylist_fallback_total",
                       "Revocation checks answered by Postgres (Redis not trusted).", "");
    rv.running = true;
    if (pthread_create(&rv.thread, NULL, reconciler, NULL) != 0) {
        rv.running = false;
        return BH_ENOMEM;
    }
    return 0;
}

void auth__revoke_shutdown(void)
{
    pthread_mutex_lock(&rv.lock);
    bool was_running = rv.running;
    rv.running = false;
    pthread_cond_signal(&rv.wake);
    pthread_mutex_unlock(&rv.lock);
    if (was_running)
        pthread_join(rv.thread, NULL);
    for (int i = 0; i < rv.n_pending; i++)
        free(rv.pending[i]);
    rv.n_pending = 0;
    pthread_cond_destroy(&rv.wake);
}
