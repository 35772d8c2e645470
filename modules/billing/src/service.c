/* Billing's rules for entitlements and subscriptions: the public API (run on
 * the caller's transaction, switched to billing's role and back), plan
 * changes with their proration and charge, cancellation, and cards. Nothing
 * here talks HTTP or names a provider's vocabulary; no transaction is ever
 * held open while the provider is called. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "internal.h"
#include "platform/db.h"
#include "platform/err.h"

/* ------------------------------------------------------------ public API */

int billing_limit(struct bh_tx *tx, const bh_uuid *org_id, enum billing_resource resource,
                  int64_t *limit_out)
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
    if (rc == 0)
        *limit_out = resource == BILLING_RESOURCE_TASKS ? tasks : members;
    return rc;
}

int billing_limits(struct bh_tx *tx, const bh_uuid *orgs, int n, enum billing_resource resource,
                   struct billing_limit *out)
{
    if (n < 1 || n > BILLING_LIMITS_MAX)
        return BH_EINVAL;
    int64_t *tasks = calloc((size_t)n * 2, sizeof *tasks);
    char(*terms)[BILLING_TERMS_MAX] = calloc((size_t)n, sizeof *terms);
    const char *prev = NULL;
    int rc = tasks && terms ? bh_tx_enter(tx, &prev) : BH_ENOMEM;
    if (rc != 0)
        goto out;
    rc = billing__repo_effective_limits_many(tx, orgs, n, tasks, tasks + n, terms);
    int leave = bh_tx_leave(tx, prev);
    if (rc == 0)
        rc = leave;
    for (int i = 0; rc == 0 && i < n; i++) {
        out[i].limit = resource == BILLING_RESOURCE_TASKS ? tasks[i] : tasks[n + i];
        memcpy(out[i].terms, terms[i], BILLING_TERMS_MAX);
    }
out:
    free(tasks);
    free(terms);
    return rc;
}

int billing_check_limit(struct bh_tx *tx, const bh_uuid *org_id, enum billing_resource resource,
                        int64_t current, int64_t *limit_out)
{
    int64_t limit = 0;
    int rc = billing_limit(tx, org_id, resource, &limit);
    if (rc != 0)
        return rc;
    if (limit_out)
        *limit_out = limit;
    /* One more is allowed while the count stays within the limit. */
    if (limit != BILLING_UNLIMITED && current >= limit)
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
        s.status = BILLING__TRIALING;
        s.period_end = now + (time_t)plan.trial_days * 86400;
    } else {
        s.status = BILLING__ACTIVE;
        s.period_end = billing__add_interval(now, plan.interval);
    }
    rc = billing__repo_subscription_insert(tx, &s);
    if (rc == 0)
        billing__schedule_renewal(org_id, s.period_end);

out_leave:;
    int leave = bh_tx_leave(tx, prev);
    return rc != 0 ? rc : leave;
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

/* Refuses a downgrade the organization does not fit: more members than
 * the new plan allows (counted exactly, through auth). */
static int check_downgrade_fits(const struct billing__subscription *s,
                                const struct billing__plan *to, struct billing__change_result *out)
{
    int64_t members = 0;
    int rc = auth_each_member(&s->org_id, AUTH_ROLE_MEMBER, count_member, &members);
    if (rc != 0)
        return rc;
    if (to->limit_members == BILLING__UNLIMITED || members <= to->limit_members)
        return 0;
    out->why.detail = "The organization has more members than the new plan allows: remove members "
                      "before downgrading.";
    out->why.resource = "members";
    out->why.usage = members;
    out->why.limit = to->limit_members;
    return BH_ELIMIT;
}

/* Restarts a canceled subscription on the free plan: a new period now. */
static int restart_free(struct billing__subscription *s, const struct billing__plan *to, time_t now)
{
    int rc = billing__transition(s->status, BILLING__EV_RESTART, &s->status);
    if (rc != 0)
        return rc;
    billing__set_str(s->plan_id, sizeof s->plan_id, to->id);
    s->period_start = now;
    s->period_end = billing__add_interval(now, to->interval);
    s->pending_plan_id[0] = '\0';
    s->cancel_at_period_end = false;
    s->dunning_attempts = 0;
    s->next_retry_at = 0;
    return 0;
}

