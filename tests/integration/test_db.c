/* Integration test of the platform's data access against a real Postgres and
 * Redis: migrations, pools, transactions across modules, and fences 3 and 4.
 * Skipped (exit 77) without DATABASE_URL, REDIS_URL, BULKHEAD_REDIS_PASSWORD.
 * It must leave nothing behind: every probe table, key and ledger row it
 * creates is removed, whatever the outcome. */
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "platform/breaker.h"
#include "platform/db.h"
#include "platform/err.h"
#include "platform/redis.h"

#define SKIPPED 77

static const char *const MODULES[] = {"auth", "tasks", "billing", "notifications"};
enum { N_MODULES = sizeof MODULES / sizeof MODULES[0] };

static struct {
    const char *db_url, *redis_url, *redis_password;
    const char *admin_url; /* optional: a superuser, for the reconnect test */
    char migrations[PATH_MAX];
} env;

/* ---- a minimal harness: each test is a function named as a sentence --------- */

static int failures;

static bool check_at(bool ok, const char *what, const char *file, int line)
{
    if (!ok) {
        fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
        failures++;
    }
    return ok;
}

static bool check_rc_at(int got, int want, const char *what, const char *file, int line)
{
    if (got != want) {
        fprintf(stderr, "%s:%d: %s returned %s (%d), expected %s (%d)\n", file, line, what,
                bh_err_name(got), got, bh_err_name(want), want);
        failures++;
    }
    return got == want;
}

#define CHECK(cond)          check_at((cond), #cond, __FILE__, __LINE__)
#define CHECK_RC(expr, want) check_rc_at((expr), (want), #expr, __FILE__, __LINE__)
/* For set-up steps that make the rest of a test meaningless when they fail. */
#define REQUIRE_RC(expr, want)                                                                     \
    do {                                                                                           \
        if (!CHECK_RC(expr, want))                                                                 \
            goto out;                                                                              \
    } while (0)

/* ---- helpers ------------------------------------------------------------------ */

static void open_pools(int pool_size, int wait_ms, int statement_timeout_ms)
{
    if (bh_db_init(env.db_url, MODULES, N_MODULES, pool_size, wait_ms, statement_timeout_ms) != 0) {
        fprintf(stderr, "bh_db_init failed\n");
        exit(1);
    }
}

/* The first value of a one-statement query run as module, or NULL
 * (the caller frees). */
static char *query_value(const char *module, const char *sql)
{
    PGresult *r = NULL;
    char *value = NULL;

    if (bh_db_query_as(module, &r, sql, 0, NULL) == 0 && PQntuples(r) > 0)
        value = strdup(bh_pg_str(r, 0, 0));
    PQclear(r);
    return value;
}

static bool query_value_is(const char *module, const char *sql, const char *expected)
{
    char *value = query_value(module, sql);
    bool same = value != NULL && strcmp(value, expected) == 0;

    if (!same)
        fprintf(stderr, "  [%s] %s -> %s, expected %s\n", module, sql, value ? value : "(error)",
                expected);
    free(value);
    return same;
}

/* Runs one statement in its own transaction as module. */
static int exec_in_tx(const char *module, const char *sql)
{
    struct bh_tx *tx;
    int rc = bh_tx_begin_as(module, &tx);

    if (rc != 0)
        return rc;
    rc = bh_tx_query(tx, NULL, sql, 0, NULL);
    if (rc != 0) {
        bh_tx_rollback(tx);
        return rc;
    }
    return bh_tx_commit(tx);
}

/* A TCP port that accepts connections and then never says a word: what a
 * hung server looks like to a client. */
static int open_blackhole(int *port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) != 0) {
        perror("blackhole");
        exit(1);
    }
    *port = ntohs(addr.sin_port);
    return fd;
}

static bool write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    bool ok = f != NULL && fputs(text, f) >= 0;

    if (f != NULL && fclose(f) != 0)
        ok = false;
    return ok;
}

/* ---- migrations --------------------------------------------------------------- */

