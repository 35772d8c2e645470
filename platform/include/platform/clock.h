/* Monotonic time for budgets and timeouts (never the wall clock, which can
 * jump). Condition variables that wait on a bh_deadline_ms() must be
 * created with pthread_condattr_setclock(CLOCK_MONOTONIC). */
#ifndef BH_PLATFORM_CLOCK_H
#define BH_PLATFORM_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds on the monotonic clock. */
int64_t bh_now_ms(void);
/* The monotonic instant ms milliseconds from now, for pthread_cond_timedwait. */
struct timespec bh_deadline_ms(int ms);
/* Sleeps ms milliseconds (none when ms <= 0); a signal may end it early. */
void bh_sleep_ms(int ms);

#endif
