/* The Redis side of the job queue (queue.h). Every move of a job between
 * keys is one Lua script, so Redis applies it whole or not at all; the client
 * never pops a job and pushes it somewhere else in two commands.
 * Clocks: lease deadlines and due times use Redis's clock (TIME inside the
 * scripts), never the worker's, so workers on skewed hosts agree.
 *
 * Keys (all under bh:, the platform user's ACL prefix):
 *   bh:job:<id>          HASH  type queue payload max attempts lease enq ready
 *                              trace req err hist died
 *   bh:q:<queue>:ready   LIST  ids ready to run (LPUSH in, RPOP out: FIFO)
 *   bh:q:<queue>:leased  ZSET  id -> lease deadline (ms)
 *   bh:q:<queue>:delayed ZSET  id -> due time (ms): retries and delayed jobs
 *   bh:q:<queue>:dead    ZSET  id -> time of death (ms): the dead letters
 *   bh:queues            SET   every queue name ever used
 *   bh:routes:<type>     HASH  consumer -> "<queue> <max attempts>"
 *   bh:routes:published  STRING set when the routes were published
 * A job id is in exactly one of ready/leased/delayed/dead while its hash
 * exists; acknowledging deletes both (completed jobs are not kept). */
#include "queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/err.h"
#include "platform/log.h"
#include "lua_scripts.h"
#include "platform/redis.h"

#define REDIS_USER "platform"

/* ---- running scripts --------------------------------------------------------- */

/* Every multi-key step is a script in platform/src/queue_*.lua, embedded at
 * build time (lua_scripts.h) and run with EVALSHA (bh_redis_script_as). */

/* Runs s with nkeys keys followed by the other arguments (args[0..n)).
 * lens may be NULL (C strings). On success *out is the reply, for the
 * caller to free. */
static int run_script(const struct bh_redis_script *s, int nkeys, int n, const char *const *args,
                      const size_t *lens, redisReply **out)
{
    int rc = bh_redis_script_as(REDIS_USER, s, out, nkeys, n, args, lens);

    if (rc != 0 && *out != NULL) {
        bh_log(BH_LOG_ERROR, "platform", "jobs: script %s failed: %s", s->name,
               (*out)->type == REDIS_REPLY_ERROR ? (*out)->str : "unexpected reply");
        freeReplyObject(*out);
        *out = NULL;
    }
    return rc;
}

/* ---- reading replies --------------------------------------------------------- */

static bool reply_ll(const redisReply *r, long long *v)
{
    char *end;

    if (r->type == REDIS_REPLY_INTEGER) {
        *v = r->integer;
        return true;
    }
    if (r->type != REDIS_REPLY_STRING || r->len == 0)
        return false;
    *v = strtoll(r->str, &end, 10);
    return *end == '\0';
}

/* A script that answers one integer. */
static int run_int(const struct bh_redis_script *s, int nkeys, int n, const char *const *args,
                   long long *v)
{
    redisReply *r;
    int rc = run_script(s, nkeys, n, args, NULL, &r);

    if (rc != 0)
        return rc;
    if (!reply_ll(r, v)) {
        bh_log(BH_LOG_ERROR, "platform", "jobs: script %s gave an unexpected reply", s->name);
        rc = BH_EINTERNAL;
    }
    freeReplyObject(r);
    return rc;
}

static char *reply_strdup(const redisReply *r)
{
    char *s = malloc(r->len + 1);

    if (s != NULL) {
        memcpy(s, r->str, r->len);
        s[r->len] = '\0';
    }
    return s;
}

/* ---- keys and names ----------------------------------------------------------- */

bool bh__queue_name_valid(const char *name)
{
    size_t n = 0;

    if (name == NULL)
        return false;
    for (; name[n] != '\0'; n++)
        if (!((name[n] >= 'a' && name[n] <= 'z') || (name[n] >= '0' && name[n] <= '9') ||
              name[n] == '_'))
            return false;
    return n > 0 && n < BH__QUEUE_NAME_MAX;
}

void bh__queue_keys_for(const char *queue, struct bh__queue_keys *keys)
{
    snprintf(keys->ready, sizeof keys->ready, "bh:q:%s:ready", queue);
    snprintf(keys->leased, sizeof keys->leased, "bh:q:%s:leased", queue);
    snprintf(keys->delayed, sizeof keys->delayed, "bh:q:%s:delayed", queue);
    snprintf(keys->dead, sizeof keys->dead, "bh:q:%s:dead", queue);
}

