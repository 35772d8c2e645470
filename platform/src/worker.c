/* The worker pools: for every queue this process knows, a fixed number of
 * threads (a bulkhead: a slow queue can only ever tie up its own threads)
 * that reserve a job with a lease, run its handler and acknowledge it; and
 * one maintenance thread that renews the leases of running jobs, promotes
 * due delayed jobs, sweeps expired leases and refreshes the gauges.
 * A job is acknowledged only after its handler returned 0: a crash anywhere
 * before that makes it run again, never vanish.
 *
 * Coalesced consumers (a subscription with handle_batch): on a queue that
 * has them, a worker takes the next ready job and the jobs of the same
 * consumer queued right behind it (queue_take.lua), runs the batch handler
 * once and acknowledges the batch with the same script call that takes the
 * next one. The batch is held like one job: its leases are renewed
 * together and handed back together at shutdown; a crash leaves all of
 * them to the sweep. When the batch handler fails, the events run one by
 * one through the ordinary handler, each settled on its own. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobs_internal.h"
#include "platform/clock.h"
#include "platform/breaker.h"
#include "platform/err.h"
#include "platform/log.h"
#include "queue.h"

enum {
    TICK_MS = 100, /* maintenance period (promotion precision) */
    PROMOTE_BATCH = 200,
    SWEEP_BATCH = 200,
    COUNTS_EVERY_MS = 2000,
    DOWN_WAIT_MIN_MS = 100, /* Redis unreachable: first pause, doubled up to the max */
    DOWN_WAIT_MAX_MS = 2000,
    ERROR_MAX = 240,
};

struct pool;

/* One worker thread and the job it is running, if any. */
struct slot {
    struct pool *pool;
    pthread_t thread;
    bool started;
    /* Guarded by g_w.lock: read by the maintenance thread to renew the
     * leases, and by bh__worker_pools_stop() to hand the jobs back. */
    bool busy;
    bool released;     /* handed back at shutdown: the result is discarded */
    unsigned long gen; /* counts the slot's runs */
    int n_held;        /* the job, or the jobs of a batch; token 0: settled */
    char ids[BH_EVENT_BATCH_MAX][BH__JOB_ID_MAX];
    long long tokens[BH_EVENT_BATCH_MAX];
    int64_t renewed_ms;
};

struct pool {
    struct bh__jobs_queue *q;
    struct slot *slots;
    int n;
};

static struct {
    pthread_mutex_t lock;      /* guards the slots' in-flight fields and in_flight */
    pthread_cond_t changed;    /* a job finished */
    pthread_cond_t maint_wake; /* the maintenance thread must stop */
    int in_flight;
    atomic_bool stopping; /* workers: take no new job */
    atomic_bool maint_stop;
    struct pool pools[BH__JOBS_MAX_QUEUES];
    int n_pools;
    pthread_t maint;
    bool maint_started;
} g_w = {.lock = PTHREAD_MUTEX_INITIALIZER};

static double seconds_since(const struct timespec *t0)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* ---- running one job ------------------------------------------------------------ */

static const char *str_field(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));

    return s ? s : "";
}

/* A delivery's event, read from the envelope bh_outbox_publish wrote: its
 * strings are borrowed from *env and *empty, which the caller drops. A
 * payload that is not an envelope can never succeed: BH_EINVAL. */
static int event_parse(const struct bh__queue_job *job, struct bh_event *out, json_t **env_out,
                       json_t **empty_out)
{
    json_t *env = json_loads(job->payload, 0, NULL);
    const json_t *trace = json_object_get(env, "trace");
    const json_t *data = json_object_get(env, "data");
    json_t *empty = NULL;

    *env_out = *empty_out = NULL;
    if (!json_is_object(env) || !json_is_string(json_object_get(env, "id")) ||
        !json_is_string(json_object_get(env, "type"))) {
        json_decref(env);
        return BH_EINVAL;
    }
    /* A missing or null data is an empty object to the handler. */
    if (data == NULL || json_is_null(data))
        data = empty = json_object();
    *out = (struct bh_event){
        .id = str_field(env, "id"),
        .type = str_field(env, "type"),
        .occurred_at = str_field(env, "occurred_at"),
        .org_id = str_field(env, "org_id"),
        .actor_id = str_field(env, "actor_id"),
        .data = data,
        .trace_id = str_field(trace, "trace_id"),
        .request_id = str_field(trace, "request_id"),
        .attempt = job->attempts,
    };
    *env_out = env;
    *empty_out = empty;
    return 0;
}

