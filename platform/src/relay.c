/* The outbox relay: moves committed events from platform.outbox to the
 * queues of their subscribers, at least once and in order per aggregate.
 * It must never mark an event sent before Redis acknowledged its jobs, and
 * never send an event while an older unsent event of the same aggregate is
 * held by another relay.
 *
 * One batch = one transaction (as the platform role): claim up to N unsent
 * rows in outbox order with FOR UPDATE SKIP LOCKED, drop the rows whose
 * aggregate has an older unsent row this relay does not hold (another relay
 * has it: sending ours first would reorder them), fan the rest out with one
 * Lua script, then mark them sent and commit. Any number of relays can run;
 * a crash between the script and the commit re-sends the batch later (a
 * duplicate the consumers' inboxes absorb), never loses it.
 *
 * Wake-up: while events keep coming the relay looks again BUSY_WAIT_MS after
 * each batch. When it finds nothing it goes to sleep on a LISTEN connection
 * of its own, woken by the NOTIFY of a statement trigger on the outbox, or
 * after BULKHEAD_OUTBOX_POLL_MS. A NOTIFY at commit takes a database-wide
 * lock held through the commit's WAL flush, so the trigger notifies only
 * while a relay sleeps (migrations/platform/0004): a relay about to sleep
 * takes the session advisory lock SLEEP_LOCK exclusively, looks once more,
 * then sleeps, and releases it when it wakes; a transaction that writes
 * events takes it shared (try, never waits) and notifies only when it
 * cannot. So no commit goes unseen: either a relay held the lock and is
 * notified, or the transaction held it shared until its commit and no
 * relay could go to sleep without looking after that commit. */
#include <libpq-fe.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "jobs_internal.h"
#include "pg.h"
#include "platform/breaker.h"
#include "platform/config.h"
#include "platform/db.h"
#include "platform/err.h"
#include "platform/log.h"
#include "queue.h"

enum {
    LISTEN_RETRY_MS = 5000,
    BACKLOG_EVERY_MS = 2000,
    PRUNE_EVERY_MIN_MS = 1000, /* prune every half retention, within these bounds */
    PRUNE_EVERY_MAX_MS = 60000,
    PRUNE_BATCH = 5000,
    PRUNE_MAX_ROUNDS = 20,
    BLOCKED_WAIT_MS = 20, /* another relay holds an older event: it is about to commit */
    BUSY_WAIT_MS = 2,     /* events keep coming: look again soon (no NOTIFY then) */
    ERROR_WAIT_MIN_MS = 100,
    ERROR_WAIT_MAX_MS = 5000,
};

/* The oldest unsent rows not locked by another relay, each flagged when an
 * older unsent row of its aggregate is outside this claim (locked by
 * another relay). */
static const char SQL_CLAIM[] =
    "WITH claimed AS ("
    "  SELECT seq, id, type, aggregate_id, payload, recorded_at"
    "    FROM platform.outbox"
    "   WHERE sent_at IS NULL"
    "   ORDER BY seq"
    "   LIMIT $1"
    "     FOR UPDATE SKIP LOCKED)"
    "SELECT c.seq, c.id, c.type, c.payload::text, extract(epoch FROM c.recorded_at)::float8,"
    "       EXISTS (SELECT 1 FROM platform.outbox older"
    "                WHERE older.aggregate_id = c.aggregate_id"
    "                  AND older.sent_at IS NULL"
    "                  AND older.seq < c.seq"
    "                  AND older.seq NOT IN (SELECT seq FROM claimed)) AS blocked"
    "  FROM claimed c"
    " ORDER BY c.seq";

static const char SQL_MARK_SENT[] =
    "UPDATE platform.outbox SET sent_at = clock_timestamp() WHERE seq = ANY($1::bigint[])";

/* The sleep lock (see the top of the file and the outbox trigger): a
 * constant of the migrations, "bhoutbox" in ASCII. */
static const char SQL_SLEEP_LOCK[] = "SELECT pg_try_advisory_lock(7090880081620430712)";
static const char SQL_SLEEP_UNLOCK[] = "SELECT pg_advisory_unlock(7090880081620430712)";
static const char SQL_SLEEP_PEEK[] = "SELECT pg_try_advisory_lock_shared(7090880081620430712)";
static const char SQL_SLEEP_UNPEEK[] = "SELECT pg_advisory_unlock_shared(7090880081620430712)";

