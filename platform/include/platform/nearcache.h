/* Near cache: this process's copy of a module's Redis keys, in front of
 * Redis, kept exact by Redis's server-assisted invalidation.
 *
 * Each module that enables it gets one extra connection, as its own ACL
 * user, that runs `CLIENT TRACKING on REDIRECT <its own id> BCAST PREFIX
 * <module>:` and subscribes to `__redis__:invalidate`. Redis then sends the
 * name of every key under the prefix that any client changes (SET, DEL,
 * expiry, eviction) to that connection, and the near cache drops it before a
 * reader may see the old value again:
 *   - a reader inserts what it read from Redis only if no invalidation for
 *     that key (nor a flush) arrived since it sent the read, so a write racing
 *     the read is never cached over;
 *   - a hit first checks that the invalidation socket holds nothing unread
 *     (one poll, no round trip): invalidations Redis sent before the hit are
 *     applied, or the hit becomes a miss;
 *   - while the invalidation connection is down (before it is up, after a
 *     drop, CLIENT KILL, Redis restart) the cache is empty and every read
 *     goes to Redis; it fills again only once the connection is back.
 * Absent keys are cached too (the denylist's common answer is "absent").
 * Values live at most BULKHEAD_NEARCACHE_TTL_MS (a memory bound, not a
 * correctness one) and the cache holds at most BULKHEAD_NEARCACHE_BYTES per
 * module; BULKHEAD_NEARCACHE=0 turns it off (every read goes to Redis).
 *
 * Inside a module use the macros at the bottom: they name the module's user,
 * whose prefix is "<module>:". */
#ifndef BH_PLATFORM_NEARCACHE_H
#define BH_PLATFORM_NEARCACHE_H

#include <stddef.h>
#include <stdint.h>

struct bh_arena;

/* Starts the near cache of user (its invalidation connection, in a thread of
 * its own). 0, or BH_EINVAL / BH_ENOMEM. Starting it twice is a no-op; when
 * turned off by configuration it returns 0 and reads go to Redis. Needs
 * bh_redis_init() first. */
int bh_nearcache_start_as(const char *user);
/* Stops it and frees every entry. Before bh_redis_shutdown(). */
void bh_nearcache_stop_as(const char *user);

/* The values of n keys of user's prefix (n <= BH_NEARCACHE_MGET_MAX): from
 * the near cache where it holds them, the others in one MGET. vals[i] is an
 * arena copy (NUL-terminated, lens[i] bytes) or NULL when the key does not
 * exist. Returns 0, BH_EUNAVAILABLE (Redis unreachable, breaker open, or an
 * error reply), BH_EINVAL or BH_ENOMEM. *hits (may be NULL) counts the
 * values the near cache answered. */
enum { BH_NEARCACHE_MGET_MAX = 8 };
int bh_nearcache_mget_as(const char *user, struct bh_arena *a, int n, const char *const *keys,
                         const char **vals, size_t *lens, int *hits);

/* For tests and metrics: entries held, and how many times the cache was
 * emptied because its invalidation connection dropped. */
struct bh_nearcache_stats {
    uint64_t entries;
    uint64_t bytes;
    uint64_t hits;
    uint64_t misses;
    uint64_t invalidations;
    uint64_t flushes;
    int tracking; /* 1 while the invalidation connection is up */
};
int bh_nearcache_stats(const char *user, struct bh_nearcache_stats *out);

#ifdef BH_MODULE_NAME
#define bh_nearcache_start() bh_nearcache_start_as(BH_MODULE_NAME)
#define bh_nearcache_stop()  bh_nearcache_stop_as(BH_MODULE_NAME)
#define bh_nearcache_mget(a, n, keys, vals, lens, hits)                                            \
    bh_nearcache_mget_as(BH_MODULE_NAME, (a), (n), (keys), (vals), (lens), (hits))
#endif

#endif
