/* The migration runner (bh_db_migrate, platform/db.h): applies each
 * migrations/<module>/NNNN_<what>.sql once, in order, in its own transaction
 * under its module's role, and records it with a SHA-256 checksum. It must
 * never apply a file twice, never go on past an edited migration, and never
 * run unless it holds the advisory lock that serialises concurrent runners. */
#include "platform/db.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"
#include "platform/err.h"
#include "platform/log.h"
#include "platform/module.h"

/* The advisory lock every runner takes first: "bulkhead" as a big-endian
 * 64-bit integer. */
#define MIGRATE_LOCK_KEY "7094695996560859492"

#define CREATE_LEDGER_SQL                                                                          \
    "CREATE TABLE IF NOT EXISTS platform.schema_migrations ("                                      \
    " module text NOT NULL, version text NOT NULL, name text NOT NULL,"                            \
    " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),"                      \
    " PRIMARY KEY (module, version))"

enum { SHA256_HEX_LEN = 64 };

/* A migration file as found on disk. */
struct migration {
    char *file;         /* "0002_add_index.sql" */
    size_t version_len; /* the leading digits are the version: "0002" */
};

/* What a run is doing, for logs and for the final summary. */
struct migrate_run {
    PGconn *pg;
    const char *dir;
    int applied, unchanged;
};

/* ---- files --------------------------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* NNNN_<what>.sql: digits, an underscore, a name. Returns the number of
 * leading digits, or 0 when name is not a migration file. */
static size_t migration_version_len(const char *name)
{
    size_t digits = 0;

    while (isdigit((unsigned char)name[digits]))
        digits++;
    if (digits == 0 || name[digits] != '_' || strlen(name) <= digits + 1 + strlen(".sql"))
        return 0;
    return digits;
}

static int compare_migrations(const void *a, const void *b)
{
    return strcmp(((const struct migration *)a)->file, ((const struct migration *)b)->file);
}

static void migrations_free(struct migration *list, int n)
{
    for (int i = 0; i < n; i++)
        free(list[i].file);
    free(list);
}

/* Sorts list by name and refuses two files with one version. 0 or BH_EINVAL. */
static int migrations_sort(struct migration *list, int n, const char *module)
{
    if (n > 0)
        qsort(list, (size_t)n, sizeof *list, compare_migrations);
    for (int i = 1; i < n; i++) {
        if (list[i].version_len == list[i - 1].version_len &&
            strncmp(list[i].file, list[i - 1].file, list[i].version_len) == 0) {
            bh_log(BH_LOG_ERROR, "platform", "migrate: %s/%s and %s/%s share a version", module,
                   list[i - 1].file, module, list[i].file);
            return BH_EINVAL;
        }
    }
    return 0;
}

/* Lists dir's migrations sorted by name into *out (the caller frees with
 * migrations_free). A missing folder means a module without migrations. */
static int migrations_list(const char *dir, const char *module, struct migration **out, int *n_out)
{
    struct migration *list = NULL, *grown;
    int n = 0, cap = 0, rc = 0;
    struct dirent *e;
    DIR *d;

    *out = NULL;
    *n_out = 0;
    d = opendir(dir);
    if (d == NULL) {
        if (errno == ENOENT)
            return 0;
        bh_log(BH_LOG_ERROR, "platform", "migrate: cannot read %s: %s", dir, strerror(errno));
        return BH_EINTERNAL;
    }
    while ((e = readdir(d)) != NULL) {
        size_t version_len;

        if (!ends_with(e->d_name, ".sql"))
            continue;
        version_len = migration_version_len(e->d_name);
        if (version_len == 0) {
            bh_log(BH_LOG_WARN, "platform", "migrate: ignoring %s/%s: not named NNNN_<what>.sql",
                   module, e->d_name);
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            grown = realloc(list, (size_t)cap * sizeof *list);
            if (grown == NULL) {
                rc = BH_ENOMEM;
                goto out_free_list;
            }
            list = grown;
        }
        list[n].file = strdup(e->d_name);
        if (list[n].file == NULL) {
            rc = BH_ENOMEM;
            goto out_free_list;
        }
        list[n++].version_len = version_len;
    }
    if ((rc = migrations_sort(list, n, module)) != 0)
        goto out_free_list;
    closedir(d);
    *out = list;
    *n_out = n;
    return 0;

out_free_list:
    migrations_free(list, n);
    closedir(d);
    return rc;
}

/* Reads a whole migration file as a C string (*out freed by the caller).
 * Logs why it could not. */