static const char SQL_BACKLOG[] =
    "SELECT count(*), coalesce(extract(epoch FROM clock_timestamp() - min(recorded_at)), 0)"
    "  FROM platform.outbox WHERE sent_at IS NULL";

static const char SQL_PRUNE[] =
    "DELETE FROM platform.outbox WHERE seq IN ("
    "  SELECT seq FROM platform.outbox"
    "   WHERE sent_at < clock_timestamp() - make_interval(secs => $1::float8)"
    "   LIMIT $2)";

static struct {
    pthread_t thread;
    bool started;
    atomic_bool stop;
    int stop_fd; /* an eventfd: written once to end the relay's wait */
    PGconn *listen;
    int64_t listen_retry_ms;
    struct bh_histogram *lag;
    struct bh_counter *relayed;
    long long moved; /* events this relay sent since it started (its thread only) */

    pthread_mutex_t lock; /* guards the backlog figures below (read by /metrics) */
    bool backlog_known;
    long long backlog;
    double oldest_s;
} g_r = {.stop_fd = -1, .lock = PTHREAD_MUTEX_INITIALIZER};

static double wall_seconds(void)
{
    struct timespec t;

    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- one batch --------------------------------------------------------------------- */

struct batch {
    int claimed, sent, blocked;
};

/* "{1,2,3}": the seqs of rows to mark, as one array parameter. */
static char *seq_array(const PGresult *res, const bool *send, int n)
{
    size_t cap = (size_t)n * 21 + 3, len = 0;
    char *s = malloc(cap);

    if (s == NULL)
        return NULL;
    s[len++] = '{';
    for (int i = 0; i < n; i++)
        if (send[i])
            len += (size_t)snprintf(s + len, cap - len, "%s%s", len > 1 ? "," : "",
                                    bh_pg_str(res, i, 0));
    s[len++] = '}';
    s[len] = '\0';
    return s;
}

/* The claimed rows to send: the blocked ones (an older event of their
 * aggregate is unsent) wait for a later batch. Strings are borrowed from
 * the claim's result. */
struct claimed {
    const char **ids, **types, **payloads; /* b->sent of each */
    bool *send;                            /* per claimed row */
};

static void claimed_release(struct claimed *c)
{
    free(c->ids);
    free(c->types);
    free(c->payloads);
    free(c->send);
}

/* Picks the rows of res that may be sent now. 0 or BH_ENOMEM. */
static int claimed_pick(const PGresult *res, int n, struct claimed *c, struct batch *b)
{
    c->ids = calloc((size_t)n + 1, sizeof *c->ids);
    c->types = calloc((size_t)n + 1, sizeof *c->types);
    c->payloads = calloc((size_t)n + 1, sizeof *c->payloads);
    c->send = calloc((size_t)n + 1, sizeof *c->send);
    if (!c->ids || !c->types || !c->payloads || !c->send)
        return BH_ENOMEM;
    for (int i = 0; i < n; i++) {
        c->send[i] = strcmp(bh_pg_str(res, i, 5), "t") != 0;
        if (!c->send[i]) {
            b->blocked++;
            continue;
        }
        c->ids[b->sent] = bh_pg_str(res, i, 1);
        c->types[b->sent] = bh_pg_str(res, i, 2);
        c->payloads[b->sent] = bh_pg_str(res, i, 3);
        b->sent++;
    }
    return 0;
}

/* Marks the sent rows and commits, the mark sent in one pipeline with the
 * COMMIT (a failed mark fails the commit: the events are sent again); tx is
 * ended whatever the outcome. */
static int mark_sent(struct bh_tx *tx, const PGresult *res, const bool *send, int n)
{
    char *seqs = seq_array(res, send, n);
    int rc = seqs ? bh_tx_defer(tx, SQL_MARK_SENT, 1, (const char *const[]){seqs}) : BH_ENOMEM;

    free(seqs);
    if (rc != 0) {
        bh_tx_rollback(tx);
        return rc;
    }
    return bh_tx_commit(tx);
}

/* Claims up to limit unsent events in one transaction, queues a job per
 * subscriber of each (one script), marks them sent and commits. An event
 * queued but not marked is sent again later: the consumers' inboxes absorb
 * the duplicate. */
static int relay_batch(int limit, struct batch *b)
{
    struct bh_tx *tx = NULL;
    PGresult *res = NULL;
    struct claimed c = {0};
    char **queues = NULL, lim[16];
    long long jobs = 0;
    double acked_at;
    int rc;

    *b = (struct batch){0};
    snprintf(lim, sizeof lim, "%d", limit);
    if ((rc = bh_tx_begin_as("platform", &tx)) != 0)
        return rc;
    if ((rc = bh_tx_query(tx, &res, SQL_CLAIM, 1, (const char *const[]){lim})) != 0)
        goto out;
    b->claimed = PQntuples(res);
    if ((rc = claimed_pick(res, b->claimed, &c, b)) != 0 || b->sent == 0)
        goto out; /* nothing to send: the rollback releases the claim */
    rc = bh__queue_fan_out(b->sent, c.ids, c.types, c.payloads, &queues, &jobs);
    if (rc != 0)
        goto out; /* Redis took nothing: the events stay unsent */
    acked_at = wall_seconds();
    rc = mark_sent(tx, res, c.send, b->claimed);
    tx = NULL;
    if (rc != 0) {
        bh_log(BH_LOG_WARN, "platform",
               "relay: %d event(s) were queued but could not be marked sent (%s); they will be "
               "sent again and the consumers' inboxes will absorb the duplicates",
               b->sent, bh_err_name(rc));
        goto out;
    }
    for (int i = 0; i < b->claimed; i++)
        if (c.send[i])
            bh_histogram_observe(g_r.lag, acked_at - strtod(bh_pg_str(res, i, 4), NULL));
    bh_counter_add(g_r.relayed, (uint64_t)b->sent);
    g_r.moved += b->sent;
    for (char **q = queues; *q != NULL; q++)
        bh__jobs_queue_wake(*q);
out:
    bh_tx_rollback(tx);
    PQclear(res);
    bh__queue_names_free(queues);
    claimed_release(&c);
    return rc;
}

/* ---- housekeeping -------------------------------------------------------------------- */

int bh__relay_backlog(long long *unsent, double *oldest_s)
{
    PGresult *res = NULL;
    int rc = bh_db_query_as("platform", &res, SQL_BACKLOG, 0, NULL);

    if (rc == 0) {
        *unsent = strtoll(bh_pg_str(res, 0, 0), NULL, 10);
        *oldest_s = strtod(bh_pg_str(res, 0, 1), NULL);
    }
    PQclear(res);
    return rc;
}

static void refresh_backlog(void)
{
    long long unsent = 0;
    double oldest = 0;
    bool ok = bh__relay_backlog(&unsent, &oldest) == 0;

    pthread_mutex_lock(&g_r.lock);
    g_r.backlog_known = ok;
    g_r.backlog = unsent;
    g_r.oldest_s = oldest;
    pthread_mutex_unlock(&g_r.lock);
}

/* Deletes sent rows older than the retention, a bounded amount per call so
 * a large first prune does not hold the relay up. */
static void prune(long retention_s)
{
    char secs[24], batch[16];
    long long total = 0;

    snprintf(secs, sizeof secs, "%ld", retention_s);
    snprintf(batch, sizeof batch, "%d", PRUNE_BATCH);
    for (int round = 0; round < PRUNE_MAX_ROUNDS && !atomic_load(&g_r.stop); round++) {
        struct bh_tx *tx;
        PGresult *res = NULL;
        long long n;

        if (bh_tx_begin_as("platform", &tx) != 0)
            return;
        if (bh_tx_query(tx, &res, SQL_PRUNE, 2, (const char *const[]){secs, batch}) != 0) {
            bh_tx_rollback(tx);
            return;
        }
        if (bh_tx_commit(tx) != 0) { /* commit ends tx whatever the outcome */
            PQclear(res);
            return;
        }
        n = strtoll(PQcmdTuples(res), NULL, 10);
        PQclear(res);
        total += n;
        if (n < PRUNE_BATCH)
            break;
    }
    if (total > 0)
        bh_log(BH_LOG_INFO, "platform", "relay: pruned %lld sent event(s)", total);
}

static void render_backlog(struct bh_buf *out, void *arg)
{
    bool oldest = arg != NULL;

    pthread_mutex_lock(&g_r.lock);
    if (g_r.backlog_known && oldest)
        bh_metrics_printf(out, "bulkhead_outbox_oldest_unsent_seconds %.3f\n", g_r.oldest_s);
    else if (g_r.backlog_known)
        bh_metrics_printf(out, "bulkhead_outbox_backlog %lld\n", g_r.backlog);
    pthread_mutex_unlock(&g_r.lock);
}

static void register_metrics(void)
{
    g_r.lag = bh_histogram_get("bulkhead_outbox_relay_lag_seconds",
                               "Time from an event's insert to its jobs being queued", "");
    g_r.relayed = bh_counter_get("bulkhead_outbox_relayed_total", "Events moved to the queues", "");
    bh_gauge_register("bulkhead_outbox_backlog", "Committed events not yet relayed", render_backlog,
                      NULL);
    bh_gauge_register("bulkhead_outbox_oldest_unsent_seconds", "Age of the oldest unsent event",
                      render_backlog, (void *)1);
}

/* ---- waiting for work ------------------------------------------------------------------ */

/* (Re)opens the LISTEN connection, at most every LISTEN_RETRY_MS. Without
 * it the relay still works: it polls. */
static void listen_ensure(void)
{
    const char *url = bh_config()->database_url;
    int64_t now = bh_now_ms();
    char why[256];
    PGresult *r;
    PGconn *c;

    if (g_r.listen != NULL && PQstatus(g_r.listen) == CONNECTION_OK)
        return;
    if (g_r.listen != NULL) {
        PQfinish(g_r.listen);
        g_r.listen = NULL;
    }
    if (url == NULL || now < g_r.listen_retry_ms)
        return;
    g_r.listen_retry_ms = now + LISTEN_RETRY_MS;
    c = bh__pg_connect(url, "relay", INT64_MAX, why, sizeof why);
    if (c == NULL) {
        bh_log(BH_LOG_DEBUG, "platform", "relay: no LISTEN connection (%s); polling", why);
        return;
    }
    r = PQexec(c, "LISTEN bh_outbox");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        bh_log(BH_LOG_WARN, "platform", "relay: LISTEN failed; polling only");
        PQclear(r);
        PQfinish(c);
        return;
    }
    PQclear(r);
    g_r.listen = c;
}

