/* What the auth module's own files share with each other, and nothing else
 * sees: the sealed object keeps only auth.h's names global. Every name here
 * is auth__ (double underscore) so the boundary audit can tell it from API. */
#ifndef AUTH_INTERNAL_H
#define AUTH_INTERNAL_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "platform/arena.h"
#include "platform/http.h"
#include "platform/page.h"
#include "platform/refusal.h"
#include "platform/uuid.h"

struct bh_tx;

/* ------------------------------------------------------------ settings */

/* Read once by auth_module.init from the environment (settings.c); read-only after. */
struct auth__settings {
    char issuer[128];       /* BULKHEAD_JWT_ISSUER, default "bulkhead" */
    char audience[128];     /* BULKHEAD_JWT_AUDIENCE, default "bulkhead-api" */
    int access_ttl_s;       /* BULKHEAD_ACCESS_TOKEN_TTL_S, default 900 */
    int refresh_ttl_s;      /* BULKHEAD_REFRESH_TOKEN_TTL_S, default 30 days */
    int refresh_grace_s;    /* BULKHEAD_REFRESH_GRACE_S, default 10 */
    int member_cache_ttl_s; /* BULKHEAD_AUTH_MEMBER_CACHE_TTL_S, default 60 */
    int login_account_max;  /* failed logins per account per window, default 5 */
    int login_addr_max;     /* failed logins per client address per window, default 100 */
    int login_window_s;     /* BULKHEAD_LOGIN_WINDOW_S, default 900 */
    int hash_slots;         /* BULKHEAD_AUTH_HASH_SLOTS: password pool threads, default 2 */
    int hash_queue;         /* BULKHEAD_AUTH_HASH_QUEUE: requests allowed to wait, default 4 */
    int hash_wait_ms;       /* BULKHEAD_AUTH_HASH_WAIT_MS: longest wait in the queue, default 500 */
    int hash_per_client; /* BULKHEAD_AUTH_HASH_PER_CLIENT: places one address may hold, default 2 */
    unsigned long long opslimit; /* BULKHEAD_ARGON2_OPSLIMIT, default 2 (minimum 2) */
    size_t memlimit;             /* BULKHEAD_ARGON2_MEMLIMIT_KIB * 1024, default 19 MiB (minimum) */
    int deny_sync_ms; /* BULKHEAD_AUTH_DENY_SYNC_MS: denylist reconciler period, default 1000 */
};
extern struct auth__settings auth__settings;
/* Reads them (settings.c); called once, by auth's init. */
void auth__settings_load(void);

/* ------------------------------------------------------------ tokens (token.c) */

/* What a verified access token says. */
struct auth__claims {
    bh_uuid sub; /* the user */
    bh_uuid sid; /* the session (refresh-token family) that minted it */
    bh_uuid jti; /* this token */
    long iat, exp;
    long nbf;     /* when has_nbf */
    bool has_nbf; /* the token carries nbf */
};

/* The key and the names a token must carry. Borrowed strings. */
struct auth__jwt_keys {
    const unsigned char *secret;
    size_t secret_len;
    const char *issuer;
    const char *audience;
    long max_ttl_s; /* the longest lifetime we issue: a later exp is refused */
};

/* Signs an HS256 access token for (sub, sid) valid from now for ttl_s.
 * *out is malloc'd (caller frees); jti_out receives the token id.
 * 0, BH_ENOMEM or BH_EINTERNAL. */
int auth__jwt_sign(const struct auth__jwt_keys *k, const bh_uuid *sub, const bh_uuid *sid, long now,
                   long ttl_s, char **out, bh_uuid *jti_out);
/* Verifies token: HS256 only, our key, no member twice in header or
 * payload, exp present, in the future and at most max_ttl_s (+ 60 s of
 * skew) ahead, nbf (when present) passed, iat not ahead, iss and aud ours,
 * sub/sid/jti UUIDs. 0 with *out, or BH_EUNAUTH. Never logs the token. */
