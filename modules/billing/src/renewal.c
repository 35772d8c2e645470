/* Renewals and dunning: at the end of each period a subscription is renewed
 * (invoiced and charged, or moved to its scheduled plan, or canceled), and a
 * failed renewal charge is retried on the dunning schedule until it is paid
 * or the subscription is canceled. Driven by delayed jobs (one per
 * subscription, re-armed by whoever did the work) with a sweep as the safety
 * net. Every run locks the subscription row and re-checks the dates, so
 * duplicate or concurrent runs on several workers have one effect. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "auth/auth.h"
#include "internal.h"
#include "platform/db.h"
#include "platform/err.h"
#include "platform/events.h"
#include "platform/config.h"
#include "platform/log.h"
#include "platform/redis.h"

static const char SWEEP_JOB[] = "billing.sweep";

/* Counts org_id's members (auth owns them; this is auth's read, not ours). */
static int count_member(const bh_uuid *user_id, enum auth_role role, void *arg)
{
    (void)user_id;
    (void)role;
    (*(int64_t *)arg)++;
    return 0;
}

/* A scheduled downgrade is applied whatever the member count (the customer
 * asked for it; a dearer plan they declined is never charged instead), but
 * it is checked again here: an organization found over the new plan's seat
 * limit keeps its members, may add none until it is under the limit, and
 * the change says so (reason "downgraded_over_seat_limit"). Member adds
 * already count against the scheduled plan, so only a race gets here. */
static const char *downgrade_reason(const struct billing__subscription *s,
                                    const struct billing__plan *plan)
{
    int64_t members = 0;
    if (plan->limit_members == BILLING__UNLIMITED ||
        auth_each_member(&s->org_id, AUTH_ROLE_MEMBER, count_member, &members) != 0 ||
        members <= plan->limit_members)
        return "downgraded";
    bh_log_warn("org %s moves to plan %s with %lld members over its limit of %lld", s->org_id.str,
                plan->id, (long long)members, (long long)plan->limit_members);
    return "downgraded_over_seat_limit";
}

/* The renewal invoice: the whole new period on the plan. */
static void build_renewal_invoice(const struct billing__subscription *s,
                                  const struct billing__plan *plan, struct billing__invoice *inv)
{
    memset(inv, 0, sizeof *inv);
    inv->id = bh_uuid_v7();
    inv->org_id = s->org_id;
    inv->subscription_id = s->id;
    billing__set_str(inv->reason, sizeof inv->reason, "renewal");
    billing__set_str(inv->plan_id, sizeof inv->plan_id, plan->id);
    billing__set_str(inv->currency, sizeof inv->currency, plan->currency);
    inv->period_start = s->period_start;
    inv->period_end = s->period_end;
    inv->total_cents = plan->price_cents;
    struct billing__invoice_line *l = &inv->lines[inv->n_lines++];
    billing__set_str(l->kind, sizeof l->kind, "subscription");
    snprintf(l->description, sizeof l->description, "%s plan, one %s", plan->name, plan->interval);
    billing__set_str(l->plan_id, sizeof l->plan_id, plan->id);
    l->amount_cents = plan->price_cents;
    l->period_start = inv->period_start;
    l->period_end = inv->period_end;
}

/* Charges inv on tx's subscription and settles it; takes tx. */
static int collect(struct bh_tx *tx, struct billing__invoice *inv, time_t *next_due)
{
    struct billing__card card;
    struct billing__collection c;
    bool has_card = billing__repo_payment_method_get(tx, &inv->org_id, &card) == 0;
    /* A charge in flight for this organization (a plan change, or one whose
     * outcome is unknown): this run is undone entirely; the job retries. */
    int rc = billing__collect(tx, inv, has_card ? &card : NULL, NULL, &c);
    if (rc == 0)
        *next_due = c.outcome == BILLING__OUTCOME_UNKNOWN ? 0 : c.next_due;
    return rc;
}

/* A past-due subscription whose dunning retry is due: retry the open
 * renewal invoice (or, paid meanwhile by a webhook, end dunning). */