static void migrations_apply_once_and_are_recorded(void)
{
    CHECK_RC(bh_db_migrate(env.db_url, env.migrations, MODULES, N_MODULES), 0);
    /* A second run finds everything applied. */
    CHECK_RC(bh_db_migrate(env.db_url, env.migrations, MODULES, N_MODULES), 0);
    open_pools(2, 1000, 5000);
    CHECK(query_value_is("platform",
                         "SELECT length(checksum) FROM platform.schema_migrations"
                         " WHERE module = 'platform' AND version = '0001'",
                         "64"));
    /* Each module may use schema platform and insert into the outbox (once
     * a platform migration created it), and do nothing else there. */
    CHECK(query_value_is("platform",
                         "SELECT bool_and(has_schema_privilege('bh_' || m, 'platform', 'USAGE')"
                         " AND NOT has_schema_privilege('bh_' || m, 'platform', 'CREATE')"
                         " AND (to_regclass('platform.outbox') IS NULL"
                         "  OR (has_table_privilege('bh_' || m, 'platform.outbox', 'INSERT')"
                         "  AND NOT has_table_privilege('bh_' || m, 'platform.outbox', 'SELECT'))))"
                         " FROM unnest(ARRAY['auth', 'tasks', 'billing', 'notifications']) AS m",
                         "t"));
    bh_db_shutdown();
}

struct migrate_thread {
    pthread_t thread;
    int rc;
};

static void *run_migrate(void *arg)
{
    struct migrate_thread *t = arg;

    t->rc = bh_db_migrate(env.db_url, env.migrations, MODULES, N_MODULES);
    return NULL;
}

static void concurrent_migration_runs_both_succeed(void)
{
    struct migrate_thread t[2];

    for (int i = 0; i < 2; i++)
        pthread_create(&t[i].thread, NULL, run_migrate, &t[i]);
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i].thread, NULL);
        CHECK_RC(t[i].rc, 0);
    }
}

/* Scratch migrations for tasks live in a temporary folder; the ledger and
 * the tables they create are real, so they are removed before and after. */
static void remove_probe_migrations(void)
{
    CHECK_RC(bh_db_query_as("platform", NULL,
                            "DELETE FROM platform.schema_migrations"
                            " WHERE module = 'tasks' AND version IN ('9000', '9001')",
                            0, NULL),
             0);
    CHECK_RC(bh_db_query_as("tasks", NULL, "DROP TABLE IF EXISTS tasks.migrate_probe", 0, NULL), 0);
    CHECK_RC(bh_db_query_as("tasks", NULL, "DROP TABLE IF EXISTS tasks.migrate_probe_2", 0, NULL),
             0);
}

static void migration_runner_refuses_an_edited_migration(void)
{
    static const char *const tasks_only[] = {"tasks"};
    char dir[] = "/tmp/bh-migrations-XXXXXX", tasks_dir[64], file[128], broken[128];

    open_pools(2, 1000, 5000);
    remove_probe_migrations();
    if (!CHECK(mkdtemp(dir) != NULL))
        goto out;
    snprintf(tasks_dir, sizeof tasks_dir, "%s/tasks", dir);
    snprintf(file, sizeof file, "%s/9000_probe.sql", tasks_dir);
    snprintf(broken, sizeof broken, "%s/9001_trespass.sql", tasks_dir);
    if (!CHECK(mkdir(tasks_dir, 0700) == 0) ||
        !CHECK(write_file(file, "CREATE TABLE tasks.migrate_probe (id int);\n")))
        goto out;

    REQUIRE_RC(bh_db_migrate(env.db_url, dir, tasks_only, 1), 0);
    /* It ran as bh_tasks: the module owns what its migrations create. */
    CHECK(query_value_is("tasks",
                         "SELECT tableowner FROM pg_tables"
                         " WHERE schemaname = 'tasks' AND tablename = 'migrate_probe'",
                         "bh_tasks"));

    CHECK(write_file(file, "CREATE TABLE tasks.migrate_probe (id int, edited int);\n"));
    CHECK_RC(bh_db_migrate(env.db_url, dir, tasks_only, 1), BH_ECONFLICT);
    CHECK(query_value_is("tasks",
                         "SELECT count(*) FROM information_schema.columns"
                         " WHERE table_schema = 'tasks' AND column_name = 'edited'",
                         "0"));

    /* A migration that trespasses into another schema fails as a whole:
     * nothing of it stays, nothing is recorded. */
    CHECK(write_file(file, "CREATE TABLE tasks.migrate_probe (id int);\n"));
    CHECK(write_file(broken, "CREATE TABLE tasks.migrate_probe_2 (id int);\n"
                             "CREATE TABLE auth.migrate_trespass (id int);\n"));
    CHECK_RC(bh_db_migrate(env.db_url, dir, tasks_only, 1), BH_EINTERNAL);
    CHECK(query_value_is("tasks",
                         "SELECT count(*) FROM pg_tables"
                         " WHERE tablename IN ('migrate_probe_2', 'migrate_trespass')",
                         "0"));
    CHECK(query_value_is("platform",
                         "SELECT count(*) FROM platform.schema_migrations"
                         " WHERE module = 'tasks' AND version = '9001'",
                         "0"));

out:
    remove_probe_migrations();
    unlink(file);
    unlink(broken);
    rmdir(tasks_dir);
    rmdir(dir);
    bh_db_shutdown();
}

