/* The JSON shapes billing answers with (docs/openapi.yaml, billing schemas).
 * One place per shape, so every route renders a plan, a subscription or an
 * invoice the same way. Money is integer cents; times RFC 3339 UTC. */
#include <string.h>

#include "internal.h"

static json_t *limit_json(int64_t limit)
{
    return limit == BILLING__UNLIMITED ? json_null() : json_integer(limit);
}

json_t *billing__plan_json(const struct billing__plan *p)
{
    return json_pack("{s:s, s:s, s:I, s:s, s:s, s:i, s:{s:o, s:o}}", "id", p->id, "name", p->name,
                     "price_cents", (json_int_t)p->price_cents, "currency", p->currency, "interval",
                     p->interval, "trial_days", p->trial_days, "limits", "tasks",
                     limit_json(p->limit_tasks), "members", limit_json(p->limit_members));
}

json_t *billing__subscription_json(const struct billing__subscription *s)
{
    char start[32], end[32];
    billing__format_time(s->period_start, start);
    billing__format_time(s->period_end, end);
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:b}", "plan_id", s->plan_id, "status",
                  billing__status_name(s->status), "current_period_start", start,
                  "current_period_end", end, "cancel_at_period_end", s->cancel_at_period_end);
    if (!o)
        return NULL;
    json_object_set_new(o, "pending_plan_id",
                        s->pending_plan_id[0] ? json_string(s->pending_plan_id) : json_null());
    if (s->next_retry_at) {
        char retry[32];
        billing__format_time(s->next_retry_at, retry);
        json_object_set_new(o, "next_payment_retry_at", json_string(retry));
    } else {
        json_object_set_new(o, "next_payment_retry_at", json_null());
    }
    return o;
}

static json_t *lines_json(const struct billing__invoice *inv)
{
    if (inv->lines_json) {
        json_t *lines = json_loads(inv->lines_json, 0, NULL);
        if (json_is_array(lines))
            return lines;
        json_decref(lines);
    }
    json_t *lines = json_array();
    for (int i = 0; lines && i < inv->n_lines; i++) {
        const struct billing__invoice_line *l = &inv->lines[i];
        char start[32], end[32];
        billing__format_time(l->period_start, start);
        billing__format_time(l->period_end, end);
        json_array_append_new(lines, json_pack("{s:s, s:s, s:s, s:I, s:s, s:s}", "kind", l->kind,
                                               "description", l->description, "plan_id", l->plan_id,
                                               "amount_cents", (json_int_t)l->amount_cents,
                                               "period_start", start, "period_end", end));
    }
    return lines;
}

json_t *billing__invoice_json(const struct billing__invoice *inv)
{
    char created[32], start[32], end[32];
    billing__format_time(inv->created_at, created);
    billing__format_time(inv->period_start, start);
    billing__format_time(inv->period_end, end);
    return json_pack("{s:s, s:I, s:s, s:s, s:s, s:o, s:I, s:s, s:o, s:i, s:s, s:s, s:s}", "id",
                     inv->id.str, "number", (json_int_t)inv->number, "status", inv->status,
                     "reason", inv->reason, "plan_id", inv->plan_id, "from_plan_id",
                     inv->from_plan_id[0] ? json_string(inv->from_plan_id) : json_null(),
                     "total_cents", (json_int_t)inv->total_cents, "currency", inv->currency,
                     "lines", lines_json(inv), "attempt_count", inv->attempt_count, "period_start",
                     start, "period_end", end, "created_at", created);
}
