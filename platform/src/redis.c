/* Redis access (platform/redis.h): a small pool of connections per ACL user,
 * each user behind its own circuit breaker. It must never touch the network
 * while a user's breaker is open, never let one user's connection serve
 * another user, and never wait past the configured timeout. */
#include "platform/clock.h"
#include "platform/redis.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "platform/breaker.h"
#include "platform/config.h"
#include "platform/err.h"
#include "platform/log.h"
#include "platform/module.h"
#include "redis_internal.h"

enum {
    REDIS_POOL_MAX = 64,         /* connections per user, at most */
    REDIS_POOL_DEFAULT = 16,     /* as many as HTTP threads by default */
    REDIS_BREAKER_THRESHOLD = 3, /* failures in a row that open a user's breaker */
    REDIS_BREAKER_COOLDOWN_MS = 2000,
    REDIS_MAX_USERS = 16,
    REDIS_USER_MAX = 32, /* user names are [a-z_]{1,31} */
    REDIS_HOST_MAX = 256,
};

struct redis_pool {
    char user[REDIS_USER_MAX];
    char breaker_name[REDIS_USER_MAX + 8]; /* "redis:<user>" */
    struct bh_breaker breaker;
    pthread_mutex_t lock;     /* guards idle, n_idle, n_taken */
    pthread_cond_t available; /* signalled when a connection comes back */
    redisContext *idle[REDIS_POOL_MAX];
    int n_idle;
    int n_taken; /* handed out, connected or about to be */
};

/* Set by bh_redis_init() before any thread uses Redis, read-only afterwards. */
static struct {
    char host[REDIS_HOST_MAX];
    int port;
    int db;
    char *password; /* NULL: no AUTH */
    int timeout_ms;
    int pool_size; /* BULKHEAD_REDIS_POOL_SIZE: connections per user */
    struct redis_pool *pools;
    int n_pools;
} g_redis;

/* One command, in either of hiredis's two forms. */
struct redis_cmd {
    const char *fmt; /* printf-style, with *ap; or NULL for argv */
    va_list *ap;
    int argc;
    const char **argv;
    const size_t *argvlen;
};

/* ---- configuration ------------------------------------------------------------- */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A percent-encoded URL part as a new string (NULL if malformed or no memory). */
static char *percent_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1), *o = out;

    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi = i + 2 < n ? hex_value(s[i + 1]) : -1;
            int lo = hi >= 0 ? hex_value(s[i + 2]) : -1;

            if (lo < 0 || hi * 16 + lo == 0) {
                free(out);
                return NULL;
            }
            *o++ = (char)(hi * 16 + lo);
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

/* redis://[user:password@]host[:port][/db] into g_redis. The user part is
 * ignored: every pool authenticates as its own user. The password is kept
 * (in *url_password, for the caller to free) as a fallback. */
static int parse_url(const char *url, char **url_password)
{
    const char *p, *end, *at, *host, *host_end, *colon;
    char *num_end;
    long port = 6379, db = 0;

    *url_password = NULL;
    if (url == NULL || strncmp(url, "redis://", 8) != 0)
        return BH_EINVAL;
    p = url + 8;
    end = p + strcspn(p, "/?#");

    /* The last '@' before the path ends the user info, so a password with
     * an unencoded '@' still parses. */
    at = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == '@')
            at = q;
    if (at != NULL) {
        colon = memchr(p, ':', (size_t)(at - p));
        if (colon != NULL && at - colon > 1) {
            *url_password = percent_decode(colon + 1, (size_t)(at - colon - 1));
            if (*url_password == NULL)
                return BH_EINVAL;
        }
        p = at + 1;
    }

    if (*p == '[') { /* [IPv6]:port */
        host = p + 1;
        host_end = memchr(host, ']', (size_t)(end - host));
        if (host_end == NULL)
            goto out_invalid;
        p = host_end + 1;
    } else {
        host = p;
        host_end = memchr(p, ':', (size_t)(end - p));
        if (host_end == NULL)
            host_end = end;
        p = host_end;
    }
    if (host_end == host || (size_t)(host_end - host) >= sizeof g_redis.host)
        goto out_invalid;
    if (p < end) {
        if (*p != ':')
            goto out_invalid;
        port = strtol(p + 1, &num_end, 10);
        if (num_end != end || port < 1 || port > 65535)
            goto out_invalid;
    }
    if (*end == '/' && end[1] != '\0' && end[1] != '?' && end[1] != '#') {
        db = strtol(end + 1, &num_end, 10);
        if ((*num_end != '\0' && *num_end != '?' && *num_end != '#') || db < 0 || db > 1 << 16)
            goto out_invalid;
    }
    snprintf(g_redis.host, sizeof g_redis.host, "%.*s", (int)(host_end - host), host);
    g_redis.port = (int)port;
    g_redis.db = (int)db;
    return 0;

