/* The failed-login limiter's decisions, through its in-process fallback
 * (no Redis here, so every step takes the path a Redis outage takes): an
 * attempt is counted when it is admitted, per account and per address, the
 * tighter limit in the headers, given back on success. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "platform/log.h"

static int setup(void **state)
{
    (void)state;
    bh_log_set_level(BH_LOG_ERROR + 1); /* the "no Redis" errors are expected here */
    auth__settings.login_account_max = 3;
    auth__settings.login_addr_max = 5;
    auth__settings.login_window_s = 60;
    return auth__ratelimit_init();
}

static void account_is_limited_after_its_failures(void **state)
{
    (void)state;
    struct auth__rl rl;
    for (int left = 2; left >= 0; left--) {
        auth__login_reserve("ada@example.test", "10.0.0.1", &rl);
        assert_false(rl.limited);
        assert_int_equal(rl.limit, 3);
        assert_int_equal(rl.remaining, left); /* counted before the password is checked */
    }
    auth__login_reserve("ada@example.test", "10.0.0.1", &rl);
    assert_true(rl.limited);
    assert_int_equal(rl.remaining, 0);
    auth__login_reserve("ada@example.test", "10.0.0.2", &rl);
    assert_true(rl.limited); /* from another address too */
    assert_true(rl.reset_s >= 1 && rl.reset_s <= 60);
    auth__login_reserve("bob@example.test", "10.0.0.2", &rl);
    assert_false(rl.limited); /* another account is not */
}

static void concurrent_attempts_get_exactly_the_limit(void **state)
{
    (void)state;
    struct auth__rl rl;
    int admitted = 0;
    /* Eight attempts in flight at once, none settled yet: only three run. */
    for (int i = 0; i < 8; i++) {
        auth__login_reserve("dee@example.test", "10.0.0.7", &rl);
        admitted += !rl.limited;
    }
    assert_int_equal(admitted, 3);
}

static void address_is_limited_across_accounts(void **state)
{
    (void)state;
    struct auth__rl rl;
    char email[64];
    for (int i = 0; i < 5; i++) {
        snprintf(email, sizeof email, "user%d@example.test", i);
        auth__login_reserve(email, "10.9.9.9", &rl);
        assert_false(rl.limited);
    }
    assert_int_equal(rl.limit, 5); /* the address is the tighter limit now */
    assert_int_equal(rl.remaining, 0);
    auth__login_reserve("fresh@example.test", "10.9.9.9", &rl);
    assert_true(rl.limited);
    auth__login_reserve("fresh@example.test", "10.9.9.8", &rl);
    assert_false(rl.limited);
}

static void success_gives_the_attempt_back(void **state)
{
    (void)state;
    struct auth__rl rl;
    auth__login_reserve("cy@example.test", "10.1.1.1", &rl);
    auth__login_reserve("cy@example.test", "10.1.1.1", &rl);
    assert_int_equal(rl.remaining, 1);
    auth__login_settle("cy@example.test", "10.1.1.1", true);
    auth__login_reserve("cy@example.test", "10.1.1.2", &rl);
    assert_int_equal(rl.remaining, 2); /* the account starts afresh */
    /* An attempt that never checked a password is given back too. */
    auth__login_settle("cy@example.test", "10.1.1.2", false);
    auth__login_reserve("cy@example.test", "10.1.1.2", &rl);
    assert_int_equal(rl.remaining, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(account_is_limited_after_its_failures),
        cmocka_unit_test(concurrent_attempts_get_exactly_the_limit),
        cmocka_unit_test(address_is_limited_across_accounts),
        cmocka_unit_test(success_gives_the_attempt_back),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
