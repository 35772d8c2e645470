/* The notification pipeline: from a handled event to inbox rows, email
 * deliveries and live pushes, idempotently; and the email job that sends a
 * delivery. What is stored commits with the event's inbox mark; what
 * happens outside Postgres (the push, the job) happens after the commit
 * and may happen twice, never zero times for an email. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "platform/config.h"
#include "platform/db.h"
#include "platform/err.h"
#include "platform/log.h"

#define SEND_EMAIL_JOB "notifications.send_email"

json_t *notifications__row_json(const struct notifications__row *row)
{
    json_error_t jerr;
    json_t *data = json_loads(row->data, 0, &jerr);
    if (!data)
        data = json_object();
    json_t *read_at = row->read_at[0] ? json_string(row->read_at) : json_null();
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:s}", "id", row->id.str, "type", row->type,
                     "title", row->title, "body", row->body, "data", data, "read_at", read_at,
                     "created_at", row->created_at);
}

static int enqueue_email(const char *delivery_id)
{
    json_t *payload = json_pack("{s:s}", "delivery_id", delivery_id);
    if (!payload)
        return BH_ENOMEM;
    int rc = bh_job_enqueue(SEND_EMAIL_JOB, payload, 0);
    json_decref(payload);
    if (rc != 0)
        bh_log_warn("email %s not queued (%s): the event will be retried", delivery_id,
                    bh_err_name(rc));
    return rc;
}

/* A redelivered event: its notifications exist. Only an email that was
 * stored but never queued (a crash or a Redis outage right after the
 * commit) still needs doing; queueing one twice is harmless (the lease). */
static int redelivered(struct bh_tx *tx, const struct bh_event *ev)
{
    bh_uuid *ids = NULL;
    size_t n = 0;
    int rc = notifications__repo_unsent_for_event(tx, ev->id, &ids, &n);
    if (rc != 0) {
        free(ids);
        bh_tx_rollback(tx);
        return rc;
    }
    rc = bh_tx_commit(tx);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = enqueue_email(ids[i].str);
    free(ids);
    bh_log_debug("event %s (%s) seen before: skipped", ev->id, ev->type);
    return rc;
}

/* The notification as the API and the stream show it. */
static json_t *live_json(const struct notifications__new *n, const char *created_at)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:O, s:n, s:s}", "id", n->id.str, "type", n->type,
                     "title", n->title, "body", n->body, "data", n->data, "read_at", "created_at",
                     created_at);
}

/* The texts of notice n as recipient to reads them (their name in). On
 * failure *txt may hold parts: the caller releases it either way. */
static int render_for(const struct notifications__notice *n,
                      const struct notifications__recipient *to,
                      struct notifications__rendered *txt)
{
    json_t *vars = json_deep_copy(n->vars);
    int rc = BH_ENOMEM;
    if (vars && json_object_set_new(vars, "recipient_name",
                                    json_string(to->name[0] ? to->name : "there")) == 0)
        rc = notifications__render(n->type, vars, txt);
    json_decref(vars);
    return rc;
}

/* What one recipient gets, on tx: an inbox row and/or a delivery, as their
 * preferences say. *live (the pushed JSON) and *delivery_id are set when
 * made. */
static int notify_one(struct bh_tx *tx, const struct bh_event *ev,
                      const struct notifications__notice *n,
                      const struct notifications__recipient *to, json_t **live,
                      bh_uuid *delivery_id)
{
    struct notifications__prefs prefs;
    struct notifications__rendered txt = {0};
    bh_uuid notification_id = {0};
    char *created_at = NULL;
    int rc = notifications__repo_prefs_load(tx, to->user_id.str, &prefs);
    if (rc != 0)
        return rc;
    bool in_app = prefs.on[n->type][NOTIF_IN_APP];
    bool email = prefs.on[n->type][NOTIF_EMAIL] && to->email[0];
    if (!in_app && !email)
        return 0;

    if ((rc = render_for(n, to, &txt)) != 0)
        goto out;

    if (in_app) {
        struct notifications__new row = {
            .id = bh_uuid_v7(),
            .user_id = to->user_id.str,
            .org_id = n->org_id,
            .type = notifications__type_name(n->type),
            .title = txt.title,
            .body = txt.body,
            .data = n->data,
            .event_id = ev->id,
        };
        if ((rc = notifications__repo_insert(tx, &row, &created_at)) != 0)
            goto out;
        notification_id = row.id;
        *live = live_json(&row, created_at);
    }
    if (email) {
        struct notifications__delivery d = {
            .id = bh_uuid_v7(),
            .user_id = to->user_id.str,
            .event_id = ev->id,
            .notification_id = in_app ? notification_id.str : NULL,
            .type = notifications__type_name(n->type),
            .to_address = to->email,
            .to_name = to->name,
            .subject = txt.title,
            .text_body = txt.email_text,
            .html_body = txt.email_html,
        };
        if ((rc = notifications__repo_insert_delivery(tx, &d)) != 0)
            goto out;
        *delivery_id = d.id;
    }
    rc = 0;
out:
    free(created_at);
    notifications__rendered_release(&txt);
    return rc;
}

