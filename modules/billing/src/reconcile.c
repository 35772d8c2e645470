/* The reconciler: settles charges whose outcome is unknown (the provider
 * gave no answer within the time budget, or the process stopped during the
 * call). It asks the provider about the charge by its idempotency key (the
 * attempt's id); when the provider never received it, it charges again with
 * the same key, so a first request still on its way is taken once, not
 * twice. The outcome is then settled like any other (settle.c), exactly
 * once: a webhook that told us first wins, and this run writes nothing.
 * Driven by a delayed job per attempt, with the sweep as the safety net. */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "platform/db.h"
#include "platform/err.h"
#include "platform/events.h"
#include "platform/log.h"

/* What the reconciler needs to know before asking: read without locks (the
 * provider is never called inside a transaction). */
struct unsettled {
    struct billing__attempt attempt;
    char currency[4];
    bool has_card;
    struct billing__card card;
};

/* 1 when the attempt is settled already (or gone), 0 with *out, or a bh_err. */
static int load(const bh_uuid *attempt_id, struct unsettled *out)
{
    struct billing__invoice inv;
    struct bh_tx *tx = NULL;
    int rc = bh_tx_begin(&tx);
    if (rc != 0)
        return rc;
    rc = billing__repo_attempt_get(tx, attempt_id, false, &out->attempt);
    if (rc == 0 && !out->attempt.in_flight)
        rc = 1;
    if (rc == 0)
        rc = billing__repo_invoice_get(tx, &out->attempt.org_id, &out->attempt.invoice_id, false,
                                       NULL, &inv);
    if (rc == 0) {
        billing__set_str(out->currency, sizeof out->currency, inv.currency);
        out->has_card = billing__repo_payment_method_get(tx, &out->attempt.org_id, &out->card) == 0;
    }
    bh_tx_rollback(tx);
    return rc == BH_ENOTFOUND ? 1 : rc;
}

/* Asks the provider; the outcome as far as it is known now. */
static enum billing__outcome ask(const bh_uuid *attempt_id, const struct unsettled *u,
                                 struct billing__charge_result *res)
{
    int rc = billing__payments_find_charge(attempt_id->str, res);
    if (rc == BH_ENOTFOUND) {
        if (!u->has_card)
            return BILLING__OUTCOME_FAILED; /* nothing was taken, nothing can be */
        /* Never received: charge again under the same key. */
        rc = billing__payments_charge(u->card.ref, u->attempt.amount_cents, u->currency,
                                      attempt_id->str, res);
        if (rc == BH_EUNAVAILABLE)
            return BILLING__OUTCOME_UNKNOWN; /* the provider failed: try again later */
    }
    return rc == 0 ? billing__outcome_of(0, res) : BILLING__OUTCOME_UNKNOWN;
}

int billing__reconcile(const bh_uuid *attempt_id)
{
    struct unsettled u;
    memset(&u, 0, sizeof u);
    int rc = load(attempt_id, &u);
    if (rc > 0)
        bh_log_info("attempt %s was settled already", attempt_id->str);
    if (rc != 0)
        return rc > 0 ? 0 : rc;
    struct billing__charge_result res;
    memset(&res, 0, sizeof res);
    enum billing__outcome outcome = ask(attempt_id, &u, &res);
    if (outcome == BILLING__OUTCOME_UNKNOWN)
        return BH_EUNAVAILABLE;

    /* Lock order as everywhere else: the subscription, then its invoice. */
    struct billing__subscription s;
    struct billing__invoice inv;
    time_t next_due = 0;
    struct bh_tx *tx = NULL;
    rc = bh_tx_begin(&tx);
    if (rc == 0)
        rc = billing__repo_subscription_get(tx, &u.attempt.org_id, true, &s);
    if (rc == 0)
        rc = billing__repo_invoice_get(tx, &u.attempt.org_id, &u.attempt.invoice_id, true, NULL,
                                       &inv);
    if (rc == 0)
        rc =
            billing__settle(tx, &s, &inv, attempt_id, outcome, &res, "reconciler", NULL, &next_due);
    if (rc != 0) {
        bh_tx_rollback(tx);
        return rc == 1 ? 0 : rc; /* settled by someone else first */
    }
    rc = bh_tx_commit(tx);
    if (rc == 0) {
        bh_log_info("reconciled attempt %s of org %s: %s", attempt_id->str, u.attempt.org_id.str,
                    outcome == BILLING__OUTCOME_PAID ? "paid" : "not paid");
        billing__schedule_renewal(&u.attempt.org_id, next_due);
    }
    return rc;
}

int billing__reconcile_due(int max, int *n)
{
    enum { BATCH = 100 };
    bh_uuid ids[BATCH];
    int found = 0;
    *n = 0;
    struct bh_tx *tx = NULL;
    int rc = bh_tx_begin(&tx);
    if (rc != 0)
        return rc;
    rc = billing__repo_attempts_unsettled(tx, billing__reconcile_delay_ms() / 1000,
                                          max < BATCH ? max : BATCH, ids, &found);
    bh_tx_rollback(tx);
    for (int i = 0; rc == 0 && i < found; i++) {
        int r = billing__reconcile(&ids[i]);
        if (r != 0)
            bh_log_warn("attempt %s is still unsettled: %s", ids[i].str, bh_err_name(r));
        (*n)++;
    }
    return rc;
}

/* The delayed job: {"attempt_id": "...", "tries": n}. An outcome still
 * unknown is asked again later, each time after a longer wait. */
int billing__run_reconcile_job(const struct bh_job *job)
{
    const char *id = NULL;
    int tries = 0;
    bh_uuid attempt_id;
    if (json_unpack((json_t *)job->payload, "{s:s, s?i}", "attempt_id", &id, "tries", &tries) !=
            0 ||
        !bh_uuid_parse(id, &attempt_id)) {
        bh_log_warn("reconcile job %s has a malformed payload: dropped", job->id);
        return 0;
    }
    int rc = billing__reconcile(&attempt_id);
    if (rc == BH_EUNAVAILABLE || rc == BH_ETIMEOUT) {
        billing__schedule_reconcile(&attempt_id, tries + 1);
        return 0;
    }
    return rc; /* the database failed: retried by the queue with backoff */
}