out_invalid:
    free(*url_password);
    *url_password = NULL;
    return BH_EINVAL;
}

static struct redis_pool *find_pool(const char *user)
{
    if (!bh_module_name_valid(user))
        return NULL;
    for (int i = 0; i < g_redis.n_pools; i++)
        if (strcmp(g_redis.pools[i].user, user) == 0)
            return &g_redis.pools[i];
    return NULL;
}

/* ---- connections --------------------------------------------------------------- */

static struct timeval ms_to_timeval(int ms)
{
    return (struct timeval){.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
}

/* Connects and logs in as user. NULL on failure, logged at level. */
static redisContext *connect_as(const char *user, enum bh_log_level level)
{
    struct timeval tv = ms_to_timeval(g_redis.timeout_ms);
    redisContext *c = redisConnectWithTimeout(g_redis.host, g_redis.port, tv);
    redisReply *r = NULL;
    const char *why;

    if (c == NULL) {
        why = "out of memory";
        goto out_fail;
    }
    if (c->err != 0 || redisSetTimeout(c, tv) != REDIS_OK) {
        why = c->errstr[0] ? c->errstr : "cannot set the socket timeout";
        goto out_fail;
    }
    if (g_redis.password != NULL) {
        /* The Redis 6 ACL form: the user is part of the credentials. */
        r = redisCommand(c, "AUTH %s %s", user, g_redis.password);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            why = r ? r->str : c->errstr;
            goto out_fail;
        }
        freeReplyObject(r);
        r = NULL;
    }
    if (g_redis.db != 0) {
        r = redisCommand(c, "SELECT %d", g_redis.db);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            why = r ? r->str : c->errstr;
            goto out_fail;
        }
        freeReplyObject(r);
    }
    return c;

out_fail:
    bh_log(level, "platform", "redis %s: cannot connect to %s:%d and log in: %s", user,
           g_redis.host, g_redis.port, why);
    if (r != NULL)
        freeReplyObject(r);
    if (c != NULL)
        redisFree(c);
    return NULL;
}

/* Connects and logs in as p's user. NULL on failure (logged: loudly while
 * the breaker is closed, quietly while it already knows Redis is down). */
static redisContext *pool_connect(struct redis_pool *p)
{
    return connect_as(p->user, bh_breaker_state(&p->breaker) == BH_BREAKER_CLOSED ? BH_LOG_WARN
                                                                                  : BH_LOG_DEBUG);
}

/* An idle connection has nothing to read: if its socket is readable, the
 * server closed it (restart, CLIENT KILL, idle timeout). Checking costs no
 * round trip and avoids sending a command into a dead socket. */
static bool conn_alive(redisContext *c)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};

    return c->err == 0 && poll(&p, 1, 0) == 0;
}

/* Reserves a connection of p, waiting at most the timeout for one: *c is an
 * idle connection, or NULL when the caller may open a new one. Returns 0 or
 * BH_EUNAVAILABLE (every connection busy: not Redis's fault, the breaker
 * does not hear of it). */
static int pool_take(struct redis_pool *p, redisContext **c)
{
    struct timespec until = bh_deadline_ms(g_redis.timeout_ms);
    bool timed_out = false;

    pthread_mutex_lock(&p->lock);
    while (p->n_idle == 0 && p->n_taken >= g_redis.pool_size) {
        if (timed_out) {
            pthread_mutex_unlock(&p->lock);
            bh_log(BH_LOG_WARN, "platform", "redis %s: no free connection within %d ms", p->user,
                   g_redis.timeout_ms);
            return BH_EUNAVAILABLE;
        }
        timed_out = pthread_cond_timedwait(&p->available, &p->lock, &until) == ETIMEDOUT;
    }
    *c = p->n_idle > 0 ? p->idle[--p->n_idle] : NULL;
    p->n_taken++;
    pthread_mutex_unlock(&p->lock);
    return 0;
}

