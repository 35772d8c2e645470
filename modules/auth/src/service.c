/* Auth's rules: signing up, logging in, rotating refresh tokens (with reuse
 * detection), logging out, organizations and their members. Each change is
 * one transaction with its events; caches and the denylist are touched only
 * after the commit. It must never hash a password while holding a database
 * connection, and never leave an organization without an owner. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "platform/db.h"
#include "platform/err.h"
#include "platform/log.h"

/* ------------------------------------------------------------ hooks */

static auth_org_created_fn on_org_created;
static auth_seat_check_fn on_seat_check;

int auth_on_org_created(auth_org_created_fn fn)
{
    on_org_created = fn;
    return 0;
}

int auth_on_seat_check(auth_seat_check_fn fn)
{
    on_seat_check = fn;
    return 0;
}

int auth__call_org_created(struct bh_tx *tx, const bh_uuid *org_id)
{
    return on_org_created ? on_org_created(tx, org_id) : 0;
}

int auth__call_seat_check(struct bh_tx *tx, const bh_uuid *org_id, int64_t current, int64_t *limit)
{
    return on_seat_check ? on_seat_check(tx, org_id, current, limit) : 0;
}

/* ------------------------------------------------------------ helpers */

const char *auth__email_normalize(struct bh_arena *a, const char *email)
{
    while (*email == ' ' || *email == '\t' || *email == '\r' || *email == '\n')
        email++;
    size_t n = strlen(email);
    while (n > 0 && strchr(" \t\r\n", email[n - 1]))
        n--;
    if (n < 3 || n > 254)
        return NULL;
    char *out = bh_arena_strndup(a, email, n);
    if (!out)
        return NULL;
    int ats = 0;
    for (char *p = out; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= ' ' || c == 0x7f || strchr("\"(),:;<>[\\]", c))
            return NULL;
        if (c == '@')
            ats++;
        *p = (char)tolower(c);
    }
    const char *at = strchr(out, '@');
    if (ats != 1 || at == out || at - out > 64)
        return NULL;
    const char *domain = at + 1;
    const char *dot = strrchr(domain, '.');
    if (!dot || dot == domain || dot[1] == '\0' || domain[0] == '.' || strstr(domain, ".."))
        return NULL;
    return out;
}

/* Creates a session with its first refresh token and signs an access token. */
static int issue_session(struct bh_tx *tx, struct bh_arena *a, const bh_uuid *user_id,
                         const char *client_addr, const char *user_agent, struct auth__tokens *tok)
{
    char refresh[AUTH__REFRESH_LEN + 1], hash[AUTH__HASH_HEX + 1];
    int rc = auth__repo_session_insert(tx, user_id, client_addr, user_agent, &tok->session_id);
    if (rc != 0)
        return rc;
    auth__refresh_new(refresh);
    auth__refresh_hash(refresh, hash);
    rc = auth__repo_refresh_insert(tx, hash, &tok->session_id, auth__settings.refresh_ttl_s);
    if (rc != 0)
        return rc;
    tok->refresh_token = bh_arena_strdup(a, refresh);
    sodium_memzero(refresh, sizeof refresh);
    return tok->refresh_token ? 0 : BH_ENOMEM;
}

/* Signs the access token for an existing session. */
static int sign_access(struct bh_arena *a, const bh_uuid *user_id, struct auth__tokens *tok)
{
    char *jwt = NULL;
    int rc = auth__jwt_sign(auth__keys(), user_id, &tok->session_id, (long)time(NULL),
                            auth__settings.access_ttl_s, &jwt, NULL);
    if (rc != 0)
        return rc;
    tok->access_token = bh_arena_strdup(a, jwt);
    tok->expires_in = auth__settings.access_ttl_s;
    free(jwt);
    return tok->access_token ? 0 : BH_ENOMEM;
}

/* Creates an organization owned by owner, on tx, with the hook. */
static int create_org(struct bh_tx *tx, const bh_uuid *owner, const char *name,
                      struct auth__org *out)
{
    int rc = auth__repo_org_insert(tx, name, owner, out);
    if (rc == 0)
        rc = auth__repo_member_insert(tx, &out->id, owner, AUTH_ROLE_OWNER);
    if (rc == 0)
        rc = auth__emit_org_created(tx, out, owner);
    if (rc == 0)
        rc = auth__call_org_created(tx, &out->id);
    return rc;
}

/* ------------------------------------------------------------ sign up, log in */

