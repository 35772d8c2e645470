/* Every SQL statement the auth module runs, as named parameterized
 * statements over its own schema. It must never touch another schema,
 * never name a role, and never build SQL from input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "platform/db.h"
#include "platform/err.h"

/* RFC 3339 UTC, as every API time is. */
#define TS(col) "to_char(" col " at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

static const char SQL_USER_INSERT[] =
    "insert into auth.users (id, email, name, password_hash) values ($1, $2, $3, $4) "
    "returning " TS("created_at");
static const char SQL_USER_BY_EMAIL[] =
    "select id, email, name, " TS("created_at") ", password_hash from auth.users where email = $1";
static const char SQL_USER_BY_ID[] =
    "select id, email, name, " TS("created_at") ", password_hash from auth.users where id = $1";
static const char SQL_USER_SET_NAME[] =
    "update auth.users set name = $2, updated_at = now() where id = $1 "
    "returning id, email, name, " TS("created_at") ", password_hash";
static const char SQL_USER_SET_PASSWORD[] =
    "update auth.users set password_hash = $2, updated_at = now() where id = $1";

static const char SQL_ORG_INSERT[] =
    "insert into auth.orgs (id, name, created_by) values ($1, $2, $3) returning " TS("created_at");
static const char SQL_ORG_LOCK[] = "select name from auth.orgs where id = $1 for update";
static const char SQL_ORG_GET[] = "select o.id, o.name, m.role, " TS(
    "o.created_at") " from auth.orgs o "
                    "join auth.members m on m.org_id = o.id and m.user_id = $2 where o.id = $1";
/* Ordered by id (time-ordered UUIDs): the cursor is the last id seen. */
static const char SQL_ORGS_OF_USER[] =
    "select o.id, o.name, m.role, " TS("o.created_at") " from auth.members m "
                                                       "join auth.orgs o on o.id = m.org_id "
                                                       "where m.user_id = $1 and ($2::uuid is null "
                                                       "or o.id > $2::uuid) order by o.id limit $3";

static const char SQL_MEMBER_ROLE[] =
    "select role from auth.members where org_id = $1 and user_id = $2";
static const char SQL_MEMBER_INSERT[] =
    "insert into auth.members (org_id, user_id, role) values ($1, $2, $3)";
/* The column name is quoted: unquoted, this UPDATE would look like a role
 * switch to the boundary audit (tests/boundary/sql_audit.sh). */
static const char SQL_MEMBER_SET_ROLE[] =
    "update auth.members set \"role\" = $3 where org_id = $1 and user_id = $2";
static const char SQL_MEMBER_DELETE[] =
    "delete from auth.members where org_id = $1 and user_id = $2";
static const char SQL_MEMBER_COUNTS[] =
    "select count(*), count(*) filter (where role = 'owner') from auth.members where org_id = $1";
static const char SQL_MEMBER_GET[] = "select u.id, u.email, u.name, m.role from auth.members m "
                                     "join auth.users u on u.id = m.user_id "
                                     "where m.org_id = $1 and m.user_id = $2";
static const char SQL_MEMBERS_LIST[] = "select u.id, u.email, u.name, m.role from auth.members m "
                                       "join auth.users u on u.id = m.user_id "
                                       "where m.org_id = $1 and ($2::uuid is null or m.user_id > "
                                       "$2::uuid) order by m.user_id limit $3";
static const char SQL_MEMBERS_AT_LEAST[] =
    "select user_id, role from auth.members where org_id = $1 and "
    "(case role when 'owner' then 3 when 'admin' then 2 else 1 end) >= $2::int order by user_id";

/* Invitations. A pending invitation past its expires_at counts for nothing:
 * a new one for the same org and user takes its place. */
#define INVITATION_COLUMNS                                                                         \
    "i.id, i.org_id, o.name, i.user_id, u.email, i.role, i.invited_by, coalesce(b.name, ''), "     \
    "i.status, " TS("i.created_at") ", " TS("i.expires_at") ", i.expires_at <= now()"
