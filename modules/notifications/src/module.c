/* The notifications module's descriptor: what the composition root mounts
 * and runs. It consumes events (it never calls tasks or billing), runs the
 * email job on its own small queue, and publishes no events. */
#include "internal.h"
#include "notifications/notifications.h"

static const struct bh_route routes[] = {
    {"GET", "/v1/me/notifications", notifications__http_list, 0},
    {"POST", "/v1/me/notifications/read-all", notifications__http_mark_all_read, 0},
    {"POST", "/v1/me/notifications/{id}/read", notifications__http_mark_read, 0},
    {"GET", "/v1/me/notifications/stream", notifications__http_stream, BH_ROUTE_STREAM},
    {"GET", "/v1/me/notification-preferences", notifications__http_get_prefs, 0},
    {"PUT", "/v1/me/notification-preferences", notifications__http_put_prefs, 0},
};

/* Every event's deliveries wait on the "notifications" queue, with its own
 * workers: a flood of events cannot delay another module's work. The
 * consumer name is the key of the inbox that makes each handler
 * idempotent. */
static const struct bh_subscription subscriptions[] = {
    {"user.signed_up", "notifications.user_signed_up", "notifications",
     notifications__on_user_signed_up, 0},
    {"member.added", "notifications.member_added", "notifications", notifications__on_member_added,
     0},
    {"member.invited", "notifications.member_invited", "notifications",
     notifications__on_member_invited, 0},
    {"task.assigned", "notifications.task_assigned", "notifications",
     notifications__on_task_assigned, 0},
    {"task.completed", "notifications.task_completed", "notifications",
     notifications__on_task_completed, 0},
    {"task.commented", "notifications.task_commented", "notifications",
     notifications__on_task_commented, 0},
    {"invoice.payment_failed", "notifications.invoice_payment_failed", "notifications",
     notifications__on_invoice_payment_failed, 0},
    {"subscription.changed", "notifications.subscription_changed", "notifications",
     notifications__on_subscription_changed, 0},
};

/* Email goes out from its own queue ("email"): a slow or dead SMTP server
 * ties up only those few workers, never the event consumers or a request.
 * Retries back off (the queue) and skip the server while the breaker is
 * open (transport.c). */
static const struct bh_job_type job_types[] = {
    {"notifications.send_email", "email", notifications__send_email_job, NOTIF_EMAIL_MAX_ATTEMPTS},
};

static int init(void)
{
    return notifications__transport_init();
}

static void shutdown(void)
{
    notifications__stream_shutdown();
    notifications__transport_shutdown();
}

const struct bh_module notifications_module = {
    .name = "notifications",
    .init = init,
    .routes = routes,
    .n_routes = sizeof routes / sizeof routes[0],
    .subscriptions = subscriptions,
    .n_subscriptions = sizeof subscriptions / sizeof subscriptions[0],
    .job_types = job_types,
    .n_job_types = sizeof job_types / sizeof job_types[0],
    .shutdown = shutdown,
};