int auth__signup(struct bh_arena *a, const struct auth__signup_in *in, struct auth__user *user,
                 struct auth__org *org, struct auth__tokens *tok)
{
    char hash[AUTH__PWHASH_MAX];
    struct bh_tx *tx = NULL;
    /* Hash first, outside any transaction: Argon2 takes ~0.1 s and a
     * database connection must not wait for it. */
    int rc = auth__password_hash(in->password, hash);
    if (rc != 0)
        return rc;
    rc = bh_tx_begin(&tx);
    if (rc != 0)
        return rc;
    rc = auth__repo_user_insert(tx, in->email, in->name, hash, user);
    if (rc == BH_ECONFLICT)
        goto out; /* email taken */
    if (rc == 0)
        rc = create_org(tx, &user->id, in->name, org);
    if (rc == 0)
        rc = auth__emit_signed_up(tx, user, &org->id);
    if (rc == 0)
        rc = issue_session(tx, a, &user->id, in->client_addr, in->user_agent, tok);
    if (rc != 0)
        goto out;
    rc = bh_tx_commit(tx);
    tx = NULL;
    if (rc == 0)
        rc = sign_access(a, &user->id, tok);
out:
    bh_tx_rollback(tx);
    sodium_memzero(hash, sizeof hash);
    return rc;
}

int auth__login(struct bh_arena *a, const char *email, const char *password,
                const char *client_addr, const char *user_agent, struct auth__user *user,
                struct auth__tokens *tok)
{
    struct bh_tx *tx = NULL;
    bool ok = false;
    int rc = auth__repo_user_by_email(email, user);
    if (rc != 0 && rc != BH_ENOTFOUND)
        return BH_EUNAVAILABLE;
    bool known = rc == 0;
    /* An unknown email is checked against the dummy hash: same work, same
     * time, same answer as a wrong password. */
    rc = auth__password_verify(known ? user->password_hash : NULL, password, &ok);
    /* Costs raised since this hash was made: upgrade it now, while the
     * password is at hand (best effort: a full bulkhead just skips it). */
    char upgraded[AUTH__PWHASH_MAX] = "";
    if (rc == 0 && known && ok && auth__password_outdated(user->password_hash) &&
        auth__password_hash(password, upgraded) != 0)
        upgraded[0] = '\0';
    sodium_memzero(user->password_hash, sizeof user->password_hash);
    if (rc != 0)
        return rc;
    if (!known || !ok)
        return BH_EUNAUTH;
    rc = bh_tx_begin(&tx);
    if (rc == 0 && upgraded[0])
        rc = auth__repo_user_set_password(tx, &user->id, upgraded);
    sodium_memzero(upgraded, sizeof upgraded);
    if (rc == 0)
        rc = issue_session(tx, a, &user->id, client_addr, user_agent, tok);
    if (rc == 0) {
        rc = bh_tx_commit(tx);
        tx = NULL;
    }
    if (rc == 0)
        rc = sign_access(a, &user->id, tok);
    bh_tx_rollback(tx);
    return rc;
}

/* ------------------------------------------------------------ refresh */

/* Revokes a whole family after its rotated token came back too late. */
static int revoke_family(struct bh_tx *tx, const bh_uuid *sid)
{
    int rc = auth__repo_session_revoke(tx, sid, "reuse");
    if (rc == 0)
        rc = bh_tx_commit(tx);
    else
        bh_tx_rollback(tx);
    if (rc == 0) {
        bh_log_warn("refresh token reuse: session %s revoked", sid->str);
        auth__revoke_publish(sid, 1, NULL);
    }
    return rc;
}

/* A rotated token came back. Soon after its rotation, while its child is
 * still the current token, it is a client retry or a race (two tabs):
 * answer with that same child. Otherwise it was stolen or replayed: end the
 * family. Takes tx (rolled back, or committed with the revocation). */
static int refresh_rotated(struct bh_arena *a, struct bh_tx *tx, const char *refresh_token,
                           const struct auth__refresh_row *row, struct auth__tokens *tok,
                           enum auth__refresh_outcome *outcome)
{
    char child[AUTH__REFRESH_LEN + 1];

    if (row->since_used_s <= auth__settings.refresh_grace_s && row->child_current &&
        auth__refresh_unseal(refresh_token, row->child_sealed, child) == 0) {
        bh_tx_rollback(tx);
        tok->refresh_token = bh_arena_strdup(a, child);
        sodium_memzero(child, sizeof child);
        *outcome = AUTH__REFRESH_OK;
        return tok->refresh_token ? sign_access(a, &row->user_id, tok) : BH_ENOMEM;
    }
    sodium_memzero(child, sizeof child);
    *outcome = AUTH__REFRESH_REUSED;
    return revoke_family(tx, &row->session_id);
}

