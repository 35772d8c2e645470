/* Calls into the payment provider port, guarded three ways: a circuit
 * breaker (a provider that keeps failing is not called at all for a while,
 * so plan changes fail fast), a time budget enforced here by the caller (the
 * call runs on its own thread; past the budget we stop waiting and report a
 * timeout), and a cap on calls in flight (hung provider calls cannot pile up
 * threads without bound). It never touches the database. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "platform/breaker.h"
#include "platform/clock.h"
#include "platform/config.h"
#include "platform/err.h"
#include "platform/log.h"
#include "platform/metrics.h"
#include "provider.h"

enum call_op { OP_ATTACH, OP_CHARGE, OP_FIND };

/* One provider call. Shared by the waiting caller and the thread running it;
 * whoever lets go last frees it (the caller may give up on a hung call). */
struct call {
    pthread_mutex_t lock;
    pthread_cond_t cv;
    int refs;
    bool done;
    enum call_op op;
    char token[256];
    char card_ref[128];
    int64_t amount_cents;
    char currency[4];
    char key[64];
    int rc;
    struct billing__card card;
    struct billing__charge_result result;
};

static const struct billing__provider *provider = &billing__provider_simulator;
static struct bh_breaker breaker;
static long timeout_ms = 3000;
static int max_in_flight = 32;
static atomic_int in_flight;

/* /metrics: 1 on the breaker's current state, 0 on the others. */
static void breaker_gauge(struct bh_buf *out, void *arg)
{
    (void)arg;
    enum bh_breaker_state now = bh_breaker_state(&breaker);
    const enum bh_breaker_state all[] = {BH_BREAKER_CLOSED, BH_BREAKER_OPEN, BH_BREAKER_HALF_OPEN};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        bh_metrics_printf(out, "bulkhead_billing_provider_breaker_state{state=\"%s\"} %d\n",
                          bh_breaker_state_name(all[i]), all[i] == now);
}

/* The routes that call the provider (card, plan change) run here, not on
 * the HTTP threads: a provider that hangs holds these threads for its time
 * budget while every other route keeps its own. Sized in init. */
struct bh_handler_pool billing__provider_pool = {.name = "billing.provider"};

int billing__payments_init(void)
{
    timeout_ms = bh_config_int("BULKHEAD_BILLING_PROVIDER_TIMEOUT_MS", 3000, 50, 60000);
    billing__provider_pool.threads =
        (int)bh_config_int("BULKHEAD_BILLING_PROVIDER_THREADS", 8, 1, 256);
    billing__provider_pool.queue_max = 64;
    /* Waiting longer than one call may take is answered 503 at once. */
    billing__provider_pool.max_wait_ms = (int)timeout_ms;
    max_in_flight = (int)bh_config_int("BULKHEAD_BILLING_PROVIDER_MAX_IN_FLIGHT", 32, 1, 1024);
    int threshold = (int)bh_config_int("BULKHEAD_BILLING_BREAKER_THRESHOLD", 3, 1, 100);
    long cooldown = bh_config_int("BULKHEAD_BILLING_BREAKER_COOLDOWN_MS", 30000, 0, 3600000);
    bh_breaker_init(&breaker, "billing.provider", threshold, cooldown);
    bh_gauge_register("bulkhead_billing_provider_breaker_state",
                      "The payment provider's circuit breaker: 1 on its current state.",
                      breaker_gauge, NULL);
    return 0;
}

void billing__payments_shutdown(void)
{
    if (provider->abandon_calls)
        provider->abandon_calls();
    /* Let abandoned calls notice and return, so their threads end cleanly. */
    for (int i = 0; i < 100 && atomic_load(&in_flight) > 0; i++)
        bh_sleep_ms(20);
}

const struct billing__provider *billing__provider(void)
{
    return provider;
}

bool billing__payments_open(int *retry_after_s)
{
    pthread_mutex_lock(&breaker.lock);
    bool open = breaker.state == BH_BREAKER_OPEN &&
                bh_now_ms() - breaker.opened_at_ms < breaker.cooldown_ms;
    int64_t left_ms = open ? breaker.cooldown_ms - (bh_now_ms() - breaker.opened_at_ms) : 0;
    pthread_mutex_unlock(&breaker.lock);
    if (retry_after_s)
        *retry_after_s = (int)((left_ms + 999) / 1000) > 0 ? (int)((left_ms + 999) / 1000) : 1;
    return open;
}

static void call_release(struct call *c)
{
    pthread_mutex_lock(&c->lock);
    bool last = --c->refs == 0;
    pthread_mutex_unlock(&c->lock);
    if (last) {
        pthread_mutex_destroy(&c->lock);
        pthread_cond_destroy(&c->cv);
        free(c);
    }
}

static void *call_run(void *arg)
{
    struct call *c = arg;
    int rc = 0;
    switch (c->op) {
    case OP_ATTACH: rc = provider->attach_card(c->token, &c->card); break;
    case OP_CHARGE:
        rc = provider->charge(c->card_ref, c->amount_cents, c->currency, c->key, &c->result);
        break;
    case OP_FIND: rc = provider->find_charge(c->key, &c->result); break;
    }
    pthread_mutex_lock(&c->lock);
    c->rc = rc;
    c->done = true;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->lock);
    call_release(c);
    atomic_fetch_sub(&in_flight, 1);
    return NULL;
}

