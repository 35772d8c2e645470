/* The default payment provider adapter: a deterministic simulator that
 * speaks a Stripe-like dialect (test tokens tok_visa, tok_chargeDeclined...,
 * charge ids ch_..., events evt_... with `created` and `failure_code`). It
 * translates all of that into billing's port types (provider.h); nothing of
 * this vocabulary may appear outside this file. It never moves real money. */
#include <jansson.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "platform/config.h"
#include "platform/err.h"
#include "provider.h"

/* How a simulated card behaves when charged. */
struct sim_token {
    const char *token;   /* what the client sends */
    const char *behaves; /* encoded in the card ref: ok|declined|funds|expired|hang|error */
    const char *brand;
    const char *last4;
};

static const struct sim_token tokens[] = {
    {"tok_visa", "ok", "visa", "4242"},
    {"tok_mastercard", "ok", "mastercard", "4444"},
    {"tok_chargeDeclined", "declined", "visa", "0002"},
    {"tok_chargeDeclinedInsufficientFunds", "funds", "visa", "9995"},
    {"tok_chargeDeclinedExpiredCard", "expired", "visa", "0069"},
    /* Hangs past any sensible time budget: the caller must give up. */
    {"tok_timeout", "hang", "visa", "0000"},
    /* The provider itself fails (a 5xx in a real provider's API). */
    {"tok_chargeDeclinedProcessingError", "error", "visa", "0119"},
};

static atomic_bool abandoning;

static int sim_attach_card(const char *token, struct billing__card *out)
{
    for (size_t i = 0; i < sizeof tokens / sizeof tokens[0]; i++) {
        if (strcmp(token, tokens[i].token) != 0)
            continue;
        unsigned char raw[8];
        char hex[17];
        randombytes_buf(raw, sizeof raw);
        sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
        snprintf(out->ref, sizeof out->ref, "card_sim_%s_%s", tokens[i].behaves, hex);
        snprintf(out->brand, sizeof out->brand, "%s", tokens[i].brand);
        snprintf(out->last4, sizeof out->last4, "%s", tokens[i].last4);
        return 0;
    }
    return BH_EUNPROCESSABLE;
}

static bool ref_behaves(const char *ref, const char *behaviour)
{
    static const char prefix[] = "card_sim_";
    size_t n = strlen(behaviour);
    return strncmp(ref, prefix, sizeof prefix - 1) == 0 &&
           strncmp(ref + sizeof prefix - 1, behaviour, n) == 0 && ref[sizeof prefix - 1 + n] == '_';
}

/* Sleeps in short steps so that shutdown (abandon_calls) ends it early. */
static void hang(void)
{
    long ms = bh_config_int("BULKHEAD_BILLING_SIMULATOR_HANG_MS", 30000, 0, 600000);
    for (long slept = 0; slept < ms && !atomic_load(&abandoning); slept += 50) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static int sim_charge(const char *card_ref, int64_t amount_cents, const char *currency,
                      const char *idempotency_key, struct billing__charge_result *out)
{
    memset(out, 0, sizeof *out);
    if (ref_behaves(card_ref, "hang")) {
        hang();
        return BH_EUNAVAILABLE;
    }
    if (ref_behaves(card_ref, "error"))
        return BH_EUNAVAILABLE;
    unsigned char raw[12];
    char hex[25];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
    snprintf(out->ref, sizeof out->ref, "ch_sim_%s", hex);
    if (ref_behaves(card_ref, "ok")) {
        out->outcome = BILLING__CHARGE_SUCCEEDED;
        out->decline = BILLING__DECLINE_NONE;
        return 0;
    }
    out->outcome = BILLING__CHARGE_DECLINED;
    if (ref_behaves(card_ref, "funds"))
        out->decline = BILLING__DECLINE_INSUFFICIENT_FUNDS;
    else if (ref_behaves(card_ref, "expired"))
        out->decline = BILLING__DECLINE_EXPIRED_CARD;
    else
        out->decline = BILLING__DECLINE_GENERIC;
    return 0;
}

/* The provider's decline codes, in billing's terms. */
static enum billing__decline_reason decline_from_code(const char *code)
{
    if (!code || !*code)
        return BILLING__DECLINE_NONE;
    if (strcmp(code, "insufficient_funds") == 0)
        return BILLING__DECLINE_INSUFFICIENT_FUNDS;
    if (strcmp(code, "expired_card") == 0)
        return BILLING__DECLINE_EXPIRED_CARD;
    return BILLING__DECLINE_GENERIC;
}

/* {"id": "evt_...", "type": "payment.succeeded", "created": 1700000000,
 *  "data": {"invoice_id": "...", "failure_code": "card_declined"}} */
static int sim_parse_event(const char *body, size_t len, struct billing__payment_event *out)
{
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    const char *id = NULL, *type = NULL, *invoice = NULL, *failure = NULL;
    json_int_t created = 0;
    int rc = BH_EINVAL;
    if (!root || json_unpack_ex(root, &jerr, 0, "{s:s, s:s, s:I, s?{s?s, s?s}}", "id", &id, "type",
                                &type, "created", &created, "data", "invoice_id", &invoice,
                                "failure_code", &failure) != 0)
        goto out;
    if (strlen(id) == 0 || strlen(id) >= sizeof out->id || strlen(type) >= sizeof out->type ||
        created <= 0)
        goto out;
    snprintf(out->id, sizeof out->id, "%s", id);
    snprintf(out->type, sizeof out->type, "%s", type);
    out->occurred_at = (time_t)created;
    if (strcmp(type, "payment.succeeded") == 0)
        out->kind = BILLING__PAYMENT_EVENT_SUCCEEDED;
    else if (strcmp(type, "payment.failed") == 0)
        out->kind = BILLING__PAYMENT_EVENT_FAILED;
    else
        out->kind = BILLING__PAYMENT_EVENT_OTHER;
    if (out->kind != BILLING__PAYMENT_EVENT_OTHER &&
        (!invoice || !bh_uuid_parse(invoice, &out->invoice_id)))
        goto out;
    out->decline =
        out->kind == BILLING__PAYMENT_EVENT_FAILED
            ? (decline_from_code(failure) != BILLING__DECLINE_NONE ? decline_from_code(failure)
                                                                   : BILLING__DECLINE_GENERIC)
            : BILLING__DECLINE_NONE;
    rc = 0;
out:
    json_decref(root);
    return rc;
}

static void sim_abandon_calls(void)
{
    atomic_store(&abandoning, true);
}

const struct billing__provider billing__provider_simulator = {
    .name = "simulator",
    .attach_card = sim_attach_card,
    .charge = sim_charge,
    .parse_event = sim_parse_event,
    .abandon_calls = sim_abandon_calls,
};