static int job_key(const char *id, char key[BH__JOB_ID_MAX + 8])
{
    int n = snprintf(key, BH__JOB_ID_MAX + 8, "bh:job:%s", id);

    return n > 0 && n < BH__JOB_ID_MAX + 8 ? 0 : BH_EINVAL;
}

void bh__queue_names_free(char **names)
{
    for (char **p = names; p != NULL && *p != NULL; p++)
        free(*p);
    free(names);
}

/* ---- operations ----------------------------------------------------------------- */

void bh__queue_job_release(struct bh__queue_job *job)
{
    free(job->id);
    free(job->type);
    free(job->payload);
    free(job->trace_id);
    free(job->request_id);
    memset(job, 0, sizeof *job);
}

int bh__queue_enqueue(const struct bh__queue_keys *keys, const char *queue, const char *id,
                      const char *type, const char *payload, int max_attempts, int64_t delay_ms,
                      const char *trace_id, const char *request_id)
{
    char key[BH__JOB_ID_MAX + 8], max[16], delay[24];
    long long created;

    if (job_key(id, key) != 0)
        return BH_EINVAL;
    snprintf(max, sizeof max, "%d", max_attempts);
    snprintf(delay, sizeof delay, "%lld", (long long)(delay_ms > 0 ? delay_ms : 0));
    const char *args[] = {key,
                          keys->ready,
                          keys->delayed,
                          "bh:queues",
                          id,
                          type,
                          queue,
                          payload,
                          max,
                          delay,
                          trace_id ? trace_id : "",
                          request_id ? request_id : ""};
    return run_int(&bh__lua_queue_enqueue, 4, 12, args, &created);
}

int bh__queue_register_routes(int n, const char *const *event_types, const char *const *consumers,
                              const char *const *queues, const int *max_attempts)
{
    const char **args = calloc((size_t)n * 4 + 1, sizeof *args);
    char(*max)[16] = calloc((size_t)n + 1, sizeof *max);
    long long ignored;
    int rc = BH_ENOMEM;

    if (args == NULL || max == NULL)
        goto out;
    for (int i = 0; i < n; i++) {
        snprintf(max[i], sizeof max[i], "%d", max_attempts[i]);
        args[4 * i] = event_types[i];
        args[4 * i + 1] = consumers[i];
        args[4 * i + 2] = queues[i];
        args[4 * i + 3] = max[i];
    }
    rc = run_int(&bh__lua_queue_routes, 0, 4 * n, args, &ignored);
out:
    free(args);
    free(max);
    return rc;
}

int bh__queue_fan_out(int n, const char *const *event_ids, const char *const *event_types,
                      const char *const *payloads, char ***queues, long long *jobs)
{
    const char **args = calloc((size_t)n * 3 + 1, sizeof *args);
    redisReply *r = NULL;
    char **names = NULL;
    int rc = BH_ENOMEM;

    *queues = NULL;
    *jobs = 0;
    if (args == NULL)
        goto out;
    for (int i = 0; i < n; i++) {
        args[3 * i] = event_ids[i];
        args[3 * i + 1] = event_types[i];
        args[3 * i + 2] = payloads[i];
    }
    rc = run_script(&bh__lua_queue_fan_out, 0, 3 * n, args, NULL, &r);
    if (rc != 0)
        goto out;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || !reply_ll(r->element[0], jobs)) {
        rc = BH_EINTERNAL;
        goto out;
    }
    rc = BH_ENOMEM;
    names = calloc(r->elements, sizeof *names); /* elements - 1 names + NULL */
    if (names == NULL)
        goto out;
    for (size_t i = 1; i < r->elements; i++)
        if ((names[i - 1] = reply_strdup(r->element[i])) == NULL)
            goto out;
    *queues = names;
    names = NULL;
    rc = 0;
out:
    bh__queue_names_free(names);
    if (r != NULL)
        freeReplyObject(r);
    free(args);
    return rc;
}

