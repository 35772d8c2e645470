/* Redis access, one small connection pool per module, each connection
 * authenticated as the module's own ACL user (fence 4: the user may only
 * touch keys under "<module>:"). A circuit breaker per user stops calls for a
 * cool-down after repeated failures, so a dead Redis costs nothing per
 * request; callers treat BH_EUNAVAILABLE as "degrade" (bypass the cache).
 *
 * Inside a module use bh_redis(...) and bh_redis_script(...): they name the
 * calling module's user. The `_as` forms they expand to name the user
 * explicitly, for the platform itself, the composition root and tests. */
#ifndef BH_PLATFORM_REDIS_H
#define BH_PLATFORM_REDIS_H

#include <hiredis/hiredis.h>
#include <stddef.h>

/* Users: "platform" (queue, outbox relay, keys "bh:*") and each module.
 * Returns 0 or BH_EINVAL (bad URL). Connections are made lazily. */
int bh_redis_init(const char *url, const char *password, const char *const *users, int n_users,
                  int timeout_ms);
void bh_redis_shutdown(void);

/* Runs one command as user (printf-style, see redisCommand). On success *out
 * is the reply, freed by the caller with freeReplyObject(); an error reply
 * (such as NOPERM) is returned as BH_EFORBIDDEN or BH_EINTERNAL with *out set
 * so the caller may read it. BH_EUNAVAILABLE when Redis is unreachable or
 * the breaker is open. */
int bh_redis_as(const char *user, redisReply **out, const char *fmt, ...);
/* The same with an argument vector (binary-safe). */
int bh_redis_argv_as(const char *user, redisReply **out, int argc, const char **argv,
                     const size_t *argvlen);

/* A connection of its own for SUBSCRIBE, which takes a connection over for
 * good and so cannot come from the pool: connected to REDIS_URL and logged in
 * as user exactly like the pool's connections (same URL parsing, password,
 * database and timeout), with TCP keepalive on. It is not behind the
 * breaker: its owner decides when to try again (and tells the log). NULL
 * when Redis cannot be reached or user has no pool. The caller owns it: redisFree(). */
redisContext *bh_redis_subscriber_as(const char *user);

/* A Lua script: kept in a .lua file beside the C file that runs it, and
 * embedded at build time by cmake/embed-lua, which names it
 * <part>__lua_<file name> (private to the part, like every double
 * underscore name), computes its SHA-1 and declares it in the generated
 * "lua_scripts.h". */
struct bh_redis_script {
    const char *name; /* its file name, for logs */
    const char *sha1; /* 40 hex digits: the name EVALSHA knows it by */
    const char *text;
};

/* Runs s as user with EVALSHA: args[0..nkeys) are its KEYS and
 * args[nkeys..n) its ARGV (argvlen NULL: C strings). When Redis does not
 * know the script (NOSCRIPT: after a restart or a SCRIPT FLUSH) it is
 * loaded with SCRIPT LOAD and run once more, so callers never send the
 * text themselves. Returns like bh_redis_argv_as(): on success *out is the
 * reply, freed by the caller; a script error is BH_EINTERNAL with *out set. */
int bh_redis_script_as(const char *user, const struct bh_redis_script *s, redisReply **out,
                       int nkeys, int n, const char *const *args, const size_t *argvlen);

/* Health: PING as user. */
int bh_redis_ping(const char *user);
/* Breaker state for this user: "closed", "open" or "half_open". */
const char *bh_redis_breaker_state(const char *user);

#ifdef BH_MODULE_NAME
#define bh_redis(out, ...)    bh_redis_as(BH_MODULE_NAME, (out), __VA_ARGS__)
#define bh_redis_subscriber() bh_redis_subscriber_as(BH_MODULE_NAME)
#define bh_redis_argv(out, argc, argv, lens)                                                       \
    bh_redis_argv_as(BH_MODULE_NAME, (out), (argc), (argv), (lens))
#define bh_redis_script(s, out, nkeys, n, args, lens)                                              \
    bh_redis_script_as(BH_MODULE_NAME, (s), (out), (nkeys), (n), (args), (lens))
#endif

#endif
