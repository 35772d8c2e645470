/* Unit tests of the group-commit combiner (platform/src/combine.c): a lone
 * item runs at once on its caller's thread; items submitted while a batch
 * runs wait and form the next batch, led by one of their callers; a batch
 * never exceeds its bound and keeps arrival order; each caller reads the
 * outcome the batch wrote into its own item. The first batch is held on a
 * gate and the test waits until the others are queued, so nothing depends
 * on timing. */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "platform/combine.h"

enum { MAX_BATCHES = 16, MAX_ITEMS = 16 };

struct item {
    int value;
    int result;       /* written by the batch */
    pthread_t ran_on; /* the thread that ran its batch */
    int batch;        /* which batch held it */
};

/* What the batches saw, and the gate that holds the first one. */
struct log {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool gate_open;
    bool holding; /* the first batch waits at the gate */
    int batches;
    int sizes[MAX_BATCHES];
    int order[MAX_ITEMS]; /* values in the order batches ran them */
    int n_order;
};

static void run_batch(void *ctx, void *const *items, int n)
{
    struct log *l = ctx;

    pthread_mutex_lock(&l->mu);
    int batch = l->batches++;
    l->sizes[batch] = n;
    for (int i = 0; i < n; i++)
        l->order[l->n_order++] = ((struct item *)items[i])->value;
    if (batch == 0) {
        l->holding = true;
        pthread_cond_broadcast(&l->cv);
        while (!l->gate_open)
            pthread_cond_wait(&l->cv, &l->mu);
    }
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < n; i++) {
        struct item *it = items[i];
        /* An outcome of the item's own: odd values fail. */
        it->result = it->value % 2 ? -it->value : it->value * 10;
        it->ran_on = pthread_self();
        it->batch = batch;
    }
}

struct submit {
    struct bh_combiner *c;
    struct item item;
};

static void *submitter(void *arg)
{
    struct submit *s = arg;

    bh_combine(s->c, &s->item);
    return NULL;
}

static void log_init(struct log *l)
{
    *l = (struct log){.gate_open = false};
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
}

static void log_destroy(struct log *l)
{
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
}

/* Starts the first submitter and waits until its batch holds at the gate. */
static void start_held(struct submit *first, pthread_t *t, struct log *l)
{
    assert_int_equal(pthread_create(t, NULL, submitter, first), 0);
    pthread_mutex_lock(&l->mu);
    while (!l->holding)
        pthread_cond_wait(&l->cv, &l->mu);
    pthread_mutex_unlock(&l->mu);
}

static void wait_queued(struct bh_combiner *c, int n)
{
    while (bh_combiner_waiting(c) < n)
        sched_yield();
}

static void open_gate(struct log *l)
{
    pthread_mutex_lock(&l->mu);
    l->gate_open = true;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

static void lone_item_runs_at_once_on_its_callers_thread(void **state)
{
    (void)state;
    struct log l;
    log_init(&l);
    l.gate_open = true;
    struct bh_combiner *c = bh_combiner_new(8, run_batch, &l);
    assert_non_null(c);
    struct item it = {.value = 4};

    bh_combine(c, &it);
    assert_int_equal(l.batches, 1);
    assert_int_equal(l.sizes[0], 1);
    assert_int_equal(it.result, 40);
    assert_true(pthread_equal(it.ran_on, pthread_self()));
    bh_combiner_free(c);
    log_destroy(&l);
}

static void items_arriving_during_a_batch_form_the_next_one(void **state)
{
    (void)state;
    struct log l;
    log_init(&l);
    struct bh_combiner *c = bh_combiner_new(8, run_batch, &l);
    assert_non_null(c);
    struct submit s[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        s[i] = (struct submit){.c = c, .item = {.value = i + 1}};

    start_held(&s[0], &t[0], &l);
    for (int i = 1; i < 4; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, submitter, &s[i]), 0);
        wait_queued(c, i); /* queued in this order */
    }
    open_gate(&l);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);

    assert_int_equal(l.batches, 2);
    assert_int_equal(l.sizes[0], 1);
    assert_int_equal(l.sizes[1], 3);
    for (int i = 0; i < 4; i++)
        assert_int_equal(l.order[i], i + 1);
    /* One follower led the second batch, on its own thread, for all three. */
    assert_int_equal(s[1].item.batch, 1);
    assert_true(pthread_equal(s[1].item.ran_on, s[2].item.ran_on));
    assert_true(pthread_equal(s[2].item.ran_on, s[3].item.ran_on));
    bool led_by_one_of_them = false;
    for (int i = 1; i < 4; i++)
        led_by_one_of_them |= pthread_equal(s[1].item.ran_on, t[i]) != 0;
    assert_true(led_by_one_of_them);
    bh_combiner_free(c);
    log_destroy(&l);
}

static void a_batch_never_exceeds_its_bound_and_keeps_order(void **state)
{
    (void)state;
    struct log l;
    log_init(&l);
    struct bh_combiner *c = bh_combiner_new(2, run_batch, &l);
    assert_non_null(c);
    struct submit s[6];
    pthread_t t[6];
    for (int i = 0; i < 6; i++)
        s[i] = (struct submit){.c = c, .item = {.value = i + 1}};

    start_held(&s[0], &t[0], &l);
    for (int i = 1; i < 6; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, submitter, &s[i]), 0);
        wait_queued(c, i);
    }
    open_gate(&l);
    for (int i = 0; i < 6; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);

    assert_int_equal(l.batches, 4); /* 1, then 5 waiting in batches of 2, 2, 1 */
    assert_int_equal(l.sizes[0], 1);
    assert_int_equal(l.sizes[1], 2);
    assert_int_equal(l.sizes[2], 2);
    assert_int_equal(l.sizes[3], 1);
    for (int i = 0; i < 6; i++)
        assert_int_equal(l.order[i], i + 1);
    bh_combiner_free(c);
    log_destroy(&l);
}

static void each_caller_reads_its_own_outcome(void **state)
{
    (void)state;
    struct log l;
    log_init(&l);
    struct bh_combiner *c = bh_combiner_new(8, run_batch, &l);
    assert_non_null(c);
    struct submit s[5];
    pthread_t t[5];
    for (int i = 0; i < 5; i++)
        s[i] = (struct submit){.c = c, .item = {.value = i + 1}};

    start_held(&s[0], &t[0], &l);
    for (int i = 1; i < 5; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, submitter, &s[i]), 0);
        wait_queued(c, i);
    }
    open_gate(&l);
    for (int i = 0; i < 5; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);

    assert_int_equal(l.sizes[1], 4);
    for (int i = 0; i < 5; i++) {
        int v = i + 1;
        assert_int_equal(s[i].item.result, v % 2 ? -v : v * 10);
    }
    bh_combiner_free(c);
    log_destroy(&l);
}

static void a_bad_bound_is_refused(void **state)
{
    (void)state;
    struct log l;
    log_init(&l);
    assert_null(bh_combiner_new(0, run_batch, &l));
    assert_null(bh_combiner_new(1025, run_batch, &l));
    assert_null(bh_combiner_new(8, NULL, &l));
    bh_combiner_free(NULL);
    log_destroy(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lone_item_runs_at_once_on_its_callers_thread),
        cmocka_unit_test(items_arriving_during_a_batch_form_the_next_one),
        cmocka_unit_test(a_batch_never_exceeds_its_bound_and_keeps_order),
        cmocka_unit_test(each_caller_reads_its_own_outcome),
        cmocka_unit_test(a_bad_bound_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
