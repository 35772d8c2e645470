/* Fuzzing the access-token check (modules/auth/src/token.c): any bytes as a
 * bearer token must be refused or accepted without a crash, an
 * out-of-bounds read or a leak, and a token it accepts must carry every
 * claim the check promises. Half of the inputs are turned into tokens
 * signed with the right key (header and payload taken from the input), so
 * the claim checks behind the signature are reached too. */
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "platform/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char SECRET[] = "fuzz-secret-0123456789abcdef0123456789abcdef";
static const struct auth__jwt_keys KEYS = {SECRET, sizeof SECRET - 1, "bulkhead", "bulkhead-api"};
static const long NOW = 1800000000;

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "FAIL: %s\n", what);
        abort();
    }
}

static void verify(const char *token)
{
    struct auth__claims c;
    if (auth__jwt_verify(&KEYS, token, NOW, &c) == 0) {
        check(c.exp > NOW, "an accepted token has not expired");
        check(c.iat <= NOW + 60, "an accepted token was not issued in the future");
        check(strlen(c.sub.str) == 36 && strlen(c.sid.str) == 36 && strlen(c.jti.str) == 36,
              "an accepted token names a user, a session and itself");
    }
}

/* base64url(header) "." base64url(payload) "." base64url(HMAC-SHA256). */
static void verify_signed(const uint8_t *data, size_t size)
{
    const uint8_t *dot = memchr(data, '\n', size);
    size_t hlen = dot ? (size_t)(dot - data) : size / 2;
    const uint8_t *payload = data + hlen + (dot ? 1 : 0);
    size_t plen = size - (size_t)(payload - data);
    size_t cap = sodium_base64_ENCODED_LEN(size + 32, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *token = malloc(3 * cap + 3);
    if (!token)
        return;
    sodium_bin2base64(token, cap, data, hlen, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    size_t n = strlen(token);
    token[n++] = '.';
    sodium_bin2base64(token + n, cap, payload, plen, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    n += strlen(token + n);
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, SECRET, sizeof SECRET - 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)token, n);
    crypto_auth_hmacsha256_final(&st, mac);
    token[n++] = '.';
    sodium_bin2base64(token + n, cap, mac, sizeof mac, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    verify(token);
    free(token);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    verify(text);
    free(text);
    verify_signed(data, size);
    return 0;
}
