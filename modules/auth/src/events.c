/* The events auth publishes, each on the transaction of the change it
 * describes (the outbox), so an event exists if and only if its change
 * committed. Auth consumes no events. Payloads never carry secrets. */
#include <jansson.h>

#include "internal.h"
#include "platform/err.h"
#include "platform/events.h"

const char *const auth__emits[] = {
    "user.signed_up",      "org.created", "member.invited", "member.added", "member.removed",
    "member.role_changed", NULL};

static int publish(struct bh_tx *tx, const char *type, const bh_uuid *org, const bh_uuid *actor,
                   const bh_uuid *aggregate, json_t *data)
{
    return bh_outbox_publish_take(tx, type, org ? org->str : NULL, actor ? actor->str : NULL,
                                  aggregate ? aggregate->str : NULL, data);
}

int auth__emit_signed_up(struct bh_tx *tx, const struct auth__user *u, const bh_uuid *org_id)
{
    json_t *data = json_pack("{s:s, s:s, s:s, s:s}", "user_id", u->id.str, "email", u->email,
                             "name", u->name, "org_id", org_id->str);
    return publish(tx, "user.signed_up", org_id, &u->id, &u->id, data);
}

int auth__emit_org_created(struct bh_tx *tx, const struct auth__org *org, const bh_uuid *owner)
{
    json_t *data = json_pack("{s:s, s:s, s:s}", "org_id", org->id.str, "name", org->name,
                             "owner_id", owner->str);
    return publish(tx, "org.created", &org->id, owner, &org->id, data);
}

/* For notifications, which asks the invitee. Ordered per organization like
 * the membership events. */
int auth__emit_invited(struct bh_tx *tx, const struct auth__invitation *inv)
{
    json_t *data = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "invitation_id", inv->id.str,
                             "org_id", inv->org_id.str, "org_name", inv->org_name, "user_id",
                             inv->user_id.str, "role", auth_role_name(inv->role), "invited_by",
                             inv->invited_by.str, "expires_at", inv->expires_at);
    return publish(tx, "member.invited", &inv->org_id, &inv->invited_by, &inv->org_id, data);
}

int auth__emit_member(struct bh_tx *tx, const char *type, const bh_uuid *org_id,
                      const char *org_name, const bh_uuid *actor, const bh_uuid *user_id,
                      enum auth_role role, enum auth_role previous)
{
    json_t *data = json_pack("{s:s, s:s, s:s, s:s}", "org_id", org_id->str, "org_name", org_name,
                             "user_id", user_id->str, "role", auth_role_name(role));
    if (data && previous != AUTH_ROLE_NONE)
        json_object_set_new(data, "previous_role", json_string(auth_role_name(previous)));
    /* Ordered per organization: membership changes of one org stay in order. */
    return publish(tx, type, org_id, actor, org_id, data);
}
