/* Auth's HTTP handlers: parse and validate, authorize, call the rules in
 * service.c, answer. A refusal is answered with bh_reply_refusal(), whose
 * status comes from its bh_err code: never a literal here. A handler must never answer 5xx for bad
 * input, never echo a password or a token it was sent, and never reveal whether an email exists at
 * login. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "platform/err.h"
#include "platform/json.h"
#include "platform/log.h"

/* ------------------------------------------------------------ shapes */

static json_t *user_json(const struct auth__user *u)
{
    return json_pack("{s:s, s:s, s:s, s:s}", "id", u->id.str, "email", u->email, "name", u->name,
                     "created_at", u->created_at);
}

static json_t *org_json(const struct auth__org *o)
{
    return json_pack("{s:s, s:s, s:s, s:s}", "id", o->id.str, "name", o->name, "role",
                     auth_role_name(o->role), "created_at", o->created_at);
}

static json_t *member_json(const struct auth__member *m)
{
    return json_pack("{s:s, s:s, s:s, s:s}", "user_id", m->user_id.str, "email", m->email, "name",
                     m->name, "role", auth_role_name(m->role));
}

static json_t *invitation_json(const struct auth__invitation *v)
{
    json_t *by = bh_uuid_is_nil(&v->invited_by)
                     ? json_null()
                     : json_pack("{s:s, s:s}", "id", v->invited_by.str, "name", v->invited_by_name);
    return json_pack("{s:s, s:{s:s, s:s}, s:s, s:s, s:o, s:s, s:s, s:s}", "id", v->id.str, "org",
                     "id", v->org_id.str, "name", v->org_name, "email", v->email, "role",
                     auth_role_name(v->role), "invited_by", by, "status", v->status, "created_at",
                     v->created_at, "expires_at", v->expires_at);
}

static json_t *tokens_json(const struct auth__tokens *t)
{
    return json_pack("{s:s, s:s, s:s, s:i}", "access_token", t->access_token, "refresh_token",
                     t->refresh_token, "token_type", "Bearer", "expires_in", t->expires_in);
}

/* Tokens must not be cached by anything between us and the client. */
static void no_store(struct bh_req *req)
{
    bh_reply_header(req, "Cache-Control", "no-store");
}

/* A name: 1-100 characters, not only blanks. */
static bool name_ok(struct bh_req *req, const char *field, const char *name)
{
    if (name && strspn(name, " \t\r\n") == strlen(name)) {
        bh_req_field_error(req, field, "must not be blank");
        return false;
    }
    return true;
}

/* The page arguments; the cursor's key is the id the last page ended at. */
static bool page_args(struct bh_req *req, struct bh_page *page, const char **after)
{
    bh_uuid u;
    *after = NULL;
    if (bh_page_args(req, page) == 0 && page->key) {
        if (!bh_uuid_parse(page->key, &u))
            bh_page_bad_cursor(req);
        else
            *after = bh_arena_strdup(bh_req_arena(req), u.str);
    }
    return !bh_req_has_field_errors(req);
}

/* The next page's cursor when the query found more than a page (n > limit). */
static const char *next_cursor(struct bh_req *req, int n, int limit, const bh_uuid *last)
{
    return n > limit ? bh_page_cursor(bh_req_arena(req), last->str) : NULL;
}

static int reply_refusal(struct bh_req *req, int rc, const struct bh_refusal *why)
{
    if (!why->code && rc != BH_ELIMIT)
        return rc;
    return bh_reply_refusal(req, rc, why, NULL);
}

/* ------------------------------------------------------------ sign up, log in */

