/* `bulkhead jobs` (platform/jobs.h, bh_jobs_cli): queue figures, the dead
 * letters, retrying and purging them. It reads Redis through queue.c and the
 * outbox through the relay; it must never run a handler nor change a job
 * that is not dead. */
#include "platform/jobs.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobs_internal.h"
#include "platform/err.h"
#include "platform/log.h"
#include "queue.h"

/* ---- the CLI --------------------------------------------------------------------------- */

static int cli_usage(void)
{
    fprintf(stderr, "usage: bulkhead jobs stats\n"
                    "       bulkhead jobs dead [--queue Q] [--json]\n"
                    "       bulkhead jobs retry ID | --all [--queue Q]\n"
                    "       bulkhead jobs purge-dead [--queue Q]\n");
    return 2;
}

static int cli_fail(const char *what, int rc)
{
    fprintf(stderr, "bulkhead jobs: %s: %s\n", what,
            rc == BH_EUNAVAILABLE ? "Redis is unavailable" : bh_err_name(rc));
    return 1;
}

static void format_ms(int64_t ms, char out[32])
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&s, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int cli_stats(void)
{
    char **names;
    long long unsent;
    double oldest;
    int rc = bh__queue_list(&names);

    if (rc != 0)
        return cli_fail("listing queues", rc);
    printf("%-24s %10s %10s %10s %10s\n", "queue", "ready", "in_flight", "delayed", "dead");
    for (char **p = names; *p != NULL; p++) {
        struct bh__queue_keys keys;
        long long c[4];

        if (!bh__queue_name_valid(*p))
            continue;
        bh__queue_keys_for(*p, &keys);
        if ((rc = bh__queue_counts(&keys, c)) != 0)
            break;
        printf("%-24s %10lld %10lld %10lld %10lld\n", *p, c[0], c[1], c[2], c[3]);
    }
    bh__queue_names_free(names);
    if (rc != 0)
        return cli_fail("counting jobs", rc);
    if (bh__relay_backlog(&unsent, &oldest) == 0)
        printf("outbox: %lld unsent event(s), oldest %.1f s\n", unsent, oldest);
    else
        printf("outbox: unknown (Postgres unavailable)\n");
    return 0;
}

static void print_dead_text(const struct bh__queue_dead *d, void *arg)
{
    char died[32];

    (void)arg;
    format_ms(d->died_ms, died);
    printf("%-56s %-16s %-32s %8d  %s  %s\n", d->id, d->queue, d->type, d->attempts, died,
           d->last_error);
}

static void print_dead_json(const struct bh__queue_dead *d, void *arg)
{
    json_t *history = json_loads(d->history, 0, NULL);
    json_t *line =
        json_pack("{s:s, s:s, s:s, s:i, s:s, s:I, s:o}", "id", d->id, "queue", d->queue, "type",
                  d->type, "attempts", d->attempts, "last_error", d->last_error, "died_at_ms",
                  (json_int_t)d->died_ms, "history", history ? history : json_array());
    char *text = line ? json_dumps(line, JSON_COMPACT) : NULL;

    (void)arg;
    if (text != NULL)
        printf("%s\n", text);
    free(text);
    json_decref(line);
}

/* Runs fn for every known queue, or only for `only` when given. */
static int for_each_queue(const char *only, int (*fn)(const char *queue, void *arg), void *arg)
{
    char **names;
    int rc;

    if (only != NULL)
        return bh__queue_name_valid(only) ? fn(only, arg) : BH_EINVAL;
    if ((rc = bh__queue_list(&names)) != 0)
        return rc;
    for (char **p = names; rc == 0 && *p != NULL; p++)
        if (bh__queue_name_valid(*p))
            rc = fn(*p, arg);
    bh__queue_names_free(names);
    return rc;
}

