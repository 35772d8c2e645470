/* Unit tests of list cursors (platform/page.h): a key round-trips through
 * the opaque cursor, a keyset cursor is one such cursor, and anything a
 * client could forge or mangle yields no key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "platform/arena.h"
#include "platform/cursor.h"
#include "platform/page.h"

static void keys_round_trip(void **state)
{
    (void)state;
    struct bh_arena *a = bh_arena_new();
    const char *keys[] = {"42", "0190a0b1-0000-7000-8000-000000000001", "a|b~c"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char *cursor = bh_page_cursor(a, keys[i]);
        assert_non_null(cursor);
        assert_null(strstr(cursor, keys[i])); /* opaque, not the key itself */
        assert_string_equal(bh_page_key(a, cursor), keys[i]);
    }
    bh_arena_free(a);
}

static void keyset_cursors_are_page_cursors(void **state)
{
    (void)state;
    struct bh_arena *a = bh_arena_new();
    const char *id = "0190a0b1-0000-7000-8000-000000000001";
    char *cursor = bh_cursor_encode(a, "2026-01-01T12:00:00Z", id);
    assert_non_null(cursor);
    assert_string_equal(bh_page_key(a, cursor),
                        "2026-01-01T12:00:00Z|0190a0b1-0000-7000-8000-000000000001");
    bh_arena_free(a);
}

static void bad_keys_and_cursors_are_refused(void **state)
{
    (void)state;
    struct bh_arena *a = bh_arena_new();
    char long_key[BH_PAGE_KEY_MAX + 2];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    assert_null(bh_page_cursor(a, long_key));
    long_key[BH_PAGE_KEY_MAX] = '\0';
    assert_non_null(bh_page_cursor(a, long_key)); /* exactly the maximum */
    assert_null(bh_page_cursor(a, ""));
    assert_null(bh_page_cursor(a, NULL));
    assert_null(bh_page_cursor(a, "with space"));

    assert_null(bh_page_key(a, NULL));
    assert_null(bh_page_key(a, ""));
    assert_null(bh_page_key(a, "not base64 !"));
    assert_null(bh_page_key(a, "aGVsbG8="));        /* padded: not what we write */
    assert_null(bh_page_key(a, "AAEC"));            /* decodes to control bytes */
    assert_null(bh_page_key(a, "aGVsbG8gd29ybGQ")); /* "hello world": a space */
    char huge[4 * BH_PAGE_KEY_MAX];
    memset(huge, 'A', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    assert_null(bh_page_key(a, huge));
    bh_arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keys_round_trip),
        cmocka_unit_test(keyset_cursors_are_page_cursors),
        cmocka_unit_test(bad_keys_and_cursors_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
