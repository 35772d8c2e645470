/* Billing's HTTP handlers: parse, authorize (through auth), call the
 * service, answer. Money-moving routes go through the idempotency keys
 * (idempotency.c). No SQL, no rule and no provider vocabulary here. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "internal.h"
#include "platform/config.h"
#include "platform/err.h"
#include "platform/json.h"

/* The organization of the path, once the caller is known to hold min_role
 * in it. Returns 0 or the error the platform answers (401/403/404). */
static int authorize(struct bh_req *req, enum auth_role min_role, const struct auth_principal **who)
{
    return auth_require_role(req, bh_req_param(req, "org"), min_role, who);
}

/* ------------------------------------------------------------------ plans */

/* GET /v1/plans: the public catalogue, no authentication. */
int billing__http_get_plans(struct bh_req *req)
{
    enum { MAX_PLANS = 16 };
    struct billing__plan plans[MAX_PLANS];
    int n = 0;
    int rc = billing__get_plans(plans, MAX_PLANS, &n);
    if (rc != 0)
        return rc;
    json_t *data = json_array();
    for (int i = 0; data && i < n; i++)
        json_array_append_new(data, billing__plan_json(&plans[i]));
    json_t *body = json_pack("{s:o, s:n}", "data", data, "next_cursor");
    if (!body)
        return BH_ENOMEM;
    bh_reply_header(req, "Cache-Control", "public, max-age=60");
    return bh_reply_json(req, 200, body);
}

/* ----------------------------------------------------------- subscription */

/* GET /v1/orgs/{org}/subscription (any member). */
int billing__http_get_subscription(struct bh_req *req)
{
    const struct auth_principal *who = NULL;
    struct billing__subscription s;
    int rc = authorize(req, AUTH_ROLE_MEMBER, &who);
    if (rc == 0)
        rc = billing__get_subscription(&who->org_id, &s);
    if (rc != 0)
        return rc;
    json_t *body = billing__subscription_json(&s);
    return body ? bh_reply_json(req, 200, body) : BH_ENOMEM;
}

static const char *change_name(enum billing__change_kind k)
{
    switch (k) {
    case BILLING__CHANGE_NONE: return "none";
    case BILLING__CHANGE_UPGRADED: return "upgraded";
    case BILLING__CHANGE_DOWNGRADE_SCHEDULED: return "downgrade_scheduled";
    case BILLING__CHANGE_RESUMED: return "resumed";
    case BILLING__CHANGE_CANCEL_SCHEDULED: return "cancel_scheduled";
    case BILLING__CHANGE_CANCELED: return "canceled";
    case BILLING__CHANGE_PENDING: return "pending";
    }
    return "none";
}

/* The subscription after a change, with the change and its invoice. */
static json_t *change_json(struct bh_req *req, const struct billing__change_result *res)
{
    json_t *body = billing__subscription_json(&res->sub);
    if (!body)
        return NULL;
    json_object_set_new(body, "change", json_string(change_name(res->kind)));
    json_t *invoice = json_null();
    if (!bh_uuid_is_nil(&res->invoice_id)) {
        struct billing__invoice inv;
        if (billing__get_invoice(&res->sub.org_id, &res->invoice_id, bh_req_arena(req), &inv) == 0)
            invoice = billing__invoice_json(&inv);
    }
    json_object_set_new(body, "invoice", invoice ? invoice : json_null());
    return body;
}

/* Answers a plan change or cancellation through the idempotency key: what
 * is final (2xx, 4xx) is stored for replays; a transient 5xx releases the
 * key so that a retry does the work. */