/* Drops the notifications libpq has read already. Returns how many. */
static int drain_notifies(void)
{
    PGnotify *n;
    int count = 0;

    while ((n = PQnotifies(g_r.listen)) != NULL) {
        PQfreemem(n);
        count++;
    }
    return count;
}

/* Sleeps up to ms, or until an outbox NOTIFY or the stop signal. */
static void relay_wait(int ms)
{
    struct pollfd fds[2] = {{.fd = g_r.stop_fd, .events = POLLIN}, {.fd = -1, .events = POLLIN}};

    /* A notification read while a query ran on the connection is already
     * in libpq, not on the socket. */
    if (g_r.listen != NULL && drain_notifies() > 0)
        return;
    if (g_r.listen != NULL)
        fds[1].fd = PQsocket(g_r.listen);
    if (poll(fds, 2, ms) <= 0 || !(fds[1].revents & (POLLIN | POLLHUP | POLLERR)))
        return;
    if (PQconsumeInput(g_r.listen) == 0) {
        PQfinish(g_r.listen); /* reopened by the next listen_ensure() */
        g_r.listen = NULL;
        return;
    }
    drain_notifies();
}

/* Runs one of the SQL_SLEEP_* statements on the LISTEN connection (its
 * session holds the lock). 1 true, 0 false, -1 when the connection failed
 * (closed: its session lock is gone with it; reopened later). */
