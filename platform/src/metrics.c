/* A small Prometheus registry: counters and histograms found by name and
 * label set, gauges rendered by callbacks. Entries are never removed, so a
 * lookup walks the lists with atomic loads and no lock; only adding an entry
 * and rendering take the registry lock. It must never take a lock to update
 * or find a metric, and never register a name outside the naming rule
 * (bh__metric_name_valid). */
#include "platform/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics_internal.h"
#include "platform/log.h"

static const double bucket_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                       0.1,    0.25,  0.5,    1,     2.5,  5,     10};
enum { N_BUCKETS = sizeof bucket_bounds / sizeof bucket_bounds[0] };

struct bh_counter {
    _Atomic(struct bh_counter *) next;
    const char *name, *help;
    char *labels;
    _Atomic uint64_t value;
};

struct bh_histogram {
    _Atomic(struct bh_histogram *) next;
    const char *name, *help;
    char *labels;
    _Atomic uint64_t buckets[N_BUCKETS]; /* non-cumulative; summed at render */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_us;
};

struct gauge {
    struct gauge *next;
    const char *name, *help;
    bh_gauge_fn fn;
    void *arg;
};

struct bh_buf {
    char *data;
    size_t len, cap;
    bool oom;
};

/* Guards adding entries (the tails) and rendering; lookups never take it. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(struct bh_counter *) counters;
static struct bh_counter *counters_tail;
static _Atomic(struct bh_histogram *) histograms;
static struct bh_histogram *histograms_tail;
static struct gauge *gauges, *gauges_tail;

/* The module and platform parts a metric may belong to. */
static const char *const parts[] = {"http", "db",    "jobs",    "outbox",        "redis",
                                    "auth", "tasks", "billing", "notifications", NULL};

