/* Exponential backoff with full jitter (backoff.h). Pure arithmetic apart
 * from bh__backoff_os_random: it must never read a clock or sleep. */
#include "backoff.h"

#include <sodium.h>

int64_t bh__backoff_cap_ms(const struct bh__backoff *b, int attempt)
{
    int64_t cap = b->base_ms > 0 ? b->base_ms : 1;
    int64_t max = b->max_ms >= cap ? b->max_ms : cap;

    /* Doubling stops as soon as the cap reaches max, so it cannot overflow
     * however large attempt is. */
    for (int i = 1; i < attempt && cap < max; i++)
        cap = cap > max / 2 ? max : cap * 2;
    return cap < max ? cap : max;
}

int64_t bh__backoff_delay_ms(const struct bh__backoff *b, int attempt, bh__random_fn rnd, void *arg)
{
    uint64_t span = (uint64_t)bh__backoff_cap_ms(b, attempt) + 1; /* values 0..cap */
    /* Rejection sampling: values at or above the largest multiple of span
     * would make the low delays slightly likelier, so draw again. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % span;
    uint64_t r;

    do
        r = rnd(arg);
    while (r >= limit);
    return (int64_t)(r % span);
}

uint64_t bh__backoff_os_random(void *arg)
{
    uint64_t r;

    (void)arg;
    randombytes_buf(&r, sizeof r);
    return r;
}
