/* The payment provider PORT: what billing needs from any payment provider,
 * in billing's own words (cards, charges, outcomes, payment events). An
 * adapter (provider_simulator.c today; a Stripe adapter tomorrow) implements
 * it and translates to and from the provider's vocabulary, which must never
 * leak past the adapter: the domain sees only the types below. */
#ifndef BILLING_PROVIDER_H
#define BILLING_PROVIDER_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "platform/uuid.h"

/* A stored card, as billing knows it. ref is the adapter's opaque handle. */
struct billing__card {
    char ref[128];
    char brand[16];
    char last4[5];
};

enum billing__charge_outcome {
    BILLING__CHARGE_SUCCEEDED,
    BILLING__CHARGE_DECLINED,
};

/* Why a card was declined, in billing's terms. */
enum billing__decline_reason {
    BILLING__DECLINE_NONE,
    BILLING__DECLINE_GENERIC,
    BILLING__DECLINE_INSUFFICIENT_FUNDS,
    BILLING__DECLINE_EXPIRED_CARD,
};

struct billing__charge_result {
    enum billing__charge_outcome outcome;
    enum billing__decline_reason decline;
    char ref[128]; /* the provider's id for the charge (opaque) */
};

enum billing__payment_event_kind {
    BILLING__PAYMENT_EVENT_OTHER, /* anything billing does not act on */
    BILLING__PAYMENT_EVENT_SUCCEEDED,
    BILLING__PAYMENT_EVENT_FAILED,
};

/* A provider notification (webhook), translated. */
struct billing__payment_event {
    char id[256]; /* the provider's event id: the deduplication key */
    enum billing__payment_event_kind kind;
    char type[64];      /* the provider's type, for the ledger and logs only */
    time_t occurred_at; /* when the provider says it happened */
    bh_uuid invoice_id; /* billing's invoice the payment was for (nil if none) */
    enum billing__decline_reason decline;
};

/* The port. Every function may block; the caller (payments.c) enforces the
 * time budget and the circuit breaker, so an adapter stays simple. */
struct billing__provider {
    const char *name; /* "simulator": the {provider} of the webhook route */

    /* Turns a token from the client into a stored card. 0,
     * BH_EUNPROCESSABLE (the token is not usable), BH_EUNAVAILABLE. */
    int (*attach_card)(const char *token, struct billing__card *out);

    /* Charges the card. 0 with *out telling succeeded or declined (a
     * decline is an answer, not a failure); BH_EUNAVAILABLE when the
     * provider failed, or while an earlier charge with the same key is still
     * being processed. Every charge carries an idempotency_key: the same key
     * again takes no money twice and answers the first charge's outcome. */
    int (*charge)(const char *card_ref, int64_t amount_cents, const char *currency,
                  const char *idempotency_key, struct billing__charge_result *out);

    /* Asks what came of the charge made with idempotency_key (the caller
     * may have given up waiting for its answer). 0 with *out when the
     * provider made it; BH_ENOTFOUND when it has no charge under that key;
     * BH_EUNAVAILABLE when it failed or is still processing the charge. */
    int (*find_charge)(const char *idempotency_key, struct billing__charge_result *out);

    /* Translates a webhook body (its signature already verified). 0 or
     * BH_EINVAL. */
    int (*parse_event)(const char *body, size_t len, struct billing__payment_event *out);

    /* Makes calls in progress return soon (shutdown). May be NULL. */
    void (*abandon_calls)(void);
};

/* The adapter in use (the simulator; chosen in payments.c). */
extern const struct billing__provider billing__provider_simulator;

/* Billing's name for a decline reason ("card_declined", ...). */
const char *billing__decline_name(enum billing__decline_reason r);

#endif
