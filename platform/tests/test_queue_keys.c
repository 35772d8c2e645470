/* Unit tests of the job queue's naming rules (platform/src/queue.c): which
 * queue names are accepted (they become Redis keys and environment variable
 * names) and the key layout every Lua script relies on. No Redis needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "queue.h"

static void queue_names_are_lower_case_words(void **state)
{
    assert_true(bh__queue_name_valid("email"));
    assert_true(bh__queue_name_valid("notifications"));
    assert_true(bh__queue_name_valid("probe_0a1b2c"));
    assert_true(bh__queue_name_valid("a"));
}

static void queue_names_that_would_escape_their_keys_are_refused(void **state)
{
    assert_false(bh__queue_name_valid(NULL));
    assert_false(bh__queue_name_valid(""));
    assert_false(bh__queue_name_valid("Email"));
    assert_false(bh__queue_name_valid("email:dead"));
    assert_false(bh__queue_name_valid("e mail"));
    assert_false(bh__queue_name_valid("email*"));
    assert_false(bh__queue_name_valid("e-mail"));
    assert_false(bh__queue_name_valid("notifications.email"));
}

static void queue_names_are_at_most_forty_characters(void **state)
{
    assert_true(bh__queue_name_valid("abcdefghijabcdefghijabcdefghijabcdefghij"));
    assert_false(bh__queue_name_valid("abcdefghijabcdefghijabcdefghijabcdefghijk"));
}

static void every_key_of_a_queue_is_under_the_platform_prefix(void **state)
{
    struct bh__queue_keys k;

    bh__queue_keys_for("email", &k);
    assert_string_equal(k.ready, "bh:q:email:ready");
    assert_string_equal(k.leased, "bh:q:email:leased");
    assert_string_equal(k.delayed, "bh:q:email:delayed");
    assert_string_equal(k.dead, "bh:q:email:dead");
}

static void the_longest_queue_name_fits_its_keys(void **state)
{
    const char *name = "abcdefghijabcdefghijabcdefghijabcdefghij";
    struct bh__queue_keys k;

    bh__queue_keys_for(name, &k);
    assert_string_equal(k.delayed, "bh:q:abcdefghijabcdefghijabcdefghijabcdefghij:delayed");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(queue_names_are_lower_case_words),
        cmocka_unit_test(queue_names_that_would_escape_their_keys_are_refused),
        cmocka_unit_test(queue_names_are_at_most_forty_characters),
        cmocka_unit_test(every_key_of_a_queue_is_under_the_platform_prefix),
        cmocka_unit_test(the_longest_queue_name_fits_its_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