static int listen_bool(const char *sql)
{
    PGresult *r = PQexec(g_r.listen, sql);
    int v = -1;

    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        v = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (v < 0) {
        bh_log(BH_LOG_WARN, "platform", "relay: the LISTEN connection failed; polling");
        PQfinish(g_r.listen);
        g_r.listen = NULL;
    }
    return v;
}

/* The last batch found nothing: sleeps until there may be work, by the
 * protocol at the top of the file. */
static void relay_idle(int limit, int poll_ms)
{
    struct batch b;
    int held;

    if (g_r.listen == NULL) {
        relay_wait(poll_ms); /* no LISTEN: polling */
        return;
    }
    held = listen_bool(SQL_SLEEP_LOCK);
    if (held == 1) {
        /* Commits from now on notify; look once more for the ones before. */
        if (relay_batch(limit, &b) == 0 && b.claimed == 0)
            relay_wait(poll_ms);
        if (g_r.listen != NULL)
            listen_bool(SQL_SLEEP_UNLOCK);
        return;
    }
    if (held == 0 && listen_bool(SQL_SLEEP_PEEK) == 1) {
        /* Only transactions writing events hold it: they will not notify,
         * and their events are about to commit. */
        listen_bool(SQL_SLEEP_UNPEEK);
        relay_wait(BUSY_WAIT_MS);
        return;
    }
    /* Another relay sleeps holding it, so commits notify (or the
     * connection failed: polling). */
    relay_wait(poll_ms);
}