int notifications__deliver(const struct bh_event *ev, const struct notifications__notice *n,
                           const struct notifications__recipient *rcpts, size_t n_rcpts)
{
    struct bh_tx *tx = NULL;
    json_t **lives = calloc(n_rcpts ? n_rcpts : 1, sizeof *lives);
    bh_uuid *deliveries = calloc(n_rcpts ? n_rcpts : 1, sizeof *deliveries);
    int rc = BH_ENOMEM;
    if (!lives || !deliveries)
        goto out;
    if ((rc = bh_tx_begin(&tx)) != 0)
        goto out;
    rc = bh_inbox_seen(tx, n->consumer, ev->id);
    if (rc == 1) {
        rc = redelivered(tx, ev);
        tx = NULL;
        goto out;
    }
    for (size_t i = 0; rc == 0 && i < n_rcpts; i++)
        rc = notify_one(tx, ev, n, &rcpts[i], &lives[i], &deliveries[i]);
    if (rc != 0)
        goto out;
    rc = bh_tx_commit(tx);
    tx = NULL;
    if (rc != 0)
        goto out;

    /* Committed: now the effects outside Postgres. A lost push is only
     * late (the stream resumes from the inbox); a lost job would be a lost
     * email, so failing to queue fails the event, whose redelivery queues
     * what is still unsent. */
    for (size_t i = 0; i < n_rcpts; i++)
        if (lives[i])
            notifications__stream_publish(rcpts[i].user_id.str, lives[i]);
    for (size_t i = 0; i < n_rcpts; i++)
        if (!bh_uuid_is_nil(&deliveries[i]) && enqueue_email(deliveries[i].str) != 0)
            rc = BH_EUNAVAILABLE;
    if (rc == 0)
        bh_log_info("event %s (%s): %zu recipient(s) notified", ev->id, ev->type, n_rcpts);
out:
    bh_tx_rollback(tx);
    for (size_t i = 0; lives && i < n_rcpts; i++)
        json_decref(lives[i]);
    free(lives);
    free(deliveries);
    return rc;
}

/* ---- the email job ------------------------------------------------------- */

static int send_claimed(const struct notifications__claimed *d, const struct bh_job *job)
{
    const char *id = d->id.str;
    const char *from =
        bh_config_str("NOTIFICATIONS_MAIL_FROM", "Bulkhead <no-reply@bulkhead.localhost>");
    char from_addr[256], message_id[320];
    if (!notifications__mail_address(from, from_addr, sizeof from_addr)) {
        bh_log_error("NOTIFICATIONS_MAIL_FROM is not an address: %s", from);
        notifications__repo_delivery_failed(id, "invalid sender address", false, false);
        return BH_EINVAL; /* a configuration error: retried after it is fixed */
    }
    snprintf(message_id, sizeof message_id, "<%s@%s>", id, strchr(from_addr, '@') + 1);
    struct notifications__mail m = {
        .from = from,
        .to_address = d->to_address,
        .to_name = d->to_name,
        .subject = d->subject,
        .text = d->text,
        .html = d->html,
        .message_id = message_id,
        .date = (time_t)d->created_epoch,
    };
    size_t len = 0;
    char *msg = notifications__mime_compose(&m, &len);
    if (!msg) {
        /* A stored value the composer refuses (a line break in a header:
         * the API refuses those, so older or hand-made rows). Never dropped
         * in silence: the delivery stays pending with the reason, and the
         * job fails each attempt until it lands in the dead letters
         * (`bulkhead jobs dead`), from where it can be retried once the
         * row is fixed. */
        notifications__repo_delivery_failed(id, "message could not be composed", false, false);
        bh_log_error("delivery %s: message could not be composed (a header value holds a line "
                     "break); attempt %d of %d, then the dead letters",
                     id, job->attempt, NOTIF_EMAIL_MAX_ATTEMPTS);
        return BH_EINVAL;
    }
    char err[512];
    enum notifications__send_result sent =
        notifications__transport_send(from_addr, m.to_address, msg, len, id, err, sizeof err);
    free(msg);
    bool last = job->attempt >= NOTIF_EMAIL_MAX_ATTEMPTS;
    switch (sent) {
    case NOTIF_SENT:
        bh_log_info("delivery %s sent (%s, attempt %d)", id, notifications__transport_name(),
                    job->attempt);
        return notifications__repo_delivery_sent(id, notifications__transport_name());
    case NOTIF_SEND_PERMANENT:
        bh_log_warn("delivery %s rejected for good: %s", id, err);
        notifications__repo_delivery_failed(id, err, true, true);
        return 0;
    case NOTIF_SEND_REFUSED:
    case NOTIF_SEND_TRANSIENT:
        bh_log_warn("delivery %s not sent (attempt %d%s): %s", id, job->attempt,
                    last ? ", the last" : "", err);
        notifications__repo_delivery_failed(id, err, sent == NOTIF_SEND_TRANSIENT, last);
        return BH_EUNAVAILABLE; /* retried with backoff by the queue */
    }
    return BH_EINTERNAL;
}

int notifications__send_email_job(const struct bh_job *job)
{
    const char *id = json_string_value(json_object_get(job->payload, "delivery_id"));
    bh_uuid delivery;
    if (!id || !bh_uuid_parse(id, &delivery)) {
        bh_log_error("job %s: payload has no valid delivery_id: dropped", job->id);
        return 0;
    }
    struct notifications__claimed d;
    bool busy = false, claimed = false;
    int lease = (int)(notifications__transport_timeout_ms() / 1000) + 30;
    int rc = notifications__repo_claim_delivery(delivery.str, lease, &d, &claimed, &busy);
    if (rc != 0)
        return rc;
    /* Sent already or gone: done. Leased by another attempt (a duplicate
     * job, or one whose worker died): look again later. */
    if (!claimed)
        return busy ? BH_EUNAVAILABLE : 0;
    rc = send_claimed(&d, job);
    notifications__claimed_release(&d);
    return rc;
}
