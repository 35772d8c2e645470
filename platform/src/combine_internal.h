/* What the combiner's unit tests may see of it (platform/src/combine.c). */
#ifndef BH__PLATFORM_COMBINE_INTERNAL_H
#define BH__PLATFORM_COMBINE_INTERNAL_H

struct bh_combiner;

/* How many items wait for a batch now (not counting a running one). */
int bh__combiner_waiting(struct bh_combiner *c);

#endif
