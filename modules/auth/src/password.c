/* Argon2id password hashing behind its own bulkhead: a few slots, a short
 * bounded queue, and a fast 503 beyond that, so a flood of logins can hold
 * at most slots + queue HTTP threads and never the ones serving other routes.
 * It must never hash outside a slot, never wait unboundedly, never log a
 * password. */
#include <pthread.h>
#include <sodium.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "platform/clock.h"
#include "platform/breaker.h"
#include "platform/err.h"
#include "platform/log.h"
#include "platform/metrics.h"

static struct {
    pthread_mutex_t lock;
    pthread_cond_t freed;
    int busy;    /* slots in use */
    int waiting; /* callers queued for a slot */
    char dummy[AUTH__PWHASH_MAX];
    struct bh_counter *rejected, *runs;
    struct bh_histogram *wait, *duration;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Takes a slot, waiting at most hash_wait_ms behind at most hash_queue
 * others. BH_EUNAVAILABLE when the queue is full or the wait runs out. */
static int slot_acquire(void)
{
    int64_t t0 = bh_now_ms();
    int rc = 0;

    pthread_mutex_lock(&pool.lock);
    if (pool.busy >= auth__settings.hash_slots) {
        if (pool.waiting >= auth__settings.hash_queue) {
            rc = BH_EUNAVAILABLE;
            goto out;
        }
        struct timespec until = bh_deadline_ms(auth__settings.hash_wait_ms);
        pool.waiting++;
        while (pool.busy >= auth__settings.hash_slots && rc == 0)
            if (pthread_cond_timedwait(&pool.freed, &pool.lock, &until) != 0 &&
                pool.busy >= auth__settings.hash_slots)
                rc = BH_EUNAVAILABLE;
        pool.waiting--;
        if (rc != 0)
            goto out;
    }
    pool.busy++;
out:
    pthread_mutex_unlock(&pool.lock);
    if (rc != 0)
        bh_counter_add(pool.rejected, 1);
    else
        bh_histogram_observe(pool.wait, (double)(bh_now_ms() - t0) / 1000.0);
    return rc;
}

static void slot_release(void)
{
    pthread_mutex_lock(&pool.lock);
    pool.busy--;
    pthread_cond_signal(&pool.freed);
    pthread_mutex_unlock(&pool.lock);
}

int auth__password_init(void)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&pool.freed, &attr);
    pthread_condattr_destroy(&attr);
    pool.rejected = bh_counter_get("bulkhead_auth_hash_rejected_total",
                                   "Password hashing refused because its bulkhead was full.", "");
    pool.runs = bh_counter_get("bulkhead_auth_hash_runs_total", "Argon2id computations.", "");
    pool.wait = bh_histogram_get("bulkhead_auth_hash_wait_seconds",
                                 "Time waited for a password hashing slot.", "");
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

void auth__password_shutdown(void)
{
    pthread_cond_destroy(&pool.freed);
}

int auth__password_hash(const char *password, char out[AUTH__PWHASH_MAX])
{
    int rc = slot_acquire();
    if (rc != 0)
        return rc;
    int64_t t0 = bh_now_ms();
    if (crypto_pwhash_str_alg(out, password, strlen(password), auth__settings.opslimit,
                              auth__settings.memlimit, crypto_pwhash_ALG_ARGON2ID13) != 0)
        rc = BH_ENOMEM;
    slot_release();
    bh_counter_add(pool.runs, 1);
    bh_histogram_observe(pool.duration, (double)(bh_now_ms() - t0) / 1000.0);
    return rc;
}

int auth__password_verify(const char *encoded, const char *password, bool *ok)
{
    *ok = false;
    int rc = slot_acquire();
    if (rc != 0)
        return rc;
    int64_t t0 = bh_now_ms();
    bool match =
        crypto_pwhash_str_verify(encoded ? encoded : pool.dummy, password, strlen(password)) == 0;
    slot_release();
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