static void count(const char *op, const char *outcome)
{
    char labels[96];
    snprintf(labels, sizeof labels, "op=\"%s\",outcome=\"%s\"", op, outcome);
    bh_counter_add(bh_counter_get("bulkhead_billing_provider_calls_total",
                                  "Payment provider calls by operation and outcome.", labels),
                   1);
}

/* Lets c through the breaker and the cap on calls in flight and starts its
 * thread. 0, or BH_EUNAVAILABLE (c is then freed). */
static int call_start(struct call *c, const char *op)
{
    if (!bh_breaker_allow(&breaker, bh_now_ms())) {
        count(op, "breaker_open");
        free(c);
        return BH_EUNAVAILABLE;
    }
    if (atomic_fetch_add(&in_flight, 1) >= max_in_flight) {
        atomic_fetch_sub(&in_flight, 1);
        bh_breaker_failure(&breaker, bh_now_ms());
        count(op, "saturated");
        free(c);
        return BH_EUNAVAILABLE;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    c->refs = 2;

    pthread_t t;
    pthread_attr_t ta;
    pthread_attr_init(&ta);
    pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
    int err = pthread_create(&t, &ta, call_run, c);
    pthread_attr_destroy(&ta);
    if (err != 0) {
        atomic_fetch_sub(&in_flight, 1);
        c->refs = 1;
        call_release(c);
        bh_breaker_failure(&breaker, bh_now_ms());
        return BH_EUNAVAILABLE;
    }
    return 0;
}

/* Runs c on its own thread and waits at most the time budget; on success
 * copies the results into card_out or charge_out. Takes c. */
static int call_with_budget(struct call *c, struct billing__card *card_out,
                            struct billing__charge_result *charge_out)
{
    static const char *const names[] = {
        [OP_ATTACH] = "attach", [OP_CHARGE] = "charge", [OP_FIND] = "find"};
    const char *op = names[c->op];
    int err = call_start(c, op);
    if (err != 0)
        return err;
    struct timespec deadline = bh_deadline_ms((int)timeout_ms);
    pthread_mutex_lock(&c->lock);
    while (!c->done && err != ETIMEDOUT)
        err = pthread_cond_timedwait(&c->cv, &c->lock, &deadline);
    bool done = c->done;
    int rc = c->rc;
    if (done && rc == 0 && card_out)
        *card_out = c->card;
    if (done && rc == 0 && charge_out)
        *charge_out = c->result;
    pthread_mutex_unlock(&c->lock);
    call_release(c);
    if (!done) {
        /* The budget ran out: stop waiting. The thread finishes on its own
         * and frees the call; whatever it reports is ignored. */
        bh_breaker_failure(&breaker, bh_now_ms());
        bh_log_warn("provider %s %s exceeded its %ld ms budget", provider->name, op, timeout_ms);
        count(op, "timeout");
        return BH_ETIMEOUT;
    }
    /* A decline, an unusable token or an unknown key is an answer: the
     * provider works. */
    if (rc == 0 || rc == BH_EUNPROCESSABLE || rc == BH_ENOTFOUND) {
        bh_breaker_success(&breaker);
        count(op, rc == 0 ? "ok" : "rejected");
    } else {
        bh_breaker_failure(&breaker, bh_now_ms());
        count(op, "error");
        rc = BH_EUNAVAILABLE;
    }
    return rc;
}

int billing__payments_attach(const char *token, struct billing__card *out)
{
    struct call *c = calloc(1, sizeof *c);
    if (!c)
        return BH_ENOMEM;
    c->op = OP_ATTACH;
    snprintf(c->token, sizeof c->token, "%s", token);
    return call_with_budget(c, out, NULL);
}

int billing__payments_charge(const char *card_ref, int64_t amount_cents, const char *currency,
                             const char *idempotency_key, struct billing__charge_result *out)
{
    struct call *c = calloc(1, sizeof *c);
    if (!c)
        return BH_ENOMEM;
    c->op = OP_CHARGE;
    snprintf(c->card_ref, sizeof c->card_ref, "%s", card_ref);
    c->amount_cents = amount_cents;
    snprintf(c->currency, sizeof c->currency, "%s", currency);
    snprintf(c->key, sizeof c->key, "%s", idempotency_key);
    return call_with_budget(c, NULL, out);
}

int billing__payments_find_charge(const char *idempotency_key, struct billing__charge_result *out)
{
    struct call *c = calloc(1, sizeof *c);
    if (!c)
        return BH_ENOMEM;
    c->op = OP_FIND;
    snprintf(c->key, sizeof c->key, "%s", idempotency_key);
    return call_with_budget(c, NULL, out);
}

const char *billing__decline_name(enum billing__decline_reason r)
{
    switch (r) {
    case BILLING__DECLINE_NONE: return "";
    case BILLING__DECLINE_INSUFFICIENT_FUNDS: return "insufficient_funds";
    case BILLING__DECLINE_EXPIRED_CARD: return "expired_card";
    case BILLING__DECLINE_GENERIC: break;
    }
    return "card_declined";
}
