/* A probe of the async backbone for the jobs tests and bench/jobs: a small
 * program with one module descriptor ("probe") whose subscription has a
 * countable effect: a row in platform.jobs_probe_effect, written after
 * bh_inbox_seen() on the handler's transaction (which runs as "platform",
 * so its inbox is platform.inbox). It is never linked into bulkhead.
 *
 * Environment: PROBE_RUN (required, [a-z0-9]{1,16}) names the run: events
 * "probe.<run>", consumer "probe.<run>", queue "probe_<run>", so tests that
 * share a database and a Redis never see each other's jobs. The handler
 * sleeps PROBE_SLEEP_MS before its transaction and PROBE_SLEEP_AFTER_MS
 * after the commit, fails while the file PROBE_FAIL_FILE exists, and its
 * subscription allows PROBE_MAX_ATTEMPTS attempts (default 8).
 * PROBE_BATCH=N (2..64) makes the consumer a coalesced one (handle_batch,
 * batch_max N): one transaction per batch, bh_inbox_seen_batch(), and a
 * row in platform.jobs_probe_batch per batch run. An event published with
 * "poison" (the PROBE_POISON-th of a `publish`, 1-based) fails always, in
 * a batch and alone.
 *
 *   jobs_probe setup                    create the effect tables (idempotent)
 *   jobs_probe publish N [PER_TX] [AGGREGATES] [THREADS]
 *   jobs_probe work                     relay + workers until SIGTERM/SIGINT
 *   jobs_probe count                    "effects=E distinct=D skips=S" for the run
 *   jobs_probe order                    events handled out of order per aggregate
 *   jobs_probe backlog                  unsent outbox rows of the run
 *   jobs_probe outbox                   outbox rows of the run, sent or not
 *   jobs_probe batches                  "batches=B largest=L" batch handler runs
 *   jobs_probe resend                   marks the run's events unsent (a re-fan-out)
 *   jobs_probe enqueue-noop N           N no-op jobs on the run's queue
 *   jobs_probe jobs ARGS...             the `bulkhead jobs` CLI
 *   jobs_probe bench-queue N            no-op jobs: enqueue N, then drain them
 *   jobs_probe bench-relay N            outbox relay throughput (N events)
 *   jobs_probe bench-latency SECONDS RATE   commit -> handler latency under load */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "platform/config.h"
#include "platform/db.h"
#include "platform/err.h"
#include "platform/events.h"
#include "platform/jobs.h"
#include "platform/log.h"
#include "platform/module.h"
#include "platform/redis.h"

enum { RUN_MAX = 16, MAX_THREADS = 32, MAX_AGGREGATES = 4096 };

static const char SQL_LOCK_SETUP[] = "SELECT pg_advisory_xact_lock(74716)";
static const char SQL_CREATE_EFFECT[] =
    "CREATE TABLE IF NOT EXISTS platform.jobs_probe_effect ("
    "  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  run text NOT NULL, event_id uuid NOT NULL, aggregate text NOT NULL, n int NOT NULL,"
    "  handled_at timestamptz NOT NULL DEFAULT clock_timestamp())";
static const char SQL_INDEX_EFFECT[] =
    "CREATE INDEX IF NOT EXISTS jobs_probe_effect_run ON platform.jobs_probe_effect (run)";
static const char SQL_CREATE_SKIP[] =
    "CREATE TABLE IF NOT EXISTS platform.jobs_probe_skip ("
    "  run text NOT NULL, event_id uuid NOT NULL,"
    "  skipped_at timestamptz NOT NULL DEFAULT clock_timestamp())";
static const char SQL_INSERT_EFFECT[] =
    "INSERT INTO platform.jobs_probe_effect (run, event_id, aggregate, n) VALUES ($1, $2, $3, $4)";
static const char SQL_INSERT_SKIP[] =
    "INSERT INTO platform.jobs_probe_skip (run, event_id) VALUES ($1, $2)";
