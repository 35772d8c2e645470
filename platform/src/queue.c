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

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/err.h"
#include "platform/log.h"
#include "platform/redis.h"

#define REDIS_USER "platform"

/* ---- the scripts ------------------------------------------------------------ */

/* Shared by every script: Redis's clock in ms, and the attempt history
 * (the last 20 failures of a job, kept as JSON in its hash). */
#define LUA_PRELUDE                                                                                \
    "local function now_ms()\n"                                                                    \
    "  local t = redis.call('TIME')\n"                                                             \
    "  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"                         \
    "end\n"                                                                                        \
    "local function record(key, attempt, now, err, retry_in)\n"                                    \
    "  local raw = redis.call('HGET', key, 'hist')\n"                                              \
    "  local hist = raw and cjson.decode(raw) or {}\n"                                             \
    "  local e = {attempt = attempt, at = now, error = err}\n"                                     \
    "  if retry_in then e.retry_in_ms = retry_in end\n"                                            \
    "  hist[#hist + 1] = e\n"                                                                      \
    "  while #hist > 20 do table.remove(hist, 1) end\n"                                            \
    "  redis.call('HSET', key, 'err', err, 'hist', cjson.encode(hist))\n"                          \
    "end\n"

struct script {
    const char *name;
    const char *text;
    char sha[41];
};

/* KEYS job ready delayed queues; ARGV id type queue payload max delay trace req */
static struct script s_enqueue = {
    .name = "enqueue",
    .text = LUA_PRELUDE "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n"
                        "local now = now_ms()\n"
                        "local delay = tonumber(ARGV[6])\n"
                        "redis.call('HSET', KEYS[1], 'type', ARGV[2], 'queue', ARGV[3],\n"
                        "  'payload', ARGV[4], 'max', ARGV[5], 'attempts', 0, 'lease', 0,\n"
                        "  'enq', now, 'ready', now + delay, 'trace', ARGV[7], 'req', ARGV[8])\n"
                        "if delay > 0 then\n"
                        "  redis.call('ZADD', KEYS[3], now + delay, ARGV[1])\n"
                        "else\n"
                        "  redis.call('LPUSH', KEYS[2], ARGV[1])\n"
                        "end\n"
                        "redis.call('SADD', KEYS[4], ARGV[3])\n"
                        "return 1\n"};

/* ARGV quads: event type, consumer, queue, max attempts */
static struct script s_routes = {.name = "routes",
                                 .text = LUA_PRELUDE
                                 "for i = 1, #ARGV, 4 do\n"
                                 "  redis.call('HSET', 'bh:routes:' .. ARGV[i], ARGV[i + 1],\n"
                                 "    ARGV[i + 2] .. ' ' .. ARGV[i + 3])\n"
                                 "  redis.call('SADD', 'bh:queues', ARGV[i + 2])\n"
                                 "end\n"
                                 "redis.call('SET', 'bh:routes:published', 1)\n"
                                 "return 0\n"};

/* ARGV triples: event id, event type, payload. Returns {jobs, queue...}.
 * Refuses (NOROUTES) when the routes are not in Redis at all, for example
 * after Redis came back empty: an event with no route would otherwise be
 * marked sent and lost, rather than kept until the routes are published. */
static struct script s_fan_out = {
    .name = "fan_out",
    .text = LUA_PRELUDE "if redis.call('EXISTS', 'bh:routes:published') == 0 then\n"
                        "  return redis.error_reply('NOROUTES event routes are not published')\n"
                        "end\n"
                        "local now = now_ms()\n"
                        "local jobs, out, touched = 0, {}, {}\n"
                        "for i = 1, #ARGV, 3 do\n"
                        "  local routes = redis.call('HGETALL', 'bh:routes:' .. ARGV[i + 1])\n"
                        "  for j = 1, #routes, 2 do\n"
                        "    local queue, max = string.match(routes[j + 1], '^(%S+) (%d+)$')\n"
                        "    local id = ARGV[i] .. ':' .. routes[j]\n"
                        "    local key = 'bh:job:' .. id\n"
                        "    if queue and redis.call('EXISTS', key) == 0 then\n"
                        "      redis.call('HSET', key, 'type', 'event:' .. routes[j],\n"
                        "        'queue', queue, 'payload', ARGV[i + 2], 'max', max,\n"
                        "        'attempts', 0, 'lease', 0, 'enq', now, 'ready', now,\n"
                        "        'trace', '', 'req', '')\n"
                        "      redis.call('LPUSH', 'bh:q:' .. queue .. ':ready', id)\n"
                        "      jobs = jobs + 1\n"
                        "      if not touched[queue] then\n"
                        "        touched[queue] = true\n"
                        "        out[#out + 1] = queue\n"
                        "      end\n"
                        "    end\n"
                        "  end\n"
                        "end\n"
                        "table.insert(out, 1, jobs)\n"
                        "return out\n"};