static void *relay_main(void *arg)
{
    const struct bh__jobs_config *cfg = bh__jobs_cfg();
    bool routes = false;
    int error_wait = ERROR_WAIT_MIN_MS;
    long half_retention_ms = cfg->retention_s * 500;
    int prune_every = half_retention_ms < PRUNE_EVERY_MIN_MS   ? PRUNE_EVERY_MIN_MS
                      : half_retention_ms > PRUNE_EVERY_MAX_MS ? PRUNE_EVERY_MAX_MS
                                                               : (int)half_retention_ms;
    int64_t next_backlog = 0, next_prune = bh_now_ms() + prune_every;

    (void)arg;
    while (!atomic_load(&g_r.stop)) {
        int64_t now;
        struct batch b = {0};
        int wait_ms = -1, rc; /* -1: nothing found, sleep (relay_idle) */

        /* Relay nothing before this process's own subscribers are known to
         * Redis: their events would find no route and be dropped. */
        if (!routes && !(routes = bh__jobs_routes_publish() == 0)) {
            relay_wait(error_wait);
            error_wait = error_wait * 2 < ERROR_WAIT_MAX_MS ? error_wait * 2 : ERROR_WAIT_MAX_MS;
            continue;
        }
        listen_ensure();
        rc = relay_batch(cfg->relay_batch, &b);
        if (rc != 0) {
            /* Redis may have come back without our routes (NOROUTES):
             * publish them again before the next batch. */
            routes = false;
            wait_ms = error_wait;
            error_wait = error_wait * 2 < ERROR_WAIT_MAX_MS ? error_wait * 2 : ERROR_WAIT_MAX_MS;
        } else {
            error_wait = ERROR_WAIT_MIN_MS;
            if (b.sent > 0 && b.claimed == cfg->relay_batch)
                wait_ms = 0; /* more are waiting */
            else if (b.sent > 0)
                wait_ms = BUSY_WAIT_MS; /* events keep coming */
            else if (b.blocked > 0)
                wait_ms = BLOCKED_WAIT_MS;
        }
        now = bh_now_ms();
        if (now >= next_backlog) {
            refresh_backlog();
            next_backlog = now + BACKLOG_EVERY_MS;
        }
        if (now >= next_prune) {
            prune(cfg->retention_s);
            next_prune = now + prune_every;
        }
        if (wait_ms < 0)
            relay_idle(cfg->relay_batch, cfg->relay_poll_ms);
        else if (wait_ms > 0)
            relay_wait(wait_ms);
    }
    return NULL;
}

/* ---- start and stop --------------------------------------------------------------------- */

static pthread_once_t metrics_once = PTHREAD_ONCE_INIT;

int bh__relay_start(void)
{
    pthread_once(&metrics_once, register_metrics);
    atomic_store(&g_r.stop, false);
    g_r.moved = 0;
    g_r.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (g_r.stop_fd < 0)
        return BH_ENOMEM;
    if (pthread_create(&g_r.thread, NULL, relay_main, NULL) != 0) {
        close(g_r.stop_fd);
        g_r.stop_fd = -1;
        return BH_ENOMEM;
    }
    g_r.started = true;
    bh_log(BH_LOG_INFO, "platform", "relay: started (batch %d, poll %d ms)",
           bh__jobs_cfg()->relay_batch, bh__jobs_cfg()->relay_poll_ms);
    return 0;
}

void bh__relay_stop(void)
{
    uint64_t one = 1;

    if (!g_r.started)
        return;
    atomic_store(&g_r.stop, true);
    if (write(g_r.stop_fd, &one, sizeof one) != sizeof one)
        bh_log(BH_LOG_WARN, "platform",
               "relay: could not signal the stop; it ends at its next poll");
    pthread_join(g_r.thread, NULL);
    g_r.started = false;
    close(g_r.stop_fd);
    g_r.stop_fd = -1;
    PQfinish(g_r.listen);
    g_r.listen = NULL;
    bh_log(BH_LOG_INFO, "platform", "relay: stopped after moving %lld event(s)", g_r.moved);
}
