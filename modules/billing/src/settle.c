/* Settling charges: what the outcome of a charge does to its attempt, its
 * invoice and the subscription, whoever learns that outcome first: the
 * request that charged, the renewal run, the reconciler or the provider's
 * webhook. One place, so a plan change and a renewal settle alike, and each
 * attempt is settled exactly once (the first settler moves it out of flight;
 * a later one finds it settled and writes nothing). It never holds a
 * transaction open while the provider is called, and calls nothing in
 * service.c, renewal.c or reconcile.c (they call it). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "platform/db.h"
#include "platform/err.h"
#include "platform/log.h"

enum billing__outcome billing__outcome_of(int charge_rc, const struct billing__charge_result *res)
{
    if (charge_rc == BH_ETIMEOUT)
        return BILLING__OUTCOME_UNKNOWN;
    if (charge_rc != 0)
        return BILLING__OUTCOME_FAILED;
    return res->outcome == BILLING__CHARGE_SUCCEEDED ? BILLING__OUTCOME_PAID
                                                     : BILLING__OUTCOME_DECLINED;
}

static const char *failure_code(enum billing__outcome o, const struct billing__charge_result *res)
{
    switch (o) {
    case BILLING__OUTCOME_PAID: return "";
    case BILLING__OUTCOME_DECLINED: return billing__decline_name(res->decline);
    case BILLING__OUTCOME_FAILED: return "provider_unavailable";
    case BILLING__OUTCOME_UNKNOWN: break;
    }
    return "timeout";
}

/* ------------------------------------------------------------ plan changes */

/* Whether inv's plan change still applies to s: s is on the plan it was
 * made from (an upgrade), or canceled (a restart: from_plan_id is ""). */
static bool plan_change_applies(const struct billing__subscription *s,
                                const struct billing__invoice *inv)
{
    if (!inv->from_plan_id[0])
        return s->status == BILLING__CANCELED;
    return strcmp(s->plan_id, inv->from_plan_id) == 0 &&
           (s->status == BILLING__ACTIVE || s->status == BILLING__TRIALING);
}

/* The paid plan change takes effect: s moves to inv's plan now (a restart
 * also starts inv's period). */
static int apply_plan_change(struct bh_tx *tx, struct billing__subscription *s,
                             const struct billing__invoice *inv, const bh_uuid *actor_id,
                             time_t now, time_t *next_due)
{
    char prev_plan[33];
    enum billing__status prev_status = s->status;
    billing__set_str(prev_plan, sizeof prev_plan, s->plan_id);
    bool restart = !inv->from_plan_id[0];
    int rc = billing__transition(
        s->status, restart ? BILLING__EV_RESTART : BILLING__EV_PLAN_CHANGED, &s->status);
    if (rc != 0)
        return rc;
    billing__set_str(s->plan_id, sizeof s->plan_id, inv->plan_id);
    s->pending_plan_id[0] = '\0';
    s->cancel_at_period_end = false;
    s->dunning_attempts = 0;
    s->next_retry_at = 0;
    if (restart) {
        s->period_start = inv->period_start;
        s->period_end = inv->period_end;
        if (next_due)
            *next_due = s->period_end;
    }
    rc = billing__repo_subscription_update(tx, s, now);
    if (rc == 0)
        rc = billing__publish_subscription_changed(tx, s, prev_plan, prev_status, actor_id,
                                                   restart ? "restarted" : "upgraded");
    return rc;
}

/* ---------------------------------------------------------------- renewals */

/* A renewal (or a debt in dunning) is paid: the subscription is active. */
static int renewal_paid(struct bh_tx *tx, struct billing__subscription *s, time_t now,
                        time_t *next_due)
{
    enum billing__status prev = s->status;
    if (billing__transition(s->status, BILLING__EV_PERIOD_PAID, &s->status) != 0)
        return 0; /* canceled meanwhile: the money is on its invoice, the status stays */
    s->dunning_attempts = 0;
    s->next_retry_at = 0;
    if (next_due)
        *next_due = s->period_end;
    int rc = billing__repo_subscription_update(tx, s, now);
    if (rc == 0 && prev != s->status)
        rc = billing__publish_subscription_changed(tx, s, s->plan_id, prev, NULL,
                                                   prev == BILLING__PAST_DUE ? "payment_recovered"
                                                                             : "renewed");
    return rc;
}