/* KEYS ready leased; ARGV lease_ms. Ids whose hash is gone (purged while
 * queued) are dropped on the way. */
/* Takes the oldest ready job of a queue and leases it: shared by reserve
 * and ack_reserve. Ids whose hash is gone (purged while queued) are dropped
 * on the way. Returns the job's fields, or nil when the queue is empty. */
#define LUA_RESERVE                                                                                \
    "local function reserve(ready, leased, lease_ms)\n"                                            \
    "  local now = now_ms()\n"                                                                     \
    "  while true do\n"                                                                            \
    "    local id = redis.call('RPOP', ready)\n"                                                   \
    "    if not id then return nil end\n"                                                          \
    "    local key = 'bh:job:' .. id\n"                                                            \
    "    local f = redis.call('HMGET', key, 'type', 'payload', 'max', 'ready', 'trace', 'req')\n"  \
    "    if f[1] then\n"                                                                           \
    "      local token = redis.call('HINCRBY', key, 'lease', 1)\n"                                 \
    "      local attempts = redis.call('HINCRBY', key, 'attempts', 1)\n"                           \
    "      redis.call('ZADD', leased, now + tonumber(lease_ms), id)\n"                             \
    "      return {id, tostring(token), tostring(attempts), f[1], f[2] or '{}', f[3] or '1',\n"    \
    "        f[4] or tostring(now), f[5] or '', f[6] or '', tostring(now)}\n"                      \
    "    end\n"                                                                                    \
    "  end\n"                                                                                      \
    "end\n"

/* KEYS ready leased; ARGV lease_ms. */
static struct script s_reserve = {.name = "reserve",
                                  .text = LUA_PRELUDE LUA_RESERVE
                                  "return reserve(KEYS[1], KEYS[2], ARGV[1]) or false\n"};

/* KEYS ready leased job; ARGV id token lease_ms. Acknowledges a finished
 * job and leases the next one in one round trip (the hot path of a busy
 * worker). Returns {acked (0, or 1 when the lease was lost), job fields...}. */
static struct script s_ack_reserve = {.name = "ack_reserve",
                                      .text = LUA_PRELUDE LUA_RESERVE
                                      "local lost = 1\n"
                                      "if redis.call('HGET', KEYS[3], 'lease') == ARGV[2]\n"
                                      "   and redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then\n"
                                      "  redis.call('DEL', KEYS[3])\n"
                                      "  lost = 0\n"
                                      "end\n"
                                      "local job = reserve(KEYS[1], KEYS[2], ARGV[3])\n"
                                      "if not job then return {lost} end\n"
                                      "table.insert(job, 1, lost)\n"
                                      "return job\n"};

/* KEYS leased job; ARGV id token. 0 acked, 1 lease lost. */
static struct script s_ack = {.name = "ack",
                              .text = "if redis.call('HGET', KEYS[2], 'lease') ~= ARGV[2] then\n"
                                      "  return 1\n"
                                      "end\n"
                                      "if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then\n"
                                      "  return 1\n"
                                      "end\n"
                                      "redis.call('DEL', KEYS[2])\n"
                                      "return 0\n"};

/* KEYS leased job delayed dead; ARGV id token error delay_ms dead_now.
 * -1 lease lost, 0 retry scheduled, 1 dead. */
