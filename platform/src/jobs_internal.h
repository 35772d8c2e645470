/* Shared state of the async backbone, private to platform/src: the
 * configuration and the registry of queues and handlers (jobs_registry.c,
 * built by bh_jobs_init() from the module descriptors), and the entry
 * points of the worker pools (worker.c) and the relay (relay.c). The files
 * call each other one way: jobs.c and jobs_cli.c start and read the others;
 * relay.c and worker.c read the registry; nothing calls back into jobs.c. */
#ifndef BH__PLATFORM_SRC_JOBS_INTERNAL_H
#define BH__PLATFORM_SRC_JOBS_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "backoff.h"
#include "platform/events.h"
#include "platform/metrics.h"
#include "platform/module.h"

enum {
    BH__JOBS_MAX_QUEUES = 32,
    BH__JOBS_MAX_HANDLERS = 128,
    BH__QUEUE_NAME_MAX = 41,       /* [a-z0-9_]{1,40} */
    BH__QUEUE_KEY_MAX = 64,        /* "bh:q:<name>:delayed" */
    BH__JOB_TYPE_MAX = 136,        /* "event:" + a consumer name of up to 128 */
    BH__JOB_ID_MAX = 176,          /* "<event uuid>:<consumer>" */
    BH__JOBS_MAX_BATCH_TYPES = 16, /* coalesced consumers per queue */
};

/* Knobs, read from the environment once by bh__jobs_registry_init(). */
struct bh__jobs_config {
    int lease_ms;               /* BULKHEAD_JOBS_LEASE_MS: visibility timeout of a reserved job */
    int poll_ms;                /* BULKHEAD_JOBS_POLL_MS: longest idle wait between reserves */
    struct bh__backoff backoff; /* BULKHEAD_JOBS_BACKOFF_BASE_MS / _MAX_MS */
    bool relay;                 /* BULKHEAD_OUTBOX_RELAY: 0 runs no relay in this process */
    int relay_batch;            /* BULKHEAD_OUTBOX_BATCH: events claimed per transaction */
    int relay_poll_ms;          /* BULKHEAD_OUTBOX_POLL_MS: look even without a NOTIFY */
    long retention_s;           /* BULKHEAD_OUTBOX_RETENTION_S: keep sent rows this long */
};

/* The Redis keys of one queue (see queue.c for what each holds). */
struct bh__queue_keys {
    char ready[BH__QUEUE_KEY_MAX];   /* LIST of job ids, LPUSH in, RPOP out */
    char leased[BH__QUEUE_KEY_MAX];  /* ZSET id -> lease deadline (ms) */
    char delayed[BH__QUEUE_KEY_MAX]; /* ZSET id -> due time (ms) */
    char dead[BH__QUEUE_KEY_MAX];    /* ZSET id -> time of death (ms) */
};

/* The coalesced consumers of a queue: job type ("event:<consumer>") ->
 * batch size (2..BH_EVENT_BATCH_MAX, as text), as queue_take.lua reads them. */
struct bh__queue_batching {
    int n;
    const char *types[BH__JOBS_MAX_BATCH_TYPES];
    char sizes[BH__JOBS_MAX_BATCH_TYPES][8];
};

/* A queue this process knows (from a subscription or a job type). */
struct bh__jobs_queue {
    char name[BH__QUEUE_NAME_MAX];
    struct bh__queue_keys keys;
    int concurrency;                    /* BULKHEAD_QUEUE_<NAME>_CONCURRENCY, default 2 */
    struct bh__queue_batching batching; /* n 0: every job runs alone */
    struct bh_histogram *wait_hist;     /* ready -> started */
    struct bh_histogram *duration_hist; /* handler run time */

    /* Idle workers sleep on wake; wake_gen counts wake-ups so that a signal
     * sent between "the queue looked empty" and "sleep" is not lost. */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    unsigned long wake_gen;

    /* Figures for the gauges, refreshed by the maintenance loop. */
    bool counts_known;
    long long counts[4]; /* ready, in flight, delayed, dead */
};

/* What a job type string resolves to: an event consumer or a job type. */
struct bh__jobs_handler {
    char type[BH__JOB_TYPE_MAX];       /* "event:<consumer>" or the job type's name */
    const struct bh_subscription *sub; /* exactly one of sub and job is set */
    const struct bh_job_type *job;
    struct bh__jobs_queue *queue;
    int max_attempts;
    int batch_max;              /* a coalesced consumer's batch size; 1 for every other handler */
    struct bh_counter *batches; /* a coalesced consumer's batches run (NULL otherwise) */
    struct bh_counter *outcome[3]; /* ok, retry, dead */
};

enum bh__job_outcome { BH__JOB_OK, BH__JOB_RETRY, BH__JOB_DEAD };

/* ---- jobs_registry.c ---- */
/* Reads the configuration and registers the queues and handlers of the
 * modules. Once, before any other thread starts. 0 or a bh_err. */
int bh__jobs_registry_init(const struct bh_module *const *modules, size_t n);
bool bh__jobs_registry_ready(void);

const struct bh__jobs_config *bh__jobs_cfg(void);
/* Waits in the backbone are budgets: a condition variable on the monotonic
 * clock, to wait until a bh_deadline_ms() (platform/clock.h). */
int bh__jobs_cond_init(pthread_cond_t *c);

int bh__jobs_queue_count(void);
struct bh__jobs_queue *bh__jobs_queue_at(int i);
/* Wakes this process's idle workers of the named queue (no-op if unknown). */
void bh__jobs_queue_wake(const char *name);

const struct bh__jobs_handler *bh__jobs_handler_find(const char *type);

/* Publishes this process's event subscriptions as routes in Redis (so any
 * relay, in any process, delivers to them). 0 or a bh_err. */
int bh__jobs_routes_publish(void);

/* worker.c: one pool of threads per queue, plus the maintenance thread
 * (promote delayed jobs, sweep expired leases, renew leases, counts). */
int bh__worker_pools_start(void);
void bh__worker_pools_stop(int grace_ms);

/* relay.c: the outbox relay thread. */
int bh__relay_start(void);
void bh__relay_stop(void);
/* The relay's view of the outbox for the CLI: unsent rows and the age of
 * the oldest one. 0 or a bh_err. */
int bh__relay_backlog(long long *unsent, double *oldest_s);

#endif
