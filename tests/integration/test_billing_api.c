/* Billing's public API (billing/billing.h) against a real Postgres, the way
 * its callers use it: on another module's transaction. A subscription is
 * created with its organization and commits or rolls back with it; a second
 * one is a conflict that leaves the caller's transaction usable; limits are
 * the plan's (trial included), unlimited on business, free without a row.
 * Skipped (exit 77) without DATABASE_URL, REDIS_URL, BULKHEAD_REDIS_PASSWORD. */
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billing/billing.h"
#include "platform/db.h"
#include "platform/err.h"
#include "platform/jobs.h"
#include "platform/redis.h"

#define SKIPPED 77

static const char *const MODULES[] = {"auth", "tasks", "billing", "notifications"};
enum { N_MODULES = sizeof MODULES / sizeof MODULES[0] };

static int failures;

static bool check_rc_at(int got, int want, const char *what, const char *file, int line)
{
    if (got != want) {
        fprintf(stderr, "%s:%d: %s returned %s (%d), expected %s (%d)\n", file, line, what,
                bh_err_name(got), got, bh_err_name(want), want);
        failures++;
    }
    return got == want;
}

static bool check_at(bool ok, const char *what, const char *file, int line)
{
    if (!ok) {
        fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
        failures++;
    }
    return ok;
}

#define CHECK(cond)          check_at((cond), #cond, __FILE__, __LINE__)
#define CHECK_RC(expr, want) check_rc_at((expr), (want), #expr, __FILE__, __LINE__)