static struct script s_fail = {
    .name = "fail",
    .text = LUA_PRELUDE "if redis.call('HGET', KEYS[2], 'lease') ~= ARGV[2] then return -1 end\n"
                        "if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return -1 end\n"
                        "local now = now_ms()\n"
                        "local f = redis.call('HMGET', KEYS[2], 'attempts', 'max')\n"
                        "local attempts = tonumber(f[1]) or 0\n"
                        "if ARGV[5] == '1' or attempts >= (tonumber(f[2]) or 1) then\n"
                        "  record(KEYS[2], attempts, now, ARGV[3], nil)\n"
                        "  redis.call('HSET', KEYS[2], 'died', now)\n"
                        "  redis.call('ZADD', KEYS[4], now, ARGV[1])\n"
                        "  return 1\n"
                        "end\n"
                        "local delay = tonumber(ARGV[4])\n"
                        "record(KEYS[2], attempts, now, ARGV[3], delay)\n"
                        "redis.call('HSET', KEYS[2], 'ready', now + delay)\n"
                        "redis.call('ZADD', KEYS[3], now + delay, ARGV[1])\n"
                        "return 0\n"};

/* KEYS leased job; ARGV id token lease_ms. 0 renewed, 1 lost. */
static struct script s_renew = {
    .name = "renew",
    .text = LUA_PRELUDE "if redis.call('HGET', KEYS[2], 'lease') ~= ARGV[2] then return 1 end\n"
                        "if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 1 end\n"
                        "redis.call('ZADD', KEYS[1], now_ms() + tonumber(ARGV[3]), ARGV[1])\n"
                        "return 0\n"};

/* KEYS leased job ready; ARGV id token. 0 released, 1 lost. */
static struct script s_release = {
    .name = "release",
    .text = "if redis.call('HGET', KEYS[2], 'lease') ~= ARGV[2] then return 1 end\n"
            "if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 1 end\n"
            "redis.call('HINCRBY', KEYS[2], 'attempts', -1)\n"
            "redis.call('RPUSH', KEYS[3], ARGV[1])\n"
            "return 0\n"};

/* KEYS delayed ready; ARGV limit. Returns how many moved. */
static struct script s_promote = {
    .name = "promote",
    .text = LUA_PRELUDE "local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms(),\n"
                        "  'LIMIT', 0, tonumber(ARGV[1]))\n"
                        "for _, id in ipairs(ids) do\n"
                        "  redis.call('ZREM', KEYS[1], id)\n"
                        "  redis.call('LPUSH', KEYS[2], id)\n"
                        "end\n"
                        "return #ids\n"};

/* KEYS leased ready dead; ARGV limit. Returns {requeued, dead}. An expired
 * lease counts as a failed attempt (the worker died or hung). */
static struct script s_sweep = {.name = "sweep",
                                .text = LUA_PRELUDE
                                "local now = now_ms()\n"
                                "local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now,\n"
                                "  'LIMIT', 0, tonumber(ARGV[1]))\n"
                                "local requeued, dead = 0, 0\n"
                                "for _, id in ipairs(ids) do\n"
                                "  redis.call('ZREM', KEYS[1], id)\n"
                                "  local key = 'bh:job:' .. id\n"
                                "  local f = redis.call('HMGET', key, 'attempts', 'max')\n"
                                "  if f[1] then\n"
                                "    local attempts = tonumber(f[1])\n"
                                "    if attempts >= (tonumber(f[2]) or 1) then\n"
                                "      record(key, attempts, now, 'lease expired', nil)\n"
                                "      redis.call('HSET', key, 'died', now)\n"
                                "      redis.call('ZADD', KEYS[3], now, id)\n"
                                "      dead = dead + 1\n"
                                "    else\n"
                                "      record(key, attempts, now, 'lease expired', 0)\n"
                                "      redis.call('HSET', key, 'ready', now)\n"
                                "      redis.call('RPUSH', KEYS[2], id)\n"
                                "      requeued = requeued + 1\n"
                                "    end\n"
                                "  end\n"
                                "end\n"
                                "return {requeued, dead}\n"};

/* KEYS ready leased delayed dead. */
static struct script s_counts = {.name = "counts",
                                 .text = "return {redis.call('LLEN', KEYS[1]),\n"
                                         "  redis.call('ZCARD', KEYS[2]),\n"
                                         "  redis.call('ZCARD', KEYS[3]),\n"
                                         "  redis.call('ZCARD', KEYS[4])}\n"};

