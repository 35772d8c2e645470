/* The billing repository: every SQL statement the module runs, as named,
 * parameterized statements over schema billing only. Times cross this
 * boundary as epoch seconds (billing's clock may be simulated, so SQL never
 * decides what "now" is: the caller passes it). No business rule lives here. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "platform/db.h"
#include "platform/err.h"

/* ------------------------------------------------------------------ helpers */

static void copy_str(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

static int64_t get_i64(const PGresult *r, int row, int col, int64_t if_null)
{
    if (bh_pg_null(r, row, col))
        return if_null;
    return strtoll(bh_pg_str(r, row, col), NULL, 10);
}

/* Epoch seconds as a parameter (to_timestamp($n) in SQL). */
static const char *epoch_param(char buf[24], time_t t)
{
    snprintf(buf, 24, "%lld", (long long)t);
    return buf;
}

/* ------------------------------------------------------------------- plans */

#define PLAN_COLUMNS                                                                               \
    "id, name, rank, price_cents, currency, interval, trial_days, limit_tasks, limit_members"

static const char SQL_LIST_PLANS[] = "SELECT " PLAN_COLUMNS " FROM billing.plans ORDER BY rank";

static const char SQL_FIND_PLAN[] = "SELECT " PLAN_COLUMNS " FROM billing.plans WHERE id = $1";

static void plan_from_row(const PGresult *r, int row, struct billing__plan *p)
{
    copy_str(p->id, sizeof p->id, bh_pg_str(r, row, 0));
    copy_str(p->name, sizeof p->name, bh_pg_str(r, row, 1));
    p->rank = (int)get_i64(r, row, 2, 0);
    p->price_cents = get_i64(r, row, 3, 0);
    copy_str(p->currency, sizeof p->currency, bh_pg_str(r, row, 4));
    copy_str(p->interval, sizeof p->interval, bh_pg_str(r, row, 5));
    p->trial_days = (int)get_i64(r, row, 6, 0);
    p->limit_tasks = get_i64(r, row, 7, BILLING__UNLIMITED);
    p->limit_members = get_i64(r, row, 8, BILLING__UNLIMITED);
}

int billing__repo_plans(struct bh_tx *tx, struct billing__plan *out, int max, int *n)
{
    PGresult *r = NULL;
    int rc = bh_tx_query(tx, &r, SQL_LIST_PLANS, 0, NULL);
    if (rc != 0)
        return rc;
    int rows = PQntuples(r);
    *n = 0;
    for (int i = 0; i < rows && i < max; i++)
        plan_from_row(r, i, &out[(*n)++]);
    PQclear(r);
    return 0;
}

int billing__repo_plan(struct bh_tx *tx, const char *plan_id, struct billing__plan *out)
{
    PGresult *r = NULL;
    const char *params[] = {plan_id};
    int rc = bh_tx_query(tx, &r, SQL_FIND_PLAN, 1, params);
    if (rc != 0)
        return rc;
    if (PQntuples(r) == 0)
        rc = BH_ENOTFOUND;
    else
        plan_from_row(r, 0, out);
    PQclear(r);
    return rc;
}

/* The subscription's plan while it is live, the free plan otherwise (also
 * when the organization has no subscription row at all). */
static const char SQL_EFFECTIVE_LIMITS[] =
    "SELECT CASE WHEN s.status IN ('trialing', 'active', 'past_due')"
    "            THEN p.limit_tasks ELSE f.limit_tasks END,"
    "       CASE WHEN s.status IN ('trialing', 'active', 'past_due')"
    "            THEN p.limit_members ELSE f.limit_members END"
    "  FROM billing.plans f"
    "  LEFT JOIN billing.subscriptions s ON s.org_id = $1"
    "  LEFT JOIN billing.plans p ON p.id = s.plan_id"
    " WHERE f.id = 'free'";

int billing__repo_effective_limits(struct bh_tx *tx, const bh_uuid *org_id, int64_t *tasks,
                                   int64_t *members)
{
    PGresult *r = NULL;
    const char *params[] = {org_id->str};
    int rc = bh_tx_query(tx, &r, SQL_EFFECTIVE_LIMITS, 1, params);
    if (rc != 0)
        return rc;
    if (PQntuples(r) != 1) {
        rc = BH_EINTERNAL; /* the free plan is seeded by the first migration */
    } else {
        *tasks = get_i64(r, 0, 0, BILLING__UNLIMITED);
        *members = get_i64(r, 0, 1, BILLING__UNLIMITED);
    }
    PQclear(r);
    return rc;
}

/* ----------------------------------------------------------- subscriptions */

#define SUBSCRIPTION_COLUMNS                                                                       \
    "id, org_id, plan_id, status, extract(epoch FROM current_period_start)::bigint,"               \
    " extract(epoch FROM current_period_end)::bigint, cancel_at_period_end,"                       \
    " coalesce(pending_plan_id, ''), dunning_attempts,"                                            \
    " coalesce(extract(epoch FROM next_retry_at)::bigint, 0)"

static const char SQL_INSERT_SUBSCRIPTION[] =
    "INSERT INTO billing.subscriptions (id, org_id, plan_id, status, current_period_start,"
    "                                   current_period_end, status_changed_at)"
    " VALUES ($1, $2, $3, $4, to_timestamp($5), to_timestamp($6), to_timestamp($5))"
    " ON CONFLICT (org_id) DO NOTHING"
    " RETURNING id";

static const char SQL_GET_SUBSCRIPTION[] =
    "SELECT " SUBSCRIPTION_COLUMNS " FROM billing.subscriptions WHERE org_id = $1";

static const char SQL_GET_SUBSCRIPTION_FOR_UPDATE[] =
    "SELECT " SUBSCRIPTION_COLUMNS " FROM billing.subscriptions WHERE org_id = $1 FOR UPDATE";

static void subscription_from_row(const PGresult *r, int row, struct billing__subscription *s)
{
    bh_uuid_parse(bh_pg_str(r, row, 0), &s->id);
    bh_uuid_parse(bh_pg_str(r, row, 1), &s->org_id);
    copy_str(s->plan_id, sizeof s->plan_id, bh_pg_str(r, row, 2));
    copy_str(s->status, sizeof s->status, bh_pg_str(r, row, 3));
    s->period_start = (time_t)get_i64(r, row, 4, 0);
    s->period_end = (time_t)get_i64(r, row, 5, 0);
    s->cancel_at_period_end = strcmp(bh_pg_str(r, row, 6), "t") == 0;
    copy_str(s->pending_plan_id, sizeof s->pending_plan_id, bh_pg_str(r, row, 7));
    s->dunning_attempts = (int)get_i64(r, row, 8, 0);
    s->next_retry_at = (time_t)get_i64(r, row, 9, 0);
}

int billing__repo_subscription_insert(struct bh_tx *tx, const struct billing__subscription *s)
{
    char start[24], end[24];
    const char *params[] = {s->id.str,
                            s->org_id.str,
                            s->plan_id,
                            s->status,
                            epoch_param(start, s->period_start),
                            epoch_param(end, s->period_end)};
    PGresult *r = NULL;
    int rc = bh_tx_query(tx, &r, SQL_INSERT_SUBSCRIPTION, 6, params);
    if (rc != 0)
        return rc;
    if (PQntuples(r) == 0)
        rc = BH_ECONFLICT;
    PQclear(r);
    return rc;
}

int billing__repo_subscription_get(struct bh_tx *tx, const bh_uuid *org_id, bool for_update,
                                   struct billing__subscription *out)
{
    PGresult *r = NULL;
    const char *params[] = {org_id->str};
    int rc = bh_tx_query(
        tx, &r, for_update ? SQL_GET_SUBSCRIPTION_FOR_UPDATE : SQL_GET_SUBSCRIPTION, 1, params);
    if (rc != 0)
        return rc;
    if (PQntuples(r) == 0)
        rc = BH_ENOTFOUND;
    else
        subscription_from_row(r, 0, out);
    PQclear(r);
    return rc;
}
