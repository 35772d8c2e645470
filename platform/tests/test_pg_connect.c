/* Unit tests of the one Postgres connect (platform/src/pg_connect.c) that the
 * pools, the migration runner and the relay share: the connect_timeout rule,
 * and that a server which accepts but never answers costs no more than the
 * budget. No Postgres needed: a local socket that listens and stays silent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pg.h"
#include "platform/breaker.h" /* bh_now_ms */
#include "platform/err.h"

static void a_url_without_connect_timeout_gets_two_seconds(void **state)
{
    char why[128];
    int ms = -1;

    assert_int_equal(bh__pg_connect_budget_ms("postgres://u@localhost/db", &ms, why, sizeof why),
                     0);
    assert_int_equal(ms, BH__PG_CONNECT_TIMEOUT_S * 1000);
    assert_int_equal(BH__PG_CONNECT_TIMEOUT_S, 2);
}

static void the_urls_connect_timeout_wins_in_both_url_forms(void **state)
{
    char why[128];
    int ms = -1;

    assert_int_equal(bh__pg_connect_budget_ms("postgres://u@localhost/db?connect_timeout=7", &ms,
                                              why, sizeof why),
                     0);
    assert_int_equal(ms, 7000);
    assert_int_equal(bh__pg_connect_budget_ms("host=localhost dbname=db connect_timeout=1", &ms,
                                              why, sizeof why),
                     0);
    assert_int_equal(ms, 1000);
}

static void a_zero_or_garbage_connect_timeout_keeps_the_default(void **state)
{
    char why[128];
    int ms = -1;

    assert_int_equal(
        bh__pg_connect_budget_ms("postgres://localhost/db?connect_timeout=0", &ms, why, sizeof why),
        0);
    assert_int_equal(ms, 2000);
    assert_int_equal(bh__pg_connect_budget_ms("postgres://localhost/db?connect_timeout=-3", &ms,
                                              why, sizeof why),
                     0);
    assert_int_equal(ms, 2000);
}

static void a_url_that_does_not_parse_is_refused_with_a_reason(void **state)
{
    char why[128] = "";
    int ms = -1;

    assert_int_equal(
        bh__pg_connect_budget_ms("postgres://localhost/db?nosuchoption=1", &ms, why, sizeof why),
        BH_EINVAL);
    assert_true(why[0] != '\0');
    assert_null(
        bh__pg_connect("host=localhost nosuchoption=1", "test", INT64_MAX, why, sizeof why));
}

/* A socket that completes the TCP handshake (the backlog does) and then
 * never says a word: the connect must give up on its own. */
static int silent_server(int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void a_silent_server_costs_the_urls_connect_timeout_and_no_more(void **state)
{
    char url[128], why[128] = "";
    int port, fd = silent_server(&port);
    int64_t start = bh_now_ms(), took;

    snprintf(url, sizeof url, "postgres://u@127.0.0.1:%d/db?connect_timeout=1&sslmode=disable",
             port);
    assert_null(bh__pg_connect(url, "test", INT64_MAX, why, sizeof why));
    took = bh_now_ms() - start;
    assert_true(took >= 900);
    assert_true(took < 1800);
    assert_string_equal(why, "timed out");
    close(fd);
}

static void the_callers_earlier_deadline_wins_over_the_budget(void **state)
{
    char url[128], why[128] = "";
    int port, fd = silent_server(&port);
    int64_t start = bh_now_ms(), took;

    snprintf(url, sizeof url, "postgres://u@127.0.0.1:%d/db?sslmode=disable", port);
    assert_null(bh__pg_connect(url, "test", start + 200, why, sizeof why));
    took = bh_now_ms() - start;
    assert_true(took >= 150);
    assert_true(took < 1000);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_url_without_connect_timeout_gets_two_seconds),
        cmocka_unit_test(the_urls_connect_timeout_wins_in_both_url_forms),
        cmocka_unit_test(a_zero_or_garbage_connect_timeout_keeps_the_default),
        cmocka_unit_test(a_url_that_does_not_parse_is_refused_with_a_reason),
        cmocka_unit_test(a_silent_server_costs_the_urls_connect_timeout_and_no_more),
        cmocka_unit_test(the_callers_earlier_deadline_wins_over_the_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
