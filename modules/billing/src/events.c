/* The events billing publishes (docs/events.md), each on the transaction of
 * the change it describes, and the events it consumes to keep its usage
 * counters (task.*, member.*, org.created). Consumers are idempotent: the
 * event id goes into billing.inbox in the same transaction as the count. */
#include <string.h>

#include "internal.h"
#include "platform/db.h"
#include "platform/err.h"
#include "platform/events.h"
#include "platform/log.h"

static json_t *time_or_null(time_t t)
{
    if (t == 0)
        return json_null();
    char buf[32];
    billing__format_time(t, buf);
    return json_string(buf);
}

/* The same value under the name the HTTP API uses too (total_cents,
 * plan_id...), so a consumer may read either vocabulary. */
static void alias(json_t *d, const char *name, const char *api_name)
{
    json_t *v = json_object_get(d, name);
    if (v)
        json_object_set(d, api_name, v);
}

static int publish(struct bh_tx *tx, const char *type, const bh_uuid *org_id,
                   const bh_uuid *actor_id, const bh_uuid *aggregate_id, json_t *data)
{
    return bh_outbox_publish_take(tx, type, org_id->str,
                                  actor_id && !bh_uuid_is_nil(actor_id) ? actor_id->str : NULL,
                                  aggregate_id->str, data);
}

int billing__publish_subscription_changed(struct bh_tx *tx, const struct billing__subscription *s,
                                          const char *previous_plan,
                                          enum billing__status previous_status,
                                          const bh_uuid *actor_id, const char *reason)
{
    char end[32];
    billing__format_time(s->period_end, end);
    json_t *d =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:s}", "org_id", s->org_id.str,
                  "subscription_id", s->id.str, "plan", s->plan_id, "previous_plan", previous_plan,
                  "status", billing__status_name(s->status), "previous_status",
                  billing__status_name(previous_status), "reason", reason, "cancel_at_period_end",
                  s->cancel_at_period_end, "current_period_end", end);
    if (d) {
        json_object_set_new(d, "pending_plan",
                            s->pending_plan_id[0] ? json_string(s->pending_plan_id) : json_null());
        alias(d, "plan", "plan_id");
        alias(d, "previous_plan", "previous_plan_id");
    }
    /* Ordered per organization, like everything billing publishes. */
    return publish(tx, "subscription.changed", &s->org_id, actor_id, &s->org_id, d);
}

int billing__publish_invoice_paid(struct bh_tx *tx, const struct billing__invoice *inv,
                                  const bh_uuid *actor_id)
{
    json_t *d = json_pack("{s:s, s:s, s:I, s:I, s:s, s:s, s:s}", "org_id", inv->org_id.str,
                          "invoice_id", inv->id.str, "number", (json_int_t)inv->number, "amount",
                          (json_int_t)inv->total_cents, "currency", inv->currency, "plan",
                          inv->plan_id, "reason", inv->reason);
    alias(d, "amount", "total_cents");
    return publish(tx, "invoice.paid", &inv->org_id, actor_id, &inv->org_id, d);
}

int billing__publish_invoice_payment_failed(struct bh_tx *tx, const struct billing__invoice *inv,
                                            int attempt, time_t next_retry_at,
                                            enum billing__decline_reason reason,
                                            const bh_uuid *actor_id)
{
    const char *code =
        reason == BILLING__DECLINE_NONE ? "provider_unavailable" : billing__decline_name(reason);
    json_t *d =
        json_pack("{s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:i, s:s, s:o}", "org_id", inv->org_id.str,
                  "invoice_id", inv->id.str, "number", (json_int_t)inv->number, "amount",
                  (json_int_t)inv->total_cents, "currency", inv->currency, "plan", inv->plan_id,
                  "reason", inv->reason, "attempt", attempt, "failure_code", code, "next_retry_at",
                  time_or_null(next_retry_at));
    alias(d, "amount", "total_cents");
    return publish(tx, "invoice.payment_failed", &inv->org_id, actor_id, &inv->org_id, d);
}

/* ---------------------------------------------------------------- usage */

/* The organization an event is about: the envelope's org_id, else data's. */
static bool event_org(const struct bh_event *ev, bh_uuid *out)
{
    if (ev->org_id && bh_uuid_parse(ev->org_id, out))
        return true;
    const char *s = json_string_value(json_object_get(ev->data, "org_id"));
    return s && bh_uuid_parse(s, out);
}