static int reply_change(struct bh_req *req, struct billing__idem *idem, int rc,
                        const struct billing__change_result *res)
{
    json_t *extra = NULL;
    switch (rc) {
    case 0: {
        json_t *body = change_json(req, res);
        if (!body) {
            billing__idem_release(idem);
            return BH_ENOMEM;
        }
        /* A charge whose outcome is unknown: accepted, settled later. */
        return billing__idem_reply(req, idem, res->kind == BILLING__CHANGE_PENDING ? 202 : 200,
                                   body);
    }
    case BH_EPAYMENT:
        if (!bh_uuid_is_nil(&res->invoice_id))
            extra = json_pack("{s:s, s:s}", "invoice_id", res->invoice_id.str, "decline_code",
                              billing__decline_name(res->decline));
        return billing__idem_problem(req, idem, rc, &res->why, extra);
    case BH_ELIMIT: return billing__idem_problem(req, idem, rc, &res->why, NULL);
    case BH_ECONFLICT:
        if (res->why.code && strcmp(res->why.code, "payment_in_progress") == 0) {
            /* Transient: no stored answer, the same key may try again. */
            billing__idem_release(idem);
            bh_reply_header(req, "Retry-After", "1");
            return bh_reply_refusal(req, rc, &res->why, NULL);
        }
        return billing__idem_problem(req, idem, rc, &res->why, NULL);
    case BH_EUNPROCESSABLE:
        extra = json_pack("{s:[{s:s, s:s}]}", "errors", "field", "plan_id", "message",
                          "is not a plan (see GET /v1/plans)");
        return billing__idem_problem(req, idem, rc, &res->why, extra);
    case BH_EUNAVAILABLE: {
        billing__idem_release(idem);
        char after[16];
        snprintf(after, sizeof after, "%d", res->retry_after_s > 0 ? res->retry_after_s : 1);
        bh_reply_header(req, "Retry-After", after);
        return bh_reply_refusal(req, rc, &res->why, NULL);
    }
    default: billing__idem_release(idem); return rc;
    }
}

/* PUT /v1/orgs/{org}/subscription {plan_id} (owner or admin; Idempotency-Key). */
int billing__http_put_subscription(struct bh_req *req)
{
    const struct auth_principal *who = NULL;
    const char *plan_id = NULL;
    struct billing__idem idem;
    struct billing__change_result res;
    int rc = authorize(req, AUTH_ROLE_ADMIN, &who);
    if (rc != 0)
        return rc;
    const struct bh_json_field fields[] = {BH_JSON_STRING("plan_id", &plan_id, 1, 32, true), {0}};
    if (bh_json_read(req, bh_req_json(req), fields) != 0)
        return bh_reply_field_errors(req);
    rc = billing__idem_begin(req, &who->org_id, &idem);
    if (rc != 0)
        return rc > 0 ? 0 : rc;
    rc = billing__change_plan(&who->org_id, &who->user_id, plan_id, &res);
    return reply_change(req, &idem, rc, &res);
}

/* DELETE /v1/orgs/{org}/subscription (owner or admin; Idempotency-Key):
 * cancels at the period end. */
int billing__http_delete_subscription(struct bh_req *req)
{
    const struct auth_principal *who = NULL;
    struct billing__idem idem;
    struct billing__change_result res;
    int rc = authorize(req, AUTH_ROLE_ADMIN, &who);
    if (rc != 0)
        return rc;
    const struct bh_json_field none[] = {{0}};
    if (bh_req_json(req) && bh_json_read(req, bh_req_json(req), none) != 0)
        return bh_reply_field_errors(req);
    rc = billing__idem_begin(req, &who->org_id, &idem);
    if (rc != 0)
        return rc > 0 ? 0 : rc;
    rc = billing__cancel(&who->org_id, &who->user_id, &res);
    return reply_change(req, &idem, rc, &res);
}

/* ---------------------------------------------------------- payment method */

/* POST /v1/orgs/{org}/payment-method {token} (owner or admin). */
int billing__http_post_payment_method(struct bh_req *req)
{
    const struct auth_principal *who = NULL;
    const char *token = NULL;
    struct billing__card card;
    int rc = authorize(req, AUTH_ROLE_ADMIN, &who);
    if (rc != 0)
        return rc;
    const struct bh_json_field fields[] = {BH_JSON_STRING("token", &token, 1, 255, true), {0}};
    if (bh_json_read(req, bh_req_json(req), fields) != 0)
        return bh_reply_field_errors(req);
    rc = billing__set_payment_method(&who->org_id, token, &card);
    if (rc == BH_EUNPROCESSABLE) {
        bh_req_field_error(req, "token", "is not a usable card token");
        return bh_reply_field_errors(req);
    }
    if (rc == BH_EUNAVAILABLE || rc == BH_ETIMEOUT) { /* no card was stored: retry */
        int after = 1;
        billing__payments_open(&after);
        char text[16];
        snprintf(text, sizeof text, "%d", after);
        bh_reply_header(req, "Retry-After", text);
        return bh_reply_refusal(
            req, BH_EUNAVAILABLE,
            &(struct bh_refusal){.code = "payment_provider_unavailable",
                                 .detail = "The payment provider is unavailable; try again later."},
            NULL);
    }
    if (rc != 0)
        return rc;
    json_t *body =
        json_pack("{s:s, s:s, s:s}", "type", "card", "brand", card.brand, "last4", card.last4);
    return body ? bh_reply_json(req, 200, body) : BH_ENOMEM;
}

