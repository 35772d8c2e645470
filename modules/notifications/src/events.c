/* The events notifications consumes, and who hears about each. This module
 * knows tasks and billing only as event type strings and payload fields: it
 * never calls them. Payloads are read defensively: a missing optional field
 * gets a neutral word, a missing required one is logged and the event
 * skipped (acknowledged), never a crash or an endless retry. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "internal.h"
#include "platform/err.h"
#include "platform/log.h"

/* ---- reading payloads ------------------------------------------------------ */

static const char *str_field(const struct bh_event *ev, const char *name)
{
    const json_t *v = json_object_get(ev->data, name);
    return json_is_string(v) && json_string_length(v) > 0 ? json_string_value(v) : NULL;
}

static bool uuid_field(const struct bh_event *ev, const char *name, bh_uuid *out)
{
    return bh_uuid_parse(str_field(ev, name), out);
}

/* The org an event belongs to: its payload's org_id, else the envelope's. */
static const char *org_of(const struct bh_event *ev, bh_uuid *out)
{
    if (uuid_field(ev, "org_id", out) || bh_uuid_parse(ev->org_id, out))
        return out->str;
    return NULL;
}

/* Who did it: a payload field naming the actor, else the envelope's actor. */
static bool actor_of(const struct bh_event *ev, const char *field, bh_uuid *out)
{
    return (field && uuid_field(ev, field, out)) || bh_uuid_parse(ev->actor_id, out);
}

static void skip(const struct bh_event *ev, const char *why)
{
    bh_log_warn("event %s (%s) skipped: %s", ev->id, ev->type, why);
}

/* ---- recipients ------------------------------------------------------------ */

struct recipients {
    struct notifications__recipient *v;
    size_t n, cap;
};

static bool has_recipient(const struct recipients *rs, const bh_uuid *id)
{
    for (size_t i = 0; i < rs->n; i++)
        if (strcmp(rs->v[i].user_id.str, id->str) == 0)
            return true;
    return false;
}

/* Adds user_id (once) with their email and name from auth. A user that is
 * gone is left out; auth being unavailable fails the event (it is retried). */
static int add_recipient(struct recipients *rs, const bh_uuid *user_id)
{
    if (has_recipient(rs, user_id))
        return 0;
    struct auth_profile p;
    int rc = auth_user_profile(user_id, &p);
    if (rc == BH_ENOTFOUND) {
        bh_log_warn("user %s is gone: not notified", user_id->str);
        return 0;
    }
    if (rc != 0)
        return rc;
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 4;
        struct notifications__recipient *v = realloc(rs->v, cap * sizeof *v);
        if (!v)
            return BH_ENOMEM;
        rs->v = v;
        rs->cap = cap;
    }
    struct notifications__recipient *r = &rs->v[rs->n++];
    memset(r, 0, sizeof *r);
    r->user_id = *user_id;
    snprintf(r->email, sizeof r->email, "%s", p.email);
    snprintf(r->name, sizeof r->name, "%s", p.name);
    return 0;
}

static int add_member(const bh_uuid *user_id, enum auth_role role, void *arg)
{
    return add_recipient(arg, user_id);
}

/* The actor's display name for the texts ("Someone" when unknown). */
static int set_actor_name(json_t *vars, const bh_uuid *actor)
{
    struct auth_profile p;
    const char *name = "Someone";
    if (actor) {
        int rc = auth_user_profile(actor, &p);
        if (rc == BH_EUNAVAILABLE || rc == BH_ETIMEOUT)
            return rc;
        if (rc == 0 && p.name[0])
            name = p.name;
    }
    return vars && json_object_set_new(vars, "actor_name", json_string(name)) == 0 ? 0 : BH_ENOMEM;
}

static void set_str(json_t *obj, const char *key, const char *value)
{
    json_object_set_new(obj, key, json_string(value));
}

/* Copies a payload field into the notification's data when it is there. */
static void keep(json_t *data, const struct bh_event *ev, const char *field)
{
    json_t *v = json_object_get(ev->data, field);
    if (v && !json_is_null(v))
        json_object_set(data, field, v);
}

/* Runs the pipeline when the handler got this far (rc 0) and found someone
 * to tell, then releases what the handler built. */
static int finish(const struct bh_event *ev, int rc, enum notifications__type type,
                  const char *consumer, const char *org_id, json_t *vars, json_t *data,
                  struct recipients *rs)
{
    if (rc == 0 && (!vars || !data))
        rc = BH_ENOMEM;
    if (rc == 0 && rs->n > 0) {
        struct notifications__notice n = {type, consumer, org_id, vars, data};
        rc = notifications__deliver(ev, &n, rs->v, rs->n);
    }
    json_decref(vars);
    json_decref(data);
    free(rs->v);
    return rc;
}

/* ---- handlers ----------------------------------------------------------- */

