/* Billing's rules for entitlements and subscriptions: the public API (run on
 * the caller's transaction, switched to billing's role and back), plan
 * changes with their proration and charge, cancellation, and cards. Nothing
 * here talks HTTP or names a provider's vocabulary; no transaction is ever
 * held open while the provider is called. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "auth/auth.h"
#include "internal.h"
#include "platform/db.h"
#include "platform/err.h"

/* ------------------------------------------------------------ public API */

int billing_check_limit(struct bh_tx *tx, const bh_uuid *org_id, enum billing_resource resource,
                        int64_t current, int64_t *limit_out)
{
    const char *prev = NULL;
    int64_t tasks = 0, members = 0;
    int rc = bh_tx_enter(tx, &prev);
    if (rc != 0)
        return rc;
    rc = billing__repo_effective_limits(tx, org_id, &tasks, &members);
    int leave = bh_tx_leave(tx, prev);
    if (rc == 0)
        rc = leave;
    if (rc != 0)
        return rc;
    int64_t limit = resource == BILLING_RESOURCE_TASKS ? tasks : members;
    if (limit_out)
        *limit_out = limit;
    /* One more is allowed while the count stays within the limit. */
    if (limit != BILLING__UNLIMITED && current >= limit)
        return BH_ELIMIT;
    return 0;
}

int billing_create_subscription(struct bh_tx *tx, const bh_uuid *org_id, const char *plan_id)
{
    const char *prev = NULL;
    struct billing__plan plan;
    int rc = bh_tx_enter(tx, &prev);
    if (rc != 0)
        return rc;
    rc = billing__repo_plan(tx, plan_id ? plan_id : "free", &plan);
    if (rc == BH_ENOTFOUND)
        rc = BH_EINVAL;
    if (rc != 0)
        goto out_leave;

    /* A paid plan chosen at creation starts with its trial (no charge until
     * the trial ends); the free plan, and paid plans without a trial, start
     * an ordinary period. Upgrades later never start a trial. */
    time_t now = billing__now();
    struct billing__subscription s = {.id = bh_uuid_v7(), .org_id = *org_id};
    snprintf(s.plan_id, sizeof s.plan_id, "%s", plan.id);
    s.period_start = now;
    if (plan.trial_days > 0 && plan.price_cents > 0) {
        snprintf(s.status, sizeof s.status, "trialing");
        s.period_end = now + (time_t)plan.trial_days * 86400;
    } else {
        snprintf(s.status, sizeof s.status, "active");
        s.period_end = billing__add_interval(now, plan.interval);
    }
    rc = billing__repo_subscription_insert(tx, &s);
    if (rc == 0)
        billing__schedule_renewal(org_id, s.period_end);

out_leave:;
    int leave = bh_tx_leave(tx, prev);
    return rc != 0 ? rc : leave;
}

/* ------------------------------------------------------- charging invoices */

enum billing__collected billing__record_charge(struct bh_tx *tx, const struct billing__invoice *inv,
                                               const bh_uuid *attempt_id, int charge_rc,
                                               const struct billing__charge_result *res, time_t now,
                                               int *err)
{
    const char *outcome = "error";
    const char *code = charge_rc == BH_ETIMEOUT ? "timeout" : "provider_unavailable";
    enum billing__collected c = BILLING__COLLECT_FAILED;
    if (charge_rc == 0 && res->outcome == BILLING__CHARGE_SUCCEEDED) {
        outcome = "succeeded";
        code = "";
        c = BILLING__COLLECT_PAID;
    } else if (charge_rc == 0) {
        outcome = "declined";
        code = billing__decline_name(res->decline);
        c = BILLING__COLLECT_DECLINED;
    }
    *err =
        billing__repo_attempt_finish(tx, attempt_id, outcome, code, charge_rc == 0 ? res->ref : "");
    if (*err == 0)
        *err = billing__repo_invoice_count_attempt(tx, &inv->id);
    if (*err == 0 && c == BILLING__COLLECT_PAID)
        *err = billing__repo_invoice_set_status(tx, &inv->id, "paid", now);
    return c;
}

/* ------------------------------------------------------------ plan changes */

/* Counts org_id's members (auth owns them; this is auth's read, not ours). */
static int count_member(const bh_uuid *user_id, enum auth_role role, void *arg)
{
    (*(int64_t *)arg)++;
    return 0;
}

/* Lines of an upgrade invoice: a credit for the unused part of the old plan
 * and a charge for the rest of the period on the new one (docs/billing.md,
 * "Proration"). A restart after cancellation is a whole new period. */