/* ---------------------------------------------------------------- invoices */

/* The page arguments; the cursor's key is the number of the last invoice of
 * the previous page. */
static int page_args(struct bh_req *req, struct bh_page *page, int64_t *before)
{
    *before = 0;
    int rc = bh_page_args(req, page);
    if (rc == 0 && page->key) {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(page->key, &end, 10);
        if (*end || errno || v < 1)
            rc = bh_page_bad_cursor(req);
        else
            *before = v;
    }
    return rc;
}

/* GET /v1/orgs/{org}/invoices (owner or admin): newest first, by cursor. */
int billing__http_list_invoices(struct bh_req *req)
{
    const struct auth_principal *who = NULL;
    struct bh_page args;
    int64_t before = 0;
    int rc = authorize(req, AUTH_ROLE_ADMIN, &who);
    if (rc != 0)
        return rc;
    if (page_args(req, &args, &before) != 0)
        return bh_reply_field_errors(req);
    int limit = args.limit;
    struct bh_arena *a = bh_req_arena(req);
    struct billing__invoice *page = bh_arena_alloc(a, sizeof *page * (BH_PAGE_MAX + 1));
    if (!page)
        return BH_ENOMEM;
    int n = 0;
    /* One more than asked: it tells whether there is a next page. */
    rc = billing__list_invoices(&who->org_id, before, limit + 1, bh_req_arena(req), page, &n);
    if (rc != 0)
        return rc;
    json_t *data = json_array();
    for (int i = 0; data && i < n && i < limit; i++)
        json_array_append_new(data, billing__invoice_json(&page[i]));
    const char *next = NULL;
    if (n > limit) {
        char key[24];
        snprintf(key, sizeof key, "%" PRId64, page[limit - 1].number);
        if (!(next = bh_page_cursor(a, key))) {
            json_decref(data);
            return BH_ENOMEM;
        }
    }
    return bh_reply_page(req, &args, data, next, NULL);
}

/* GET /v1/orgs/{org}/invoices/{id} (owner or admin), with its lines. */
int billing__http_get_invoice(struct bh_req *req)
{
    const struct auth_principal *who = NULL;
    bh_uuid id;
    struct billing__invoice inv;
    int rc = authorize(req, AUTH_ROLE_ADMIN, &who);
    if (rc != 0)
        return rc;
    if (!bh_uuid_parse(bh_req_param(req, "id"), &id))
        return BH_ENOTFOUND;
    rc = billing__get_invoice(&who->org_id, &id, bh_req_arena(req), &inv);
    if (rc != 0)
        return rc;
    json_t *body = billing__invoice_json(&inv);
    return body ? bh_reply_json(req, 200, body) : BH_ENOMEM;
}

/* ------------------------------------------------------------------- usage */

static json_t *meter_json(int64_t used, int64_t limit)
{
    return json_pack("{s:I, s:o}", "used", (json_int_t)used, "limit",
                     limit == BILLING__UNLIMITED ? json_null() : json_integer(limit));
}

/* GET /v1/orgs/{org}/usage (any member). Counts come from events (a moment
 * behind); limits are the plan's now. */
