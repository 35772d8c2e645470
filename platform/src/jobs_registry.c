/* The registry of the async backbone (jobs_internal.h): the queues and
 * handlers built from the module descriptors, the configuration read from
 * the environment, the per-queue gauges, and the routes of event
 * subscriptions published to Redis. Written once by bh__jobs_registry_init()
 * before any other thread starts, read-only after. It must never start a
 * thread, run a handler or touch a queue's keys but through queue.c. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobs_internal.h"
#include "platform/config.h"
#include "platform/err.h"
#include "platform/log.h"
#include "queue.h"

enum {
    DEFAULT_MAX_ATTEMPTS = 8,
    DEFAULT_CONCURRENCY = 2,
    MAX_CONCURRENCY = 64,
    EVENT_TYPE_MAX = 100,                              /* "task.created" and the like */
    CONSUMER_MAX = BH__JOB_TYPE_MAX - sizeof "event:", /* what fits "event:<consumer>" */
};

static struct {
    bool ready;
    struct bh__jobs_config cfg;
    struct bh__jobs_queue queues[BH__JOBS_MAX_QUEUES];
    int n_queues;
    struct bh__jobs_handler handlers[BH__JOBS_MAX_HANDLERS];
    int n_handlers;
} g_jobs;

/* ---- registry --------------------------------------------------------------------- */

const struct bh__jobs_config *bh__jobs_cfg(void)
{
    return &g_jobs.cfg;
}
int bh__jobs_queue_count(void)
{
    return g_jobs.n_queues;
}
struct bh__jobs_queue *bh__jobs_queue_at(int i)
{
    return &g_jobs.queues[i];
}

static struct bh__jobs_queue *queue_find(const char *name)
{
    for (int i = 0; i < g_jobs.n_queues; i++)
        if (strcmp(g_jobs.queues[i].name, name) == 0)
            return &g_jobs.queues[i];
    return NULL;
}

const struct bh__jobs_handler *bh__jobs_handler_find(const char *type)
{
    for (int i = 0; i < g_jobs.n_handlers; i++)
        if (strcmp(g_jobs.handlers[i].type, type) == 0)
            return &g_jobs.handlers[i];
    return NULL;
}

void bh__jobs_queue_wake(const char *name)
{
    struct bh__jobs_queue *q = queue_find(name);

    if (q == NULL)
        return;
    pthread_mutex_lock(&q->lock);
    q->wake_gen++;
    pthread_cond_broadcast(&q->wake);
    pthread_mutex_unlock(&q->lock);
}

int bh__jobs_cond_init(pthread_cond_t *c)
{
    pthread_condattr_t attr;
    int rc;

    if (pthread_condattr_init(&attr) != 0)
        return BH_ENOMEM;
    rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 && pthread_cond_init(c, &attr) == 0
             ? 0
             : BH_ENOMEM;
    pthread_condattr_destroy(&attr);
    return rc;
}

/* BULKHEAD_QUEUE_<NAME>_CONCURRENCY: the name upper-cased. */
static int queue_concurrency(const char *name)
{
    char var[BH__QUEUE_NAME_MAX + 32];
    int n = snprintf(var, sizeof var, "BULKHEAD_QUEUE_");

    for (const char *p = name; *p; p++)
        var[n++] = (char)toupper((unsigned char)*p);
    snprintf(var + n, sizeof var - (size_t)n, "_CONCURRENCY");
    return (int)bh_config_int(var, DEFAULT_CONCURRENCY, 0, MAX_CONCURRENCY);
}

static struct bh__jobs_queue *queue_get_or_add(const char *name)
{
    struct bh__jobs_queue *q = queue_find(name);
    char labels[BH__QUEUE_NAME_MAX + 16];

    if (q != NULL)
        return q;
    if (g_jobs.n_queues == BH__JOBS_MAX_QUEUES)
        return NULL;
    q = &g_jobs.queues[g_jobs.n_queues];
    if (pthread_mutex_init(&q->lock, NULL) != 0)
        return NULL;
    if (bh__jobs_cond_init(&q->wake) != 0) {
        pthread_mutex_destroy(&q->lock);
        return NULL;
    }
    g_jobs.n_queues++;
    snprintf(q->name, sizeof q->name, "%s", name);
    bh__queue_keys_for(name, &q->keys);
    q->concurrency = queue_concurrency(name);
    snprintf(labels, sizeof labels, "queue=\"%s\"", name);
    q->wait_hist =
        bh_histogram_get("bulkhead_jobs_wait_seconds",
                         "Time from a job being ready (enqueued or due) to its start", labels);
    q->duration_hist =
        bh_histogram_get("bulkhead_jobs_duration_seconds", "Time a handler ran", labels);
    return q;
}