static const char SQL_COUNT[] =
    "SELECT (SELECT count(*) FROM platform.jobs_probe_effect WHERE run = $1),"
    "       (SELECT count(DISTINCT event_id) FROM platform.jobs_probe_effect WHERE run = $1),"
    "       (SELECT count(*) FROM platform.jobs_probe_skip WHERE run = $1)";
static const char SQL_ORDER[] =
    "SELECT count(*) FROM ("
    "  SELECT n, lag(n) OVER (PARTITION BY aggregate ORDER BY seq) AS prev"
    "    FROM platform.jobs_probe_effect WHERE run = $1) x"
    " WHERE prev IS NOT NULL AND n <= prev";
static const char SQL_BACKLOG[] =
    "SELECT count(*) FROM platform.outbox WHERE type = $1 AND sent_at IS NULL";
static const char SQL_OUTBOX_ROWS[] = "SELECT count(*) FROM platform.outbox WHERE type = $1";
static const char SQL_CREATE_BATCH[] =
    "CREATE TABLE IF NOT EXISTS platform.jobs_probe_batch (run text NOT NULL, size int NOT NULL)";
static const char SQL_INSERT_BATCH[] =
    "INSERT INTO platform.jobs_probe_batch (run, size) VALUES ($1, $2)";
static const char SQL_BATCHES[] =
    "SELECT count(*), coalesce(max(size), 0) FROM platform.jobs_probe_batch WHERE run = $1";
static const char SQL_RESEND[] =
    "UPDATE platform.outbox SET sent_at = NULL WHERE type = $1 AND sent_at IS NOT NULL";

static char g_run[RUN_MAX + 1];
static char g_type[64], g_consumer[64], g_queue[64], g_noop[64];
static int g_sleep_ms, g_sleep_after_ms, g_batch;
static long g_poison;
static const char *g_fail_file;
static atomic_long g_noop_done;
static bool g_noop_log; /* `work` logs each no-op job */

/* Latencies recorded by the handler in bench-latency (microseconds). */
static int64_t *g_lat;
static atomic_long g_lat_n;
static long g_lat_cap;

static int64_t wall_us(void)
{
    struct timespec t;

    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static double mono_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
    struct timespec t = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&t, &t) != 0 && errno == EINTR)
        ;
}

/* ---- the probe module ------------------------------------------------------------ */

static bool poisoned(const struct bh_event *ev)
{
    return json_is_true(json_object_get(ev->data, "poison"));
}

static int probe_handle(const struct bh_event *ev)
{
    const char *agg = json_string_value(json_object_get(ev->data, "agg"));
    json_int_t n = json_integer_value(json_object_get(ev->data, "n"));
    json_int_t t = json_integer_value(json_object_get(ev->data, "t"));
    struct bh_tx *tx = NULL;
    char nbuf[24];
    int rc;

    if (g_lat != NULL && t > 0) {
        long i = atomic_fetch_add(&g_lat_n, 1);

        if (i < g_lat_cap)
            g_lat[i] = wall_us() - t;
    }
    if (g_sleep_ms > 0)
        sleep_ms(g_sleep_ms);
    if (poisoned(ev) || (g_fail_file != NULL && access(g_fail_file, F_OK) == 0)) {
        bh_log(BH_LOG_INFO, "probe", "failing event %s on purpose (attempt %d)", ev->id,
               ev->attempt);
        return BH_EUNAVAILABLE;
    }
    if ((rc = bh_tx_begin_as("platform", &tx)) != 0)
        return rc;
    rc = bh_inbox_seen(tx, g_consumer, ev->id);
    if (rc == 1) {
        bh_log(BH_LOG_INFO, "probe", "event %s already handled: skipped", ev->id);
        rc = bh_tx_query(tx, NULL, SQL_INSERT_SKIP, 2, (const char *const[]){g_run, ev->id});
        if (rc == 0)
            rc = bh_tx_commit(tx);
        else
            bh_tx_rollback(tx);
        return rc;
    }
    snprintf(nbuf, sizeof nbuf, "%lld", (long long)n);
    if (rc == 0)
        rc = bh_tx_query(tx, NULL, SQL_INSERT_EFFECT, 4,
                         (const char *const[]){g_run, ev->id, agg ? agg : "", nbuf});
    if (rc != 0) {
        bh_tx_rollback(tx);
        return rc;
    }
    if ((rc = bh_tx_commit(tx)) != 0)
        return rc;
    bh_log(BH_LOG_INFO, "probe", "handled event %s (attempt %d)", ev->id, ev->attempt);
    if (g_sleep_after_ms > 0)
        sleep_ms(g_sleep_after_ms);
    return 0;
}