int auth__http_signup(struct bh_req *req)
{
    const char *email = NULL, *password = NULL, *name = NULL;
    const struct bh_json_field fields[] = {
        BH_JSON_STRING("email", &email, 1, 320, true),
        BH_JSON_STRING("password", &password, 12, 128, true),
        BH_JSON_LINE("name", &name, 1, 100, true),
        {0},
    };
    bh_json_read(req, bh_req_json(req), fields);
    struct auth__signup_in in = {.password = password, .name = name};
    if (email && !(in.email = auth__email_normalize(bh_req_arena(req), email)))
        bh_req_field_error(req, "email", "must be a valid email address");
    name_ok(req, "name", name);
    if (bh_req_has_field_errors(req))
        return bh_reply_field_errors(req);
    in.client_addr = bh_req_client_addr(req);
    in.user_agent = bh_req_header(req, "User-Agent");

    struct auth__user user;
    struct auth__org org;
    struct auth__tokens tok = {0};
    int rc = auth__signup(bh_req_arena(req), &in, &user, &org, &tok);
    if (rc == BH_ECONFLICT)
        return bh_reply_refusal(
            req, rc,
            &(struct bh_refusal){.code = "email_taken",
                                 .detail = "An account with this email exists."},
            NULL);
    if (rc != 0)
        return rc;
    json_t *body = tokens_json(&tok);
    json_object_set_new(body, "user", user_json(&user));
    json_object_set_new(body, "org", org_json(&org));
    no_store(req);
    bh_reply_header(req, "Location", "/v1/me");
    return bh_reply_json(req, 201, body);
}

/* The login body, validated (422 names the fields). */
static bool login_fields(struct bh_req *req, const char **email, const char **password)
{
    const struct bh_json_field fields[] = {
        BH_JSON_STRING("email", email, 1, 320, true),
        BH_JSON_STRING("password", password, 1, 1024, true),
        {0},
    };
    if (bh_json_read(req, bh_req_json(req), fields) != 0)
        return false;
    /* A malformed email cannot belong to anyone: it takes the unknown-user
     * path, so the answer does not depend on it. */
    const char *norm = auth__email_normalize(bh_req_arena(req), *email);
    if (norm)
        *email = norm;
    return true;
}

static int too_many(struct bh_req *req, const char *detail)
{
    return bh_reply_problem(req, 429, "rate_limited", detail, NULL);
}

/* Before the password pool: the body is valid and the limiter admits this
 * attempt, counting it as a failure until it succeeds. */
int auth__http_login_admit(struct bh_req *req)
{
    const char *email = NULL, *password = NULL;
    if (!login_fields(req, &email, &password))
        return bh_reply_field_errors(req);
    struct auth__rl rl;
    auth__login_reserve(email, bh_req_client_addr(req), &rl);
    auth__rl_headers(req, &rl); /* as if this attempt fails */
    if (rl.limited)
        return too_many(req, "Too many failed logins; try again after Retry-After seconds.");
    return 0;
}

int auth__http_login(struct bh_req *req)
{
    const char *email = NULL, *password = NULL;
    if (!login_fields(req, &email, &password))
        return bh_reply_field_errors(req);
    const char *addr = bh_req_client_addr(req);
    struct auth__user user;
    struct auth__tokens tok = {0};
    int rc = auth__login(bh_req_arena(req), email, password, addr, bh_req_header(req, "User-Agent"),
                         &user, &tok);
    if (rc == BH_EUNAUTH) /* the failure admission counted stands */
        return bh_reply_problem(req, 401, "invalid_credentials",
                                "The email or the password is wrong.", NULL);
    auth__login_settle(email, addr, rc == 0);
    if (rc != 0)
        return rc;
    json_t *body = tokens_json(&tok);
    json_object_set_new(body, "user", user_json(&user));
    no_store(req);
    return bh_reply_json(req, 200, body);
}