#define INVITATION_FROM                                                                            \
    " from auth.invitations i join auth.orgs o on o.id = i.org_id "                                \
    "join auth.users u on u.id = i.user_id left join auth.users b on b.id = i.invited_by "
static const char SQL_INVITATION_INSERT[] =
    "insert into auth.invitations as i (id, org_id, user_id, role, invited_by, expires_at) "
    "values ($1, $2, $3, $4, $5, now() + make_interval(secs => $6::int)) "
    "on conflict (org_id, user_id) where status = 'pending' do update set id = excluded.id, "
    "role = excluded.role, invited_by = excluded.invited_by, created_at = now(), "
    "expires_at = excluded.expires_at where i.expires_at <= now() returning i.id";
static const char SQL_INVITATION_GET[] =
    "select " INVITATION_COLUMNS INVITATION_FROM "where i.id = $1 and i.user_id = $2";
static const char SQL_INVITATION_LOCK[] = "select " INVITATION_COLUMNS INVITATION_FROM
                                          "where i.id = $1 and i.user_id = $2 for update of i";
static const char SQL_INVITATIONS_PENDING_OF_USER[] =
    "select " INVITATION_COLUMNS INVITATION_FROM
    "where i.user_id = $1 and i.status = 'pending' and i.expires_at > now() "
    "order by i.created_at desc, i.id desc limit $2";
static const char SQL_INVITATIONS_PENDING_OF_ORG[] =
    "select " INVITATION_COLUMNS INVITATION_FROM
    "where i.org_id = $1 and i.status = 'pending' and i.expires_at > now() "
    "order by i.created_at desc, i.id desc limit $2";
static const char SQL_INVITATION_REVOKE[] =
    "update auth.invitations set status = 'revoked', decided_at = now() "
    "where id = $1 and org_id = $2 and status = 'pending'";
static const char SQL_INVITATIONS_PENDING_COUNT[] =
    "select count(*) from auth.invitations where org_id = $1 and status = 'pending' "
    "and expires_at > now()";
static const char SQL_INVITATION_DECIDE[] =
    "update auth.invitations set status = $2, decided_at = now() where id = $1 "
    "and status = 'pending'";

static const char SQL_SESSION_INSERT[] =
    "insert into auth.sessions (id, user_id, client_addr, user_agent) values ($1, $2, $3, $4)";
static const char SQL_REFRESH_INSERT[] =
    "insert into auth.refresh_tokens (token_hash, session_id, expires_at) "
    "values ($1, $2, now() + make_interval(secs => $3::int))";
/* The row lock serialises concurrent refreshes of one token: the second
 * waits, then sees the first one's child. The details are read by a second
 * statement, whose snapshot (READ COMMITTED) is taken after the lock was
 * granted and so includes the child the first refresh committed. */
static const char SQL_REFRESH_LOCK[] =
    "select 1 from auth.refresh_tokens where token_hash = $1 for update";
static const char SQL_REFRESH_READ[] =
    "select t.session_id, s.user_id, t.used_at is not null, t.expires_at <= now(), "
    "s.revoked_at is not null, "
    "coalesce(extract(epoch from now() - t.used_at), 0)::float8, coalesce(t.child_sealed, ''), "
    "coalesce((select c.used_at is null from auth.refresh_tokens c "
    "where c.token_hash = t.child_hash), false) "
    "from auth.refresh_tokens t join auth.sessions s on s.id = t.session_id "
    "where t.token_hash = $1";
static const char SQL_REFRESH_ROTATED[] =
    "update auth.refresh_tokens set used_at = now(), child_hash = $2, child_sealed = $3 "
    "where token_hash = $1";
static const char SQL_SESSION_REVOKE[] =
    "update auth.sessions set revoked_at = now(), revoked_reason = $2, redis_synced = false "
    "where id = $1 and revoked_at is null";
static const char SQL_SESSIONS_REVOKE_USER[] =
    "update auth.sessions set revoked_at = now(), revoked_reason = $3, redis_synced = false "
    "where user_id = $1 and revoked_at is null and ($2::uuid is null or id <> $2::uuid) "
    "returning id";
