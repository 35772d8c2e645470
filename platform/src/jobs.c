/* The async backbone's front door (platform/jobs.h, bh_job_enqueue from
 * events.h): the registry of queues and handlers built from the module
 * descriptors, the configuration, start/stop of the relay and worker pools,
 * and the `bulkhead jobs` CLI. It must never run a handler itself (workers
 * do, worker.c) nor touch Redis keys but through queue.c. */
#include "platform/jobs.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobs_internal.h"
#include "platform/config.h"
#include "platform/err.h"
#include "platform/log.h"
#include "platform/uuid.h"
#include "queue.h"

enum { DEFAULT_MAX_ATTEMPTS = 8, DEFAULT_CONCURRENCY = 2, MAX_CONCURRENCY = 64 };

/* Written by bh_jobs_init() before any other thread starts, read-only after. */
static struct {
    bool ready;
    struct bh__jobs_config cfg;
    struct bh__jobs_queue queues[BH__JOBS_MAX_QUEUES];
    int n_queues;
    struct bh__jobs_handler handlers[BH__JOBS_MAX_HANDLERS];
    int n_handlers;
} g_jobs;

static bool g_started;

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

struct bh__jobs_queue *bh__jobs_queue_find(const char *name)
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
    struct bh__jobs_queue *q = bh__jobs_queue_find(name);

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
    struct bh__jobs_queue *q = bh__jobs_queue_find(name);
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
        bh_histogram_get("bh_job_wait_seconds",
                         "Time from a job being ready (enqueued or due) to its start", labels);
    q->duration_hist = bh_histogram_get("bh_job_duration_seconds", "Time a handler ran", labels);
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
    for (int i = 0; i < 3; i++) {
        snprintf(labels, sizeof labels, "queue=\"%s\",type=\"%s\",outcome=\"%s\"", q->name, type,
                 outcome_names[i]);
        h->outcome[i] = bh_counter_get("bh_jobs_total", "Jobs run, by outcome", labels);
    }
    return 0;
}

