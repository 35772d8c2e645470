/* Declarations shared between the billing module's own files (never
 * included by anyone else): the domain types, the repository (all SQL), the
 * clock and the services. Nothing here names a payment provider: provider
 * vocabulary stays inside provider_*.c (the anti-corruption layer). */
#ifndef BILLING_INTERNAL_H
#define BILLING_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "billing/billing.h"
#include "platform/http.h"
#include "platform/uuid.h"

struct bh_tx;

/* ------------------------------------------------------------- domain types */

/* A plan of the catalogue. Limits are -1 for unlimited. */
struct billing__plan {
    char id[33];
    char name[101];
    int rank;
    int64_t price_cents;
    char currency[4];
    char interval[8]; /* "month" | "year" */
    int trial_days;
    int64_t limit_tasks;
    int64_t limit_members;
};

enum { BILLING__UNLIMITED = -1 };

struct billing__subscription {
    bh_uuid id;
    bh_uuid org_id;
    char plan_id[33];
    char status[16];     /* trialing | active | past_due | canceled */
    time_t period_start; /* seconds since the epoch */
    time_t period_end;
    bool cancel_at_period_end;
    char pending_plan_id[33]; /* "" when no downgrade is scheduled */
    int dunning_attempts;
    time_t next_retry_at; /* 0 when nothing is owed */
};

/* --------------------------------------------------------------- the clock */

/* Billing's notion of now (seconds since the epoch): the real time, plus, in
 * dev mode only, the offset held in BULKHEAD_BILLING_CLOCK_FILE, so tests can
 * move a subscription through renewals and dunning without waiting a month. */
time_t billing__now(void);
/* RFC 3339 UTC ("2026-01-02T03:04:05Z") into out (at least 21 bytes). */
void billing__format_time(time_t t, char out[32]);
/* Adds one plan interval ("month" or "year") to t, keeping the day of month
 * where the calendar allows (Jan 31 + 1 month = Feb 28/29). */
time_t billing__add_interval(time_t t, const char *interval);

/* -------------------------------------------------------------- repository */

int billing__repo_plans(struct bh_tx *tx, struct billing__plan *out, int max, int *n);
int billing__repo_plan(struct bh_tx *tx, const char *plan_id, struct billing__plan *out);
/* The limits in force for org_id: its plan's while the subscription is live,
 * the free plan's when it is canceled or missing. */
int billing__repo_effective_limits(struct bh_tx *tx, const bh_uuid *org_id, int64_t *tasks,
                                   int64_t *members);
/* Inserts org_id's subscription; BH_ECONFLICT when it already has one (the
 * caller's transaction stays usable: ON CONFLICT DO NOTHING). */
int billing__repo_subscription_insert(struct bh_tx *tx, const struct billing__subscription *s);
/* Reads org_id's subscription; BH_ENOTFOUND when none. for_update locks it. */
int billing__repo_subscription_get(struct bh_tx *tx, const bh_uuid *org_id, bool for_update,
                                   struct billing__subscription *out);

/* --------------------------------------------------------------- services */

/* JSON renderings (new references; NULL on OOM). */
json_t *billing__plan_json(const struct billing__plan *p);
json_t *billing__subscription_json(const struct billing__subscription *s);

/* ---------------------------------------------------------- HTTP handlers */

int billing__http_get_plans(struct bh_req *req);

#endif