/* Fills job from the 10 fields the Lua reserve() returns. */
static int parse_job(redisReply **f, struct bh__queue_job *job)
{
    long long token, attempts, max, ready, started;

    if (!reply_ll(f[1], &token) || !reply_ll(f[2], &attempts) || !reply_ll(f[5], &max) ||
        !reply_ll(f[6], &ready) || !reply_ll(f[9], &started)) {
        bh_log(BH_LOG_ERROR, "platform", "jobs: reserve gave an unexpected reply");
        return BH_EINTERNAL;
    }
    job->id = reply_strdup(f[0]);
    job->type = reply_strdup(f[3]);
    job->payload = reply_strdup(f[4]);
    job->trace_id = reply_strdup(f[7]);
    job->request_id = reply_strdup(f[8]);
    job->token = token;
    job->attempts = (int)attempts;
    job->max_attempts = (int)max;
    job->ready_ms = ready;
    job->started_ms = started;
    if (!job->id || !job->type || !job->payload || !job->trace_id || !job->request_id) {
        /* The job stays leased and comes back when the lease expires. */
        bh__queue_job_release(job);
        return BH_ENOMEM;
    }
    return 0;
}

int bh__queue_reserve(const struct bh__queue_keys *keys, int lease_ms, struct bh__queue_job *job)
{
    char lease[16];
    const char *args[] = {keys->ready, keys->leased, lease};
    redisReply *r;
    int rc;

    memset(job, 0, sizeof *job);
    snprintf(lease, sizeof lease, "%d", lease_ms);
    rc = run_script(&bh__lua_queue_reserve, 2, 3, args, NULL, &r);
    if (rc != 0)
        return rc;
    if (r->type == REDIS_REPLY_NIL)
        rc = 1;
    else if (r->type == REDIS_REPLY_ARRAY && r->elements == 10)
        rc = parse_job(r->element, job);
    else
        rc = BH_EINTERNAL;
    freeReplyObject(r);
    return rc;
}

int bh__queue_ack_reserve(const struct bh__queue_keys *keys, const char *id, long long token,
                          int lease_ms, bool *lost, struct bh__queue_job *next)
{
    char key[BH__JOB_ID_MAX + 8], tok[24], lease[16];
    redisReply *r;
    long long v = 0;
    int rc;

    memset(next, 0, sizeof *next);
    *lost = false;
    if (job_key(id, key) != 0)
        return BH_EINVAL;
    snprintf(tok, sizeof tok, "%lld", token);
    snprintf(lease, sizeof lease, "%d", lease_ms);
    const char *args[] = {keys->ready, keys->leased, key, id, tok, lease};
    rc = run_script(&bh__lua_queue_ack_reserve, 3, 6, args, NULL, &r);
    if (rc != 0)
        return rc;
    if (r->type != REDIS_REPLY_ARRAY || (r->elements != 1 && r->elements != 11) ||
        !reply_ll(r->element[0], &v))
        rc = BH_EINTERNAL;
    else if (r->elements == 1)
        rc = 1;
    else
        rc = parse_job(r->element + 1, next);
    if (rc >= 0 || rc == BH_ENOMEM)
        *lost = v != 0;
    freeReplyObject(r);
    return rc;
}

/* Reads queue_take.lua's reply: the acks' fates, then 10 fields per job. */
static int take_reply(const redisReply *r, int n_acks, bool *lost, int cap,
                      struct bh__queue_job *jobs, int *n_jobs)
{
    enum { FIELDS = 10 };
    size_t got;
    int rc = 0;

    if (r->type != REDIS_REPLY_ARRAY || r->elements < (size_t)n_acks ||
        (r->elements - (size_t)n_acks) % FIELDS != 0 ||
        (r->elements - (size_t)n_acks) / FIELDS > (size_t)cap)
        return BH_EINTERNAL;
    for (int i = 0; i < n_acks; i++) {
        long long v = 0;

        if (!reply_ll(r->element[i], &v))
            return BH_EINTERNAL;
        lost[i] = v != 0;
    }
    got = (r->elements - (size_t)n_acks) / FIELDS;
    for (size_t j = 0; j < got && rc == 0; j++)
        if ((rc = parse_job(r->element + n_acks + j * FIELDS, &jobs[j])) == 0)
            (*n_jobs)++;
    if (rc != 0) {
        /* They stay leased and come back when their leases expire. */
        for (int j = 0; j < *n_jobs; j++)
            bh__queue_job_release(&jobs[j]);
        *n_jobs = 0;
        if (rc != BH_ENOMEM)
            rc = BH_EINTERNAL;
    }
    return rc;
}

