/* Argon2id password hashing. The routes that hash (signup, login, password
 * change) run on their own handler pool, auth__password_pool: a bulkhead of
 * a few threads and a short queue, beyond which the platform answers 503 at
 * once, so a flood of logins holds no HTTP thread and cannot slow the other
 * routes. It must never log a password. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "platform/clock.h"
#include "platform/err.h"
#include "platform/log.h"
#include "platform/metrics.h"

/* Sized from auth__settings in auth__password_init(), before the server
 * starts its threads. */
struct bh_handler_pool auth__password_pool = {.name = "auth.password"};

static struct {
    char dummy[AUTH__PWHASH_MAX];
    struct bh_counter *runs;
    struct bh_histogram *duration;
} pool;

int auth__password_init(void)
{
    auth__password_pool.threads = auth__settings.hash_slots;
    auth__password_pool.queue_max = auth__settings.hash_queue;
    auth__password_pool.max_wait_ms = auth__settings.hash_wait_ms;
    auth__password_pool.per_client_max = auth__settings.hash_per_client;
    pool.runs = bh_counter_get("bulkhead_auth_hash_runs_total", "Argon2id computations.", "");
    pool.duration =
        bh_histogram_get("bulkhead_auth_hash_duration_seconds", "Time of one Argon2id run.", "");

    /* The hash an unknown email is checked against, so that "no such user"
     * costs the same Argon2 run as "wrong password". Verifying costs what
     * the parameters in the string say, whatever produced the salt and the
     * tag, so random ones serve (no password matches a random 256-bit tag)
     * and start-up does not spend an Argon2 run and its memory on it. */
    unsigned char salt[crypto_pwhash_SALTBYTES], tag[32];
    char salt64[sodium_base64_ENCODED_LEN(sizeof salt, sodium_base64_VARIANT_ORIGINAL_NO_PADDING)];
    char tag64[sodium_base64_ENCODED_LEN(sizeof tag, sodium_base64_VARIANT_ORIGINAL_NO_PADDING)];
    randombytes_buf(salt, sizeof salt);
    randombytes_buf(tag, sizeof tag);
    sodium_bin2base64(salt64, sizeof salt64, salt, sizeof salt,
                      sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
    sodium_bin2base64(tag64, sizeof tag64, tag, sizeof tag,
                      sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
    int n = snprintf(pool.dummy, sizeof pool.dummy, "$argon2id$v=19$m=%zu,t=%llu,p=1$%s$%s",
                     auth__settings.memlimit / 1024, auth__settings.opslimit, salt64, tag64);
    if (n <= 0 || (size_t)n >= sizeof pool.dummy ||
        crypto_pwhash_str_needs_rehash(pool.dummy, auth__settings.opslimit,
                                       auth__settings.memlimit) != 0) {
        bh_log_error("cannot build the dummy password hash");
        return BH_EINTERNAL;
    }
    return 0;
}

int auth__password_hash(const char *password, char out[AUTH__PWHASH_MAX])
{
    int rc = 0;
    int64_t t0 = bh_now_ms();
    if (crypto_pwhash_str_alg(out, password, strlen(password), auth__settings.opslimit,
                              auth__settings.memlimit, crypto_pwhash_ALG_ARGON2ID13) != 0)
        rc = BH_ENOMEM;
    bh_counter_add(pool.runs, 1);
    bh_histogram_observe(pool.duration, (double)(bh_now_ms() - t0) / 1000.0);
    return rc;
}

int auth__password_verify(const char *encoded, const char *password, bool *ok)
{
    int64_t t0 = bh_now_ms();
    bool match =
        crypto_pwhash_str_verify(encoded ? encoded : pool.dummy, password, strlen(password)) == 0;
    bh_counter_add(pool.runs, 1);
    bh_histogram_observe(pool.duration, (double)(bh_now_ms() - t0) / 1000.0);
    *ok = encoded != NULL && match;
    return 0;
}

bool auth__password_outdated(const char *encoded)
{
    return crypto_pwhash_str_needs_rehash(encoded, auth__settings.opslimit,
                                          auth__settings.memlimit) != 0;
}