/* A renewal charge failed: the next dunning retry, or, when the retries ran
 * out, the subscription ends and the debt is written off (the invoice is
 * voided); entitlements fall back to the free plan's. */
static int renewal_failed(struct bh_tx *tx, struct billing__subscription *s,
                          const struct billing__invoice *inv, enum billing__decline_reason reason,
                          time_t now, time_t *next_due)
{
    enum billing__status prev = s->status;
    s->dunning_attempts++;
    time_t retry = billing__dunning_retry_at(inv->created_at, s->dunning_attempts);
    if (billing__transition(s->status,
                            retry == 0 ? BILLING__EV_DUNNING_EXHAUSTED : BILLING__EV_PAYMENT_FAILED,
                            &s->status) != 0)
        return 0; /* canceled meanwhile: nothing is owed any more */
    int rc = 0;
    s->next_retry_at = retry;
    if (retry == 0) {
        s->cancel_at_period_end = false;
        s->pending_plan_id[0] = '\0';
        rc = billing__repo_invoice_set_status(tx, &inv->id, "void", now);
    }
    if (next_due)
        *next_due = retry;
    if (rc == 0)
        rc = billing__repo_subscription_update(tx, s, now);
    if (rc == 0)
        rc = billing__publish_invoice_payment_failed(tx, inv, inv->attempt_count, s->next_retry_at,
                                                     reason, NULL);
    if (rc == 0 && prev != s->status)
        rc = billing__publish_subscription_changed(
            tx, s, s->plan_id, prev, NULL,
            s->status == BILLING__CANCELED ? "dunning_exhausted" : "payment_failed");
    return rc;
}

/* ----------------------------------------------------------------- settling */

int billing__settle_paid(struct bh_tx *tx, struct billing__subscription *s,
                         const struct billing__invoice *inv, const bh_uuid *actor_id,
                         time_t *next_due)
{
    time_t now = billing__now();
    int rc = billing__repo_invoice_set_status(tx, &inv->id, "paid", now);
    if (rc == 0)
        rc = billing__publish_invoice_paid(tx, inv, actor_id);
    if (rc != 0)
        return rc;
    if (strcmp(inv->reason, "plan_change") == 0)
        return plan_change_applies(s, inv)
                   ? apply_plan_change(tx, s, inv, actor_id, now, next_due)
                   : 0; /* superseded meanwhile: paid, nothing more to apply */
    return renewal_paid(tx, s, now, next_due);
}

int billing__settle(struct bh_tx *tx, struct billing__subscription *s,
                    const struct billing__invoice *inv, const bh_uuid *attempt_id,
                    enum billing__outcome outcome, const struct billing__charge_result *res,
                    const char *settled_by, const bh_uuid *actor_id, time_t *next_due)
{
    if (next_due)
        *next_due = 0;
    int rc = billing__repo_attempt_finish(tx, attempt_id, outcome, failure_code(outcome, res),
                                          outcome == BILLING__OUTCOME_FAILED ? "" : res->ref,
                                          settled_by);
    if (rc != 0 || outcome == BILLING__OUTCOME_UNKNOWN)
        return rc; /* 1: settled by someone else first */
    if (strcmp(inv->status, "open") != 0)
        return 0; /* voided or paid meanwhile: the attempt is on record, nothing moves back */
    bool plan_change = strcmp(inv->reason, "plan_change") == 0;
    time_t now = billing__now();
    switch (outcome) {
    case BILLING__OUTCOME_PAID: return billing__settle_paid(tx, s, inv, actor_id, next_due);
    case BILLING__OUTCOME_DECLINED:
        /* A declined plan change leaves its invoice open (a later payment
         * still applies it) and the plan as it was. */
        return plan_change ? billing__publish_invoice_payment_failed(tx, inv, inv->attempt_count, 0,
                                                                     res->decline, actor_id)
                           : renewal_failed(tx, s, inv, res->decline, now, next_due);
    case BILLING__OUTCOME_FAILED:
        /* Nothing was taken: a plan change is undone (its invoice voided),
         * a renewal goes to dunning like a decline. */
        return plan_change ? billing__repo_invoice_set_status(tx, &inv->id, "void", now)
                           : renewal_failed(tx, s, inv, BILLING__DECLINE_NONE, now, next_due);
    case BILLING__OUTCOME_UNKNOWN: break;
    }
    return 0;
}

