/* The table of verified access tokens: a token put in is found again only
 * byte for byte, only while its time rules hold at the time of use (expiry
 * honoured at use, not at verification), and the table never holds more
 * than its slots. Pure logic: revocation is checked by the caller. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static const long NOW = 1800000000;

static const struct auth__jwt_keys KEYS = {
    .secret = (const unsigned char *)"unused",
    .secret_len = 6,
    .issuer = "bulkhead",
    .audience = "bulkhead-api",
    .max_ttl_s = 900,
};

static struct auth__claims claims(long iat, long exp)
{
    struct auth__claims c = {.iat = iat, .exp = exp};
    bh_uuid_parse("0190c2a4-1111-7000-8000-000000000001", &c.sub);
    bh_uuid_parse("0190c2a4-2222-7000-8000-000000000002", &c.sid);
    bh_uuid_parse("0190c2a4-3333-4000-8000-000000000003", &c.jti);
    return c;
}

static const char TOKEN[] = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";

static void finds_the_same_token_only(void **state)
{
    (void)state;
    struct auth__token_cache *c = auth__token_cache_new(1024);
    assert_non_null(c);
    struct auth__claims in = claims(NOW, NOW + 600), out;
    assert_false(auth__token_cache_get(c, &KEYS, TOKEN, NOW, &out));
    auth__token_cache_put(c, TOKEN, &in);
    memset(&out, 0, sizeof out);
    assert_true(auth__token_cache_get(c, &KEYS, TOKEN, NOW, &out));
    assert_string_equal(out.sub.str, in.sub.str);
    assert_string_equal(out.sid.str, in.sid.str);
    assert_string_equal(out.jti.str, in.jti.str);
    assert_int_equal(out.exp, in.exp);
    /* One byte off, one byte more, one byte less: not the token put in. */
    char other[sizeof TOKEN];
    memcpy(other, TOKEN, sizeof TOKEN);
    other[sizeof TOKEN - 2] ^= 1;
    assert_false(auth__token_cache_get(c, &KEYS, other, NOW, &out));
    char longer[sizeof TOKEN + 1];
    snprintf(longer, sizeof longer, "%sA", TOKEN);
    assert_false(auth__token_cache_get(c, &KEYS, longer, NOW, &out));
    char shorter[sizeof TOKEN];
    memcpy(shorter, TOKEN, sizeof TOKEN);
    shorter[sizeof TOKEN - 2] = '\0';
    assert_false(auth__token_cache_get(c, &KEYS, shorter, NOW, &out));
    auth__token_cache_free(c);
}

static void expiry_is_checked_at_use(void **state)
{
    (void)state;
    struct auth__token_cache *c = auth__token_cache_new(64);
    struct auth__claims in = claims(NOW, NOW + 10), out;
    auth__token_cache_put(c, TOKEN, &in);
    assert_true(auth__token_cache_get(c, &KEYS, TOKEN, NOW + 9, &out));
    assert_false(auth__token_cache_get(c, &KEYS, TOKEN, NOW + 10, &out));
    assert_false(auth__token_cache_get(c, &KEYS, TOKEN, NOW + 3600, &out));
    /* Once found expired it is gone, even if the clock goes back. */
    assert_false(auth__token_cache_get(c, &KEYS, TOKEN, NOW, &out));
    assert_int_equal(auth__token_cache_count(c), 0);
    auth__token_cache_free(c);
}

static void time_rules_hold_when_the_clock_moves_back(void **state)
{
    (void)state;
    struct auth__token_cache *c = auth__token_cache_new(64);
    struct auth__claims out;
    /* nbf 30 s ahead passes (60 s of skew) now, not 100 s earlier. */
    struct auth__claims in = claims(NOW, NOW + 600);
    in.has_nbf = true;
    in.nbf = NOW + 30;
    auth__token_cache_put(c, TOKEN, &in);
    assert_true(auth__token_cache_get(c, &KEYS, TOKEN, NOW, &out));
    assert_true(out.has_nbf);
    assert_int_equal(out.nbf, NOW + 30);
    assert_false(auth__token_cache_get(c, &KEYS, TOKEN, NOW - 100, &out));
    /* iat ahead of the clock, and an exp beyond what we issue, likewise. */
    in = claims(NOW, NOW + 600);
    auth__token_cache_put(c, TOKEN, &in);
    assert_false(auth__token_cache_get(c, &KEYS, TOKEN, NOW - 61, &out));
    in = claims(NOW - 500, NOW + 900);
    auth__token_cache_put(c, TOKEN, &in);
    assert_true(auth__token_cache_get(c, &KEYS, TOKEN, NOW, &out));
    assert_false(auth__token_cache_get(c, &KEYS, TOKEN, NOW - 61, &out));
    auth__token_cache_free(c);
}

static void holds_no_more_than_its_slots(void **state)
{
    (void)state;
    struct auth__token_cache *c = auth__token_cache_new(64);
    struct auth__claims in = claims(NOW, NOW + 600), out;
    char token[64];
    for (int i = 0; i < 10000; i++) {
        snprintf(token, sizeof token, "%s.%d", TOKEN, i);
        auth__token_cache_put(c, token, &in);
        assert_true(auth__token_cache_count(c) <= 64);
    }
    /* The latest is there; most of the others were replaced. */
    assert_true(auth__token_cache_get(c, &KEYS, token, NOW, &out));
    int found = 0;
    for (int i = 0; i < 10000; i++) {
        snprintf(token, sizeof token, "%s.%d", TOKEN, i);
        found += auth__token_cache_get(c, &KEYS, token, NOW, &out) ? 1 : 0;
    }
    assert_true(found <= 64);
    auth__token_cache_free(c);
}

static void sizes_are_powers_of_two(void **state)
{
    (void)state;
    assert_null(auth__token_cache_new(0));
    assert_null(auth__token_cache_new(1000));
    assert_null(auth__token_cache_new(AUTH__TOKEN_CACHE_MAX * 2));
    struct auth__token_cache *c = auth__token_cache_new(1);
    assert_non_null(c);
    auth__token_cache_free(c);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(finds_the_same_token_only),
        cmocka_unit_test(expiry_is_checked_at_use),
        cmocka_unit_test(time_rules_hold_when_the_clock_moves_back),
        cmocka_unit_test(holds_no_more_than_its_slots),
        cmocka_unit_test(sizes_are_powers_of_two),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