static const char SQL_SESSION_STATE[] =
    "select coalesce((select revoked_at is not null from auth.sessions where id = $1), true), "
    "(select role from auth.members where org_id = $2::uuid and user_id = $3)";
static const char SQL_REVOCATIONS_UNSYNCED[] =
    "select id, extract(epoch from now() - revoked_at)::float8 from auth.sessions "
    "where not redis_synced and revoked_at > now() - make_interval(secs => $1::int) "
    "order by revoked_at limit $2";
static const char SQL_REVOCATIONS_RECENT[] =
    "select id, extract(epoch from now() - revoked_at)::float8 from auth.sessions "
    "where revoked_at > now() - make_interval(secs => $1::int) order by revoked_at limit $2";
/* Old unsynced rows need no push (their tokens expired): mark them too. */
static const char SQL_REVOCATIONS_SYNCED[] =
    "update auth.sessions set redis_synced = true where not redis_synced and "
    "(id = any($1::uuid[]) or revoked_at <= now() - make_interval(secs => $2::int))";

/* Housekeeping, in bounded batches. An expired refresh token is refused as
 * unknown whether or not its row exists, and a session revoked a week ago
 * has no live access token left, so neither row has work to do. */
static const char SQL_PURGE_TOKENS[] =
    "delete from auth.refresh_tokens where token_hash in (select token_hash from "
    "auth.refresh_tokens where expires_at < now() - interval '1 day' limit 1000)";
static const char SQL_PURGE_SESSIONS[] =
    "delete from auth.sessions where id in (select id from auth.sessions "
    "where revoked_at < now() - interval '7 days' and redis_synced limit 1000)";

/* ------------------------------------------------------------ helpers */

static void copy(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src);
}

static void uuid_at(const PGresult *r, int row, int col, bh_uuid *out)
{
    if (!bh_uuid_parse(bh_pg_str(r, row, col), out))
        memset(out, 0, sizeof *out);
}

static void read_user(const PGresult *r, struct auth__user *u)
{
    uuid_at(r, 0, 0, &u->id);
    copy(u->email, sizeof u->email, bh_pg_str(r, 0, 1));
    copy(u->name, sizeof u->name, bh_pg_str(r, 0, 2));
    copy(u->created_at, sizeof u->created_at, bh_pg_str(r, 0, 3));
    copy(u->password_hash, sizeof u->password_hash, bh_pg_str(r, 0, 4));
}

static void read_org(const PGresult *r, int row, struct auth__org *o)
{
    uuid_at(r, row, 0, &o->id);
    copy(o->name, sizeof o->name, bh_pg_str(r, row, 1));
    o->role = auth__role_parse(bh_pg_str(r, row, 2));
    copy(o->created_at, sizeof o->created_at, bh_pg_str(r, row, 3));
}

static void read_member(const PGresult *r, int row, struct auth__member *m)
{
    uuid_at(r, row, 0, &m->user_id);
    copy(m->email, sizeof m->email, bh_pg_str(r, row, 1));
    copy(m->name, sizeof m->name, bh_pg_str(r, row, 2));
    m->role = auth__role_parse(bh_pg_str(r, row, 3));
}

static int affected(PGresult *r)
{
    return atoi(PQcmdTuples(r));
}

/* ------------------------------------------------------------ users */

int auth__repo_user_insert(struct bh_tx *tx, const char *email, const char *name,
                           const char *password_hash, struct auth__user *out)
{
    PGresult *r = NULL;
    bh_uuid id = bh_uuid_v7();
    const char *p[] = {id.str, email, name, password_hash};
    int rc = bh_tx_query(tx, &r, SQL_USER_INSERT, 4, p);
    if (rc != 0)
        return rc;
    out->id = id;
    copy(out->email, sizeof out->email, email);
    copy(out->name, sizeof out->name, name);
    copy(out->created_at, sizeof out->created_at, bh_pg_str(r, 0, 0));
    copy(out->password_hash, sizeof out->password_hash, password_hash);
    PQclear(r);
    return 0;
}

