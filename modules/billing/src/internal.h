/* Declarations shared between the billing module's own files (never
 * included by anyone else): the domain types, the repository (all SQL), the
 * clock, the payments gateway and the services. Nothing here names a payment
 * provider's vocabulary: that stays inside provider_*.c (the anti-corruption
 * layer), behind the port in provider.h. */
#ifndef BILLING_INTERNAL_H
#define BILLING_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <time.h>

#include "billing/billing.h"
#include "platform/arena.h"
#include "platform/events.h"
#include "platform/http.h"
#include "platform/page.h"
#include "platform/refusal.h"
#include "platform/uuid.h"
#include "provider.h"

struct bh_tx;

/* ------------------------------------------------------------- domain types */

/* A plan of the catalogue. Limits are BILLING__UNLIMITED (-1) for none. */
struct billing__plan {
    char id[33];
    char name[101];
    int rank; /* higher = richer: moving up is an upgrade */
    int64_t price_cents;
    char currency[4];
    char interval[8]; /* "month" | "year" */
    int trial_days;
    int64_t limit_tasks;
    int64_t limit_members;
};

enum { BILLING__UNLIMITED = BILLING_UNLIMITED };

/* A subscription's status (docs/billing.md, "The subscription"). It moves
 * only through billing__transition(). */
enum billing__status {
    BILLING__TRIALING,
    BILLING__ACTIVE,
    BILLING__PAST_DUE,
    BILLING__CANCELED,
};

/* What happens to a subscription, as far as its status is concerned. */
enum billing__status_event {
    BILLING__EV_PERIOD_PAID,       /* a renewal or trial-end charge was paid, or a debt */
    BILLING__EV_PERIOD_FREE,       /* a period on the free plan rolled (nothing to pay) */
    BILLING__EV_PAYMENT_FAILED,    /* a renewal charge failed: dunning */
    BILLING__EV_DUNNING_EXHAUSTED, /* the last retry failed */
    BILLING__EV_PERIOD_END_CANCEL, /* the period ended with cancel_at_period_end */
    BILLING__EV_CANCEL_NOW,        /* DELETE while past due */
    BILLING__EV_PLAN_CHANGED,      /* an upgrade took effect (the status stays) */
    BILLING__EV_RESTART,           /* a plan chosen while canceled */
};

/* The status `ev` leads to from `from` into *to: 0, or BH_ECONFLICT when
 * the event cannot happen in that status (*to is then `from`). */
int billing__transition(enum billing__status from, enum billing__status_event ev,
                        enum billing__status *to);
/* "trialing", "active", "past_due", "canceled". */
const char *billing__status_name(enum billing__status s);
/* false for anything else. */
bool billing__status_parse(const char *name, enum billing__status *out);

struct billing__subscription {
    bh_uuid id;
    bh_uuid org_id;
    char plan_id[33];
    enum billing__status status;
    time_t period_start; /* seconds since the epoch, billing's clock */
    time_t period_end;
    bool cancel_at_period_end;
    char pending_plan_id[33]; /* "" when no downgrade is scheduled */
    int dunning_attempts;     /* failed renewal charges in a row */
    time_t next_retry_at;     /* 0 when nothing is owed */
    time_t status_changed_at;
};

enum { BILLING__MAX_LINES = 4 };

struct billing__invoice_line {
    char kind[24]; /* subscription | proration_charge | proration_credit */
    char description[201];
    char plan_id[33];
    int64_t amount_cents; /* negative for a credit */
    time_t period_start, period_end;
};

struct billing__invoice {
    bh_uuid id;
    bh_uuid org_id;
    bh_uuid subscription_id;
    int64_t number;
    char status[8];  /* draft | open | paid | void */
    char reason[16]; /* plan_change | renewal */
    char plan_id[33];
    char from_plan_id[33]; /* plan_change only; "" otherwise */
    char currency[4];
    int64_t total_cents;
    time_t period_start, period_end, created_at;
    int attempt_count;
    int n_lines; /* lines are filled when creating; reads carry lines_json */
    struct billing__invoice_line lines[BILLING__MAX_LINES];
    const char *lines_json; /* reads: the lines as JSON text (arena), or NULL */
};

