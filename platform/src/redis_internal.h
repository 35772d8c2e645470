/* Redis plumbing shared inside platform/src only (not a public header). */
#ifndef BH__PLATFORM_SRC_REDIS_INTERNAL_H
#define BH__PLATFORM_SRC_REDIS_INTERNAL_H

#include <hiredis/hiredis.h>

/* A new connection of its own (not from the pool), logged in as user, with
 * the configured socket timeout: for connections that change state, such
 * as a subscriber. The caller owns it (redisFree). NULL when Redis cannot
 * be reached or user is unknown; it does not touch user's breaker. */
redisContext *bh__redis_connect(const char *user);

#endif