/* Runs an event delivery through the subscription's ordinary handler. */
static int run_event(const struct bh__jobs_handler *h, const struct bh__queue_job *job,
                     char error[ERROR_MAX], bool *permanent)
{
    json_t *env, *empty;
    struct bh_event ev;
    int rc;

    if (event_parse(job, &ev, &env, &empty) != 0) {
        snprintf(error, ERROR_MAX, "invalid event envelope");
        *permanent = true;
        return BH_EINVAL;
    }
    /* The handler's log lines (and any event it publishes) carry the trace
     * of the request that caused the event. */
    bh_log_context_set(ev.request_id, ev.trace_id);
    rc = h->sub->handle(&ev);
    bh_log_context_set(NULL, NULL);
    json_decref(empty);
    json_decref(env);
    return rc;
}

static int run_plain(const struct bh__jobs_handler *h, const struct bh__queue_job *job,
                     char error[ERROR_MAX], bool *permanent)
{
    json_t *payload = json_loads(job->payload, JSON_DECODE_ANY, NULL);
    int rc;

    if (payload == NULL) {
        snprintf(error, ERROR_MAX, "invalid job payload");
        *permanent = true;
        return BH_EINVAL;
    }
    bh_log_context_set(job->request_id, job->trace_id);
    rc = h->job->run(&(struct bh_job){.id = job->id,
                                      .type = job->type,
                                      .payload = payload,
                                      .trace_id = job->trace_id,
                                      .attempt = job->attempts});
    bh_log_context_set(NULL, NULL);
    json_decref(payload);
    return rc;
}

static void slot_begin(struct slot *s, const struct bh__queue_job *jobs, int n)
{
    pthread_mutex_lock(&g_w.lock);
    s->busy = true;
    s->released = false;
    s->n_held = n;
    s->gen++;
    for (int i = 0; i < n; i++) {
        snprintf(s->ids[i], sizeof s->ids[i], "%s", jobs[i].id);
        s->tokens[i] = jobs[i].token;
    }
    s->renewed_ms = bh_now_ms();
    g_w.in_flight++;
    pthread_mutex_unlock(&g_w.lock);
}

/* Takes job i of a batch out of the slot, to settle it on its own. Returns
 * whether the jobs were handed back meanwhile (shutdown): then the caller
 * must not settle it. */
static bool slot_settle(struct slot *s, int i)
{
    bool released;

    pthread_mutex_lock(&g_w.lock);
    released = s->released;
    s->tokens[i] = 0;
    pthread_mutex_unlock(&g_w.lock);
    return released;
}

/* Copies the jobs the slot still holds (for a call to Redis outside the
 * lock). Returns how many. Call with g_w.lock held. */
static int slot_held(const struct slot *s, char ids[][BH__JOB_ID_MAX], long long *tokens)
{
    int n = 0;

    for (int i = 0; i < s->n_held; i++)
        if (s->tokens[i] != 0) {
            memcpy(ids[n], s->ids[i], BH__JOB_ID_MAX);
            tokens[n++] = s->tokens[i];
        }
    return n;
}

/* Returns whether the job was handed back meanwhile (shutdown). */
static bool slot_end(struct slot *s)
{
    bool released;

    pthread_mutex_lock(&g_w.lock);
    released = s->released;
    s->busy = false;
    g_w.in_flight--;
    pthread_cond_broadcast(&g_w.changed);
    pthread_mutex_unlock(&g_w.lock);
    return released;
}