/* Stable names: consumers and job types are also keys and log fields. */
static bool name_valid(const char *s, size_t max)
{
    size_t n = 0;

    if (s == NULL)
        return false;
    for (; s[n]; n++)
        if (!(islower((unsigned char)s[n]) || isdigit((unsigned char)s[n]) || s[n] == '_' ||
              s[n] == '.' || s[n] == '-'))
            return false;
    return n > 0 && n <= max;
}

static int handler_add(const char *module, const char *type, const char *queue_name,
                       int max_attempts, const struct bh_subscription *sub,
                       const struct bh_job_type *job)
{
    static const char *const outcome_names[] = {"ok", "retry", "dead"};
    struct bh__jobs_handler *h;
    struct bh__jobs_queue *q;
    char labels[BH__JOB_TYPE_MAX + 64];

    if (!bh__queue_name_valid(queue_name)) {
        bh_log(BH_LOG_ERROR, "platform", "jobs: %s: %s has an invalid queue name", module, type);
        return BH_EINVAL;
    }
    if (bh__jobs_handler_find(type) != NULL) {
        bh_log(BH_LOG_ERROR, "platform", "jobs: %s: %s is registered twice", module, type);
        return BH_EINVAL;
    }
    if (g_jobs.n_handlers == BH__JOBS_MAX_HANDLERS || (q = queue_get_or_add(queue_name)) == NULL)
        return BH_ENOMEM;
    h = &g_jobs.handlers[g_jobs.n_handlers++];
    snprintf(h->type, sizeof h->type, "%s", type);
    h->sub = sub;
    h->job = job;
    h->queue = q;
    h->max_attempts = max_attempts > 0 ? max_attempts : DEFAULT_MAX_ATTEMPTS;
    h->batch_max = 1;
    if (sub != NULL && sub->handle_batch != NULL) {
        struct bh__queue_batching *b = &q->batching;

        if (sub->batch_max < 0 || sub->batch_max == 1 || sub->batch_max > BH_EVENT_BATCH_MAX) {
            bh_log(BH_LOG_ERROR, "platform", "jobs: %s: %s has an invalid batch size", module,
                   type);
            return BH_EINVAL;
        }
        if (b->n == BH__JOBS_MAX_BATCH_TYPES)
            return BH_ENOMEM;
        h->batch_max = sub->batch_max > 0 ? sub->batch_max : BH_EVENT_BATCH_MAX;
        snprintf(labels, sizeof labels, "queue=\"%s\",type=\"%s\"", q->name, type);
        h->batches = bh_counter_get("bulkhead_jobs_batches_total",
                                    "Batches taken by coalesced consumers", labels);
        b->types[b->n] = h->type;
        snprintf(b->sizes[b->n], sizeof b->sizes[b->n], "%d", h->batch_max);
        b->n++;
    }
    for (int i = 0; i < 3; i++) {
        snprintf(labels, sizeof labels, "queue=\"%s\",type=\"%s\",outcome=\"%s\"", q->name, type,
                 outcome_names[i]);
        h->outcome[i] = bh_counter_get("bulkhead_jobs_runs_total", "Jobs run, by outcome", labels);
    }
    return 0;
}

static int register_module(const struct bh_module *m)
{
    char type[BH__JOB_TYPE_MAX];
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < m->n_subscriptions; i++) {
        const struct bh_subscription *s = &m->subscriptions[i];

        if (!name_valid(s->consumer, CONSUMER_MAX) || !name_valid(s->event_type, EVENT_TYPE_MAX) ||
            s->handle == NULL) {
            bh_log(BH_LOG_ERROR, "platform", "jobs: %s: subscription %zu is invalid", m->name, i);
            return BH_EINVAL;
        }
        snprintf(type, sizeof type, "event:%s", s->consumer);
        rc = handler_add(m->name, type, s->queue, s->max_attempts, s, NULL);
    }
    for (size_t i = 0; rc == 0 && i < m->n_job_types; i++) {
        const struct bh_job_type *j = &m->job_types[i];

        if (!name_valid(j->name, BH__JOB_TYPE_MAX - 1) || strncmp(j->name, "event:", 6) == 0 ||
            j->run == NULL) {
            bh_log(BH_LOG_ERROR, "platform", "jobs: %s: job type %zu is invalid", m->name, i);
            return BH_EINVAL;
        }
        rc = handler_add(m->name, j->name, j->queue, j->max_attempts, NULL, j);
    }
    return rc;
}