static int dead_of_queue(const char *queue, void *arg)
{
    struct bh__queue_keys keys;

    bh__queue_keys_for(queue, &keys);
    return bh__queue_dead_each(&keys, queue, *(bool *)arg ? print_dead_json : print_dead_text,
                               NULL);
}

struct retry_all {
    char **ids;
    size_t n, cap;
    bool oom;
};

static void collect_dead(const struct bh__queue_dead *d, void *arg)
{
    struct retry_all *r = arg;

    if (r->oom)
        return;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        char **ids = realloc(r->ids, cap * sizeof *ids);

        if (ids == NULL) {
            r->oom = true;
            return;
        }
        r->ids = ids;
        r->cap = cap;
    }
    if ((r->ids[r->n] = strdup(d->id)) == NULL)
        r->oom = true;
    else
        r->n++;
}

static int collect_queue(const char *queue, void *arg)
{
    struct bh__queue_keys keys;

    bh__queue_keys_for(queue, &keys);
    return bh__queue_dead_each(&keys, queue, collect_dead, arg);
}

static int cli_retry_all(const char *queue)
{
    struct retry_all all = {0};
    long long n = 0;
    int rc = for_each_queue(queue, collect_queue, &all);

    if (rc == 0 && all.oom)
        rc = BH_ENOMEM;
    for (size_t i = 0; rc == 0 && i < all.n; i++) {
        int one = bh__queue_retry_dead(all.ids[i]);

        if (one == 0)
            n++;
        else if (one != BH_ENOTFOUND) /* retried by someone else meanwhile: fine */
            rc = one;
    }
    for (size_t i = 0; i < all.n; i++)
        free(all.ids[i]);
    free(all.ids);
    if (rc != 0)
        return cli_fail("retrying dead jobs", rc);
    printf("retried %lld job(s)\n", n);
    return 0;
}

static int purge_queue(const char *queue, void *arg)
{
    struct bh__queue_keys keys;
    long long n;
    int rc;

    bh__queue_keys_for(queue, &keys);
    rc = bh__queue_purge_dead(&keys, &n);
    *(long long *)arg += n;
    return rc;
}

int bh_jobs_cli(int argc, char **argv)
{
    const char *queue = NULL, *id = NULL;
    bool json = false, all = false;
    int rc;

    if (argc < 1)
        return cli_usage();
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--queue") == 0 && i + 1 < argc)
            queue = argv[++i];
        else if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--all") == 0)
            all = true;
        else if (argv[i][0] != '-' && id == NULL)
            id = argv[i];
        else
            return cli_usage();
    }
    if (strcmp(argv[0], "stats") == 0 && argc == 1)
        return cli_stats();
    if (strcmp(argv[0], "dead") == 0 && id == NULL && !all) {
        if (!json)
            printf("%-56s %-16s %-32s %8s  %-20s  %s\n", "id", "queue", "type", "attempts",
                   "died_at", "last_error");
        rc = for_each_queue(queue, dead_of_queue, &json);
        return rc == 0 ? 0 : cli_fail("listing dead jobs", rc);
    }
    if (strcmp(argv[0], "retry") == 0 && all && id == NULL)
        return cli_retry_all(queue);
    if (strcmp(argv[0], "retry") == 0 && id != NULL && !all && queue == NULL) {
        rc = bh__queue_retry_dead(id);
        if (rc == BH_ENOTFOUND) {
            fprintf(stderr, "bulkhead jobs: no dead job %s\n", id);
            return 1;
        }
        if (rc != 0)
            return cli_fail("retrying", rc);
        printf("retried 1 job(s)\n");
        return 0;
    }
    if (strcmp(argv[0], "purge-dead") == 0 && id == NULL && !all) {
        long long n = 0;

        rc = for_each_queue(queue, purge_queue, &n);
        if (rc != 0)
            return cli_fail("purging dead jobs", rc);
        printf("purged %lld dead job(s)\n", n);
        return 0;
    }
    return cli_usage();
}
