/* The per-request arena: a chain of blocks, freed together. It never frees
 * single allocations and never outlives its request. */
#include "platform/arena.h"

#include <stdalign.h>
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
};

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

struct bh_arena *bh_arena_new(void)
{
    return calloc(1, sizeof(struct bh_arena));
}

void bh_arena_free(struct bh_arena *a)
{
    if (!a)
        return;
    for (struct block *b = a->head, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(a);
}

void *bh_arena_alloc(struct bh_arena *a, size_t size)
{
    const size_t align = alignof(max_align_t);
    size = (size + align - 1) & ~(align - 1);
    if (size == 0)
        size = align;
    struct block *b = a->head;
    if (!b || b->cap - b->used < size) {
        /* Large requests get a block of their own behind the current one,
         * so the remaining space of the current block is not wasted. */
        struct block *nb = block_new(size > BLOCK_SIZE / 2 ? size : BLOCK_SIZE);
        if (!nb)
            return NULL;
        if (b && size > BLOCK_SIZE / 2) {
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
    memset(p, 0, size);
    return p;
}

char *bh_arena_strndup(struct bh_arena *a, const char *s, size_t n)
{
    if (!s)
        return NULL;
    char *p = bh_arena_alloc(a, n + 1);
    if (p)
        memcpy(p, s, n); /* alloc zeroed the terminator */
    return p;
}

char *bh_arena_strdup(struct bh_arena *a, const char *s)
{
    return s ? bh_arena_strndup(a, s, strlen(s)) : NULL;
}

char *bh_arena_vprintf(struct bh_arena *a, const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0)
        return NULL;
    char *p = bh_arena_alloc(a, (size_t)n + 1);
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
