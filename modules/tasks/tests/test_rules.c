/* Unit tests of the tasks module's pure rules (src/rules.c): transitions,
 * date-times, cursors, entity tags and search patterns. No database, no
 * Redis: these must never need a running service. */
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

static void rfc3339_accepts_real_instants_only(void **state)
{
    (void)state;
    assert_true(tasks__rfc3339_valid("2026-01-31T12:00:00Z"));
    assert_true(tasks__rfc3339_valid("2024-02-29T23:59:59.123456+02:00"));
    assert_true(tasks__rfc3339_valid("2026-01-01t00:00:00z"));
    assert_false(tasks__rfc3339_valid("2025-02-29T00:00:00Z")); /* not a leap year */
    assert_false(tasks__rfc3339_valid("2026-04-31T00:00:00Z"));
    assert_false(tasks__rfc3339_valid("2026-01-01T24:00:00Z"));
    assert_false(tasks__rfc3339_valid("2026-01-01T12:00:60Z"));
    assert_false(tasks__rfc3339_valid("2026-01-01 12:00:00Z"));
    assert_false(tasks__rfc3339_valid("2026-01-01T12:00:00"));
    assert_false(tasks__rfc3339_valid("2026-01-01T12:00:00.Z"));
    assert_false(tasks__rfc3339_valid("2026-01-01T12:00:00+0200"));
    assert_false(tasks__rfc3339_valid("0000-01-01T00:00:00Z"));
    assert_false(tasks__rfc3339_valid("tomorrow"));
    assert_false(tasks__rfc3339_valid(""));
}

static void cursor_round_trips_and_rejects_forgeries(void **state)
{
    (void)state;
    struct bh_arena *a = bh_arena_new();
    const char *id = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
    char *text = tasks__cursor_encode(a, "2026-01-01T12:00:00.123456Z", id);
    assert_non_null(text);
    assert_null(strpbrk(text, "+/=")); /* base64url without padding */
    struct tasks__cursor c;
    assert_true(tasks__cursor_decode(text, &c));
    assert_string_equal(c.created_at, "2026-01-01T12:00:00.123456Z");
    assert_string_equal(c.id, id);

    assert_false(tasks__cursor_decode("", &c));
    assert_false(tasks__cursor_decode("not a cursor!", &c));
    assert_false(tasks__cursor_decode("aGVsbG8", &c)); /* "hello" */
    /* well-formed base64url of "yesterday|<id>" */
    char *forged = tasks__cursor_encode(a, "yesterday", id);
    assert_false(tasks__cursor_decode(forged, &c));
    char *bad_id = tasks__cursor_encode(a, "2026-01-01T12:00:00Z", "x'; DROP TABLE tasks;--");
    assert_false(tasks__cursor_decode(bad_id, &c));
    bh_arena_free(a);
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
    assert_string_equal(tasks__url_encode(a, "a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    bh_arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(status_moves_forward_and_reopens_only),
        cmocka_unit_test(statuses_and_priorities_are_closed_sets),
        cmocka_unit_test(rfc3339_accepts_real_instants_only),
        cmocka_unit_test(cursor_round_trips_and_rejects_forgeries),
        cmocka_unit_test(etags_compare_strongly_for_if_match),
        cmocka_unit_test(search_pattern_escapes_wildcards),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