int auth__jwt_verify(const struct auth__jwt_keys *k, const char *token, long now,
                     struct auth__claims *out);

enum { AUTH__REFRESH_LEN = 43, AUTH__HASH_HEX = 64, AUTH__SEALED_HEX = 2 * (24 + 16 + 43) };
/* A new opaque refresh token: base64url (no padding) of 256 random bits. */
void auth__refresh_new(char out[AUTH__REFRESH_LEN + 1]);
/* The SHA-256 of token, as lower-case hex: the only form the database keeps. */
void auth__refresh_hash(const char *token, char out[AUTH__HASH_HEX + 1]);
/* Seals child under a key derived from parent (only a holder of the parent
 * can open it), so a replay of the parent within the grace window can be
 * answered with the same child without storing any usable token. */
int auth__refresh_seal(const char *parent, const char *child, char out[AUTH__SEALED_HEX + 1]);
int auth__refresh_unseal(const char *parent, const char *sealed, char child[AUTH__REFRESH_LEN + 1]);

/* ------------------------------------------------------------ verified tokens (token_cache.c) */

enum { AUTH__TOKEN_CACHE_MAX = 65536 };
/* A bounded table of tokens auth__jwt_verify() accepted, keyed by a keyed
 * digest of their bytes: a token sent again skips the cryptography and the
 * parsing, not the time rules (checked at each use) nor revocation (the
 * caller's business, per request). */
struct auth__token_cache;
/* slots: a power of two up to AUTH__TOKEN_CACHE_MAX; NULL otherwise or on OOM. */
struct auth__token_cache *auth__token_cache_new(unsigned slots);
void auth__token_cache_free(struct auth__token_cache *c);
/* True with *out when token was put in and its claims hold at now. */
bool auth__token_cache_get(struct auth__token_cache *c, const struct auth__jwt_keys *k,
                           const char *token, long now, struct auth__claims *out);
/* Keeps claims (which auth__jwt_verify() just gave for token), replacing
 * whatever held the token's slot. */
void auth__token_cache_put(struct auth__token_cache *c, const char *token,
                           const struct auth__claims *claims);
/* Tokens held now (at most the number of slots). */
unsigned auth__token_cache_count(struct auth__token_cache *c);
/* The time rules of a verified token at now: exp not passed and not beyond
 * what we issue, iat and nbf (when present) not ahead, with 60 s of skew. */
bool auth__claims_hold(const struct auth__jwt_keys *k, const struct auth__claims *c, long now);

/* The keys from the configuration (the secret lives for the process). */
const struct auth__jwt_keys *auth__keys(void);

/* ------------------------------------------------------------ passwords (password.c) */

enum { AUTH__PWHASH_MAX = crypto_pwhash_STRBYTES };
/* The handler pool (a bulkhead) of the routes that hash passwords: only
 * their handlers may call the two functions below. */
extern struct bh_handler_pool auth__password_pool;
/* Sizes the pool from the settings and computes the dummy hash. */
int auth__password_init(void);
/* Hashes password (Argon2id). 0 or BH_ENOMEM. */
int auth__password_hash(const char *password, char out[AUTH__PWHASH_MAX]);
/* Verifies password against encoded, or against a dummy hash when encoded is
 * NULL (unknown user: same cost, always false). 0 with *ok. */
int auth__password_verify(const char *encoded, const char *password, bool *ok);
/* True when encoded was made with other costs than the configured ones. */
bool auth__password_outdated(const char *encoded);

/* ------------------------------------------------------------ login limiter (ratelimit.c) */

struct auth__rl {
    bool limited;
    int limit;     /* the tighter of the two limits that applies */
    int remaining; /* failures left before 429 */
    int reset_s;   /* seconds until the window resets */
};
int auth__ratelimit_init(void);
void auth__ratelimit_shutdown(void);
/* Admits one password check for the account (lower-cased email) from the
 * client address, or refuses it (out->limited) when either is at its limit:
 * decided and counted as a failure in one atomic step, before any hashing.
 * Never fails: with Redis down it answers from an in-process limiter. */