static int read_text_file(const char *path, char **out, size_t *len_out)
{
    size_t len = 0, cap = 4096, got;
    char *buf = malloc(cap), *grown;
    FILE *f;

    if (buf == NULL)
        return BH_ENOMEM;
    f = fopen(path, "rb");
    if (f == NULL)
        goto out_io_error;
    while ((got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (len + 1 == cap) {
            grown = realloc(buf, cap * 2);
            if (grown == NULL)
                goto out_close;
            buf = grown;
            cap *= 2;
        }
    }
    if (ferror(f))
        goto out_close_io_error;
    fclose(f);
    buf[len] = '\0';
    if (strlen(buf) != len) {
        bh_log(BH_LOG_ERROR, "platform", "migrate: %s contains a NUL byte: not SQL text", path);
        free(buf);
        return BH_EINVAL;
    }
    *out = buf;
    *len_out = len;
    return 0;

out_close_io_error:
    fclose(f);
out_io_error:
    bh_log(BH_LOG_ERROR, "platform", "migrate: cannot read %s: %s", path, strerror(errno));
    free(buf);
    return BH_EINTERNAL;
out_close:
    fclose(f);
    free(buf);
    return BH_ENOMEM;
}

static int sha256_hex(const char *data, size_t len, char hex[SHA256_HEX_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;

    if (EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL) != 1 || md_len * 2 != SHA256_HEX_LEN)
        return BH_EINTERNAL;
    for (unsigned int i = 0; i < md_len; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return 0;
}

/* ---- SQL ------------------------------------------------------------------------ */

static bool result_ok(const PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);

    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY;
}

/* Runs trusted SQL (no parameters). On success *out (if not NULL) holds the
 * result for the caller to PQclear; on failure logs what failed, doing what. */
static int query(PGconn *pg, const char *sql, const char *doing, PGresult **out)
{
    PGresult *r = PQexec(pg, sql);

    if (out != NULL)
        *out = NULL;
    if (!result_ok(r)) {
        bh_log(BH_LOG_ERROR, "platform", "migrate: %s failed: %.*s", doing,
               bh__pg_msg_len(PQerrorMessage(pg)), PQerrorMessage(pg));
        PQclear(r);
        return BH_EINTERNAL;
    }
    if (out != NULL)
        *out = r;
    else
        PQclear(r);
    return 0;
}

static int exec_sql(PGconn *pg, const char *sql, const char *doing)
{
    return query(pg, sql, doing, NULL);
}

/* Postgres reports where a statement failed as a character offset into the
 * whole file; a line number is what a person needs. */
static int error_line(const char *sql, const PGresult *r)
{
    const char *pos = PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION);
    long chars = pos ? strtol(pos, NULL, 10) : 0;
    int line = 1;

    for (const unsigned char *p = (const unsigned char *)sql; *p != '\0' && chars > 1; p++) {
        if ((*p & 0xC0) != 0x80) /* count characters, not UTF-8 continuation bytes */
            chars--;
        if (*p == '\n')
            line++;
    }
    return pos ? line : 0;
}

/* ---- applying ------------------------------------------------------------------- */

/* The checksum recorded for module/version into recorded ("" when none). */
static int ledger_lookup(struct migrate_run *run, const char *module, const char *version,
                         char recorded[SHA256_HEX_LEN + 1])
{
    const char *params[] = {module, version};
    PGresult *r = PQexecParams(run->pg,
                               "SELECT checksum FROM platform.schema_migrations"
                               " WHERE module = $1 AND version = $2",
                               2, NULL, params, NULL, NULL, 0);
    int rc = 0;

    recorded[0] = '\0';
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        bh_log(BH_LOG_ERROR, "platform", "migrate: reading the ledger failed: %.*s",
               bh__pg_msg_len(PQerrorMessage(run->pg)), PQerrorMessage(run->pg));
        rc = BH_EINTERNAL;
    } else if (PQntuples(r) == 1) {
        snprintf(recorded, SHA256_HEX_LEN + 1, "%s", PQgetvalue(r, 0, 0));
    }
    PQclear(r);
    return rc;
}

/* Runs a migration file's statements inside the open transaction. A
 * failure is logged with the file's line; a file that ends the transaction
 * itself is refused. 0 or BH_EINTERNAL. */