/* ---- fence 3 and transactions --------------------------------------------------- */

static void create_tx_probes(void)
{
    CHECK_RC(exec_in_tx("auth", "CREATE TABLE IF NOT EXISTS auth.tx_probe"
                                " (id int PRIMARY KEY, note text NOT NULL)"),
             0);
    CHECK_RC(exec_in_tx("tasks", "CREATE TABLE IF NOT EXISTS tasks.tx_probe"
                                 " (id int PRIMARY KEY, note text NOT NULL)"),
             0);
    CHECK_RC(exec_in_tx("auth", "DELETE FROM auth.tx_probe"), 0);
    CHECK_RC(exec_in_tx("tasks", "DELETE FROM tasks.tx_probe"), 0);
}

static void drop_tx_probes(void)
{
    CHECK_RC(exec_in_tx("auth", "DROP TABLE IF EXISTS auth.tx_probe"), 0);
    CHECK_RC(exec_in_tx("tasks", "DROP TABLE IF EXISTS tasks.tx_probe"), 0);
}

static void module_role_cannot_read_another_modules_schema(void)
{
    struct bh_tx *tx = NULL;

    REQUIRE_RC(bh_tx_begin_as("tasks", &tx), 0);
    CHECK_RC(bh_tx_query(tx, NULL, "SELECT * FROM auth.tx_probe", 0, NULL), BH_EFORBIDDEN);
    CHECK(strcmp(bh_tx_sqlstate(tx), "42501") == 0);
out:
    bh_tx_rollback(tx);
}

/* In tx (begun as auth): one row as auth, then one as tasks, then back. */
static int write_in_both_modules(struct bh_tx *tx, const char *id)
{
    const char *params[] = {id, "written across modules"};
    const char *prev = NULL;
    int rc;

    rc = bh_tx_query(tx, NULL, "INSERT INTO auth.tx_probe (id, note) VALUES ($1, $2)", 2, params);
    if (rc != 0)
        return rc;
    rc = bh_tx_enter_as(tx, "tasks", &prev);
    if (rc != 0)
        return rc;
    CHECK(strcmp(prev, "auth") == 0);
    CHECK(strcmp(bh_tx_module(tx), "tasks") == 0);
    CHECK(query_value_is("auth", "SELECT current_user", "bh_auth")); /* other connections */
    rc = bh_tx_query(tx, NULL, "INSERT INTO tasks.tx_probe (id, note) VALUES ($1, $2)", 2, params);
    if (rc != 0)
        return rc;
    rc = bh_tx_leave(tx, prev);
    CHECK(strcmp(bh_tx_module(tx), "auth") == 0);
    return rc;
}

static void cross_module_transaction_commits_both_writes(void)
{
    struct bh_tx *tx = NULL;

    REQUIRE_RC(bh_tx_begin_as("auth", &tx), 0);
    REQUIRE_RC(write_in_both_modules(tx, "1"), 0);
    CHECK_RC(bh_tx_commit(tx), 0);
    tx = NULL;

    CHECK(query_value_is("auth", "SELECT count(*) FROM auth.tx_probe WHERE id = 1", "1"));
    CHECK(query_value_is("tasks", "SELECT count(*) FROM tasks.tx_probe WHERE id = 1", "1"));
    /* SET LOCAL ended with the transaction: the pooled connection is auth's again. */
    CHECK(query_value_is("auth", "SELECT current_user", "bh_auth"));
out:
    bh_tx_rollback(tx);
}

static void cross_module_transaction_rolls_back_both_writes(void)
{
    struct bh_tx *tx = NULL;
    const char *prev = NULL;

    REQUIRE_RC(bh_tx_begin_as("auth", &tx), 0);
    REQUIRE_RC(write_in_both_modules(tx, "2"), 0);
    /* While the transaction is tasks's, auth's data is out of reach as usual. */
    REQUIRE_RC(bh_tx_enter_as(tx, "tasks", &prev), 0);
    CHECK_RC(bh_tx_query(tx, NULL, "SELECT 1 FROM auth.tx_probe", 0, NULL), BH_EFORBIDDEN);
    bh_tx_rollback(tx);
    tx = NULL;

    CHECK(query_value_is("auth", "SELECT count(*) FROM auth.tx_probe WHERE id = 2", "0"));
    CHECK(query_value_is("tasks", "SELECT count(*) FROM tasks.tx_probe WHERE id = 2", "0"));
out:
    bh_tx_rollback(tx);
}