int auth__refresh(struct bh_arena *a, const char *refresh_token, struct auth__tokens *tok,
                  enum auth__refresh_outcome *outcome)
{
    char hash[AUTH__HASH_HEX + 1], child[AUTH__REFRESH_LEN + 1];
    char child_hash[AUTH__HASH_HEX + 1], sealed[AUTH__SEALED_HEX + 1];
    struct auth__refresh_row row;
    struct bh_tx *tx = NULL;

    *outcome = AUTH__REFRESH_INVALID;
    if (strlen(refresh_token) != AUTH__REFRESH_LEN)
        return 0;
    auth__refresh_hash(refresh_token, hash);
    int rc = bh_tx_begin(&tx);
    if (rc != 0)
        return rc;
    rc = auth__repo_refresh_lock(tx, hash, &row);
    if (rc == BH_ENOTFOUND || (rc == 0 && (row.expired || row.session_revoked))) {
        rc = 0;
        goto out;
    }
    if (rc != 0)
        goto out;
    tok->session_id = row.session_id;
    if (row.used) {
        rc = refresh_rotated(a, tx, refresh_token, &row, tok, outcome);
        tx = NULL;
        return rc;
    }
    auth__refresh_new(child);
    auth__refresh_hash(child, child_hash);
    rc = auth__refresh_seal(refresh_token, child, sealed);
    if (rc == 0)
        rc = auth__repo_refresh_insert(tx, child_hash, &row.session_id,
                                       auth__settings.refresh_ttl_s);
    if (rc == 0)
        rc = auth__repo_refresh_rotated(tx, hash, child_hash, sealed);
    if (rc != 0)
        goto out;
    rc = bh_tx_commit(tx);
    tx = NULL;
    if (rc != 0)
        goto out;
    tok->refresh_token = bh_arena_strdup(a, child);
    rc = tok->refresh_token ? sign_access(a, &row.user_id, tok) : BH_ENOMEM;
    if (rc == 0)
        *outcome = AUTH__REFRESH_OK;
out:
    sodium_memzero(child, sizeof child);
    bh_tx_rollback(tx);
    return rc;
}

/* ------------------------------------------------------------ log out, password */

int auth__logout(const struct auth__claims *c, bool all_sessions)
{
    struct bh_arena *a = bh_arena_new();
    struct bh_tx *tx = NULL;
    const bh_uuid *sids = &c->sid;
    bh_uuid *all = NULL;
    int n = 1;
    if (!a)
        return BH_ENOMEM;
    int rc = bh_tx_begin(&tx);
    if (rc != 0)
        goto out;
    if (all_sessions) {
        rc = auth__repo_sessions_revoke_user(tx, a, &c->sub, NULL, "logout_all", &all, &n);
        sids = all;
    } else
        rc = auth__repo_session_revoke(tx, &c->sid, "logout");
    if (rc != 0)
        goto out;
    rc = bh_tx_commit(tx);
    tx = NULL;
    if (rc == 0)
        auth__revoke_publish(sids, n, &c->jti);
out:
    bh_tx_rollback(tx);
    bh_arena_free(a);
    return rc;
}

int auth__change_password(struct bh_arena *a, const struct auth__claims *c, const char *current,
                          const char *next)
{
    struct auth__user u;
    char hash[AUTH__PWHASH_MAX];
    struct bh_tx *tx = NULL;
    bh_uuid *sids = NULL;
    int n = 0;
    bool ok = false;

    int rc = auth__repo_user_by_id(NULL, &c->sub, &u);
    if (rc != 0)
        return rc == BH_ENOTFOUND ? BH_EUNAUTH : rc;
    rc = auth__password_verify(u.password_hash, current, &ok);
    sodium_memzero(u.password_hash, sizeof u.password_hash);
    if (rc != 0)
        return rc;
    if (!ok)
        return BH_EUNAUTH;
    rc = auth__password_hash(next, hash);
    if (rc != 0)
        return rc;
    rc = bh_tx_begin(&tx);
    if (rc == 0)
        rc = auth__repo_user_set_password(tx, &c->sub, hash);
    if (rc == 0)
        rc = auth__repo_sessions_revoke_user(tx, a, &c->sub, &c->sid, "password", &sids, &n);
    if (rc == 0) {
        rc = bh_tx_commit(tx);
        tx = NULL;
    }
    if (rc == 0)
        auth__revoke_publish(sids, n, NULL);
    bh_tx_rollback(tx);
    sodium_memzero(hash, sizeof hash);
    return rc;
}

