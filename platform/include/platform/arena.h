/* A per-request memory arena: allocate freely while handling a request, and
 * the platform frees everything at once when the request ends. Handlers
 * almost never call free(). Not thread-safe: one arena belongs to one
 * request (one thread at a time). */
#ifndef BH_PLATFORM_ARENA_H
#define BH_PLATFORM_ARENA_H

#include <stdarg.h>
#include <stddef.h>

struct bh_arena;

/* A new empty arena; NULL when out of memory. Free with bh_arena_free(). */
struct bh_arena *bh_arena_new(void);
/* Frees the arena and every allocation made from it. NULL is allowed. */
void bh_arena_free(struct bh_arena *a);

/* Zeroed memory owned by the arena, aligned for any type; NULL on OOM. */
void *bh_arena_alloc(struct bh_arena *a, size_t size);
/* Arena-owned copies; NULL on OOM (or when s is NULL). */
char *bh_arena_strdup(struct bh_arena *a, const char *s);
char *bh_arena_strndup(struct bh_arena *a, const char *s, size_t n);
/* printf into the arena; NULL on OOM. */
char *bh_arena_printf(struct bh_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
char *bh_arena_vprintf(struct bh_arena *a, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

#endif