static void count(const struct bh__jobs_handler *h, enum bh__job_outcome o)
{
    if (h != NULL)
        bh_counter_add(h->outcome[o], 1);
}

/* Acknowledges n finished jobs and leases the next job, or the next batch,
 * in the same round trip. Returns how many jobs next holds. */
static int ack_take(struct bh__jobs_queue *q, const struct bh__queue_job *jobs, int n,
                    struct bh__queue_job *next)
{
    const char *ids[BH_EVENT_BATCH_MAX];
    long long tokens[BH_EVENT_BATCH_MAX];
    bool lost[BH_EVENT_BATCH_MAX];
    int got = 0, r;

    for (int i = 0; i < n; i++) {
        ids[i] = jobs[i].id;
        tokens[i] = jobs[i].token;
    }
    r = bh__queue_take(&q->keys, bh__jobs_cfg()->lease_ms, n, ids, tokens, lost, &q->batching,
                       next != NULL ? BH_EVENT_BATCH_MAX : 0, next, &got);
    for (int i = 0; i < n && (r == 0 || r == BH_ENOMEM); i++)
        if (lost[i])
            bh_log(BH_LOG_WARN, "platform",
                   "jobs: lease of %s was lost before it finished; it will run again", ids[i]);
    if (r < 0 && r != BH_ENOMEM)
        bh_log(BH_LOG_WARN, "platform",
               "jobs: could not acknowledge %d job(s) from %s (%s); they will run again after "
               "their lease",
               n, ids[0], bh_err_name(r));
    return r == 0 ? got : 0;
}

/* Acknowledges a success (and, when next is not NULL, leases the next job,
 * or batch, in the same round trip), or records a failure with its retry
 * delay. Returns how many jobs *next holds. */
static int settle(const struct bh__jobs_handler *h, struct bh__jobs_queue *q,
                  const struct bh__queue_job *job, int rc, const char *error, bool permanent,
                  struct bh__queue_job *next)
{
    const struct bh__jobs_config *cfg = bh__jobs_cfg();
    int64_t delay = 0;
    bool dead, lost = false;
    int r;

    if (rc == 0) {
        count(h, BH__JOB_OK);
        if (q->batching.n > 0) {
            /* A take, so that a batch can follow (also without next: the
             * script then leases nothing). */
            if (next == NULL) {
                r = bh__queue_ack(&q->keys, job->id, job->token);
                lost = r == 1;
            } else {
                return ack_take(q, job, 1, next);
            }
        } else if (next != NULL) {
            r = bh__queue_ack_reserve(&q->keys, job->id, job->token, cfg->lease_ms, &lost, next);
        } else {
            r = bh__queue_ack(&q->keys, job->id, job->token);
            lost = r == 1;
        }
        if (lost)
            bh_log(BH_LOG_WARN, "platform",
                   "jobs: lease of %s was lost before it finished; it will run again", job->id);
        /* BH_ENOMEM: acknowledged; only copying the next job failed, and
         * that one comes back when its lease expires. */
        if (r < 0 && r != BH_ENOMEM)
            bh_log(BH_LOG_WARN, "platform",
                   "jobs: could not acknowledge %s (%s); it will run again after its lease",
                   job->id, bh_err_name(r));
        return next != NULL && r == 0 ? 1 : 0;
    }
    if (!permanent && job->attempts < job->max_attempts)
        delay = bh__backoff_delay_ms(&cfg->backoff, job->attempts, bh__backoff_os_random, NULL);
    r = bh__queue_fail(&q->keys, job->id, job->token, error, delay, permanent, &dead);
    if (r != 0) {
        bh_log(BH_LOG_WARN, "platform",
               "jobs: %s failed (%s) and the failure could not be recorded (%s); it will run "
               "again after its lease",
               job->id, error, r == 1 ? "lease lost" : bh_err_name(r));
        return 0;
    }
    count(h, dead ? BH__JOB_DEAD : BH__JOB_RETRY);
    if (dead)
        bh_log(BH_LOG_ERROR, "platform",
               "jobs: %s (%s) failed on attempt %d of %d: %s; moved to the dead letters", job->id,
               job->type, job->attempts, job->max_attempts, error);
    else
        bh_log(BH_LOG_WARN, "platform",
               "jobs: %s (%s) failed on attempt %d of %d: %s; retry in %lld ms", job->id, job->type,
               job->attempts, job->max_attempts, error, (long long)delay);
    return 0;
}

