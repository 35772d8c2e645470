/* Billing's pure rules: subscription statuses and their transitions,
 * proration arithmetic, the dunning schedule and the webhook signature
 * check. No I/O, no clock, no database: everything they
 * need is passed in, so the unit tests can pin each rule down exactly. */
#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "platform/err.h"

/* ------------------------------------------------------------- statuses */

static const char *const status_names[] = {
    [BILLING__TRIALING] = "trialing",
    [BILLING__ACTIVE] = "active",
    [BILLING__PAST_DUE] = "past_due",
    [BILLING__CANCELED] = "canceled",
};

const char *billing__status_name(enum billing__status s)
{
    if ((size_t)s >= sizeof status_names / sizeof status_names[0])
        return "canceled";
    return status_names[s];
}

bool billing__status_parse(const char *name, enum billing__status *out)
{
    for (size_t i = 0; name && i < sizeof status_names / sizeof status_names[0]; i++)
        if (strcmp(name, status_names[i]) == 0) {
            *out = (enum billing__status)i;
            return true;
        }
    return false;
}

/* The table of docs/billing.md, "The subscription": for each event, the
 * status it leads to from each status, or -1 where it cannot happen. */
enum {
    NO = -1,
    T = BILLING__TRIALING,
    A = BILLING__ACTIVE,
    P = BILLING__PAST_DUE,
    C = BILLING__CANCELED
};

static const int transitions[][4] = {
    /*                               trialing active past_due canceled */
    [BILLING__EV_PERIOD_PAID] = {A, A, A, NO},
    [BILLING__EV_PERIOD_FREE] = {A, A, NO, NO},
    [BILLING__EV_PAYMENT_FAILED] = {P, P, P, NO},
    [BILLING__EV_DUNNING_EXHAUSTED] = {NO, NO, C, NO},
    [BILLING__EV_PERIOD_END_CANCEL] = {C, C, NO, NO},
    [BILLING__EV_CANCEL_NOW] = {NO, NO, C, NO},
    [BILLING__EV_PLAN_CHANGED] = {T, A, NO, NO},
    [BILLING__EV_RESTART] = {NO, NO, NO, A},
};

int billing__transition(enum billing__status from, enum billing__status_event ev,
                        enum billing__status *to)
{
    *to = from;
    if ((size_t)ev >= sizeof transitions / sizeof transitions[0] || (size_t)from > C)
        return BH_ECONFLICT;
    int next = transitions[ev][from];
    if (next == NO)
        return BH_ECONFLICT;
    *to = (enum billing__status)next;
    return 0;
}

/* ------------------------------------------------------------- money */

/* Proration: amount × remaining / length, rounded half up to a cent, in
 * integer arithmetic (no floating point ever touches money). The product
 * fits easily in 64 bits: cents below 10^9 times seconds below 10^9. */
int64_t billing__prorate(int64_t amount_cents, int64_t remaining, int64_t length)
{
    if (length <= 0 || amount_cents <= 0)
        return 0;
    if (remaining < 0)
        remaining = 0;
    if (remaining > length)
        remaining = length;
    return (2 * amount_cents * remaining + length) / (2 * length);
}

/* Retries 1, 3 and 7 days after the failed renewal; after the third retry
 * fails, the subscription is canceled. */
static const int retry_days[] = {1, 3, 7};

int billing__dunning_retries(void)
{
    return (int)(sizeof retry_days / sizeof retry_days[0]);
}

time_t billing__dunning_retry_at(time_t first_failure, int n)
{
    if (n < 1 || n > billing__dunning_retries())
        return 0;
    return first_failure + (time_t)retry_days[n - 1] * 86400;
}

void billing__sign(const char *secret, long long t, const char *body, size_t body_len, char out[65])
{
    char prefix[32];
    int plen = snprintf(prefix, sizeof prefix, "%lld.", t);
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t mac_len = 0;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0),
                           OSSL_PARAM_construct_end()};
    out[0] = '\0';
    EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
    /* The message is t + "." + body, fed in two parts: no copy of the body. */
    if (ctx && EVP_MAC_init(ctx, (const unsigned char *)secret, strlen(secret), params) == 1 &&
        EVP_MAC_update(ctx, (const unsigned char *)prefix, (size_t)plen) == 1 &&
        EVP_MAC_update(ctx, (const unsigned char *)body, body_len) == 1 &&
        EVP_MAC_final(ctx, mac, &mac_len, sizeof mac) == 1 && mac_len == 32) {
        for (size_t i = 0; i < mac_len; i++)
            snprintf(out + 2 * i, 3, "%02x", mac[i]);
    }
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(hmac);
}

/* Reads "t=<digits>" and every "v1=<64 hex>" from the header. */
enum billing__signature billing__verify_signature(const char *header, const char *body,
                                                  size_t body_len, const char *secret, time_t now,
                                                  long tolerance_s)
{
    enum billing__signature bad = BILLING__SIGNATURE_INVALID;
    if (!header || !*header || !secret || !*secret)
        return bad;
    long long t = -1;
    const char *candidates[8];
    int n = 0;
    char copy[1024];
    if (strlen(header) >= sizeof copy)
        return bad;
    snprintf(copy, sizeof copy, "%s", header);
    for (char *save = NULL, *part = strtok_r(copy, ",", &save); part;
         part = strtok_r(NULL, ",", &save)) {
        while (*part == ' ')
            part++;
        if (strncmp(part, "t=", 2) == 0) {
            char *end = NULL;
            const char *digits = part + 2;
            if (!isdigit((unsigned char)*digits))
                return bad;
            t = strtoll(digits, &end, 10);
            if (*end != '\0' || end - digits > 12)
                return bad;
        } else if (strncmp(part, "v1=", 3) == 0 && n < 8) {
            candidates[n++] = part + 3;
        } /* other schemes (v0, future ones) are ignored */
    }
    if (t < 0 || n == 0)
        return bad;
    char expected[65];
    billing__sign(secret, t, body, body_len, expected);
    if (strlen(expected) != 64)
        return bad; /* HMAC unavailable: nothing can be proven */
    bool match = false;
    for (int i = 0; i < n; i++) {
        char given[65];
        size_t len = strlen(candidates[i]);
        if (len != 64)
            continue;
        for (size_t k = 0; k < 64; k++)
            given[k] = (char)tolower((unsigned char)candidates[i][k]);
        given[64] = '\0';
        /* Constant time: how much of a guess matched must not show. */
        match |= CRYPTO_memcmp(given, expected, 64) == 0;
    }
    if (!match)
        return bad;
    /* Checked after the signature, so a forged timestamp cannot probe it. */
    long long skew = (long long)now - t;
    if (skew > tolerance_s || skew < -tolerance_s)
        return BILLING__SIGNATURE_STALE;
    return BILLING__SIGNATURE_VALID;
}