/* The part of a plan change that needs no payment: same plan, downgrade,
 * trial upgrade, restart on the free plan. Returns 1 when the change needs
 * a charge (the caller goes on), 0 when done, or a bh_err. */
static int change_without_payment(struct bh_tx *tx, struct billing__subscription *s,
                                  const struct billing__plan *from, const struct billing__plan *to,
                                  const bh_uuid *actor_id, time_t now,
                                  struct billing__change_result *out)
{
    char prev_plan[33];
    enum billing__status prev_status = s->status;
    billing__set_str(prev_plan, sizeof prev_plan, s->plan_id);
    bool canceled = s->status == BILLING__CANCELED;
    const char *reason = NULL;
    int rc = 0;

    if (s->status == BILLING__PAST_DUE) {
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
        if ((rc = check_downgrade_fits(s, to, out)) != 0)
            return rc;
        out->kind = BILLING__CHANGE_DOWNGRADE_SCHEDULED;
        if (strcmp(s->pending_plan_id, to->id) == 0 && !s->cancel_at_period_end)
            return 0; /* already scheduled */
        billing__set_str(s->pending_plan_id, sizeof s->pending_plan_id, to->id);
        s->cancel_at_period_end = false;
        reason = "downgrade_scheduled";
    } else if (canceled && to->price_cents == 0) {
        if ((rc = restart_free(s, to, now)) != 0)
            return rc;
        out->kind = BILLING__CHANGE_UPGRADED;
        reason = "restarted";
    } else if (s->status == BILLING__TRIALING) {
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
    rc = billing__repo_subscription_update(tx, s, now);
    if (rc == 0)
        rc = billing__publish_subscription_changed(tx, s, prev_plan, prev_status, actor_id, reason);
    return rc;
}

/* Reads what a plan change starts from, on tx: the new plan, the
 * subscription (locked) and its current plan. */
static int load_change(struct bh_tx *tx, const bh_uuid *org_id, const char *plan_id,
                       struct billing__plan *to, struct billing__subscription *s,
                       struct billing__plan *from, struct billing__change_result *out)
{
    int rc = billing__repo_plan(tx, plan_id, to);
    if (rc == BH_ENOTFOUND) {
        out->why.code = "unknown_plan";
        out->why.detail = "No such plan: see GET /v1/plans.";
        return BH_EUNPROCESSABLE;
    }
    if (rc == 0)
        rc = billing__repo_subscription_get(tx, org_id, true, s);
    if (rc == 0)
        rc = billing__repo_plan(tx, s->plan_id, from);
    return rc;
}

/* Writes the upgrade's invoice on tx, after checking that it can be paid
 * (a card, a provider that is not known to be down) before writing
 * anything. A new attempt supersedes earlier unpaid plan-change invoices. */
static int invoice_upgrade(struct bh_tx *tx, const struct billing__subscription *s,
                           const struct billing__plan *from, const struct billing__plan *to,
                           time_t now, struct billing__card *card, struct billing__invoice *inv,
                           struct billing__change_result *out)
{
    int rc = billing__repo_payment_method_get(tx, &s->org_id, card);
    if (rc == BH_ENOTFOUND) {
        out->why.code = "payment_method_required";
        out->why.detail = "Add a payment method (POST /payment-method) before upgrading.";
        return BH_EPAYMENT;
    }
    if (rc != 0)
        return rc;
    if (billing__payments_open(&out->retry_after_s)) {
        out->why.code = "payment_provider_unavailable";
        out->why.detail =
            "The payment provider is unavailable; nothing was changed. Try again later.";
        return BH_EUNAVAILABLE;
    }
    build_upgrade_invoice(s, from, to, s->status == BILLING__CANCELED, now, inv);
    rc = billing__repo_invoices_void_open_plan_changes(tx, &s->id, now);
    if (rc == 0)
        rc = billing__repo_invoice_create(tx, inv, now);
    if (rc == 0)
        out->invoice_id = inv->id;
    return rc;
}

/* What a collected upgrade tells the client. */
static int upgrade_result(const struct billing__collection *c, int rc,
                          struct billing__change_result *out)
{
    if (rc == BH_ECONFLICT) {
        out->why.code = "payment_in_progress";
        out->why.detail =
            "Another payment for this organization is in progress; try again shortly.";
    }
    if (rc != 0)
        return rc;
    out->sub = c->sub;
    switch (c->outcome) {
    case BILLING__OUTCOME_PAID: out->kind = BILLING__CHANGE_UPGRADED; return 0;
    case BILLING__OUTCOME_UNKNOWN: out->kind = BILLING__CHANGE_PENDING; return 0;
    case BILLING__OUTCOME_DECLINED:
        out->why.code = "payment_declined";
        out->why.detail = "The card was declined; the plan did not change.";
        out->decline = c->res.decline;
        return BH_EPAYMENT;
    case BILLING__OUTCOME_FAILED: break;
    }
    out->why.code = "payment_provider_unavailable";
    out->why.detail =
        "The payment provider failed; nothing was charged and the plan did not change.";
    billing__payments_open(&out->retry_after_s);
    return BH_EUNAVAILABLE;
}

int billing__change_plan(const bh_uuid *org_id, const bh_uuid *actor_id, const char *plan_id,
                         struct billing__change_result *out)
{
    struct billing__plan from, to;
    struct billing__card card;
    struct billing__invoice inv;
    struct billing__collection c;
    struct bh_tx *tx = NULL;
    time_t now = billing__now();
    memset(out, 0, sizeof *out);