static int user_one(struct bh_tx *tx, const char *sql, const char *key, struct auth__user *out)
{
    PGresult *r = NULL;
    const char *p[] = {key};
    int rc = bh_query(tx, &r, sql, 1, p);
    if (rc != 0)
        return rc;
    rc = PQntuples(r) == 1 ? 0 : BH_ENOTFOUND;
    if (rc == 0)
        read_user(r, out);
    PQclear(r);
    return rc;
}

int auth__repo_user_by_email(const char *email, struct auth__user *out)
{
    return user_one(NULL, SQL_USER_BY_EMAIL, email, out);
}

int auth__repo_user_by_id(struct bh_tx *tx, const bh_uuid *id, struct auth__user *out)
{
    return user_one(tx, SQL_USER_BY_ID, id->str, out);
}

int auth__repo_user_set_name(struct bh_tx *tx, const bh_uuid *id, const char *name,
                             struct auth__user *out)
{
    PGresult *r = NULL;
    const char *p[] = {id->str, name};
    int rc = bh_query(tx, &r, SQL_USER_SET_NAME, 2, p);
    if (rc != 0)
        return rc;
    rc = PQntuples(r) == 1 ? 0 : BH_ENOTFOUND;
    if (rc == 0)
        read_user(r, out);
    PQclear(r);
    return rc;
}

int auth__repo_user_set_password(struct bh_tx *tx, const bh_uuid *id, const char *hash)
{
    PGresult *r = NULL;
    const char *p[] = {id->str, hash};
    int rc = bh_tx_query(tx, &r, SQL_USER_SET_PASSWORD, 2, p);
    if (rc == 0 && affected(r) != 1)
        rc = BH_ENOTFOUND;
    PQclear(r);
    return rc;
}

/* ------------------------------------------------------------ organizations */

int auth__repo_org_insert(struct bh_tx *tx, const char *name, const bh_uuid *created_by,
                          struct auth__org *out)
{
    PGresult *r = NULL;
    bh_uuid id = bh_uuid_v7();
    const char *p[] = {id.str, name, created_by->str};
    int rc = bh_tx_query(tx, &r, SQL_ORG_INSERT, 3, p);
    if (rc != 0)
        return rc;
    out->id = id;
    copy(out->name, sizeof out->name, name);
    out->role = AUTH_ROLE_OWNER;
    copy(out->created_at, sizeof out->created_at, bh_pg_str(r, 0, 0));
    PQclear(r);
    return 0;
}

int auth__repo_org_lock(struct bh_tx *tx, const bh_uuid *org_id, char name[AUTH__NAME_MAX])
{
    PGresult *r = NULL;
    const char *p[] = {org_id->str};
    int rc = bh_tx_query(tx, &r, SQL_ORG_LOCK, 1, p);
    if (rc == 0 && PQntuples(r) != 1)
        rc = BH_ENOTFOUND;
    if (rc == 0 && name)
        copy(name, AUTH__NAME_MAX, bh_pg_str(r, 0, 0));
    PQclear(r);
    return rc;
}

int auth__repo_org_get(const bh_uuid *org_id, const bh_uuid *user_id, struct auth__org *out)
{
    PGresult *r = NULL;
    const char *p[] = {org_id->str, user_id->str};
    int rc = bh_db_query(&r, SQL_ORG_GET, 2, p);
    if (rc != 0)
        return rc;
    rc = PQntuples(r) == 1 ? 0 : BH_ENOTFOUND;
    if (rc == 0)
        read_org(r, 0, out);
    PQclear(r);
    return rc;
}

int auth__repo_orgs_of_user(struct bh_arena *a, const bh_uuid *user_id, const char *after,
                            int limit, struct auth__org **out, int *n)
{
    PGresult *r = NULL;
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit);
    const char *p[] = {user_id->str, after, lim};
    int rc = bh_db_query(&r, SQL_ORGS_OF_USER, 3, p);
    if (rc != 0)
        return rc;
    *n = PQntuples(r);
    *out = bh_arena_alloc(a, sizeof **out * (size_t)(*n ? *n : 1));
    if (!*out) {
        PQclear(r);
        return BH_ENOMEM;
    }
    for (int i = 0; i < *n; i++)
        read_org(r, i, &(*out)[i]);
    PQclear(r);
    return 0;
}