int auth__http_refresh(struct bh_req *req)
{
    const char *token = NULL;
    const struct bh_json_field fields[] = {
        BH_JSON_STRING("refresh_token", &token, 1, 512, true),
        {0},
    };
    if (bh_json_read(req, bh_req_json(req), fields) != 0)
        return bh_reply_field_errors(req);
    struct auth__tokens tok = {0};
    enum auth__refresh_outcome outcome;
    int rc = auth__refresh(bh_req_arena(req), token, &tok, &outcome);
    if (rc != 0)
        return rc;
    if (outcome == AUTH__REFRESH_REUSED)
        return bh_reply_problem(req, 401, "refresh_token_reused",
                                "This refresh token was already used; the session is revoked. "
                                "Log in again.",
                                NULL);
    if (outcome != AUTH__REFRESH_OK)
        return bh_reply_problem(req, 401, "invalid_refresh_token",
                                "The refresh token is unknown, expired or revoked.", NULL);
    no_store(req);
    return bh_reply_json(req, 200, tokens_json(&tok));
}

/* ------------------------------------------------------------ sessions */

static int no_body(struct bh_req *req)
{
    const struct bh_json_field none[] = {{0}};
    return bh_json_read(req, bh_req_json(req), none);
}

static int logout_common(struct bh_req *req, bool all)
{
    const struct auth_principal *p;
    int rc = auth_authenticate(req, &p);
    if (rc != 0)
        return rc;
    if (no_body(req) != 0)
        return bh_reply_field_errors(req);
    rc = auth__logout(auth__request_claims(req), all);
    return rc != 0 ? rc : bh_reply_empty(req, 204);
}

int auth__http_logout(struct bh_req *req)
{
    return logout_common(req, false);
}
int auth__http_logout_all(struct bh_req *req)
{
    return logout_common(req, true);
}

/* ------------------------------------------------------------ me */

int auth__http_me_get(struct bh_req *req)
{
    const struct auth_principal *p;
    struct auth__user user;
    struct auth__org *orgs = NULL;
    int n = 0;
    int rc = auth_authenticate(req, &p);
    if (rc != 0)
        return rc;
    rc = auth__user_get(&p->user_id, &user);
    if (rc == 0)
        rc = auth__orgs_of_user(bh_req_arena(req), &p->user_id, NULL, BH_PAGE_MAX, &orgs, &n);
    if (rc != 0)
        return rc;
    json_t *body = user_json(&user);
    json_t *list = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(list, org_json(&orgs[i]));
    json_object_set_new(body, "memberships", list);
    return bh_reply_json(req, 200, body);
}

int auth__http_me_patch(struct bh_req *req)
{
    const struct auth_principal *p;
    const char *name = NULL;
    int rc = auth_authenticate(req, &p);
    if (rc != 0)
        return rc;
    const struct bh_json_field fields[] = {BH_JSON_LINE("name", &name, 1, 100, false), {0}};
    bh_json_read(req, bh_req_json(req), fields);
    name_ok(req, "name", name);
    if (bh_req_has_field_errors(req))
        return bh_reply_field_errors(req);
    struct auth__user user;
    if (name)
        rc = auth__rename(&p->user_id, name, &user);
    else
        rc = auth__user_get(&p->user_id, &user);
    if (rc != 0)
        return rc;
    return bh_reply_json(req, 200, user_json(&user));
}

static bool password_fields(struct bh_req *req, const char **current, const char **next)
{
    const struct bh_json_field fields[] = {
        BH_JSON_STRING("current_password", current, 1, 1024, true),
        BH_JSON_STRING("new_password", next, 12, 128, true),
        {0},
    };
    return bh_json_read(req, bh_req_json(req), fields) == 0;
}

/* Before the password pool. Guessing the current password with a stolen
 * access token is a login attempt: the same limiter admits it, keyed by
 * the account. */
int auth__http_me_password_admit(struct bh_req *req)
{
    const struct auth_principal *p;
    const char *current = NULL, *next = NULL;
    struct auth__user user;
    int rc = auth_authenticate(req, &p);
    if (rc != 0)
        return rc;
    if (!password_fields(req, &current, &next))
        return bh_reply_field_errors(req);
    rc = auth__user_get(&p->user_id, &user);
    if (rc != 0)
        return rc;
    struct auth__rl rl;
    auth__login_reserve(user.email, bh_req_client_addr(req), &rl);
    auth__rl_headers(req, &rl);
    if (rl.limited)
        return too_many(req, "Too many wrong passwords; try again after Retry-After seconds.");
    return 0;
}