    int rc = bh_tx_begin(&tx);
    if (rc != 0)
        return rc;
    rc = load_change(tx, org_id, plan_id, &to, &out->sub, &from, out);
    if (rc == 0)
        rc = change_without_payment(tx, &out->sub, &from, &to, actor_id, now, out);
    if (rc == 0)
        return bh_tx_commit(tx);
    /* An upgrade: invoice the difference and charge it before it applies. */
    if (rc == 1)
        rc = invoice_upgrade(tx, &out->sub, &from, &to, now, &card, &inv, out);
    if (rc != 0) {
        bh_tx_rollback(tx);
        return rc;
    }
    if (inv.total_cents == 0) { /* nothing to collect (the period is over) */
        out->kind = BILLING__CHANGE_UPGRADED;
        rc = billing__settle_paid(tx, &out->sub, &inv, actor_id, NULL);
        if (rc != 0) {
            bh_tx_rollback(tx);
            return rc;
        }
        return bh_tx_commit(tx);
    }
    rc = upgrade_result(&c, billing__collect(tx, &inv, &card, actor_id, &c), out);
    if (rc == 0 && c.next_due) /* a restart: its new period's renewal */
        billing__schedule_renewal(org_id, c.next_due);
    return rc;
}

/* A past-due subscription is canceled now: nothing was paid for this
 * period, so its open renewal invoice is voided and dunning stops. */
static int cancel_now(struct bh_tx *tx, struct billing__subscription *s, time_t now)
{
    struct billing__invoice inv;
    int rc = billing__transition(s->status, BILLING__EV_CANCEL_NOW, &s->status);
    if (rc == 0)
        rc = billing__repo_invoice_open_renewal(tx, &s->id, &inv);
    if (rc == 0)
        rc = billing__repo_invoice_set_status(tx, &inv.id, "void", now);
    s->next_retry_at = 0;
    s->pending_plan_id[0] = '\0';
    return rc == BH_ENOTFOUND ? 0 : rc;
}

int billing__cancel(const bh_uuid *org_id, const bh_uuid *actor_id,
                    struct billing__change_result *out)
{
    struct billing__plan plan;
    struct billing__subscription *s = &out->sub;
    struct bh_tx *tx = NULL;
    time_t now = billing__now();
    memset(out, 0, sizeof *out);