static void build_upgrade_invoice(const struct billing__subscription *s,
                                  const struct billing__plan *from, const struct billing__plan *to,
                                  bool restart, time_t now, struct billing__invoice *inv)
{
    memset(inv, 0, sizeof *inv);
    inv->id = bh_uuid_v7();
    inv->org_id = s->org_id;
    inv->subscription_id = s->id;
    billing__set_str(inv->reason, sizeof inv->reason, "plan_change");
    billing__set_str(inv->plan_id, sizeof inv->plan_id, to->id);
    billing__set_str(inv->currency, sizeof inv->currency, to->currency);
    if (restart) {
        inv->period_start = now;
        inv->period_end = billing__add_interval(now, to->interval);
        struct billing__invoice_line *l = &inv->lines[inv->n_lines++];
        billing__set_str(l->kind, sizeof l->kind, "subscription");
        snprintf(l->description, sizeof l->description, "%s plan, one %s", to->name, to->interval);
        billing__set_str(l->plan_id, sizeof l->plan_id, to->id);
        l->amount_cents = to->price_cents;
        l->period_start = inv->period_start;
        l->period_end = inv->period_end;
        inv->total_cents = to->price_cents;
        return;
    }
    billing__set_str(inv->from_plan_id, sizeof inv->from_plan_id, from->id);
    inv->period_start = now < s->period_end ? now : s->period_end - 1;
    inv->period_end = s->period_end;
    int64_t length = (int64_t)(s->period_end - s->period_start);
    int64_t remaining = (int64_t)(s->period_end - now);
    int64_t credit = billing__prorate(from->price_cents, remaining, length);
    int64_t charge = billing__prorate(to->price_cents, remaining, length);
    if (credit > 0) {
        struct billing__invoice_line *l = &inv->lines[inv->n_lines++];
        billing__set_str(l->kind, sizeof l->kind, "proration_credit");
        snprintf(l->description, sizeof l->description, "Unused time on %s", from->name);
        billing__set_str(l->plan_id, sizeof l->plan_id, from->id);
        l->amount_cents = -credit;
        l->period_start = inv->period_start;
        l->period_end = inv->period_end;
    }
    struct billing__invoice_line *l = &inv->lines[inv->n_lines++];
    billing__set_str(l->kind, sizeof l->kind, "proration_charge");
    snprintf(l->description, sizeof l->description, "Remaining time on %s", to->name);
    billing__set_str(l->plan_id, sizeof l->plan_id, to->id);
    l->amount_cents = charge;
    l->period_start = inv->period_start;
    l->period_end = inv->period_end;
    inv->total_cents = charge - credit;
}

/* Moves s onto plan `to` now (the upgrade took effect). */
static void apply_upgrade(struct billing__subscription *s, const struct billing__plan *to,
                          const struct billing__invoice *inv, bool restart)
{
    billing__set_str(s->plan_id, sizeof s->plan_id, to->id);
    if (strcmp(s->status, "trialing") != 0)
        billing__set_str(s->status, sizeof s->status, "active");
    s->pending_plan_id[0] = '\0';
    s->cancel_at_period_end = false;
    s->dunning_attempts = 0;
    s->next_retry_at = 0;
    if (restart) {
        s->period_start = inv->period_start;
        s->period_end = inv->period_end;
    }
}

/* The part of a plan change that needs no payment: same plan, downgrade,
 * trial upgrade, restart on the free plan. Returns 1 when the change needs
 * a charge (the caller goes on), 0 when done, or a bh_err. */
static int change_without_payment(struct bh_tx *tx, struct billing__subscription *s,
                                  const struct billing__plan *from, const struct billing__plan *to,
                                  const bh_uuid *actor_id, time_t now,
                                  struct billing__change_result *out)
{
    char prev_plan[33], prev_status[16];
    billing__set_str(prev_plan, sizeof prev_plan, s->plan_id);
    billing__set_str(prev_status, sizeof prev_status, s->status);
    bool canceled = strcmp(s->status, "canceled") == 0;
    const char *reason = NULL;