static void constraint_violations_map_to_errors_with_details(void)
{
    struct bh_tx *tx = NULL;

    REQUIRE_RC(bh_tx_begin_as("auth", &tx), 0);
    CHECK_RC(
        bh_tx_query(tx, NULL, "INSERT INTO auth.tx_probe (id, note) VALUES (1, 'again')", 0, NULL),
        BH_ECONFLICT);
    CHECK(strcmp(bh_tx_sqlstate(tx), "23505") == 0);
    CHECK(strcmp(bh_tx_constraint(tx), "tx_probe_pkey") == 0);
    bh_tx_rollback(tx);

    REQUIRE_RC(bh_tx_begin_as("auth", &tx), 0);
    CHECK_RC(bh_tx_query(tx, NULL, "INSERT INTO auth.tx_probe (id, note) VALUES ($1, 'x')", 1,
                         (const char *[]){"not a number"}),
             BH_EINVAL);
    CHECK(strcmp(bh_tx_sqlstate(tx), "22P02") == 0);
    bh_tx_rollback(tx);

    /* Committing after an ignored error is a bug, and is reported as one. */
    REQUIRE_RC(bh_tx_begin_as("auth", &tx), 0);
    CHECK_RC(
        bh_tx_query(tx, NULL, "INSERT INTO auth.tx_probe (id, note) VALUES (3, NULL)", 0, NULL),
        BH_EINVAL);
    CHECK_RC(bh_tx_commit(tx), BH_EINTERNAL);
    tx = NULL;
    CHECK(query_value_is("auth", "SELECT count(*) FROM auth.tx_probe WHERE id = 3", "0"));
out:
    bh_tx_rollback(tx);
}

static void statements_are_prepared_once_per_connection(void)
{
    static const char *const sql = "SELECT count(*) FROM auth.tx_probe WHERE id > $1";
    struct bh_tx *tx = NULL;
    PGresult *r = NULL;

    REQUIRE_RC(bh_tx_begin_as("auth", &tx), 0);
    for (int i = 0; i < 3; i++)
        CHECK_RC(bh_tx_query(tx, NULL, sql, 1, (const char *[]){"0"}), 0);
    REQUIRE_RC(bh_tx_query(tx, &r,
                           "SELECT count(*) FROM pg_prepared_statements"
                           " WHERE statement = $1",
                           1, &sql),
               0);
    CHECK(strcmp(bh_pg_str(r, 0, 0), "1") == 0);
out:
    PQclear(r);
    bh_tx_rollback(tx);
}

/* BEGIN and SET LOCAL ROLE travel in one pipeline with the statement after
 * them: the role is right for each statement, a switch that is undone
 * before any statement costs nothing, and a statement that fails on its
 * first run still leaves its prepared form behind for the next. */
static void begin_and_role_switches_ride_with_the_next_statement(void)
{
    static const char *const who = "SELECT current_user";
    static const char *const cast = "SELECT $1::int";
    struct bh_tx *tx = NULL;
    PGresult *r = NULL;
    const char *prev = NULL;

    REQUIRE_RC(bh_tx_begin_as("auth", &tx), 0);
    REQUIRE_RC(bh_tx_enter_as(tx, "tasks", &prev), 0);
    REQUIRE_RC(bh_tx_query(tx, &r, who, 0, NULL), 0);
    CHECK(strcmp(bh_pg_str(r, 0, 0), "bh_tasks") == 0);
    PQclear(r);
    r = NULL;
    REQUIRE_RC(bh_tx_leave(tx, prev), 0);
    REQUIRE_RC(bh_tx_enter_as(tx, "tasks", &prev), 0); /* in and out again, */
    REQUIRE_RC(bh_tx_leave(tx, prev), 0);              /* with nothing between */
    REQUIRE_RC(bh_tx_query(tx, &r, who, 0, NULL), 0);
    CHECK(strcmp(bh_pg_str(r, 0, 0), "bh_auth") == 0);
    PQclear(r);
    r = NULL;
    CHECK_RC(bh_tx_commit(tx), 0);
    tx = NULL;

    /* A transaction with no statement sends nothing and commits. */
    REQUIRE_RC(bh_tx_begin_as("auth", &tx), 0);
    CHECK_RC(bh_tx_commit(tx), 0);
    tx = NULL;

    REQUIRE_RC(bh_tx_begin_as("auth", &tx), 0);
    CHECK_RC(bh_tx_query(tx, NULL, cast, 1, (const char *[]){"not a number"}), BH_EINVAL);
    CHECK(strcmp(bh_tx_sqlstate(tx), "22P02") == 0);
    bh_tx_rollback(tx);
    tx = NULL;
    REQUIRE_RC(bh_tx_begin_as("auth", &tx), 0);
    REQUIRE_RC(bh_tx_query(tx, &r, cast, 1, (const char *[]){"42"}), 0);
    CHECK(strcmp(bh_pg_str(r, 0, 0), "42") == 0);
out:
    PQclear(r);
    bh_tx_rollback(tx);
}