/* ------------------------------------------------------------ members */

int auth__repo_member_role(struct bh_tx *tx, const bh_uuid *org_id, const bh_uuid *user_id,
                           enum auth_role *out)
{
    PGresult *r = NULL;
    const char *p[] = {org_id->str, user_id->str};
    int rc = bh_query(tx, &r, SQL_MEMBER_ROLE, 2, p);
    if (rc != 0)
        return rc;
    *out = PQntuples(r) == 1 ? auth__role_parse(bh_pg_str(r, 0, 0)) : AUTH_ROLE_NONE;
    PQclear(r);
    return 0;
}

int auth__repo_member_insert(struct bh_tx *tx, const bh_uuid *org_id, const bh_uuid *user_id,
                             enum auth_role role)
{
    const char *p[] = {org_id->str, user_id->str, auth_role_name(role)};
    return bh_tx_query(tx, NULL, SQL_MEMBER_INSERT, 3, p);
}

static int change_one(struct bh_tx *tx, const char *sql, int n, const char *const *p)
{
    PGresult *r = NULL;
    int rc = bh_tx_query(tx, &r, sql, n, p);
    if (rc == 0 && affected(r) != 1)
        rc = BH_ENOTFOUND;
    PQclear(r);
    return rc;
}

int auth__repo_member_set_role(struct bh_tx *tx, const bh_uuid *org_id, const bh_uuid *user_id,
                               enum auth_role role)
{
    const char *p[] = {org_id->str, user_id->str, auth_role_name(role)};
    return change_one(tx, SQL_MEMBER_SET_ROLE, 3, p);
}

int auth__repo_member_delete(struct bh_tx *tx, const bh_uuid *org_id, const bh_uuid *user_id)
{
    const char *p[] = {org_id->str, user_id->str};
    return change_one(tx, SQL_MEMBER_DELETE, 2, p);
}

int auth__repo_member_counts(struct bh_tx *tx, const bh_uuid *org_id, int64_t *members,
                             int64_t *owners)
{
    PGresult *r = NULL;
    const char *p[] = {org_id->str};
    int rc = bh_tx_query(tx, &r, SQL_MEMBER_COUNTS, 1, p);
    if (rc != 0)
        return rc;
    *members = strtoll(bh_pg_str(r, 0, 0), NULL, 10);
    *owners = strtoll(bh_pg_str(r, 0, 1), NULL, 10);
    PQclear(r);
    return 0;
}

int auth__repo_member_get(struct bh_tx *tx, const bh_uuid *org_id, const bh_uuid *user_id,
                          struct auth__member *out)
{
    PGresult *r = NULL;
    const char *p[] = {org_id->str, user_id->str};
    int rc = bh_query(tx, &r, SQL_MEMBER_GET, 2, p);
    if (rc != 0)
        return rc;
    rc = PQntuples(r) == 1 ? 0 : BH_ENOTFOUND;
    if (rc == 0)
        read_member(r, 0, out);
    PQclear(r);
    return rc;
}

int auth__repo_members_list(struct bh_arena *a, const bh_uuid *org_id, const char *after, int limit,
                            struct auth__member **out, int *n)
{
    PGresult *r = NULL;
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit);
    const char *p[] = {org_id->str, after, lim};
    int rc = bh_db_query(&r, SQL_MEMBERS_LIST, 3, p);
    if (rc != 0)
        return rc;
    *n = PQntuples(r);
    *out = bh_arena_alloc(a, sizeof **out * (size_t)(*n ? *n : 1));
    if (!*out) {
        PQclear(r);
        return BH_ENOMEM;
    }
    for (int i = 0; i < *n; i++)
        read_member(r, i, &(*out)[i]);
    PQclear(r);
    return 0;
}