static int run_file_sql(struct migrate_run *run, const char *module, const char *file,
                        const char *sql)
{
    PGresult *r = PQexec(run->pg, sql);

    if (!result_ok(r)) {
        const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        char where[32] = "";
        int line = error_line(sql, r);

        if (msg == NULL)
            msg = PQerrorMessage(run->pg);
        if (line > 0)
            snprintf(where, sizeof where, " at line %d", line);
        bh_log(BH_LOG_ERROR, "platform", "migrate: %s/%s failed%s: %.*s (SQLSTATE %s)", module,
               file, where, bh__pg_msg_len(msg), msg, state ? state : "none");
        PQclear(r);
        return BH_EINTERNAL;
    }
    PQclear(r);
    if (PQtransactionStatus(run->pg) != PQTRANS_INTRANS) {
        bh_log(BH_LOG_ERROR, "platform",
               "migrate: %s/%s ended its own transaction; migrations must not contain "
               "BEGIN, COMMIT or ROLLBACK",
               module, file);
        return BH_EINTERNAL;
    }
    return 0;
}

/* One file, one transaction: the file's statements as bh_<module>, then the
 * ledger row as bh_platform. The file must not BEGIN or COMMIT itself. */
static int apply_migration(struct migrate_run *run, const char *module, const char *file,
                           const char *version, const char *sql, const char *checksum)
{
    const char *params[] = {module, version, file, checksum};
    char role_sql[64];
    PGresult *r;
    int rc;

    rc = exec_sql(run->pg, "BEGIN", "BEGIN");
    if (rc != 0)
        return rc;
    snprintf(role_sql, sizeof role_sql, "SET LOCAL ROLE bh_%s", module);
    rc = exec_sql(run->pg, role_sql, role_sql);
    if (rc != 0)
        goto out_rollback;

    rc = run_file_sql(run, module, file, sql);
    if (rc != 0)
        goto out_rollback;

    rc = exec_sql(run->pg, "SET LOCAL ROLE bh_platform", "switching back to bh_platform");
    if (rc != 0)
        goto out_rollback;
    r = PQexecParams(run->pg,
                     "INSERT INTO platform.schema_migrations (module, version, name, checksum)"
                     " VALUES ($1, $2, $3, $4)",
                     4, NULL, params, NULL, NULL, 0);
    rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : BH_EINTERNAL;
    if (rc != 0)
        bh_log(BH_LOG_ERROR, "platform", "migrate: recording %s/%s failed: %.*s", module, file,
               bh__pg_msg_len(PQerrorMessage(run->pg)), PQerrorMessage(run->pg));
    PQclear(r);
    if (rc != 0)
        goto out_rollback;
    rc = exec_sql(run->pg, "COMMIT", "COMMIT");
    if (rc != 0)
        return rc;
    bh_log(BH_LOG_INFO, "platform", "migrate: applied %s/%s", module, file);
    return 0;

out_rollback:
    PQclear(PQexec(run->pg, "ROLLBACK"));
    return rc;
}

static int migrate_file(struct migrate_run *run, const char *module, const char *module_dir,
                        const struct migration *m)
{
    char path[PATH_MAX], version[64], checksum[SHA256_HEX_LEN + 1], recorded[SHA256_HEX_LEN + 1];
    char *sql = NULL;
    size_t len;
    int rc;

    if ((size_t)snprintf(path, sizeof path, "%s/%s", module_dir, m->file) >= sizeof path ||
        m->version_len >= sizeof version) {
        bh_log(BH_LOG_ERROR, "platform", "migrate: %s/%s: name too long", module, m->file);
        return BH_EINVAL;
    }
    snprintf(version, sizeof version, "%.*s", (int)m->version_len, m->file);
    rc = read_text_file(path, &sql, &len);
    if (rc != 0)
        return rc;
    rc = sha256_hex(sql, len, checksum);
    if (rc != 0)
        goto out_free_sql;
    rc = ledger_lookup(run, module, version, recorded);
    if (rc != 0)
        goto out_free_sql;

    if (recorded[0] == '\0') {
        rc = apply_migration(run, module, m->file, version, sql, checksum);
        if (rc == 0)
            run->applied++;
    } else if (strcmp(recorded, checksum) == 0) {
        run->unchanged++;
    } else {
        bh_log(BH_LOG_ERROR, "platform",
               "migrate: migration %s/%s was edited after it was applied (checksum %.12s..., "
               "file now %.12s...); restore it and put the change in a new migration",
               module, m->file, recorded, checksum);
        rc = BH_ECONFLICT;
    }

out_free_sql:
    free(sql);
    return rc;
}

static int migrate_module(struct migrate_run *run, const char *module)
{
    char module_dir[PATH_MAX];
    struct migration *list;
    int n, rc;

    if ((size_t)snprintf(module_dir, sizeof module_dir, "%s/%s", run->dir, module) >=
        sizeof module_dir)
        return BH_EINVAL;
    rc = migrations_list(module_dir, module, &list, &n);
    if (rc != 0)
        return rc;
    for (int i = 0; i < n && rc == 0; i++)
        rc = migrate_file(run, module, module_dir, &list[i]);
    migrations_free(list, n);
    return rc;
}

