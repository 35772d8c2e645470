/* The failed-login limiter: a fixed window per account and per client
 * address, counted in Redis (auth:login:* keys, one Lua script per step so
 * each step is one round trip and atomic). When Redis is unavailable it
 * counts in this process instead: limits then hold per instance rather than
 * globally, which is weaker but never "unlimited". It must never fail open
 * silently and never put an email address in a key. */
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "lua_scripts.h"
#include "platform/breaker.h"
#include "platform/err.h"
#include "platform/log.h"
#include "platform/metrics.h"
#include "platform/redis.h"

enum { LOCAL_SLOTS = 4096, KEY_MAX = 96 };

/* The in-process fallback: a fixed-size table, a key per slot (a collision
 * evicts the older window, which can only forget failures of another key
 * that happened to hash alike: acceptable for a fallback). */
static struct {
    pthread_mutex_t lock;
    struct local_slot {
        char key[KEY_MAX];
        int count;
        int64_t window_end_ms;
    } slots[LOCAL_SLOTS];
    struct bh_counter *fallbacks, *limited;
} local = {.lock = PTHREAD_MUTEX_INITIALIZER};

int auth__ratelimit_init(void)
{
    local.fallbacks = bh_counter_get("bulkhead_auth_login_limiter_fallback_total",
                                     "Login limiter decisions made in-process (Redis down).", "");
    local.limited = bh_counter_get("bulkhead_auth_login_limited_total",
                                   "Logins refused by the failed-login limiter.", "");
    return 0;
}

void auth__ratelimit_shutdown(void)
{
}

static void account_key(const char *email, char out[KEY_MAX])
{
    unsigned char d[crypto_hash_sha256_BYTES];
    char hex[2 * 16 + 1];
    crypto_hash_sha256(d, (const unsigned char *)email, strlen(email));
    sodium_bin2hex(hex, sizeof hex, d, 16);
    snprintf(out, KEY_MAX, "auth:login:acct:%s", hex);
}

static void addr_key(const char *addr, char out[KEY_MAX])
{
    snprintf(out, KEY_MAX, "auth:login:addr:%s", addr && *addr ? addr : "unknown");
}

static struct local_slot *local_slot(const char *key, int64_t now)
{
    uint32_t h = 2166136261u;
    for (const char *p = key; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    struct local_slot *s = &local.slots[h % LOCAL_SLOTS];
    if (strcmp(s->key, key) != 0 || s->window_end_ms <= now) {
        snprintf(s->key, sizeof s->key, "%s", key);
        s->count = 0;
        s->window_end_ms = now + (int64_t)auth__settings.login_window_s * 1000;
    }
    return s;
}

/* Turns (count, ttl) for both keys into the decision: limited when either
 * key is at its limit; the headers describe the tighter one. */
static void decide(const long long counts[2], const long long ttl_ms[2], struct auth__rl *out)
{
    const int limits[2] = {auth__settings.login_account_max, auth__settings.login_addr_max};
    int tight = 0;
    long long left[2];
    for (int i = 0; i < 2; i++)
        left[i] = limits[i] - counts[i] < 0 ? 0 : limits[i] - counts[i];
    if (left[1] < left[0])
        tight = 1;
    out->limited = left[0] == 0 || left[1] == 0;
    out->limit = limits[tight];
    out->remaining = (int)left[tight];
    long long ttl =
        ttl_ms[tight] > 0 ? ttl_ms[tight] : (long long)auth__settings.login_window_s * 1000;
    if (!out->limited && counts[tight] == 0)
        ttl = (long long)auth__settings.login_window_s * 1000;
    out->reset_s = (int)((ttl + 999) / 1000);
}

static void local_step(const char *keys[2], bool fail, struct auth__rl *out)
{
    long long counts[2], ttls[2];
    int64_t now = bh_now_ms();
    bh_counter_add(local.fallbacks, 1);
    pthread_mutex_lock(&local.lock);
    for (int i = 0; i < 2; i++) {
        struct local_slot *s = local_slot(keys[i], now);
        if (fail)
            s->count++;
        counts[i] = s->count;
        ttls[i] = s->window_end_ms - now;
    }
    pthread_mutex_unlock(&local.lock);
    decide(counts, ttls, out);
}

/* One script over both keys; false when Redis did not answer properly. */
static bool redis_step(const char *keys[2], bool fail, struct auth__rl *out)
{
    redisReply *r = NULL;
    char window_ms[24];
    snprintf(window_ms, sizeof window_ms, "%d", auth__settings.login_window_s * 1000);
    const char *args[] = {keys[0], keys[1], window_ms};
    int rc = fail ? bh_redis_script(&auth__lua_ratelimit_fail, &r, 2, 3, args, NULL)
                  : bh_redis_script(&auth__lua_ratelimit_peek, &r, 2, 2, args, NULL);
    bool ok = rc == 0 && r && r->type == REDIS_REPLY_ARRAY && r->elements == 4;
    if (ok) {
        long long counts[2], ttls[2];
        for (int i = 0; i < 2; i++) {
            counts[i] = r->element[2 * i]->integer;
            ttls[i] = r->element[2 * i + 1]->integer;
        }
        decide(counts, ttls, out);
    }
    if (r)
        freeReplyObject(r);
    return ok;
}

void auth__login_check(const char *email, const char *addr, struct auth__rl *out)
{
    char ka[KEY_MAX], kb[KEY_MAX];
    account_key(email, ka);
    addr_key(addr, kb);
    const char *keys[2] = {ka, kb};
    if (!redis_step(keys, false, out))
        local_step(keys, false, out);
    if (out->limited)
        bh_counter_add(local.limited, 1);
}

void auth__login_failed(const char *email, const char *addr, struct auth__rl *out)
{
    char ka[KEY_MAX], kb[KEY_MAX];
    account_key(email, ka);
    addr_key(addr, kb);
    const char *keys[2] = {ka, kb};
    if (!redis_step(keys, true, out))
        local_step(keys, true, out);
}

void auth__login_succeeded(const char *email)
{
    char ka[KEY_MAX];
    redisReply *r = NULL;
    account_key(email, ka);
    /* Best effort: a failure only leaves the count to expire on its own. */
    if (bh_redis(&r, "DEL %s", ka) != 0)
        bh_log_debug("login limiter: could not reset an account counter");
    if (r)
        freeReplyObject(r);
    pthread_mutex_lock(&local.lock);
    struct local_slot *s = local_slot(ka, bh_now_ms());
    s->count = 0;
    pthread_mutex_unlock(&local.lock);
}

void auth__rl_headers(struct bh_req *req, const struct auth__rl *rl)
{
    char v[32];
    snprintf(v, sizeof v, "%d", rl->limit);
    bh_reply_header(req, "RateLimit-Limit", v);
    snprintf(v, sizeof v, "%d", rl->remaining);
    bh_reply_header(req, "RateLimit-Remaining", v);
    snprintf(v, sizeof v, "%d", rl->reset_s);
    bh_reply_header(req, "RateLimit-Reset", v);
    if (rl->limited)
        bh_reply_header(req, "Retry-After", v);
}