    if (strcmp(s->status, "past_due") == 0) {
        out->why.code = "subscription_past_due";
        out->why.detail = "The subscription is past due: pay the open invoice (update the payment "
                          "method) before changing plans.";
        return BH_ECONFLICT;
    }
    if (!canceled && strcmp(to->id, s->plan_id) == 0) {
        if (!s->pending_plan_id[0] && !s->cancel_at_period_end) {
            out->kind = BILLING__CHANGE_NONE;
            return 0;
        }
        s->pending_plan_id[0] = '\0';
        s->cancel_at_period_end = false;
        out->kind = BILLING__CHANGE_RESUMED;
        reason = "scheduled_change_undone";
    } else if (!canceled && to->rank < from->rank) {
        int64_t members = 0;
        int rc = auth_each_member(&s->org_id, AUTH_ROLE_MEMBER, count_member, &members);
        if (rc != 0)
            return rc;
        if (to->limit_members != BILLING__UNLIMITED && members > to->limit_members) {
            out->why.detail = "The organization has more members than the new plan allows: "
                              "remove members before downgrading.";
            out->why.resource = "members";
            out->why.usage = members;
            out->why.limit = to->limit_members;
            return BH_ELIMIT;
        }
        if (strcmp(s->pending_plan_id, to->id) == 0 && !s->cancel_at_period_end) {
            out->kind = BILLING__CHANGE_DOWNGRADE_SCHEDULED; /* already scheduled */
            return 0;
        }
        billing__set_str(s->pending_plan_id, sizeof s->pending_plan_id, to->id);
        s->cancel_at_period_end = false;
        out->kind = BILLING__CHANGE_DOWNGRADE_SCHEDULED;
        reason = "downgrade_scheduled";
    } else if (canceled && to->price_cents == 0) {
        billing__set_str(s->plan_id, sizeof s->plan_id, to->id);
        billing__set_str(s->status, sizeof s->status, "active");
        s->period_start = now;
        s->period_end = billing__add_interval(now, to->interval);
        s->pending_plan_id[0] = '\0';
        s->cancel_at_period_end = false;
        s->dunning_attempts = 0;
        s->next_retry_at = 0;
        out->kind = BILLING__CHANGE_UPGRADED;
        reason = "restarted";
    } else if (strcmp(s->status, "trialing") == 0) {
        /* The trial covers the new plan too: the first charge comes when it
         * ends, at the new plan's price. */
        billing__set_str(s->plan_id, sizeof s->plan_id, to->id);
        s->pending_plan_id[0] = '\0';
        s->cancel_at_period_end = false;
        out->kind = BILLING__CHANGE_UPGRADED;
        reason = "upgraded";
    } else {
        return 1;
    }
    int rc = billing__repo_subscription_update(tx, s, now);
    if (rc == 0)
        rc = billing__publish_subscription_changed(tx, s, prev_plan, prev_status, actor_id, reason);
    return rc;
}

int billing__change_plan(const bh_uuid *org_id, const bh_uuid *actor_id, const char *plan_id,
                         struct billing__change_result *out)
{
    struct billing__plan from, to;
    struct billing__subscription s;
    struct billing__card card;
    struct billing__invoice inv;
    struct bh_tx *tx = NULL;
    time_t now = billing__now();
    memset(out, 0, sizeof *out);

    int rc = bh_tx_begin(&tx);
    if (rc != 0)
        return rc;
    rc = billing__repo_plan(tx, plan_id, &to);
    if (rc == BH_ENOTFOUND) {
        out->why.code = "unknown_plan";
        out->why.detail = "No such plan: see GET /v1/plans.";
        rc = BH_EUNPROCESSABLE;
    }
    if (rc == 0)
        rc = billing__repo_subscription_get(tx, org_id, true, &s);
    if (rc == 0)
        rc = billing__repo_plan(tx, s.plan_id, &from);
    if (rc != 0)
        goto out_rollback;

    rc = change_without_payment(tx, &s, &from, &to, actor_id, now, out);
    if (rc <= 0) {
        out->sub = s;
        if (rc == 0)
            return bh_tx_commit(tx);
        goto out_rollback;
    }

    /* An upgrade: invoice the difference and charge it before it applies. */
    bool restart = strcmp(s.status, "canceled") == 0;
    rc = billing__repo_payment_method_get(tx, org_id, &card);
    if (rc == BH_ENOTFOUND) {
        out->why.code = "payment_method_required";
        out->why.detail = "Add a payment method (POST /payment-method) before upgrading.";
        rc = BH_EPAYMENT;
    }
    if (rc != 0)
        goto out_rollback;
    /* Fail fast, before writing anything, while the provider is known down. */
    if (billing__payments_open(&out->retry_after_s)) {
        out->why.code = "payment_provider_unavailable";
        out->why.detail =
            "The payment provider is unavailable; nothing was changed. Try again later.";
        rc = BH_EUNAVAILABLE;
        goto out_rollback;
    }
    build_upgrade_invoice(&s, &from, &to, restart, now, &inv);
    /* A new attempt supersedes earlier unpaid plan-change invoices. */
    rc = billing__repo_invoices_void_open_plan_changes(tx, &s.id, now);
    if (rc == 0)
        rc = billing__repo_invoice_create(tx, &inv, now);
    if (rc != 0)
        goto out_rollback;
    out->invoice_id = inv.id;