/* Runs one leased job to its end. Returns how many jobs *next holds,
 * leased while acknowledging this one. */
static int run_job(struct slot *s, const struct bh__queue_job *job, struct bh__queue_job *next)
{
    struct bh__jobs_queue *q = s->pool->q;
    const struct bh__jobs_handler *h = bh__jobs_handler_find(job->type);
    char error[ERROR_MAX] = "";
    bool permanent = false;
    struct timespec t0;
    int rc;

    slot_begin(s, job, 1);
    bh_histogram_observe(q->wait_hist, job->started_ms > job->ready_ms
                                           ? (double)(job->started_ms - job->ready_ms) / 1000.0
                                           : 0.0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (h == NULL || h->queue != q) {
        /* Another version of the binary enqueued it: retrying gives a
         * process that knows the type a chance, then the dead letters. */
        snprintf(error, sizeof error, "no handler for %s on queue %s in this process", job->type,
                 q->name);
        rc = BH_EINVAL;
    } else if (h->sub != NULL) {
        rc = run_event(h, job, error, &permanent);
    } else {
        rc = run_plain(h, job, error, &permanent);
    }
    bh_histogram_observe(q->duration_hist, seconds_since(&t0));
    if (rc != 0 && error[0] == '\0')
        snprintf(error, sizeof error, "handler returned %s", bh_err_name(rc));
    if (slot_end(s)) {
        bh_log(BH_LOG_WARN, "platform",
               "jobs: %s finished after it was handed back at shutdown; it will run again",
               job->id);
        return 0;
    }
    return settle(h, q, job, rc, error, permanent, atomic_load(&g_w.stopping) ? NULL : next);
}

/* The batch handler failed: runs the jobs one by one through the ordinary
 * handler, each settled on its own (a poison event goes to its retries and
 * dead letters alone). At shutdown the jobs not started yet go back to the
 * front of the queue. */
static void run_one_by_one(struct slot *s, const struct bh__jobs_handler *h,
                           const struct bh__queue_job *jobs, int n)
{
    struct bh__jobs_queue *q = s->pool->q;
    int i = 0;

    for (; i < n && !atomic_load(&g_w.stopping); i++) {
        char error[ERROR_MAX] = "";
        bool permanent = false;
        int rc = run_event(h, &jobs[i], error, &permanent);

        if (rc != 0 && error[0] == '\0')
            snprintf(error, sizeof error, "handler returned %s", bh_err_name(rc));
        if (slot_settle(s, i))
            return; /* handed back at shutdown, with the rest */
        settle(h, q, &jobs[i], rc, error, permanent, NULL);
    }
    /* The last first: each goes to the front, so they keep their order. */
    for (int k = n - 1; k >= i; k--)
        if (!slot_settle(s, k))
            bh__queue_release(&q->keys, jobs[k].id, jobs[k].token);
}

/* Calls h's batch handler for the events of jobs, in queue order. An
 * envelope that is not one fails the batch: its events then run alone, and
 * that one goes to the dead letters. */
static int call_batch_handler(const struct bh__jobs_handler *h, const struct bh__queue_job *jobs,
                              int n)
{
    struct bh_event evs[BH_EVENT_BATCH_MAX];
    json_t *envs[BH_EVENT_BATCH_MAX], *empties[BH_EVENT_BATCH_MAX];
    int n_ev = 0, rc;

    for (rc = 0; n_ev < n && rc == 0; n_ev++)
        rc = event_parse(&jobs[n_ev], &evs[n_ev], &envs[n_ev], &empties[n_ev]);
    if (rc != 0)
        n_ev--; /* the one that failed holds nothing */
    else
        rc = h->sub->handle_batch(evs, n);
    for (int i = 0; i < n_ev; i++) {
        json_decref(empties[i]);
        json_decref(envs[i]);
    }
    return rc;
}

/* Runs a batch of n (2 or more) jobs of one coalesced consumer, in queue
 * order, with one call of its batch handler. Returns how many jobs *next
 * holds, leased while acknowledging the batch. */
static int run_batch(struct slot *s, const struct bh__queue_job *jobs, int n,
                     struct bh__queue_job *next)
{
    struct bh__jobs_queue *q = s->pool->q;
    const struct bh__jobs_handler *h = bh__jobs_handler_find(jobs[0].type);
    int rc = BH_EINVAL;
    bool released;
    struct timespec t0;

    slot_begin(s, jobs, n);
    for (int i = 0; i < n; i++)
        bh_histogram_observe(q->wait_hist,
                             jobs[i].started_ms > jobs[i].ready_ms
                                 ? (double)(jobs[i].started_ms - jobs[i].ready_ms) / 1000.0
                                 : 0.0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (h != NULL && h->queue == q && h->sub != NULL && h->sub->handle_batch != NULL)
        rc = call_batch_handler(h, jobs, n);
    bh_histogram_observe(q->duration_hist, seconds_since(&t0));
    if (h != NULL && h->batches != NULL)
        bh_counter_add(h->batches, 1);
    if (rc != 0) {
        if (h != NULL && h->queue == q && h->sub != NULL) {
            bh_log(BH_LOG_WARN, "platform",
                   "jobs: a batch of %d %s failed (%s); running them one by one", n, jobs[0].type,
                   bh_err_name(rc));
            run_one_by_one(s, h, jobs, n);
            slot_end(s);
            return 0;
        }
        /* Cannot happen: queue_take.lua batches only the types this
         * process registered as coalesced consumers of this queue. */
        for (int i = 0; i < n; i++)
            if (!slot_settle(s, i))
                settle(h, q, &jobs[i], BH_EINVAL, "no coalesced consumer in this process", false,
                       NULL);
        slot_end(s);
        return 0;
    }
    released = slot_end(s);
    if (released) {
        bh_log(BH_LOG_WARN, "platform",
               "jobs: a batch of %d from %s finished after it was handed back at shutdown; it "
               "will run again",
               n, jobs[0].id);
        return 0;
    }
    for (int i = 0; i < n; i++)
        count(h, BH__JOB_OK);
    return ack_take(q, jobs, n, atomic_load(&g_w.stopping) ? NULL : next);
}

/* Runs the n jobs taken in one go: one job alone, or a batch. */
static int run_jobs(struct slot *s, const struct bh__queue_job *jobs, int n,
                    struct bh__queue_job *next)
{
    return n == 1 ? run_job(s, &jobs[0], next) : run_batch(s, jobs, n, next);
}

/* ---- the worker threads ------------------------------------------------------------ */

static unsigned long wake_gen(struct bh__jobs_queue *q)
{
    unsigned long gen;

    pthread_mutex_lock(&q->lock);
    gen = q->wake_gen;
    pthread_mutex_unlock(&q->lock);
    return gen;
}

/* Sleeps up to ms, or until the queue is woken after gen was read. */
static void queue_wait(struct bh__jobs_queue *q, unsigned long gen, int ms)
{
    struct timespec until = bh_deadline_ms(ms);

    pthread_mutex_lock(&q->lock);
    while (q->wake_gen == gen && !atomic_load(&g_w.stopping))
        if (pthread_cond_timedwait(&q->wake, &q->lock, &until) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&q->lock);
}

/* Leases the next job, or on a queue with coalesced consumers the next
 * batch. 0 with *n jobs (0: the queue is empty), or a negative bh_err. */
static int take(struct bh__jobs_queue *q, struct bh__queue_job *jobs, int *n)
{
    const struct bh__jobs_config *cfg = bh__jobs_cfg();
    int rc;

    if (q->batching.n > 0)
        return bh__queue_take(&q->keys, cfg->lease_ms, 0, NULL, NULL, NULL, &q->batching,
                              BH_EVENT_BATCH_MAX, jobs, n);
    rc = bh__queue_reserve(&q->keys, cfg->lease_ms, &jobs[0]);
    *n = rc == 0 ? 1 : 0;
    return rc < 0 ? rc : 0;
}

static void *worker_main(void *arg)
{
    struct slot *s = arg;
    struct bh__jobs_queue *q = s->pool->q;
    const struct bh__jobs_config *cfg = bh__jobs_cfg();
    int idle_ms = 1, down_ms = DOWN_WAIT_MIN_MS;
    struct bh__queue_job jobs[BH_EVENT_BATCH_MAX], next[BH_EVENT_BATCH_MAX];
    int have = 0;

    for (;;) {
        if (have > 0 && atomic_load(&g_w.stopping)) {
            /* Leased while acknowledging the previous ones, just as the
             * stop began: hand them straight back, in queue order. */
            for (int i = have - 1; i >= 0; i--) {
                bh__queue_release(&q->keys, jobs[i].id, jobs[i].token);
                bh__queue_job_release(&jobs[i]);
            }
            break;
        }
        if (have == 0) {
            unsigned long gen = wake_gen(q);
            int rc;

            if (atomic_load(&g_w.stopping))
                break;
            rc = take(q, jobs, &have);
            if (rc < 0) {
                queue_wait(q, gen, down_ms);
                down_ms = down_ms * 2 < DOWN_WAIT_MAX_MS ? down_ms * 2 : DOWN_WAIT_MAX_MS;
                continue;
            }
            down_ms = DOWN_WAIT_MIN_MS;
            if (have == 0) {
                /* Empty: poll again soon, then less and less often; a local
                 * enqueue or relay wakes us at once. */
                queue_wait(q, gen, idle_ms);
                idle_ms = idle_ms * 2 < cfg->poll_ms ? idle_ms * 2 : cfg->poll_ms;
                continue;
            }
            idle_ms = 1;
        }
        {
            int got = run_jobs(s, jobs, have, next);

            for (int i = 0; i < have; i++)
                bh__queue_job_release(&jobs[i]);
            memcpy(jobs, next, (size_t)got * sizeof *jobs);
            have = got;
        }
    }
    return NULL;
}

/* ---- the maintenance thread ---------------------------------------------------------- */

/* Renews the lease of every running job a third of the way through it, so
 * a job outlives its lease only when its worker is gone. */
static void renew_leases(int64_t now)
{
    const struct bh__jobs_config *cfg = bh__jobs_cfg();

    for (int p = 0; p < g_w.n_pools; p++) {
        struct pool *pool = &g_w.pools[p];

        for (int i = 0; i < pool->n; i++) {
            struct slot *s = &pool->slots[i];
            char ids[BH_EVENT_BATCH_MAX][BH__JOB_ID_MAX];
            unsigned long gen = 0;
            long long tokens[BH_EVENT_BATCH_MAX];
            bool due, renewed = true;
            int n = 0;

            pthread_mutex_lock(&g_w.lock);
            due = s->busy && !s->released && now - s->renewed_ms >= cfg->lease_ms / 3;
            if (due)
                n = slot_held(s, ids, tokens);
            gen = s->gen;
            pthread_mutex_unlock(&g_w.lock);
            /* A batch is renewed as one job: every lease of it, together. */
            for (int k = 0; k < n; k++) {
                int rc = bh__queue_renew(&pool->q->keys, ids[k], tokens[k], cfg->lease_ms);

                renewed = renewed && rc == 0;
                if (rc == 1)
                    bh_log(BH_LOG_WARN, "platform",
                           "jobs: lease of %s was lost while it ran; another worker may run it",
                           ids[k]);
            }
            pthread_mutex_lock(&g_w.lock);
            if (n > 0 && renewed && s->busy && s->gen == gen)
                s->renewed_ms = now;
            pthread_mutex_unlock(&g_w.lock);
        }
    }
}

static void promote_and_sweep(bool sweep)
{
    for (int i = 0; i < bh__jobs_queue_count(); i++) {
        struct bh__jobs_queue *q = bh__jobs_queue_at(i);
        int moved = 0, requeued = 0, dead = 0;
        bool wake = false;

        do {
            if (bh__queue_promote(&q->keys, PROMOTE_BATCH, &moved) != 0)
                return; /* Redis is down: nothing else will work either */
            wake = wake || moved > 0;
        } while (moved == PROMOTE_BATCH);
        if (sweep) {
            do {
                if (bh__queue_sweep(&q->keys, SWEEP_BATCH, &requeued, &dead) != 0)
                    return;
                if (requeued + dead > 0)
                    bh_log(BH_LOG_WARN, "platform",
                           "jobs: %d job(s) of %s outlived their lease: %d back in the queue, "
                           "%d to the dead letters",
                           requeued + dead, q->name, requeued, dead);
                wake = wake || requeued > 0;
            } while (requeued + dead == SWEEP_BATCH);
        }
        if (wake)
            bh__jobs_queue_wake(q->name);
    }
}

static void refresh_counts(void)
{
    for (int i = 0; i < bh__jobs_queue_count(); i++) {
        struct bh__jobs_queue *q = bh__jobs_queue_at(i);
        long long c[4];
        bool ok = bh__queue_counts(&q->keys, c) == 0;

        pthread_mutex_lock(&q->lock);
        q->counts_known = ok;
        if (ok)
            memcpy(q->counts, c, sizeof c);
        pthread_mutex_unlock(&q->lock);
    }
}

static void *maint_main(void *arg)
{
    const struct bh__jobs_config *cfg = bh__jobs_cfg();
    int sweep_every = cfg->lease_ms / 4;
    int64_t next_sweep = 0, next_counts = 0;

    (void)arg;
    sweep_every = sweep_every < TICK_MS ? TICK_MS : sweep_every > 1000 ? 1000 : sweep_every;
    while (!atomic_load(&g_w.maint_stop)) {
        int64_t now = bh_now_ms();
        struct timespec until;

        renew_leases(now);
        promote_and_sweep(now >= next_sweep);
        if (now >= next_sweep)
            next_sweep = now + sweep_every;
        if (now >= next_counts) {
            refresh_counts();
            next_counts = now + COUNTS_EVERY_MS;
        }
        until = bh_deadline_ms(TICK_MS);
        pthread_mutex_lock(&g_w.lock);
        if (!atomic_load(&g_w.maint_stop))
            pthread_cond_timedwait(&g_w.maint_wake, &g_w.lock, &until);
        pthread_mutex_unlock(&g_w.lock);
    }
    return NULL;
}

/* ---- start and stop ---------------------------------------------------------------------- */

/* Joins the workers (the maintenance thread keeps renewing the leases of
 * jobs still running meanwhile), then the maintenance thread, and only then
 * frees the slots it reads. */
static void join_all(void)
{
    for (int p = 0; p < g_w.n_pools; p++)
        for (int i = 0; i < g_w.pools[p].n; i++)
            if (g_w.pools[p].slots[i].started)
                pthread_join(g_w.pools[p].slots[i].thread, NULL);
    atomic_store(&g_w.maint_stop, true);
    pthread_mutex_lock(&g_w.lock);
    pthread_cond_broadcast(&g_w.maint_wake);
    pthread_mutex_unlock(&g_w.lock);
    if (g_w.maint_started)
        pthread_join(g_w.maint, NULL);
    g_w.maint_started = false;
    for (int p = 0; p < g_w.n_pools; p++)
        free(g_w.pools[p].slots);
    g_w.n_pools = 0;
    pthread_cond_destroy(&g_w.changed);
    pthread_cond_destroy(&g_w.maint_wake);
}

int bh__worker_pools_start(void)
{
    int threads = 0;

    if (bh__jobs_cond_init(&g_w.changed) != 0)
        return BH_ENOMEM;
    if (bh__jobs_cond_init(&g_w.maint_wake) != 0) {
        pthread_cond_destroy(&g_w.changed);
        return BH_ENOMEM;
    }
    atomic_store(&g_w.stopping, false);
    atomic_store(&g_w.maint_stop, false);
    g_w.in_flight = 0;
    for (int i = 0; i < bh__jobs_queue_count(); i++) {
        struct bh__jobs_queue *q = bh__jobs_queue_at(i);
        struct pool *pool = &g_w.pools[g_w.n_pools];

        if (q->concurrency == 0)
            continue; /* served by other processes */
        pool->q = q;
        pool->slots = calloc((size_t)q->concurrency, sizeof *pool->slots);
        if (pool->slots == NULL)
            goto out_fail;
        g_w.n_pools++;
        for (int k = 0; k < q->concurrency; k++) {
            struct slot *s = &pool->slots[k];

            s->pool = pool;
            if (pthread_create(&s->thread, NULL, worker_main, s) != 0)
                goto out_fail;
            s->started = true;
            pool->n = k + 1;
            threads++;
        }
    }
    if (pthread_create(&g_w.maint, NULL, maint_main, NULL) != 0)
        goto out_fail;
    g_w.maint_started = true;
    bh_log(BH_LOG_INFO, "platform", "jobs: %d worker thread(s) on %d queue(s)", threads,
           g_w.n_pools);
    return 0;

out_fail:
    bh_log(BH_LOG_ERROR, "platform", "jobs: cannot start the worker threads");
    atomic_store(&g_w.stopping, true);
    for (int i = 0; i < bh__jobs_queue_count(); i++)
        bh__jobs_queue_wake(bh__jobs_queue_at(i)->name);
    join_all();
    return BH_ENOMEM;
}

void bh__worker_pools_stop(int grace_ms)
{
    struct timespec until = bh_deadline_ms(grace_ms > 0 ? grace_ms : 0);
    int released = 0, still_running = 0;

    atomic_store(&g_w.stopping, true);
    for (int i = 0; i < bh__jobs_queue_count(); i++)
        bh__jobs_queue_wake(bh__jobs_queue_at(i)->name);

    /* Let running jobs finish within the grace period (their leases are
     * still renewed by the maintenance thread meanwhile). */
    pthread_mutex_lock(&g_w.lock);
    while (g_w.in_flight > 0)
        if (pthread_cond_timedwait(&g_w.changed, &g_w.lock, &until) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&g_w.lock);

    /* Hand the rest back to the front of their queues, so another worker
     * runs them now instead of after their leases expire. */
    for (int p = 0; p < g_w.n_pools; p++) {
        struct pool *pool = &g_w.pools[p];

        for (int i = 0; i < pool->n; i++) {
            struct slot *s = &pool->slots[i];
            char ids[BH_EVENT_BATCH_MAX][BH__JOB_ID_MAX];
            long long tokens[BH_EVENT_BATCH_MAX];
            bool busy;
            int n = 0;

            pthread_mutex_lock(&g_w.lock);
            busy = s->busy && !s->released;
            s->released = s->released || busy;
            if (busy)
                n = slot_held(s, ids, tokens);
            pthread_mutex_unlock(&g_w.lock);
            /* Back in queue order: the last of a batch first, each to the
             * front of the queue. */
            for (int k = n - 1; k >= 0; k--) {
                still_running++;
                if (bh__queue_release(&pool->q->keys, ids[k], tokens[k]) == 0)
                    released++;
            }
        }
    }
    if (still_running > 0)
        bh_log(BH_LOG_WARN, "platform",
               "jobs: %d job(s) still running after %d ms: %d handed back to their queue, the "
               "rest return when their lease expires; waiting for the handlers to return",
               still_running, grace_ms, released);
    join_all();
    bh_log(BH_LOG_INFO, "platform", "jobs: workers stopped");
}
