/* The billing module's descriptor: its routes, the events it consumes, its
 * renewal job and what it publishes, plus start-up configuration. It wires
 * the module's parts together and holds no rule itself. */
#include <string.h>

#include "billing/billing.h"
#include "internal.h"
#include "platform/config.h"
#include "platform/err.h"
#include "platform/log.h"

static int billing_init(void)
{
    int rc = billing__settings_load();
    if (rc != 0)
        return rc;
    return billing__payments_init();
}

static void billing_shutdown(void)
{
    billing__payments_shutdown();
}

static const struct bh_route routes[] = {
    {"GET", "/v1/plans", billing__http_get_plans, 0},
    {"GET", "/v1/orgs/{org}/subscription", billing__http_get_subscription, 0},
    {"PUT", "/v1/orgs/{org}/subscription", billing__http_put_subscription, 0,
     &billing__provider_pool},
    {"DELETE", "/v1/orgs/{org}/subscription", billing__http_delete_subscription, 0},
    {"POST", "/v1/orgs/{org}/payment-method", billing__http_post_payment_method, 0,
     &billing__provider_pool},
    {"GET", "/v1/orgs/{org}/invoices", billing__http_list_invoices, 0},
    {"GET", "/v1/orgs/{org}/invoices/{id}", billing__http_get_invoice, 0},
    {"GET", "/v1/orgs/{org}/usage", billing__http_get_usage, 0},
    /* The signature covers the exact bytes: the body must reach us raw. */
    {"POST", "/v1/billing/webhooks/{provider}", billing__http_post_webhook, BH_ROUTE_NO_BODY_CHECK},
    {"POST", "/_billing/sweep", billing__http_dev_sweep, BH_ROUTE_OPS},
};

static const struct bh_subscription subscriptions[] = {
    {"task.created", "billing.usage.task_created", "billing", billing__on_task_created, 0,
     billing__on_task_created_batch},
    {"task.deleted", "billing.usage.task_deleted", "billing", billing__on_task_deleted, 0,
     billing__on_task_deleted_batch},
    {"org.created", "billing.usage.org_created", "billing", billing__on_org_created, 0,
     billing__on_org_created_batch},
    {"member.added", "billing.usage.member_added", "billing", billing__on_member_added, 0,
     billing__on_member_added_batch},
    {"member.removed", "billing.usage.member_removed", "billing", billing__on_member_removed, 0,
     billing__on_member_removed_batch},
};

static const struct bh_job_type job_types[] = {
    {"billing.renew", "billing", billing__run_renewal_job, 0},
    {"billing.sweep", "billing", billing__run_sweep_job, 0},
    {"billing.reconcile", "billing", billing__run_reconcile_job, 0},
};

static const char *const emits[] = {"subscription.changed", "invoice.paid",
                                    "invoice.payment_failed", NULL};

const struct bh_module billing_module = {
    .name = "billing",
    .init = billing_init,
    .routes = routes,
    .n_routes = sizeof routes / sizeof routes[0],
    .subscriptions = subscriptions,
    .n_subscriptions = sizeof subscriptions / sizeof subscriptions[0],
    .job_types = job_types,
    .n_job_types = sizeof job_types / sizeof job_types[0],
    .emits = emits,
    .shutdown = billing_shutdown,
    /* Only a process that runs workers arms the sweep chain: `bulkhead jobs
     * stats` and the other one-shot commands must not queue a sweep. */
    .workers_started = billing__start_sweeps,
};
