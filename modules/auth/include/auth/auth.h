/* The auth module's public API: who is calling, and what may they do in an
 * organization. Every other module calls these on every request, so they
 * are cheap (a JWT check in memory, at most one Redis round trip for the
 * membership on a warm cache) and hard to misuse (a handler gets a
 * principal or an error the HTTP edge already knows how to answer). */
#ifndef AUTH_AUTH_H
#define AUTH_AUTH_H

#include <stdint.h>

#include "platform/http.h"
#include "platform/module.h"
#include "platform/uuid.h"

struct bh_tx;

extern const struct bh_module auth_module;

/* Roles in an organization, ordered: a higher role includes the lower ones. */
enum auth_role {
    AUTH_ROLE_NONE = 0,
    AUTH_ROLE_MEMBER = 1,
    AUTH_ROLE_ADMIN = 2,
    AUTH_ROLE_OWNER = 3
};

/* The authenticated caller. Lives in the request arena (never free it). */
struct auth_principal {
    bh_uuid user_id;
    bh_uuid org_id;      /* set by auth_require_role(); nil otherwise */
    enum auth_role role; /* the caller's role in org_id */
};

/* Authenticates the request's `Authorization: Bearer` access token.
 * Returns 0 with *out set, or BH_EUNAUTH after adding
 * `WWW-Authenticate: Bearer error="invalid_token"` to the reply headers:
 * the handler just returns the error. */
int auth_authenticate(struct bh_req *req, const struct auth_principal **out);

/* Authenticates, then requires membership of org_id (the path parameter as
 * text) with at least min_role. Returns 0 with *out, BH_EUNAUTH (401),
 * BH_ENOTFOUND (not a member, or org_id is not a UUID: 404, so non-members
 * learn nothing), or BH_EFORBIDDEN (member with too low a role: 403). */
int auth_require_role(struct bh_req *req, const char *org_id, enum auth_role min_role,
                      const struct auth_principal **out);

/* Buffer sizes for a user's email (at most 254 bytes) and a name (up to
 * 100 characters of UTF-8, 4 bytes each at most), with the NUL. */
enum { AUTH_EMAIL_SIZE = 256, AUTH_NAME_SIZE = 100 * 4 + 1 };

/* The session behind an authenticated request, for a reply that outlives
 * the request (a live stream) to check again later: the token is only
 * checked when the request arrives, so a long reply must ask whether its
 * session was revoked since (logout, logout-all, a password change) and end
 * itself at expires_at. Plain data: copy it anywhere. */
struct auth_session {
    bh_uuid user_id;
    bh_uuid session_id;
    bh_uuid token_id;
    int64_t expires_at; /* the access token's exp, Unix seconds */
};

/* The session of a request auth_authenticate() accepted. 0, or BH_EUNAUTH
 * when the request was not authenticated. */
int auth_request_session(struct bh_req *req, struct auth_session *out);

/* Is the session still good? 0: yes. BH_EUNAUTH: revoked, or its token
 * expired. BH_EUNAVAILABLE: neither Redis nor Postgres could tell. The
 * same denylist as every request (one Redis round trip; Postgres when
 * Redis cannot be trusted). Any thread. */
int auth_session_check(const struct auth_session *s);

/* A user's public profile. */
struct auth_profile {
    bh_uuid id;
    char email[AUTH_EMAIL_SIZE];
    char name[AUTH_NAME_SIZE];
};

/* Looks up a user. 0, BH_ENOTFOUND, or BH_EUNAVAILABLE. */
int auth_user_profile(const bh_uuid *user_id, struct auth_profile *out);

/* The role of user_id in org_id, AUTH_ROLE_NONE when not a member.
 * 0 or BH_EUNAVAILABLE. Cache-aside: usually one Redis round trip. */
int auth_member_role(const bh_uuid *org_id, const bh_uuid *user_id, enum auth_role *out);

/* Calls fn for each member of org_id whose role is at least min_role.
 * 0 or a bh_err (fn's non-zero return stops the walk and is returned). */
typedef int (*auth_member_fn)(const bh_uuid *user_id, enum auth_role role, void *arg);
int auth_each_member(const bh_uuid *org_id, enum auth_role min_role, auth_member_fn fn, void *arg);

/* Role names as the API spells them ("owner", "admin", "member"). */
const char *auth_role_name(enum auth_role role);

/* ---- hooks: how modules above auth take part in its transactions ----
 * Auth sits at the bottom of the module graph and calls no other module. A
 * module that must act inside auth's transactions (billing: every new
 * organization gets a subscription; every new member takes a seat) is wired
 * in by the composition root with these hooks, so the dependency points up
 * the graph, never down. One callback per hook; registering again replaces
 * it. Register before serving (not thread-safe against requests). */

/* Called on the transaction that creates org_id (signup, POST /v1/orgs),
 * after the organization and its owner exist. A non-zero return rolls the
 * whole creation back and is returned to the caller. */
typedef int (*auth_org_created_fn)(struct bh_tx *tx, const bh_uuid *org_id);
int auth_on_org_created(auth_org_created_fn fn);

/* Called on the transaction that adds a member to org_id, which has
 * current_members now. Return 0 to allow, BH_ELIMIT (with *limit_out set) to
 * refuse with 402 plan_limit_exceeded, or another bh_err. */
typedef int (*auth_seat_check_fn)(struct bh_tx *tx, const bh_uuid *org_id, int64_t current_members,
                                  int64_t *limit_out);
int auth_on_seat_check(auth_seat_check_fn fn);

#endif
