/* The metrics naming rule, private to platform/src (metrics.c applies it to
 * every registration; the unit test reads it directly). */
#ifndef BH__PLATFORM_SRC_METRICS_INTERNAL_H
#define BH__PLATFORM_SRC_METRICS_INTERNAL_H

#include <stdbool.h>

/* Whether name follows bulkhead_<part>_<what>_<unit> (unit NULL: any, or
 * none, as for a gauge that counts things). */
bool bh__metric_name_valid(const char *name, const char *unit);

#endif