int bh__queue_take(const struct bh__queue_keys *keys, int lease_ms, int n_acks,
                   const char *const *ids, const long long *tokens, bool *lost,
                   const struct bh__queue_batching *batching, int cap, struct bh__queue_job *jobs,
                   int *n_jobs)
{
    int nb = batching != NULL ? batching->n : 0;
    int nargs = 4 + 2 * n_acks + 2 * nb;
    const char **args = calloc((size_t)nargs, sizeof *args);
    char(*toks)[24] = calloc((size_t)n_acks + 1, sizeof *toks);
    char lease[16], acks[16];
    redisReply *r = NULL;
    int rc = BH_ENOMEM, k = 0;

    *n_jobs = 0;
    if (args == NULL || toks == NULL)
        goto out;
    snprintf(lease, sizeof lease, "%d", cap > 0 ? lease_ms : 0);
    snprintf(acks, sizeof acks, "%d", n_acks);
    args[k++] = keys->ready;
    args[k++] = keys->leased;
    args[k++] = lease;
    args[k++] = acks;
    for (int i = 0; i < n_acks; i++) {
        snprintf(toks[i], sizeof toks[i], "%lld", tokens[i]);
        args[k++] = ids[i];
        args[k++] = toks[i];
        lost[i] = false;
    }
    for (int i = 0; i < nb; i++) {
        args[k++] = batching->types[i];
        args[k++] = batching->sizes[i];
    }
    rc = run_script(&bh__lua_queue_take, 2, nargs, args, NULL, &r);
    if (rc == 0)
        rc = take_reply(r, n_acks, lost, cap, jobs, n_jobs);
out:
    if (r != NULL)
        freeReplyObject(r);
    free(args);
    free(toks);
    return rc;
}

int bh__queue_ack(const struct bh__queue_keys *keys, const char *id, long long token)
{
    char key[BH__JOB_ID_MAX + 8], tok[24];
    long long v;
    int rc;

    if (job_key(id, key) != 0)
        return BH_EINVAL;
    snprintf(tok, sizeof tok, "%lld", token);
    const char *args[] = {keys->leased, key, id, tok};
    rc = run_int(&bh__lua_queue_ack, 2, 4, args, &v);
    return rc != 0 ? rc : (int)v;
}

int bh__queue_fail(const struct bh__queue_keys *keys, const char *id, long long token,
                   const char *error, int64_t delay_ms, bool dead_now, bool *dead)
{
    char key[BH__JOB_ID_MAX + 8], tok[24], delay[24];
    long long v;
    int rc;

    *dead = false;
    if (job_key(id, key) != 0)
        return BH_EINVAL;
    snprintf(tok, sizeof tok, "%lld", token);
    snprintf(delay, sizeof delay, "%lld", (long long)(delay_ms > 0 ? delay_ms : 0));
    const char *args[] = {keys->leased, key,   keys->delayed, keys->dead,          id,
                          tok,          error, delay,         dead_now ? "1" : "0"};
    rc = run_int(&bh__lua_queue_fail, 4, 9, args, &v);
    if (rc != 0)
        return rc;
    if (v < 0)
        return 1;
    *dead = v == 1;
    return 0;
}

int bh__queue_renew(const struct bh__queue_keys *keys, const char *id, long long token,
                    int lease_ms)
{
    char key[BH__JOB_ID_MAX + 8], tok[24], lease[16];
    long long v;
    int rc;

    if (job_key(id, key) != 0)
        return BH_EINVAL;
    snprintf(tok, sizeof tok, "%lld", token);
    snprintf(lease, sizeof lease, "%d", lease_ms);
    const char *args[] = {keys->leased, key, id, tok, lease};
    rc = run_int(&bh__lua_queue_renew, 2, 5, args, &v);
    return rc != 0 ? rc : (int)v;
}

int bh__queue_release(const struct bh__queue_keys *keys, const char *id, long long token)
{
    char key[BH__JOB_ID_MAX + 8], tok[24];
    long long v;
    int rc;

    if (job_key(id, key) != 0)
        return BH_EINVAL;
    snprintf(tok, sizeof tok, "%lld", token);
    const char *args[] = {keys->leased, key, keys->ready, id, tok};
    rc = run_int(&bh__lua_queue_release, 3, 5, args, &v);
    return rc != 0 ? rc : (int)v;
}

int bh__queue_promote(const struct bh__queue_keys *keys, int limit, int *moved)
{
    char lim[16];
    const char *args[] = {keys->delayed, keys->ready, lim};
    long long v = 0;
    int rc;

    snprintf(lim, sizeof lim, "%d", limit);
    rc = run_int(&bh__lua_queue_promote, 2, 3, args, &v);
    *moved = (int)v;
    return rc;
}

