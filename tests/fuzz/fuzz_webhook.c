/* Fuzzing what a provider's webhook request meets before anything is
 * written: the Billing-Signature header parser and check
 * (modules/billing/src/rules.c) and the simulator adapter's event parser
 * (provider_simulator.c). The input is "header\nbody". Invalid signatures,
 * stale ones and valid ones (the body re-signed with the right secret) must
 * each come out as exactly that, for any bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "platform/err.h"
#include "provider.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char SECRET[] = "whsec_fuzz_0123456789abcdef";
static const time_t NOW = 1800000000;

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "FAIL: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    const uint8_t *nl = memchr(data, '\n', size);
    size_t hlen = nl ? (size_t)(nl - data) : size;
    const char *body = nl ? (const char *)nl + 1 : "";
    size_t blen = nl ? size - hlen - 1 : 0;
    char *header = malloc(hlen + 1);
    if (!header)
        return 0;
    memcpy(header, data, hlen);
    header[hlen] = '\0';

    enum billing__signature v = billing__verify_signature(header, body, blen, SECRET, NOW, 300);
    check(v == BILLING__SIGNATURE_VALID || v == BILLING__SIGNATURE_INVALID ||
              v == BILLING__SIGNATURE_STALE,
          "the check answers one of its three verdicts");

    /* The same body signed properly is valid now, stale 301 s away. */
    char sig[65], good[128];
    billing__sign(SECRET, (long long)NOW, body, blen, sig);
    snprintf(good, sizeof good, "t=%lld,v1=%s", (long long)NOW, sig);
    check(billing__verify_signature(good, body, blen, SECRET, NOW, 300) == BILLING__SIGNATURE_VALID,
          "a body signed with the secret is valid");
    check(billing__verify_signature(good, body, blen, SECRET, NOW + 301, 300) ==
              BILLING__SIGNATURE_STALE,
          "a signature 301 s old is stale");
    check(billing__verify_signature(good, body, blen, "another secret", NOW, 300) ==
              BILLING__SIGNATURE_INVALID,
          "another secret's signature is invalid");

    struct billing__payment_event ev;
    if (billing__provider_simulator.parse_event(body, blen, &ev) == 0) {
        check(ev.id[0] != '\0' && strlen(ev.id) < sizeof ev.id, "a parsed event has an id");
        check(ev.occurred_at > 0, "a parsed event has a time");
        check(ev.kind == BILLING__PAYMENT_EVENT_OTHER || strlen(ev.invoice_id.str) == 36,
              "a payment event names an invoice");
    }
    free(header);
    return 0;
}
