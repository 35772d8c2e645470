/* Putting billing's later work on the job queue: a subscription's next
 * renewal run and the reconciliation of a charge whose outcome is unknown.
 * Enqueueing only (the runners live beside the work they do), so every file
 * that needs to schedule can call this one without calling back. Best
 * effort: the periodic sweep finds whatever a lost job would have done. */
#include "internal.h"
#include "platform/config.h"
#include "platform/err.h"
#include "platform/events.h"
#include "platform/log.h"

static const char RENEW_JOB[] = "billing.renew";
static const char RECONCILE_JOB[] = "billing.reconcile";

/* The job carries its due time: a run that finds the date not yet reached
 * re-arms itself for it (billing__run_renewal_job). */
void billing__schedule_renewal(const bh_uuid *org_id, time_t at)
{
    if (at <= 0)
        return;
    time_t now = billing__now();
    int64_t delay_ms = at > now ? (int64_t)(at - now) * 1000 : 0;
    json_t *payload = json_pack("{s:s, s:I}", "org_id", org_id->str, "due_at", (json_int_t)at);
    int rc = payload ? bh_job_enqueue(RENEW_JOB, payload, delay_ms) : BH_ENOMEM;
    json_decref(payload);
    if (rc != 0) /* the sweep will find it */
        bh_log_warn("could not schedule the renewal of org %s: %s", org_id->str, bh_err_name(rc));
}

long billing__reconcile_delay_ms(void)
{
    return bh_config_int("BULKHEAD_BILLING_RECONCILE_DELAY_MS", 30000, 100, 3600000);
}

/* Each try waits twice as long as the one before, at most an hour. */
void billing__schedule_reconcile(const bh_uuid *attempt_id, int tries)
{
    int64_t delay_ms = billing__reconcile_delay_ms();
    for (int i = 0; i < tries && delay_ms < 3600000; i++)
        delay_ms *= 2;
    if (delay_ms > 3600000)
        delay_ms = 3600000;
    json_t *payload = json_pack("{s:s, s:i}", "attempt_id", attempt_id->str, "tries", tries);
    int rc = payload ? bh_job_enqueue(RECONCILE_JOB, payload, delay_ms) : BH_ENOMEM;
    json_decref(payload);
    if (rc != 0) /* the sweep reconciles it */
        bh_log_warn("could not schedule the reconciliation of attempt %s: %s", attempt_id->str,
                    bh_err_name(rc));
}