int auth__http_me_password(struct bh_req *req)
{
    const struct auth_principal *p;
    const char *current = NULL, *next = NULL;
    struct auth__user user;
    int rc = auth_authenticate(req, &p);
    if (rc != 0)
        return rc;
    if (!password_fields(req, &current, &next))
        return bh_reply_field_errors(req);
    rc = auth__change_password(bh_req_arena(req), auth__request_claims(req), current, next);
    if (rc == BH_EUNAUTH) { /* the failure admission counted stands */
        bh_req_field_error(req, "current_password", "is not correct");
        return bh_reply_field_errors(req);
    }
    if (auth__user_get(&p->user_id, &user) == 0)
        auth__login_settle(user.email, bh_req_client_addr(req), rc == 0);
    return rc != 0 ? rc : bh_reply_empty(req, 204);
}

/* ------------------------------------------------------------ organizations */

int auth__http_orgs_create(struct bh_req *req)
{
    const struct auth_principal *p;
    const char *name = NULL;
    int rc = auth_authenticate(req, &p);
    if (rc != 0)
        return rc;
    const struct bh_json_field fields[] = {BH_JSON_LINE("name", &name, 1, 100, true), {0}};
    bh_json_read(req, bh_req_json(req), fields);
    name_ok(req, "name", name);
    if (bh_req_has_field_errors(req))
        return bh_reply_field_errors(req);
    struct auth__org org;
    rc = auth__org_create(&p->user_id, name, &org);
    if (rc != 0)
        return rc;
    bh_reply_header(req, "Location", bh_arena_printf(bh_req_arena(req), "/v1/orgs/%s", org.id.str));
    return bh_reply_json(req, 201, org_json(&org));
}

int auth__http_orgs_list(struct bh_req *req)
{
    const struct auth_principal *p;
    const char *cursor;
    struct bh_page page;
    struct auth__org *orgs = NULL;
    int n = 0;
    int rc = auth_authenticate(req, &p);
    if (rc != 0)
        return rc;
    if (!page_args(req, &page, &cursor))
        return bh_reply_field_errors(req);
    int limit = page.limit;
    rc = auth__orgs_of_user(bh_req_arena(req), &p->user_id, cursor, limit + 1, &orgs, &n);
    if (rc != 0)
        return rc;
    json_t *data = json_array();
    for (int i = 0; data && i < n && i < limit; i++)
        json_array_append_new(data, org_json(&orgs[i]));
    const char *next = next_cursor(req, n, limit, n > limit ? &orgs[limit - 1].id : NULL);
    if (n > limit && !next) {
        json_decref(data);
        return BH_ENOMEM;
    }
    return bh_reply_page(req, &page, data, next, NULL);
}

int auth__http_orgs_get(struct bh_req *req)
{
    const struct auth_principal *p;
    int rc = auth_require_role(req, bh_req_param(req, "org"), AUTH_ROLE_MEMBER, &p);
    if (rc != 0)
        return rc;
    struct auth__org org;
    rc = auth__org_get(&p->org_id, &p->user_id, &org);
    if (rc != 0)
        return rc;
    return bh_reply_json(req, 200, org_json(&org));
}

/* ------------------------------------------------------------ members */

int auth__http_members_list(struct bh_req *req)
{
    const struct auth_principal *p;
    const char *cursor;
    struct bh_page page;
    struct auth__member *ms = NULL;
    int n = 0;
    int rc = auth_require_role(req, bh_req_param(req, "org"), AUTH_ROLE_MEMBER, &p);
    if (rc != 0)
        return rc;
    if (!page_args(req, &page, &cursor))
        return bh_reply_field_errors(req);
    int limit = page.limit;
    rc = auth__members_list(bh_req_arena(req), &p->org_id, cursor, limit + 1, &ms, &n);
    if (rc != 0)
        return rc;
    json_t *data = json_array();
    for (int i = 0; data && i < n && i < limit; i++)
        json_array_append_new(data, member_json(&ms[i]));
    const char *next = next_cursor(req, n, limit, n > limit ? &ms[limit - 1].user_id : NULL);
    if (n > limit && !next) {
        json_decref(data);
        return BH_ENOMEM;
    }
    return bh_reply_page(req, &page, data, next, NULL);
}