int auth__repo_members_each(const bh_uuid *org_id, enum auth_role min_role, auth_member_fn fn,
                            void *arg)
{
    PGresult *r = NULL;
    char min[8];
    snprintf(min, sizeof min, "%d", (int)min_role);
    const char *p[] = {org_id->str, min};
    int rc = bh_db_query(&r, SQL_MEMBERS_AT_LEAST, 2, p);
    if (rc != 0)
        return rc;
    /* The connection is back in the pool before fn runs: fn may query. */
    for (int i = 0, n = PQntuples(r); i < n && rc == 0; i++) {
        bh_uuid id;
        uuid_at(r, i, 0, &id);
        rc = fn(&id, auth__role_parse(bh_pg_str(r, i, 1)), arg);
    }
    PQclear(r);
    return rc;
}

/* ------------------------------------------------------------ sessions */

/* ------------------------------------------------------------ invitations */

static void read_invitation(const PGresult *r, int row, struct auth__invitation *v)
{
    uuid_at(r, row, 0, &v->id);
    uuid_at(r, row, 1, &v->org_id);
    copy(v->org_name, sizeof v->org_name, bh_pg_str(r, row, 2));
    uuid_at(r, row, 3, &v->user_id);
    copy(v->email, sizeof v->email, bh_pg_str(r, row, 4));
    v->role = auth__role_parse(bh_pg_str(r, row, 5));
    uuid_at(r, row, 6, &v->invited_by);
    copy(v->invited_by_name, sizeof v->invited_by_name, bh_pg_str(r, row, 7));
    copy(v->status, sizeof v->status, bh_pg_str(r, row, 8));
    copy(v->created_at, sizeof v->created_at, bh_pg_str(r, row, 9));
    copy(v->expires_at, sizeof v->expires_at, bh_pg_str(r, row, 10));
    v->expired = strcmp(bh_pg_str(r, row, 11), "t") == 0;
}

int auth__repo_invitation_insert(struct bh_tx *tx, const bh_uuid *org_id, const bh_uuid *user_id,
                                 enum auth_role role, const bh_uuid *invited_by, int ttl_s,
                                 bh_uuid *id_out)
{
    PGresult *r = NULL;
    bh_uuid id = bh_uuid_v7();
    char ttl[16];
    snprintf(ttl, sizeof ttl, "%d", ttl_s);
    const char *p[] = {id.str,          org_id->str, user_id->str, auth_role_name(role),
                       invited_by->str, ttl};
    int rc = bh_tx_query(tx, &r, SQL_INVITATION_INSERT, 6, p);
    if (rc != 0)
        return rc;
    /* No row: a pending invitation that has not expired is in the way. */
    rc = PQntuples(r) == 1 ? 0 : BH_ECONFLICT;
    if (rc == 0)
        uuid_at(r, 0, 0, id_out);
    PQclear(r);
    return rc;
}

int auth__repo_invitation_get(struct bh_tx *tx, const bh_uuid *id, const bh_uuid *user_id,
                              bool lock, struct auth__invitation *out)
{
    PGresult *r = NULL;
    const char *p[] = {id->str, user_id->str};
    int rc = bh_query(tx, &r, lock ? SQL_INVITATION_LOCK : SQL_INVITATION_GET, 2, p);
    if (rc != 0)
        return rc;
    if (PQntuples(r) == 1)
        read_invitation(r, 0, out);
    else
        rc = BH_ENOTFOUND;
    PQclear(r);
    return rc;
}

int auth__repo_invitations_pending(struct bh_arena *a, const bh_uuid *user_id,
                                   const bh_uuid *org_id, int limit, struct auth__invitation **out,
                                   int *n)
{
    PGresult *r = NULL;
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit);
    const char *p[] = {user_id ? user_id->str : org_id->str, lim};
    int rc = bh_db_query(
        &r, user_id ? SQL_INVITATIONS_PENDING_OF_USER : SQL_INVITATIONS_PENDING_OF_ORG, 2, p);
    if (rc != 0)
        return rc;
    *n = PQntuples(r);
    *out = bh_arena_alloc(a, sizeof **out * (size_t)(*n ? *n : 1));
    if (!*out) {
        PQclear(r);
        return BH_ENOMEM;
    }
    for (int i = 0; i < *n; i++)
        read_invitation(r, i, &(*out)[i]);
    PQclear(r);
    return 0;
}

