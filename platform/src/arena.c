/* The per-request arena: a chain of blocks, freed together. It never frees
 * single allocations and never outlives its request. The arena header and
 * its first block are one allocation, and each thread keeps the last one it
 * freed for the next request it starts (one per thread, freed when the
 * thread ends): a request usually costs no malloc and no free of its own. */
#include "platform/arena.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { BLOCK_SIZE = 8192 };

struct block {
    struct block *next;
    size_t used, cap;
    alignas(max_align_t) unsigned char data[];
};

struct bh_arena {
    struct block *head;
    struct block *first; /* the block this header lives in */
};

static pthread_once_t spare_once = PTHREAD_ONCE_INIT;
static pthread_key_t spare_key;
static bool spare_ok;

/* The thread's spare arena is freed when the thread ends. */
static void spare_init(void)
{
    spare_ok = pthread_key_create(&spare_key, free) == 0;
}

static struct block *block_new(size_t cap)
{
    struct block *b = malloc(sizeof *b + cap);
    if (!b)
        return NULL;
    b->next = NULL;
    b->used = 0;
    b->cap = cap;
    return b;
}

enum {
    HEADER_SIZE = (sizeof(struct bh_arena) + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1)
};

struct bh_arena *bh_arena_new(void)
{
    pthread_once(&spare_once, spare_init);
    struct block *b = spare_ok ? pthread_getspecific(spare_key) : NULL;
    if (b)
        pthread_setspecific(spare_key, NULL);
    else if (!(b = block_new(BLOCK_SIZE)))
        return NULL;
    /* The header lives at the start of the first block. */
    struct bh_arena *a = (struct bh_arena *)(void *)b->data;
    b->next = NULL;
    b->used = HEADER_SIZE;
    a->head = a->first = b;
    return a;
}

void bh_arena_free(struct bh_arena *a)
{
    if (!a)
        return;
    struct block *first = a->first;
    for (struct block *b = a->head, *next; b; b = next) {
        next = b->next;
        if (b != first)
            free(b);
    }
    if (!spare_ok || pthread_getspecific(spare_key) || pthread_setspecific(spare_key, first) != 0)
        free(first);
}

/* size bytes, not zeroed. */
static void *arena_take(struct bh_arena *a, size_t size)
{
    const size_t align = alignof(max_align_t);
    size = (size + align - 1) & ~(align - 1);
    if (size == 0)
        size = align;
    struct block *b = a->head;
    if (b->cap - b->used < size) {
        /* Large requests get a block of their own behind the current one,
         * so the remaining space of the current block is not wasted. */
        struct block *nb = block_new(size > BLOCK_SIZE / 2 ? size : BLOCK_SIZE);
        if (!nb)
            return NULL;
        if (size > BLOCK_SIZE / 2) {
            nb->next = b->next;
            b->next = nb;
        } else {
            nb->next = b;
            a->head = nb;
        }
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += size;
    return p;
}

void *bh_arena_alloc(struct bh_arena *a, size_t size)
{
    void *p = arena_take(a, size);
    if (p)
        memset(p, 0, size);
    return p;
}

char *bh_arena_strndup(struct bh_arena *a, const char *s, size_t n)
{
    if (!s)
        return NULL;
    char *p = arena_take(a, n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

char *bh_arena_strdup(struct bh_arena *a, const char *s)
{
    return s ? bh_arena_strndup(a, s, strlen(s)) : NULL;
}

char *bh_arena_vprintf(struct bh_arena *a, const char *fmt, va_list ap)
{
    char small[256];
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(small, sizeof small, fmt, copy);
    va_end(copy);
    if (n < 0)
        return NULL;
    if ((size_t)n < sizeof small) /* formatted once: copy it */
        return bh_arena_strndup(a, small, (size_t)n);
    char *p = arena_take(a, (size_t)n + 1);
    if (p)
        vsnprintf(p, (size_t)n + 1, fmt, ap);
    return p;
}

char *bh_arena_printf(struct bh_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = bh_arena_vprintf(a, fmt, ap);
    va_end(ap);
    return p;
}