static enum auth_role role_field(struct bh_req *req, const char *role)
{
    enum auth_role r = auth__role_parse(role);
    if (role && r == AUTH_ROLE_NONE)
        bh_req_field_error(req, "role", "must be one of owner, admin, member");
    return r;
}

int auth__http_members_add(struct bh_req *req)
{
    const struct auth_principal *p;
    const char *email = NULL, *role_name = NULL;
    int rc = auth_require_role(req, bh_req_param(req, "org"), AUTH_ROLE_ADMIN, &p);
    if (rc != 0)
        return rc;
    const struct bh_json_field fields[] = {
        BH_JSON_STRING("email", &email, 1, 320, true),
        BH_JSON_STRING("role", &role_name, 1, 16, false),
        {0},
    };
    bh_json_read(req, bh_req_json(req), fields);
    enum auth_role role = role_name ? role_field(req, role_name) : AUTH_ROLE_MEMBER;
    const char *norm = email ? auth__email_normalize(bh_req_arena(req), email) : NULL;
    if (email && !norm)
        bh_req_field_error(req, "email", "must be a valid email address");
    if (bh_req_has_field_errors(req))
        return bh_reply_field_errors(req);
    struct auth__invitation inv;
    struct bh_refusal why = {0};
    rc = auth__invite(p, norm, role, &inv, &why);
    if (rc == BH_EUNPROCESSABLE) /* no such user: a field error on email */
        bh_req_field_error(req, "email", "no user has this email");
    if (rc != 0)
        return reply_refusal(req, rc, &why);
    char location[96];
    snprintf(location, sizeof location, "/v1/me/invitations/%s", inv.id.str);
    bh_reply_header(req, "Location", location);
    return bh_reply_json(req, 201, invitation_json(&inv));
}

/* ------------------------------------------------------------ invitations (the org's side) */

int auth__http_org_invitations_list(struct bh_req *req)
{
    const struct auth_principal *p;
    struct auth__invitation *v = NULL;
    int n = 0;
    int rc = auth_require_role(req, bh_req_param(req, "org"), AUTH_ROLE_ADMIN, &p);
    if (rc != 0)
        return rc;
    rc = auth__repo_invitations_pending(bh_req_arena(req), NULL, &p->org_id, AUTH__INVITATIONS_MAX,
                                        &v, &n);
    if (rc != 0)
        return rc;
    json_t *data = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(data, invitation_json(&v[i]));
    return bh_reply_json(req, 200, json_pack("{s:o}", "data", data));
}

/* A pending invitation holds a seat until it is answered, expires or is
 * revoked here. */
int auth__http_org_invitation_revoke(struct bh_req *req)
{
    const struct auth_principal *p;
    bh_uuid id;
    int rc = auth_require_role(req, bh_req_param(req, "org"), AUTH_ROLE_ADMIN, &p);
    if (rc != 0)
        return rc;
    const char *raw = bh_req_param(req, "id");
    if (!raw || !bh_uuid_parse(raw, &id))
        return BH_ENOTFOUND;
    if (no_body(req) != 0)
        return bh_reply_field_errors(req);
    rc = auth__repo_invitation_revoke(&p->org_id, &id);
    return rc != 0 ? rc : bh_reply_empty(req, 204);
}

/* ------------------------------------------------------------ invitations (the invitee's side) */