/* The coalesced variant of probe_handle: one transaction for the batch. */
static int probe_handle_batch(const struct bh_event *evs, int n)
{
    const char *ids[BH_EVENT_BATCH_MAX];
    bool fresh[BH_EVENT_BATCH_MAX];
    struct bh_tx *tx = NULL;
    char size[16];
    int rc;

    bh_log(BH_LOG_INFO, "probe", "handling a batch of %d events", n);
    if (g_sleep_ms > 0)
        sleep_ms(g_sleep_ms);
    for (int i = 0; i < n; i++) {
        if (poisoned(&evs[i]) || (g_fail_file != NULL && access(g_fail_file, F_OK) == 0))
            return BH_EUNAVAILABLE;
        ids[i] = evs[i].id;
    }
    if ((rc = bh_tx_begin_as("platform", &tx)) != 0)
        return rc;
    rc = bh_inbox_seen_batch(tx, g_consumer, n, ids, fresh);
    rc = rc < 0 ? rc : 0;
    for (int i = 0; i < n && rc == 0; i++) {
        const char *agg = json_string_value(json_object_get(evs[i].data, "agg"));
        char nbuf[24];

        snprintf(nbuf, sizeof nbuf, "%lld",
                 (long long)json_integer_value(json_object_get(evs[i].data, "n")));
        if (fresh[i])
            rc = bh_tx_query(tx, NULL, SQL_INSERT_EFFECT, 4,
                             (const char *const[]){g_run, evs[i].id, agg ? agg : "", nbuf});
        else
            rc = bh_tx_query(tx, NULL, SQL_INSERT_SKIP, 2, (const char *const[]){g_run, evs[i].id});
    }
    snprintf(size, sizeof size, "%d", n);
    if (rc == 0)
        rc = bh_tx_query(tx, NULL, SQL_INSERT_BATCH, 2, (const char *const[]){g_run, size});
    if (rc != 0) {
        bh_tx_rollback(tx);
        return rc;
    }
    if ((rc = bh_tx_commit(tx)) != 0)
        return rc;
    if (g_sleep_after_ms > 0)
        sleep_ms(g_sleep_after_ms);
    return 0;
}

static int probe_noop(const struct bh_job *job)
{
    atomic_fetch_add(&g_noop_done, 1);
    if (g_noop_log)
        bh_log(BH_LOG_INFO, "probe", "no-op job %s ran", job->id);
    return 0;
}

static struct bh_subscription g_subs[1];
static struct bh_job_type g_job_types[1];
static const char *g_emits[2];
static struct bh_module g_probe_module = {.name = "probe"};