int auth__rename(const bh_uuid *user_id, const char *name, struct auth__user *out)
{
    int rc = auth__repo_user_set_name(NULL, user_id, name, out);
    sodium_memzero(out->password_hash, sizeof out->password_hash);
    return rc;
}

/* ------------------------------------------------------------ organizations */

int auth__org_create(const bh_uuid *user_id, const char *name, struct auth__org *out)
{
    struct bh_tx *tx = NULL;
    int rc = bh_tx_begin(&tx);
    if (rc != 0)
        return rc;
    rc = create_org(tx, user_id, name, out);
    if (rc == 0) {
        rc = bh_tx_commit(tx);
        tx = NULL;
    }
    bh_tx_rollback(tx);
    if (rc == 0)
        auth__member_cache_drop(&out->id, user_id); /* a cached "none" from a probe */
    return rc;
}

/* ------------------------------------------------------------ reads */

int auth__user_get(const bh_uuid *user_id, struct auth__user *out)
{
    int rc = auth__repo_user_by_id(NULL, user_id, out);
    sodium_memzero(out->password_hash, sizeof out->password_hash);
    if (rc != 0 && rc != BH_ENOTFOUND)
        return BH_EUNAVAILABLE;
    return rc;
}

/* The public profile read (auth.h): a user without its password hash. */
int auth_user_profile(const bh_uuid *user_id, struct auth_profile *out)
{
    struct auth__user u;
    int rc = auth__user_get(user_id, &u);
    if (rc != 0)
        return rc == BH_ENOTFOUND ? rc : BH_EUNAVAILABLE;
    out->id = u.id;
    snprintf(out->email, sizeof out->email, "%s", u.email);
    snprintf(out->name, sizeof out->name, "%s", u.name);
    return 0;
}

int auth__orgs_of_user(struct bh_arena *a, const bh_uuid *user_id, const char *after, int limit,
                       struct auth__org **out, int *n)
{
    return auth__repo_orgs_of_user(a, user_id, after, limit, out, n);
}

int auth__org_get(const bh_uuid *org_id, const bh_uuid *user_id, struct auth__org *out)
{
    return auth__repo_org_get(org_id, user_id, out);
}

int auth__members_list(struct bh_arena *a, const bh_uuid *org_id, const char *after, int limit,
                       struct auth__member **out, int *n)
{
    return auth__repo_members_list(a, org_id, after, limit, out, n);
}

/* ------------------------------------------------------------ members */

static void refuse(struct bh_refusal *why, const char *code, const char *detail)
{
    why->code = code;
    why->detail = detail;
}

/* May the caller (role p->role) give or take `role`? Only an owner deals in owners. */
static bool may_manage(const struct auth_principal *p, enum auth_role role)
{
    return p->role == AUTH_ROLE_OWNER || role < AUTH_ROLE_OWNER;
}

/* Refuses a membership change past the plan's seat limit: seats_taken is
 * what the org would have without the new one. */
static int seat_check(struct bh_tx *tx, const bh_uuid *org_id, int64_t seats_taken,
                      struct bh_refusal *why)
{
    int64_t limit = 0;
    int rc = auth__call_seat_check(tx, org_id, seats_taken, &limit);
    if (rc == BH_ELIMIT) {
        why->resource = "members";
        why->limit = limit;
        why->usage = seats_taken;
    }
    return rc;
}

