/* The job queue in Redis, private to platform/src: every operation that
 * touches more than one key is one Lua script (the queue_<step>.lua files,
 * run with EVALSHA by bh_redis_script_as), so a job is always in exactly one
 * place and no crash between two client commands can lose or duplicate it. All calls run as the
 * Redis user "platform" (keys bh:*). See queue.c for the key layout. */
#ifndef BH__PLATFORM_SRC_QUEUE_H
#define BH__PLATFORM_SRC_QUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "jobs_internal.h"

/* A reserved job. The strings are owned; bh__queue_job_release() frees them. */
struct bh__queue_job {
    char *id;
    char *type;
    char *payload;    /* JSON text */
    char *trace_id;   /* "" when none */
    char *request_id; /* "" when none */
    long long token;  /* this reservation's lease token */
    int attempts;     /* runs started, this one included */
    int max_attempts;
    int64_t ready_ms;   /* when it became runnable (Redis clock) */
    int64_t started_ms; /* when it was reserved (Redis clock) */
};

void bh__queue_job_release(struct bh__queue_job *job);

/* Fills keys for a queue name (the name must be valid). */
void bh__queue_keys_for(const char *queue, struct bh__queue_keys *keys);
/* [a-z0-9_]{1,40}: the names that make safe keys and environment names. */
bool bh__queue_name_valid(const char *name);

/* Enqueues one job, now (delay_ms 0) or later. A job whose id exists already
 * is left alone (returns 0 too). 0, BH_EUNAVAILABLE or BH_EINTERNAL. */
int bh__queue_enqueue(const struct bh__queue_keys *keys, const char *queue, const char *id,
                      const char *type, const char *payload, int max_attempts, int64_t delay_ms,
                      const char *trace_id, const char *request_id);

/* Publishes the routes of event subscriptions: event type -> consumer ->
 * (queue, max attempts). n entries of each array. 0 or a bh_err. */
int bh__queue_register_routes(int n, const char *const *event_types, const char *const *consumers,
                              const char *const *queues, const int *max_attempts);

/* Fans n outbox events out to every consumer routed for their type, in
 * order, as one script: either all of them are enqueued or none. The job id
 * of a delivery is "<event id>:<consumer>", so a re-sent event whose
 * delivery is still queued is not queued twice. On success *queues is a
 * NULL-terminated array of the queue names that received jobs (free with
 * bh__queue_names_free) and *jobs their number. */
int bh__queue_fan_out(int n, const char *const *event_ids, const char *const *event_types,
                      const char *const *payloads, char ***queues, long long *jobs);
void bh__queue_names_free(char **names);

/* Takes the oldest ready job and leases it for lease_ms. 0 with *job filled,
 * 1 when the queue is empty, or a negative bh_err. */
int bh__queue_reserve(const struct bh__queue_keys *keys, int lease_ms, struct bh__queue_job *job);
/* Deletes a finished job. 0, 1 when the lease was lost (the job was swept
 * or released and will run again), or a negative bh_err. */
int bh__queue_ack(const struct bh__queue_keys *keys, const char *id, long long token);
/* Records a failed run: the job is retried after delay_ms, or goes to the
 * dead letters when it has used its attempts (or dead_now is set). *dead
 * tells which. 0, 1 when the lease was lost, or a negative bh_err. */
int bh__queue_fail(const struct bh__queue_keys *keys, const char *id, long long token,
                   const char *error, int64_t delay_ms, bool dead_now, bool *dead);
/* Acknowledges a finished job and leases the next ready one, in one round
 * trip. *lost tells the ack's fate (true: the lease was lost, the job will
 * run again). 0 with *next filled, 1 when the queue is empty, or a negative
 * bh_err (then the ack's fate is unknown: at worst the job runs again). */
int bh__queue_ack_reserve(const struct bh__queue_keys *keys, const char *id, long long token,
                          int lease_ms, bool *lost, struct bh__queue_job *next);
/* Acknowledges n_acks finished jobs (ids/tokens; lost[i] tells each one's
 * fate) and leases the next ready job, and when its type is in batching,
 * the jobs of that type queued right behind it, up to its batch size and
 * cap (0: lease nothing). 0 with *n_jobs jobs filled (0: the queue was empty), or a negative
 * bh_err (then the acks' fate is unknown: at worst the jobs run again; on
 * BH_ENOMEM the acks are done and the jobs come back after their lease). */
int bh__queue_take(const struct bh__queue_keys *keys, int lease_ms, int n_acks,
                   const char *const *ids, const long long *tokens, bool *lost,
                   const struct bh__queue_batching *batching, int cap, struct bh__queue_job *jobs,
                   int *n_jobs);
/* Extends a lease by lease_ms from now. 0, 1 when it was lost, or a bh_err. */
int bh__queue_renew(const struct bh__queue_keys *keys, const char *id, long long token,
                    int lease_ms);
/* Gives a leased job back to the front of its queue without counting the
 * run as an attempt (shutdown). 0, 1 when the lease was lost, or a bh_err. */
int bh__queue_release(const struct bh__queue_keys *keys, const char *id, long long token);

/* Moves delayed jobs that are due to the ready list (up to limit). */
int bh__queue_promote(const struct bh__queue_keys *keys, int limit, int *moved);
/* Returns jobs whose lease expired to the front of the ready list (or to the
 * dead letters when they have used their attempts); up to limit. */
int bh__queue_sweep(const struct bh__queue_keys *keys, int limit, int *requeued, int *dead);

/* ready, in flight, delayed, dead. */
int bh__queue_counts(const struct bh__queue_keys *keys, long long counts[4]);
/* Every queue name ever used on this Redis (NULL-terminated, sorted). */
int bh__queue_list(char ***names);

/* One dead job, for the CLI. Strings are borrowed for the callback only. */
struct bh__queue_dead {
    const char *id, *queue, *type, *last_error, *history; /* history: JSON array */
    int attempts;
    int64_t died_ms;
};
typedef void (*bh__queue_dead_fn)(const struct bh__queue_dead *d, void *arg);
/* Calls fn for each dead job of the queue, oldest death first. */
int bh__queue_dead_each(const struct bh__queue_keys *keys, const char *queue, bh__queue_dead_fn fn,
                        void *arg);
/* Puts a dead job back on its queue with a fresh set of attempts. 0, or
 * BH_ENOTFOUND when no dead job has this id. */
int bh__queue_retry_dead(const char *id);
/* Deletes every dead job of a queue; *n how many. */
int bh__queue_purge_dead(const struct bh__queue_keys *keys, long long *n);

#endif
