/* The failed-login limiter: a fixed window per account and per client
 * address, counted in Redis (auth:login:* keys; ratelimit_reserve.lua and
 * ratelimit_settle.lua). An attempt is counted as a
 * failure *before* the password is checked, in the same atomic step that
 * decides whether it may run at all (one Lua script), and given back when it
 * succeeds: so N concurrent wrong passwords get exactly the limit of
 * checks, never more. When Redis is unavailable it counts in this process
 * instead: limits then hold per instance rather than globally, which is
 * weaker but never "unlimited". It must never fail open silently, never
 * decide from a count it read in an earlier step, and never put an email
 * address in a key. */
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

/* Turns (count, ttl) for both keys into what the headers say: the tighter
 * key's limit, what is left of it and when its window ends. */
static void describe(bool refused, const long long counts[2], const long long ttl_ms[2],
                     struct auth__rl *out)
{
    const int limits[2] = {auth__settings.login_account_max, auth__settings.login_addr_max};
    long long left[2];
    for (int i = 0; i < 2; i++)
        left[i] = limits[i] - counts[i] < 0 ? 0 : limits[i] - counts[i];
    int tight = left[1] < left[0] ? 1 : 0;
    out->limited = refused;
    out->limit = limits[tight];
    out->remaining = (int)left[tight];
    long long window = (long long)auth__settings.login_window_s * 1000;
    long long ttl = ttl_ms[tight] > 0 ? ttl_ms[tight] : window;
    out->reset_s = (int)((ttl + 999) / 1000);
}

/* The in-process fallback of LUA_RESERVE. */
static void local_reserve(const char *keys[2], struct auth__rl *out)
{
    const int limits[2] = {auth__settings.login_account_max, auth__settings.login_addr_max};
    long long counts[2], ttls[2];
    int64_t now = bh_now_ms();
    bh_counter_add(local.fallbacks, 1);
    pthread_mutex_lock(&local.lock);
    struct local_slot *s[2] = {local_slot(keys[0], now), local_slot(keys[1], now)};
    bool refused = s[0]->count >= limits[0] || s[1]->count >= limits[1];
    for (int i = 0; i < 2; i++) {
        if (!refused)
            s[i]->count++;
        counts[i] = s[i]->count;
        ttls[i] = s[i]->window_end_ms - now;
    }
    pthread_mutex_unlock(&local.lock);
    describe(refused, counts, ttls, out);
}

/* The in-process fallback of LUA_SETTLE. */
static void local_settle(const char *keys[2], bool succeeded)
{
    int64_t now = bh_now_ms();
    pthread_mutex_lock(&local.lock);
    for (int i = 0; i < 2; i++) {
        struct local_slot *s = local_slot(keys[i], now);
        if (i == 0 && succeeded)
            s->count = 0;
        else if (s->count > 0)
            s->count--;
    }
    pthread_mutex_unlock(&local.lock);
}

static void keys_of(const char *email, const char *addr, char ka[KEY_MAX], char kb[KEY_MAX])
{
    account_key(email, ka);
    addr_key(addr, kb);
}

void auth__login_reserve(const char *email, const char *addr, struct auth__rl *out)
{
    char ka[KEY_MAX], kb[KEY_MAX];
    keys_of(email, addr, ka, kb);
    const char *keys[2] = {ka, kb};
    char window_ms[24], acct_max[24], addr_max[24];
    snprintf(window_ms, sizeof window_ms, "%d", auth__settings.login_window_s * 1000);
    snprintf(acct_max, sizeof acct_max, "%d", auth__settings.login_account_max);
    snprintf(addr_max, sizeof addr_max, "%d", auth__settings.login_addr_max);
    const char *args[] = {ka, kb, window_ms, acct_max, addr_max};
    redisReply *r = NULL;
    int rc = bh_redis_script(&auth__lua_ratelimit_reserve, &r, 2, 5, args, NULL);
    bool ok = rc == 0 && r && r->type == REDIS_REPLY_ARRAY && r->elements == 5;
    for (size_t i = 0; ok && i < 5; i++)
        ok = r->element[i]->type == REDIS_REPLY_INTEGER;
    if (ok) {
        long long counts[2] = {r->element[1]->integer, r->element[3]->integer};
        long long ttls[2] = {r->element[2]->integer, r->element[4]->integer};
        describe(r->element[0]->integer != 0, counts, ttls, out);
    }
    if (r)
        freeReplyObject(r);
    if (!ok)
        local_reserve(keys, out);
    if (out->limited)
        bh_counter_add(local.limited, 1);
}

void auth__login_settle(const char *email, const char *addr, bool succeeded)
{
    char ka[KEY_MAX], kb[KEY_MAX];
    keys_of(email, addr, ka, kb);
    const char *keys[2] = {ka, kb};
    redisReply *r = NULL;
    /* Best effort: a count not given back only expires with its window.
     * When Redis cannot settle, the in-process table may hold the attempt
     * (Redis was down when it was reserved too). */
    const char *args[] = {ka, kb, succeeded ? "ok" : "void"};
    int rc = bh_redis_script(&auth__lua_ratelimit_settle, &r, 2, 3, args, NULL);
    if (r)
        freeReplyObject(r);
    if (rc != 0)
        local_settle(keys, succeeded);
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