/* The part of an invitation that runs under the org lock. */
static int invite_locked(struct bh_tx *tx, const struct auth_principal *p,
                         const struct auth__user *u, enum auth_role role,
                         struct auth__invitation *out, struct bh_refusal *why)
{
    int64_t members = 0, owners = 0, pending = 0;
    enum auth_role existing = AUTH_ROLE_NONE;
    int rc = auth__repo_org_lock(tx, &p->org_id, out->org_name);
    if (rc == 0)
        rc = auth__repo_member_role(tx, &p->org_id, &u->id, &existing);
    if (rc == 0 && existing != AUTH_ROLE_NONE) {
        refuse(why, "already_member", "This user is already a member of the organization.");
        return BH_ECONFLICT;
    }
    if (rc == 0) {
        rc = auth__repo_invitation_insert(tx, &p->org_id, &u->id, role, &p->user_id,
                                          AUTH__INVITATION_TTL_S, &out->id);
        if (rc == BH_ECONFLICT)
            refuse(why, "already_invited",
                   "This user already has a pending invitation to the organization.");
    }
    if (rc == 0)
        rc = auth__repo_member_counts(tx, &p->org_id, &members, &owners);
    if (rc == 0)
        rc = auth__repo_invitations_pending_count(tx, &p->org_id, &pending);
    /* A pending invitation holds a seat: inviting past the limit is refused
     * now, not only when someone accepts. pending counts the new one. */
    if (rc == 0)
        rc = seat_check(tx, &p->org_id, members + pending - 1, why);
    if (rc == 0)
        rc = auth__repo_invitation_get(tx, &out->id, &u->id, false, out);
    return rc;
}

int auth__invite(const struct auth_principal *p, const char *email, enum auth_role role,
                 struct auth__invitation *out, struct bh_refusal *why)
{
    struct auth__user u;
    struct bh_tx *tx = NULL;
    if (!may_manage(p, role)) {
        refuse(why, "forbidden", "Only an owner may invite an owner.");
        return BH_EFORBIDDEN;
    }
    int rc = auth__repo_user_by_email(email, &u);
    sodium_memzero(u.password_hash, sizeof u.password_hash);
    if (rc == BH_ENOTFOUND) {
        refuse(why, "user_not_found", "No user has this email; they must sign up first.");
        return BH_EUNPROCESSABLE;
    }
    if (rc == 0)
        rc = bh_tx_begin(&tx);
    if (rc != 0)
        return rc;
    /* The org row lock serialises membership changes of one org, so the
     * seat count cannot race. */
    rc = invite_locked(tx, p, &u, role, out, why);
    if (rc == 0)
        rc = auth__emit_invited(tx, out);
    if (rc == 0) {
        rc = bh_tx_commit(tx);
        tx = NULL;
    }
    bh_tx_rollback(tx);
    return rc;
}

int auth__invitation_accept(const bh_uuid *user_id, const bh_uuid *id, bh_uuid *org_out,
                            struct bh_refusal *why)
{
    struct auth__invitation inv;
    struct bh_tx *tx = NULL;
    int64_t members = 0, owners = 0;
    enum auth_role existing = AUTH_ROLE_NONE;
    int rc = auth__repo_invitation_get(NULL, id, user_id, false, &inv);
    if (rc == 0)
        rc = bh_tx_begin(&tx);
    if (rc != 0)
        return rc;
    /* Org first, then the invitation: the order every membership change
     * takes. The invitation is read again under its lock. */
    rc = auth__repo_org_lock(tx, &inv.org_id, NULL);
    if (rc == 0)
        rc = auth__repo_invitation_get(tx, id, user_id, true, &inv);
    if (rc == 0 && (strcmp(inv.status, "pending") != 0 || inv.expired)) {
        refuse(why, "invitation_closed", "This invitation was answered already or has expired.");
        rc = BH_ECONFLICT;
    }
    if (rc == 0)
        rc = auth__repo_member_role(tx, &inv.org_id, user_id, &existing);
    if (rc == 0 && existing != AUTH_ROLE_NONE) {
        refuse(why, "already_member", "You are already a member of the organization.");
        rc = BH_ECONFLICT;
    }
    if (rc == 0)
        rc = auth__repo_member_counts(tx, &inv.org_id, &members, &owners);
    if (rc == 0)
        rc = seat_check(tx, &inv.org_id, members, why);
    if (rc == 0)
        rc = auth__repo_member_insert(tx, &inv.org_id, user_id, inv.role);
    if (rc == 0)
        rc = auth__repo_invitation_decide(tx, id, true);
    /* The inviter is the actor: they asked for it, the invitee agreed. */
    if (rc == 0)
        rc = auth__emit_member(tx, "member.added", &inv.org_id, inv.org_name,
                               bh_uuid_is_nil(&inv.invited_by) ? user_id : &inv.invited_by, user_id,
                               inv.role, AUTH_ROLE_NONE);
    if (rc == 0) {
        rc = bh_tx_commit(tx);
        tx = NULL;
    }
    bh_tx_rollback(tx);
    if (rc == 0) {
        auth__member_cache_drop(&inv.org_id, user_id);
        *org_out = inv.org_id;
    }
    return rc;
}

