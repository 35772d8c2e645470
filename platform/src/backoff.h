/* Retry delays for failed jobs: exponential backoff with full jitter, as a
 * pure function (no clock, no global random state) so it can be tested with
 * an injected random source. Private to the async backbone (platform/src). */
#ifndef BH__PLATFORM_SRC_BACKOFF_H
#define BH__PLATFORM_SRC_BACKOFF_H

#include <stdint.h>

struct bh__backoff {
    int64_t base_ms; /* the cap after the first failure (> 0) */
    int64_t max_ms;  /* no delay ever exceeds this (>= base_ms) */
};

/* A source of uniformly distributed 64-bit values; arg is passed through. */
typedef uint64_t (*bh__random_fn)(void *arg);

/* The upper bound of the delay after the attempt-th failure (attempt >= 1):
 * min(max_ms, base_ms * 2^(attempt - 1)), computed without overflow. */
int64_t bh__backoff_cap_ms(const struct bh__backoff *b, int attempt);

/* Full jitter: a delay drawn uniformly from [0, cap] (both ends included),
 * without modulo bias. Spreading retries over the whole window is what keeps
 * many clients that failed together from retrying together. */
int64_t bh__backoff_delay_ms(const struct bh__backoff *b, int attempt, bh__random_fn rnd,
                             void *arg);

/* A bh__random_fn backed by the operating system's CSPRNG (libsodium). */
uint64_t bh__backoff_os_random(void *arg);

#endif