static void load_config(struct bh__jobs_config *c)
{
    c->lease_ms = (int)bh_config_int("BULKHEAD_JOBS_LEASE_MS", 30000, 200, 24 * 3600 * 1000);
    c->poll_ms = (int)bh_config_int("BULKHEAD_JOBS_POLL_MS", 50, 1, 10000);
    c->backoff.base_ms = bh_config_int("BULKHEAD_JOBS_BACKOFF_BASE_MS", 1000, 1, 3600 * 1000);
    c->backoff.max_ms =
        bh_config_int("BULKHEAD_JOBS_BACKOFF_MAX_MS", 3600 * 1000, 1, 7 * 24 * 3600 * 1000L);
    c->relay = bh_config_int("BULKHEAD_OUTBOX_RELAY", 1, 0, 1) == 1;
    c->relay_batch = (int)bh_config_int("BULKHEAD_OUTBOX_BATCH", 200, 1, 5000);
    c->relay_poll_ms = (int)bh_config_int("BULKHEAD_OUTBOX_POLL_MS", 1000, 10, 60000);
    c->retention_s = bh_config_int("BULKHEAD_OUTBOX_RETENTION_S", 86400, 0, 365 * 86400L);
}

/* ---- gauges ------------------------------------------------------------------------ */

static const char *const count_names[4] = {"bulkhead_jobs_ready", "bulkhead_jobs_in_flight",
                                           "bulkhead_jobs_delayed", "bulkhead_jobs_dead"};

/* Renders one of the four per-queue counts (arg: its index), as last read
 * by the maintenance loop; a queue never counted yet is left out. */
static void render_count(struct bh_buf *out, void *arg)
{
    int which = (int)(intptr_t)arg;

    for (int i = 0; i < g_jobs.n_queues; i++) {
        struct bh__jobs_queue *q = &g_jobs.queues[i];
        long long v;
        bool known;

        pthread_mutex_lock(&q->lock);
        known = q->counts_known;
        v = q->counts[which];
        pthread_mutex_unlock(&q->lock);
        if (known)
            bh_metrics_printf(out, "%s{queue=\"%s\"} %lld\n", count_names[which], q->name, v);
    }
}

static void register_gauges(void)
{
    static const char *const help[4] = {"Jobs waiting in each queue", "Jobs leased by a worker",
                                        "Jobs waiting for their due time (retries included)",
                                        "Jobs in the dead letters"};

    for (intptr_t i = 0; i < 4; i++)
        bh_gauge_register(count_names[i], help[i], render_count, (void *)i);
}

/* ---- routes ------------------------------------------------------------------------- */

/* Publishes this process's subscriptions to Redis so that every relay, in
 * any process, fans events out to them. */
static int register_routes(void)
{
    const char *types[BH__JOBS_MAX_HANDLERS], *consumers[BH__JOBS_MAX_HANDLERS];
    const char *queues[BH__JOBS_MAX_HANDLERS];
    int max[BH__JOBS_MAX_HANDLERS], n = 0;

    for (int i = 0; i < g_jobs.n_handlers; i++) {
        const struct bh__jobs_handler *h = &g_jobs.handlers[i];

        if (h->sub == NULL)
            continue;
        types[n] = h->sub->event_type;
        consumers[n] = h->sub->consumer;
        queues[n] = h->queue->name;
        max[n] = h->max_attempts;
        n++;
    }
    return n == 0 ? 0 : bh__queue_register_routes(n, types, consumers, queues, max);
}

int bh__jobs_routes_publish(void)
{
    return register_routes();
}

/* ---- start -------------------------------------------------------------------------- */

int bh__jobs_registry_init(const struct bh_module *const *modules, size_t n)
{
    int rc;

    if (g_jobs.ready) {
        bh_log(BH_LOG_ERROR, "platform", "jobs: bh_jobs_init called twice");
        return BH_EINVAL;
    }
    load_config(&g_jobs.cfg);
    for (size_t i = 0; i < n; i++)
        if ((rc = register_module(modules[i])) != 0)
            return rc;
    register_gauges();
    g_jobs.ready = true;
    return 0;
}

bool bh__jobs_registry_ready(void)
{
    return g_jobs.ready;
}