    char prev_plan[33], prev_status[16];
    billing__set_str(prev_plan, sizeof prev_plan, s.plan_id);
    billing__set_str(prev_status, sizeof prev_status, s.status);
    if (inv.total_cents == 0) { /* nothing to collect (the period is over) */
        rc = billing__repo_invoice_set_status(tx, &inv.id, "paid", now);
        apply_upgrade(&s, &to, &inv, restart);
        if (rc == 0)
            rc = billing__repo_subscription_update(tx, &s, now);
        if (rc == 0)
            rc = billing__publish_invoice_paid(tx, &inv, actor_id);
        if (rc == 0)
            rc = billing__publish_subscription_changed(tx, &s, prev_plan, prev_status, actor_id,
                                                       "upgraded");
        if (rc != 0)
            goto out_rollback;
        out->kind = BILLING__CHANGE_UPGRADED;
        out->sub = s;
        return bh_tx_commit(tx);
    }
    bh_uuid attempt_id = bh_uuid_v7();
    rc = billing__repo_attempt_begin(tx, &attempt_id, &inv.id, org_id, inv.total_cents);
    if (rc == BH_ECONFLICT) {
        out->why.code = "payment_in_progress";
        out->why.detail =
            "Another payment for this organization is in progress; try again shortly.";
    }
    if (rc != 0)
        goto out_rollback;
    /* The invoice and the pending attempt are on record before any money
     * moves; no transaction stays open while the provider is called. */
    rc = bh_tx_commit(tx);
    tx = NULL;
    if (rc != 0)
        return rc;

    struct billing__charge_result res;
    memset(&res, 0, sizeof res);
    int charge_rc =
        billing__payments_charge(card.ref, inv.total_cents, inv.currency, inv.id.str, &res);

    rc = bh_tx_begin(&tx);
    if (rc == 0)
        rc = billing__repo_subscription_get(tx, org_id, true, &s);
    if (rc != 0)
        goto out_rollback;
    now = billing__now();
    int err = 0;
    enum billing__collected c =
        billing__record_charge(tx, &inv, &attempt_id, charge_rc, &res, now, &err);
    if (err != 0) {
        rc = err;
        goto out_rollback;
    }
    switch (c) {
    case BILLING__COLLECT_PAID:
        billing__set_str(prev_plan, sizeof prev_plan, s.plan_id);
        billing__set_str(prev_status, sizeof prev_status, s.status);
        apply_upgrade(&s, &to, &inv, restart);
        rc = billing__repo_subscription_update(tx, &s, now);
        if (rc == 0)
            rc = billing__publish_invoice_paid(tx, &inv, actor_id);
        if (rc == 0)
            rc = billing__publish_subscription_changed(tx, &s, prev_plan, prev_status, actor_id,
                                                       restart ? "restarted" : "upgraded");
        out->kind = BILLING__CHANGE_UPGRADED;
        break;
    case BILLING__COLLECT_DECLINED:
        /* The invoice stays open (it can still be paid); the plan stays. */
        rc = billing__publish_invoice_payment_failed(tx, &inv, inv.attempt_count + 1, 0,
                                                     res.decline, actor_id);
        out->why.code = "payment_declined";
        out->why.detail = "The card was declined; the plan did not change.";
        out->decline = res.decline;
        break;
    case BILLING__COLLECT_FAILED:
        /* Nothing was collected and nothing applies: void the invoice so no
         * half-done change stays behind. */
        rc = billing__repo_invoice_set_status(tx, &inv.id, "void", now);
        out->why.code = "payment_provider_unavailable";
        out->why.detail = charge_rc == BH_ETIMEOUT
                              ? "The payment provider did not answer in time; nothing was charged "
                                "and the plan did not change."
                              : "The payment provider failed; nothing was charged and the plan did "
                                "not change.";
        billing__payments_open(&out->retry_after_s);
        break;
    }
    if (rc != 0)
        goto out_rollback;
    out->sub = s;
    rc = bh_tx_commit(tx);
    if (rc != 0)
        return rc;
    if (c == BILLING__COLLECT_PAID && restart)
        billing__schedule_renewal(org_id, s.period_end);
    if (c == BILLING__COLLECT_DECLINED)
        return BH_EPAYMENT;
    if (c == BILLING__COLLECT_FAILED)
        return charge_rc == BH_ETIMEOUT ? BH_ETIMEOUT : BH_EUNAVAILABLE;
    return 0;

out_rollback:
    bh_tx_rollback(tx);
    return rc;
}