/* Gives back what pool_take reserved: a healthy connection, or NULL. */
static void pool_give(struct redis_pool *p, redisContext *c)
{
    pthread_mutex_lock(&p->lock);
    p->n_taken--;
    if (c != NULL)
        p->idle[p->n_idle++] = c;
    pthread_cond_signal(&p->available);
    pthread_mutex_unlock(&p->lock);
}

static int pool_init(struct redis_pool *p, const char *user)
{
    pthread_condattr_t attr;
    int failed;

    snprintf(p->user, sizeof p->user, "%s", user);
    snprintf(p->breaker_name, sizeof p->breaker_name, "redis:%s", user);
    if (pthread_condattr_init(&attr) != 0)
        return BH_ENOMEM;
    /* Waits are budgets: measure them on a clock that never jumps. */
    failed = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
             pthread_cond_init(&p->available, &attr) != 0;
    pthread_condattr_destroy(&attr);
    if (failed)
        return BH_ENOMEM;
    if (pthread_mutex_init(&p->lock, NULL) != 0) {
        pthread_cond_destroy(&p->available);
        return BH_ENOMEM;
    }
    bh_breaker_init(&p->breaker, p->breaker_name, REDIS_BREAKER_THRESHOLD,
                    REDIS_BREAKER_COOLDOWN_MS);
    return 0;
}

static void pool_destroy(struct redis_pool *p)
{
    if (p->n_taken > 0)
        bh_log(BH_LOG_WARN, "platform", "redis %s: shutting down with %d connection(s) in use",
               p->user, p->n_taken);
    for (int i = 0; i < p->n_idle; i++)
        redisFree(p->idle[i]);
    pthread_mutex_destroy(&p->breaker.lock);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->available);
}

/* ---- commands ------------------------------------------------------------------- */

/* Runs cmd as user. Breaker: a call it lets through always reports back,
 * success when Redis answered (even with an error reply), failure when it
 * could not be reached. */
static int redis_call(const char *user, redisReply **out, const struct redis_cmd *cmd)
{
    struct redis_pool *p = find_pool(user);
    redisContext *c;
    redisReply *reply;
    int rc;

    *out = NULL;
    if (p == NULL) {
        bh_log(BH_LOG_ERROR, "platform", "redis: no such user \"%s\"",
               bh_module_name_valid(user) ? user : "(invalid name)");
        return BH_EINVAL;
    }
    rc = pool_take(p, &c);
    if (rc != 0)
        return rc;
    if (!bh_breaker_allow(&p->breaker, bh_now_ms())) {
        pool_give(p, c);
        return BH_EUNAVAILABLE;
    }
    if (c != NULL && !conn_alive(c)) {
        redisFree(c);
        c = NULL;
    }
    if (c == NULL && (c = pool_connect(p)) == NULL)
        goto out_unreachable;

    if (cmd->fmt != NULL)
        reply = redisvCommand(c, cmd->fmt, *cmd->ap);
    else
        reply = redisCommandArgv(c, cmd->argc, cmd->argv, cmd->argvlen);
    if (reply == NULL) {
        /* I/O error or timeout: the context is unusable from now on. */
        bh_log(bh_breaker_state(&p->breaker) == BH_BREAKER_CLOSED ? BH_LOG_WARN : BH_LOG_DEBUG,
               "platform", "redis %s: command failed: %s", p->user,
               c->errstr[0] ? c->errstr : "unknown error");
        redisFree(c);
        goto out_unreachable;
    }
    bh_breaker_success(&p->breaker);
    pool_give(p, c);

    *out = reply;
    if (reply->type != REDIS_REPLY_ERROR)
        return 0;
    if (strncmp(reply->str, "NOPERM", 6) == 0) {
        /* The user reached outside its key prefix and fence 4 held. A
         * warning, not an error: fence probes (GET /_modules) do it on
         * purpose, and a caller that did not mean to gets BH_EFORBIDDEN. */
        bh_log(BH_LOG_WARN, "platform", "redis %s: %s", p->user, reply->str);
        return BH_EFORBIDDEN;
    }
    /* NOSCRIPT is how Redis asks for a script it does not hold yet (after a
     * start, a restart or a flush): bh_redis_script_as() loads it and runs
     * it again, so it is no error. */
    bh_log(strncmp(reply->str, "NOSCRIPT", 8) == 0 ? BH_LOG_DEBUG : BH_LOG_ERROR, "platform",
           "redis %s: error reply: %s", p->user, reply->str);
    return BH_EINTERNAL;

out_unreachable:
    bh_breaker_failure(&p->breaker, bh_now_ms());
    pool_give(p, NULL);
    return BH_EUNAVAILABLE;
}