void auth__login_reserve(const char *email, const char *addr, struct auth__rl *out);
/* Settles an admitted attempt that did not fail: succeeded (the account
 * starts afresh and the address gets its count back) or never checked a
 * password (both get it back). A failed attempt needs no settling. */
void auth__login_settle(const char *email, const char *addr, bool succeeded);
/* Sets RateLimit-* (and Retry-After when limited) on the reply. */
void auth__rl_headers(struct bh_req *req, const struct auth__rl *rl);

/* ------------------------------------------------------------ revocation (revoke.c) */

int auth__revoke_init(void);
void auth__revoke_shutdown(void);
/* After the commit that revoked sessions: deny their access tokens in Redis
 * (auth:deny:<sid>, and auth:deny:<jti> for jti when not NULL) until they
 * expire. When Redis is down, the reconciler pushes them later and until it
 * has, this process checks revocations in Postgres. */
void auth__revoke_publish(const bh_uuid *sids, int n, const bh_uuid *jti);
/* Is the session revoked? Redis answer reused when the caller already has it
 * (see authn.c). Reads Postgres when Redis cannot be trusted. */
bool auth__deny_trusted(void);
/* Asks the reconciler to run soon (the denylist looked incomplete). */
void auth__revoke_kick(void);
/* A cache key to delete (again) on the reconciler's next pass: the second
 * half of a delayed double delete, and the retry when Redis was down. */
void auth__revoke_drop_later(const char *key);

/* ------------------------------------------------------------ membership cache (authn.c) */

/* Drops auth:member:<org>:<user> after a commit that changed it. */
void auth__member_cache_drop(const bh_uuid *org_id, const bh_uuid *user_id);
/* The principal of an authenticated request (authn.c fills it). */
const struct auth__claims *auth__request_claims(struct bh_req *req);

/* ------------------------------------------------------------ roles (roles.c) */

/* Role names <-> enum (auth_role_name() is the public half); AUTH_ROLE_NONE
 * for an unknown name. Pure: every file may call it, it calls none. */
enum auth_role auth__role_parse(const char *name);

/* ------------------------------------------------------------ data (repo.c) */

enum { AUTH__TS_LEN = 40, AUTH__NAME_MAX = AUTH_NAME_SIZE, AUTH__EMAIL_MAX = AUTH_EMAIL_SIZE };

struct auth__user {
    bh_uuid id;
    char email[AUTH__EMAIL_MAX];
    char name[AUTH__NAME_MAX];
    char created_at[AUTH__TS_LEN];
    char password_hash[AUTH__PWHASH_MAX];
};

struct auth__org {
    bh_uuid id;
    char name[AUTH__NAME_MAX];
    enum auth_role role; /* the caller's */
    char created_at[AUTH__TS_LEN];
};

struct auth__member {
    bh_uuid user_id;
    char email[AUTH__EMAIL_MAX];
    char name[AUTH__NAME_MAX];
    enum auth_role role;
};

/* An invitation to join an organization (auth.invitations). */
struct auth__invitation {
    bh_uuid id;
    bh_uuid org_id;
    char org_name[AUTH__NAME_MAX];
    bh_uuid user_id; /* the invitee */
    char email[AUTH__EMAIL_MAX];
    enum auth_role role;
    bh_uuid invited_by; /* nil when that user is gone */
    char invited_by_name[AUTH__NAME_MAX];
    char status[16]; /* pending, accepted, declined, revoked */
    char created_at[AUTH__TS_LEN];
    char expires_at[AUTH__TS_LEN];
    bool expired; /* pending past expires_at: counts for nothing */
};
/* How long an invitation may wait for its answer. */
enum { AUTH__INVITATION_TTL_S = 7 * 86400, AUTH__INVITATIONS_MAX = 100 };

