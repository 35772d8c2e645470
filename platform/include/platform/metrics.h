/* Prometheus metrics. A metric is named bulkhead_<part>_<what>_<unit>:
 * part is a module or a platform part (http, db, jobs, outbox, redis),
 * counters end in _total, histograms in _seconds, and a gauge that counts
 * things names what it counts. Counters and histograms are registered on
 * first use and then found without a lock, so a handle may be looked up on a
 * hot path; keeping it in a static saves even the lookup. Updates are
 * lock-free. Gauges are read by callbacks at scrape. */
#ifndef BH_PLATFORM_METRICS_H
#define BH_PLATFORM_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct bh_counter;
struct bh_histogram;
struct bh_buf;

/* name and help are static strings; labels is the label set as text, e.g.
 * `queue="email",outcome="ok"` (copied), or "" for none. Same name+labels →
 * same handle. NULL on OOM and for a name outside the rule (logged; updates
 * on NULL are ignored). */
struct bh_counter *bh_counter_get(const char *name, const char *help, const char *labels);
void bh_counter_add(struct bh_counter *c, uint64_t n);
/* Buckets are seconds: 0.0005 .. 10. */
struct bh_histogram *bh_histogram_get(const char *name, const char *help, const char *labels);
void bh_histogram_observe(struct bh_histogram *h, double seconds);

/* A gauge family rendered by fn at scrape time: fn appends lines
 * (`name{labels} value\n`) with bh_metrics_printf. */
typedef void (*bh_gauge_fn)(struct bh_buf *out, void *arg);
void bh_gauge_register(const char *name, const char *help, bh_gauge_fn fn, void *arg);
void bh_metrics_printf(struct bh_buf *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The whole exposition text; caller frees with free(). */
char *bh_metrics_render(size_t *len);

#endif
