/* Access tokens already verified, so that a client sending the same token
 * again costs a keyed digest and a table lookup instead of base64, HMAC and
 * three JSON parses. Pure, with no I/O: revocation is not its business (the
 * caller checks the denylist on every request, cached token or not).
 *
 * A slot holds the BLAKE2b digest of a token's bytes, keyed with a secret
 * drawn when the cache is made (so neither the tokens nor anything an
 * outsider can match sits in it), and the claims verification found. Only
 * tokens that passed every check are put in. A hit is answered only if the
 * claims still hold at the time of use, with the same time rules as
 * auth__jwt_verify (exp passed: refused; nbf, iat and the exp cap rechecked
 * too, in case the clock moved back). The table is direct-mapped with a
 * fixed number of slots: a new token replaces whatever held its slot, so the
 * memory is bounded whatever the traffic. */
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum { STRIPES = 64, DIGEST = 32, CLOCK_SKEW_S = 60 };

struct slot {
    bool used;
    unsigned char digest[DIGEST];
    struct auth__claims claims;
};

struct auth__token_cache {
    unsigned mask; /* slots - 1 */
    unsigned char key[crypto_generichash_KEYBYTES];
    pthread_mutex_t stripes[STRIPES];
    struct slot slots[];
};

struct auth__token_cache *auth__token_cache_new(unsigned slots)
{
    if (slots == 0 || slots > AUTH__TOKEN_CACHE_MAX || (slots & (slots - 1)) != 0)
        return NULL;
    struct auth__token_cache *c = calloc(1, sizeof *c + slots * sizeof(struct slot));
    if (!c)
        return NULL;
    c->mask = slots - 1;
    randombytes_buf(c->key, sizeof c->key);
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_init(&c->stripes[i], NULL);
    return c;
}

void auth__token_cache_free(struct auth__token_cache *c)
{
    if (!c)
        return;
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_destroy(&c->stripes[i]);
    sodium_memzero(c->key, sizeof c->key);
    free(c);
}

static unsigned digest_of(const struct auth__token_cache *c, const char *token,
                          unsigned char out[DIGEST])
{
    crypto_generichash(out, DIGEST, (const unsigned char *)token, strlen(token), c->key,
                       sizeof c->key);
    unsigned i;
    memcpy(&i, out, sizeof i);
    return i & c->mask;
}

bool auth__claims_hold(const struct auth__jwt_keys *k, const struct auth__claims *cl, long now)
{
    return cl->exp > now && cl->exp <= now + k->max_ttl_s + CLOCK_SKEW_S &&
           cl->iat <= now + CLOCK_SKEW_S && (!cl->has_nbf || cl->nbf <= now + CLOCK_SKEW_S);
}

bool auth__token_cache_get(struct auth__token_cache *c, const struct auth__jwt_keys *k,
                           const char *token, long now, struct auth__claims *out)
{
    unsigned char d[DIGEST];
    unsigned i = digest_of(c, token, d);
    pthread_mutex_t *m = &c->stripes[i % STRIPES];
    bool hit = false;

    pthread_mutex_lock(m);
    struct slot *s = &c->slots[i];
    if (s->used && sodium_memcmp(s->digest, d, DIGEST) == 0) {
        if (auth__claims_hold(k, &s->claims, now)) {
            *out = s->claims;
            hit = true;
        } else {
            s->used = false; /* expired: never answered again */
        }
    }
    pthread_mutex_unlock(m);
    return hit;
}

void auth__token_cache_put(struct auth__token_cache *c, const char *token,
                           const struct auth__claims *claims)
{
    unsigned char d[DIGEST];
    unsigned i = digest_of(c, token, d);
    pthread_mutex_t *m = &c->stripes[i % STRIPES];

    pthread_mutex_lock(m);
    struct slot *s = &c->slots[i];
    s->used = true;
    memcpy(s->digest, d, DIGEST);
    s->claims = *claims;
    pthread_mutex_unlock(m);
}

unsigned auth__token_cache_count(struct auth__token_cache *c)
{
    unsigned n = 0;
    for (unsigned i = 0; i <= c->mask; i++) {
        pthread_mutex_lock(&c->stripes[i % STRIPES]);
        n += c->slots[i].used ? 1u : 0u;
        pthread_mutex_unlock(&c->stripes[i % STRIPES]);
    }
    return n;
}
