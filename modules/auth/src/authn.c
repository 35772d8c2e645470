/* Who is calling and what may they do: the public API every module calls on
 * every request. The token is checked in memory (once per process: later uses
 * find it in the table of verified tokens, time rules rechecked); revocation
 * is checked on every request, whether the token was cached or not; it and membership
 * come from one lookup of this process's near cache, Redis behind it
 * (denylist + cached role in one MGET), and Postgres behind that
 * when Redis is down or not yet trusted. It must never let a Redis outage
 * resurrect a revoked session, and never tell a non-member that an org exists. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "internal.h"
#include "platform/config.h"
#include "platform/err.h"
#include "platform/log.h"
#include "platform/metrics.h"
#include "platform/nearcache.h"
#include "platform/redis.h"

/* What auth keeps on the request. The principal comes first, so the
 * platform's principal slot points at a struct auth_principal. */
struct req_auth {
    struct auth_principal principal;
    struct auth__claims claims;
    bool revocation_checked;
};

static struct auth__jwt_keys keys;

const struct auth__jwt_keys *auth__keys(void)
{
    if (!keys.secret) {
        const char *secret = bh_config()->jwt_secret;
        keys.secret = (const unsigned char *)(secret ? secret : "");
        keys.secret_len = secret ? strlen(secret) : 0;
        keys.issuer = auth__settings.issuer;
        keys.audience = auth__settings.audience;
        keys.max_ttl_s = auth__settings.access_ttl_s;
    }
    return &keys;
}

/* ------------------------------------------------------------ membership cache */

static void member_key(const bh_uuid *org, const bh_uuid *user, char out[128])
{
    snprintf(out, 128, "auth:member:%s:%s", org->str, user->str);
}

static void member_cache_fill(const bh_uuid *org, const bh_uuid *user, enum auth_role role)
{
    char key[128];
    redisReply *r = NULL;
    member_key(org, user, key);
    /* Best effort: on failure the next lookup reads Postgres again. */
    bh_redis(&r, "SET %s %s EX %d", key, auth_role_name(role), auth__settings.member_cache_ttl_s);
    if (r)
        freeReplyObject(r);
}

void auth__member_cache_drop(const bh_uuid *org_id, const bh_uuid *user_id)
{
    char key[128];
    redisReply *r = NULL;
    member_key(org_id, user_id, key);
    bh_redis(&r, "DEL %s", key);
    if (r)
        freeReplyObject(r);
    /* Delete again on the reconciler's next pass: a reader that read the
     * old role just before the commit may have written it back after the
     * first delete (the cache-aside race). Also the retry when Redis is down. */
    auth__revoke_drop_later(key);
}

/* A cached role: true with *out on a hit ("none" is cached too). */
static bool cached_role(const redisReply *v, enum auth_role *out)
{
    if (!v || v->type != REDIS_REPLY_STRING)
        return false;
    *out = auth__role_parse(v->str);
    return true;
}

int auth_member_role(const bh_uuid *org_id, const bh_uuid *user_id, enum auth_role *out)
{
    char key[128];
    redisReply *r = NULL;
    *out = AUTH_ROLE_NONE;
    member_key(org_id, user_id, key);
    int rc = bh_redis(&r, "GET %s", key);
    bool hit = rc == 0 && cached_role(r, out);
    if (r)
        freeReplyObject(r);
    if (hit)
        return 0;
    rc = auth__repo_member_role(NULL, org_id, user_id, out);
    if (rc != 0)
        return rc == BH_ETIMEOUT ? BH_EUNAVAILABLE : rc;
    member_cache_fill(org_id, user_id, *out);
    return 0;
}

/* ------------------------------------------------------------ authentication */

static int unauthorized(struct bh_req *req)
{
    bh_reply_header(req, "WWW-Authenticate", "Bearer realm=\"bulkhead\", error=\"invalid_token\"");
    return BH_EUNAUTH;
}

