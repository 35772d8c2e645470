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

#include "internal.h"
#include "platform/db.h"
#include "platform/err.h"
#include "platform/events.h"
#include "platform/config.h"
#include "platform/log.h"
#include "platform/redis.h"

static const char RENEW_JOB[] = "billing.renew";
static const char SWEEP_JOB[] = "billing.sweep";

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

/* Charges inv (open, total > 0), then records what came of it and moves the
 * subscription: paid → active; failed → past_due with the next retry, or
 * canceled when the retries ran out. Takes tx (which holds the subscription
 * lock and whatever the caller wrote): the pending attempt is added to it
 * and it commits before the provider is called, so no transaction stays
 * open across the call. */
static int collect(struct bh_tx *tx, const bh_uuid *org_id, struct billing__invoice *inv,
                   time_t *next_due)
{
    struct billing__card card;
    struct billing__subscription s;
    bh_uuid attempt_id = bh_uuid_v7();
    struct billing__charge_result res;
    memset(&res, 0, sizeof res);

    bool has_card = billing__repo_payment_method_get(tx, org_id, &card) == 0;
    int rc = billing__repo_attempt_begin(tx, &attempt_id, &inv->id, org_id, inv->total_cents);
    if (rc != 0) {
        /* A charge is in flight for this organization (a plan change): undo
         * this run entirely; the job retries it later. */
        bh_tx_rollback(tx);
        return rc;
    }
    rc = bh_tx_commit(tx);
    if (rc != 0)
        return rc;

    /* No card is a failed charge like any other: dunning gives the customer
     * time to add one. */
    int charge_rc = has_card ? billing__payments_charge(card.ref, inv->total_cents, inv->currency,
                                                        inv->id.str, &res)
                             : 0;
    if (!has_card) {
        res.outcome = BILLING__CHARGE_DECLINED;
        res.decline = BILLING__DECLINE_GENERIC;
    }

    rc = bh_tx_begin(&tx);
    if (rc == 0)
        rc = billing__repo_subscription_get(tx, org_id, true, &s);
    if (rc != 0)
        goto out_rollback;
    time_t now = billing__now();
    int err = 0;
    enum billing__collected c =
        billing__record_charge(tx, inv, &attempt_id, charge_rc, &res, now, &err);
    if (err != 0) {
        rc = err;
        goto out_rollback;
    }
    char prev_status[16];
    billing__set_str(prev_status, sizeof prev_status, s.status);
    if (c == BILLING__COLLECT_PAID) {
        billing__set_str(s.status, sizeof s.status, "active");
        s.dunning_attempts = 0;
        s.next_retry_at = 0;
        rc = billing__repo_subscription_update(tx, &s, now);
        if (rc == 0)
            rc = billing__publish_invoice_paid(tx, inv, NULL);
        if (rc == 0 && strcmp(prev_status, "active") != 0)
            rc = billing__publish_subscription_changed(
                tx, &s, s.plan_id, prev_status, NULL,
                strcmp(prev_status, "past_due") == 0 ? "payment_recovered" : "renewed");
        *next_due = s.period_end;
    } else {
        s.dunning_attempts++;
        time_t retry = billing__dunning_retry_at(inv->created_at, s.dunning_attempts);
        if (retry == 0) {
            /* The retries ran out: the subscription ends and the debt is
             * written off (the invoice is voided); entitlements fall back to
             * the free plan's. */
            billing__set_str(s.status, sizeof s.status, "canceled");
            s.next_retry_at = 0;
            s.cancel_at_period_end = false;
            s.pending_plan_id[0] = '\0';
            rc = billing__repo_invoice_set_status(tx, &inv->id, "void", now);
            *next_due = 0;
        } else {
            billing__set_str(s.status, sizeof s.status, "past_due");
            s.next_retry_at = retry;
            *next_due = retry;
        }
        if (rc == 0)
            rc = billing__repo_subscription_update(tx, &s, now);
        if (rc == 0)
            rc = billing__publish_invoice_payment_failed(
                tx, inv, inv->attempt_count + 1, s.next_retry_at,
                c == BILLING__COLLECT_DECLINED ? res.decline : BILLING__DECLINE_NONE, NULL);
        if (rc == 0 && strcmp(prev_status, s.status) != 0)
            rc = billing__publish_subscription_changed(
                tx, &s, s.plan_id, prev_status, NULL,
                strcmp(s.status, "canceled") == 0 ? "dunning_exhausted" : "payment_failed");
    }
    if (rc != 0)
        goto out_rollback;
    bh_log_info("org %s invoice %" PRId64 ": %s", org_id->str, inv->number,
                c == BILLING__COLLECT_PAID ? "paid" : s.status);
    return bh_tx_commit(tx);

out_rollback:
    bh_tx_rollback(tx);
    return rc;
}

