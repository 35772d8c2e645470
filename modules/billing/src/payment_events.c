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

static int on_succeeded(struct bh_tx *tx, struct billing__invoice *inv,
                        struct billing__subscription *s, time_t now)
{
    if (strcmp(inv->status, "open") != 0)
        return 0; /* paid already, or void: nothing moves back or twice */
    char prev_plan[33], prev_status[16];
    billing__set_str(prev_plan, sizeof prev_plan, s->plan_id);
    billing__set_str(prev_status, sizeof prev_status, s->status);
    int rc = 0;
    if (inv->total_cents > 0)
        rc = billing__repo_attempt_record(tx, &inv->id, &inv->org_id, inv->total_cents, "succeeded",
                                          NULL);
    if (rc == 0)
        rc = billing__repo_invoice_count_attempt(tx, &inv->id);
    if (rc == 0)
        rc = billing__repo_invoice_set_status(tx, &inv->id, "paid", now);
    if (rc == 0)
        rc = billing__publish_invoice_paid(tx, inv, NULL);
    if (rc != 0)
        return rc;
    const char *reason = NULL;
    if (strcmp(inv->reason, "plan_change") == 0 && strcmp(s->plan_id, inv->from_plan_id) == 0 &&
        (strcmp(s->status, "active") == 0 || strcmp(s->status, "trialing") == 0)) {
        /* The upgrade this invoice was for is paid: it applies now. */
        billing__set_str(s->plan_id, sizeof s->plan_id, inv->plan_id);
        s->pending_plan_id[0] = '\0';
        s->cancel_at_period_end = false;
        reason = "upgraded";
    } else if (strcmp(inv->reason, "renewal") == 0 && strcmp(s->status, "past_due") == 0) {
        billing__set_str(s->status, sizeof s->status, "active");
        s->dunning_attempts = 0;
        s->next_retry_at = 0;
        reason = "payment_recovered";
    }
    if (!reason)
        return 0;
    rc = billing__repo_subscription_update(tx, s, now);
    if (rc == 0)
        rc = billing__publish_subscription_changed(tx, s, prev_plan, prev_status, NULL, reason);
    return rc;
}

static int on_failed(struct bh_tx *tx, const struct billing__payment_event *ev,
                     struct billing__invoice *inv, struct billing__subscription *s, time_t now)
{
    if (strcmp(inv->status, "open") != 0)
        return 0; /* a late failure for an invoice since paid or voided */
    int rc = 0;
    if (inv->total_cents > 0)
        rc = billing__repo_attempt_record(tx, &inv->id, &inv->org_id, inv->total_cents, "declined",
                                          billing__decline_name(ev->decline));
    if (rc == 0)
        rc = billing__repo_invoice_count_attempt(tx, &inv->id);
    if (rc != 0)
        return rc;
    char prev_status[16];
    billing__set_str(prev_status, sizeof prev_status, s->status);
    bool moves = strcmp(inv->reason, "renewal") == 0 &&
                 (strcmp(s->status, "active") == 0 || strcmp(s->status, "trialing") == 0) &&
                 ev->occurred_at >= s->status_changed_at;
    if (moves) {
        billing__set_str(s->status, sizeof s->status, "past_due");
        if (s->dunning_attempts < 1)
            s->dunning_attempts = 1;
        s->next_retry_at = billing__dunning_retry_at(inv->created_at, s->dunning_attempts);
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
    time_t now = billing__now();
    rc = ev->kind == BILLING__PAYMENT_EVENT_SUCCEEDED ? on_succeeded(tx, &inv, &s, now)
                                                      : on_failed(tx, ev, &inv, &s, now);
    if (rc != 0)
        goto out_rollback;
    return bh_tx_commit(tx);

out_rollback:
    bh_tx_rollback(tx);
    return rc;
}
