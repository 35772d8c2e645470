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
    billing__set_str(p->id, sizeof p->id, bh_pg_str(r, row, 0));
    billing__set_str(p->name, sizeof p->name, bh_pg_str(r, row, 1));
    p->rank = (int)get_i64(r, row, 2, 0);
    p->price_cents = get_i64(r, row, 3, 0);
    billing__set_str(p->currency, sizeof p->currency, bh_pg_str(r, row, 4));
    billing__set_str(p->interval, sizeof p->interval, bh_pg_str(r, row, 5));
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
 * when the organization has no subscription row at all). While a downgrade
 * is scheduled, members count against the lower of the two plans' limits
 * (least() skips NULL, which is unlimited), so the organization fits the
 * plan it is moving to. */
static const char SQL_EFFECTIVE_LIMITS[] =
    "SELECT CASE WHEN s.status IN ('trialing', 'active', 'past_due')"
    "            THEN p.limit_tasks ELSE f.limit_tasks END,"
    "       CASE WHEN s.status IN ('trialing', 'active', 'past_due')"
    "            THEN least(p.limit_members, pp.limit_members) ELSE f.limit_members END"
    "  FROM billing.plans f"
    "  LEFT JOIN billing.subscriptions s ON s.org_id = $1"
    "  LEFT JOIN billing.plans p ON p.id = s.plan_id"
    "  LEFT JOIN billing.plans pp ON pp.id = s.pending_plan_id"
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

/* SQL_EFFECTIVE_LIMITS for many organizations ($1, a uuid[]), one row each
 * in the order given, with the terms: the row versions (xmin) of the
 * subscription and of the plans the limits come from. Any change to one of
 * those rows, a plan change above all, gives a new text. */
static const char SQL_EFFECTIVE_LIMITS_MANY[] =
    "SELECT CASE WHEN s.status IN ('trialing', 'active', 'past_due')"
    "            THEN p.limit_tasks ELSE f.limit_tasks END,"
    "       CASE WHEN s.status IN ('trialing', 'active', 'past_due')"
    "            THEN least(p.limit_members, pp.limit_members) ELSE f.limit_members END,"
    "       concat(s.xmin, '.', p.xmin, '.', pp.xmin, '.', f.xmin)"
    "  FROM unnest($1::uuid[]) WITH ORDINALITY AS o(org_id, n)"
    "  CROSS JOIN billing.plans f"
    "  LEFT JOIN billing.subscriptions s ON s.org_id = o.org_id"
    "  LEFT JOIN billing.plans p ON p.id = s.plan_id"
    "  LEFT JOIN billing.plans pp ON pp.id = s.pending_plan_id"
    " WHERE f.id = 'free'"
    " ORDER BY o.n";

int billing__repo_effective_limits_many(struct bh_tx *tx, const bh_uuid *orgs, int n,
                                        int64_t *tasks, int64_t *members,
                                        char (*terms)[BILLING_TERMS_MAX])
{
    /* A uuid[] literal: {uuid,uuid,...}; uuids need no quoting. */
    char *list = malloc((size_t)n * ((BH_UUID_TEXT_SIZE - 1) + 1) + 3);
    if (!list)
        return BH_ENOMEM;
    size_t at = 0;
    list[at++] = '{';
    for (int i = 0; i < n; i++) {
        if (i > 0)
            list[at++] = ',';
        memcpy(list + at, orgs[i].str, (BH_UUID_TEXT_SIZE - 1));
        at += (BH_UUID_TEXT_SIZE - 1);
    }
    list[at++] = '}';
    list[at] = '\0';
    PGresult *r = NULL;
    const char *params[] = {list};
    int rc = bh_tx_query(tx, &r, SQL_EFFECTIVE_LIMITS_MANY, 1, params);
    free(list);
    if (rc != 0)
        return rc;
    if (PQntuples(r) != n) {
        rc = BH_EINTERNAL; /* the free plan is seeded by the first migration */
    } else {
        for (int i = 0; i < n; i++) {
            tasks[i] = get_i64(r, i, 0, BILLING__UNLIMITED);
            members[i] = get_i64(r, i, 1, BILLING__UNLIMITED);
            snprintf(terms[i], BILLING_TERMS_MAX, "%s", bh_pg_str(r, i, 2));
        }
    }
    PQclear(r);
    return rc;
}

/* ----------------------------------------------------------- subscriptions */