static int retry_past_due(struct bh_tx *tx, struct billing__subscription *s, time_t now,
                          time_t *next_due)
{
    struct billing__invoice inv;
    int rc = billing__repo_invoice_open_renewal(tx, &s->id, &inv);
    if (rc == BH_ENOTFOUND) {
        rc = billing__transition(s->status, BILLING__EV_PERIOD_PAID, &s->status);
        s->dunning_attempts = 0;
        s->next_retry_at = 0;
        *next_due = s->period_end;
        if (rc == 0)
            rc = billing__repo_subscription_update(tx, s, now);
        if (rc != 0) {
            bh_tx_rollback(tx);
            return rc;
        }
        return bh_tx_commit(tx);
    }
    if (rc != 0) {
        bh_tx_rollback(tx);
        return rc;
    }
    return collect(tx, &inv, next_due);
}

/* The period is over: cancel, or roll it onto the next plan (the scheduled
 * downgrade, if any) and charge the new period. Takes tx. */
static int end_period(struct bh_tx *tx, struct billing__subscription *s, time_t now,
                      time_t *next_due)
{
    char prev_plan[33];
    enum billing__status prev_status = s->status;
    struct billing__plan plan;
    struct billing__invoice inv;
    billing__set_str(prev_plan, sizeof prev_plan, s->plan_id);
    const char *reason = "canceled_at_period_end";
    bool charge = false;
    int rc = 0;
    if (s->cancel_at_period_end) {
        rc = billing__transition(s->status, BILLING__EV_PERIOD_END_CANCEL, &s->status);
        s->cancel_at_period_end = false;
    } else {
        rc = billing__repo_plan(tx, s->pending_plan_id[0] ? s->pending_plan_id : s->plan_id, &plan);
        if (rc != 0) {
            bh_tx_rollback(tx);
            return rc;
        }
        reason = s->pending_plan_id[0] ? downgrade_reason(s, &plan) : NULL;
        billing__set_str(s->plan_id, sizeof s->plan_id, plan.id);
        s->pending_plan_id[0] = '\0';
        s->period_start = s->period_end;
        s->period_end = billing__add_interval(s->period_start, plan.interval);
        *next_due = s->period_end;
        if (plan.price_cents == 0)
            rc = billing__transition(s->status, BILLING__EV_PERIOD_FREE, &s->status);
        charge = rc == 0 && plan.price_cents > 0;
        if (charge) {
            build_renewal_invoice(s, &plan, &inv);
            rc = billing__repo_invoice_create(tx, &inv, now);
        }
    }
    if (rc == 0)
        rc = billing__repo_subscription_update(tx, s, now);
    if (rc == 0 && reason)
        rc = billing__publish_subscription_changed(tx, s, prev_plan, prev_status, NULL, reason);
    if (rc != 0) {
        bh_tx_rollback(tx);
        return rc;
    }
    if (!charge)
        return bh_tx_commit(tx);
    /* The new period and its invoice go on record with the pending charge. */
    return collect(tx, &inv, next_due);
}

int billing__renew(const bh_uuid *org_id, time_t *next_due, bool *acted)
{
    struct billing__subscription s;
    struct bh_tx *tx = NULL;
    *next_due = 0;
    *acted = false;

    int rc = bh_tx_begin(&tx);
    if (rc != 0)
        return rc;
    rc = billing__repo_subscription_get(tx, org_id, true, &s);
    time_t now = billing__now();
    /* Nothing to do: the organization's creation rolled back, the
     * subscription is canceled, or its date has not come. */
    time_t due = s.status == BILLING__PAST_DUE ? s.next_retry_at : s.period_end;
    if (rc == BH_ENOTFOUND ||
        (rc == 0 && (s.status == BILLING__CANCELED || due == 0 || due > now))) {
        if (rc == 0 && s.status != BILLING__CANCELED)
            *next_due = due;
        bh_tx_rollback(tx);
        return 0;
    }
    if (rc != 0) {
        bh_tx_rollback(tx);
        return rc;
    }
    *acted = true;
    return s.status == BILLING__PAST_DUE ? retry_past_due(tx, &s, now, next_due)
                                         : end_period(tx, &s, now, next_due);
}