int notifications__on_user_signed_up(const struct bh_event *ev)
{
    bh_uuid org;
    const char *email = str_field(ev, "email"), *name = str_field(ev, "name");
    struct notifications__recipient *r = calloc(1, sizeof *r);
    if (!r)
        return BH_ENOMEM;
    if (!uuid_field(ev, "user_id", &r->user_id)) {
        free(r);
        skip(ev, "no user_id");
        return 0;
    }
    /* The payload carries the address and name: no lookup for the welcome. */
    snprintf(r->email, sizeof r->email, "%s", email ? email : "");
    snprintf(r->name, sizeof r->name, "%s", name ? name : "");
    struct recipients rs = {r, 1, 1};
    json_t *vars = json_pack("{s:s, s:s}", "name", name ? name : "there", "email",
                             email ? email : "your address");
    json_t *data = json_pack("{s:s}", "user_id", r->user_id.str);
    const char *org_id = org_of(ev, &org);
    if (org_id)
        set_str(data, "org_id", org_id);
    return finish(ev, 0, NOTIF_USER_SIGNED_UP, "notifications.user_signed_up", org_id, vars, data,
                  &rs);
}

int notifications__on_member_added(const struct bh_event *ev)
{
    bh_uuid user, org, actor;
    const char *org_id = org_of(ev, &org);
    if (!uuid_field(ev, "user_id", &user) || !org_id) {
        skip(ev, "no user_id or org_id");
        return 0;
    }
    bool has_actor = actor_of(ev, "added_by", &actor);
    /* Creating an organization makes its creator a member: not news to them. */
    if (has_actor && strcmp(actor.str, user.str) == 0)
        return 0;
    struct recipients rs = {0};
    json_t *vars = json_object();
    json_t *data = json_pack("{s:s, s:s}", "org_id", org_id, "user_id", user.str);
    int rc = set_actor_name(vars, has_actor ? &actor : NULL);
    if (rc == 0)
        rc = add_recipient(&rs, &user);
    const char *org_name = str_field(ev, "org_name"), *role = str_field(ev, "role");
    set_str(vars, "org_name", org_name ? org_name : "an organization");
    set_str(vars, "role", role ? role : "member");
    keep(data, ev, "role");
    return finish(ev, rc, NOTIF_MEMBER_ADDED, "notifications.member_added", org_id, vars, data,
                  &rs);
}

/* member.invited: the invitee hears of it, in the inbox and by email, and
 * answers through auth's /v1/me/invitations. The text quotes the org name
 * and keeps it out of the subject. */
int notifications__on_member_invited(const struct bh_event *ev)
{
    bh_uuid user, org, actor, invitation;
    const char *org_id = org_of(ev, &org);
    if (!uuid_field(ev, "user_id", &user) || !uuid_field(ev, "invitation_id", &invitation) ||
        !org_id) {
        skip(ev, "no user_id, invitation_id or org_id");
        return 0;
    }
    bool has_actor = actor_of(ev, "invited_by", &actor);
    struct recipients rs = {0};
    json_t *vars = json_object();
    json_t *data = json_pack("{s:s, s:s, s:s}", "org_id", org_id, "user_id", user.str,
                             "invitation_id", invitation.str);
    int rc = set_actor_name(vars, has_actor ? &actor : NULL);
    if (rc == 0)
        rc = add_recipient(&rs, &user);
    const char *org_name = str_field(ev, "org_name"), *role = str_field(ev, "role");
    const char *expires = str_field(ev, "expires_at");
    set_str(vars, "org_name", org_name ? org_name : "an organization");
    set_str(vars, "role", role ? role : "member");
    set_str(vars, "expires_at", expires ? expires : "in a week");
    keep(data, ev, "role");
    keep(data, ev, "org_name");
    keep(data, ev, "expires_at");
    return finish(ev, rc, NOTIF_MEMBER_INVITED, "notifications.member_invited", org_id, vars, data,
                  &rs);
}

/* What every task notification shows and keeps. */
static void task_texts(const struct bh_event *ev, json_t *vars, json_t *data)
{
    const char *title = str_field(ev, "title");
    set_str(vars, "title", title ? title : "a task");
    keep(data, ev, "task_id");
    keep(data, ev, "org_id");
    keep(data, ev, "title");
}

int notifications__on_task_assigned(const struct bh_event *ev)
{
    bh_uuid assignee, actor, org;
    if (!uuid_field(ev, "assignee_id", &assignee)) {
        /* Unassigned (assignee_id null): nobody to tell. */
        bh_log_debug("event %s (%s): no assignee, nothing to do", ev->id, ev->type);
        return 0;
    }
    bool has_actor = actor_of(ev, "assigned_by", &actor);
    struct recipients rs = {0};
    json_t *vars = json_object(), *data = json_object();
    int rc = set_actor_name(vars, has_actor ? &actor : NULL);
    if (rc == 0)
        rc = add_recipient(&rs, &assignee);
    task_texts(ev, vars, data);
    keep(data, ev, "created_by");
    return finish(ev, rc, NOTIF_TASK_ASSIGNED, "notifications.task_assigned", org_of(ev, &org),
                  vars, data, &rs);
}

