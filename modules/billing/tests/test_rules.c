/* Billing's pure rules pinned down: proration rounding, the dunning
 * schedule, calendar months, the webhook signature check, and the simulator
 * adapter's translation into billing's own types. No database, no Redis. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "platform/err.h"
#include "provider.h"

static const char SECRET[] = "whsec_unit_test";

/* ---------------------------------------------------------------- proration */

static void prorate_rounds_half_up_to_whole_cents(void **state)
{
    (void)state;
    assert_int_equal(billing__prorate(1200, 30, 30), 1200);
    assert_int_equal(billing__prorate(1200, 15, 30), 600);
    assert_int_equal(billing__prorate(1200, 0, 30), 0);
    /* 1200 × 1/7 = 171.43 → 171; 4900 × 1/8 = 612.5 → 613 (half up). */
    assert_int_equal(billing__prorate(1200, 1, 7), 171);
    assert_int_equal(billing__prorate(4900, 1, 8), 613);
    /* 1 cent × 1/3 = 0.33 → 0; × 2/3 = 0.67 → 1. */
    assert_int_equal(billing__prorate(1, 1, 3), 0);
    assert_int_equal(billing__prorate(1, 2, 3), 1);
}

static void prorate_clamps_remaining_time_and_ignores_empty_periods(void **state)
{
    (void)state;
    assert_int_equal(billing__prorate(1200, 40, 30), 1200);
    assert_int_equal(billing__prorate(1200, -5, 30), 0);
    assert_int_equal(billing__prorate(1200, 5, 0), 0);
    assert_int_equal(billing__prorate(0, 5, 30), 0);
}

static void an_upgrade_charge_never_falls_below_its_credit(void **state)
{
    (void)state;
    /* Rounding is monotone: for the same remaining time, a dearer plan's
     * charge is at least the cheaper plan's credit, so totals stay >= 0. */
    const int64_t length = 30 * 86400;
    for (int64_t remaining = 0; remaining <= length; remaining += 8641)
        assert_true(billing__prorate(4900, remaining, length) >=
                    billing__prorate(1200, remaining, length));
}

/* ------------------------------------------------------------------ dunning */

static void dunning_retries_after_one_three_and_seven_days_then_stops(void **state)
{
    (void)state;
    const time_t t = 1800000000;
    assert_int_equal(billing__dunning_retries(), 3);
    assert_int_equal(billing__dunning_retry_at(t, 1), t + 1 * 86400);
    assert_int_equal(billing__dunning_retry_at(t, 2), t + 3 * 86400);
    assert_int_equal(billing__dunning_retry_at(t, 3), t + 7 * 86400);
    assert_int_equal(billing__dunning_retry_at(t, 4), 0);
    assert_int_equal(billing__dunning_retry_at(t, 0), 0);
}

/* ------------------------------------------------------------------ calendar */

static time_t utc(int y, int mo, int d)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = 12};
    return timegm(&tm);
}

static void a_month_later_keeps_the_day_or_clamps_to_the_month_end(void **state)
{
    (void)state;
    assert_int_equal(billing__add_interval(utc(2026, 1, 15), "month"), utc(2026, 2, 15));
    assert_int_equal(billing__add_interval(utc(2026, 1, 31), "month"), utc(2026, 2, 28));
    assert_int_equal(billing__add_interval(utc(2028, 1, 31), "month"), utc(2028, 2, 29));
    assert_int_equal(billing__add_interval(utc(2026, 12, 31), "month"), utc(2027, 1, 31));
    assert_int_equal(billing__add_interval(utc(2028, 2, 29), "year"), utc(2029, 2, 28));
}

/* ---------------------------------------------------------------- signatures */

static void header_for(const char *body, long long t, const char *secret, char *out, size_t n)
{
    char sig[65];
    billing__sign(secret, t, body, strlen(body), sig);
    snprintf(out, n, "t=%lld,v1=%s", t, sig);
}

static void a_signature_matches_the_published_hmac(void **state)
{
    (void)state;
    /* printf '%s' '1700000000.{}' | openssl dgst -sha256 -hmac whsec_unit_test */
    char sig[65];
    billing__sign(SECRET, 1700000000, "{}", 2, sig);
    assert_string_equal(sig, "64e8e59713dcb9e2cce47bdfd4cc1d6358b30e49f1b11517afd172febb310c74");
    billing__sign(SECRET, 1700000001, "{}", 2, sig);
    assert_string_not_equal(sig,
                            "64e8e59713dcb9e2cce47bdfd4cc1d6358b30e49f1b11517afd172febb310c74");
}