/* Copies src (NULL as "") into a fixed field of a domain type, truncating. */
static inline void billing__set_str(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

/* ------------------------------------------------------------------ clock */

/* Billing's notion of now (seconds since the epoch): the real time, plus, in
 * dev mode only, the offset held in BULKHEAD_BILLING_CLOCK_FILE, so tests can
 * move a subscription through renewals and dunning without waiting a month. */
time_t billing__now(void);
/* True while the dev-only offset is in force (not the real time). */
bool billing__clock_simulated(void);
/* RFC 3339 UTC ("2026-01-02T03:04:05Z"). */
void billing__format_time(time_t t, char out[32]);
/* Adds one plan interval ("month" or "year") to t, keeping the day of month
 * where the calendar allows (Jan 31 + 1 month = Feb 28/29). */
time_t billing__add_interval(time_t t, const char *interval);

/* ------------------------------------------------------------- pure rules */

/* The part of amount_cents that covers `remaining` seconds of a period of
 * `length` seconds, rounded half up to a whole cent. 0 when length <= 0;
 * remaining is clamped to [0, length]. */
int64_t billing__prorate(int64_t amount_cents, int64_t remaining, int64_t length);

/* The dunning schedule: after the renewal charge failed at `first_failure`,
 * retry n (1-based) is due at the returned time; 0 when there is no retry n
 * (the subscription is canceled instead). */
time_t billing__dunning_retry_at(time_t first_failure, int n);
int billing__dunning_retries(void);

/* What a webhook's Billing-Signature header proves. */
enum billing__signature {
    BILLING__SIGNATURE_VALID,
    BILLING__SIGNATURE_INVALID, /* missing, malformed or not matching */
    BILLING__SIGNATURE_STALE,   /* matches, but t is outside the tolerance */
};

/* Webhook signature check: header is `t=<unix>,v1=<hex>[,v1=<hex>...]`,
 * the signature HMAC-SHA256(secret, t + "." + body). STALE (checked after
 * the signature matched) when t is further than tolerance_s from now. */
enum billing__signature billing__verify_signature(const char *header, const char *body,
                                                  size_t body_len, const char *secret, time_t now,
                                                  long tolerance_s);
/* The v1 signature for t and body, as 64 lower-case hex digits. */
void billing__sign(const char *secret, long long t, const char *body, size_t body_len,
                   char out[65]);

/* ------------------------------------------------------------- repository */

int billing__repo_plans(struct bh_tx *tx, struct billing__plan *out, int max, int *n);
/* BH_ENOTFOUND for an unknown plan. */
int billing__repo_plan(struct bh_tx *tx, const char *plan_id, struct billing__plan *out);
/* The limits in force for org_id: its plan's while the subscription is live
 * (members: the lower of its plan's and a scheduled downgrade's), the free
 * plan's when it is canceled or missing. */
int billing__repo_effective_limits(struct bh_tx *tx, const bh_uuid *org_id, int64_t *tasks,
                                   int64_t *members);

/* billing__repo_effective_limits() for orgs[0..n-1] in one statement, with
 * the terms of each (billing_limits()): tasks[i], members[i], terms[i]. */
int billing__repo_effective_limits_many(struct bh_tx *tx, const bh_uuid *orgs, int n,
                                        int64_t *tasks, int64_t *members,
                                        char (*terms)[BILLING_TERMS_MAX]);

/* Inserts org_id's subscription; BH_ECONFLICT when it already has one (the
 * caller's transaction stays usable: ON CONFLICT DO NOTHING). */
int billing__repo_subscription_insert(struct bh_tx *tx, const struct billing__subscription *s);
/* Reads org_id's subscription; BH_ENOTFOUND when none. for_update locks it. */
int billing__repo_subscription_get(struct bh_tx *tx, const bh_uuid *org_id, bool for_update,
                                   struct billing__subscription *out);
/* Writes every mutable field of s (by id); now stamps status changes. */
int billing__repo_subscription_update(struct bh_tx *tx, const struct billing__subscription *s,
                                      time_t now);
/* Organizations whose period ended or whose dunning retry is due by now. */
int billing__repo_subscriptions_due(struct bh_tx *tx, time_t now, int max, bh_uuid *out, int *n);

int billing__repo_payment_method_put(struct bh_tx *tx, const bh_uuid *org_id, const char *provider,
                                     const struct billing__card *card);
/* BH_ENOTFOUND when the organization has no card. */
int billing__repo_payment_method_get(struct bh_tx *tx, const bh_uuid *org_id,
                                     struct billing__card *out);

/* Takes the org's next invoice number (locking its counter row until the
 * transaction ends), inserts inv with its lines and finalizes it (open).
 * Sets inv->number and inv->status. */
int billing__repo_invoice_create(struct bh_tx *tx, struct billing__invoice *inv, time_t now);
/* One invoice of org_id (NULL: any org, for webhooks) with its lines as
 * JSON (allocated from a, may be NULL to skip them). BH_ENOTFOUND. */
int billing__repo_invoice_get(struct bh_tx *tx, const bh_uuid *org_id, const bh_uuid *id,
                              bool for_update, struct bh_arena *a, struct billing__invoice *out);
/* Newest first, numbers below before_number (0: from the newest). */
int billing__repo_invoices_list(struct bh_tx *tx, const bh_uuid *org_id, int64_t before_number,
                                int limit, struct bh_arena *a, struct billing__invoice *out,
                                int *n);
/* The open renewal invoice of a subscription (the one dunning retries). */
int billing__repo_invoice_open_renewal(struct bh_tx *tx, const bh_uuid *subscription_id,
                                       struct billing__invoice *out);
int billing__repo_invoice_set_status(struct bh_tx *tx, const bh_uuid *id, const char *status,
                                     time_t now);
int billing__repo_invoice_count_attempt(struct bh_tx *tx, const bh_uuid *id);
/* Voids the subscription's open plan-change invoices (a new attempt
 * supersedes them). */
int billing__repo_invoices_void_open_plan_changes(struct bh_tx *tx, const bh_uuid *subscription_id,
                                                  time_t now);

/* What came of a charge, as far as billing knows. */
enum billing__outcome {
    BILLING__OUTCOME_PAID,
    BILLING__OUTCOME_DECLINED, /* the card said no */
    BILLING__OUTCOME_FAILED,   /* the provider failed: nothing was taken */
    BILLING__OUTCOME_UNKNOWN,  /* no answer in time: money may have moved */
};

/* A charge attempt; its id is the idempotency key sent to the provider. */
struct billing__attempt {
    bh_uuid id;
    bh_uuid invoice_id;
    bh_uuid org_id;
    int64_t amount_cents;
    bool in_flight; /* pending or unknown: not settled yet */
};

/* Records a charge about to be made (pending). BH_ECONFLICT when the
 * organization already has one in flight, pending or unknown (a pending one
 * older than ten minutes lost its caller and becomes unknown first). */
int billing__repo_attempt_begin(struct bh_tx *tx, const bh_uuid *attempt_id,
                                const bh_uuid *invoice_id, const bh_uuid *org_id,
                                int64_t amount_cents);
/* Moves an attempt in flight to outcome (UNKNOWN keeps it in flight);
 * settled_by is "charge", "reconciler" or "webhook". 0, or 1 when it was
 * settled already (exactly one settler wins), or a bh_err. */
int billing__repo_attempt_finish(struct bh_tx *tx, const bh_uuid *attempt_id,
                                 enum billing__outcome outcome, const char *failure_code,
                                 const char *provider_ref, const char *settled_by);
/* An attempt the provider told us about (webhook) with none in flight. */
int billing__repo_attempt_record(struct bh_tx *tx, const bh_uuid *invoice_id, const bh_uuid *org_id,
                                 int64_t amount_cents, enum billing__outcome outcome,
                                 const char *failure_code);
/* One attempt (for_update locks it); BH_ENOTFOUND. */
int billing__repo_attempt_get(struct bh_tx *tx, const bh_uuid *id, bool for_update,
                              struct billing__attempt *out);
/* The invoice's attempt in flight, locked; BH_ENOTFOUND when none. */
int billing__repo_attempt_in_flight(struct bh_tx *tx, const bh_uuid *invoice_id,
                                    struct billing__attempt *out);
/* Attempts to reconcile: unknown for older_than_s, or pending for ten
 * minutes (their caller is gone). */
int billing__repo_attempts_unsettled(struct bh_tx *tx, long older_than_s, int max, bh_uuid *out,
                                     int *n);

int billing__repo_usage_add(struct bh_tx *tx, const char *org_id, int64_t d_tasks,
                            int64_t d_members);
int billing__repo_usage_get(struct bh_tx *tx, const bh_uuid *org_id, int64_t *tasks,
                            int64_t *members);

/* Records a webhook event id. 0 when new, 1 when already handled. */
int billing__repo_webhook_seen(struct bh_tx *tx, const char *provider,
                               const struct billing__payment_event *ev);

/* ------------------------------------------------------- idempotency keys */

struct billing__idem {
    bh_uuid org_id;
    char key[256];
    char hash[65];
    bool claimed; /* this request owns the key and must reply through it */
};

struct billing__idem_stored {
    char hash[65];
    int status; /* 0 while in flight */
    char type[64];
    const char *body; /* arena */
};

/* Starts an idempotent request for org_id. Returns 0 when this request
 * claimed the key (do the work, then answer with billing__idem_reply() or
 * billing__idem_problem(), or billing__idem_release() and return an error
 * for a transient failure); 1 when it already answered (a replay, a key in
 * flight 409, a reused key 422, a missing key 400): the handler returns 0;
 * or a negative bh_err. */
int billing__idem_begin(struct bh_req *req, const bh_uuid *org_id, struct billing__idem *out);
/* Answers with body (taken) and stores it for replays. */
int billing__idem_reply(struct bh_req *req, struct billing__idem *idem, unsigned status,
                        json_t *body);
/* Answers the refusal (err, why) as bh_reply_refusal() would (extra taken,
 * may be NULL) and stores it. */
int billing__idem_problem(struct bh_req *req, struct billing__idem *idem, int err,
                          const struct bh_refusal *why, json_t *extra);
/* Gives the key up without a stored answer: a retry will do the work. */
void billing__idem_release(struct billing__idem *idem);

/* Its SQL (repo.c); each statement runs in its own short transaction. */
int billing__repo_idem_claim(const struct billing__idem *idem, time_t now, bool *claimed);
int billing__repo_idem_get(const struct billing__idem *idem, struct bh_arena *a,
                           struct billing__idem_stored *out);
int billing__repo_idem_store(const struct billing__idem *idem, int status, const char *type,
                             const char *body);
int billing__repo_idem_release(const struct billing__idem *idem);
/* Deletes keys older than 24 h; returns how many through *n. */
int billing__repo_idem_purge(time_t now, int *n);

/* ------------------------------------------------- payments (the gateway) */

int billing__payments_init(void);
/* The handler pool of the routes that call the provider (a bulkhead). */
extern struct bh_handler_pool billing__provider_pool;
void billing__payments_shutdown(void);
const struct billing__provider *billing__provider(void);
/* True while the breaker refuses provider calls; *retry_after_s is when to
 * try again. Reserves nothing: a cheap check before writing anything. */
bool billing__payments_open(int *retry_after_s);
/* Through the breaker, within the time budget: 0, BH_EUNPROCESSABLE (bad
 * token), BH_EUNAVAILABLE (provider failed or breaker open), BH_ETIMEOUT. */
int billing__payments_attach(const char *token, struct billing__card *out);
int billing__payments_charge(const char *card_ref, int64_t amount_cents, const char *currency,
                             const char *idempotency_key, struct billing__charge_result *out);
/* Asks the provider about the charge made with idempotency_key: 0 (made,
 * *out tells how), BH_ENOTFOUND (never made), BH_EUNAVAILABLE or
 * BH_ETIMEOUT (no answer now: still unknown). */
int billing__payments_find_charge(const char *idempotency_key, struct billing__charge_result *out);

/* ---------------------------------------------------------------- services */

/* ------------------------------------------------ settling charges (settle.c) */

/* What a charge's return code and result mean: a timeout is UNKNOWN (money
 * may have moved), a provider failure FAILED, an answer PAID or DECLINED. */
enum billing__outcome billing__outcome_of(int charge_rc, const struct billing__charge_result *res);

/* Settles attempt_id of inv (its subscription s locked by tx) with what
 * came of it: the attempt and the invoice are recorded, and the plan change
 * or renewal the invoice was for takes effect (paid), waits (declined: the
 * invoice stays open; renewal: dunning), or is undone (failed: a plan
 * change's invoice is voided; a renewal goes to dunning). UNKNOWN records
 * the attempt as unknown and changes nothing else. settled_by: "charge",
 * "reconciler", "webhook". 1 when the attempt was settled by someone else
 * first (then nothing was written: the caller rolls back or commits
 * nothing new). *next_due (may be NULL)
 * receives when the subscription's renewal job should run next (0: no
 * change). */
int billing__settle(struct bh_tx *tx, struct billing__subscription *s,
                    const struct billing__invoice *inv, const bh_uuid *attempt_id,
                    enum billing__outcome outcome, const struct billing__charge_result *res,
                    const char *settled_by, const bh_uuid *actor_id, time_t *next_due);

/* Applies what a paid invoice was for to s (locked by tx): a plan change's
 * new plan (when s is still on the plan it was made from), or a renewal's
 * period (the end of dunning). Marks the invoice paid and publishes.
 * *next_due (may be NULL) as for billing__settle. */
int billing__settle_paid(struct bh_tx *tx, struct billing__subscription *s,
                         const struct billing__invoice *inv, const bh_uuid *actor_id,
                         time_t *next_due);

/* What billing__collect came to. */
struct billing__collection {
    enum billing__outcome outcome;
    struct billing__charge_result res;
    struct billing__subscription sub; /* as it is after settling */
    bh_uuid attempt_id;               /* the idempotency key the charge carried */
    time_t next_due;                  /* as for billing__settle */
};

/* Charges inv (open, total > 0) on card (NULL: no card, settled as a
 * decline) and settles the outcome. Takes tx, which holds the
 * subscription's lock and whatever the caller wrote: the pending attempt is
 * added to it and it commits before the provider is called; the outcome is
 * settled in a second transaction. BH_ECONFLICT (tx rolled back) when the
 * organization has a charge in flight already. An unknown outcome (or one
 * that could not be recorded) is left to the reconciler, scheduled here. */
int billing__collect(struct bh_tx *tx, struct billing__invoice *inv,
                     const struct billing__card *card, const bh_uuid *actor_id,
                     struct billing__collection *out);

/* The reconciler: asks the provider what came of attempt_id (or charges
 * again with the same idempotency key: the provider takes no money twice)
 * and settles it. 0 when settled (by this call or anyone before it);
 * BH_EUNAVAILABLE while the outcome is still unknown. */
int billing__reconcile(const bh_uuid *attempt_id);
/* Reconciles every attempt unknown for longer than the reconcile delay
 * (the sweep's safety net); *n how many were looked at. */
int billing__reconcile_due(int max, int *n);
/* Schedules billing__reconcile for attempt_id through the job queue
 * (schedule.c): after the reconcile delay (BULKHEAD_BILLING_RECONCILE_DELAY_MS),
 * doubled for each earlier try, at most an hour. Best effort. */
void billing__schedule_reconcile(const bh_uuid *attempt_id, int tries);
long billing__reconcile_delay_ms(void);
int billing__run_reconcile_job(const struct bh_job *job);

/* What a plan change or cancellation came to, for the HTTP edge. */
enum billing__change_kind {
    BILLING__CHANGE_NONE,                /* already so: nothing to do */
    BILLING__CHANGE_UPGRADED,            /* applied now, invoiced and paid */
    BILLING__CHANGE_DOWNGRADE_SCHEDULED, /* applies at the period end */
    BILLING__CHANGE_RESUMED,             /* a scheduled downgrade or cancel was undone */
    BILLING__CHANGE_CANCEL_SCHEDULED,    /* cancels at the period end */
    BILLING__CHANGE_CANCELED,            /* canceled now (it was past due) */
    BILLING__CHANGE_PENDING,             /* charged, no answer in time: settles later (202) */
};

struct billing__change_result {
    enum billing__change_kind kind;
    struct billing__subscription sub; /* as it is now */
    bh_uuid invoice_id;               /* the invoice made, nil if none */
    /* When the service returns an error, what to tell the client: */
    struct bh_refusal why;
    enum billing__decline_reason decline; /* BH_EPAYMENT */
    int retry_after_s;                    /* BH_EUNAVAILABLE */
};

/* PUT subscription: upgrade now (prorated, invoiced, charged), downgrade at
 * the period end, or undo a scheduled change. A charge without an answer in
 * time is 0 with kind PENDING (the reconciler settles it). Errors:
 * BH_EUNPROCESSABLE (unknown plan), BH_ELIMIT (members over the new
 * plan's limit), BH_ECONFLICT (past due, a charge in flight), BH_EPAYMENT (declined or no card),
 * BH_EUNAVAILABLE (provider failed or breaker open: nothing changed). */
int billing__change_plan(const bh_uuid *org_id, const bh_uuid *actor_id, const char *plan_id,
                         struct billing__change_result *out);
/* DELETE subscription: cancel at the period end. BH_ECONFLICT when there is
 * nothing to cancel (free plan, already canceled). */
int billing__cancel(const bh_uuid *org_id, const bh_uuid *actor_id,
                    struct billing__change_result *out);
/* Stores a card for org_id through the provider. */
int billing__set_payment_method(const bh_uuid *org_id, const char *token,
                                struct billing__card *out);

/* Reads for the HTTP edge (each in its own read-only transaction). */
int billing__get_plans(struct billing__plan *out, int max, int *n);
int billing__get_subscription(const bh_uuid *org_id, struct billing__subscription *out);
int billing__get_invoice(const bh_uuid *org_id, const bh_uuid *id, struct bh_arena *a,
                         struct billing__invoice *out);
int billing__list_invoices(const bh_uuid *org_id, int64_t before_number, int limit,
                           struct bh_arena *a, struct billing__invoice *out, int *n);
int billing__get_usage(const bh_uuid *org_id, int64_t *tasks, int64_t *members,
                       int64_t *limit_tasks, int64_t *limit_members);

/* Renews org_id's subscription if its period ended, or runs its due dunning
 * retry. Safe to run twice or concurrently: locks the row, checks dates.
 * *next_due is when it should run again (0: never); *acted tells whether
 * this call changed anything (only the caller that acted schedules the next
 * run, so duplicate wake-ups die out instead of multiplying). */
int billing__renew(const bh_uuid *org_id, time_t *next_due, bool *acted);
/* Renews every subscription that is due now; *n how many were looked at. */
int billing__sweep(int max, int *n);
/* Schedules billing__renew for org_id at `at` (billing's clock) through the
 * job queue (schedule.c); best effort (the sweep is the safety net). */
void billing__schedule_renewal(const bh_uuid *org_id, time_t at);

/* Applies a verified provider event. *duplicate when it was seen before. */
int billing__apply_payment_event(const struct billing__payment_event *ev, bool *duplicate);

/* ---------------------------------------------------------------- events */

/* The domain events billing publishes, on tx (docs/events.md). */
int billing__publish_subscription_changed(struct bh_tx *tx, const struct billing__subscription *s,
                                          const char *previous_plan,
                                          enum billing__status previous_status,
                                          const bh_uuid *actor_id, const char *reason);
int billing__publish_invoice_paid(struct bh_tx *tx, const struct billing__invoice *inv,
                                  const bh_uuid *actor_id);
int billing__publish_invoice_payment_failed(struct bh_tx *tx, const struct billing__invoice *inv,
                                            int attempt, time_t next_retry_at,
                                            enum billing__decline_reason reason,
                                            const bh_uuid *actor_id);

/* Event consumers and the renewal job (module descriptor). */
int billing__on_task_created(const struct bh_event *ev);
int billing__on_task_deleted(const struct bh_event *ev);
int billing__on_org_created(const struct bh_event *ev);
int billing__on_member_added(const struct bh_event *ev);
int billing__on_member_removed(const struct bh_event *ev);
int billing__run_renewal_job(const struct bh_job *job);
int billing__run_sweep_job(const struct bh_job *job);
/* Arms the periodic sweep (a process running workers, once they started);
 * best effort. */
void billing__start_sweeps(void);

/* ----------------------------------------------------------------- shapes */

json_t *billing__plan_json(const struct billing__plan *p);
json_t *billing__subscription_json(const struct billing__subscription *s);
json_t *billing__invoice_json(const struct billing__invoice *inv);

/* ---------------------------------------------------------- configuration */

/* The webhook signing secret and timestamp tolerance (settings.c). */
const char *billing__webhook_secret(void);
long billing__webhook_tolerance_s(void);
/* Reads them from the environment: 0, or BH_EINVAL (no usable secret in
 * production). Called once, by billing's init. */
int billing__settings_load(void);

/* ---------------------------------------------------------- HTTP handlers */

int billing__http_get_plans(struct bh_req *req);
int billing__http_get_subscription(struct bh_req *req);
int billing__http_put_subscription(struct bh_req *req);
int billing__http_delete_subscription(struct bh_req *req);
int billing__http_post_payment_method(struct bh_req *req);
int billing__http_list_invoices(struct bh_req *req);
int billing__http_get_invoice(struct bh_req *req);
int billing__http_get_usage(struct bh_req *req);
int billing__http_post_webhook(struct bh_req *req);
int billing__http_dev_sweep(struct bh_req *req);

#endif