static int count(const struct bh_event *ev, const char *consumer, int64_t d_tasks,
                 int64_t d_members)
{
    bh_uuid org;
    if (!event_org(ev, &org)) {
        bh_log_warn("%s: event %s has no organization: ignored", consumer, ev->id);
        return 0;
    }
    struct bh_tx *tx = NULL;
    int rc = bh_tx_begin(&tx);
    if (rc != 0)
        return rc;
    rc = bh_inbox_seen(tx, consumer, ev->id);
    if (rc == 1) /* delivered before: already counted */
        return bh_tx_commit(tx);
    if (rc == 0)
        rc = billing__repo_usage_add(tx, org.str, d_tasks, d_members);
    if (rc != 0) {
        bh_tx_rollback(tx);
        return rc;
    }
    return bh_tx_commit(tx);
}

/* count() for a batch of deliveries of one consumer, in one transaction:
 * the inbox records them all in one statement, and only the events it saw
 * for the first time are summed, per organization, into one upsert. A
 * redelivered event is counted zero times, as in count(). */
static int count_batch(const struct bh_event *evs, int n, const char *consumer, int64_t d_tasks,
                       int64_t d_members)
{
    const char *ids[BH_EVENT_BATCH_MAX];
    bool fresh[BH_EVENT_BATCH_MAX];
    bh_uuid org_of[BH_EVENT_BATCH_MAX], orgs[BH_EVENT_BATCH_MAX];
    const char *org_strs[BH_EVENT_BATCH_MAX];
    int64_t tasks[BH_EVENT_BATCH_MAX], members[BH_EVENT_BATCH_MAX];
    int m = 0, n_orgs = 0;

    if (n < 1 || n > BH_EVENT_BATCH_MAX)
        return BH_EINVAL;
    for (int i = 0; i < n; i++) {
        if (!event_org(&evs[i], &org_of[m])) {
            bh_log_warn("%s: event %s has no organization: ignored", consumer, evs[i].id);
            continue;
        }
        ids[m++] = evs[i].id;
    }
    if (m == 0)
        return 0;
    struct bh_tx *tx = NULL;
    int rc = bh_tx_begin(&tx);
    if (rc != 0)
        return rc;
    rc = bh_inbox_seen_batch(tx, consumer, m, ids, fresh);
    if (rc < 0) {
        bh_tx_rollback(tx);
        return rc;
    }
    for (int i = 0; i < m; i++) {
        int k = 0;
        if (!fresh[i])
            continue; /* delivered before: already counted */
        while (k < n_orgs && strcmp(orgs[k].str, org_of[i].str) != 0)
            k++;
        if (k == n_orgs) {
            orgs[k] = org_of[i];
            org_strs[k] = orgs[k].str;
            tasks[k] = members[k] = 0;
            n_orgs++;
        }
        tasks[k] += d_tasks;
        members[k] += d_members;
    }
    rc = n_orgs > 0 ? billing__repo_usage_add_many(tx, n_orgs, org_strs, tasks, members) : 0;
    if (rc != 0) {
        bh_tx_rollback(tx);
        return rc;
    }
    return bh_tx_commit(tx);
}

int billing__on_task_created(const struct bh_event *ev)
{
    return count(ev, "billing.usage.task_created", 1, 0);
}

int billing__on_task_deleted(const struct bh_event *ev)
{
    return count(ev, "billing.usage.task_deleted", -1, 0);
}

/* The owner joins with the organization (auth publishes org.created for
 * that, not member.added). */
int billing__on_org_created(const struct bh_event *ev)
{
    return count(ev, "billing.usage.org_created", 0, 1);
}

int billing__on_member_added(const struct bh_event *ev)
{
    return count(ev, "billing.usage.member_added", 0, 1);
}

int billing__on_member_removed(const struct bh_event *ev)
{
    return count(ev, "billing.usage.member_removed", 0, -1);
}

int billing__on_task_created_batch(const struct bh_event *evs, int n)
{
    return count_batch(evs, n, "billing.usage.task_created", 1, 0);
}

int billing__on_task_deleted_batch(const struct bh_event *evs, int n)
{
    return count_batch(evs, n, "billing.usage.task_deleted", -1, 0);
}

int billing__on_org_created_batch(const struct bh_event *evs, int n)
{
    return count_batch(evs, n, "billing.usage.org_created", 0, 1);
}

int billing__on_member_added_batch(const struct bh_event *evs, int n)
{
    return count_batch(evs, n, "billing.usage.member_added", 0, 1);
}

int billing__on_member_removed_batch(const struct bh_event *evs, int n)
{
    return count_batch(evs, n, "billing.usage.member_removed", 0, -1);
}
