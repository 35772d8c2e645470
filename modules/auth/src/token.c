/* Token cryptography, pure and testable: HS256 access tokens (libjwt 1.10,
 * which has no validation API, so every check is made here by hand) and
 * opaque refresh tokens. It must never accept an algorithm other than HS256,
 * a token without exp or living longer than we ever issue, a token before
 * its nbf, a header or payload with a member twice (libjwt would keep the
 * last one), and never log a token. */
#include <jansson.h>
#include <jwt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "platform/err.h"

int auth__jwt_sign(const struct auth__jwt_keys *k, const bh_uuid *sub, const bh_uuid *sid, long now,
                   long ttl_s, char **out, bh_uuid *jti_out)
{
    jwt_t *jwt = NULL;
    int rc = BH_ENOMEM;
    bh_uuid jti = bh_uuid_v4();

    *out = NULL;
    if (jwt_new(&jwt) != 0)
        return BH_ENOMEM;
    if (jwt_add_grant(jwt, "iss", k->issuer) || jwt_add_grant(jwt, "aud", k->audience) ||
        jwt_add_grant(jwt, "sub", sub->str) || jwt_add_grant(jwt, "sid", sid->str) ||
        jwt_add_grant(jwt, "jti", jti.str) || jwt_add_grant_int(jwt, "iat", now) ||
        jwt_add_grant_int(jwt, "exp", now + ttl_s))
        goto out;
    if (jwt_set_alg(jwt, JWT_ALG_HS256, k->secret, (int)k->secret_len) != 0) {
        rc = BH_EINTERNAL;
        goto out;
    }
    *out = jwt_encode_str(jwt);
    if (!*out)
        goto out;
    if (jti_out)
        *jti_out = jti;
    rc = 0;
out:
    jwt_free(jwt);
    return rc;
}

/* A string claim that must be present and a UUID. */
static bool uuid_claim(jwt_t *jwt, const char *name, bh_uuid *out)
{
    const char *v = jwt_get_grant(jwt, name);
    return v && bh_uuid_parse(v, out);
}

static bool string_claim_is(jwt_t *jwt, const char *name, const char *want)
{
    const char *v = jwt_get_grant(jwt, name);
    return v && strcmp(v, want) == 0;
}

/* An integer claim that must be present. Read from the claim's JSON: libjwt
 * 1.10's jwt_get_grant_int() answers a string claim with 0 and no error. */
static bool int_claim(jwt_t *jwt, const char *name, long *out)
{
    char *text = jwt_get_grants_json(jwt, name);
    if (!text)
        return false;
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    bool ok = json_is_integer(v);
    if (ok)
        *out = (long)json_integer_value(v);
    json_decref(v);
    free(text);
    return ok;
}

enum { MAX_SEGMENT = 4096, CLOCK_SKEW_S = 60 };

/* One base64url segment of a token: a JSON object with no member twice.
 * (libjwt parses with jansson's defaults, where the last duplicate wins: a
 * signed token whose claims read one way here and another way elsewhere.) */