#define SUBSCRIPTION_COLUMNS                                                                       \
    "id, org_id, plan_id, status, extract(epoch FROM current_period_start)::bigint,"               \
    " extract(epoch FROM current_period_end)::bigint, cancel_at_period_end,"                       \
    " coalesce(pending_plan_id, ''), dunning_attempts,"                                            \
    " coalesce(extract(epoch FROM next_retry_at)::bigint, 0),"                                     \
    " extract(epoch FROM status_changed_at)::bigint"

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
    billing__set_str(s->plan_id, sizeof s->plan_id, bh_pg_str(r, row, 2));
    if (!billing__status_parse(bh_pg_str(r, row, 3), &s->status))
        s->status = BILLING__CANCELED; /* the table's CHECK allows no other */
    s->period_start = (time_t)get_i64(r, row, 4, 0);
    s->period_end = (time_t)get_i64(r, row, 5, 0);
    s->cancel_at_period_end = strcmp(bh_pg_str(r, row, 6), "t") == 0;
    billing__set_str(s->pending_plan_id, sizeof s->pending_plan_id, bh_pg_str(r, row, 7));
    s->dunning_attempts = (int)get_i64(r, row, 8, 0);
    s->next_retry_at = (time_t)get_i64(r, row, 9, 0);
    s->status_changed_at = (time_t)get_i64(r, row, 10, 0);
}