/* KEYS dead; ARGV offset limit. Flat: id type attempts err hist died... */
static struct script s_dead_list = {
    .name = "dead_list",
    .text = "local ids = redis.call('ZRANGE', KEYS[1], tonumber(ARGV[1]),\n"
            "  tonumber(ARGV[1]) + tonumber(ARGV[2]) - 1)\n"
            "local out = {}\n"
            "for _, id in ipairs(ids) do\n"
            "  local f = redis.call('HMGET', 'bh:job:' .. id, 'type', 'attempts', 'err',\n"
            "    'hist', 'died')\n"
            "  out[#out + 1] = id\n"
            "  for k = 1, 5 do out[#out + 1] = f[k] or '' end\n"
            "end\n"
            "return out\n"};

/* ARGV id. 1 when the dead job went back to its queue, 0 when not dead. */
static struct script s_retry = {
    .name = "retry",
    .text = LUA_PRELUDE "local key = 'bh:job:' .. ARGV[1]\n"
                        "local queue = redis.call('HGET', key, 'queue')\n"
                        "if not queue then return 0 end\n"
                        "if redis.call('ZREM', 'bh:q:' .. queue .. ':dead', ARGV[1]) == 0 then\n"
                        "  return 0\n"
                        "end\n"
                        "redis.call('HSET', key, 'attempts', 0, 'ready', now_ms())\n"
                        "redis.call('HDEL', key, 'died')\n"
                        "redis.call('LPUSH', 'bh:q:' .. queue .. ':ready', ARGV[1])\n"
                        "return 1\n"};

/* KEYS dead; ARGV limit. Returns how many were deleted. */
static struct script s_purge = {
    .name = "purge",
    .text = "local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)\n"
            "for _, id in ipairs(ids) do redis.call('DEL', 'bh:job:' .. id) end\n"
            "if #ids > 0 then redis.call('ZREM', KEYS[1], unpack(ids)) end\n"
            "return #ids\n"};

static struct script *const all_scripts[] = {
    &s_enqueue, &s_routes,  &s_fan_out, &s_reserve, &s_ack_reserve, &s_ack,   &s_fail,  &s_renew,
    &s_release, &s_promote, &s_sweep,   &s_counts,  &s_dead_list,   &s_retry, &s_purge,
};

/* ---- running scripts --------------------------------------------------------- */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc;

static void compute_shas(void)
{
    for (size_t i = 0; i < sizeof all_scripts / sizeof all_scripts[0]; i++) {
        struct script *s = all_scripts[i];
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int md_len = 0;

        if (EVP_Digest(s->text, strlen(s->text), md, &md_len, EVP_sha1(), NULL) != 1 ||
            md_len != 20) {
            init_rc = BH_EINTERNAL;
            return;
        }
        for (unsigned j = 0; j < md_len; j++)
            snprintf(s->sha + 2 * j, 3, "%02x", md[j]);
    }
}

int bh__queue_init(void)
{
    pthread_once(&init_once, compute_shas);
    return init_rc;
}

static bool is_noscript(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0;
}

static int load_script(const struct script *s)
{
    redisReply *r = NULL;
    int rc = bh_redis_as(REDIS_USER, &r, "SCRIPT LOAD %s", s->text);

    if (rc == 0 && (r->type != REDIS_REPLY_STRING || strcmp(r->str, s->sha) != 0)) {
        bh_log(BH_LOG_ERROR, "platform", "jobs: loading script %s gave an unexpected reply",
               s->name);
        rc = BH_EINTERNAL;
    }
    if (r != NULL)
        freeReplyObject(r);
    return rc;
}

int bh__queue_load_scripts(void)
{
    int rc = bh__queue_init();

    for (size_t i = 0; rc == 0 && i < sizeof all_scripts / sizeof all_scripts[0]; i++)
        rc = load_script(all_scripts[i]);
    return rc;
}

