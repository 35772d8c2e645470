/* A circuit breaker: closed (calls flow) → open after `threshold` failures in
 * a row (calls are refused at once for `cooldown_ms`) → half-open (one trial
 * call) → closed on success, open again on failure. Thread-safe. */
#ifndef BH_PLATFORM_BREAKER_H
#define BH_PLATFORM_BREAKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "platform/clock.h" /* bh_now_ms */

enum bh_breaker_state { BH_BREAKER_CLOSED, BH_BREAKER_OPEN, BH_BREAKER_HALF_OPEN };

struct bh_breaker {
    pthread_mutex_t lock;
    enum bh_breaker_state state;
    int failures;
    int threshold;
    int64_t cooldown_ms;
    int64_t opened_at_ms;
    bool trial_in_flight;
    const char *name; /* for logs and metrics; static storage */
};

void bh_breaker_init(struct bh_breaker *b, const char *name, int threshold, int64_t cooldown_ms);
/* May a call go ahead now? now_ms is a monotonic clock (bh_now_ms()). */
bool bh_breaker_allow(struct bh_breaker *b, int64_t now_ms);
void bh_breaker_success(struct bh_breaker *b);
void bh_breaker_failure(struct bh_breaker *b, int64_t now_ms);
enum bh_breaker_state bh_breaker_state(struct bh_breaker *b);
const char *bh_breaker_state_name(enum bh_breaker_state s);

#endif
