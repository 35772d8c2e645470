/* The worker pools: for every queue this process knows, a fixed number of
 * threads (a bulkhead: a slow queue can only ever tie up its own threads)
 * that reserve a job with a lease, run its handler and acknowledge it; and
 * one maintenance thread that renews the leases of running jobs, promotes
 * due delayed jobs, sweeps expired leases and refreshes the gauges.
 * A job is acknowledged only after its handler returned 0: a crash anywhere
 * before that makes it run again, never vanish. */
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
     * lease, and by bh__worker_pools_stop() to hand the job back. */
    bool busy;
    bool released; /* handed back at shutdown: the result is discarded */
    char id[BH__JOB_ID_MAX];
    long long token;
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

/* Runs an event delivery: the payload is the envelope written by
 * bh_outbox_publish. A payload that is not one can never succeed. */
static int run_event(const struct bh__jobs_handler *h, const struct bh__queue_job *job,
                     char error[ERROR_MAX], bool *permanent)
{
    json_t *env = json_loads(job->payload, 0, NULL);
    const json_t *trace = json_object_get(env, "trace");
    const json_t *data = json_object_get(env, "data");
    json_t *empty = NULL;
    struct bh_event ev;
    int rc;

    if (!json_is_object(env) || !json_is_string(json_object_get(env, "id")) ||
        !json_is_string(json_object_get(env, "type"))) {
        snprintf(error, ERROR_MAX, "invalid event envelope");
        *permanent = true;
        json_decref(env);
        return BH_EINVAL;
    }
    /* A missing or null data is an empty object to the handler. */
    if (data == NULL || json_is_null(data))
        data = empty = json_object();
    ev = (struct bh_event){
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

static void slot_begin(struct slot *s, const struct bh__queue_job *job)
{
    pthread_mutex_lock(&g_w.lock);
    s->busy = true;
    s->released = false;
    snprintf(s->id, sizeof s->id, "%s", job->id);
    s->token = job->token;
    s->renewed_ms = bh_now_ms();
    g_w.in_flight++;
    pthread_mutex_unlock(&g_w.lock);
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

/* Acknowledges a success (and, when next is not NULL, leases the next job
 * in the same round trip), or records a failure with its retry delay.
 * Returns whether *next holds a leased job. */
static bool settle(const struct bh__jobs_handler *h, struct bh__jobs_queue *q,
                   const struct bh__queue_job *job, int rc, const char *error, bool permanent,
                   struct bh__queue_job *next)
{
    const struct bh__jobs_config *cfg = bh__jobs_cfg();
    int64_t delay = 0;
    bool dead, lost = false;
    int r;

    if (rc == 0) {
        count(h, BH__JOB_OK);
        if (next != NULL) {
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
        return next != NULL && r == 0;
    }
    if (!permanent && job->attempts < job->max_attempts)
        delay = bh__backoff_delay_ms(&cfg->backoff, job->attempts, bh__backoff_os_random, NULL);
    r = bh__queue_fail(&q->keys, job->id, job->token, error, delay, permanent, &dead);
    if (r != 0) {
        bh_log(BH_LOG_WARN, "platform",
               "jobs: %s failed (%s) and the failure could not be recorded (%s); it will run "
               "again after its lease",
               job->id, error, r == 1 ? "lease lost" : bh_err_name(r));
        return false;
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
    return false;
}

/* Runs one leased job to its end. Returns whether *next holds the next
 * job, leased while acknowledging this one. */
static bool run_job(struct slot *s, const struct bh__queue_job *job, struct bh__queue_job *next)
{
    struct bh__jobs_queue *q = s->pool->q;
    const struct bh__jobs_handler *h = bh__jobs_handler_find(job->type);
    char error[ERROR_MAX] = "";
    bool permanent = false;
    struct timespec t0;
    int rc;

    slot_begin(s, job);
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
        return false;
    }
    return settle(h, q, job, rc, error, permanent, atomic_load(&g_w.stopping) ? NULL : next);
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

static void *worker_main(void *arg)
{
    struct slot *s = arg;
    struct bh__jobs_queue *q = s->pool->q;
    const struct bh__jobs_config *cfg = bh__jobs_cfg();
    int idle_ms = 1, down_ms = DOWN_WAIT_MIN_MS;
    struct bh__queue_job job, next;
    bool have = false;

    for (;;) {
        if (have && atomic_load(&g_w.stopping)) {
            /* Leased while acknowledging the previous one, just as the stop
             * began: hand it straight back. */
            bh__queue_release(&q->keys, job.id, job.token);
            bh__queue_job_release(&job);
            break;
        }
        if (!have) {
            unsigned long gen = wake_gen(q);
            int rc;

            if (atomic_load(&g_w.stopping))
                break;
            rc = bh__queue_reserve(&q->keys, cfg->lease_ms, &job);
            if (rc < 0) {
                queue_wait(q, gen, down_ms);
                down_ms = down_ms * 2 < DOWN_WAIT_MAX_MS ? down_ms * 2 : DOWN_WAIT_MAX_MS;
                continue;
            }
            down_ms = DOWN_WAIT_MIN_MS;
            if (rc == 1) {
                /* Empty: poll again soon, then less and less often; a local
                 * enqueue or relay wakes us at once. */
                queue_wait(q, gen, idle_ms);
                idle_ms = idle_ms * 2 < cfg->poll_ms ? idle_ms * 2 : cfg->poll_ms;
                continue;
            }
            idle_ms = 1;
        }
        have = run_job(s, &job, &next);
        bh__queue_job_release(&job);
        if (have)
            job = next;
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
            char id[BH__JOB_ID_MAX];
            long long token;
            bool due;
            int rc;

            pthread_mutex_lock(&g_w.lock);
            due = s->busy && !s->released && now - s->renewed_ms >= cfg->lease_ms / 3;
            memcpy(id, s->id, sizeof id);
            token = s->token;
            pthread_mutex_unlock(&g_w.lock);
            if (!due)
                continue;
            rc = bh__queue_renew(&pool->q->keys, id, token, cfg->lease_ms);
            pthread_mutex_lock(&g_w.lock);
            if (rc == 0 && s->busy && s->token == token)
                s->renewed_ms = now;
            pthread_mutex_unlock(&g_w.lock);
            if (rc == 1)
                bh_log(BH_LOG_WARN, "platform",
                       "jobs: lease of %s was lost while it ran; another worker may run it", id);
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
            char id[BH__JOB_ID_MAX];
            long long token;
            bool busy;

            pthread_mutex_lock(&g_w.lock);
            busy = s->busy && !s->released;
            s->released = s->released || busy;
            memcpy(id, s->id, sizeof id);
            token = s->token;
            pthread_mutex_unlock(&g_w.lock);
            if (!busy)
                continue;
            still_running++;
            if (bh__queue_release(&pool->q->keys, id, token) == 0)
                released++;
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
