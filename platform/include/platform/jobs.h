/* The runtime of the async backbone, driven by the composition root: the
 * outbox relay, the delayed-job promoter, the lease sweeper and one worker
 * pool per queue (a bulkhead per queue). See events.h for the module-facing
 * side (publish, subscribe, enqueue, inbox). */
#ifndef BH_PLATFORM_JOBS_H
#define BH_PLATFORM_JOBS_H

#include <stddef.h>

#include "platform/module.h"

/* Registers every module's subscriptions and job types. Call once, before
 * bh_workers_start() and before any bh_job_enqueue(). 0 or a bh_err. */
int bh_jobs_init(const struct bh_module *const *modules, size_t n);

/* Starts the relay, promoter, sweeper and worker pools. 0 or a bh_err. */
int bh_workers_start(void);
/* Stops taking jobs, lets in-flight ones finish for up to grace_ms, returns
 * the rest to their queues, and joins every thread. Safe when not started. */
void bh_workers_stop(int grace_ms);

/* `bulkhead jobs stats|dead|retry|purge-dead`: argv[0] is the subcommand.
 * Prints to stdout; returns a process exit status. */
int bh_jobs_cli(int argc, char **argv);

#endif
