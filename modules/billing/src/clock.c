/* Billing's clock and time helpers. Every period and retry computation reads
 * billing__now(), never time() directly, so the simulated clock (dev mode
 * only) moves all of them together. It must never shift time in production. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "platform/config.h"

/* The offset in seconds from BULKHEAD_BILLING_CLOCK_FILE. The file is read
 * on every call (it is tiny and only set in dev), so a test can move the
 * clock of a running server by writing a number into it. */
static long long clock_offset(void)
{
    const struct bh_config *cfg = bh_config();
    if (!cfg || !cfg->dev)
        return 0;
    const char *path = getenv("BULKHEAD_BILLING_CLOCK_FILE");
    if (!path || !*path)
        return 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    long long offset = 0;
    if (fscanf(f, "%lld", &offset) != 1)
        offset = 0;
    fclose(f);
    return offset;
}

bool billing__clock_simulated(void)
{
    return clock_offset() != 0;
}

time_t billing__now(void)
{
    return time(NULL) + (time_t)clock_offset();
}

void billing__format_time(time_t t, char out[32])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

time_t billing__add_interval(time_t t, const char *interval)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    int day = tm.tm_mday;
    if (strcmp(interval, "year") == 0)
        tm.tm_year += 1;
    else
        tm.tm_mon += 1;
    /* Clamp to the last day of the target month instead of rolling over. */
    tm.tm_mday = 1;
    time_t first = timegm(&tm);
    struct tm probe;
    gmtime_r(&first, &probe);
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y = probe.tm_year + 1900;
    int last = days[probe.tm_mon];
    if (probe.tm_mon == 1 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        last = 29;
    probe.tm_mday = day < last ? day : last;
    return timegm(&probe);
}