int auth__repo_invitations_pending_count(struct bh_tx *tx, const bh_uuid *org_id, int64_t *n)
{
    PGresult *r = NULL;
    const char *p[] = {org_id->str};
    int rc = bh_tx_query(tx, &r, SQL_INVITATIONS_PENDING_COUNT, 1, p);
    if (rc != 0)
        return rc;
    *n = strtoll(bh_pg_str(r, 0, 0), NULL, 10);
    PQclear(r);
    return 0;
}

int auth__repo_invitation_revoke(const bh_uuid *org_id, const bh_uuid *id)
{
    PGresult *r = NULL;
    const char *p[] = {id->str, org_id->str};
    int rc = bh_db_query(&r, SQL_INVITATION_REVOKE, 2, p);
    if (rc == 0 && affected(r) != 1)
        rc = BH_ENOTFOUND;
    PQclear(r);
    return rc;
}

int auth__repo_invitation_decide(struct bh_tx *tx, const bh_uuid *id, bool accepted)
{
    const char *p[] = {id->str, accepted ? "accepted" : "declined"};
    return change_one(tx, SQL_INVITATION_DECIDE, 2, p);
}

int auth__repo_session_insert(struct bh_tx *tx, const bh_uuid *user_id, const char *client_addr,
                              const char *user_agent, bh_uuid *sid_out)
{
    bh_uuid sid = bh_uuid_v7();
    const char *p[] = {sid.str, user_id->str, client_addr, user_agent};
    int rc = bh_tx_query(tx, NULL, SQL_SESSION_INSERT, 4, p);
    if (rc == 0)
        *sid_out = sid;
    return rc;
}

int auth__repo_refresh_insert(struct bh_tx *tx, const char *hash, const bh_uuid *sid, int ttl_s)
{
    char ttl[16];
    snprintf(ttl, sizeof ttl, "%d", ttl_s);
    const char *p[] = {hash, sid->str, ttl};
    return bh_tx_query(tx, NULL, SQL_REFRESH_INSERT, 3, p);
}

static bool truth(const PGresult *r, int row, int col)
{
    return bh_pg_str(r, row, col)[0] == 't';
}

int auth__repo_refresh_lock(struct bh_tx *tx, const char *hash, struct auth__refresh_row *out)
{
    PGresult *r = NULL;
    const char *p[] = {hash};
    int rc = bh_tx_query(tx, &r, SQL_REFRESH_LOCK, 1, p);
    if (rc != 0)
        return rc;
    rc = PQntuples(r) == 1 ? 0 : BH_ENOTFOUND;
    PQclear(r);
    r = NULL;
    if (rc == 0)
        rc = bh_tx_query(tx, &r, SQL_REFRESH_READ, 1, p);
    if (rc == 0 && PQntuples(r) != 1)
        rc = BH_ENOTFOUND;
    if (rc == 0) {
        uuid_at(r, 0, 0, &out->session_id);
        uuid_at(r, 0, 1, &out->user_id);
        out->used = truth(r, 0, 2);
        out->expired = truth(r, 0, 3);
        out->session_revoked = truth(r, 0, 4);
        out->since_used_s = strtod(bh_pg_str(r, 0, 5), NULL);
        copy(out->child_sealed, sizeof out->child_sealed, bh_pg_str(r, 0, 6));
        out->child_current = truth(r, 0, 7);
    }
    PQclear(r);
    return rc;
}

int auth__repo_refresh_rotated(struct bh_tx *tx, const char *hash, const char *child_hash,
                               const char *child_sealed)
{
    const char *p[] = {hash, child_hash, child_sealed};
    return change_one(tx, SQL_REFRESH_ROTATED, 3, p);
}

int auth__repo_session_revoke(struct bh_tx *tx, const bh_uuid *sid, const char *reason)
{
    const char *p[] = {sid->str, reason};
    return bh_tx_query(tx, NULL, SQL_SESSION_REVOKE, 2, p);
}