int billing__renew(const bh_uuid *org_id, time_t *next_due, bool *acted)
{
    struct billing__subscription s;
    struct billing__plan plan;
    struct billing__invoice inv;
    struct bh_tx *tx = NULL;
    *next_due = 0;
    *acted = false;

    int rc = bh_tx_begin(&tx);
    if (rc != 0)
        return rc;
    rc = billing__repo_subscription_get(tx, org_id, true, &s);
    if (rc == BH_ENOTFOUND) { /* the organization's creation rolled back */
        bh_tx_rollback(tx);
        return 0;
    }
    if (rc != 0)
        goto out_rollback;
    time_t now = billing__now();
    char prev_plan[33], prev_status[16];
    billing__set_str(prev_plan, sizeof prev_plan, s.plan_id);
    billing__set_str(prev_status, sizeof prev_status, s.status);

    if (strcmp(s.status, "canceled") == 0) {
        bh_tx_rollback(tx);
        return 0;
    }
    if (strcmp(s.status, "past_due") == 0) {
        if (s.next_retry_at == 0 || s.next_retry_at > now) {
            *next_due = s.next_retry_at;
            bh_tx_rollback(tx);
            return 0;
        }
        /* A dunning retry of the open renewal invoice. */
        rc = billing__repo_invoice_open_renewal(tx, &s.id, &inv);
        if (rc == BH_ENOTFOUND) { /* paid meanwhile (webhook): nothing owed */
            billing__set_str(s.status, sizeof s.status, "active");
            s.dunning_attempts = 0;
            s.next_retry_at = 0;
            rc = billing__repo_subscription_update(tx, &s, now);
            *next_due = s.period_end;
            *acted = true;
            if (rc != 0)
                goto out_rollback;
            return bh_tx_commit(tx);
        }
        if (rc != 0)
            goto out_rollback;
        *acted = true;
        return collect(tx, org_id, &inv, next_due);
    }
    if (s.period_end > now) {
        *next_due = s.period_end;
        bh_tx_rollback(tx);
        return 0;
    }

    /* The period is over. */
    *acted = true;
    if (s.cancel_at_period_end) {
        billing__set_str(s.status, sizeof s.status, "canceled");
        s.cancel_at_period_end = false;
        rc = billing__repo_subscription_update(tx, &s, now);
        if (rc == 0)
            rc = billing__publish_subscription_changed(tx, &s, prev_plan, prev_status, NULL,
                                                       "canceled_at_period_end");
        if (rc != 0)
            goto out_rollback;
        return bh_tx_commit(tx);
    }
    rc = billing__repo_plan(tx, s.pending_plan_id[0] ? s.pending_plan_id : s.plan_id, &plan);
    if (rc != 0)
        goto out_rollback;
    billing__set_str(s.plan_id, sizeof s.plan_id, plan.id);
    s.pending_plan_id[0] = '\0';
    s.period_start = s.period_end;
    s.period_end = billing__add_interval(s.period_start, plan.interval);
    *next_due = s.period_end;
    if (plan.price_cents == 0) {
        billing__set_str(s.status, sizeof s.status, "active");
        rc = billing__repo_subscription_update(tx, &s, now);
        if (rc == 0 && (strcmp(prev_plan, s.plan_id) != 0 || strcmp(prev_status, s.status) != 0))
            rc = billing__publish_subscription_changed(tx, &s, prev_plan, prev_status, NULL,
                                                       "downgraded");
        if (rc != 0)
            goto out_rollback;
        return bh_tx_commit(tx);
    }

    memset(&inv, 0, sizeof inv);
    inv.id = bh_uuid_v7();
    inv.org_id = s.org_id;
    inv.subscription_id = s.id;
    billing__set_str(inv.reason, sizeof inv.reason, "renewal");
    billing__set_str(inv.plan_id, sizeof inv.plan_id, plan.id);
    billing__set_str(inv.currency, sizeof inv.currency, plan.currency);
    inv.period_start = s.period_start;
    inv.period_end = s.period_end;
    inv.total_cents = plan.price_cents;
    struct billing__invoice_line *l = &inv.lines[inv.n_lines++];
    billing__set_str(l->kind, sizeof l->kind, "subscription");
    snprintf(l->description, sizeof l->description, "%s plan, one %s", plan.name, plan.interval);
    billing__set_str(l->plan_id, sizeof l->plan_id, plan.id);
    l->amount_cents = plan.price_cents;
    l->period_start = inv.period_start;
    l->period_end = inv.period_end;

    rc = billing__repo_invoice_create(tx, &inv, now);
    if (rc == 0)
        rc = billing__repo_subscription_update(tx, &s, now);
    if (rc == 0 && strcmp(prev_plan, s.plan_id) != 0)
        rc = billing__publish_subscription_changed(tx, &s, prev_plan, prev_status, NULL,
                                                   "downgraded");
    if (rc != 0)
        goto out_rollback;
    /* The new period and its invoice go on record with the pending charge. */
    return collect(tx, org_id, &inv, next_due);

out_rollback:
    bh_tx_rollback(tx);
    return rc;
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
