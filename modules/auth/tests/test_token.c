/* The access-token verifier against a table of forged, broken and valid
 * tokens, plus the refresh-token helpers and email normalisation. Pure
 * logic: no database, no Redis. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jwt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "platform/err.h"

static const char SECRET[] = "unit-test-secret-0123456789abcdef0123456789";
static const char OTHER_SECRET[] = "another-secret-0123456789abcdef0123456789ab";
static const long NOW = 1800000000;
static const char SUB[] = "0190c2a4-1111-7000-8000-000000000001";
static const char SID[] = "0190c2a4-2222-7000-8000-000000000002";
static const char JTI[] = "0190c2a4-3333-4000-8000-000000000003";

static const struct auth__jwt_keys KEYS = {
    .secret = (const unsigned char *)SECRET,
    .secret_len = sizeof SECRET - 1,
    .issuer = "bulkhead",
    .audience = "bulkhead-api",
    .max_ttl_s = 900,
};

/* base64url without padding, malloc'd. */
static char *b64url(const void *data, size_t len)
{
    size_t cap = sodium_base64_encoded_len(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = malloc(cap);
    assert_non_null(out);
    sodium_bin2base64(out, cap, data, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return out;
}

/* header.payload.signature built by hand; the signature is HMAC-SHA256 with
 * key (or empty when key is NULL): how an attacker would forge one. */
static char *forge(const char *header, const char *payload, const char *key)
{
    char *h = b64url(header, strlen(header)), *p = b64url(payload, strlen(payload));
    size_t n = strlen(h) + strlen(p) + 2;
    char *signing = malloc(n);
    assert_non_null(signing);
    snprintf(signing, n, "%s.%s", h, p);
    char *sig = strdup("");
    if (key) {
        unsigned char mac[crypto_auth_hmacsha256_BYTES];
        crypto_auth_hmacsha256_state st;
        crypto_auth_hmacsha256_init(&st, (const unsigned char *)key, strlen(key));
        crypto_auth_hmacsha256_update(&st, (const unsigned char *)signing, strlen(signing));
        crypto_auth_hmacsha256_final(&st, mac);
        free(sig);
        sig = b64url(mac, sizeof mac);
    }
    size_t total = strlen(signing) + strlen(sig) + 2;
    char *token = malloc(total);
    assert_non_null(token);
    snprintf(token, total, "%s.%s", signing, sig);
    free(h);
    free(p);
    free(signing);
    free(sig);
    return token;
}

/* A payload with every claim right unless overridden ("" drops a claim). */
static char *payload(const char *iss, const char *aud, const char *sub, const char *exp,
                     const char *iat)
{
    char buf[1024];
    char *w = buf;
    size_t left = sizeof buf;
    int n = snprintf(w, left, "{\"jti\":\"%s\",\"sid\":\"%s\"", JTI, SID);
    w += n;
    left -= (size_t)n;
#define CLAIM(name, val, quoted)                                                                   \
    if (*(val)) {                                                                                  \
        n = snprintf(w, left, quoted ? ",\"%s\":\"%s\"" : ",\"%s\":%s", name, val);                \
        w += n;                                                                                    \
        left -= (size_t)n;                                                                         \
    }
    CLAIM("iss", iss, 1)
    CLAIM("aud", aud, 1)
    CLAIM("sub", sub, 1)
    CLAIM("exp", exp, 0)
    CLAIM("iat", iat, 0)
#undef CLAIM
    snprintf(w, left, "}");
    return strdup(buf);
}

static const char HS256[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
#define EXP_OK "1800000900"
#define IAT_OK "1800000000"

/* A token signed by libjwt itself with the given algorithm. */
static char *libjwt_token(jwt_alg_t alg, const char *key)
{
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_new(&jwt), 0);
    jwt_add_grant(jwt, "iss", "bulkhead");
    jwt_add_grant(jwt, "aud", "bulkhead-api");
    jwt_add_grant(jwt, "sub", SUB);
    jwt_add_grant(jwt, "sid", SID);
    jwt_add_grant(jwt, "jti", JTI);
    jwt_add_grant_int(jwt, "iat", NOW);
    jwt_add_grant_int(jwt, "exp", NOW + 900);
    assert_int_equal(jwt_set_alg(jwt, alg, (const unsigned char *)key, (int)strlen(key)), 0);
    char *t = jwt_encode_str(jwt);
    jwt_free(jwt);
    return t;
}

struct token_case {
    const char *name;
    char *(*make)(void);
    int want;
};

static char *valid_signed(void)
{
    char *t = NULL;
    bh_uuid sub, sid;
    bh_uuid_parse(SUB, &sub);
    bh_uuid_parse(SID, &sid);
    assert_int_equal(auth__jwt_sign(&KEYS, &sub, &sid, NOW - 10, 900, &t, NULL), 0);
    return t;
}
static char *valid_forged(void)
{
    char *p = payload("bulkhead", "bulkhead-api", SUB, EXP_OK, IAT_OK);
    char *t = forge(HS256, p, SECRET);
    free(p);
    return t;
}
static char *alg_none(void)
{
    char *p = payload("bulkhead", "bulkhead-api", SUB, EXP_OK, IAT_OK);
    char *t = forge("{\"alg\":\"none\",\"typ\":\"JWT\"}", p, NULL);
    free(p);
    return t;
}
static char *alg_none_with_signature(void)
{
    char *p = payload("bulkhead", "bulkhead-api", SUB, EXP_OK, IAT_OK);
    char *t = forge("{\"alg\":\"none\",\"typ\":\"JWT\"}", p, SECRET);
    free(p);
    return t;
}
static char *alg_hs384(void)
{
    return libjwt_token(JWT_ALG_HS384, SECRET);
}
static char *alg_hs512(void)
{
    return libjwt_token(JWT_ALG_HS512, SECRET);
}
static char *alg_rs256_header(void)
{
    char *p = payload("bulkhead", "bulkhead-api", SUB, EXP_OK, IAT_OK);
    char *t = forge("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", p, SECRET);
    free(p);
    return t;
}
static char *wrong_key(void)
{
    return libjwt_token(JWT_ALG_HS256, OTHER_SECRET);
}
static char *expired(void)
{
    char *p = payload("bulkhead", "bulkhead-api", SUB, "1799999999", "1799999000");
    char *t = forge(HS256, p, SECRET);
    free(p);
    return t;
}
static char *expires_now(void)
{
    char *p = payload("bulkhead", "bulkhead-api", SUB, "1800000000", "1799999000");
    char *t = forge(HS256, p, SECRET);
    free(p);
    return t;
}
static char *missing_exp(void)
{
    char *p = payload("bulkhead", "bulkhead-api", SUB, "", IAT_OK);
    char *t = forge(HS256, p, SECRET);
    free(p);
    return t;
}
static char *exp_as_string(void)
{
    char *p = payload("bulkhead", "bulkhead-api", SUB, "\"1800000900\"", IAT_OK);
    char *t = forge(HS256, p, SECRET);
    free(p);
    return t;
}
static char *wrong_iss(void)
{
    char *p = payload("someone-else", "bulkhead-api", SUB, EXP_OK, IAT_OK);
    char *t = forge(HS256, p, SECRET);
    free(p);
    return t;
}
static char *missing_iss(void)
{
    char *p = payload("", "bulkhead-api", SUB, EXP_OK, IAT_OK);
    char *t = forge(HS256, p, SECRET);
    free(p);
    return t;
}
static char *wrong_aud(void)
{
    char *p = payload("bulkhead", "other-api", SUB, EXP_OK, IAT_OK);
    char *t = forge(HS256, p, SECRET);
    free(p);
    return t;
}
static char *sub_not_uuid(void)
{
    char *p = payload("bulkhead", "bulkhead-api", "admin", EXP_OK, IAT_OK);
    char *t = forge(HS256, p, SECRET);
    free(p);
    return t;
}
static char *missing_iat(void)
{
    char *p = payload("bulkhead", "bulkhead-api", SUB, EXP_OK, "");
    char *t = forge(HS256, p, SECRET);
    free(p);
    return t;
}
static char *iat_in_future(void)
{
    char *p = payload("bulkhead", "bulkhead-api", SUB, "1800009000", "1800003600");
    char *t = forge(HS256, p, SECRET);
    free(p);
    return t;
}
static char *tampered_payload(void)
{
    /* A valid token whose payload is swapped for another user's. */
    char *good = valid_forged();
    char *p =
        payload("bulkhead", "bulkhead-api", "0190c2a4-9999-7000-8000-000000000009", EXP_OK, IAT_OK);
    char *enc = b64url(p, strlen(p));
    char *dot1 = strchr(good, '.'), *dot2 = strrchr(good, '.');
    size_t n = (size_t)(dot1 - good) + strlen(enc) + strlen(dot2) + 2;
    char *t = malloc(n);
    snprintf(t, n, "%.*s.%s%s", (int)(dot1 - good), good, enc, dot2);
    free(good);
    free(p);
    free(enc);
    return t;
}
/* A valid payload with extra JSON spliced in before its closing brace. */
static char *with_extra(const char *extra)
{
    char *p = payload("bulkhead", "bulkhead-api", SUB, EXP_OK, IAT_OK);
    size_t n = strlen(p) + strlen(extra) + 1;
    char *q = malloc(n);
    assert_non_null(q);
    snprintf(q, n, "%.*s%s}", (int)strlen(p) - 1, p, extra);
    char *t = forge(HS256, q, SECRET);
    free(p);
    free(q);
    return t;
}
static char *nbf_in_future(void)
{
    return with_extra(",\"nbf\":1800003600");
}
static char *nbf_passed_ok(void)
{
    return with_extra(",\"nbf\":1799999000");
}
static char *nbf_as_string(void)
{
    return with_extra(",\"nbf\":\"soon\"");
}
static char *iat_as_string(void)
{
    char *p = payload("bulkhead", "bulkhead-api", SUB, EXP_OK, "\"1800000000\"");
    char *t = forge(HS256, p, SECRET);
    free(p);
    return t;
}
static char *duplicate_sub(void)
{
    /* The first sub is the one a careful reader sees; libjwt keeps the last. */
    return with_extra(",\"sub\":\"0190c2a4-9999-7000-8000-000000000009\"");
}
static char *duplicate_alg(void)
{
    char *p = payload("bulkhead", "bulkhead-api", SUB, EXP_OK, IAT_OK);
    char *t = forge("{\"alg\":\"none\",\"alg\":\"HS256\"}", p, SECRET);
    free(p);
    return t;
}
static char *exp_absurd(void)
{
    char *p = payload("bulkhead", "bulkhead-api", SUB, "9223372036854775807", IAT_OK);
    char *t = forge(HS256, p, SECRET);
    free(p);
    return t;
}
static char *exp_a_day_ahead(void)
{
    char *p = payload("bulkhead", "bulkhead-api", SUB, "1800086400", IAT_OK);
    char *t = forge(HS256, p, SECRET);
    free(p);
    return t;
}
static char *exp_at_the_ttl_with_skew(void)
{
    char *p = payload("bulkhead", "bulkhead-api", SUB, "1800000960", IAT_OK);
    char *t = forge(HS256, p, SECRET);
    free(p);
    return t;
}
static char *garbage(void)
{
    return strdup("not-a-jwt");
}
static char *two_parts(void)
{
    return strdup("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0");
}
static char *empty(void)
{
    return strdup("");
}

static const struct token_case cases[] = {
    {"signed by us", valid_signed, 0},
    {"HS256 with every claim right", valid_forged, 0},
    {"alg none without signature", alg_none, BH_EUNAUTH},
    {"alg none with a signature", alg_none_with_signature, BH_EUNAUTH},
    {"HS384 with our key", alg_hs384, BH_EUNAUTH},
    {"HS512 with our key", alg_hs512, BH_EUNAUTH},
    {"RS256 header, HMAC signature", alg_rs256_header, BH_EUNAUTH},
    {"another key", wrong_key, BH_EUNAUTH},
    {"expired", expired, BH_EUNAUTH},
    {"exp equal to now", expires_now, BH_EUNAUTH},
    {"no exp", missing_exp, BH_EUNAUTH},
    {"exp as a string", exp_as_string, BH_EUNAUTH},
    {"another issuer", wrong_iss, BH_EUNAUTH},
    {"no issuer", missing_iss, BH_EUNAUTH},
    {"another audience", wrong_aud, BH_EUNAUTH},
    {"sub not a UUID", sub_not_uuid, BH_EUNAUTH},
    {"no iat", missing_iat, BH_EUNAUTH},
    {"iat an hour ahead", iat_in_future, BH_EUNAUTH},
    {"payload swapped under a valid signature", tampered_payload, BH_EUNAUTH},
    {"nbf an hour ahead", nbf_in_future, BH_EUNAUTH},
    {"nbf passed", nbf_passed_ok, 0},
    {"nbf as a string", nbf_as_string, BH_EUNAUTH},
    {"iat as a string", iat_as_string, BH_EUNAUTH},
    {"sub twice", duplicate_sub, BH_EUNAUTH},
    {"alg twice in the header", duplicate_alg, BH_EUNAUTH},
    {"exp 2^63-1", exp_absurd, BH_EUNAUTH},
    {"exp a day ahead (ttl 900)", exp_a_day_ahead, BH_EUNAUTH},
    {"exp at the ttl plus the skew", exp_at_the_ttl_with_skew, 0},
    {"not a JWT", garbage, BH_EUNAUTH},
    {"two segments", two_parts, BH_EUNAUTH},
    {"empty", empty, BH_EUNAUTH},
};

static void verifier_accepts_only_valid_hs256_tokens(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *token = cases[i].make();
        struct auth__claims c;
        int rc = auth__jwt_verify(&KEYS, token, NOW, &c);
        if (rc != cases[i].want)
            fail_msg("case '%s': want %d, got %d", cases[i].name, cases[i].want, rc);
        if (rc == 0) {
            assert_string_equal(c.sub.str, SUB);
            assert_string_equal(c.sid.str, SID);
        } else {
            assert_true(bh_uuid_is_nil(&c.sub));
        }
        free(token);
    }
}

static void signed_token_carries_every_claim(void **state)
{
    (void)state;
    char *t = valid_signed();
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_decode(&jwt, t, (const unsigned char *)SECRET, sizeof SECRET - 1), 0);
    assert_int_equal(jwt_get_alg(jwt), JWT_ALG_HS256);
    assert_string_equal(jwt_get_grant(jwt, "iss"), "bulkhead");
    assert_string_equal(jwt_get_grant(jwt, "aud"), "bulkhead-api");
    assert_string_equal(jwt_get_grant(jwt, "sub"), SUB);
    assert_non_null(jwt_get_grant(jwt, "jti"));
    assert_int_equal(jwt_get_grant_int(jwt, "exp") - jwt_get_grant_int(jwt, "iat"), 900);
    jwt_free(jwt);
    free(t);
}