static const char *const INSERT_AUTH_PROBE = "INSERT INTO auth.tx_probe (id, note) VALUES ($1, $2)";
static const char *const INSERT_TASKS_PROBE =
    "INSERT INTO tasks.tx_probe (id, note) VALUES ($1, $2)";

static int defer_probe(struct bh_tx *tx, const char *sql, const char *id)
{
    return bh_tx_defer(tx, sql, 2, (const char *[]){id, "deferred"});
}

/* Deferred statements (outbox rows) wait for the next statement or COMMIT,
 * keep their order and the role they were queued under, vanish with a
 * rollback, and report their failure where they are finally sent, leaving
 * the connection fit for the pool. */
static void deferred_statements_travel_with_the_next_statement_or_commit(void)
{
    struct bh_tx *tx = NULL;
    const char *prev = NULL;
    struct bh_db_pool_stats before, after;
    char id[16];

    /* Seen by the next statement of the same transaction, then committed. */
    REQUIRE_RC(bh_tx_begin_as("auth", &tx), 0);
    REQUIRE_RC(defer_probe(tx, INSERT_AUTH_PROBE, "10"), 0);
    CHECK(query_value_is("auth", "SELECT count(*) FROM auth.tx_probe WHERE id = 10", "0"));
    PGresult *r = NULL;
    REQUIRE_RC(bh_tx_query(tx, &r, "SELECT count(*) FROM auth.tx_probe WHERE id = 10", 0, NULL), 0);
    CHECK(strcmp(bh_pg_str(r, 0, 0), "1") == 0);
    PQclear(r);
    CHECK_RC(bh_tx_commit(tx), 0);
    tx = NULL;
    CHECK(query_value_is("auth", "SELECT count(*) FROM auth.tx_probe WHERE id = 10", "1"));

    /* Only deferred statements: BEGIN, the rows and COMMIT in one pipeline. */
    REQUIRE_RC(bh_tx_begin_as("auth", &tx), 0);
    REQUIRE_RC(defer_probe(tx, INSERT_AUTH_PROBE, "11"), 0);
    REQUIRE_RC(defer_probe(tx, INSERT_AUTH_PROBE, "12"), 0);
    CHECK_RC(bh_tx_commit(tx), 0);
    tx = NULL;
    CHECK(query_value_is("auth", "SELECT count(*) FROM auth.tx_probe WHERE id IN (11, 12)", "2"));

    /* A rollback drops what was never sent. */
    REQUIRE_RC(bh_tx_begin_as("auth", &tx), 0);
    REQUIRE_RC(defer_probe(tx, INSERT_AUTH_PROBE, "13"), 0);
    bh_tx_rollback(tx);
    tx = NULL;
    CHECK(query_value_is("auth", "SELECT count(*) FROM auth.tx_probe WHERE id = 13", "0"));

    /* Each runs under the role in effect when it was queued. */
    REQUIRE_RC(bh_tx_begin_as("auth", &tx), 0);
    REQUIRE_RC(defer_probe(tx, INSERT_AUTH_PROBE, "14"), 0);
    REQUIRE_RC(bh_tx_enter_as(tx, "tasks", &prev), 0);
    REQUIRE_RC(defer_probe(tx, INSERT_TASKS_PROBE, "14"), 0);
    REQUIRE_RC(bh_tx_leave(tx, prev), 0);
    CHECK_RC(bh_tx_commit(tx), 0);
    tx = NULL;
    CHECK(query_value_is("auth", "SELECT count(*) FROM auth.tx_probe WHERE id = 14", "1"));
    CHECK(query_value_is("tasks", "SELECT count(*) FROM tasks.tx_probe WHERE id = 14", "1"));

    /* More than the queue holds: the overflow takes the queue with it. */
    REQUIRE_RC(bh_tx_begin_as("auth", &tx), 0);
    for (int i = 20; i < 40; i++) {
        snprintf(id, sizeof id, "%d", i);
        REQUIRE_RC(defer_probe(tx, INSERT_AUTH_PROBE, id), 0);
    }
    CHECK_RC(bh_tx_commit(tx), 0);
    tx = NULL;
    CHECK(query_value_is("auth", "SELECT count(*) FROM auth.tx_probe WHERE id >= 20 AND id < 40",
                         "20"));

    /* A failure shows at the next statement ... */
    REQUIRE_RC(bh_tx_begin_as("auth", &tx), 0);
    REQUIRE_RC(defer_probe(tx, INSERT_AUTH_PROBE, "10"), 0); /* a duplicate */
    CHECK_RC(bh_tx_query(tx, NULL, "SELECT 1", 0, NULL), BH_ECONFLICT);
    CHECK(strcmp(bh_tx_sqlstate(tx), "23505") == 0);
    bh_tx_rollback(tx);
    tx = NULL;

    /* ... or at COMMIT, which then rolls everything back; the connection
     * is rolled back and pooled again, not closed. */
    REQUIRE_RC(bh_db_pool_stats("auth", &before), 0);
    REQUIRE_RC(bh_tx_begin_as("auth", &tx), 0);
    REQUIRE_RC(bh_tx_query(tx, NULL, INSERT_AUTH_PROBE, 2, (const char *[]){"15", "direct"}), 0);
    REQUIRE_RC(bh_tx_enter_as(tx, "tasks", &prev), 0);
    REQUIRE_RC(defer_probe(tx, INSERT_AUTH_PROBE, "16"), 0); /* as tasks: refused */
    REQUIRE_RC(bh_tx_leave(tx, prev), 0);
    CHECK_RC(bh_tx_commit(tx), BH_EFORBIDDEN);
    tx = NULL;
    CHECK(query_value_is("auth", "SELECT count(*) FROM auth.tx_probe WHERE id IN (15, 16)", "0"));
    CHECK(query_value_is("auth", "SELECT current_user", "bh_auth"));
    REQUIRE_RC(bh_db_pool_stats("auth", &after), 0);
    CHECK(after.open == before.open);
out:
    bh_tx_rollback(tx);
}