bool bh__metric_name_valid(const char *name, const char *unit)
{
    static const char prefix[] = "bulkhead_";
    const char *p, *what;
    size_t n, u;

    if (name == NULL || strncmp(name, prefix, sizeof prefix - 1) != 0)
        return false;
    p = name + sizeof prefix - 1;
    what = NULL;
    for (int i = 0; parts[i] != NULL; i++) {
        size_t len = strlen(parts[i]);
        if (strncmp(p, parts[i], len) == 0 && p[len] == '_') {
            what = p + len + 1;
            break;
        }
    }
    if (what == NULL || *what == '\0')
        return false;
    for (const char *c = what; *c != '\0'; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return false;
    n = strlen(what);
    if (what[0] == '_' || what[n - 1] == '_')
        return false;
    if (unit == NULL)
        return true;
    u = strlen(unit); /* "<what>_<unit>": a what before the unit */
    return n > u + 1 && what[n - u - 1] == '_' && strcmp(what + n - u, unit) == 0;
}

static bool name_ok(const char *name, const char *unit)
{
    if (bh__metric_name_valid(name, unit))
        return true;
    bh_log(BH_LOG_ERROR, "platform",
           "metrics: \"%s\" is not bulkhead_<part>_<what>%s%s; not registered",
           name ? name : "(null)", unit ? "_" : "[_<unit>]", unit ? unit : "");
    return false;
}

static struct bh_counter *counter_find(const char *name, const char *labels)
{
    for (struct bh_counter *c = atomic_load_explicit(&counters, memory_order_acquire); c;
         c = atomic_load_explicit(&c->next, memory_order_acquire))
        if (strcmp(c->name, name) == 0 && strcmp(c->labels, labels) == 0)
            return c;
    return NULL;
}

struct bh_counter *bh_counter_get(const char *name, const char *help, const char *labels)
{
    struct bh_counter *c = counter_find(name, labels);

    if (c != NULL || !name_ok(name, "total"))
        return c;
    pthread_mutex_lock(&registry_lock);
    if ((c = counter_find(name, labels)) != NULL) /* another thread added it */
        goto out;
    c = calloc(1, sizeof *c);
    if (!c || !(c->labels = strdup(labels))) {
        free(c);
        c = NULL;
        goto out;
    }
    c->name = name;
    c->help = help;
    if (counters_tail)
        atomic_store_explicit(&counters_tail->next, c, memory_order_release);
    else
        atomic_store_explicit(&counters, c, memory_order_release);
    counters_tail = c;
out:
    pthread_mutex_unlock(&registry_lock);
    return c;
}

void bh_counter_add(struct bh_counter *c, uint64_t n)
{
    if (c)
        atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

static struct bh_histogram *histogram_find(const char *name, const char *labels)
{
    for (struct bh_histogram *h = atomic_load_explicit(&histograms, memory_order_acquire); h;
         h = atomic_load_explicit(&h->next, memory_order_acquire))
        if (strcmp(h->name, name) == 0 && strcmp(h->labels, labels) == 0)
            return h;
    return NULL;
}

struct bh_histogram *bh_histogram_get(const char *name, const char *help, const char *labels)
{
    struct bh_histogram *h = histogram_find(name, labels);

    if (h != NULL || !name_ok(name, "seconds"))
        return h;
    pthread_mutex_lock(&registry_lock);
    if ((h = histogram_find(name, labels)) != NULL)
        goto out;
    h = calloc(1, sizeof *h);
    if (!h || !(h->labels = strdup(labels))) {
        free(h);
        h = NULL;
        goto out;
    }
    h->name = name;
    h->help = help;
    if (histograms_tail)
        atomic_store_explicit(&histograms_tail->next, h, memory_order_release);
    else
        atomic_store_explicit(&histograms, h, memory_order_release);
    histograms_tail = h;
out:
    pthread_mutex_unlock(&registry_lock);
    return h;
}

void bh_histogram_observe(struct bh_histogram *h, double seconds)
{
    if (!h)
        return;
    int i = 0;
    while (i < N_BUCKETS && seconds > bucket_bounds[i])
        i++;
    if (i < N_BUCKETS)
        atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, (uint64_t)(seconds * 1e6), memory_order_relaxed);
}

void bh_gauge_register(const char *name, const char *help, bh_gauge_fn fn, void *arg)
{
    struct gauge *g;

    if (!name_ok(name, NULL))
        return;
    g = calloc(1, sizeof *g);
    if (!g)
        return;
    g->name = name;
    g->help = help;
    g->fn = fn;
    g->arg = arg;
    pthread_mutex_lock(&registry_lock);
    if (gauges_tail)
        gauges_tail->next = g;
    else
        gauges = g;
    gauges_tail = g;
    pthread_mutex_unlock(&registry_lock);
}

__attribute__((format(printf, 2, 0))) static void buf_vprintf(struct bh_buf *b, const char *fmt,
                                                              va_list ap)
{
    if (b->oom)
        return;
    for (;;) {
        va_list copy;
        va_copy(copy, ap);
        int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, copy);
        va_end(copy);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->oom = true;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
}

void bh_metrics_printf(struct bh_buf *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(out, fmt, ap);
    va_end(ap);
}

/* HELP/TYPE once per family: families are registered in order, so a family
 * header is printed when the name differs from the previous entry's. */
static void family_header(struct bh_buf *b, const char **last, const char *name, const char *help,
                          const char *type)
{
    if (*last && strcmp(*last, name) == 0)
        return;
    bh_metrics_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    *last = name;
}

static void render_labels(struct bh_buf *b, const char *name, const char *suffix,
                          const char *labels, const char *extra)
{
    bool has = labels[0] || extra;
    bh_metrics_printf(b, "%s%s%s%s%s%s%s", name, suffix, has ? "{" : "", labels,
                      labels[0] && extra ? "," : "", extra ? extra : "", has ? "}" : "");
}

/* Counters, one family per name in first-seen order. Under the lock. */
static void render_counters(struct bh_buf *b)
{
    for (struct bh_counter *c = atomic_load(&counters); c; c = atomic_load(&c->next)) {
        bool seen = false;
        for (struct bh_counter *p = atomic_load(&counters); p != c; p = atomic_load(&p->next))
            if (strcmp(p->name, c->name) == 0)
                seen = true;
        if (seen)
            continue;
        const char *last = NULL;
        for (struct bh_counter *m = c; m; m = atomic_load(&m->next)) {
            if (strcmp(m->name, c->name) != 0)
                continue;
            family_header(b, &last, m->name, m->help, "counter");
            render_labels(b, m->name, "", m->labels, NULL);
            bh_metrics_printf(b, " %llu\n", (unsigned long long)atomic_load(&m->value));
        }
    }
}

/* One histogram: cumulative buckets, +Inf, sum and count. */
static void render_histogram(struct bh_buf *b, struct bh_histogram *m)
{
    uint64_t cumulative = 0, count = atomic_load(&m->count);

    for (int i = 0; i < N_BUCKETS; i++) {
        char le[32];
        cumulative += atomic_load(&m->buckets[i]);
        snprintf(le, sizeof le, "le=\"%g\"", bucket_bounds[i]);
        render_labels(b, m->name, "_bucket", m->labels, le);
        bh_metrics_printf(b, " %llu\n", (unsigned long long)cumulative);
    }
    render_labels(b, m->name, "_bucket", m->labels, "le=\"+Inf\"");
    bh_metrics_printf(b, " %llu\n", (unsigned long long)count);
    render_labels(b, m->name, "_sum", m->labels, NULL);
    bh_metrics_printf(b, " %.6f\n", (double)atomic_load(&m->sum_us) / 1e6);
    render_labels(b, m->name, "_count", m->labels, NULL);
    bh_metrics_printf(b, " %llu\n", (unsigned long long)count);
}

/* Histograms, one family per name in first-seen order. Under the lock. */
static void render_histograms(struct bh_buf *b)
{
    for (struct bh_histogram *h = atomic_load(&histograms); h; h = atomic_load(&h->next)) {
        bool seen = false;
        for (struct bh_histogram *p = atomic_load(&histograms); p != h; p = atomic_load(&p->next))
            if (strcmp(p->name, h->name) == 0)
                seen = true;
        if (seen)
            continue;
        const char *last = NULL;
        for (struct bh_histogram *m = h; m; m = atomic_load(&m->next)) {
            if (strcmp(m->name, h->name) != 0)
                continue;
            family_header(b, &last, m->name, m->help, "histogram");
            render_histogram(b, m);
        }
    }
}

char *bh_metrics_render(size_t *len)
{
    struct bh_buf b = {.data = malloc(8192), .cap = 8192};
    if (!b.data)
        return NULL;
    b.data[0] = '\0';
    pthread_mutex_lock(&registry_lock);
    render_counters(&b);
    render_histograms(&b);
    for (struct gauge *g = gauges; g; g = g->next) {
        bh_metrics_printf(&b, "# HELP %s %s\n# TYPE %s gauge\n", g->name, g->help, g->name);
        g->fn(&b, g->arg);
    }
    pthread_mutex_unlock(&registry_lock);
    if (b.oom) {
        free(b.data);
        return NULL;
    }
    *len = b.len;
    return b.data;
}