static void refresh_tokens_are_256_bit_base64url(void **state)
{
    (void)state;
    char a[AUTH__REFRESH_LEN + 1], b[AUTH__REFRESH_LEN + 1];
    auth__refresh_new(a);
    auth__refresh_new(b);
    assert_int_equal(strlen(a), 43);
    assert_true(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
                43);
    assert_string_not_equal(a, b);
    char h[AUTH__HASH_HEX + 1];
    auth__refresh_hash("abc", h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void sealed_child_opens_only_with_its_parent(void **state)
{
    (void)state;
    char parent[AUTH__REFRESH_LEN + 1], child[AUTH__REFRESH_LEN + 1], other[AUTH__REFRESH_LEN + 1];
    char sealed[AUTH__SEALED_HEX + 1], opened[AUTH__REFRESH_LEN + 1];
    auth__refresh_new(parent);
    auth__refresh_new(child);
    auth__refresh_new(other);
    assert_int_equal(auth__refresh_seal(parent, child, sealed), 0);
    assert_int_equal(auth__refresh_unseal(parent, sealed, opened), 0);
    assert_string_equal(opened, child);
    assert_int_not_equal(auth__refresh_unseal(other, sealed, opened), 0);
    assert_int_not_equal(auth__refresh_unseal(parent, "zz", opened), 0);
}

static void emails_are_trimmed_lowercased_and_checked(void **state)
{
    (void)state;
    struct bh_arena *a = bh_arena_new();
    assert_string_equal(auth__email_normalize(a, "  Ada@Example.COM \n"), "ada@example.com");
    assert_string_equal(auth__email_normalize(a, "a.b+tag@sub.example.org"),
                        "a.b+tag@sub.example.org");
    const char *bad[] = {
        "",         "ada",          "@example.com", "ada@",   "ada@example", "a@b@c.com",
        "ada@.com", "ada@exa..com", "a d@x.com",    "ada@x.", "<ada@x.com>", NULL};
    for (int i = 0; bad[i]; i++)
        if (auth__email_normalize(a, bad[i]))
            fail_msg("'%s' was accepted", bad[i]);
    bh_arena_free(a);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(verifier_accepts_only_valid_hs256_tokens),
        cmocka_unit_test(signed_token_carries_every_claim),
        cmocka_unit_test(refresh_tokens_are_256_bit_base64url),
        cmocka_unit_test(sealed_child_opens_only_with_its_parent),
        cmocka_unit_test(emails_are_trimmed_lowercased_and_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