static void database_fence_and_transactions(void)
{
    open_pools(2, 1000, 5000);
    create_tx_probes();
    module_role_cannot_read_another_modules_schema();
    cross_module_transaction_commits_both_writes();
    cross_module_transaction_rolls_back_both_writes();
    constraint_violations_map_to_errors_with_details();
    statements_are_prepared_once_per_connection();
    begin_and_role_switches_ride_with_the_next_statement();
    deferred_statements_travel_with_the_next_statement_or_commit();
    drop_tx_probes();
    bh_db_shutdown();
}

/* ---- time budgets and bulkheads -------------------------------------------------- */

static void statement_timeout_ends_a_slow_query(void)
{
    struct bh_tx *tx = NULL;
    int64_t start;

    open_pools(1, 1000, 200);
    REQUIRE_RC(bh_tx_begin_as("tasks", &tx), 0);
    start = bh_now_ms();
    CHECK_RC(bh_tx_query(tx, NULL, "SELECT pg_sleep(10)", 0, NULL), BH_ETIMEOUT);
    CHECK(bh_now_ms() - start < 2000);
    CHECK(strcmp(bh_tx_sqlstate(tx), "57014") == 0);
    bh_tx_rollback(tx);
    tx = NULL;
    /* The connection is fine afterwards. */
    CHECK(query_value_is("tasks", "SELECT 1", "1"));
out:
    bh_tx_rollback(tx);
    bh_db_shutdown();
}

static void exhausted_pool_does_not_starve_other_modules(void)
{
    struct bh_tx *held[2] = {NULL, NULL}, *third = NULL, *other = NULL;
    struct bh_db_pool_stats stats;
    int64_t start;

    open_pools(2, 300, 5000);
    REQUIRE_RC(bh_tx_begin_as("notifications", &held[0]), 0);
    REQUIRE_RC(bh_tx_begin_as("notifications", &held[1]), 0);
    {
        PGresult *a = NULL, *b = NULL;
        CHECK_RC(bh_tx_query(held[0], &a, "SELECT pg_backend_pid()", 0, NULL), 0);
        CHECK_RC(bh_tx_query(held[1], &b, "SELECT pg_backend_pid()", 0, NULL), 0);
        CHECK(a != NULL && b != NULL && strcmp(bh_pg_str(a, 0, 0), bh_pg_str(b, 0, 0)) != 0);
        PQclear(a);
        PQclear(b);
    }

    start = bh_now_ms();
    CHECK_RC(bh_tx_begin_as("notifications", &third), BH_EUNAVAILABLE);
    CHECK(bh_now_ms() - start >= 290);
    CHECK(third == NULL);
    CHECK_RC(bh_tx_begin_as("auth", &other), 0);

    CHECK_RC(bh_db_pool_stats("notifications", &stats), 0);
    CHECK(stats.size == 2 && stats.in_use == 2 && stats.open == 2 && stats.timeouts == 1);
out:
    bh_tx_rollback(held[0]);
    bh_tx_rollback(held[1]);
    bh_tx_rollback(third);
    bh_tx_rollback(other);
    bh_db_shutdown();
}

