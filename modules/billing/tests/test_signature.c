/* The webhook signature is compared in full: a signature that differs from
 * the right one in a single character, wherever that character is, fails.
 * (A check that compared only a prefix would pass every forged signature
 * that shares it.) No database, no clock: a fixed "now". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static const char SECRET[] = "whsec_unit_test";
static const char BODY[] = "{\"id\":\"evt_full_compare\",\"type\":\"invoice.paid\"}";
static const time_t NOW = 1800000000;

static enum billing__signature verify(const char *sig)
{
    char header[160];
    snprintf(header, sizeof header, "t=%lld,v1=%s", (long long)NOW, sig);
    return billing__verify_signature(header, BODY, strlen(BODY), SECRET, NOW, 300);
}

static char flipped(char c)
{
    return c == '0' ? '1' : '0';
}

static void the_right_signature_passes(void **state)
{
    (void)state;
    char sig[65];
    billing__sign(SECRET, NOW, BODY, strlen(BODY), sig);
    assert_int_equal(verify(sig), BILLING__SIGNATURE_VALID);
}

static void a_signature_wrong_only_after_its_eighth_character_fails(void **state)
{
    (void)state;
    char sig[65];
    billing__sign(SECRET, NOW, BODY, strlen(BODY), sig);
    /* The first 8 characters right, everything after them wrong. */
    char forged[65];
    memcpy(forged, sig, sizeof forged);
    for (size_t i = 8; i < 64; i++)
        forged[i] = flipped(sig[i]);
    assert_int_equal(verify(forged), BILLING__SIGNATURE_INVALID);
}

static void one_wrong_character_anywhere_fails(void **state)
{
    (void)state;
    char sig[65];
    billing__sign(SECRET, NOW, BODY, strlen(BODY), sig);
    for (size_t i = 0; i < 64; i++) {
        char forged[65];
        memcpy(forged, sig, sizeof forged);
        forged[i] = flipped(sig[i]);
        if (verify(forged) != BILLING__SIGNATURE_INVALID)
            fail_msg("a signature differing only at character %zu was accepted", i);
    }
}

static void uppercase_hex_is_the_same_signature(void **state)
{
    (void)state;
    char sig[65];
    billing__sign(SECRET, NOW, BODY, strlen(BODY), sig);
    for (size_t i = 0; i < 64; i++)
        if (sig[i] >= 'a' && sig[i] <= 'f')
            sig[i] = (char)(sig[i] - 'a' + 'A');
    assert_int_equal(verify(sig), BILLING__SIGNATURE_VALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_right_signature_passes),
        cmocka_unit_test(a_signature_wrong_only_after_its_eighth_character_fails),
        cmocka_unit_test(one_wrong_character_anywhere_fails),
        cmocka_unit_test(uppercase_hex_is_the_same_signature),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
