/* Lua scripts on Redis (platform/redis.h): EVALSHA by the SHA-1 computed at
 * build time, SCRIPT LOAD and one retry when Redis answers NOSCRIPT. It must
 * never send a script's text with EVAL, and never retry more than once. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/err.h"
#include "platform/log.h"
#include "platform/redis.h"

enum { SCRIPT_MAX_ARGS = 4096 };

static bool is_noscript(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0;
}

/* SCRIPT LOAD: Redis answers with the SHA-1 of what it received, which
 * must be the one computed at build time. 0 or a bh_err. */
static int load(const char *user, const struct bh_redis_script *s)
{
    redisReply *r = NULL;
    int rc = bh_redis_as(user, &r, "SCRIPT LOAD %s", s->text);

    if (rc == 0 && (r->type != REDIS_REPLY_STRING || strcmp(r->str, s->sha1) != 0)) {
        bh_log(BH_LOG_ERROR, "platform", "redis: script %s loaded under another SHA-1", s->name);
        rc = BH_EINTERNAL;
    }
    if (r != NULL)
        freeReplyObject(r);
    return rc;
}

int bh_redis_script_as(const char *user, const struct bh_redis_script *s, redisReply **out,
                       int nkeys, int n, const char *const *args, const size_t *argvlen)
{
    const char **argv = NULL;
    size_t *lens = NULL;
    char nk[16];
    int rc;

    *out = NULL;
    if (s == NULL || nkeys < 0 || n < nkeys || n > SCRIPT_MAX_ARGS || (n > 0 && args == NULL))
        return BH_EINVAL;
    argv = malloc(((size_t)n + 3) * sizeof *argv);
    lens = malloc(((size_t)n + 3) * sizeof *lens);
    if (argv == NULL || lens == NULL) {
        rc = BH_ENOMEM;
        goto out_free;
    }
    snprintf(nk, sizeof nk, "%d", nkeys);
    argv[0] = "EVALSHA";
    argv[1] = s->sha1;
    argv[2] = nk;
    for (int i = 0; i < 3; i++)
        lens[i] = strlen(argv[i]);
    for (int i = 0; i < n; i++) {
        argv[i + 3] = args[i];
        lens[i + 3] = argvlen ? argvlen[i] : strlen(args[i]);
    }
    rc = bh_redis_argv_as(user, out, n + 3, argv, lens);
    if (rc != 0 && is_noscript(*out)) {
        freeReplyObject(*out);
        *out = NULL;
        rc = load(user, s);
        if (rc == 0)
            rc = bh_redis_argv_as(user, out, n + 3, argv, lens);
    }
out_free:
    free(argv);
    free(lens);
    return rc;
}
