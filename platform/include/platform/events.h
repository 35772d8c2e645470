/* Domain events and jobs: the transactional outbox, event subscriptions,
 * the Redis job queue and idempotent consumers.
 *
 * Publishing: bh_outbox_publish() inserts the event envelope into
 * platform.outbox on the caller's transaction, so the event exists if and
 * only if the change commits. A relay moves committed events to the queues of
 * their subscribers (at least once, in order per aggregate).
 *
 * Consuming: a module lists bh_subscription entries in its descriptor; the
 * handler runs on a worker, inside which it should open its transaction,
 * call bh_inbox_seen() first, and skip the work when the event was seen. */
#ifndef BH_PLATFORM_EVENTS_H
#define BH_PLATFORM_EVENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct bh_tx;

/* A delivered event, borrowed for the duration of the handler call. */
struct bh_event {
    const char *id;          /* UUID of the event (the inbox key) */
    const char *type;        /* "task.assigned" */
    const char *occurred_at; /* RFC 3339 */
    const char *org_id;      /* may be "" */
    const char *actor_id;    /* may be "" */
    const json_t *data;      /* the payload object */
    const char *trace_id;    /* of the request that caused it */
    const char *request_id;
    int attempt; /* 1 on first delivery */
};

/* 0: handled (the job is acknowledged). Negative bh_err: retry later with
 * backoff; after the job type's max attempts it goes to the dead letters. */
typedef int (*bh_event_fn)(const struct bh_event *ev);

/* A coalesced consumer: handles n (2..batch_max) deliveries of its event
 * type at once, in queue order, typically in one transaction that records
 * all of them with bh_inbox_seen_batch(). 0: all handled (all acknowledged
 * together). Any other return: nothing of the batch may have taken effect
 * (roll back); each event is then run alone through handle, so a poison
 * event takes its retries and dead letters alone. */
typedef int (*bh_event_batch_fn)(const struct bh_event *evs, int n);

enum { BH_EVENT_BATCH_MAX = 64 };

struct bh_subscription {
    const char *event_type; /* exact type string, e.g. "user.signed_up" */
    const char *consumer;   /* stable consumer name, the inbox key, e.g. "notifications.welcome" */
    const char *queue; /* queue the deliveries go to (a worker bulkhead), e.g. "notifications" */
    bh_event_fn handle;
    int max_attempts; /* 0 = default (8) */
    /* Optional (NULL: every delivery runs alone through handle). When set,
     * a worker that takes a delivery of this consumer also takes the ones
     * of the same consumer queued right behind it (never skipping a job of
     * another type), up to batch_max (0 = BH_EVENT_BATCH_MAX, the most). */
    bh_event_batch_fn handle_batch;
    int batch_max;
};

/* A job (not an event): run by a worker of job type's queue. */
struct bh_job {
    const char *id;
    const char *type;
    const json_t *payload;
    const char *trace_id;
    int attempt; /* 1 on first run */
};

typedef int (*bh_job_fn)(const struct bh_job *job);

struct bh_job_type {
    const char *name;  /* "notifications.send_email" */
    const char *queue; /* "email" */
    bh_job_fn run;
    int max_attempts; /* 0 = default (8) */
};

/* Publishes an event on the caller's transaction (runs as the platform's
 * outbox grant, whatever module the transaction is in). aggregate_id orders
 * events (per task, per org…; may be NULL = org_id). data is borrowed.
 * The trace and request id of the current thread's work are recorded.
 * The row is written with the transaction's next statement or its COMMIT
 * (bh_tx_defer), so a failure to write it shows there and rolls back all. */
int bh_outbox_publish(struct bh_tx *tx, const char *type, const char *org_id, const char *actor_id,
                      const char *aggregate_id, const json_t *data);
/* bh_outbox_publish() for data built for this one event: takes data (its
 * reference is dropped whatever the outcome), and a NULL data, as a failed
 * json_pack() returns, is BH_ENOMEM with nothing published. */
int bh_outbox_publish_take(struct bh_tx *tx, const char *type, const char *org_id,
                           const char *actor_id, const char *aggregate_id, json_t *data);

/* Records event_id as handled by consumer in the current module's inbox
 * table (<module>.inbox) on tx. Returns 0 when newly recorded, 1 when it was
 * already there (skip the effect), or a negative bh_err. */
int bh_inbox_seen(struct bh_tx *tx, const char *consumer, const char *event_id);
/* bh_inbox_seen() for n events in one statement: fresh[i] is set when
 * event_ids[i] was newly recorded (count its effect), cleared when it was
 * there already. Returns how many were new, or a negative bh_err. */
int bh_inbox_seen_batch(struct bh_tx *tx, const char *consumer, int n, const char *const *event_ids,
                        bool *fresh);

/* Enqueues a job of a registered type now (delay_ms 0) or later. payload is
 * borrowed. Returns 0 or BH_EUNAVAILABLE (Redis down) / BH_EINVAL. */
int bh_job_enqueue(const char *type, const json_t *payload, int64_t delay_ms);

#endif