/* A refresh token row, locked (FOR UPDATE) by auth__repo_refresh_lock. */
struct auth__refresh_row {
    bh_uuid session_id;
    bh_uuid user_id;
    bool used; /* already rotated */
    bool expired;
    bool session_revoked;
    bool child_current;  /* its child has not been rotated in turn */
    double since_used_s; /* seconds since it was rotated */
    char child_sealed[AUTH__SEALED_HEX + 1];
};

int auth__repo_user_insert(struct bh_tx *tx, const char *email, const char *name,
                           const char *password_hash, struct auth__user *out);
int auth__repo_user_by_email(const char *email, struct auth__user *out);
int auth__repo_user_by_id(struct bh_tx *tx, const bh_uuid *id, struct auth__user *out);
int auth__repo_user_set_name(struct bh_tx *tx, const bh_uuid *id, const char *name,
                             struct auth__user *out);
int auth__repo_user_set_password(struct bh_tx *tx, const bh_uuid *id, const char *hash);

int auth__repo_org_insert(struct bh_tx *tx, const char *name, const bh_uuid *created_by,
                          struct auth__org *out);
/* Locks the org row (serialising its membership changes); name may be NULL. */
int auth__repo_org_lock(struct bh_tx *tx, const bh_uuid *org_id, char name[AUTH__NAME_MAX]);
int auth__repo_org_get(const bh_uuid *org_id, const bh_uuid *user_id, struct auth__org *out);
int auth__repo_orgs_of_user(struct bh_arena *a, const bh_uuid *user_id, const char *after,
                            int limit, struct auth__org **out, int *n);

int auth__repo_member_role(struct bh_tx *tx, const bh_uuid *org_id, const bh_uuid *user_id,
                           enum auth_role *out);
int auth__repo_member_insert(struct bh_tx *tx, const bh_uuid *org_id, const bh_uuid *user_id,
                             enum auth_role role);
int auth__repo_member_set_role(struct bh_tx *tx, const bh_uuid *org_id, const bh_uuid *user_id,
                               enum auth_role role);
int auth__repo_member_delete(struct bh_tx *tx, const bh_uuid *org_id, const bh_uuid *user_id);
int auth__repo_member_counts(struct bh_tx *tx, const bh_uuid *org_id, int64_t *members,
                             int64_t *owners);
int auth__repo_member_get(struct bh_tx *tx, const bh_uuid *org_id, const bh_uuid *user_id,
                          struct auth__member *out);
int auth__repo_members_list(struct bh_arena *a, const bh_uuid *org_id, const char *after, int limit,
                            struct auth__member **out, int *n);
int auth__repo_members_each(const bh_uuid *org_id, enum auth_role min_role, auth_member_fn fn,
                            void *arg);

/* A new pending invitation (renewing an expired one); BH_ECONFLICT when a
 * live pending one for this org and user exists. */
int auth__repo_invitation_insert(struct bh_tx *tx, const bh_uuid *org_id, const bh_uuid *user_id,
                                 enum auth_role role, const bh_uuid *invited_by, int ttl_s,
                                 bh_uuid *id_out);
/* The invitation id of user_id (FOR UPDATE when lock); BH_ENOTFOUND when
 * it is not theirs. */
int auth__repo_invitation_get(struct bh_tx *tx, const bh_uuid *id, const bh_uuid *user_id,
                              bool lock, struct auth__invitation *out);
/* Live pending invitations, newest first, at most limit: user_id's, or
 * (user_id NULL) org_id's. */
int auth__repo_invitations_pending(struct bh_arena *a, const bh_uuid *user_id,
                                   const bh_uuid *org_id, int limit, struct auth__invitation **out,
                                   int *n);