static int read_ids(struct bh_arena *a, PGresult *r, bh_uuid **ids, double **ages, int *n)
{
    *n = PQntuples(r);
    *ids = bh_arena_alloc(a, sizeof **ids * (size_t)(*n ? *n : 1));
    if (ages)
        *ages = bh_arena_alloc(a, sizeof **ages * (size_t)(*n ? *n : 1));
    if (!*ids || (ages && !*ages))
        return BH_ENOMEM;
    for (int i = 0; i < *n; i++) {
        uuid_at(r, i, 0, &(*ids)[i]);
        if (ages)
            (*ages)[i] = strtod(bh_pg_str(r, i, 1), NULL);
    }
    return 0;
}

int auth__repo_sessions_revoke_user(struct bh_tx *tx, struct bh_arena *a, const bh_uuid *user_id,
                                    const bh_uuid *keep, const char *reason, bh_uuid **sids, int *n)
{
    PGresult *r = NULL;
    const char *p[] = {user_id->str, keep ? keep->str : NULL, reason};
    int rc = bh_tx_query(tx, &r, SQL_SESSIONS_REVOKE_USER, 3, p);
    if (rc == 0)
        rc = read_ids(a, r, sids, NULL, n);
    PQclear(r);
    return rc;
}

int auth__repo_session_state(const bh_uuid *sid, const bh_uuid *org_id, const bh_uuid *user_id,
                             bool *revoked, enum auth_role *role)
{
    PGresult *r = NULL;
    const char *p[] = {sid->str, org_id ? org_id->str : NULL, user_id->str};
    int rc = bh_db_query(&r, SQL_SESSION_STATE, 3, p);
    if (rc != 0)
        return rc;
    *revoked = truth(r, 0, 0);
    if (role)
        *role = bh_pg_null(r, 0, 1) ? AUTH_ROLE_NONE : auth__role_parse(bh_pg_str(r, 0, 1));
    PQclear(r);
    return 0;
}

int auth__repo_revocations(struct bh_arena *a, bool all_recent, int window_s, int max,
                           bh_uuid **sids, double **age_s, int *n)
{
    PGresult *r = NULL;
    char w[16], m[16];
    snprintf(w, sizeof w, "%d", window_s);
    snprintf(m, sizeof m, "%d", max);
    const char *p[] = {w, m};
    int rc = bh_db_query(&r, all_recent ? SQL_REVOCATIONS_RECENT : SQL_REVOCATIONS_UNSYNCED, 2, p);
    if (rc == 0)
        rc = read_ids(a, r, sids, age_s, n);
    PQclear(r);
    return rc;
}

int auth__repo_revocations_synced(const bh_uuid *sids, int n)
{
    /* A Postgres array literal of UUIDs: {a,b,c}; UUID text needs no quoting. */
    size_t len = 3 + (size_t)n * 37;
    char *arr = malloc(len);
    if (!arr)
        return BH_ENOMEM;
    char *w = arr;
    *w++ = '{';
    for (int i = 0; i < n; i++) {
        if (i)
            *w++ = ',';
        memcpy(w, sids[i].str, 36);
        w += 36;
    }
    *w++ = '}';
    *w = '\0';
    char window[16];
    snprintf(window, sizeof window, "%d", auth__settings.access_ttl_s + 60);
    const char *p[] = {arr, window};
    int rc = bh_db_query(NULL, SQL_REVOCATIONS_SYNCED, 2, p);
    free(arr);
    return rc;
}

int auth__repo_purge(int *deleted)
{
    PGresult *r = NULL;
    *deleted = 0;
    int rc = bh_db_query(&r, SQL_PURGE_TOKENS, 0, NULL);
    if (rc == 0)
        *deleted += affected(r);
    PQclear(r);
    r = NULL;
    if (rc == 0)
        rc = bh_db_query(&r, SQL_PURGE_SESSIONS, 0, NULL);
    if (rc == 0)
        *deleted += affected(r);
    PQclear(r);
    return rc;
}