int billing__repo_subscription_insert(struct bh_tx *tx, const struct billing__subscription *s)
{
    char start[24], end[24];
    const char *params[] = {s->id.str,
                            s->org_id.str,
                            s->plan_id,
                            billing__status_name(s->status),
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

static const char SQL_UPDATE_SUBSCRIPTION[] =
    "UPDATE billing.subscriptions"
    "   SET plan_id = $2, status = $3,"
    "       current_period_start = to_timestamp($4), current_period_end = to_timestamp($5),"
    "       cancel_at_period_end = $6, pending_plan_id = nullif($7, ''),"
    "       dunning_attempts = $8,"
    "       next_retry_at = CASE WHEN $9::bigint = 0 THEN NULL ELSE to_timestamp($9::bigint) END,"
    "       status_changed_at = CASE WHEN status <> $3 THEN to_timestamp($10)"
    "                                ELSE status_changed_at END,"
    "       canceled_at = CASE WHEN $3 <> 'canceled' THEN NULL"
    "                          WHEN status <> 'canceled' THEN to_timestamp($10)"
    "                          ELSE canceled_at END,"
    "       updated_at = now()"
    " WHERE id = $1";

static const char SQL_SUBSCRIPTIONS_DUE[] =
    "SELECT org_id FROM billing.subscriptions"
    " WHERE status <> 'canceled'"
    "   AND (current_period_end <= to_timestamp($1) OR next_retry_at <= to_timestamp($1))"
    " ORDER BY current_period_end"
    " LIMIT $2";

int billing__repo_subscription_update(struct bh_tx *tx, const struct billing__subscription *s,
                                      time_t now)
{
    char start[24], end[24], retry[24], at[24], dunning[16];
    snprintf(dunning, sizeof dunning, "%d", s->dunning_attempts);
    const char *params[] = {s->id.str,
                            s->plan_id,
                            billing__status_name(s->status),
                            epoch_param(start, s->period_start),
                            epoch_param(end, s->period_end),
                            s->cancel_at_period_end ? "true" : "false",
                            s->pending_plan_id,
                            dunning,
                            epoch_param(retry, s->next_retry_at),
                            epoch_param(at, now)};
    return bh_tx_query(tx, NULL, SQL_UPDATE_SUBSCRIPTION, 10, params);
}

int billing__repo_subscriptions_due(struct bh_tx *tx, time_t now, int max, bh_uuid *out, int *n)
{
    char at[24], limit[16];
    snprintf(limit, sizeof limit, "%d", max);
    const char *params[] = {epoch_param(at, now), limit};
    PGresult *r = NULL;
    int rc = bh_tx_query(tx, &r, SQL_SUBSCRIPTIONS_DUE, 2, params);
    if (rc != 0)
        return rc;
    *n = 0;
    for (int i = 0; i < PQntuples(r) && i < max; i++)
        if (bh_uuid_parse(bh_pg_str(r, i, 0), &out[*n]))
            (*n)++;
    PQclear(r);
    return 0;
}

/* --------------------------------------------------------- payment methods */

static const char SQL_PUT_PAYMENT_METHOD[] =
    "INSERT INTO billing.payment_methods (org_id, provider, provider_ref, brand, last4)"
    " VALUES ($1, $2, $3, $4, $5)"
    " ON CONFLICT (org_id) DO UPDATE"
    "   SET provider = EXCLUDED.provider, provider_ref = EXCLUDED.provider_ref,"
    "       brand = EXCLUDED.brand, last4 = EXCLUDED.last4, updated_at = now()";

static const char SQL_GET_PAYMENT_METHOD[] =
    "SELECT provider_ref, brand, last4 FROM billing.payment_methods WHERE org_id = $1";

int billing__repo_payment_method_put(struct bh_tx *tx, const bh_uuid *org_id, const char *provider,
                                     const struct billing__card *card)
{
    const char *params[] = {org_id->str, provider, card->ref, card->brand, card->last4};
    return bh_tx_query(tx, NULL, SQL_PUT_PAYMENT_METHOD, 5, params);
}

int billing__repo_payment_method_get(struct bh_tx *tx, const bh_uuid *org_id,
                                     struct billing__card *out)
{
    const char *params[] = {org_id->str};
    PGresult *r = NULL;
    int rc = bh_tx_query(tx, &r, SQL_GET_PAYMENT_METHOD, 1, params);
    if (rc != 0)
        return rc;
    if (PQntuples(r) == 0) {
        rc = BH_ENOTFOUND;
    } else {
        billing__set_str(out->ref, sizeof out->ref, bh_pg_str(r, 0, 0));
        billing__set_str(out->brand, sizeof out->brand, bh_pg_str(r, 0, 1));
        billing__set_str(out->last4, sizeof out->last4, bh_pg_str(r, 0, 2));
    }
    PQclear(r);
    return rc;
}

/* ---------------------------------------------------------------- invoices */

/* The counter row stays locked until the transaction ends, so numbers are
 * handed out one transaction at a time, and a rollback gives its number
 * back: no gaps and no duplicates under concurrency. */
static const char SQL_NEXT_INVOICE_NUMBER[] =
    "INSERT INTO billing.invoice_counters (org_id, last_number) VALUES ($1, 1)"
    " ON CONFLICT (org_id) DO UPDATE SET last_number = billing.invoice_counters.last_number + 1"
    " RETURNING last_number";

static const char SQL_INSERT_INVOICE[] =
    "INSERT INTO billing.invoices (id, org_id, subscription_id, number, reason, plan_id,"
    "                              from_plan_id, currency, total_cents, period_start,"
    "                              period_end, created_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, nullif($7, ''), $8, $9, to_timestamp($10),"
    "         to_timestamp($11), to_timestamp($12))";

static const char SQL_INSERT_INVOICE_LINE[] =
    "INSERT INTO billing.invoice_lines (invoice_id, position, kind, description, plan_id,"
    "                                   amount_cents, period_start, period_end)"
    " VALUES ($1, $2, $3, $4, $5, $6, to_timestamp($7), to_timestamp($8))";

static const char SQL_FINALIZE_INVOICE[] =
    "UPDATE billing.invoices SET status = 'open', finalized_at = to_timestamp($2)"
    " WHERE id = $1 AND status = 'draft'";

#define UTC_TEXT(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

#define INVOICE_COLUMNS                                                                            \
    "i.id, i.org_id, i.subscription_id, i.number, i.status, i.reason, i.plan_id,"                  \
    " coalesce(i.from_plan_id, ''), i.currency, i.total_cents,"                                    \
    " extract(epoch FROM i.period_start)::bigint, extract(epoch FROM i.period_end)::bigint,"       \
    " extract(epoch FROM i.created_at)::bigint, i.attempt_count"

#define INVOICE_LINES_JSON                                                                         \
    "(SELECT coalesce(json_agg(json_build_object("                                                 \
    "    'kind', l.kind, 'description', l.description, 'plan_id', l.plan_id,"                      \
    "    'amount_cents', l.amount_cents, 'period_start', " UTC_TEXT(                               \
        "l.period_start") ","                                                                      \
                          "    'period_end', " UTC_TEXT(                                           \
                              "l.period_end") ") ORDER BY l.position), '[]'::json)"                \
                                              "   FROM billing.invoice_lines l WHERE "             \
                                              "l.invoice_id = i.id)::text"

static const char SQL_GET_INVOICE[] =
    "SELECT " INVOICE_COLUMNS ", " INVOICE_LINES_JSON " FROM billing.invoices i"
    " WHERE i.id = $1 AND ($2::uuid IS NULL OR i.org_id = $2::uuid)";

static const char SQL_GET_INVOICE_FOR_UPDATE[] =
    "SELECT " INVOICE_COLUMNS ", NULL FROM billing.invoices i"
    " WHERE i.id = $1 AND ($2::uuid IS NULL OR i.org_id = $2::uuid) FOR UPDATE";

static const char SQL_LIST_INVOICES[] =
    "SELECT " INVOICE_COLUMNS ", " INVOICE_LINES_JSON " FROM billing.invoices i"
    " WHERE i.org_id = $1 AND i.number < $2"
    " ORDER BY i.number DESC LIMIT $3";

static const char SQL_OPEN_RENEWAL_INVOICE[] =
    "SELECT " INVOICE_COLUMNS ", NULL FROM billing.invoices i"
    " WHERE i.subscription_id = $1 AND i.status = 'open' AND i.reason = 'renewal'"
    " ORDER BY i.number DESC LIMIT 1 FOR UPDATE";

static const char SQL_SET_INVOICE_STATUS[] =
    "UPDATE billing.invoices"
    "   SET status = $2,"
    "       paid_at = CASE WHEN $2 = 'paid' THEN to_timestamp($3) ELSE paid_at END,"
    "       voided_at = CASE WHEN $2 = 'void' THEN to_timestamp($3) ELSE voided_at END"
    " WHERE id = $1";

static const char SQL_COUNT_INVOICE_ATTEMPT[] =
    "UPDATE billing.invoices SET attempt_count = attempt_count + 1 WHERE id = $1";

static const char SQL_VOID_OPEN_PLAN_CHANGES[] =
    "UPDATE billing.invoices SET status = 'void', voided_at = to_timestamp($2)"
    " WHERE subscription_id = $1 AND status = 'open' AND reason = 'plan_change'";

static void invoice_from_row(const PGresult *r, int row, struct bh_arena *a,
                             struct billing__invoice *inv)
{
    memset(inv, 0, sizeof *inv);
    bh_uuid_parse(bh_pg_str(r, row, 0), &inv->id);
    bh_uuid_parse(bh_pg_str(r, row, 1), &inv->org_id);
    bh_uuid_parse(bh_pg_str(r, row, 2), &inv->subscription_id);
    inv->number = get_i64(r, row, 3, 0);
    billing__set_str(inv->status, sizeof inv->status, bh_pg_str(r, row, 4));
    billing__set_str(inv->reason, sizeof inv->reason, bh_pg_str(r, row, 5));
    billing__set_str(inv->plan_id, sizeof inv->plan_id, bh_pg_str(r, row, 6));
    billing__set_str(inv->from_plan_id, sizeof inv->from_plan_id, bh_pg_str(r, row, 7));
    billing__set_str(inv->currency, sizeof inv->currency, bh_pg_str(r, row, 8));
    inv->total_cents = get_i64(r, row, 9, 0);
    inv->period_start = (time_t)get_i64(r, row, 10, 0);
    inv->period_end = (time_t)get_i64(r, row, 11, 0);
    inv->created_at = (time_t)get_i64(r, row, 12, 0);
    inv->attempt_count = (int)get_i64(r, row, 13, 0);
    if (a && !bh_pg_null(r, row, 14))
        inv->lines_json = bh_arena_strdup(a, bh_pg_str(r, row, 14));
}

int billing__repo_invoice_create(struct bh_tx *tx, struct billing__invoice *inv, time_t now)
{
    const char *p1[] = {inv->org_id.str};
    PGresult *r = NULL;
    int rc = bh_tx_query(tx, &r, SQL_NEXT_INVOICE_NUMBER, 1, p1);
    if (rc != 0)
        return rc;
    inv->number = get_i64(r, 0, 0, 0);
    PQclear(r);

    char number[24], total[24], start[24], end[24], created[24];
    snprintf(number, sizeof number, "%" PRId64, inv->number);
    snprintf(total, sizeof total, "%" PRId64, inv->total_cents);
    const char *p2[] = {inv->id.str,
                        inv->org_id.str,
                        inv->subscription_id.str,
                        number,
                        inv->reason,
                        inv->plan_id,
                        inv->from_plan_id,
                        inv->currency,
                        total,
                        epoch_param(start, inv->period_start),
                        epoch_param(end, inv->period_end),
                        epoch_param(created, now)};
    rc = bh_tx_query(tx, NULL, SQL_INSERT_INVOICE, 12, p2);
    for (int i = 0; rc == 0 && i < inv->n_lines; i++) {
        const struct billing__invoice_line *l = &inv->lines[i];
        char pos[16], amount[24], ls[24], le[24];
        snprintf(pos, sizeof pos, "%d", i + 1);
        snprintf(amount, sizeof amount, "%" PRId64, l->amount_cents);
        const char *p3[] = {inv->id.str,
                            pos,
                            l->kind,
                            l->description,
                            l->plan_id,
                            amount,
                            epoch_param(ls, l->period_start),
                            epoch_param(le, l->period_end)};
        rc = bh_tx_query(tx, NULL, SQL_INSERT_INVOICE_LINE, 8, p3);
    }
    if (rc == 0) {
        const char *p4[] = {inv->id.str, created};
        rc = bh_tx_query(tx, NULL, SQL_FINALIZE_INVOICE, 2, p4);
    }
    if (rc == 0) {
        inv->created_at = now;
        billing__set_str(inv->status, sizeof inv->status, "open");
    }
    return rc;
}

int billing__repo_invoice_get(struct bh_tx *tx, const bh_uuid *org_id, const bh_uuid *id,
                              bool for_update, struct bh_arena *a, struct billing__invoice *out)
{
    const char *params[] = {id->str, org_id ? org_id->str : NULL};
    PGresult *r = NULL;
    int rc =
        bh_tx_query(tx, &r, for_update ? SQL_GET_INVOICE_FOR_UPDATE : SQL_GET_INVOICE, 2, params);
    if (rc != 0)
        return rc;
    if (PQntuples(r) == 0)
        rc = BH_ENOTFOUND;
    else
        invoice_from_row(r, 0, a, out);
    PQclear(r);
    return rc;
}

int billing__repo_invoices_list(struct bh_tx *tx, const bh_uuid *org_id, int64_t before_number,
                                int limit, struct bh_arena *a, struct billing__invoice *out, int *n)
{
    char before[24], lim[16];
    snprintf(before, sizeof before, "%" PRId64, before_number > 0 ? before_number : INT64_MAX);
    snprintf(lim, sizeof lim, "%d", limit);
    const char *params[] = {org_id->str, before, lim};
    PGresult *r = NULL;
    int rc = bh_tx_query(tx, &r, SQL_LIST_INVOICES, 3, params);
    if (rc != 0)
        return rc;
    *n = 0;
    for (int i = 0; i < PQntuples(r) && i < limit; i++)
        invoice_from_row(r, i, a, &out[(*n)++]);
    PQclear(r);
    return 0;
}

int billing__repo_invoice_open_renewal(struct bh_tx *tx, const bh_uuid *subscription_id,
                                       struct billing__invoice *out)
{
    const char *params[] = {subscription_id->str};
    PGresult *r = NULL;
    int rc = bh_tx_query(tx, &r, SQL_OPEN_RENEWAL_INVOICE, 1, params);
    if (rc != 0)
        return rc;
    if (PQntuples(r) == 0)
        rc = BH_ENOTFOUND;
    else
        invoice_from_row(r, 0, NULL, out);
    PQclear(r);
    return rc;
}

int billing__repo_invoice_set_status(struct bh_tx *tx, const bh_uuid *id, const char *status,
                                     time_t now)
{
    char at[24];
    const char *params[] = {id->str, status, epoch_param(at, now)};
    return bh_tx_query(tx, NULL, SQL_SET_INVOICE_STATUS, 3, params);
}

int billing__repo_invoice_count_attempt(struct bh_tx *tx, const bh_uuid *id)
{
    const char *params[] = {id->str};
    return bh_tx_query(tx, NULL, SQL_COUNT_INVOICE_ATTEMPT, 1, params);
}

int billing__repo_invoices_void_open_plan_changes(struct bh_tx *tx, const bh_uuid *subscription_id,
                                                  time_t now)
{
    char at[24];
    const char *params[] = {subscription_id->str, epoch_param(at, now)};
    return bh_tx_query(tx, NULL, SQL_VOID_OPEN_PLAN_CHANGES, 2, params);
}

/* -------------------------------------------------------- payment attempts */

/* A charge pending for ten minutes lost its caller (the process stopped
 * during the call): its outcome is unknown, and the reconciler settles it. */
static const char SQL_STALE_ATTEMPTS_UNKNOWN[] =
    "UPDATE billing.payment_attempts SET outcome = 'unknown'"
    " WHERE org_id = $1 AND outcome = 'pending' AND created_at < now() - interval '10 minutes'";

static const char SQL_BEGIN_ATTEMPT[] =
    "INSERT INTO billing.payment_attempts (id, invoice_id, org_id, amount_cents, source, outcome)"
    " VALUES ($1, $2, $3, $4, 'charge', 'pending')"
    " ON CONFLICT (org_id) WHERE outcome IN ('pending', 'unknown') DO NOTHING"
    " RETURNING id";

/* Only an attempt still in flight moves: whoever settles it first wins, a
 * second settler finds no row. */
static const char SQL_FINISH_ATTEMPT[] =
    "UPDATE billing.payment_attempts"
    "   SET outcome = $2, failure_code = nullif($3, ''), provider_ref = nullif($4, ''),"
    "       settled_by = CASE WHEN $2 = 'unknown' THEN NULL ELSE $5 END,"
    "       finished_at = CASE WHEN $2 = 'unknown' THEN NULL ELSE now() END"
    " WHERE id = $1 AND outcome IN ('pending', 'unknown')"
    " RETURNING id";

static const char SQL_RECORD_ATTEMPT[] =
    "INSERT INTO billing.payment_attempts (id, invoice_id, org_id, amount_cents, source, outcome,"
    "                                      failure_code, settled_by, finished_at)"
    " VALUES ($1, $2, $3, $4, 'webhook', $5, nullif($6, ''), 'webhook', now())";

#define ATTEMPT_COLUMNS "id, invoice_id, org_id, amount_cents, outcome IN ('pending', 'unknown')"

static const char SQL_GET_ATTEMPT[] =
    "SELECT " ATTEMPT_COLUMNS " FROM billing.payment_attempts WHERE id = $1";

static const char SQL_GET_ATTEMPT_FOR_UPDATE[] =
    "SELECT " ATTEMPT_COLUMNS " FROM billing.payment_attempts WHERE id = $1 FOR UPDATE";

static const char SQL_INVOICE_ATTEMPT_IN_FLIGHT[] =
    "SELECT " ATTEMPT_COLUMNS " FROM billing.payment_attempts"
    " WHERE invoice_id = $1 AND outcome IN ('pending', 'unknown') FOR UPDATE";

static const char SQL_ATTEMPTS_UNSETTLED[] =
    "SELECT id FROM billing.payment_attempts"
    " WHERE (outcome = 'unknown' AND created_at < now() - make_interval(secs => $1::bigint))"
    "    OR (outcome = 'pending' AND created_at < now() - interval '10 minutes')"
    " ORDER BY created_at LIMIT $2";

static const char *outcome_name(enum billing__outcome o)
{
    switch (o) {
    case BILLING__OUTCOME_PAID: return "succeeded";
    case BILLING__OUTCOME_DECLINED: return "declined";
    case BILLING__OUTCOME_FAILED: return "error";
    case BILLING__OUTCOME_UNKNOWN: break;
    }
    return "unknown";
}

int billing__repo_attempt_begin(struct bh_tx *tx, const bh_uuid *attempt_id,
                                const bh_uuid *invoice_id, const bh_uuid *org_id,
                                int64_t amount_cents)
{
    const char *p1[] = {org_id->str};
    int rc = bh_tx_query(tx, NULL, SQL_STALE_ATTEMPTS_UNKNOWN, 1, p1);
    if (rc != 0)
        return rc;
    char amount[24];
    snprintf(amount, sizeof amount, "%" PRId64, amount_cents);
    const char *p2[] = {attempt_id->str, invoice_id->str, org_id->str, amount};
    PGresult *r = NULL;
    rc = bh_tx_query(tx, &r, SQL_BEGIN_ATTEMPT, 4, p2);
    if (rc != 0)
        return rc;
    if (PQntuples(r) == 0)
        rc = BH_ECONFLICT;
    PQclear(r);
    return rc;
}

int billing__repo_attempt_finish(struct bh_tx *tx, const bh_uuid *attempt_id,
                                 enum billing__outcome outcome, const char *failure_code,
                                 const char *provider_ref, const char *settled_by)
{
    const char *params[] = {attempt_id->str, outcome_name(outcome),
                            failure_code ? failure_code : "", provider_ref ? provider_ref : "",
                            settled_by};
    PGresult *r = NULL;
    int rc = bh_tx_query(tx, &r, SQL_FINISH_ATTEMPT, 5, params);
    if (rc != 0)
        return rc;
    if (PQntuples(r) == 0)
        rc = 1; /* settled by someone else first */
    PQclear(r);
    return rc;
}

int billing__repo_attempt_record(struct bh_tx *tx, const bh_uuid *invoice_id, const bh_uuid *org_id,
                                 int64_t amount_cents, enum billing__outcome outcome,
                                 const char *failure_code)
{
    bh_uuid id = bh_uuid_v7();
    char amount[24];
    snprintf(amount, sizeof amount, "%" PRId64, amount_cents);
    const char *params[] = {id.str, invoice_id->str,       org_id->str,
                            amount, outcome_name(outcome), failure_code ? failure_code : ""};
    return bh_tx_query(tx, NULL, SQL_RECORD_ATTEMPT, 6, params);
}

static int attempt_query(struct bh_tx *tx, const char *sql, const bh_uuid *id,
                         struct billing__attempt *out)
{
    PGresult *r = NULL;
    const char *params[] = {id->str};
    int rc = bh_tx_query(tx, &r, sql, 1, params);
    if (rc != 0)
        return rc;
    if (PQntuples(r) == 0) {
        rc = BH_ENOTFOUND;
    } else {
        bh_uuid_parse(bh_pg_str(r, 0, 0), &out->id);
        bh_uuid_parse(bh_pg_str(r, 0, 1), &out->invoice_id);
        bh_uuid_parse(bh_pg_str(r, 0, 2), &out->org_id);
        out->amount_cents = get_i64(r, 0, 3, 0);
        out->in_flight = strcmp(bh_pg_str(r, 0, 4), "t") == 0;
    }
    PQclear(r);
    return rc;
}

int billing__repo_attempt_get(struct bh_tx *tx, const bh_uuid *id, bool for_update,
                              struct billing__attempt *out)
{
    return attempt_query(tx, for_update ? SQL_GET_ATTEMPT_FOR_UPDATE : SQL_GET_ATTEMPT, id, out);
}

int billing__repo_attempt_in_flight(struct bh_tx *tx, const bh_uuid *invoice_id,
                                    struct billing__attempt *out)
{
    return attempt_query(tx, SQL_INVOICE_ATTEMPT_IN_FLIGHT, invoice_id, out);
}

int billing__repo_attempts_unsettled(struct bh_tx *tx, long older_than_s, int max, bh_uuid *out,
                                     int *n)
{
    char secs[24], limit[16];
    snprintf(secs, sizeof secs, "%ld", older_than_s);
    snprintf(limit, sizeof limit, "%d", max);
    const char *params[] = {secs, limit};
    PGresult *r = NULL;
    *n = 0;
    int rc = bh_tx_query(tx, &r, SQL_ATTEMPTS_UNSETTLED, 2, params);
    if (rc != 0)
        return rc;
    for (int i = 0; i < PQntuples(r) && i < max; i++)
        if (bh_uuid_parse(bh_pg_str(r, i, 0), &out[*n]))
            (*n)++;
    PQclear(r);
    return 0;
}

/* ------------------------------------------------------------------- usage */

static const char SQL_USAGE_ADD[] =
    "INSERT INTO billing.usage (org_id, tasks, members)"
    " VALUES ($1, GREATEST($2::bigint, 0), GREATEST($3::bigint, 0))"
    " ON CONFLICT (org_id) DO UPDATE"
    "   SET tasks = GREATEST(billing.usage.tasks + $2::bigint, 0),"
    "       members = GREATEST(billing.usage.members + $3::bigint, 0),"
    "       updated_at = now()";

static const char SQL_USAGE_GET[] = "SELECT tasks, members FROM billing.usage WHERE org_id = $1";

int billing__repo_usage_add(struct bh_tx *tx, const char *org_id, int64_t d_tasks,
                            int64_t d_members)
{
    char t[24], m[24];
    snprintf(t, sizeof t, "%" PRId64, d_tasks);
    snprintf(m, sizeof m, "%" PRId64, d_members);
    const char *params[] = {org_id, t, m};
    return bh_tx_query(tx, NULL, SQL_USAGE_ADD, 3, params);
}

int billing__repo_usage_get(struct bh_tx *tx, const bh_uuid *org_id, int64_t *tasks,
                            int64_t *members)
{
    const char *params[] = {org_id->str};
    PGresult *r = NULL;
    int rc = bh_tx_query(tx, &r, SQL_USAGE_GET, 1, params);
    if (rc != 0)
        return rc;
    *tasks = PQntuples(r) ? get_i64(r, 0, 0, 0) : 0;
    *members = PQntuples(r) ? get_i64(r, 0, 1, 0) : 0;
    PQclear(r);
    return 0;
}

/* ---------------------------------------------------------------- webhooks */

static const char SQL_WEBHOOK_SEEN[] =
    "INSERT INTO billing.webhook_events (provider, event_id, type, occurred_at)"
    " VALUES ($1, $2, $3, to_timestamp($4))"
    " ON CONFLICT (provider, event_id) DO NOTHING"
    " RETURNING 1";

int billing__repo_webhook_seen(struct bh_tx *tx, const char *provider,
                               const struct billing__payment_event *ev)
{
    char at[24];
    const char *params[] = {provider, ev->id, ev->type, epoch_param(at, ev->occurred_at)};
    PGresult *r = NULL;
    int rc = bh_tx_query(tx, &r, SQL_WEBHOOK_SEEN, 4, params);
    if (rc != 0)
        return rc;
    rc = PQntuples(r) == 0 ? 1 : 0;
    PQclear(r);
    return rc;
}

/* -------------------------------------------------------- idempotency keys */

/* Claims (org_id, key). Takes over a row that expired (24 h) or whose first
 * request was abandoned in flight (its lease ran out) with the same body;
 * anything else leaves the existing row alone and returns no row. */
static const char SQL_IDEM_CLAIM[] =
    "INSERT INTO billing.idempotency_keys (org_id, key, request_hash, created_at, locked_until)"
    " VALUES ($1, $2, $3, to_timestamp($4), to_timestamp($4) + interval '120 seconds')"
    " ON CONFLICT (org_id, key) DO UPDATE"
    "   SET request_hash = EXCLUDED.request_hash, status = NULL, response_type = NULL,"
    "       response_body = NULL, created_at = EXCLUDED.created_at,"
    "       locked_until = EXCLUDED.locked_until, completed_at = NULL"
    " WHERE billing.idempotency_keys.created_at <= EXCLUDED.created_at - interval '24 hours'"
    "    OR (billing.idempotency_keys.status IS NULL"
    "        AND billing.idempotency_keys.locked_until < EXCLUDED.created_at"
    "        AND billing.idempotency_keys.request_hash = EXCLUDED.request_hash)"
    " RETURNING 1";

static const char SQL_IDEM_GET[] =
    "SELECT request_hash, coalesce(status, 0), coalesce(response_type, ''),"
    "       coalesce(response_body, '')"
    "  FROM billing.idempotency_keys WHERE org_id = $1 AND key = $2";

static const char SQL_IDEM_STORE[] =
    "UPDATE billing.idempotency_keys"
    "   SET status = $4, response_type = $5, response_body = $6, completed_at = now()"
    " WHERE org_id = $1 AND key = $2 AND request_hash = $3 AND status IS NULL";

static const char SQL_IDEM_RELEASE[] =
    "DELETE FROM billing.idempotency_keys"
    " WHERE org_id = $1 AND key = $2 AND request_hash = $3 AND status IS NULL";

static const char SQL_IDEM_PURGE[] = "DELETE FROM billing.idempotency_keys WHERE created_at < "
                                     "to_timestamp($1) - interval '24 hours'";

int billing__repo_idem_claim(const struct billing__idem *idem, time_t now, bool *claimed)
{
    char at[24];
    const char *params[] = {idem->org_id.str, idem->key, idem->hash, epoch_param(at, now)};
    PGresult *r = NULL;
    int rc = bh_db_query(&r, SQL_IDEM_CLAIM, 4, params);
    if (rc != 0)
        return rc;
    *claimed = PQntuples(r) == 1;
    PQclear(r);
    return 0;
}

int billing__repo_idem_get(const struct billing__idem *idem, struct bh_arena *a,
                           struct billing__idem_stored *out)
{
    const char *params[] = {idem->org_id.str, idem->key};
    PGresult *r = NULL;
    int rc = bh_db_query(&r, SQL_IDEM_GET, 2, params);
    if (rc != 0)
        return rc;
    if (PQntuples(r) == 0) {
        rc = BH_ENOTFOUND;
    } else {
        billing__set_str(out->hash, sizeof out->hash, bh_pg_str(r, 0, 0));
        out->status = (int)get_i64(r, 0, 1, 0);
        billing__set_str(out->type, sizeof out->type, bh_pg_str(r, 0, 2));
        out->body = bh_arena_strdup(a, bh_pg_str(r, 0, 3));
        if (!out->body)
            rc = BH_ENOMEM;
    }
    PQclear(r);
    return rc;
}

int billing__repo_idem_store(const struct billing__idem *idem, int status, const char *type,
                             const char *body)
{
    char st[16];
    snprintf(st, sizeof st, "%d", status);
    const char *params[] = {idem->org_id.str, idem->key, idem->hash, st, type, body};
    return bh_db_query(NULL, SQL_IDEM_STORE, 6, params);
}

int billing__repo_idem_release(const struct billing__idem *idem)
{
    const char *params[] = {idem->org_id.str, idem->key, idem->hash};
    return bh_db_query(NULL, SQL_IDEM_RELEASE, 3, params);
}

int billing__repo_idem_purge(time_t now, int *n)
{
    char at[24];
    const char *params[] = {epoch_param(at, now)};
    PGresult *r = NULL;
    int rc = bh_db_query(&r, SQL_IDEM_PURGE, 1, params);
    if (rc != 0)
        return rc;
    *n = atoi(PQcmdTuples(r));
    PQclear(r);
    return 0;
}
