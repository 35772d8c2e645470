/* Problem types (RFC 9457) share one base URI; the `code` is the stable,
 * machine-readable part clients switch on. */
#ifndef BH_PLATFORM_PROBLEM_H
#define BH_PLATFORM_PROBLEM_H

#define BH_PROBLEM_BASE "https://bulkhead.dev/problems/"

/* The reason phrase for a status ("Not Found"). */
const char *bh_status_title(unsigned status);

#endif