static int configure(void)
{
    const char *run = getenv("PROBE_RUN");
    size_t n = run ? strlen(run) : 0;

    if (n == 0 || n > RUN_MAX || strspn(run, "abcdefghijklmnopqrstuvwxyz0123456789") != n) {
        fprintf(stderr, "jobs_probe: PROBE_RUN must be [a-z0-9]{1,16}\n");
        return -1;
    }
    memcpy(g_run, run, n + 1);
    snprintf(g_type, sizeof g_type, "probe.%s", run);
    snprintf(g_consumer, sizeof g_consumer, "probe.%s", run);
    snprintf(g_queue, sizeof g_queue, "probe_%s", run);
    snprintf(g_noop, sizeof g_noop, "probe.noop.%s", run);
    g_sleep_ms = (int)bh_config_int("PROBE_SLEEP_MS", 0, 0, 600000);
    g_sleep_after_ms = (int)bh_config_int("PROBE_SLEEP_AFTER_MS", 0, 0, 600000);
    g_fail_file = getenv("PROBE_FAIL_FILE");
    g_batch = (int)bh_config_int("PROBE_BATCH", 0, 0, BH_EVENT_BATCH_MAX);
    g_poison = (long)bh_config_int("PROBE_POISON", 0, 0, 1000000000);
    g_subs[0] = (struct bh_subscription){
        .event_type = g_type,
        .consumer = g_consumer,
        .queue = g_queue,
        .handle = probe_handle,
        .max_attempts = (int)bh_config_int("PROBE_MAX_ATTEMPTS", 8, 1, 100),
        .handle_batch = g_batch > 1 ? probe_handle_batch : NULL,
        .batch_max = g_batch > 1 ? g_batch : 0,
    };
    g_job_types[0] = (struct bh_job_type){.name = g_noop, .queue = g_queue, .run = probe_noop};
    g_emits[0] = g_type;
    g_probe_module.subscriptions = g_subs;
    g_probe_module.n_subscriptions = 1;
    g_probe_module.job_types = g_job_types;
    g_probe_module.n_job_types = 1;
    g_probe_module.emits = g_emits;
    return 0;
}

/* ---- commands ------------------------------------------------------------------ */

static int query_one(const char *sql, const char *param, long long *out)
{
    PGresult *res = NULL;
    int rc = bh_db_query_as("platform", &res, sql, param ? 1 : 0, (const char *const[]){param});

    if (rc == 0)
        *out = strtoll(bh_pg_str(res, 0, 0), NULL, 10);
    PQclear(res);
    return rc;
}

static int cmd_setup(void)
{
    struct bh_tx *tx;
    int rc = bh_tx_begin_as("platform", &tx);

    if (rc != 0)
        return rc;
    const char *const steps[] = {SQL_LOCK_SETUP, SQL_CREATE_EFFECT, SQL_INDEX_EFFECT,
                                 SQL_CREATE_SKIP, SQL_CREATE_BATCH};
    for (size_t i = 0; rc == 0 && i < sizeof steps / sizeof steps[0]; i++)
        rc = bh_tx_query(tx, NULL, steps[i], 0, NULL);
    if (rc != 0) {
        bh_tx_rollback(tx);
        return rc;
    }
    return bh_tx_commit(tx);
}

struct publisher {
    pthread_t thread;
    int index, threads;
    long events; /* to publish */
    int per_tx;
    int aggregates;
    double rate; /* events/s for this thread; 0 = as fast as possible */
    int rc;
    long published;
};

/* Publishes p->events events over the aggregates this thread owns
 * (a % threads == index), numbering each aggregate's events 1, 2, ... so
 * the order of their effects can be checked. */
