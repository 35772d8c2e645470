/* Argon2id password hashing. The routes that hash (signup, login, password
 * change) run on their own handler pool, auth__password_pool: a bulkhead of
 * a few threads and a short queue, beyond which the platform answers 503 at
 * once, so a flood of logins holds no HTTP thread and cannot slow the other
 * routes. It must never log a password. */
#include <sodium.h>
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
     * costs the same Argon2 run as "wrong password". */
    unsigned char random_pw[32];
    randombytes_buf(random_pw, sizeof random_pw);
    int rc = crypto_pwhash_str_alg(pool.dummy, (const char *)random_pw, sizeof random_pw,
                                   auth__settings.opslimit, auth__settings.memlimit,
                                   crypto_pwhash_ALG_ARGON2ID13);
    sodium_memzero(random_pw, sizeof random_pw);
    if (rc != 0) {
        bh_log_error("cannot compute the dummy password hash (out of memory?)");
        return BH_ENOMEM;
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