static const char *bearer_token(struct bh_req *req)
{
    const char *h = bh_req_header(req, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return NULL;
    h += 7;
    while (*h == ' ')
        h++;
    return *h ? h : NULL;
}

/* The denylist and, when org is not NULL, the cached role, in one lookup
 * through this process's near cache (platform/nearcache.h; what it does not
 * hold comes from one MGET). Returns 0 when Redis answered: *revoked is
 * decided when *decided, and *role_known tells whether *role came from the
 * cache. */
static int redis_state(struct bh_arena *a, const struct auth__claims *c, const bh_uuid *org,
                       bool want_revocation, bool *decided, bool *revoked, bool *role_known,
                       enum auth_role *role)
{
    char k_sync[] = "auth:deny:sync", k_jti[64], k_sid[64], k_member[128];
    const char *names[4], *vals[4];
    size_t lens[4];
    int n = 0;
    if (want_revocation) {
        snprintf(k_jti, sizeof k_jti, "auth:deny:%s", c->jti.str);
        snprintf(k_sid, sizeof k_sid, "auth:deny:%s", c->sid.str);
        names[n++] = k_sync;
        names[n++] = k_jti;
        names[n++] = k_sid;
    }
    if (org) {
        member_key(org, &c->sub, k_member);
        names[n++] = k_member;
    }
    *decided = !want_revocation; /* nothing to decide when it was checked already */
    *role_known = false;
    if (bh_nearcache_mget(a, n, names, vals, lens, NULL) != 0)
        return BH_EUNAVAILABLE;
    int i = 0;
    if (want_revocation) {
        bool marker = vals[0] != NULL;
        *revoked = vals[1] != NULL || vals[2] != NULL;
        if (!marker)
            auth__revoke_kick(); /* Redis lost its data, or has not been seeded yet */
        /* A hit is final; a miss counts only when the denylist is complete. */
        *decided = *revoked || (marker && auth__deny_trusted());
        i = 3;
    }
    if (org && vals[i] != NULL) {
        *role = auth__role_parse(vals[i]);
        *role_known = true;
    }
    return 0;
}

/* Checks revocation (unless already done for this request) and, when org is
 * not NULL, looks up the caller's role there. */
static int check_state(struct bh_arena *a, struct req_auth *ctx, const bh_uuid *org,
                       enum auth_role *role)
{
    bool want_revocation = !ctx->revocation_checked;
    bool decided = !want_revocation, revoked = false, role_known = false;
    const struct auth__claims *c = &ctx->claims;
    int rc = 0;

    if (role)
        *role = AUTH_ROLE_NONE;
    if (want_revocation || org)
        rc = redis_state(a, c, org, want_revocation, &decided, &revoked, &role_known, role);
    bool redis_up = rc == 0;
    if (!decided || (org && !role_known)) {
        /* One Postgres statement answers both questions. */
        bool pg_revoked = false;
        enum auth_role pg_role = AUTH_ROLE_NONE;
        rc = auth__repo_session_state(&c->sid, org, &c->sub, &pg_revoked, &pg_role);
        if (rc != 0)
            return BH_EUNAVAILABLE;
        if (!decided)
            revoked = pg_revoked;
        if (org && !role_known) {
            *role = pg_role;
            if (redis_up)
                member_cache_fill(org, &c->sub, pg_role);
        }
    }
    if (revoked)
        return BH_EUNAUTH;
    ctx->revocation_checked = true;
    return 0;
}

/* Tokens this process verified (token_cache.c): BULKHEAD_AUTH_TOKEN_CACHE
 * slots, rounded up to a power of two; 0 turns it off. */
static pthread_once_t tokens_once = PTHREAD_ONCE_INIT;
static struct auth__token_cache *tokens;
static struct bh_counter *token_hits, *token_misses;

static void tokens_init(void)
{
    long want = bh_config_int("BULKHEAD_AUTH_TOKEN_CACHE", 1024, 0, AUTH__TOKEN_CACHE_MAX);
    unsigned slots = 1;
    while ((long)slots < want)
        slots <<= 1;
    tokens = want > 0 ? auth__token_cache_new(slots) : NULL;
    static const char help[] = "Access-token checks by whether the token was verified already.";
    token_hits = bh_counter_get("bulkhead_auth_token_cache_requests_total", help, "result=\"hit\"");
    token_misses =
        bh_counter_get("bulkhead_auth_token_cache_requests_total", help, "result=\"miss\"");
}

static struct auth__token_cache *verified_tokens(void)
{
    pthread_once(&tokens_once, tokens_init);
    return tokens;
}

/* Verifies the token (or finds it verified already) and sets up the
 * request's auth context (no I/O). */
static int verify_request(struct bh_req *req, struct req_auth **out)
{
    struct req_auth *ctx = bh_req_principal(req);
    if (ctx) {
        *out = ctx;
        return 0;
    }
    const char *token = bearer_token(req);
    if (!token) {
        bh_reply_header(req, "WWW-Authenticate", "Bearer realm=\"bulkhead\"");
        return BH_EUNAUTH;
    }
    struct auth__claims claims;
    long now = (long)time(NULL);
    struct auth__token_cache *cache = verified_tokens();
    if (cache && auth__token_cache_get(cache, auth__keys(), token, now, &claims)) {
        bh_counter_add(token_hits, 1);
    } else {
        bh_counter_add(token_misses, 1);
        if (auth__jwt_verify(auth__keys(), token, now, &claims) != 0)
            return unauthorized(req);
        if (cache)
            auth__token_cache_put(cache, token, &claims);
    }
    ctx = bh_arena_alloc(bh_req_arena(req), sizeof *ctx);
    if (!ctx)
        return BH_ENOMEM;
    ctx->claims = claims;
    ctx->principal.user_id = claims.sub;
    bh_req_set_principal(req, ctx);
    *out = ctx;
    return 0;
}

int auth_authenticate(struct bh_req *req, const struct auth_principal **out)
{
    struct req_auth *ctx = NULL;
    *out = NULL;
    int rc = verify_request(req, &ctx);
    if (rc != 0)
        return rc;
    if (!ctx->revocation_checked) {
        rc = check_state(bh_req_arena(req), ctx, NULL, NULL);
        if (rc == BH_EUNAUTH) {
            bh_req_set_principal(req, NULL);
            return unauthorized(req);
        }
        if (rc != 0)
            return rc;
    }
    *out = &ctx->principal;
    return 0;
}

int auth_require_role(struct bh_req *req, const char *org_id, enum auth_role min_role,
                      const struct auth_principal **out)
{
    struct req_auth *ctx = NULL;
    bh_uuid org;
    enum auth_role role = AUTH_ROLE_NONE;
    *out = NULL;
    int rc = verify_request(req, &ctx);
    if (rc != 0)
        return rc;
    if (!org_id || !bh_uuid_parse(org_id, &org)) {
        /* Still authenticate first: a bad token is a 401 whatever the path. */
        const struct auth_principal *p;
        rc = auth_authenticate(req, &p);
        return rc != 0 ? rc : BH_ENOTFOUND;
    }
    rc = check_state(bh_req_arena(req), ctx, &org, &role);
    if (rc == BH_EUNAUTH) {
        bh_req_set_principal(req, NULL);
        return unauthorized(req);
    }
    if (rc != 0)
        return rc;
    if (role == AUTH_ROLE_NONE)
        return BH_ENOTFOUND;
    if (role < min_role)
        return BH_EFORBIDDEN;
    struct auth_principal *p = bh_arena_alloc(bh_req_arena(req), sizeof *p);
    if (!p)
        return BH_ENOMEM;
    p->user_id = ctx->claims.sub;
    p->org_id = org;
    p->role = role;
    ctx->principal = *p;
    *out = p;
    return 0;
}

const struct auth__claims *auth__request_claims(struct bh_req *req)
{
    struct req_auth *ctx = bh_req_principal(req);
    return ctx ? &ctx->claims : NULL;
}

/* ------------------------------------------------------------ long replies */

int auth_request_session(struct bh_req *req, struct auth_session *out)
{
    const struct req_auth *ctx = bh_req_principal(req);
    if (!ctx || !ctx->revocation_checked)
        return BH_EUNAUTH;
    out->user_id = ctx->claims.sub;
    out->session_id = ctx->claims.sid;
    out->token_id = ctx->claims.jti;
    out->expires_at = ctx->claims.exp;
    return 0;
}

int auth_session_check(const struct auth_session *s)
{
    if ((int64_t)time(NULL) >= s->expires_at)
        return BH_EUNAUTH;
    struct req_auth ctx = {
        .claims = {.sub = s->user_id,
                   .sid = s->session_id,
                   .jti = s->token_id,
                   .exp = (long)s->expires_at},
    };
    /* The lookups copy what they read into an arena: a short-lived one. */
    struct bh_arena *a = bh_arena_new();
    if (!a)
        return BH_ENOMEM;
    int rc = check_state(a, &ctx, NULL, NULL);
    bh_arena_free(a);
    return rc;
}

/* ------------------------------------------------------------ lookups */

int auth_each_member(const bh_uuid *org_id, enum auth_role min_role, auth_member_fn fn, void *arg)
{
    return auth__repo_members_each(
        org_id, min_role < AUTH_ROLE_MEMBER ? AUTH_ROLE_MEMBER : min_role, fn, arg);
}