int billing__cancel(const bh_uuid *org_id, const bh_uuid *actor_id,
                    struct billing__change_result *out)
{
    struct billing__plan plan;
    struct billing__subscription s;
    struct bh_tx *tx = NULL;
    time_t now = billing__now();
    memset(out, 0, sizeof *out);

    int rc = bh_tx_begin(&tx);
    if (rc == 0)
        rc = billing__repo_subscription_get(tx, org_id, true, &s);
    if (rc == 0)
        rc = billing__repo_plan(tx, s.plan_id, &plan);
    if (rc != 0)
        goto out_rollback;
    out->sub = s;
    if (strcmp(s.status, "canceled") == 0 || plan.price_cents == 0) {
        out->why.code = "nothing_to_cancel";
        out->why.detail = strcmp(s.status, "canceled") == 0
                              ? "The subscription is already canceled."
                              : "The free plan cannot be canceled; it is what remains.";
        rc = BH_ECONFLICT;
        goto out_rollback;
    }
    if (s.cancel_at_period_end) {
        out->kind = BILLING__CHANGE_NONE;
        return bh_tx_commit(tx);
    }
    char prev_plan[33], prev_status[16];
    billing__set_str(prev_plan, sizeof prev_plan, s.plan_id);
    billing__set_str(prev_status, sizeof prev_status, s.status);
    if (strcmp(s.status, "past_due") == 0) {
        /* Nothing was paid for this period: canceling ends it now and stops
         * the dunning retries. */
        struct billing__invoice inv;
        rc = billing__repo_invoice_open_renewal(tx, &s.id, &inv);
        if (rc == 0)
            rc = billing__repo_invoice_set_status(tx, &inv.id, "void", now);
        if (rc == BH_ENOTFOUND)
            rc = 0;
        billing__set_str(s.status, sizeof s.status, "canceled");
        s.next_retry_at = 0;
        s.pending_plan_id[0] = '\0';
        out->kind = BILLING__CHANGE_CANCELED;
    } else {
        s.cancel_at_period_end = true;
        s.pending_plan_id[0] = '\0'; /* a cancellation replaces a scheduled downgrade */
        out->kind = BILLING__CHANGE_CANCEL_SCHEDULED;
    }
    if (rc == 0)
        rc = billing__repo_subscription_update(tx, &s, now);
    if (rc == 0)
        rc = billing__publish_subscription_changed(
            tx, &s, prev_plan, prev_status, actor_id,
            strcmp(s.status, "canceled") == 0 ? "canceled" : "cancel_scheduled");
    if (rc != 0)
        goto out_rollback;
    out->sub = s;
    return bh_tx_commit(tx);

out_rollback:
    bh_tx_rollback(tx);
    return rc;
}

int billing__set_payment_method(const bh_uuid *org_id, const char *token, struct billing__card *out)
{
    struct billing__subscription s;
    struct bh_tx *tx = NULL;
    int rc = billing__payments_attach(token, out);
    if (rc != 0)
        return rc;
    rc = bh_tx_begin(&tx);
    if (rc == 0)
        rc = billing__repo_payment_method_put(tx, org_id, billing__provider()->name, out);
    if (rc == 0)
        rc = billing__repo_subscription_get(tx, org_id, true, &s);
    bool retry_now = rc == 0 && strcmp(s.status, "past_due") == 0;
    time_t now = billing__now();
    if (retry_now) {
        /* A new card is the moment to collect what is owed: the next dunning
         * retry is due now instead of on the schedule, and an ordinary
         * renewal run collects it (a duplicate run re-checks the date and
         * does nothing twice). */
        s.next_retry_at = now;
        rc = billing__repo_subscription_update(tx, &s, now);
    }
    if (rc == BH_ENOTFOUND)
        rc = 0;
    if (rc != 0) {
        bh_tx_rollback(tx);
        return rc;
    }
    rc = bh_tx_commit(tx);
    if (rc == 0 && retry_now)
        billing__schedule_renewal(org_id, now);
    return rc;
}