static int register_module(const struct bh_module *m)
{
    char type[BH__JOB_TYPE_MAX];
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < m->n_subscriptions; i++) {
        const struct bh_subscription *s = &m->subscriptions[i];

        if (!name_valid(s->consumer, BH__JOB_TYPE_MAX - 7) || !name_valid(s->event_type, 100) ||
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

static const char *const count_names[4] = {"bh_jobs_ready", "bh_jobs_in_flight", "bh_jobs_delayed",
                                           "bh_jobs_dead"};

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

/* ---- public API ---------------------------------------------------------------------- */

int bh_jobs_init(const struct bh_module *const *modules, size_t n)
{
    int rc;

    if (g_jobs.ready) {
        bh_log(BH_LOG_ERROR, "platform", "jobs: bh_jobs_init called twice");
        return BH_EINVAL;
    }
    load_config(&g_jobs.cfg);
    if ((rc = bh__queue_init()) != 0)
        return rc;
    for (size_t i = 0; i < n; i++)
        if ((rc = register_module(modules[i])) != 0)
            return rc;
    register_gauges();
    g_jobs.ready = true;
    /* Best effort: with Redis down the scripts are loaded on first use, and
     * the relay publishes the routes before it relays anything (relay.c). */
    if (bh__queue_load_scripts() != 0 || register_routes() != 0)
        bh_log(BH_LOG_WARN, "platform",
               "jobs: could not publish event routes yet (Redis unavailable); will retry");
    return 0;
}

int bh_job_enqueue(const char *type, const json_t *payload, int64_t delay_ms)
{
    const struct bh__jobs_handler *h = type ? bh__jobs_handler_find(type) : NULL;
    const char *request_id, *trace_id;
    char *text;
    bh_uuid id;
    int rc;

    if (h == NULL || h->job == NULL || payload == NULL || delay_ms < 0) {
        bh_log(BH_LOG_ERROR, "platform", "jobs: cannot enqueue a job of unknown type %s",
               type ? type : "(null)");
        return BH_EINVAL;
    }
    text = json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text == NULL)
        return BH_ENOMEM;
    id = bh_uuid_v7();
    bh_log_context_get(&request_id, &trace_id);
    rc = bh__queue_enqueue(&h->queue->keys, h->queue->name, id.str, h->type, text, h->max_attempts,
                           delay_ms, trace_id, request_id);
    free(text);
    if (rc == 0 && delay_ms == 0)
        bh__jobs_queue_wake(h->queue->name);
    return rc == 0 || rc == BH_EUNAVAILABLE ? rc : BH_EUNAVAILABLE;
}

int bh_workers_start(void)
{
    int rc;

    if (!g_jobs.ready || g_started)
        return BH_EINVAL;
    rc = bh__worker_pools_start();
    if (rc == 0 && g_jobs.cfg.relay && (rc = bh__relay_start()) != 0)
        bh__worker_pools_stop(0);
    g_started = rc == 0;
    return rc;
}

void bh_workers_stop(int grace_ms)
{
    if (!g_started)
        return;
    /* The relay first: it only moves events, and nothing it does is lost by
     * stopping (unsent rows wait in the outbox for the next relay). */
    bh__relay_stop();
    bh__worker_pools_stop(grace_ms);
    g_started = false;
}

/* ---- the CLI --------------------------------------------------------------------------- */

static int cli_usage(void)
{
    fprintf(stderr, "usage: bulkhead jobs stats\n"
                    "       bulkhead jobs dead [--queue Q] [--json]\n"
                    "       bulkhead jobs retry ID | --all [--queue Q]\n"
                    "       bulkhead jobs purge-dead [--queue Q]\n");
    return 2;
}

static int cli_fail(const char *what, int rc)
{
    fprintf(stderr, "bulkhead jobs: %s: %s\n", what,
            rc == BH_EUNAVAILABLE ? "Redis is unavailable" : bh_err_name(rc));
    return 1;
}

static void format_ms(int64_t ms, char out[32])
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&s, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int cli_stats(void)
{
    char **names;
    long long unsent;
    double oldest;
    int rc = bh__queue_list(&names);

    if (rc != 0)
        return cli_fail("listing queues", rc);
    printf("%-24s %10s %10s %10s %10s\n", "queue", "ready", "in_flight", "delayed", "dead");
    for (char **p = names; *p != NULL; p++) {
        struct bh__queue_keys keys;
        long long c[4];

        if (!bh__queue_name_valid(*p))
            continue;
        bh__queue_keys_for(*p, &keys);
        if ((rc = bh__queue_counts(&keys, c)) != 0)
            break;
        printf("%-24s %10lld %10lld %10lld %10lld\n", *p, c[0], c[1], c[2], c[3]);
    }
    bh__queue_names_free(names);
    if (rc != 0)
        return cli_fail("counting jobs", rc);
    if (bh__relay_backlog(&unsent, &oldest) == 0)
        printf("outbox: %lld unsent event(s), oldest %.1f s\n", unsent, oldest);
    else
        printf("outbox: unknown (Postgres unavailable)\n");
    return 0;
}

static void print_dead_text(const struct bh__queue_dead *d, void *arg)
{
    char died[32];

    (void)arg;
    format_ms(d->died_ms, died);
    printf("%-56s %-16s %-32s %8d  %s  %s\n", d->id, d->queue, d->type, d->attempts, died,
           d->last_error);
}

static void print_dead_json(const struct bh__queue_dead *d, void *arg)
{
    json_t *history = json_loads(d->history, 0, NULL);
    json_t *line =
        json_pack("{s:s, s:s, s:s, s:i, s:s, s:I, s:o}", "id", d->id, "queue", d->queue, "type",
                  d->type, "attempts", d->attempts, "last_error", d->last_error, "died_at_ms",
                  (json_int_t)d->died_ms, "history", history ? history : json_array());
    char *text = line ? json_dumps(line, JSON_COMPACT) : NULL;

    (void)arg;
    if (text != NULL)
        printf("%s\n", text);
    free(text);
    json_decref(line);
}

/* Runs fn for every known queue, or only for `only` when given. */
static int for_each_queue(const char *only, int (*fn)(const char *queue, void *arg), void *arg)
{
    char **names;
    int rc;

    if (only != NULL)
        return bh__queue_name_valid(only) ? fn(only, arg) : BH_EINVAL;
    if ((rc = bh__queue_list(&names)) != 0)
        return rc;
    for (char **p = names; rc == 0 && *p != NULL; p++)
        if (bh__queue_name_valid(*p))
            rc = fn(*p, arg);
    bh__queue_names_free(names);
    return rc;
}

static int dead_of_queue(const char *queue, void *arg)
{
    struct bh__queue_keys keys;

    bh__queue_keys_for(queue, &keys);
    return bh__queue_dead_each(&keys, queue, *(bool *)arg ? print_dead_json : print_dead_text,
                               NULL);
}

struct retry_all {
    char **ids;
    size_t n, cap;
    bool oom;
};

static void collect_dead(const struct bh__queue_dead *d, void *arg)
{
    struct retry_all *r = arg;

    if (r->oom)
        return;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        char **ids = realloc(r->ids, cap * sizeof *ids);

        if (ids == NULL) {
            r->oom = true;
            return;
        }
        r->ids = ids;
        r->cap = cap;
    }
    if ((r->ids[r->n] = strdup(d->id)) == NULL)
        r->oom = true;
    else
        r->n++;
}