static void *publisher_main(void *arg)
{
    struct publisher *p = arg;
    int own[MAX_AGGREGATES], n_own = 0, next = 0;
    static _Thread_local long counts[MAX_AGGREGATES];
    double start = mono_s();
    char request_id[64];

    for (int a = p->index; a < p->aggregates; a += p->threads)
        own[n_own++] = a;
    snprintf(request_id, sizeof request_id, "probe-%s", g_run);
    bh_log_context_set(request_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    while (p->published < p->events && p->rc == 0) {
        struct bh_tx *tx;
        int k;

        if (p->rate > 0) {
            double due = start + (double)p->published / p->rate;
            double now = mono_s();

            if (due > now)
                sleep_ms((int)((due - now) * 1000) + 1);
        }
        if ((p->rc = bh_tx_begin_as("platform", &tx)) != 0)
            break;
        for (k = 0; k < p->per_tx && p->published + k < p->events && p->rc == 0; k++) {
            int a = own[next++ % n_own];
            char agg[16];
            json_t *data;

            snprintf(agg, sizeof agg, "a%d", a);
            data = json_pack("{s:s, s:s, s:I, s:I}", "run", g_run, "agg", agg, "n",
                             (json_int_t)++counts[a], "t", (json_int_t)wall_us());
            if (data != NULL && p->index == 0 && g_poison > 0 && p->published + k + 1 == g_poison)
                json_object_set_new(data, "poison", json_true());
            p->rc = data ? bh_outbox_publish(tx, g_type, NULL, NULL, agg, data) : BH_ENOMEM;
            json_decref(data);
        }
        if (p->rc != 0) {
            bh_tx_rollback(tx);
            break;
        }
        if ((p->rc = bh_tx_commit(tx)) == 0)
            p->published += k;
    }
    bh_log_context_set(NULL, NULL);
    return NULL;
}

/* Publishes n events from `threads` threads; rate 0 = as fast as possible. */
static int publish(long n, int per_tx, int aggregates, int threads, double rate)
{
    struct publisher p[MAX_THREADS];
    int rc = 0;

    if (threads < 1 || threads > MAX_THREADS || aggregates < threads ||
        aggregates > MAX_AGGREGATES || per_tx < 1)
        return BH_EINVAL;
    for (int i = 0; i < threads; i++) {
        p[i] = (struct publisher){.index = i,
                                  .threads = threads,
                                  .events = n / threads + (i < n % threads ? 1 : 0),
                                  .per_tx = per_tx,
                                  .aggregates = aggregates,
                                  .rate = rate / threads};
        if (pthread_create(&p[i].thread, NULL, publisher_main, &p[i]) != 0)
            return BH_ENOMEM;
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(p[i].thread, NULL);
        if (p[i].rc != 0)
            rc = p[i].rc;
    }
    return rc;
}

static int wait_for_signal(void)
{
    sigset_t set;
    int sig = 0;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigwait(&set, &sig);
    return sig;
}

static int cmd_work(void)
{
    int rc;

    g_noop_log = true;
    if ((rc = bh_workers_start()) != 0)
        return rc;
    fprintf(stderr, "jobs_probe: working\n");
    wait_for_signal();
    bh_workers_stop((int)bh_config_int("BULKHEAD_SHUTDOWN_GRACE_MS", 10000, 0, 600000));
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/* bench-queue: enqueue n no-op jobs (4 threads), then start the workers and
 * time how long they take to drain them. Prints one line of figures. */
static void *enqueue_main(void *arg)
{
    long *n = arg, done = 0;
    json_t *payload = json_object();
    int rc = 0;

    while (done < *n && (rc = bh_job_enqueue(g_noop, payload, 0)) == 0)
        done++;
    if (rc != 0)
        fprintf(stderr, "jobs_probe: enqueue failed after %ld job(s): %s\n", done, bh_err_name(rc));
    *n = done;
    json_decref(payload);
    return NULL;
}

static int cmd_bench_queue(long n)
{
    enum { ENQUEUERS = 4 };
    pthread_t t[ENQUEUERS];
    long per[ENQUEUERS];
    double t0, t1, t2;
    int rc;

    t0 = mono_s();
    for (int i = 0; i < ENQUEUERS; i++) {
        per[i] = n / ENQUEUERS + (i < n % ENQUEUERS ? 1 : 0);
        pthread_create(&t[i], NULL, enqueue_main, &per[i]);
    }
    for (int i = 0; i < ENQUEUERS; i++)
        pthread_join(t[i], NULL);
    t1 = mono_s();
    for (int i = 0; i < ENQUEUERS; i++)
        if (per[i] != n / ENQUEUERS + (i < n % ENQUEUERS ? 1 : 0))
            return BH_EUNAVAILABLE;
    if ((rc = bh_workers_start()) != 0)
        return rc;
    while (atomic_load(&g_noop_done) < n && mono_s() - t1 < 120)
        sleep_ms(1);
    t2 = mono_s();
    bh_workers_stop(1000);
    printf("jobs=%ld enqueue_s=%.3f enqueue_per_s=%.0f drain_s=%.3f drain_per_s=%.0f "
           "done=%ld\n",
           n, t1 - t0, (double)n / (t1 - t0), t2 - t1, (double)n / (t2 - t1),
           (long)atomic_load(&g_noop_done));
    return atomic_load(&g_noop_done) == n ? 0 : BH_ETIMEOUT;
}

/* bench-relay: publish n events with no relay running, then start one
 * (workers off: BULKHEAD_QUEUE_PROBE_<RUN>_CONCURRENCY=0) and time how long
 * it takes to move them all to the queue. */
static int cmd_bench_relay(long n)
{
    long long left = n;
    double t0, t1;
    int rc = publish(n, 10, 64, 4, 0);

    if (rc != 0)
        return rc;
    t0 = mono_s();
    if ((rc = bh_workers_start()) != 0)
        return rc;
    while (left > 0 && mono_s() - t0 < 120) {
        sleep_ms(5);
        if (query_one(SQL_BACKLOG, g_type, &left) != 0)
            break;
    }
    t1 = mono_s();
    bh_workers_stop(1000);
    printf("events=%ld relay_s=%.3f relay_per_s=%.0f left=%lld\n", n, t1 - t0,
           (double)n / (t1 - t0), left);
    return left == 0 ? 0 : BH_ETIMEOUT;
}

/* bench-latency: relay and workers run while 4 threads publish `rate`
 * events/s for `seconds`; the handler records commit -> start latency. */
static int cmd_bench_latency(int seconds, double rate)
{
    long n = (long)(seconds * rate), got;
    double t0;
    int rc;

    g_lat_cap = n;
    if ((g_lat = calloc((size_t)n, sizeof *g_lat)) == NULL)
        return BH_ENOMEM;
    if ((rc = bh_workers_start()) != 0)
        goto out;
    t0 = mono_s();
    rc = publish(n, 1, 64, 4, rate);
    while (rc == 0 && atomic_load(&g_lat_n) < n && mono_s() - t0 < seconds + 60)
        sleep_ms(10);
    bh_workers_stop(2000);
    got = atomic_load(&g_lat_n) < n ? atomic_load(&g_lat_n) : n;
    if (got > 0) {
        qsort(g_lat, (size_t)got, sizeof *g_lat, cmp_i64);
        printf("events=%ld rate=%.0f p50_ms=%.2f p95_ms=%.2f p99_ms=%.2f max_ms=%.2f\n", got, rate,
               (double)g_lat[got / 2] / 1000, (double)g_lat[got * 95 / 100] / 1000,
               (double)g_lat[got * 99 / 100] / 1000, (double)g_lat[got - 1] / 1000);
    }
    rc = rc == 0 && got == n ? 0 : (rc ? rc : BH_ETIMEOUT);
out:
    free(g_lat);
    g_lat = NULL;
    return rc;
}

static int run_command(int argc, char **argv)
{
    const char *cmd = argv[1];
    long long v[3];
    int rc;

    if (strcmp(cmd, "setup") == 0)
        return cmd_setup();
    if (strcmp(cmd, "publish") == 0 && argc >= 3)
        return publish(atol(argv[2]), argc > 3 ? atoi(argv[3]) : 1, argc > 4 ? atoi(argv[4]) : 16,
                       argc > 5 ? atoi(argv[5]) : 1, 0);
    if (strcmp(cmd, "work") == 0)
        return cmd_work();
    if (strcmp(cmd, "count") == 0) {
        PGresult *res = NULL;

        rc = bh_db_query_as("platform", &res, SQL_COUNT, 1, (const char *const[]){g_run});
        if (rc == 0)
            for (int i = 0; i < 3; i++)
                v[i] = strtoll(bh_pg_str(res, 0, i), NULL, 10);
        PQclear(res);
        if (rc == 0)
            printf("effects=%lld distinct=%lld skips=%lld\n", v[0], v[1], v[2]);
        return rc;
    }
    if (strcmp(cmd, "order") == 0 || strcmp(cmd, "backlog") == 0) {
        bool order = cmd[0] == 'o';

        rc = query_one(order ? SQL_ORDER : SQL_BACKLOG, order ? g_run : g_type, &v[0]);
        if (rc == 0)
            printf("%lld\n", v[0]);
        return rc;
    }
    if (strcmp(cmd, "outbox") == 0) {
        rc = query_one(SQL_OUTBOX_ROWS, g_type, &v[0]);
        if (rc == 0)
            printf("%lld\n", v[0]);
        return rc;
    }
    if (strcmp(cmd, "batches") == 0) {
        PGresult *res = NULL;

        rc = bh_db_query_as("platform", &res, SQL_BATCHES, 1, (const char *const[]){g_run});
        if (rc == 0)
            printf("batches=%s largest=%s\n", bh_pg_str(res, 0, 0), bh_pg_str(res, 0, 1));
        PQclear(res);
        return rc;
    }
    if (strcmp(cmd, "resend") == 0) {
        PGresult *res = NULL;

        rc = bh_db_query_as("platform", &res, SQL_RESEND, 1, (const char *const[]){g_type});
        if (rc == 0)
            printf("%s\n", PQcmdTuples(res));
        PQclear(res);
        return rc;
    }
    if (strcmp(cmd, "enqueue-noop") == 0 && argc == 3) {
        json_t *payload = json_object();
        long n = atol(argv[2]);

        rc = payload ? 0 : BH_ENOMEM;
        for (long i = 0; i < n && rc == 0; i++)
            rc = bh_job_enqueue(g_noop, payload, 0);
        json_decref(payload);
        return rc;
    }
    if (strcmp(cmd, "jobs") == 0)
        return bh_jobs_cli(argc - 2, argv + 2) == 0 ? 0 : BH_EINVAL;
    if (strcmp(cmd, "bench-queue") == 0 && argc == 3)
        return cmd_bench_queue(atol(argv[2]));
    if (strcmp(cmd, "bench-relay") == 0 && argc == 3)
        return cmd_bench_relay(atol(argv[2]));
    if (strcmp(cmd, "bench-latency") == 0 && argc == 4)
        return cmd_bench_latency(atoi(argv[2]), atof(argv[3]));
    return BH_EINVAL;
}

int main(int argc, char **argv)
{
    const struct bh_module *const modules[] = {&g_probe_module};
    struct bh_config cfg;
    sigset_t set;
    int rc;

    if (argc < 2) {
        fprintf(stderr, "usage: jobs_probe setup|publish|work|count|order|backlog|jobs|bench-*\n");
        return 2;
    }
    /* As in bulkhead: signals are taken by sigwait; threads inherit the mask. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (configure() != 0 || bh_config_load(&cfg) != 0)
        return 2;
    rc = bh_db_init(cfg.database_url, NULL, 0, cfg.db_pool_size, cfg.db_pool_wait_ms,
                    cfg.db_statement_timeout_ms);
    if (rc == 0)
        rc = bh_redis_init(cfg.redis_url, cfg.redis_password, NULL, 0, cfg.redis_timeout_ms);
    if (rc == 0)
        rc = bh_jobs_init(modules, 1);
    if (rc == 0)
        rc = run_command(argc, argv);
    bh_redis_shutdown();
    bh_db_shutdown();
    if (rc != 0)
        fprintf(stderr, "jobs_probe %s: %s\n", argv[1], bh_err_name(rc));
    return rc == 0 ? 0 : 1;
}
