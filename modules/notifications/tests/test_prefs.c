/* Unit tests of the preference rules (prefs.c) and the inbox cursor
 * (cursor.c): what a PUT body may say, what it means, and that only
 * cursors the API made are accepted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"
#include "platform/arena.h"
#include "platform/err.h"

struct errors {
    int n;
    char last_field[128];
};

static void collect(void *arg, const char *field, const char *message)
{
    struct errors *e = arg;
    e->n++;
    snprintf(e->last_field, sizeof e->last_field, "%s", field);
}

static void everything_is_on_by_default(void **state)
{
    struct notifications__prefs p;
    notifications__prefs_defaults(&p);
    for (int t = 0; t < NOTIF_N_TYPES; t++)
        for (int c = 0; c < NOTIF_N_CHANNELS; c++)
            assert_true(p.on[t][c]);
}

static void put_sets_what_it_names_and_defaults_the_rest(void **state)
{
    json_t *doc = json_pack("{s:{s:b}}", "task.assigned", "email", 0);
    struct notifications__prefs p;
    struct errors e = {0};
    assert_int_equal(notifications__prefs_parse(doc, &p, collect, &e), 0);
    assert_int_equal(e.n, 0);
    assert_false(p.on[NOTIF_TASK_ASSIGNED][NOTIF_EMAIL]);
    assert_true(p.on[NOTIF_TASK_ASSIGNED][NOTIF_IN_APP]);
    assert_true(p.on[NOTIF_TASK_COMPLETED][NOTIF_EMAIL]);
    json_decref(doc);
}

static void unknown_type_is_a_field_error(void **state)
{
    json_t *doc = json_pack("{s:{s:b}}", "task.exploded", "email", 0);
    struct notifications__prefs p;
    struct errors e = {0};
    assert_int_equal(notifications__prefs_parse(doc, &p, collect, &e), BH_EINVAL);
    assert_int_equal(e.n, 1);
    assert_string_equal(e.last_field, "preferences.task.exploded");
    json_decref(doc);
}

static void unknown_channel_and_non_boolean_are_field_errors(void **state)
{
    json_t *doc = json_pack("{s:{s:b, s:s}}", "task.assigned", "sms", 1, "email", "no");
    struct notifications__prefs p;
    struct errors e = {0};
    assert_int_equal(notifications__prefs_parse(doc, &p, collect, &e), BH_EINVAL);
    assert_int_equal(e.n, 2);
    json_decref(doc);
}

static void preferences_must_be_an_object(void **state)
{
    json_t *doc = json_string("all off");
    struct notifications__prefs p;
    struct errors e = {0};
    assert_int_equal(notifications__prefs_parse(doc, &p, collect, &e), BH_EINVAL);
    assert_string_equal(e.last_field, "preferences");
    json_decref(doc);
}

static void document_lists_every_type_and_channel(void **state)
{
    struct notifications__prefs p;
    notifications__prefs_defaults(&p);
    p.on[NOTIF_SUBSCRIPTION_CHANGED][NOTIF_IN_APP] = false;
    json_t *doc = notifications__prefs_to_json(&p);
    assert_int_equal(json_object_size(doc), NOTIF_N_TYPES);
    json_t *sub = json_object_get(doc, "subscription.changed");
    assert_true(json_is_false(json_object_get(sub, "in_app")));
    assert_true(json_is_true(json_object_get(sub, "email")));
    json_decref(doc);
}

static void type_names_round_trip(void **state)
{
    for (int t = 0; t < NOTIF_N_TYPES; t++)
        assert_int_equal(
            notifications__type_from_name(notifications__type_name((enum notifications__type)t)),
            t);
    assert_int_equal(notifications__type_from_name("task.created"), -1);
    assert_int_equal(notifications__channel_from_name("email"), NOTIF_EMAIL);
    assert_int_equal(notifications__channel_from_name("push"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(everything_is_on_by_default),
        cmocka_unit_test(put_sets_what_it_names_and_defaults_the_rest),
        cmocka_unit_test(unknown_type_is_a_field_error),
        cmocka_unit_test(unknown_channel_and_non_boolean_are_field_errors),
        cmocka_unit_test(preferences_must_be_an_object),
        cmocka_unit_test(document_lists_every_type_and_channel),
        cmocka_unit_test(type_names_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
