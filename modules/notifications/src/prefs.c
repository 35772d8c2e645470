/* Notification types, channels and per-user preferences as pure rules: the
 * known names, the defaults, and reading/writing the preferences document.
 * No I/O here; the repo stores what these functions validated. */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "platform/err.h"

static const char *const type_names[NOTIF_N_TYPES] = {
    [NOTIF_USER_SIGNED_UP] = "user.signed_up",
    [NOTIF_MEMBER_ADDED] = "member.added",
    [NOTIF_MEMBER_INVITED] = "member.invited",
    [NOTIF_TASK_ASSIGNED] = "task.assigned",
    [NOTIF_TASK_COMPLETED] = "task.completed",
    [NOTIF_TASK_COMMENTED] = "task.commented",
    [NOTIF_INVOICE_PAYMENT_FAILED] = "invoice.payment_failed",
    [NOTIF_SUBSCRIPTION_CHANGED] = "subscription.changed",
};

static const char *const channel_names[NOTIF_N_CHANNELS] = {
    [NOTIF_IN_APP] = "in_app",
    [NOTIF_EMAIL] = "email",
};

const char *notifications__type_name(enum notifications__type t)
{
    return (unsigned)t < NOTIF_N_TYPES ? type_names[t] : "";
}

int notifications__type_from_name(const char *name)
{
    for (int i = 0; name && i < NOTIF_N_TYPES; i++)
        if (strcmp(type_names[i], name) == 0)
            return i;
    return -1;
}

const char *notifications__channel_name(enum notifications__channel c)
{
    return (unsigned)c < NOTIF_N_CHANNELS ? channel_names[c] : "";
}

int notifications__channel_from_name(const char *name)
{
    for (int i = 0; name && i < NOTIF_N_CHANNELS; i++)
        if (strcmp(channel_names[i], name) == 0)
            return i;
    return -1;
}

void notifications__prefs_defaults(struct notifications__prefs *p)
{
    for (int t = 0; t < NOTIF_N_TYPES; t++)
        for (int c = 0; c < NOTIF_N_CHANNELS; c++)
            p->on[t][c] = true;
}

json_t *notifications__prefs_to_json(const struct notifications__prefs *p)
{
    json_t *all = json_object();
    for (int t = 0; all && t < NOTIF_N_TYPES; t++) {
        json_t *one = json_object();
        for (int c = 0; one && c < NOTIF_N_CHANNELS; c++)
            json_object_set_new(one, channel_names[c], json_boolean(p->on[t][c]));
        if (!one || json_object_set_new(all, type_names[t], one) != 0) {
            json_decref(all);
            return NULL;
        }
    }
    return all;
}

int notifications__prefs_parse(const json_t *obj, struct notifications__prefs *out,
                               notifications__error_fn on_error, void *arg)
{
    char field[256];
    int errors = 0;
    notifications__prefs_defaults(out);
    if (!json_is_object(obj)) {
        on_error(arg, "preferences", "must be an object of notification types");
        return BH_EINVAL;
    }
    const char *type;
    json_t *channels;
    json_object_foreach((json_t *)obj, type, channels)
    {
        int t = notifications__type_from_name(type);
        snprintf(field, sizeof field, "preferences.%s", type);
        if (t < 0) {
            on_error(arg, field, "is not a known notification type");
            errors++;
            continue;
        }
        if (!json_is_object(channels)) {
            on_error(arg, field, "must be an object of channels (in_app, email)");
            errors++;
            continue;
        }
        const char *channel;
        json_t *value;
        json_object_foreach(channels, channel, value)
        {
            int c = notifications__channel_from_name(channel);
            snprintf(field, sizeof field, "preferences.%s.%s", type, channel);
            if (c < 0) {
                on_error(arg, field, "is not a known channel (in_app, email)");
                errors++;
            } else if (!json_is_boolean(value)) {
                on_error(arg, field, "must be true or false");
                errors++;
            } else {
                out->on[t][c] = json_is_true(value);
            }
        }
    }
    return errors ? BH_EINVAL : 0;
}
