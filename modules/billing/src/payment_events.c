/* What a provider's payment notifications (webhooks, already verified and
 * translated by the adapter) do to invoices and subscriptions. Deliveries
 * come at least once and in any order: each event id takes effect once (the
 * webhook_events ledger, in the same transaction as the effect), and state
 * only moves forward: a paid invoice never goes back to open, and a failure
 * older than the subscription's last status change does not move it. */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "platform/db.h"
#include "platform/err.h"
#include "platform/log.h"

/* The provider tells us what came of a charge of ours whose outcome we do
 * not know yet (it timed out, or its answer was not recorded): the event
 * settles that attempt, exactly as the reconciler would have. */
static int settle_in_flight(struct bh_tx *tx, const struct billing__payment_event *ev,
                            struct billing__invoice *inv, struct billing__subscription *s)
{
    struct billing__attempt attempt;
    int rc = billing__repo_attempt_in_flight(tx, &inv->id, &attempt);
    if (rc != 0)
        return rc; /* BH_ENOTFOUND: none in flight */
    struct billing__charge_result res;
    memset(&res, 0, sizeof res);
    bool paid = ev->kind == BILLING__PAYMENT_EVENT_SUCCEEDED;
    res.outcome = paid ? BILLING__CHARGE_SUCCEEDED : BILLING__CHARGE_DECLINED;
    res.decline = paid ? BILLING__DECLINE_NONE : ev->decline;
    time_t next_due = 0;
    rc = billing__settle(tx, s, inv, &attempt.id,
                         paid ? BILLING__OUTCOME_PAID : BILLING__OUTCOME_DECLINED, &res, "webhook",
                         NULL, &next_due);
    if (rc == 0)
        billing__schedule_renewal(&s->org_id, next_due); /* a restart's period */
    return rc == 1 ? 0 : rc; /* 1: settled already (it is locked: cannot happen) */
}

static int on_succeeded(struct bh_tx *tx, struct billing__invoice *inv,
                        struct billing__subscription *s)
{
    if (strcmp(inv->status, "open") != 0)
        return 0; /* paid already, or void: nothing moves back or twice */
    int rc = 0;
    if (inv->total_cents > 0)
        rc = billing__repo_attempt_record(tx, &inv->id, &inv->org_id, inv->total_cents,
                                          BILLING__OUTCOME_PAID, NULL);
    if (rc == 0)
        rc = billing__repo_invoice_count_attempt(tx, &inv->id);
    if (rc == 0)
        inv->attempt_count++;
    /* Only a debt in dunning ends this way; a renewal invoice paid while
     * the subscription is current changes nothing but the invoice. */
    bool applies = strcmp(inv->reason, "plan_change") == 0 || s->status == BILLING__PAST_DUE;
    if (rc == 0 && applies) {
        time_t next_due = 0;
        rc = billing__settle_paid(tx, s, inv, NULL, &next_due);
        if (rc == 0) /* the renewal job runs after this commits: it locks the row */
            billing__schedule_renewal(&s->org_id, next_due);
        return rc;
    }
    if (rc == 0)
        rc = billing__repo_invoice_set_status(tx, &inv->id, "paid", billing__now());
    if (rc == 0)
        rc = billing__publish_invoice_paid(tx, inv, NULL);
    return rc;
}

static int on_failed(struct bh_tx *tx, const struct billing__payment_event *ev,
                     struct billing__invoice *inv, struct billing__subscription *s, time_t now)
{
    if (strcmp(inv->status, "open") != 0)
        return 0; /* a late failure for an invoice since paid or voided */
    int rc = 0;
    if (inv->total_cents > 0)
        rc = billing__repo_attempt_record(tx, &inv->id, &inv->org_id, inv->total_cents,
                                          BILLING__OUTCOME_DECLINED,
                                          billing__decline_name(ev->decline));
    if (rc == 0)
        rc = billing__repo_invoice_count_attempt(tx, &inv->id);
    if (rc != 0)
        return rc;
    enum billing__status prev_status = s->status;
    bool moves = strcmp(inv->reason, "renewal") == 0 &&
                 (s->status == BILLING__ACTIVE || s->status == BILLING__TRIALING) &&
                 ev->occurred_at >= s->status_changed_at;
    if (moves) {
        rc = billing__transition(s->status, BILLING__EV_PAYMENT_FAILED, &s->status);
        if (s->dunning_attempts < 1)
            s->dunning_attempts = 1;
        s->next_retry_at = billing__dunning_retry_at(inv->created_at, s->dunning_attempts);
        if (rc == 0)
            rc = billing__repo_subscription_update(tx, s, now);
        if (rc == 0)
            rc = billing__publish_subscription_changed(tx, s, s->plan_id, prev_status, NULL,
                                                       "payment_failed");
    }
    if (rc == 0)
        rc = billing__publish_invoice_payment_failed(tx, inv, inv->attempt_count + 1,
                                                     s->next_retry_at, ev->decline, NULL);
    return rc;
}

/* Applies a payment event to its invoice (locked, with its subscription). */
static int apply(struct bh_tx *tx, const struct billing__payment_event *ev,
                 struct billing__invoice *inv, struct billing__subscription *s)
{
    int rc = settle_in_flight(tx, ev, inv, s);
    if (rc != BH_ENOTFOUND)
        return rc;
    return ev->kind == BILLING__PAYMENT_EVENT_SUCCEEDED ? on_succeeded(tx, inv, s)
                                                        : on_failed(tx, ev, inv, s, billing__now());
}

int billing__apply_payment_event(const struct billing__payment_event *ev, bool *duplicate)
{
    struct billing__invoice inv;
    struct billing__subscription s;
    struct bh_tx *tx = NULL;
    *duplicate = false;

    int rc = bh_tx_begin(&tx);
    if (rc != 0)
        return rc;
    rc = billing__repo_webhook_seen(tx, billing__provider()->name, ev);
    if (rc == 1) {
        *duplicate = true;
        return bh_tx_commit(tx);
    }
    if (rc != 0)
        goto out_rollback;
    if (ev->kind == BILLING__PAYMENT_EVENT_OTHER)
        return bh_tx_commit(tx); /* acknowledged, recorded, ignored */

    /* Lock order as everywhere else: the subscription, then its invoice. */
    rc = billing__repo_invoice_get(tx, NULL, &ev->invoice_id, false, NULL, &inv);
    if (rc == 0)
        rc = billing__repo_subscription_get(tx, &inv.org_id, true, &s);
    if (rc == 0)
        rc = billing__repo_invoice_get(tx, NULL, &ev->invoice_id, true, NULL, &inv);
    if (rc == BH_ENOTFOUND) {
        /* Not ours (or not any more): acknowledge, so the provider stops
         * redelivering, and leave a trace. */
        bh_log_warn("payment event %s names unknown invoice %s: ignored", ev->id,
                    ev->invoice_id.str);
        return bh_tx_commit(tx);
    }
    if (rc != 0)
        goto out_rollback;
    rc = apply(tx, ev, &inv, &s);
    if (rc != 0)
        goto out_rollback;
    return bh_tx_commit(tx);

out_rollback:
    bh_tx_rollback(tx);
    return rc;
}