static void valid_signatures_within_the_tolerance_pass(void **state)
{
    (void)state;
    const char *body = "{\"id\":\"evt_1\"}";
    const time_t now = 1800000000;
    char h[200];
    header_for(body, now - 299, SECRET, h, sizeof h);
    assert_int_equal(billing__verify_signature(h, body, strlen(body), SECRET, now, 300),
                     BILLING__SIGNATURE_VALID);
    header_for(body, now + 299, SECRET, h, sizeof h);
    assert_int_equal(billing__verify_signature(h, body, strlen(body), SECRET, now, 300),
                     BILLING__SIGNATURE_VALID);
    /* Several v1 entries (a secret being rotated): one match is enough. */
    char sig[65], two[300];
    billing__sign(SECRET, now, body, strlen(body), sig);
    snprintf(two, sizeof two, "t=%lld,v1=%064d,v1=%s", (long long)now, 0, sig);
    assert_int_equal(billing__verify_signature(two, body, strlen(body), SECRET, now, 300),
                     BILLING__SIGNATURE_VALID);
}

static void forged_tampered_and_malformed_signatures_fail(void **state)
{
    (void)state;
    const char *body = "{\"id\":\"evt_1\"}";
    const time_t now = 1800000000;
    char h[200];
    header_for(body, now, "another_secret", h, sizeof h);
    assert_int_equal(billing__verify_signature(h, body, strlen(body), SECRET, now, 300),
                     BILLING__SIGNATURE_INVALID);
    header_for("{\"id\":\"evt_2\"}", now, SECRET, h, sizeof h);
    assert_int_equal(billing__verify_signature(h, body, strlen(body), SECRET, now, 300),
                     BILLING__SIGNATURE_INVALID);
    const char *bad[] = {NULL,       "",           "t=1800000000", "v1=abc",
                         "t=,v1=00", "t=-5,v1=00", "t=18x,v1=00",  "t=1800000000,v1=zz"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(billing__verify_signature(bad[i], body, strlen(body), SECRET, now, 300),
                         BILLING__SIGNATURE_INVALID);
}

static void signatures_outside_the_tolerance_are_stale(void **state)
{
    (void)state;
    const char *body = "{}";
    const time_t now = 1800000000;
    char h[200];
    header_for(body, now - 301, SECRET, h, sizeof h);
    assert_int_equal(billing__verify_signature(h, body, 2, SECRET, now, 300),
                     BILLING__SIGNATURE_STALE);
    header_for(body, now + 301, SECRET, h, sizeof h);
    assert_int_equal(billing__verify_signature(h, body, 2, SECRET, now, 300),
                     BILLING__SIGNATURE_STALE);
}

/* ------------------------------------------------------------ the simulator */

static void the_simulator_translates_tokens_into_billing_outcomes(void **state)
{
    (void)state;
    const struct billing__provider *p = &billing__provider_simulator;
    struct billing__card card;
    struct billing__charge_result res;
    assert_int_equal(p->attach_card("tok_nonsense", &card), BH_EUNPROCESSABLE);

    assert_int_equal(p->attach_card("tok_visa", &card), 0);
    assert_string_equal(card.last4, "4242");
    assert_int_equal(p->charge(card.ref, 1200, "USD", "k1", &res), 0);
    assert_int_equal(res.outcome, BILLING__CHARGE_SUCCEEDED);

    assert_int_equal(p->attach_card("tok_chargeDeclined", &card), 0);
    assert_int_equal(p->charge(card.ref, 1200, "USD", "k2", &res), 0);
    assert_int_equal(res.outcome, BILLING__CHARGE_DECLINED);
    assert_int_equal(res.decline, BILLING__DECLINE_GENERIC);

    assert_int_equal(p->attach_card("tok_chargeDeclinedInsufficientFunds", &card), 0);
    assert_int_equal(p->charge(card.ref, 1200, "USD", "k3", &res), 0);
    assert_int_equal(res.decline, BILLING__DECLINE_INSUFFICIENT_FUNDS);
    assert_string_equal(billing__decline_name(res.decline), "insufficient_funds");

    assert_int_equal(p->attach_card("tok_chargeDeclinedProcessingError", &card), 0);
    assert_int_equal(p->charge(card.ref, 1200, "USD", "k4", &res), BH_EUNAVAILABLE);
    /* A provider error took nothing: the key is free, a retry charges. */
    assert_int_equal(p->find_charge("k4", &res), BH_ENOTFOUND);
}

/* Every charge carries an idempotency key: the same key again answers the
 * first outcome and takes nothing; find_charge tells what came of it. */
static void the_simulator_charges_each_idempotency_key_once(void **state)
{
    (void)state;
    const struct billing__provider *p = &billing__provider_simulator;
    struct billing__card card;
    struct billing__charge_result first, again, found;
    assert_int_equal(p->find_charge("idem-1", &found), BH_ENOTFOUND);
    assert_int_equal(p->attach_card("tok_visa", &card), 0);
    assert_int_equal(p->charge(card.ref, 1200, "USD", "idem-1", &first), 0);
    assert_int_equal(p->charge(card.ref, 1200, "USD", "idem-1", &again), 0);
    assert_string_equal(first.ref, again.ref);
    assert_int_equal(p->find_charge("idem-1", &found), 0);
    assert_int_equal(found.outcome, BILLING__CHARGE_SUCCEEDED);
    assert_string_equal(found.ref, first.ref);

    assert_int_equal(p->attach_card("tok_chargeDeclined", &card), 0);
    assert_int_equal(p->charge(card.ref, 1200, "USD", "idem-2", &first), 0);
    assert_int_equal(p->find_charge("idem-2", &found), 0);
    assert_int_equal(found.outcome, BILLING__CHARGE_DECLINED);
}

/* tok_timeout hangs past the caller's budget and then succeeds: the money
 * moved although the caller gave up. */
static void a_hanging_charge_succeeds_in_the_end(void **state)
{
    (void)state;
    setenv("BULKHEAD_BILLING_SIMULATOR_HANG_MS", "100", 1);
    const struct billing__provider *p = &billing__provider_simulator;
    struct billing__card card;
    struct billing__charge_result res, found;
    assert_int_equal(p->attach_card("tok_timeout", &card), 0);
    assert_int_equal(p->charge(card.ref, 1200, "USD", "idem-hang", &res), 0);
    assert_int_equal(res.outcome, BILLING__CHARGE_SUCCEEDED);
    assert_int_equal(p->find_charge("idem-hang", &found), 0);
    assert_string_equal(found.ref, res.ref);
}

/* ---------------------------------------------------------------- statuses */

static void statuses_move_only_along_the_documented_transitions(void **state)
{
    (void)state;
    enum billing__status to;
    const struct {
        enum billing__status from;
        enum billing__status_event ev;
        int ok;
        enum billing__status to;
    } cases[] = {
        {BILLING__TRIALING, BILLING__EV_PERIOD_PAID, 1, BILLING__ACTIVE},
        {BILLING__ACTIVE, BILLING__EV_PERIOD_PAID, 1, BILLING__ACTIVE},
        {BILLING__PAST_DUE, BILLING__EV_PERIOD_PAID, 1, BILLING__ACTIVE},
        {BILLING__CANCELED, BILLING__EV_PERIOD_PAID, 0, BILLING__CANCELED},
        {BILLING__ACTIVE, BILLING__EV_PAYMENT_FAILED, 1, BILLING__PAST_DUE},
        {BILLING__TRIALING, BILLING__EV_PAYMENT_FAILED, 1, BILLING__PAST_DUE},
        {BILLING__PAST_DUE, BILLING__EV_PAYMENT_FAILED, 1, BILLING__PAST_DUE},
        {BILLING__CANCELED, BILLING__EV_PAYMENT_FAILED, 0, BILLING__CANCELED},
        {BILLING__PAST_DUE, BILLING__EV_DUNNING_EXHAUSTED, 1, BILLING__CANCELED},
        {BILLING__ACTIVE, BILLING__EV_DUNNING_EXHAUSTED, 0, BILLING__ACTIVE},
        {BILLING__ACTIVE, BILLING__EV_PERIOD_END_CANCEL, 1, BILLING__CANCELED},
        {BILLING__TRIALING, BILLING__EV_PERIOD_END_CANCEL, 1, BILLING__CANCELED},
        {BILLING__PAST_DUE, BILLING__EV_PERIOD_END_CANCEL, 0, BILLING__PAST_DUE},
        {BILLING__PAST_DUE, BILLING__EV_CANCEL_NOW, 1, BILLING__CANCELED},
        {BILLING__ACTIVE, BILLING__EV_CANCEL_NOW, 0, BILLING__ACTIVE},
        {BILLING__ACTIVE, BILLING__EV_PLAN_CHANGED, 1, BILLING__ACTIVE},
        {BILLING__TRIALING, BILLING__EV_PLAN_CHANGED, 1, BILLING__TRIALING},
        {BILLING__PAST_DUE, BILLING__EV_PLAN_CHANGED, 0, BILLING__PAST_DUE},
        {BILLING__CANCELED, BILLING__EV_PLAN_CHANGED, 0, BILLING__CANCELED},
        {BILLING__CANCELED, BILLING__EV_RESTART, 1, BILLING__ACTIVE},
        {BILLING__ACTIVE, BILLING__EV_RESTART, 0, BILLING__ACTIVE},
        {BILLING__ACTIVE, BILLING__EV_PERIOD_FREE, 1, BILLING__ACTIVE},
        {BILLING__CANCELED, BILLING__EV_PERIOD_FREE, 0, BILLING__CANCELED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = billing__transition(cases[i].from, cases[i].ev, &to);
        assert_int_equal(rc, cases[i].ok ? 0 : BH_ECONFLICT);
        assert_int_equal(to, cases[i].to);
    }
}

static void status_names_round_trip(void **state)
{
    (void)state;
    enum billing__status s;
    const enum billing__status all[] = {BILLING__TRIALING, BILLING__ACTIVE, BILLING__PAST_DUE,
                                        BILLING__CANCELED};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        assert_true(billing__status_parse(billing__status_name(all[i]), &s));
        assert_int_equal(s, all[i]);
    }
    assert_string_equal(billing__status_name(BILLING__PAST_DUE), "past_due");
    assert_false(billing__status_parse("pastdue", &s));
    assert_false(billing__status_parse(NULL, &s));
}

static void the_simulator_translates_events_and_rejects_malformed_ones(void **state)
{
    (void)state;
    const struct billing__provider *p = &billing__provider_simulator;
    struct billing__payment_event ev;
    const char *ok = "{\"id\":\"evt_9\",\"type\":\"payment.failed\",\"created\":1800000000,"
                     "\"data\":{\"invoice_id\":\"0190c2a4-1111-7000-8000-000000000001\","
                     "\"failure_code\":\"expired_card\"}}";
    assert_int_equal(p->parse_event(ok, strlen(ok), &ev), 0);
    assert_int_equal(ev.kind, BILLING__PAYMENT_EVENT_FAILED);
    assert_string_equal(ev.id, "evt_9");
    assert_int_equal(ev.occurred_at, 1800000000);
    assert_string_equal(ev.invoice_id.str, "0190c2a4-1111-7000-8000-000000000001");
    assert_int_equal(ev.decline, BILLING__DECLINE_EXPIRED_CARD);

    const char *other = "{\"id\":\"evt_10\",\"type\":\"customer.updated\",\"created\":1}";
    assert_int_equal(p->parse_event(other, strlen(other), &ev), 0);
    assert_int_equal(ev.kind, BILLING__PAYMENT_EVENT_OTHER);

    const char *bad[] = {
        "",
        "[]",
        "{\"id\":\"evt\"}",
        "{\"id\":\"evt\",\"type\":\"payment.succeeded\",\"created\":1}",
        /* an invoice id that is no UUID */
        ("{\"id\":\"evt\",\"type\":\"payment.succeeded\",\"created\":1,"
         "\"data\":{\"invoice_id\":\"x\"}}"),
        "{\"id\":\"\",\"type\":\"payment.failed\",\"created\":1}",
        "{\"id\":\"evt\",\"type\":\"payment.failed\",\"created\":0}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(p->parse_event(bad[i], strlen(bad[i]), &ev), BH_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(prorate_rounds_half_up_to_whole_cents),
        cmocka_unit_test(prorate_clamps_remaining_time_and_ignores_empty_periods),
        cmocka_unit_test(an_upgrade_charge_never_falls_below_its_credit),
        cmocka_unit_test(dunning_retries_after_one_three_and_seven_days_then_stops),
        cmocka_unit_test(a_month_later_keeps_the_day_or_clamps_to_the_month_end),
        cmocka_unit_test(a_signature_matches_the_published_hmac),
        cmocka_unit_test(valid_signatures_within_the_tolerance_pass),
        cmocka_unit_test(forged_tampered_and_malformed_signatures_fail),
        cmocka_unit_test(signatures_outside_the_tolerance_are_stale),
        cmocka_unit_test(the_simulator_translates_tokens_into_billing_outcomes),
        cmocka_unit_test(the_simulator_translates_events_and_rejects_malformed_ones),
        cmocka_unit_test(the_simulator_charges_each_idempotency_key_once),
        cmocka_unit_test(a_hanging_charge_succeeds_in_the_end),
        cmocka_unit_test(statuses_move_only_along_the_documented_transitions),
        cmocka_unit_test(status_names_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