/* Revokes a pending invitation of org_id; BH_ENOTFOUND when there is none. */
int auth__repo_invitation_revoke(const bh_uuid *org_id, const bh_uuid *id);
/* Live pending invitations of org_id: seats they would take. */
int auth__repo_invitations_pending_count(struct bh_tx *tx, const bh_uuid *org_id, int64_t *n);
/* Marks a pending invitation accepted or declined. */
int auth__repo_invitation_decide(struct bh_tx *tx, const bh_uuid *id, bool accepted);

int auth__repo_session_insert(struct bh_tx *tx, const bh_uuid *user_id, const char *client_addr,
                              const char *user_agent, bh_uuid *sid_out);
int auth__repo_refresh_insert(struct bh_tx *tx, const char *hash, const bh_uuid *sid, int ttl_s);
int auth__repo_refresh_lock(struct bh_tx *tx, const char *hash, struct auth__refresh_row *out);
int auth__repo_refresh_rotated(struct bh_tx *tx, const char *hash, const char *child_hash,
                               const char *child_sealed);
int auth__repo_session_revoke(struct bh_tx *tx, const bh_uuid *sid, const char *reason);
/* Revokes the user's live sessions (except keep, when not NULL); the revoked
 * ids go to an arena array. */
int auth__repo_sessions_revoke_user(struct bh_tx *tx, struct bh_arena *a, const bh_uuid *user_id,
                                    const bh_uuid *keep, const char *reason, bh_uuid **sids,
                                    int *n);
/* Session revoked (or unknown) and, when org_id is not NULL, the role. */
int auth__repo_session_state(const bh_uuid *sid, const bh_uuid *org_id, const bh_uuid *user_id,
                             bool *revoked, enum auth_role *role);
/* Revocations Redis has not been told about (or all recent ones when
 * all_recent), at most max, revoked within the last window_s. */
int auth__repo_revocations(struct bh_arena *a, bool all_recent, int window_s, int max,
                           bh_uuid **sids, double **age_s, int *n);
int auth__repo_revocations_synced(const bh_uuid *sids, int n);
/* Deletes a batch of long-expired refresh tokens and long-revoked sessions. */
int auth__repo_purge(int *deleted);

/* ------------------------------------------------------------ events (events.c) */

int auth__emit_signed_up(struct bh_tx *tx, const struct auth__user *u, const bh_uuid *org_id);
int auth__emit_org_created(struct bh_tx *tx, const struct auth__org *org, const bh_uuid *owner);
int auth__emit_invited(struct bh_tx *tx, const struct auth__invitation *inv);
int auth__emit_member(struct bh_tx *tx, const char *type, const bh_uuid *org_id,
                      const char *org_name, const bh_uuid *actor, const bh_uuid *user_id,
                      enum auth_role role, enum auth_role previous);
extern const char *const auth__emits[];

/* ------------------------------------------------------------ rules (service.c) */

/* What signup, login and refresh hand back. Strings are request-arena. */
struct auth__tokens {
    const char *access_token;
    const char *refresh_token;
    int expires_in;
    bh_uuid session_id;
};

struct auth__signup_in {
    const char *email; /* normalised */
    const char *password;
    const char *name;
    const char *client_addr, *user_agent;
};

int auth__signup(struct bh_arena *a, const struct auth__signup_in *in, struct auth__user *user,
                 struct auth__org *org, struct auth__tokens *tok);
/* 0, BH_EUNAUTH (bad credentials), BH_EUNAVAILABLE. */
int auth__login(struct bh_arena *a, const char *email, const char *password,
                const char *client_addr, const char *user_agent, struct auth__user *user,
                struct auth__tokens *tok);

enum auth__refresh_outcome { AUTH__REFRESH_OK, AUTH__REFRESH_INVALID, AUTH__REFRESH_REUSED };
int auth__refresh(struct bh_arena *a, const char *refresh_token, struct auth__tokens *tok,
                  enum auth__refresh_outcome *outcome);