int bh__queue_sweep(const struct bh__queue_keys *keys, int limit, int *requeued, int *dead)
{
    char lim[16];
    const char *args[] = {keys->leased, keys->ready, keys->dead, lim};
    redisReply *r;
    long long a, b;
    int rc;

    *requeued = *dead = 0;
    snprintf(lim, sizeof lim, "%d", limit);
    rc = run_script(&bh__lua_queue_sweep, 3, 4, args, NULL, &r);
    if (rc != 0)
        return rc;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && reply_ll(r->element[0], &a) &&
        reply_ll(r->element[1], &b)) {
        *requeued = (int)a;
        *dead = (int)b;
    } else {
        rc = BH_EINTERNAL;
    }
    freeReplyObject(r);
    return rc;
}

int bh__queue_counts(const struct bh__queue_keys *keys, long long counts[4])
{
    const char *args[] = {keys->ready, keys->leased, keys->delayed, keys->dead};
    redisReply *r;
    int rc = run_script(&bh__lua_queue_counts, 4, 4, args, NULL, &r);

    if (rc != 0)
        return rc;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 4)
        rc = BH_EINTERNAL;
    for (int i = 0; rc == 0 && i < 4; i++)
        if (!reply_ll(r->element[i], &counts[i]))
            rc = BH_EINTERNAL;
    freeReplyObject(r);
    return rc;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int bh__queue_list(char ***names)
{
    redisReply *r = NULL;
    char **out = NULL;
    size_t n = 0;
    int rc;

    *names = NULL;
    rc = bh_redis_as(REDIS_USER, &r, "SMEMBERS bh:queues");
    if (rc != 0)
        goto out;
    rc = BH_EINTERNAL;
    if (r->type != REDIS_REPLY_ARRAY)
        goto out;
    rc = BH_ENOMEM;
    if ((out = calloc(r->elements + 1, sizeof *out)) == NULL)
        goto out;
    for (; n < r->elements; n++)
        if ((out[n] = reply_strdup(r->element[n])) == NULL)
            goto out;
    qsort(out, n, sizeof *out, cmp_names);
    *names = out;
    out = NULL;
    rc = 0;
out:
    bh__queue_names_free(out);
    if (r != NULL)
        freeReplyObject(r);
    return rc;
}

int bh__queue_dead_each(const struct bh__queue_keys *keys, const char *queue, bh__queue_dead_fn fn,
                        void *arg)
{
    enum { PAGE = 200, FIELDS = 6 };
    char off[24], lim[16];
    long long offset = 0;

    snprintf(lim, sizeof lim, "%d", PAGE);
    for (;;) {
        const char *args[] = {keys->dead, off, lim};
        redisReply *r;
        size_t rows;
        int rc;

        snprintf(off, sizeof off, "%lld", offset);
        rc = run_script(&bh__lua_queue_dead_list, 1, 3, args, NULL, &r);
        if (rc != 0)
            return rc;
        if (r->type != REDIS_REPLY_ARRAY || r->elements % FIELDS != 0) {
            freeReplyObject(r);
            return BH_EINTERNAL;
        }
        rows = r->elements / FIELDS;
        for (size_t i = 0; i < rows; i++) {
            redisReply **f = r->element + i * FIELDS;
            long long attempts = 0, died = 0;

            reply_ll(f[2], &attempts);
            reply_ll(f[5], &died);
            fn(&(struct bh__queue_dead){.id = f[0]->str,
                                        .queue = queue,
                                        .type = f[1]->str,
                                        .attempts = (int)attempts,
                                        .last_error = f[3]->str,
                                        .history = f[4]->str[0] ? f[4]->str : "[]",
                                        .died_ms = died},
               arg);
        }
        freeReplyObject(r);
        if (rows < PAGE)
            return 0;
        offset += PAGE;
    }
}

int bh__queue_retry_dead(const char *id)
{
    const char *args[] = {id};
    long long v;
    int rc;

    if (strlen(id) >= BH__JOB_ID_MAX)
        return BH_ENOTFOUND;
    rc = run_int(&bh__lua_queue_retry, 0, 1, args, &v);
    return rc != 0 ? rc : (v == 1 ? 0 : BH_ENOTFOUND);
}

int bh__queue_purge_dead(const struct bh__queue_keys *keys, long long *n)
{
    const char *args[] = {keys->dead, "500"};
    long long v;
    int rc;

    *n = 0;
    do {
        rc = run_int(&bh__lua_queue_purge, 1, 2, args, &v);
        if (rc == 0)
            *n += v;
    } while (rc == 0 && v > 0);
    return rc;
}