int auth__http_invitations_list(struct bh_req *req)
{
    const struct auth_principal *me;
    struct auth__invitation *v = NULL;
    int n = 0;
    int rc = auth_authenticate(req, &me);
    if (rc != 0)
        return rc;
    rc = auth__repo_invitations_pending(bh_req_arena(req), &me->user_id, NULL,
                                        AUTH__INVITATIONS_MAX, &v, &n);
    if (rc != 0)
        return rc;
    json_t *data = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(data, invitation_json(&v[i]));
    return bh_reply_json(req, 200, json_pack("{s:o}", "data", data));
}

/* The {id} path parameter; an unparsable id is simply not an invitation. */
static bool invitation_id(struct bh_req *req, bh_uuid *out)
{
    const char *id = bh_req_param(req, "id");
    return id && bh_uuid_parse(id, out);
}

int auth__http_invitation_accept(struct bh_req *req)
{
    const struct auth_principal *me;
    bh_uuid id, org_id;
    int rc = auth_authenticate(req, &me);
    if (rc != 0)
        return rc;
    if (!invitation_id(req, &id))
        return BH_ENOTFOUND;
    if (no_body(req) != 0)
        return bh_reply_field_errors(req);
    struct bh_refusal why = {0};
    rc = auth__invitation_accept(&me->user_id, &id, &org_id, &why);
    if (rc != 0)
        return reply_refusal(req, rc, &why);
    struct auth__org org;
    if ((rc = auth__repo_org_get(&org_id, &me->user_id, &org)) != 0)
        return rc;
    return bh_reply_json(req, 200, org_json(&org));
}

int auth__http_invitation_decline(struct bh_req *req)
{
    const struct auth_principal *me;
    bh_uuid id;
    int rc = auth_authenticate(req, &me);
    if (rc != 0)
        return rc;
    if (!invitation_id(req, &id))
        return BH_ENOTFOUND;
    if (no_body(req) != 0)
        return bh_reply_field_errors(req);
    struct bh_refusal why = {0};
    rc = auth__invitation_decline(&me->user_id, &id, &why);
    return rc != 0 ? reply_refusal(req, rc, &why) : bh_reply_empty(req, 204);
}

/* The {user} path parameter; an unparsable id is simply not a member. */
static bool target_user(struct bh_req *req, bh_uuid *out)
{
    const char *u = bh_req_param(req, "user");
    return u && bh_uuid_parse(u, out);
}

int auth__http_members_update(struct bh_req *req)
{
    const struct auth_principal *p;
    const char *role_name = NULL;
    bh_uuid user;
    int rc = auth_require_role(req, bh_req_param(req, "org"), AUTH_ROLE_ADMIN, &p);
    if (rc != 0)
        return rc;
    if (!target_user(req, &user))
        return BH_ENOTFOUND;
    const struct bh_json_field fields[] = {BH_JSON_STRING("role", &role_name, 1, 16, true), {0}};
    bh_json_read(req, bh_req_json(req), fields);
    enum auth_role role = role_field(req, role_name);
    if (bh_req_has_field_errors(req))
        return bh_reply_field_errors(req);
    struct auth__member m;
    struct bh_refusal why = {0};
    rc = auth__member_update(p, &user, role, &m, &why);
    if (rc != 0)
        return reply_refusal(req, rc, &why);
    return bh_reply_json(req, 200, member_json(&m));
}

int auth__http_members_remove(struct bh_req *req)
{
    const struct auth_principal *p;
    bh_uuid user;
    int rc = auth_require_role(req, bh_req_param(req, "org"), AUTH_ROLE_MEMBER, &p);
    if (rc != 0)
        return rc;
    if (!target_user(req, &user))
        return BH_ENOTFOUND;
    /* Anyone may leave; removing someone else takes an admin. */
    if (strcmp(user.str, p->user_id.str) != 0 && p->role < AUTH_ROLE_ADMIN)
        return BH_EFORBIDDEN;
    if (no_body(req) != 0)
        return bh_reply_field_errors(req);
    struct bh_refusal why = {0};
    rc = auth__member_remove(p, &user, &why);
    if (rc != 0)
        return reply_refusal(req, rc, &why);
    return bh_reply_empty(req, 204);
}
