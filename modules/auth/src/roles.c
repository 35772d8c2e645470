/* Role names as the API spells them, both ways. Pure: it calls nothing, so
 * every file of the module may call it without a cycle between files. */
#include <string.h>

#include "internal.h"

const char *auth_role_name(enum auth_role role)
{
    switch (role) {
    case AUTH_ROLE_OWNER: return "owner";
    case AUTH_ROLE_ADMIN: return "admin";
    case AUTH_ROLE_MEMBER: return "member";
    default: return "none";
    }
}

enum auth_role auth__role_parse(const char *name)
{
    if (!name)
        return AUTH_ROLE_NONE;
    if (strcmp(name, "owner") == 0)
        return AUTH_ROLE_OWNER;
    if (strcmp(name, "admin") == 0)
        return AUTH_ROLE_ADMIN;
    if (strcmp(name, "member") == 0)
        return AUTH_ROLE_MEMBER;
    return AUTH_ROLE_NONE;
}