int billing__http_get_usage(struct bh_req *req)
{
    const struct auth_principal *who = NULL;
    int64_t tasks = 0, members = 0, limit_tasks = 0, limit_members = 0;
    int rc = authorize(req, AUTH_ROLE_MEMBER, &who);
    if (rc != 0)
        return rc;
    rc = billing__get_usage(&who->org_id, &tasks, &members, &limit_tasks, &limit_members);
    if (rc != 0)
        return rc;
    json_t *body = json_pack("{s:o, s:o}", "tasks", meter_json(tasks, limit_tasks), "members",
                             meter_json(members, limit_members));
    return body ? bh_reply_json(req, 200, body) : BH_ENOMEM;
}

/* ---------------------------------------------------------------- webhooks */

/* POST /v1/billing/webhooks/{provider}: raw body, authenticated by its
 * signature alone (no bearer token: the provider calls it). */
int billing__http_post_webhook(struct bh_req *req)
{
    const struct billing__provider *provider = billing__provider();
    if (strcmp(bh_req_param(req, "provider"), provider->name) != 0)
        return BH_ENOTFOUND;
    size_t len = 0;
    const char *body = bh_req_body(req, &len);
    switch (billing__verify_signature(bh_req_header(req, "Billing-Signature"), body, len,
                                      billing__webhook_secret(), time(NULL),
                                      billing__webhook_tolerance_s())) {
    case BILLING__SIGNATURE_VALID: break;
    case BILLING__SIGNATURE_INVALID:
        return bh_reply_refusal(
            req, BH_EINVAL,
            &(struct bh_refusal){.code = "webhook_signature_invalid",
                                 .detail =
                                     "The Billing-Signature header is missing or does not match."},
            NULL);
    case BILLING__SIGNATURE_STALE:
        return bh_reply_refusal(
            req, BH_EINVAL,
            &(struct bh_refusal){.code = "webhook_timestamp_stale",
                                 .detail =
                                     "The signature's timestamp is outside the tolerance window."},
            NULL);
    }
    struct billing__payment_event ev;
    if (provider->parse_event(body, len, &ev) != 0)
        return bh_reply_refusal(
            req, BH_EINVAL,
            &(struct bh_refusal){.code = "webhook_payload_invalid",
                                 .detail = "The event is not one this endpoint understands."},
            NULL);
    bool duplicate = false;
    int rc = billing__apply_payment_event(&ev, &duplicate);
    if (rc != 0)
        return rc; /* 5xx: the provider delivers again later */
    json_t *reply = json_pack("{s:b, s:b}", "received", true, "duplicate", duplicate);
    return reply ? bh_reply_json(req, 200, reply) : BH_ENOMEM;
}

/* ------------------------------------------------------------- dev only */

/* POST /_billing/sweep (dev mode only) [{"org_id"}]: renews whatever is
 * due now by billing's clock, or only org_id's subscription. Tests move the
 * clock (BULKHEAD_BILLING_CLOCK_FILE) and call this instead of waiting for
 * the delayed jobs; naming the organization keeps a test from renewing
 * other tests' subscriptions in a shared database. */
int billing__http_dev_sweep(struct bh_req *req)
{
    if (!bh_config()->dev)
        return BH_ENOTFOUND;
    const char *org = NULL;
    bh_uuid org_id;
    const struct bh_json_field fields[] = {BH_JSON_STRING("org_id", &org, 36, 36, false), {0}};
    if (bh_req_json(req) && bh_json_read(req, bh_req_json(req), fields) != 0)
        return bh_reply_field_errors(req);
    if (org && !bh_uuid_parse(org, &org_id)) {
        bh_req_field_error(req, "org_id", "must be a UUID");
        return bh_reply_field_errors(req);
    }
    int n = 0, rc = 0;
    if (org) {
        time_t next = 0;
        bool acted = false;
        rc = billing__renew(&org_id, &next, &acted);
        if (rc == 0 && acted)
            billing__schedule_renewal(&org_id, next);
        n = acted ? 1 : 0;
    } else {
        rc = billing__sweep(100, &n);
    }
    if (rc != 0)
        return rc;
    char now[32];
    billing__format_time(billing__now(), now);
    json_t *body = json_pack("{s:i, s:s}", "processed", n, "billing_now", now);
    return body ? bh_reply_json(req, 200, body) : BH_ENOMEM;
}