/* EVALSHA s with nkeys keys followed by the other arguments (args[0..n)).
 * lens may be NULL (C strings). When Redis does not know the script (a
 * restart empties its script cache), loads them all and tries once more.
 * On success *out is the reply, for the caller to free. */
static int run_script(struct script *s, int nkeys, int n, const char *const *args,
                      const size_t *lens, redisReply **out)
{
    const char **argv = malloc(((size_t)n + 3) * sizeof *argv);
    size_t *argl = malloc(((size_t)n + 3) * sizeof *argl);
    char nk[16];
    redisReply *r = NULL;
    int rc = BH_ENOMEM;

    *out = NULL;
    if (bh__queue_init() != 0)
        rc = BH_EINTERNAL;
    if (argv == NULL || argl == NULL || rc == BH_EINTERNAL)
        goto out;
    snprintf(nk, sizeof nk, "%d", nkeys);
    argv[0] = "EVALSHA";
    argv[1] = s->sha;
    argv[2] = nk;
    for (int i = 0; i < 3; i++)
        argl[i] = strlen(argv[i]);
    for (int i = 0; i < n; i++) {
        argv[i + 3] = args[i];
        argl[i + 3] = lens ? lens[i] : strlen(args[i]);
    }
    rc = bh_redis_argv_as(REDIS_USER, &r, n + 3, argv, argl);
    if (rc != 0 && is_noscript(r)) {
        freeReplyObject(r);
        r = NULL;
        rc = bh__queue_load_scripts();
        if (rc == 0)
            rc = bh_redis_argv_as(REDIS_USER, &r, n + 3, argv, argl);
    }
    if (rc != 0 && r != NULL) {
        bh_log(BH_LOG_ERROR, "platform", "jobs: script %s failed: %s", s->name,
               r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        freeReplyObject(r);
        r = NULL;
    }
    *out = r;
out:
    free(argv);
    free(argl);
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
static int run_int(struct script *s, int nkeys, int n, const char *const *args, long long *v)
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
    return run_int(&s_enqueue, 4, 12, args, &created);
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
    rc = run_int(&s_routes, 0, 4 * n, args, &ignored);
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
    rc = run_script(&s_fan_out, 0, 3 * n, args, NULL, &r);
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
    rc = run_script(&s_reserve, 2, 3, args, NULL, &r);
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
    rc = run_script(&s_ack_reserve, 3, 6, args, NULL, &r);
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

int bh__queue_ack(const struct bh__queue_keys *keys, const char *id, long long token)
{
    char key[BH__JOB_ID_MAX + 8], tok[24];
    long long v;
    int rc;

    if (job_key(id, key) != 0)
        return BH_EINVAL;
    snprintf(tok, sizeof tok, "%lld", token);
    const char *args[] = {keys->leased, key, id, tok};
    rc = run_int(&s_ack, 2, 4, args, &v);
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
    rc = run_int(&s_fail, 4, 9, args, &v);
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
    rc = run_int(&s_renew, 2, 5, args, &v);
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
    rc = run_int(&s_release, 3, 5, args, &v);
    return rc != 0 ? rc : (int)v;
}

int bh__queue_promote(const struct bh__queue_keys *keys, int limit, int *moved)
{
    char lim[16];
    const char *args[] = {keys->delayed, keys->ready, lim};
    long long v = 0;
    int rc;

    snprintf(lim, sizeof lim, "%d", limit);
    rc = run_int(&s_promote, 2, 3, args, &v);
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
    rc = run_script(&s_sweep, 3, 4, args, NULL, &r);
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
    int rc = run_script(&s_counts, 4, 4, args, NULL, &r);

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
        rc = run_script(&s_dead_list, 1, 3, args, NULL, &r);
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
    rc = run_int(&s_retry, 0, 1, args, &v);
    return rc != 0 ? rc : (v == 1 ? 0 : BH_ENOTFOUND);
}

int bh__queue_purge_dead(const struct bh__queue_keys *keys, long long *n)
{
    const char *args[] = {keys->dead, "500"};
    long long v;
    int rc;

    *n = 0;
    do {
        rc = run_int(&s_purge, 1, 2, args, &v);
        if (rc == 0)
            *n += v;
    } while (rc == 0 && v > 0);
    return rc;
}
