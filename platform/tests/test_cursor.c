/* Unit tests of keyset cursors and the RFC 3339 check (platform/cursor.h):
 * real instants only, round trips, and forged cursors refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "platform/arena.h"
#include "platform/cursor.h"

static void rfc3339_accepts_real_instants_only(void **state)
{
    (void)state;
    assert_true(bh_rfc3339_valid("2026-01-31T12:00:00Z"));
    assert_true(bh_rfc3339_valid("2024-02-29T23:59:59.123456+02:00"));
    assert_true(bh_rfc3339_valid("2026-01-01t00:00:00z"));
    assert_false(bh_rfc3339_valid("2025-02-29T00:00:00Z")); /* not a leap year */
    assert_false(bh_rfc3339_valid("2026-04-31T00:00:00Z"));
    assert_false(bh_rfc3339_valid("2026-01-01T24:00:00Z"));
    assert_false(bh_rfc3339_valid("2026-01-01T12:00:60Z"));
    /* Offsets: real zones only (Postgres refuses 16 hours and more). */
    assert_true(bh_rfc3339_valid("2026-01-01T00:00:00+14:00"));
    assert_true(bh_rfc3339_valid("2026-01-01T00:00:00-12:00"));
    assert_true(bh_rfc3339_valid("2026-01-01T00:00:00+05:45"));
    assert_false(bh_rfc3339_valid("2026-01-01T00:00:00+23:59"));
    assert_false(bh_rfc3339_valid("2026-01-01T00:00:00-16:00"));
    assert_false(bh_rfc3339_valid("2026-01-01T00:00:00+14:01"));
    assert_false(bh_rfc3339_valid("2026-01-01T00:00:00+05:60"));
    assert_false(bh_rfc3339_valid("2026-01-01 12:00:00Z"));
    assert_false(bh_rfc3339_valid("2026-01-01T12:00:00"));
    assert_false(bh_rfc3339_valid("2026-01-01T12:00:00.Z"));
    assert_false(bh_rfc3339_valid("2026-01-01T12:00:00+0200"));
    assert_false(bh_rfc3339_valid("0000-01-01T00:00:00Z"));
    assert_false(bh_rfc3339_valid("tomorrow"));
    assert_false(bh_rfc3339_valid(""));
}

static void cursor_round_trips_and_rejects_forgeries(void **state)
{
    (void)state;
    struct bh_arena *a = bh_arena_new();
    const char *id = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
    char *text = bh_cursor_encode(a, "2026-01-01T12:00:00.123456Z", id);
    assert_non_null(text);
    assert_null(strpbrk(text, "+/=")); /* base64url without padding */
    struct bh_cursor c;
    assert_true(bh_cursor_decode(text, &c));
    assert_string_equal(c.created_at, "2026-01-01T12:00:00.123456Z");
    assert_string_equal(c.id, id);

    assert_false(bh_cursor_decode("", &c));
    assert_false(bh_cursor_decode("not a cursor!", &c));
    assert_false(bh_cursor_decode("aGVsbG8", &c)); /* "hello" */
    /* well-formed base64url of "yesterday|<id>" */
    char *forged = bh_cursor_encode(a, "yesterday", id);
    assert_false(bh_cursor_decode(forged, &c));
    char *bad_id = bh_cursor_encode(a, "2026-01-01T12:00:00Z", "x'; DROP TABLE tasks;--");
    assert_false(bh_cursor_decode(bad_id, &c));
    bh_arena_free(a);
}

static void cursor_round_trips_with_microseconds(void **state)
{
    struct bh_arena *a = bh_arena_new();
    char *text =
        bh_cursor_encode(a, "2026-01-01T12:00:00.123456Z", "0190a0b1-0000-7000-8000-000000000001");
    struct bh_cursor c;
    assert_true(bh_cursor_decode(text, &c));
    assert_string_equal(c.created_at, "2026-01-01T12:00:00.123456Z");
    assert_string_equal(c.id, "0190a0b1-0000-7000-8000-000000000001");
    bh_arena_free(a);
}

static void forged_cursors_are_refused(void **state)
{
    struct bh_arena *a = bh_arena_new();
    struct bh_cursor c;
    assert_false(bh_cursor_decode("not base64 !", &c));
    assert_false(bh_cursor_decode("", &c));
    /* Well-formed base64 of something else: a timestamp Postgres would
     * choke on, or an id that is no UUID. */
    assert_false(bh_cursor_decode(
        bh_cursor_encode(a, "yesterday", "0190a0b1-0000-7000-8000-000000000001"), &c));
    assert_false(
        bh_cursor_decode(bh_cursor_encode(a, "2026-01-01T12:00:00Z", "1; DROP TABLE x"), &c));
    bh_arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc3339_accepts_real_instants_only),
        cmocka_unit_test(cursor_round_trips_and_rejects_forgeries),
        cmocka_unit_test(cursor_round_trips_with_microseconds),
        cmocka_unit_test(forged_cursors_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