static bool segment_has_unique_members(const char *seg, size_t len)
{
    unsigned char json[MAX_SEGMENT];
    size_t n = 0;
    if (len == 0 || len > MAX_SEGMENT ||
        sodium_base642bin(json, sizeof json, seg, len, "=", &n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return false;
    json_t *obj = json_loadb((const char *)json, n, JSON_REJECT_DUPLICATES, NULL);
    bool ok = obj && json_is_object(obj);
    json_decref(obj);
    return ok;
}

/* header.payload.signature, with header and payload free of duplicates. */
static bool unique_members(const char *token)
{
    const char *dot1 = strchr(token, '.');
    const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    return dot2 && segment_has_unique_members(token, (size_t)(dot1 - token)) &&
           segment_has_unique_members(dot1 + 1, (size_t)(dot2 - dot1 - 1));
}

/* nbf is optional; when present it must be an integer not in the future
 * (kept in out, for a later use of the same token). */
static bool nbf_passed(jwt_t *jwt, long now, struct auth__claims *out)
{
    char *text = jwt_get_grants_json(jwt, "nbf");
    if (!text)
        return true;
    free(text);
    out->has_nbf = true;
    return int_claim(jwt, "nbf", &out->nbf) && out->nbf <= now + CLOCK_SKEW_S;
}

int auth__jwt_verify(const struct auth__jwt_keys *k, const char *token, long now,
                     struct auth__claims *out)
{
    jwt_t *jwt = NULL;
    int rc = BH_EUNAUTH;

    memset(out, 0, sizeof *out);
    if (!token || !*token || strlen(token) > 4096)
        return BH_EUNAUTH;
    /* With a key, libjwt checks the signature with the algorithm the header
     * names; that choice is the attacker's, so the algorithm is checked
     * after, and anything but HS256 is refused whatever its signature. */
    if (jwt_decode(&jwt, token, k->secret, (int)k->secret_len) != 0 || !jwt)
        goto out;
    if (jwt_get_alg(jwt) != JWT_ALG_HS256 || !unique_members(token))
        goto out;
    /* We never issue a token for longer than max_ttl_s: a later exp (up to
     * 2^63-1 would parse) is not ours, whatever its signature says. */
    if (!int_claim(jwt, "exp", &out->exp) || out->exp <= now ||
        out->exp > now + k->max_ttl_s + CLOCK_SKEW_S)
        goto out;
    if (!int_claim(jwt, "iat", &out->iat) || out->iat > now + CLOCK_SKEW_S)
        goto out;
    if (!nbf_passed(jwt, now, out))
        goto out;
    if (!string_claim_is(jwt, "iss", k->issuer) || !string_claim_is(jwt, "aud", k->audience))
        goto out;
    if (!uuid_claim(jwt, "sub", &out->sub) || !uuid_claim(jwt, "sid", &out->sid) ||
        !uuid_claim(jwt, "jti", &out->jti))
        goto out;
    rc = 0;
out:
    jwt_free(jwt);
    if (rc != 0)
        memset(out, 0, sizeof *out);
    return rc;
}

void auth__refresh_new(char out[AUTH__REFRESH_LEN + 1])
{
    unsigned char raw[32];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(out, AUTH__REFRESH_LEN + 1, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
}

void auth__refresh_hash(const char *token, char out[AUTH__HASH_HEX + 1])
{
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, (const unsigned char *)token, strlen(token));
    sodium_bin2hex(out, AUTH__HASH_HEX + 1, digest, sizeof digest);
}

/* The sealing key: BLAKE2b of the parent under a fixed context, so it is
 * unrelated to the SHA-256 the database stores. */
static void grace_key(const char *parent, unsigned char key[crypto_secretbox_KEYBYTES])
{
    static const unsigned char context[] = "bulkhead refresh grace v1";
    crypto_generichash(key, crypto_secretbox_KEYBYTES, (const unsigned char *)parent,
                       strlen(parent), context, sizeof context - 1);
}

int auth__refresh_seal(const char *parent, const char *child, char out[AUTH__SEALED_HEX + 1])
{
    unsigned char key[crypto_secretbox_KEYBYTES];
    unsigned char box[crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + AUTH__REFRESH_LEN];

    if (strlen(child) != AUTH__REFRESH_LEN)
        return BH_EINVAL;
    grace_key(parent, key);
    randombytes_buf(box, crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy(box + crypto_secretbox_NONCEBYTES, (const unsigned char *)child,
                          AUTH__REFRESH_LEN, box, key);
    sodium_memzero(key, sizeof key);
    sodium_bin2hex(out, AUTH__SEALED_HEX + 1, box, sizeof box);
    return 0;
}

int auth__refresh_unseal(const char *parent, const char *sealed, char child[AUTH__REFRESH_LEN + 1])
{
    unsigned char key[crypto_secretbox_KEYBYTES];
    unsigned char box[crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + AUTH__REFRESH_LEN];
    size_t len = 0;
    int rc = BH_EINVAL;

    if (sodium_hex2bin(box, sizeof box, sealed, strlen(sealed), NULL, &len, NULL) != 0 ||
        len != sizeof box)
        return BH_EINVAL;
    grace_key(parent, key);
    if (crypto_secretbox_open_easy((unsigned char *)child, box + crypto_secretbox_NONCEBYTES,
                                   sizeof box - crypto_secretbox_NONCEBYTES, box, key) == 0) {
        child[AUTH__REFRESH_LEN] = '\0';
        rc = 0;
    }
    sodium_memzero(key, sizeof key);
    return rc;
}