int auth__invitation_decline(const bh_uuid *user_id, const bh_uuid *id, struct bh_refusal *why)
{
    struct auth__invitation inv;
    struct bh_tx *tx = NULL;
    int rc = bh_tx_begin(&tx);
    if (rc != 0)
        return rc;
    rc = auth__repo_invitation_get(tx, id, user_id, true, &inv);
    if (rc == 0 && (strcmp(inv.status, "pending") != 0 || inv.expired)) {
        refuse(why, "invitation_closed", "This invitation was answered already or has expired.");
        rc = BH_ECONFLICT;
    }
    if (rc == 0)
        rc = auth__repo_invitation_decide(tx, id, false);
    if (rc == 0) {
        rc = bh_tx_commit(tx);
        tx = NULL;
    }
    bh_tx_rollback(tx);
    return rc;
}

/* Loads the target member on tx (after the org lock) and checks the rules
 * shared by update and remove. */
static int load_target(struct bh_tx *tx, const struct auth_principal *p, const bh_uuid *user_id,
                       struct auth__member *m, int64_t *owners, char org_name[AUTH__NAME_MAX],
                       struct bh_refusal *why)
{
    int64_t members = 0;
    int rc = auth__repo_org_lock(tx, &p->org_id, org_name);
    if (rc == 0)
        rc = auth__repo_member_counts(tx, &p->org_id, &members, owners);
    if (rc == 0)
        rc = auth__repo_member_get(tx, &p->org_id, user_id, m);
    if (rc == BH_ENOTFOUND)
        refuse(why, "not_found", "No such member.");
    if (rc == 0 && !may_manage(p, m->role)) {
        refuse(why, "forbidden", "Only an owner may change an owner.");
        rc = BH_EFORBIDDEN;
    }
    return rc;
}

int auth__member_update(const struct auth_principal *p, const bh_uuid *user_id, enum auth_role role,
                        struct auth__member *out, struct bh_refusal *why)
{
    struct bh_tx *tx = NULL;
    int64_t owners = 0;
    char org_name[AUTH__NAME_MAX] = "";
    if (!may_manage(p, role)) {
        refuse(why, "forbidden", "Only an owner may make an owner.");
        return BH_EFORBIDDEN;
    }
    int rc = bh_tx_begin(&tx);
    if (rc != 0)
        return rc;
    rc = load_target(tx, p, user_id, out, &owners, org_name, why);
    if (rc != 0)
        goto out;
    enum auth_role previous = out->role;
    if (previous == role)
        goto out; /* nothing to change: rolled back, answered as is */
    if (previous == AUTH_ROLE_OWNER && owners <= 1) {
        refuse(why, "last_owner", "An organization must keep at least one owner.");
        rc = BH_ECONFLICT;
        goto out;
    }
    rc = auth__repo_member_set_role(tx, &p->org_id, user_id, role);
    if (rc == 0)
        rc = auth__emit_member(tx, "member.role_changed", &p->org_id, org_name, &p->user_id,
                               user_id, role, previous);
    if (rc != 0)
        goto out;
    rc = bh_tx_commit(tx);
    tx = NULL;
    if (rc == 0) {
        out->role = role;
        auth__member_cache_drop(&p->org_id, user_id);
    }
out:
    bh_tx_rollback(tx);
    return rc;
}

int auth__member_remove(const struct auth_principal *p, const bh_uuid *user_id,
                        struct bh_refusal *why)
{
    struct bh_tx *tx = NULL;
    struct auth__member m;
    int64_t owners = 0;
    char org_name[AUTH__NAME_MAX] = "";
    int rc = bh_tx_begin(&tx);
    if (rc != 0)
        return rc;
    rc = load_target(tx, p, user_id, &m, &owners, org_name, why);
    if (rc != 0)
        goto out;
    if (m.role == AUTH_ROLE_OWNER && owners <= 1) {
        refuse(why, "last_owner", "An organization must keep at least one owner.");
        rc = BH_ECONFLICT;
        goto out;
    }
    rc = auth__repo_member_delete(tx, &p->org_id, user_id);
    if (rc == 0)
        rc = auth__emit_member(tx, "member.removed", &p->org_id, org_name, &p->user_id, user_id,
                               m.role, AUTH_ROLE_NONE);
    if (rc != 0)
        goto out;
    rc = bh_tx_commit(tx);
    tx = NULL;
    if (rc == 0)
        auth__member_cache_drop(&p->org_id, user_id);
out:
    bh_tx_rollback(tx);
    return rc;
}
