/* The default payment provider adapter: a deterministic simulator that
 * speaks a Stripe-like dialect (test tokens tok_visa, tok_chargeDeclined...,
 * charge ids ch_..., events evt_... with `created` and `failure_code`). It
 * translates all of that into billing's port types (provider.h); nothing of
 * this vocabulary may appear outside this file. It never moves real money. */
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "platform/clock.h"
#include "platform/config.h"
#include "platform/err.h"
#include "platform/log.h"
#include "platform/metrics.h"
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
    /* Hangs past any sensible time budget, then succeeds: the caller gave
     * up, yet the money moved (the outcome was unknown, not a failure). */
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
    for (long slept = 0; slept < ms && !atomic_load(&abandoning); slept += 50)
        bh_sleep_ms(50);
}

/* The simulator's ledger: every charge it took or refused, by idempotency
 * key, as a real provider keeps them (in this process's memory only: a
 * restarted server forgets them, which a real provider does not). A charge repeated with a key it
 * knows takes nothing and answers the first outcome; find_charge reads it. Bounded: the oldest
 * finished entries make room (a real provider keeps keys for a day or so; the simulator keeps the
 * last LEDGER_SIZE). */
enum { LEDGER_SIZE = 4096 };

struct ledger_entry {
    char key[64]; /* "" when the slot is free */
    bool done;    /* false while the charge is being processed */
    struct billing__charge_result result;
};

static struct ledger_entry ledger[LEDGER_SIZE];
static size_t ledger_next;
static pthread_mutex_t ledger_lock = PTHREAD_MUTEX_INITIALIZER;

/* Money actually taken, for /metrics: a test counts charges at the provider. */
static struct bh_counter *charges_taken;
static pthread_once_t charges_once = PTHREAD_ONCE_INIT;

static void charges_register(void)
{
    charges_taken = bh_counter_get("bulkhead_billing_simulator_charges_total",
                                   "Charges the simulated provider took (money moved).", "");
}

/* Under ledger_lock. */
static struct ledger_entry *ledger_find(const char *key)
{
    for (size_t i = 0; i < LEDGER_SIZE; i++)
        if (ledger[i].key[0] && strcmp(ledger[i].key, key) == 0)
            return &ledger[i];
    return NULL;
}

enum claim { CLAIM_NEW, CLAIM_DONE, CLAIM_BUSY };

/* Registers key as being processed (CLAIM_NEW), or tells what the ledger
 * already holds: a finished charge (CLAIM_DONE, *out filled) or one still in
 * progress (CLAIM_BUSY, also when no slot is free). */
static enum claim ledger_claim(const char *key, struct billing__charge_result *out)
{
    enum claim c = CLAIM_BUSY;
    pthread_mutex_lock(&ledger_lock);
    struct ledger_entry *e = ledger_find(key);
    if (e && e->done) {
        *out = e->result;
        c = CLAIM_DONE;
    } else if (!e) {
        for (size_t tries = 0; tries < LEDGER_SIZE; tries++) {
            struct ledger_entry *slot = &ledger[ledger_next];
            ledger_next = (ledger_next + 1) % LEDGER_SIZE;
            if (slot->key[0] && !slot->done)
                continue; /* never evict a charge in progress */
            memset(slot, 0, sizeof *slot);
            snprintf(slot->key, sizeof slot->key, "%s", key);
            c = CLAIM_NEW;
            break;
        }
    }
    pthread_mutex_unlock(&ledger_lock);
    return c;
}

/* Finishes key's entry with result, or forgets it (result NULL: nothing
 * was charged, a retry with the key may charge). */
static void ledger_finish(const char *key, const struct billing__charge_result *result)
{
    pthread_mutex_lock(&ledger_lock);
    struct ledger_entry *e = ledger_find(key);
    if (e && result) {
        e->result = *result;
        e->done = true;
    } else if (e) {
        memset(e, 0, sizeof *e);
    }
    pthread_mutex_unlock(&ledger_lock);
}

/* What a card does when charged (the money, if any, moves here). */
static int card_outcome(const char *card_ref, struct billing__charge_result *out)
{
    memset(out, 0, sizeof *out);
    if (ref_behaves(card_ref, "error"))
        return BH_EUNAVAILABLE;
    /* A hanging charge goes through in the end: the caller that gave up
     * waiting learns it by asking (find_charge) or from the webhook. */
    if (ref_behaves(card_ref, "hang"))
        hang();
    unsigned char raw[12];
    char hex[25];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
    snprintf(out->ref, sizeof out->ref, "ch_sim_%s", hex);
    if (ref_behaves(card_ref, "ok") || ref_behaves(card_ref, "hang")) {
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

static int sim_charge(const char *card_ref, int64_t amount_cents, const char *currency,
                      const char *idempotency_key, struct billing__charge_result *out)
{
    (void)amount_cents;
    (void)currency;
    memset(out, 0, sizeof *out);
    if (!idempotency_key || !*idempotency_key || strlen(idempotency_key) >= sizeof ledger[0].key)
        return BH_EINVAL;
    switch (ledger_claim(idempotency_key, out)) {
    case CLAIM_DONE: return 0; /* a retry: the first charge's outcome, no money again */
    case CLAIM_BUSY: return BH_EUNAVAILABLE;
    case CLAIM_NEW: break;
    }
    int rc = card_outcome(card_ref, out);
    ledger_finish(idempotency_key, rc == 0 ? out : NULL);
    if (rc == 0 && out->outcome == BILLING__CHARGE_SUCCEEDED) {
        pthread_once(&charges_once, charges_register);
        bh_counter_add(charges_taken, 1);
        bh_log_info("simulator: charge %s taken under idempotency key %s", out->ref,
                    idempotency_key);
    }
    return rc;
}

static int sim_find_charge(const char *idempotency_key, struct billing__charge_result *out)
{
    memset(out, 0, sizeof *out);
    int rc = BH_ENOTFOUND;
    pthread_mutex_lock(&ledger_lock);
    struct ledger_entry *e = idempotency_key ? ledger_find(idempotency_key) : NULL;
    if (e && e->done) {
        *out = e->result;
        rc = 0;
    } else if (e) {
        rc = BH_EUNAVAILABLE; /* still processing */
    }
    pthread_mutex_unlock(&ledger_lock);
    return rc;
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
    .find_charge = sim_find_charge,
    .parse_event = sim_parse_event,
    .abandon_calls = sim_abandon_calls,
};
