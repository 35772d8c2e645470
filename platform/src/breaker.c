/* The circuit breaker state machine (platform/breaker.h): counts failures in
 * a row, refuses calls while open, lets exactly one trial through after the
 * cool-down. It never sleeps, never does I/O and never reads a clock itself
 * (the caller passes now_ms), so it is cheap on every call and testable. */
#include "platform/breaker.h"

#include <assert.h>

#include "platform/log.h"

void bh_breaker_init(struct bh_breaker *b, const char *name, int threshold, int64_t cooldown_ms)
{
    assert(b != NULL && name != NULL && threshold > 0 && cooldown_ms >= 0);
    pthread_mutex_init(&b->lock, NULL);
    b->state = BH_BREAKER_CLOSED;
    b->failures = 0;
    b->threshold = threshold;
    b->cooldown_ms = cooldown_ms;
    b->opened_at_ms = 0;
    b->trial_in_flight = false;
    b->name = name;
}

/* Every call that bh_breaker_allow() let through must be followed by exactly
 * one bh_breaker_success() or bh_breaker_failure(): in half-open state that
 * report is what ends the trial. */
bool bh_breaker_allow(struct bh_breaker *b, int64_t now_ms)
{
    bool allow = false;
    bool half_opened = false;

    pthread_mutex_lock(&b->lock);
    switch (b->state) {
    case BH_BREAKER_CLOSED: allow = true; break;
    case BH_BREAKER_OPEN:
        if (now_ms - b->opened_at_ms >= b->cooldown_ms) {
            b->state = BH_BREAKER_HALF_OPEN;
            b->trial_in_flight = true;
            allow = true;
            half_opened = true;
        }
        break;
    case BH_BREAKER_HALF_OPEN:
        /* One trial at a time: the others are refused until it reports. */
        if (!b->trial_in_flight) {
            b->trial_in_flight = true;
            allow = true;
        }
        break;
    }
    pthread_mutex_unlock(&b->lock);

    if (half_opened)
        bh_log(BH_LOG_INFO, "platform", "breaker %s half-open: trying one call", b->name);
    return allow;
}

void bh_breaker_success(struct bh_breaker *b)
{
    bool closed_now;

    pthread_mutex_lock(&b->lock);
    closed_now = b->state != BH_BREAKER_CLOSED;
    b->state = BH_BREAKER_CLOSED;
    b->failures = 0;
    b->trial_in_flight = false;
    pthread_mutex_unlock(&b->lock);

    if (closed_now)
        bh_log(BH_LOG_INFO, "platform", "breaker %s closed: calls flow again", b->name);
}

void bh_breaker_failure(struct bh_breaker *b, int64_t now_ms)
{
    bool opened_now = false;
    int failures;

    pthread_mutex_lock(&b->lock);
    switch (b->state) {
    case BH_BREAKER_CLOSED:
        if (++b->failures >= b->threshold) {
            b->state = BH_BREAKER_OPEN;
            b->opened_at_ms = now_ms;
            opened_now = true;
        }
        break;
    case BH_BREAKER_HALF_OPEN:
        /* The trial failed: a whole new cool-down starts now. */
        b->state = BH_BREAKER_OPEN;
        b->opened_at_ms = now_ms;
        b->trial_in_flight = false;
        b->failures++;
        opened_now = true;
        break;
    case BH_BREAKER_OPEN:
        /* A late report from a call let through before the breaker opened:
         * it must not extend the cool-down. */
        b->failures++;
        break;
    }
    failures = b->failures;
    pthread_mutex_unlock(&b->lock);

    if (opened_now)
        bh_log(BH_LOG_WARN, "platform",
               "breaker %s open after %d failure(s) in a row: refusing calls for %lld ms", b->name,
               failures, (long long)b->cooldown_ms);
}

enum bh_breaker_state bh_breaker_state(struct bh_breaker *b)
{
    enum bh_breaker_state s;

    pthread_mutex_lock(&b->lock);
    s = b->state;
    pthread_mutex_unlock(&b->lock);
    return s;
}

const char *bh_breaker_state_name(enum bh_breaker_state s)
{
    switch (s) {
    case BH_BREAKER_CLOSED: return "closed";
    case BH_BREAKER_OPEN: return "open";
    case BH_BREAKER_HALF_OPEN: return "half_open";
    }
    return "unknown";
}