/* ---------------------------------------------------------------- charging */

/* Re-reads the subscription after someone else settled the attempt. */
static int reread(const bh_uuid *org_id, struct billing__subscription *s)
{
    struct bh_tx *tx = NULL;
    int rc = bh_tx_begin(&tx);
    if (rc == 0)
        rc = billing__repo_subscription_get(tx, org_id, false, s);
    bh_tx_rollback(tx);
    return rc;
}

int billing__collect(struct bh_tx *tx, struct billing__invoice *inv,
                     const struct billing__card *card, const bh_uuid *actor_id,
                     struct billing__collection *out)
{
    memset(out, 0, sizeof *out);
    out->attempt_id = bh_uuid_v7();
    int rc =
        billing__repo_attempt_begin(tx, &out->attempt_id, &inv->id, &inv->org_id, inv->total_cents);
    if (rc == 0)
        rc = billing__repo_invoice_count_attempt(tx, &inv->id);
    if (rc != 0) {
        bh_tx_rollback(tx);
        return rc;
    }
    inv->attempt_count++;
    /* The invoice and the pending attempt are on record before any money
     * moves; no transaction stays open while the provider is called. */
    rc = bh_tx_commit(tx);
    if (rc != 0)
        return rc;

    /* No card is a declined charge like any other: dunning gives the
     * customer time to add one. The attempt's id is the idempotency key. */
    int charge_rc = 0;
    if (card) {
        charge_rc = billing__payments_charge(card->ref, inv->total_cents, inv->currency,
                                             out->attempt_id.str, &out->res);
    } else {
        out->res.outcome = BILLING__CHARGE_DECLINED;
        out->res.decline = BILLING__DECLINE_GENERIC;
    }
    out->outcome = billing__outcome_of(charge_rc, &out->res);

    struct bh_tx *settle_tx = NULL;
    rc = bh_tx_begin(&settle_tx);
    if (rc == 0)
        rc = billing__repo_subscription_get(settle_tx, &inv->org_id, true, &out->sub);
    if (rc == 0)
        rc = billing__settle(settle_tx, &out->sub, inv, &out->attempt_id, out->outcome, &out->res,
                             "charge", actor_id, &out->next_due);
    if (rc == 0)
        rc = bh_tx_commit(settle_tx);
    else
        bh_tx_rollback(settle_tx);
    if (rc == 1) /* a webhook settled it first: that is the outcome */
        return reread(&inv->org_id, &out->sub);
    /* Unknown, or known but not recorded (the database failed after the
     * charge): the reconciler finds out and settles it. */
    if (out->outcome == BILLING__OUTCOME_UNKNOWN || rc != 0)
        billing__schedule_reconcile(&out->attempt_id, 0);
    static const char *const said[] = {[BILLING__OUTCOME_PAID] = "paid",
                                       [BILLING__OUTCOME_DECLINED] = "declined",
                                       [BILLING__OUTCOME_FAILED] = "provider failed",
                                       [BILLING__OUTCOME_UNKNOWN] = "outcome unknown"};
    if (rc == 0)
        bh_log_info("org %s invoice %" PRId64 " (%s): %s", inv->org_id.str, inv->number,
                    inv->reason, said[out->outcome]);
    return rc;
}