/* ---- public API ------------------------------------------------------------------ */

int bh_redis_init(const char *url, const char *password, const char *const *users, int n_users,
                  int timeout_ms)
{
    char *url_password = NULL;
    int rc;

    if (g_redis.pools != NULL || n_users < 0 || n_users >= REDIS_MAX_USERS || timeout_ms <= 0 ||
        (n_users > 0 && users == NULL))
        goto out_invalid;
    for (int i = 0; i < n_users; i++)
        if (!bh_module_name_valid(users[i]))
            goto out_invalid;
    if (parse_url(url, &url_password) != 0) {
        bh_log(BH_LOG_ERROR, "platform",
               "redis: REDIS_URL is not redis://[user:pass@]host[:port][/db]");
        return BH_EINVAL;
    }

    g_redis.timeout_ms = timeout_ms;
    /* A request may hold one connection per Redis user it touches, so a
     * pool smaller than the HTTP thread pool makes threads queue here. */
    g_redis.pool_size =
        (int)bh_config_int("BULKHEAD_REDIS_POOL_SIZE", REDIS_POOL_DEFAULT, 1, REDIS_POOL_MAX);
    if (password != NULL && password[0] != '\0') {
        free(url_password);
        g_redis.password = strdup(password);
        if (g_redis.password == NULL) {
            rc = BH_ENOMEM;
            goto out_fail;
        }
    } else {
        g_redis.password = url_password; /* may be NULL: no AUTH */
    }
    g_redis.pools = calloc((size_t)n_users + 1, sizeof *g_redis.pools);
    if (g_redis.pools == NULL) {
        rc = BH_ENOMEM;
        goto out_fail;
    }
    for (int i = -1; i < n_users; i++) {
        const char *user = i < 0 ? "platform" : users[i];

        if (find_pool(user) != NULL)
            continue; /* "platform" listed explicitly, or a duplicate */
        rc = pool_init(&g_redis.pools[g_redis.n_pools], user);
        if (rc != 0)
            goto out_fail;
        g_redis.n_pools++;
    }
    return 0;

out_fail:
    bh_redis_shutdown();
    return rc;
out_invalid:
    bh_log(BH_LOG_ERROR, "platform", "redis: invalid configuration");
    return BH_EINVAL;
}

/* Closes every connection. Called once, after every thread that used Redis
 * stopped. */
void bh_redis_shutdown(void)
{
    for (int i = 0; i < g_redis.n_pools; i++)
        pool_destroy(&g_redis.pools[i]);
    free(g_redis.pools);
    free(g_redis.password);
    memset(&g_redis, 0, sizeof g_redis);
}

int bh_redis_as(const char *user, redisReply **out, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = redis_call(user, out, &(struct redis_cmd){.fmt = fmt, .ap = &ap});
    va_end(ap);
    return rc;
}

int bh_redis_argv_as(const char *user, redisReply **out, int argc, const char **argv,
                     const size_t *argvlen)
{
    return redis_call(user, out,
                      &(struct redis_cmd){.argc = argc, .argv = argv, .argvlen = argvlen});
}

int bh_redis_ping(const char *user)
{
    redisReply *r = NULL;
    int rc = bh_redis_as(user, &r, "PING");

    if (rc == 0 && !(r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0))
        rc = BH_EUNAVAILABLE;
    if (r != NULL)
        freeReplyObject(r);
    return rc;
}

redisContext *bh_redis_subscriber_as(const char *user)
{
    redisContext *c;

    if (find_pool(user) == NULL) {
        bh_log(BH_LOG_ERROR, "platform", "redis: no such user \"%s\"",
               bh_module_name_valid(user) ? user : "(invalid name)");
        return NULL;
    }
    c = connect_as(user, BH_LOG_DEBUG); /* its owner says it once */
    if (c != NULL && redisEnableKeepAlive(c) != REDIS_OK) {
        redisFree(c);
        c = NULL;
    }
    return c;
}

const char *bh_redis_breaker_state(const char *user)
{
    struct redis_pool *p = find_pool(user);

    /* A user without a pool has never failed: its breaker is closed. */
    return p ? bh_breaker_state_name(bh_breaker_state(&p->breaker)) : "closed";
}

/* ---- dedicated connections (platform/src only) ----------------------------------- */

redisContext *bh__redis_connect(const char *user)
{
    struct redis_pool *p = find_pool(user);

    return p != NULL ? pool_connect(p) : NULL;
}