static int collect_queue(const char *queue, void *arg)
{
    struct bh__queue_keys keys;

    bh__queue_keys_for(queue, &keys);
    return bh__queue_dead_each(&keys, queue, collect_dead, arg);
}

static int cli_retry_all(const char *queue)
{
    struct retry_all all = {0};
    long long n = 0;
    int rc = for_each_queue(queue, collect_queue, &all);

    if (rc == 0 && all.oom)
        rc = BH_ENOMEM;
    for (size_t i = 0; rc == 0 && i < all.n; i++) {
        int one = bh__queue_retry_dead(all.ids[i]);

        if (one == 0)
            n++;
        else if (one != BH_ENOTFOUND) /* retried by someone else meanwhile: fine */
            rc = one;
    }
    for (size_t i = 0; i < all.n; i++)
        free(all.ids[i]);
    free(all.ids);
    if (rc != 0)
        return cli_fail("retrying dead jobs", rc);
    printf("retried %lld job(s)\n", n);
    return 0;
}

static int purge_queue(const char *queue, void *arg)
{
    struct bh__queue_keys keys;
    long long n;
    int rc;

    bh__queue_keys_for(queue, &keys);
    rc = bh__queue_purge_dead(&keys, &n);
    *(long long *)arg += n;
    return rc;
}

int bh_jobs_cli(int argc, char **argv)
{
    const char *queue = NULL, *id = NULL;
    bool json = false, all = false;
    int rc;

    if (argc < 1)
        return cli_usage();
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--queue") == 0 && i + 1 < argc)
            queue = argv[++i];
        else if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--all") == 0)
            all = true;
        else if (argv[i][0] != '-' && id == NULL)
            id = argv[i];
        else
            return cli_usage();
    }
    if (strcmp(argv[0], "stats") == 0 && argc == 1)
        return cli_stats();
    if (strcmp(argv[0], "dead") == 0 && id == NULL && !all) {
        if (!json)
            printf("%-56s %-16s %-32s %8s  %-20s  %s\n", "id", "queue", "type", "attempts",
                   "died_at", "last_error");
        rc = for_each_queue(queue, dead_of_queue, &json);
        return rc == 0 ? 0 : cli_fail("listing dead jobs", rc);
    }
    if (strcmp(argv[0], "retry") == 0 && all && id == NULL)
        return cli_retry_all(queue);
    if (strcmp(argv[0], "retry") == 0 && id != NULL && !all && queue == NULL) {
        rc = bh__queue_retry_dead(id);
        if (rc == BH_ENOTFOUND) {
            fprintf(stderr, "bulkhead jobs: no dead job %s\n", id);
            return 1;
        }
        if (rc != 0)
            return cli_fail("retrying", rc);
        printf("retried 1 job(s)\n");
        return 0;
    }
    if (strcmp(argv[0], "purge-dead") == 0 && id == NULL && !all) {
        long long n = 0;

        rc = for_each_queue(queue, purge_queue, &n);
        if (rc != 0)
            return cli_fail("purging dead jobs", rc);
        printf("purged %lld dead job(s)\n", n);
        return 0;
    }
    return cli_usage();
}