int billing__sweep(int max, int *n)
{
    enum { BATCH = 100 };
    bh_uuid orgs[BATCH];
    struct bh_tx *tx = NULL;
    int found = 0;
    *n = 0;
    int rc = bh_tx_begin(&tx);
    if (rc != 0)
        return rc;
    rc = billing__repo_subscriptions_due(tx, billing__now(), max < BATCH ? max : BATCH, orgs,
                                         &found);
    bh_tx_rollback(tx);
    if (rc != 0)
        return rc;
    for (int i = 0; i < found; i++) {
        time_t next = 0;
        bool acted = false;
        int r = billing__renew(&orgs[i], &next, &acted);
        if (r != 0)
            bh_log_warn("renewal of org %s failed: %s", orgs[i].str, bh_err_name(r));
        else if (acted)
            billing__schedule_renewal(&orgs[i], next);
        (*n)++;
    }
    int reconciled = 0;
    if (billing__reconcile_due(max, &reconciled) == 0 && reconciled > 0)
        bh_log_info("looked again at %d charge(s) of unknown outcome", reconciled);
    int purged = 0;
    if (billing__repo_idem_purge(billing__now(), &purged) == 0 && purged > 0)
        bh_log_info("purged %d expired idempotency keys", purged);
    return 0;
}

/* The delayed job: {"org_id": "...", "due_at": <epoch>} */
int billing__run_renewal_job(const struct bh_job *job)
{
    const char *org = NULL;
    json_int_t due_at = 0;
    bh_uuid org_id;
    if (json_unpack((json_t *)job->payload, "{s:s, s:I}", "org_id", &org, "due_at", &due_at) != 0 ||
        !bh_uuid_parse(org, &org_id)) {
        bh_log_warn("renewal job %s has a malformed payload: dropped", job->id);
        return 0;
    }
    time_t next = 0;
    bool acted = false;
    int rc = billing__renew(&org_id, &next, &acted);
    if (rc != 0)
        return rc; /* retried by the queue with backoff */
    /* Whoever acted re-arms; a wake-up that came early for the same due time
     * re-arms itself; any other wake-up is a duplicate and ends here. */
    if (acted || (next != 0 && next == (time_t)due_at))
        billing__schedule_renewal(&org_id, next);
    return 0;
}

/* ------------------------------------------------------- the periodic sweep */

/* Every process arms a sweep chain at start; each run first takes
 * `billing:sweep:ran` for (almost) one interval with SET NX, and a run that
 * finds it taken ends its chain. However many processes start or restart,
 * the chains collapse to one sweep per interval across the deployment. */
static long sweep_interval_s(void)
{
    return bh_config_int("BULKHEAD_BILLING_SWEEP_INTERVAL_S", 900, 10, 86400);
}

static void enqueue_sweep(void)
{
    json_t *payload = json_object();
    int rc = payload ? bh_job_enqueue(SWEEP_JOB, payload, (int64_t)sweep_interval_s() * 1000)
                     : BH_ENOMEM;
    json_decref(payload);
    if (rc != 0)
        bh_log_warn("could not schedule the next billing sweep: %s", bh_err_name(rc));
}

void billing__start_sweeps(void)
{
    enqueue_sweep();
}

int billing__run_sweep_job(const struct bh_job *job)
{
    /* A process on a simulated clock would renew everybody's subscriptions
     * on its fake date: it leaves the sweep to the others (tests use
     * POST /_billing/sweep for their own organizations). */
    if (billing__clock_simulated()) {
        enqueue_sweep();
        return 0;
    }
    redisReply *r = NULL;
    long long hold_ms = (long long)sweep_interval_s() * 1000 - 1000;
    int rc = bh_redis(&r, "SET billing:sweep:ran %s NX PX %lld", job->id, hold_ms);
    bool won = rc == 0 && r && r->type == REDIS_REPLY_STATUS;
    if (r)
        freeReplyObject(r);
    if (rc != 0)
        return rc; /* Redis is down: the queue retries with backoff */
    if (!won)
        return 0; /* another chain swept within the interval: this one ends */
    int n = 0;
    rc = billing__sweep(500, &n);
    if (rc != 0)
        bh_log_warn("billing sweep failed: %s", bh_err_name(rc));
    else if (n > 0)
        bh_log_info("billing sweep renewed %d subscription(s)", n);
    enqueue_sweep();
    return 0;
}
