/* The auth module's descriptor: what the composition root mounts and runs,
 * and the settings read once at start. It must never start serving with a
 * JWT secret shorter than 32 bytes or Argon2 parameters below the minimum. */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "platform/config.h"
#include "platform/err.h"
#include "platform/log.h"
#include "platform/nearcache.h"

/* The password routes hash on auth__password_pool, after their admission
 * check (the login limiter) on the HTTP thread. */
static const struct bh_route routes[] = {
    {"POST", "/v1/auth/signup", auth__http_signup, 0, &auth__password_pool},
    {"POST", "/v1/auth/login", auth__http_login, 0, &auth__password_pool, auth__http_login_admit},
    {"POST", "/v1/auth/refresh", auth__http_refresh, 0},
    {"POST", "/v1/auth/logout", auth__http_logout, 0},
    {"POST", "/v1/auth/logout-all", auth__http_logout_all, 0},
    {"GET", "/v1/me", auth__http_me_get, 0},
    {"PATCH", "/v1/me", auth__http_me_patch, 0},
    {"POST", "/v1/me/password", auth__http_me_password, 0, &auth__password_pool,
     auth__http_me_password_admit},
    {"POST", "/v1/orgs", auth__http_orgs_create, 0},
    {"GET", "/v1/orgs", auth__http_orgs_list, 0},
    {"GET", "/v1/orgs/{org}", auth__http_orgs_get, 0},
    {"GET", "/v1/orgs/{org}/members", auth__http_members_list, 0},
    {"POST", "/v1/orgs/{org}/members", auth__http_members_add, 0},
    {"PATCH", "/v1/orgs/{org}/members/{user}", auth__http_members_update, 0},
    {"DELETE", "/v1/orgs/{org}/members/{user}", auth__http_members_remove, 0},
    {"GET", "/v1/orgs/{org}/invitations", auth__http_org_invitations_list, 0},
    {"DELETE", "/v1/orgs/{org}/invitations/{id}", auth__http_org_invitation_revoke, 0},
    {"GET", "/v1/me/invitations", auth__http_invitations_list, 0},
    {"POST", "/v1/me/invitations/{id}/accept", auth__http_invitation_accept, 0},
    {"POST", "/v1/me/invitations/{id}/decline", auth__http_invitation_decline, 0},
};

static int auth_init(void)
{
    auth__settings_load();
    const char *secret = bh_config()->jwt_secret;
    if (!secret || strlen(secret) < 32) {
        bh_log_error("the JWT secret must be at least 32 bytes");
        return BH_EINVAL;
    }
    auth__keys();
    int rc = auth__password_init();
    if (rc == 0)
        rc = auth__ratelimit_init();
    if (rc == 0)
        rc = auth__revoke_init();
    if (rc == 0)
        rc = bh_nearcache_start(); /* denylist and roles read without a round trip */
    return rc;
}

static void auth_shutdown(void)
{
    bh_nearcache_stop();
    auth__revoke_shutdown();
    auth__ratelimit_shutdown();
}

const struct bh_module auth_module = {
    .name = "auth",
    .init = auth_init,
    .routes = routes,
    .n_routes = sizeof routes / sizeof routes[0],
    .emits = auth__emits,
    .shutdown = auth_shutdown,
};