    int rc = bh_tx_begin(&tx);
    if (rc == 0)
        rc = billing__repo_subscription_get(tx, org_id, true, s);
    if (rc == 0)
        rc = billing__repo_plan(tx, s->plan_id, &plan);
    if (rc == 0 && (s->status == BILLING__CANCELED || plan.price_cents == 0)) {
        out->why.code = "nothing_to_cancel";
        out->why.detail = s->status == BILLING__CANCELED
                              ? "The subscription is already canceled."
                              : "The free plan cannot be canceled; it is what remains.";
        rc = BH_ECONFLICT;
    }
    if (rc == 0 && s->cancel_at_period_end) {
        out->kind = BILLING__CHANGE_NONE;
        return bh_tx_commit(tx);
    }
    enum billing__status prev_status = s->status;
    char prev_plan[33];
    billing__set_str(prev_plan, sizeof prev_plan, s->plan_id);
    if (rc == 0 && s->status == BILLING__PAST_DUE) {
        rc = cancel_now(tx, s, now);
        out->kind = BILLING__CHANGE_CANCELED;
    } else if (rc == 0) {
        s->cancel_at_period_end = true;
        s->pending_plan_id[0] = '\0'; /* a cancellation replaces a scheduled downgrade */
        out->kind = BILLING__CHANGE_CANCEL_SCHEDULED;
    }
    if (rc == 0)
        rc = billing__repo_subscription_update(tx, s, now);
    if (rc == 0)
        rc = billing__publish_subscription_changed(
            tx, s, prev_plan, prev_status, actor_id,
            s->status == BILLING__CANCELED ? "canceled" : "cancel_scheduled");
    if (rc != 0) {
        bh_tx_rollback(tx);
        return rc;
    }
    return bh_tx_commit(tx);
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
    bool retry_now = rc == 0 && s.status == BILLING__PAST_DUE;
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

/* ------------------------------------------------------------------ reads */

/* Each read runs in its own read-only transaction, rolled back. */

int billing__get_plans(struct billing__plan *out, int max, int *n)
{
    struct bh_tx *tx = NULL;
    int rc = bh_tx_begin(&tx);
    if (rc != 0)
        return rc;
    rc = billing__repo_plans(tx, out, max, n);
    bh_tx_rollback(tx);
    return rc;
}

int billing__get_subscription(const bh_uuid *org_id, struct billing__subscription *out)
{
    struct bh_tx *tx = NULL;
    int rc = bh_tx_begin(&tx);
    if (rc != 0)
        return rc;
    rc = billing__repo_subscription_get(tx, org_id, false, out);
    bh_tx_rollback(tx);
    return rc;
}

int billing__get_invoice(const bh_uuid *org_id, const bh_uuid *id, struct bh_arena *a,
                         struct billing__invoice *out)
{
    struct bh_tx *tx = NULL;
    int rc = bh_tx_begin(&tx);
    if (rc != 0)
        return rc;
    rc = billing__repo_invoice_get(tx, org_id, id, false, a, out);
    bh_tx_rollback(tx);
    return rc;
}

int billing__list_invoices(const bh_uuid *org_id, int64_t before_number, int limit,
                           struct bh_arena *a, struct billing__invoice *out, int *n)
{
    struct bh_tx *tx = NULL;
    int rc = bh_tx_begin(&tx);
    if (rc != 0)
        return rc;
    rc = billing__repo_invoices_list(tx, org_id, before_number, limit, a, out, n);
    bh_tx_rollback(tx);
    return rc;
}

int billing__get_usage(const bh_uuid *org_id, int64_t *tasks, int64_t *members,
                       int64_t *limit_tasks, int64_t *limit_members)
{
    struct bh_tx *tx = NULL;
    int rc = bh_tx_begin(&tx);
    if (rc != 0)
        return rc;
    rc = billing__repo_usage_get(tx, org_id, tasks, members);
    if (rc == 0)
        rc = billing__repo_effective_limits(tx, org_id, limit_tasks, limit_members);
    bh_tx_rollback(tx);
    return rc;
}