/* ---- failures of Postgres itself ------------------------------------------------- */

static void dropped_connection_is_replaced_transparently(void)
{
    struct bh_db_pool_stats stats;
    PGconn *admin = NULL;
    PGresult *r;

    if (env.admin_url == NULL) {
        printf("  (skipped: BH_PG_ADMIN_URL is not set)\n");
        return;
    }
    open_pools(1, 1000, 5000);
    REQUIRE_RC(bh_db_ping("billing", 1000), 0);

    /* The pool's only connection, by its backend pid: other processes of
     * the test run have billing connections too, and must not be touched. */
    PGresult *pid = NULL;
    if (!CHECK_RC(bh_db_query_as("billing", &pid, "SELECT pg_backend_pid()::text", 0, NULL), 0))
        goto out;
    const char *params[] = {PQgetvalue(pid, 0, 0)};
    admin = PQconnectdb(env.admin_url);
    if (!CHECK(PQstatus(admin) == CONNECTION_OK)) {
        PQclear(pid);
        goto out;
    }
    r = PQexecParams(admin, "SELECT pg_terminate_backend($1::int)", 1, NULL, params, NULL, NULL, 0);
    PQclear(pid);
    CHECK(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1);
    PQclear(r);
    usleep(200 * 1000);

    CHECK(query_value_is("billing", "SELECT current_user", "bh_billing"));
    CHECK_RC(bh_db_pool_stats("billing", &stats), 0);
    CHECK(stats.open == 1);
out:
    PQfinish(admin);
    bh_db_shutdown();
}

static void ping_gives_up_in_time_when_postgres_hangs(void)
{
    char url[128];
    struct bh_tx *tx = NULL;
    int port, fd = open_blackhole(&port);
    int64_t start;

    snprintf(url, sizeof url, "postgresql://bulkhead@127.0.0.1:%d/bulkhead?connect_timeout=1",
             port);
    if (!CHECK_RC(bh_db_init(url, MODULES, N_MODULES, 2, 200, 5000), 0))
        goto out_close;

    start = bh_now_ms();
    CHECK_RC(bh_db_ping("auth", 300), BH_EUNAVAILABLE);
    CHECK(bh_now_ms() - start < 600);
    /* Right after a failed attempt nobody waits for another one. */
    start = bh_now_ms();
    CHECK_RC(bh_db_ping("auth", 300), BH_EUNAVAILABLE);
    CHECK_RC(bh_tx_begin_as("auth", &tx), BH_EUNAVAILABLE);
    CHECK(bh_now_ms() - start < 100);
    CHECK(tx == NULL);
    bh_db_shutdown();
out_close:
    close(fd);
}

static void ping_succeeds_when_postgres_is_up(void)
{
    open_pools(1, 1000, 5000);
    for (size_t i = 0; i < N_MODULES; i++)
        CHECK_RC(bh_db_ping(MODULES[i], 1000), 0);
    CHECK_RC(bh_db_ping("platform", 1000), 0);
    bh_db_shutdown();
}

/* ---- fence 4 and the Redis breaker ----------------------------------------------- */

static void redis_module_user_reaches_its_own_keys(void)
{
    redisReply *r = NULL;
    const char *argv[] = {"SET", "tasks:probe:binary", "a\0b"};
    const size_t lens[] = {3, 18, 3};

    CHECK_RC(bh_redis_ping("tasks"), 0);
    CHECK_RC(bh_redis_as("tasks", &r, "SET %s %s", "tasks:probe", "1"), 0);
    freeReplyObject(r);
    REQUIRE_RC(bh_redis_as("tasks", &r, "GET %s", "tasks:probe"), 0);
    CHECK(r->type == REDIS_REPLY_STRING && strcmp(r->str, "1") == 0);
    freeReplyObject(r);

    CHECK_RC(bh_redis_argv_as("tasks", &r, 3, argv, lens), 0);
    freeReplyObject(r);
    REQUIRE_RC(bh_redis_as("tasks", &r, "GET %s", "tasks:probe:binary"), 0);
    CHECK(r->type == REDIS_REPLY_STRING && r->len == 3 && memcmp(r->str, "a\0b", 3) == 0);
out:
    if (r != NULL)
        freeReplyObject(r);
    r = NULL;
    CHECK_RC(bh_redis_as("tasks", &r, "DEL tasks:probe tasks:probe:binary"), 0);
    if (r != NULL)
        freeReplyObject(r);
}