int auth__logout(const struct auth__claims *c, bool all_sessions);
/* 0, BH_EUNAUTH (current password wrong), BH_EUNAVAILABLE. */
int auth__change_password(struct bh_arena *a, const struct auth__claims *c, const char *current,
                          const char *next);
int auth__rename(const bh_uuid *user_id, const char *name, struct auth__user *out);

int auth__org_create(const bh_uuid *user_id, const char *name, struct auth__org *out);

/* Reads, for the handlers and the public API: never a password hash out. */
/* A user by id. 0, BH_ENOTFOUND, or BH_EUNAVAILABLE. */
int auth__user_get(const bh_uuid *user_id, struct auth__user *out);
/* The organizations user_id belongs to, after the id `after` (may be NULL),
 * at most limit, into an arena array. */
int auth__orgs_of_user(struct bh_arena *a, const bh_uuid *user_id, const char *after, int limit,
                       struct auth__org **out, int *n);
/* One organization as user_id (a member) sees it. */
int auth__org_get(const bh_uuid *org_id, const bh_uuid *user_id, struct auth__org *out);
/* The members of org_id after the user id `after` (may be NULL), at most limit. */
int auth__members_list(struct bh_arena *a, const bh_uuid *org_id, const char *after, int limit,
                       struct auth__member **out, int *n);

/* Invites the user with email into p's org (member.invited); nothing about
 * the membership changes until they accept. */
int auth__invite(const struct auth_principal *p, const char *email, enum auth_role role,
                 struct auth__invitation *out, struct bh_refusal *why);
/* The invitee's answer: accepting makes the membership (member.added, with
 * the inviter as its actor); declining only records the answer. */
int auth__invitation_accept(const bh_uuid *user_id, const bh_uuid *id, bh_uuid *org_out,
                            struct bh_refusal *why);
int auth__invitation_decline(const bh_uuid *user_id, const bh_uuid *id, struct bh_refusal *why);
int auth__member_update(const struct auth_principal *p, const bh_uuid *user_id, enum auth_role role,
                        struct auth__member *out, struct bh_refusal *why);
int auth__member_remove(const struct auth_principal *p, const bh_uuid *user_id,
                        struct bh_refusal *why);

/* Email normalisation: trimmed, lower-cased copy in the arena, or NULL when
 * it is not a plausible address. */
const char *auth__email_normalize(struct bh_arena *a, const char *email);

/* Hooks into the rest of the system, registered by the composition root. */
int auth__call_org_created(struct bh_tx *tx, const bh_uuid *org_id);
int auth__call_seat_check(struct bh_tx *tx, const bh_uuid *org_id, int64_t current, int64_t *limit);

/* ------------------------------------------------------------ HTTP (http.c)
 * The handlers module.c mounts; the *_admit ones run on the HTTP thread
 * before the password pool (struct bh_route.admit). */
int auth__http_signup(struct bh_req *req);
int auth__http_login_admit(struct bh_req *req);
int auth__http_login(struct bh_req *req);
int auth__http_refresh(struct bh_req *req);
int auth__http_logout(struct bh_req *req);
int auth__http_logout_all(struct bh_req *req);
int auth__http_me_get(struct bh_req *req);
int auth__http_me_patch(struct bh_req *req);
int auth__http_me_password_admit(struct bh_req *req);
int auth__http_me_password(struct bh_req *req);
int auth__http_orgs_create(struct bh_req *req);
int auth__http_orgs_list(struct bh_req *req);
int auth__http_orgs_get(struct bh_req *req);
int auth__http_members_list(struct bh_req *req);
int auth__http_members_add(struct bh_req *req);
int auth__http_members_update(struct bh_req *req);
int auth__http_members_remove(struct bh_req *req);
int auth__http_org_invitations_list(struct bh_req *req);
int auth__http_org_invitation_revoke(struct bh_req *req);
int auth__http_invitations_list(struct bh_req *req);
int auth__http_invitation_accept(struct bh_req *req);
int auth__http_invitation_decline(struct bh_req *req);

#endif