int notifications__on_task_completed(const struct bh_event *ev)
{
    bh_uuid creator, completer, org;
    if (!uuid_field(ev, "created_by", &creator)) {
        skip(ev, "no created_by");
        return 0;
    }
    bool has_completer = actor_of(ev, "completed_by", &completer);
    if (has_completer && strcmp(creator.str, completer.str) == 0)
        return 0; /* they completed their own task: nothing to tell them */
    struct recipients rs = {0};
    json_t *vars = json_object(), *data = json_object();
    int rc = set_actor_name(vars, has_completer ? &completer : NULL);
    if (rc == 0)
        rc = add_recipient(&rs, &creator);
    task_texts(ev, vars, data);
    keep(data, ev, "completed_by");
    return finish(ev, rc, NOTIF_TASK_COMPLETED, "notifications.task_completed", org_of(ev, &org),
                  vars, data, &rs);
}

int notifications__on_task_commented(const struct bh_event *ev)
{
    bh_uuid author, assignee, creator, org;
    bool has_author = actor_of(ev, "author_id", &author);
    struct recipients rs = {0};
    json_t *vars = json_object(), *data = json_object();
    int rc = set_actor_name(vars, has_author ? &author : NULL);
    /* The assignee and the creator, once each, never the author. */
    if (rc == 0 && uuid_field(ev, "assignee_id", &assignee) &&
        !(has_author && strcmp(assignee.str, author.str) == 0))
        rc = add_recipient(&rs, &assignee);
    if (rc == 0 && uuid_field(ev, "created_by", &creator) &&
        !(has_author && strcmp(creator.str, author.str) == 0))
        rc = add_recipient(&rs, &creator);
    task_texts(ev, vars, data);
    keep(data, ev, "comment_id");
    keep(data, ev, "author_id");
    return finish(ev, rc, NOTIF_TASK_COMMENTED, "notifications.task_commented", org_of(ev, &org),
                  vars, data, &rs);
}

/* Billing news goes to the people who can act on it: owners and admins. */
static int org_admins(const bh_uuid *org, struct recipients *rs)
{
    return auth_each_member(org, AUTH_ROLE_ADMIN, add_member, rs);
}

/* "12.50 EUR" from integer cents and a currency, or a neutral phrase. */
static void set_amount(json_t *vars, const struct bh_event *ev)
{
    const json_t *cents = json_object_get(ev->data, "total_cents");
    if (!json_is_integer(cents))
        cents = json_object_get(ev->data, "amount_cents");
    const char *currency = str_field(ev, "currency");
    char text[64] = "the amount due";
    if (json_is_integer(cents)) {
        json_int_t c = json_integer_value(cents), abs = c < 0 ? -c : c;
        snprintf(text, sizeof text, "%s%" JSON_INTEGER_FORMAT ".%02d%s%s", c < 0 ? "-" : "",
                 abs / 100, (int)(abs % 100), currency ? " " : "", currency ? currency : "");
    }
    set_str(vars, "amount", text);
}

int notifications__on_invoice_payment_failed(const struct bh_event *ev)
{
    bh_uuid org;
    const char *org_id = org_of(ev, &org);
    if (!org_id) {
        skip(ev, "no org_id");
        return 0;
    }
    struct recipients rs = {0};
    json_t *vars = json_object(), *data = json_pack("{s:s}", "org_id", org_id);
    int rc = org_admins(&org, &rs);
    const char *org_name = str_field(ev, "org_name");
    set_str(vars, "org_name", org_name ? org_name : "your organization");
    set_amount(vars, ev);
    const json_t *number = json_object_get(ev->data, "number");
    char invoice[48] = "(the latest)";
    if (json_is_integer(number))
        snprintf(invoice, sizeof invoice, "#%" JSON_INTEGER_FORMAT, json_integer_value(number));
    else if (json_is_string(number))
        snprintf(invoice, sizeof invoice, "#%s", json_string_value(number));
    set_str(vars, "invoice", invoice);
    keep(data, ev, "invoice_id");
    keep(data, ev, "number");
    keep(data, ev, "total_cents");
    keep(data, ev, "currency");
    return finish(ev, rc, NOTIF_INVOICE_PAYMENT_FAILED, "notifications.invoice_payment_failed",
                  org_id, vars, data, &rs);
}

int notifications__on_subscription_changed(const struct bh_event *ev)
{
    bh_uuid org;
    const char *org_id = org_of(ev, &org);
    if (!org_id) {
        skip(ev, "no org_id");
        return 0;
    }
    struct recipients rs = {0};
    json_t *vars = json_object(), *data = json_pack("{s:s}", "org_id", org_id);
    int rc = org_admins(&org, &rs);
    const char *org_name = str_field(ev, "org_name");
    const char *plan = str_field(ev, "plan_id"), *status = str_field(ev, "status");
    set_str(vars, "org_name", org_name ? org_name : "your organization");
    set_str(vars, "plan", plan ? plan : "current");
    set_str(vars, "status", status ? status : "unchanged");
    keep(data, ev, "plan_id");
    keep(data, ev, "status");
    keep(data, ev, "previous_plan_id");
    keep(data, ev, "previous_status");
    return finish(ev, rc, NOTIF_SUBSCRIPTION_CHANGED, "notifications.subscription_changed", org_id,
                  vars, data, &rs);
}