static void redis_module_user_cannot_read_another_modules_keys(void)
{
    redisReply *r = NULL;

    CHECK_RC(bh_redis_as("tasks", &r, "GET %s", "auth:probe"), BH_EFORBIDDEN);
    CHECK(r != NULL && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOPERM", 6) == 0);
    if (r != NULL)
        freeReplyObject(r);
    /* A refused command says nothing about Redis's health. */
    CHECK(strcmp(bh_redis_breaker_state("tasks"), "closed") == 0);
}

static void redis_fence(void)
{
    if (!CHECK_RC(bh_redis_init(env.redis_url, env.redis_password, MODULES, N_MODULES, 500), 0))
        return;
    redis_module_user_reaches_its_own_keys();
    redis_module_user_cannot_read_another_modules_keys();
    bh_redis_shutdown();
}

static void redis_breaker_opens_when_redis_hangs(void)
{
    char url[64];
    redisReply *r = NULL;
    int port, fd = open_blackhole(&port);
    int64_t start;

    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    if (!CHECK_RC(bh_redis_init(url, "secret", MODULES, N_MODULES, 100), 0))
        goto out_close;
    for (int i = 0; i < 3; i++) {
        CHECK_RC(bh_redis_as("billing", &r, "GET billing:probe"), BH_EUNAVAILABLE);
        CHECK(r == NULL);
    }
    CHECK(strcmp(bh_redis_breaker_state("billing"), "open") == 0);
    /* Open: refused at once, without touching the network. */
    start = bh_now_ms();
    CHECK_RC(bh_redis_ping("billing"), BH_EUNAVAILABLE);
    CHECK(bh_now_ms() - start < 20);
    /* Other users have breakers of their own. */
    CHECK(strcmp(bh_redis_breaker_state("auth"), "closed") == 0);
    bh_redis_shutdown();
out_close:
    close(fd);
}

int main(void)
{
    static const struct {
        const char *name;
        void (*run)(void);
    } tests[] = {
#define TEST(fn) {#fn, fn}
        /* First, on a fresh database: one run applies, the other waits. */
        TEST(concurrent_migration_runs_both_succeed),
        TEST(migrations_apply_once_and_are_recorded),
        TEST(migration_runner_refuses_an_edited_migration),
        TEST(database_fence_and_transactions),
        TEST(statement_timeout_ends_a_slow_query),
        TEST(exhausted_pool_does_not_starve_other_modules),
        TEST(dropped_connection_is_replaced_transparently),
        TEST(ping_gives_up_in_time_when_postgres_hangs),
        TEST(ping_succeeds_when_postgres_is_up),
        TEST(redis_fence),
        TEST(redis_breaker_opens_when_redis_hangs),
#undef TEST
    };
    const char *source_dir = getenv("BH_SOURCE_DIR");

    env.db_url = getenv("DATABASE_URL");
    env.redis_url = getenv("REDIS_URL");
    env.redis_password = getenv("BULKHEAD_REDIS_PASSWORD");
    env.admin_url = getenv("BH_PG_ADMIN_URL");
    if (env.db_url == NULL || env.redis_url == NULL || env.redis_password == NULL) {
        printf("skipped: DATABASE_URL, REDIS_URL and BULKHEAD_REDIS_PASSWORD are needed\n");
        return SKIPPED;
    }
    snprintf(env.migrations, sizeof env.migrations, "%s/migrations", source_dir ? source_dir : ".");
    /* hiredis writes with write(2): a peer that went away must not kill us. */
    signal(SIGPIPE, SIG_IGN);

    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        int before = failures;

        printf("[ RUN  ] %s\n", tests[i].name);
        fflush(stdout);
        tests[i].run();
        printf("[ %s ] %s\n", failures == before ? " OK " : "FAIL", tests[i].name);
    }
    printf("%d check(s) failed\n", failures);
    return failures == 0 ? 0 : 1;
}
