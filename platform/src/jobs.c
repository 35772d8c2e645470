/* The async backbone's front door (platform/jobs.h, bh_job_enqueue from
 * events.h): builds the registry (jobs_registry.c) and starts and stops the
 * relay (relay.c) and the worker pools (worker.c). It must never run a
 * handler itself (workers do) nor touch Redis keys but through queue.c. */
#include "platform/jobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs_internal.h"
#include "platform/err.h"
#include "platform/log.h"
#include "platform/uuid.h"
#include "queue.h"

static bool g_started;

/* ---- public API ---------------------------------------------------------------------- */

int bh_jobs_init(const struct bh_module *const *modules, size_t n)
{
    int rc = bh__jobs_registry_init(modules, n);

    if (rc != 0)
        return rc;
    /* Best effort: with Redis down the relay publishes the routes before it
     * relays anything (relay.c). */
    if (bh__jobs_routes_publish() != 0)
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

    if (!bh__jobs_registry_ready() || g_started)
        return BH_EINVAL;
    rc = bh__worker_pools_start();
    if (rc == 0 && bh__jobs_cfg()->relay && (rc = bh__relay_start()) != 0)
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