/* One value of a query run as billing ("" when no row); static buffer. */
static const char *billing_value(const char *sql, const char *param)
{
    static char out[128];
    PGresult *r = NULL;
    const char *params[] = {param};
    out[0] = '\0';
    if (bh_db_query_as("billing", &r, sql, 1, params) == 0 && PQntuples(r) > 0)
        snprintf(out, sizeof out, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return out;
}

static const char SQL_STATUS[] = "SELECT status FROM billing.subscriptions WHERE org_id = $1";
static const char SQL_COUNT[] = "SELECT count(*) FROM billing.subscriptions WHERE org_id = $1";
static const char SQL_TRIAL_DAYS[] =
    "SELECT round(extract(epoch FROM current_period_end - current_period_start) / 86400)"
    "  FROM billing.subscriptions WHERE org_id = $1";

/* Creates a subscription on a transaction of auth's pool, as auth's
 * org-created hook does, and commits. */
static int create_on_auth_tx(const bh_uuid *org, const char *plan)
{
    struct bh_tx *tx = NULL;
    int rc = bh_tx_begin_as("auth", &tx);
    if (rc != 0)
        return rc;
    rc = billing_create_subscription(tx, org, plan);
    if (rc != 0) {
        bh_tx_rollback(tx);
        return rc;
    }
    return bh_tx_commit(tx);
}

static int check_on_auth_tx(const bh_uuid *org, enum billing_resource r, int64_t current,
                            int64_t *limit)
{
    struct bh_tx *tx = NULL;
    int rc = bh_tx_begin_as("auth", &tx);
    if (rc != 0)
        return rc;
    rc = billing_check_limit(tx, org, r, current, limit);
    bh_tx_rollback(tx);
    return rc;
}

static void subscription_commits_and_rolls_back_with_the_callers_transaction(void)
{
    bh_uuid org = bh_uuid_v7();
    struct bh_tx *tx = NULL;
    if (!CHECK_RC(bh_tx_begin_as("auth", &tx), 0))
        return;
    CHECK_RC(billing_create_subscription(tx, &org, "free"), 0);
    CHECK(strcmp(bh_tx_module(tx), "auth") == 0); /* switched back to the caller's role */
    bh_tx_rollback(tx);
    CHECK(strcmp(billing_value(SQL_COUNT, org.str), "0") == 0);

    CHECK_RC(create_on_auth_tx(&org, "free"), 0);
    CHECK(strcmp(billing_value(SQL_STATUS, org.str), "active") == 0);
}

static void a_second_subscription_is_a_conflict_that_leaves_the_transaction_usable(void)
{
    bh_uuid org = bh_uuid_v7();
    struct bh_tx *tx = NULL;
    int64_t limit = 0;
    if (!CHECK_RC(create_on_auth_tx(&org, "free"), 0) || !CHECK_RC(bh_tx_begin_as("auth", &tx), 0))
        return;
    CHECK_RC(billing_create_subscription(tx, &org, "free"), BH_ECONFLICT);
    CHECK_RC(billing_check_limit(tx, &org, BILLING_RESOURCE_TASKS, 0, &limit), 0);
    CHECK_RC(bh_tx_commit(tx), 0);
    CHECK(strcmp(billing_value(SQL_COUNT, org.str), "1") == 0);
    bh_uuid other = bh_uuid_v7();
    CHECK_RC(create_on_auth_tx(&other, "platinum"), BH_EINVAL);
}

struct racer {
    bh_uuid org;
    int rc;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    r->rc = create_on_auth_tx(&r->org, "free");
    return NULL;
}

static void concurrent_creations_for_one_org_make_one_subscription(void)
{
    struct racer r = {.org = bh_uuid_v7()};
    struct bh_tx *tx = NULL;
    pthread_t t;
    if (!CHECK_RC(bh_tx_begin_as("auth", &tx), 0))
        return;
    CHECK_RC(billing_create_subscription(tx, &r.org, "free"), 0);
    /* The second insert waits on the first transaction's row, then sees it. */
    pthread_create(&t, NULL, race, &r);
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
    CHECK_RC(bh_tx_commit(tx), 0);
    pthread_join(t, NULL);
    CHECK_RC(r.rc, BH_ECONFLICT);
    CHECK(strcmp(billing_value(SQL_COUNT, r.org.str), "1") == 0);
}

static void limits_are_the_plans_and_one_more_must_fit(void)
{
    bh_uuid org = bh_uuid_v7();
    int64_t limit = 0;
    if (!CHECK_RC(create_on_auth_tx(&org, "free"), 0))
        return;
    CHECK_RC(check_on_auth_tx(&org, BILLING_RESOURCE_TASKS, 49, &limit), 0);
    CHECK(limit == 50);
    CHECK_RC(check_on_auth_tx(&org, BILLING_RESOURCE_TASKS, 50, &limit), BH_ELIMIT);
    CHECK(limit == 50);
    CHECK_RC(check_on_auth_tx(&org, BILLING_RESOURCE_MEMBERS, 2, &limit), 0);
    CHECK_RC(check_on_auth_tx(&org, BILLING_RESOURCE_MEMBERS, 3, &limit), BH_ELIMIT);
    CHECK(limit == 3);
    CHECK_RC(check_on_auth_tx(&org, BILLING_RESOURCE_TASKS, 49, NULL), 0);
}

static void a_paid_plan_starts_with_its_trial_and_its_limits(void)
{
    bh_uuid org = bh_uuid_v7();
    int64_t limit = 0;
    if (!CHECK_RC(create_on_auth_tx(&org, "pro"), 0))
        return;
    CHECK(strcmp(billing_value(SQL_STATUS, org.str), "trialing") == 0);
    CHECK(strcmp(billing_value(SQL_TRIAL_DAYS, org.str), "14") == 0);
    CHECK_RC(check_on_auth_tx(&org, BILLING_RESOURCE_TASKS, 4999, &limit), 0);
    CHECK_RC(check_on_auth_tx(&org, BILLING_RESOURCE_TASKS, 5000, &limit), BH_ELIMIT);
    CHECK(limit == 5000);
}

static void business_is_unlimited_and_no_subscription_means_free(void)
{
    bh_uuid org = bh_uuid_v7(), none = bh_uuid_v7();
    int64_t limit = 0;
    if (!CHECK_RC(create_on_auth_tx(&org, "business"), 0))
        return;
    CHECK_RC(check_on_auth_tx(&org, BILLING_RESOURCE_TASKS, 1000000000, &limit), 0);
    CHECK(limit == -1);
    CHECK_RC(check_on_auth_tx(&org, BILLING_RESOURCE_MEMBERS, 1000000, &limit), 0);
    CHECK_RC(check_on_auth_tx(&none, BILLING_RESOURCE_MEMBERS, 3, &limit), BH_ELIMIT);
    CHECK(limit == 3);
}

int main(void)
{
    const char *db = getenv("DATABASE_URL"), *redis = getenv("REDIS_URL"),
               *password = getenv("BULKHEAD_REDIS_PASSWORD"), *source = getenv("BH_SOURCE_DIR");
    if (!db || !redis || !password || !source) {
        fprintf(stderr,
                "SKIP: needs DATABASE_URL, REDIS_URL, BULKHEAD_REDIS_PASSWORD, BH_SOURCE_DIR\n");
        return SKIPPED;
    }
    char migrations[PATH_MAX];
    snprintf(migrations, sizeof migrations, "%s/migrations", source);
    const char *users[] = {"platform", "auth", "tasks", "billing", "notifications"};
    const struct bh_module *const modules[] = {&billing_module};
    if (bh_db_migrate(db, migrations, MODULES, N_MODULES) != 0 ||
        bh_db_init(db, MODULES, N_MODULES, 4, 2000, 5000) != 0 ||
        bh_redis_init(redis, password, users, 5, 500) != 0 || bh_jobs_init(modules, 1) != 0) {
        fprintf(stderr, "could not set up the platform\n");
        return 1;
    }

    subscription_commits_and_rolls_back_with_the_callers_transaction();
    a_second_subscription_is_a_conflict_that_leaves_the_transaction_usable();
    concurrent_creations_for_one_org_make_one_subscription();
    limits_are_the_plans_and_one_more_must_fit();
    a_paid_plan_starts_with_its_trial_and_its_limits();
    business_is_unlimited_and_no_subscription_means_free();

    bh_redis_shutdown();
    bh_db_shutdown();
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("ok - billing's public API on another module's transaction\n");
    return 0;
}
