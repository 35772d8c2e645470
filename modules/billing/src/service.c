/* Billing's rules: entitlements, subscriptions and their JSON shapes. The
 * public functions here run on a caller's transaction (they switch it to
 * billing's role and back); nothing here talks HTTP or names a provider. */
#include <inttypes.h>
#include <string.h>

#include "internal.h"
#include "platform/db.h"
#include "platform/err.h"
#include "platform/log.h"

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

out_leave:;
    int leave = bh_tx_leave(tx, prev);
    return rc != 0 ? rc : leave;
}

/* ---------------------------------------------------------------- shapes */

json_t *billing__plan_json(const struct billing__plan *p)
{
    json_t *limit_tasks =
        p->limit_tasks == BILLING__UNLIMITED ? json_null() : json_integer(p->limit_tasks);
    json_t *limit_members =
        p->limit_members == BILLING__UNLIMITED ? json_null() : json_integer(p->limit_members);
    return json_pack("{s:s, s:s, s:I, s:s, s:s, s:i, s:{s:o, s:o}}", "id", p->id, "name", p->name,
                     "price_cents", (json_int_t)p->price_cents, "currency", p->currency, "interval",
                     p->interval, "trial_days", p->trial_days, "limits", "tasks", limit_tasks,
                     "members", limit_members);
}

json_t *billing__subscription_json(const struct billing__subscription *s)
{
    char start[32], end[32];
    billing__format_time(s->period_start, start);
    billing__format_time(s->period_end, end);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:b}", "plan_id", s->plan_id, "status", s->status,
                          "current_period_start", start, "current_period_end", end,
                          "cancel_at_period_end", s->cancel_at_period_end);
    if (!o)
        return NULL;
    json_object_set_new(o, "pending_plan_id",
                        s->pending_plan_id[0] ? json_string(s->pending_plan_id) : json_null());
    return o;
}