/* Fence 3 keeps each module out of schema platform, except for inserting
 * its events into platform.outbox (and drawing from that table's serial
 * sequence, if it has one). Runs as bh_platform, which owns both, so it is
 * idempotent and needs no superuser. */
static int grant_platform_access(struct migrate_run *run, const char *const *modules, int n_modules)
{
    PGresult *outbox = NULL, *seqs = NULL;
    char sql[512];
    int rc;

    rc = query(run->pg, "SELECT 1 WHERE to_regclass('platform.outbox') IS NOT NULL",
               "looking for platform.outbox", &outbox);
    if (rc == 0 && PQntuples(outbox) == 1)
        rc = query(run->pg,
                   "SELECT s.oid::regclass::text FROM pg_depend d"
                   " JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'"
                   " WHERE d.classid = 'pg_class'::regclass"
                   "   AND d.refclassid = 'pg_class'::regclass"
                   "   AND d.refobjid = 'platform.outbox'::regclass AND d.deptype = 'a'",
                   "listing the outbox sequences", &seqs);
    for (int i = 0; i < n_modules && rc == 0; i++) {
        if (strcmp(modules[i], "platform") == 0)
            continue;
        snprintf(sql, sizeof sql, "GRANT USAGE ON SCHEMA platform TO bh_%s", modules[i]);
        rc = exec_sql(run->pg, sql, sql);
        if (rc == 0 && seqs != NULL) {
            snprintf(sql, sizeof sql, "GRANT INSERT ON platform.outbox TO bh_%s", modules[i]);
            rc = exec_sql(run->pg, sql, sql);
        }
        for (int s = 0; rc == 0 && seqs != NULL && s < PQntuples(seqs); s++) {
            snprintf(sql, sizeof sql, "GRANT USAGE ON SEQUENCE %s TO bh_%s", PQgetvalue(seqs, s, 0),
                     modules[i]);
            rc = exec_sql(run->pg, sql, sql);
        }
    }
    PQclear(seqs);
    PQclear(outbox);
    return rc;
}

int bh_db_migrate(const char *database_url, const char *migrations_dir, const char *const *modules,
                  int n_modules)
{
    struct migrate_run run = {.dir = migrations_dir};
    char why[256];
    int rc;

    if (database_url == NULL || migrations_dir == NULL || n_modules < 0 ||
        (n_modules > 0 && modules == NULL))
        return BH_EINVAL;
    for (int i = 0; i < n_modules; i++) {
        if (!bh_module_name_valid(modules[i])) {
            bh_log(BH_LOG_ERROR, "platform", "migrate: invalid module name");
            return BH_EINVAL;
        }
    }

    run.pg = bh__pg_connect(database_url, "migrate", INT64_MAX, why, sizeof why);
    if (run.pg == NULL) {
        bh_log(BH_LOG_ERROR, "platform", "migrate: cannot connect: %s", why);
        return BH_EUNAVAILABLE;
    }

    /* Another runner holding the lock makes this one wait, then find
     * everything applied. The lock is the session's: closing releases it. */
    rc = exec_sql(run.pg, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")",
                  "taking the migration lock");
    if (rc != 0)
        goto out_finish;
    /* The login role is NOINHERIT: it does nothing until it takes a role. */
    rc = exec_sql(run.pg, "SET ROLE bh_platform", "SET ROLE bh_platform");
    if (rc == 0)
        rc = exec_sql(run.pg, CREATE_LEDGER_SQL, "creating platform.schema_migrations");
    if (rc != 0)
        goto out_unlock;

    rc = migrate_module(&run, "platform");
    if (rc == 0)
        rc = grant_platform_access(&run, modules, n_modules);
    for (int i = 0; i < n_modules && rc == 0; i++)
        if (strcmp(modules[i], "platform") != 0)
            rc = migrate_module(&run, modules[i]);

    if (rc == 0)
        bh_log(BH_LOG_INFO, "platform", "migrate: %d applied, %d already up to date", run.applied,
               run.unchanged);
    else
        bh_log(BH_LOG_ERROR, "platform", "migrate: stopped after %d applied (%s)", run.applied,
               bh_err_name(rc));

out_unlock:
    PQclear(PQexec(run.pg, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")"));
out_finish:
    PQfinish(run.pg);
    return rc;
}
