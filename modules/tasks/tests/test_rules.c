/* Unit tests of the tasks module's pure rules (src/rules.c): transitions,
 * entity tags and search patterns. No database, no Redis: these must never
 * need a running service. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

static void status_moves_forward_and_reopens_only(void **state)
{
    (void)state;
    assert_true(tasks__transition_allowed("todo", "in_progress"));
    assert_true(tasks__transition_allowed("in_progress", "done"));
    assert_true(tasks__transition_allowed("done", "todo"));
    assert_true(tasks__transition_allowed("todo", "todo"));
    assert_false(tasks__transition_allowed("todo", "done"));
    assert_false(tasks__transition_allowed("in_progress", "todo"));
    assert_false(tasks__transition_allowed("done", "in_progress"));
}

static void statuses_and_priorities_are_closed_sets(void **state)
{
    (void)state;
    assert_true(tasks__status_valid("in_progress"));
    assert_false(tasks__status_valid("IN_PROGRESS"));
    assert_false(tasks__status_valid(""));
    assert_false(tasks__status_valid(NULL));
    assert_true(tasks__priority_valid("urgent"));
    assert_false(tasks__priority_valid("critical"));
}

static void postgres_utc_text_becomes_rfc3339(void **state)
{
    (void)state;
    char out[48];
    assert_true(tasks__rfc3339_from_pg("2026-12-03 08:33:35.123456", out, sizeof out));
    assert_string_equal(out, "2026-12-03T08:33:35.123456Z");
    assert_true(tasks__rfc3339_from_pg("2026-12-03 08:33:35.5", out, sizeof out));
    assert_string_equal(out, "2026-12-03T08:33:35.5Z");
    assert_true(tasks__rfc3339_from_pg("2026-12-03 08:33:35", out, sizeof out));
    assert_string_equal(out, "2026-12-03T08:33:35Z");
    assert_true(tasks__rfc3339_from_pg("10000-01-01 04:59:59", out, sizeof out));
    assert_string_equal(out, "10000-01-01T04:59:59Z");
    assert_true(tasks__rfc3339_from_pg("0001-12-31 23:00:00 BC", out, sizeof out));
    assert_string_equal(out, "0000-12-31T23:00:00Z");
    assert_false(tasks__rfc3339_from_pg("2026-12-03 08:33:35+00", out, sizeof out));
    assert_false(tasks__rfc3339_from_pg("12/03/2026 08:33:35", out, sizeof out));
    assert_false(tasks__rfc3339_from_pg("2026-12-03 08:33:35.", out, sizeof out));
    assert_false(tasks__rfc3339_from_pg("infinity", out, sizeof out));
    assert_false(tasks__rfc3339_from_pg("2026-12-03 08:33:35", out, 10));
}

static void etags_compare_strongly_for_if_match(void **state)
{
    (void)state;
    char tag[32];
    tasks__etag_format(tag, sizeof tag, 7);
    assert_string_equal(tag, "\"v7\"");
    assert_true(tasks__etag_matches("\"v7\"", 7, false));
    assert_true(tasks__etag_matches("\"v1\", \"v7\"", 7, false));
    assert_true(tasks__etag_matches("*", 7, false));
    assert_false(tasks__etag_matches("\"v6\"", 7, false));
    assert_false(tasks__etag_matches("W/\"v7\"", 7, false)); /* If-Match is strong */
    assert_true(tasks__etag_matches("W/\"v7\"", 7, true));   /* If-None-Match is weak */
    assert_false(tasks__etag_matches("v7", 7, false));
    assert_false(tasks__etag_matches("\"v77\"", 7, false));
    assert_false(tasks__etag_matches("\"v7", 7, false));
    assert_false(tasks__etag_matches("\"v6\" \"v7\"", 7, false)); /* no comma: malformed */
}

static void search_pattern_escapes_wildcards(void **state)
{
    (void)state;
    struct bh_arena *a = bh_arena_new();
    assert_string_equal(tasks__like_pattern(a, "50%_off\\"), "%50\\%\\_off\\\\%");
    assert_string_equal(tasks__like_pattern(a, ""), "%%");
    bh_arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(status_moves_forward_and_reopens_only),
        cmocka_unit_test(statuses_and_priorities_are_closed_sets),
        cmocka_unit_test(etags_compare_strongly_for_if_match),
        cmocka_unit_test(postgres_utc_text_becomes_rfc3339),
        cmocka_unit_test(search_pattern_escapes_wildcards),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
