/* The bounded driver every fuzz target links when it is not built for
 * libFuzzer (the test suite's short run): it feeds the target each input of
 * its corpus (tests/fuzz/corpus/<target>/), then a fixed number of inputs
 * mutated from them with a seeded generator (byte flips, cuts, inserts,
 * duplicated runs, splices of two inputs), so the run is bounded and
 * repeatable. Usage: fuzz_<target> CORPUS_DIR [ROUNDS]. With libFuzzer the
 * same targets run open-ended instead (`make fuzz`). */
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAX_SEEDS = 512, MAX_LEN = 4096 };

struct seed {
    uint8_t *data;
    size_t len;
};

/* xorshift64*: a repeatable stream of pseudo-random numbers. */
static uint64_t next_random(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

static int load_seeds(const char *dir, struct seed *seeds, int max)
{
    int n = 0;
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "fuzz driver: cannot open corpus %s\n", dir);
        return -1;
    }
    for (struct dirent *e = readdir(d); e && n < max; e = readdir(d)) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        uint8_t *buf = malloc(MAX_LEN);
        size_t len = buf ? fread(buf, 1, MAX_LEN, f) : 0;
        fclose(f);
        if (!buf)
            continue;
        seeds[n].data = buf;
        seeds[n].len = len;
        n++;
    }
    closedir(d);
    return n;
}

/* One mutation of buf (len bytes, capacity MAX_LEN) in place. */
static size_t mutate(uint8_t *buf, size_t len, const struct seed *seeds, int n, uint64_t *rng)
{
    size_t at = len ? next_random(rng) % len : 0;
    switch (next_random(rng) % 6) {
    case 0: /* flip a byte */
        if (len)
            buf[at] ^= (uint8_t)(1u << (next_random(rng) % 8));
        break;
    case 1: /* cut the tail */ len = at; break;
    case 2: /* insert a byte: printable most of the time */
        if (len < MAX_LEN) {
            memmove(buf + at + 1, buf + at, len - at);
            uint64_t r = next_random(rng);
            buf[at] = (uint8_t)(r % 4 ? 32 + r % 95 : r >> 8);
            len++;
        }
        break;
    case 3: /* repeat a run */
        if (len && len < MAX_LEN / 2) {
            size_t run = 1 + next_random(rng) % (len - at);
            memmove(buf + at + run, buf + at, len - at);
            len += run;
        }
        break;
    case 4: /* splice in part of another seed */
        if (n > 0) {
            const struct seed *o = &seeds[next_random(rng) % (uint64_t)n];
            if (o->len) {
                size_t from = next_random(rng) % o->len;
                size_t take = 1 + next_random(rng) % (o->len - from);
                if (at + take > MAX_LEN)
                    take = MAX_LEN - at;
                memcpy(buf + at, o->data + from, take);
                if (at + take > len)
                    len = at + take;
            }
        }
        break;
    default: /* a byte set to an edge value */
        if (len) {
            static const uint8_t edge[] = {0, '\r', '\n', '"', '\\', '=', '%', '{', 0x7f, 0xff};
            buf[at] = edge[next_random(rng) % sizeof edge];
        }
    }
    return len;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR [ROUNDS]\n", argv[0]);
        return 2;
    }
    long rounds = argc > 2 ? strtol(argv[2], NULL, 10) : 20000;
    static struct seed seeds[MAX_SEEDS];
    int n = load_seeds(argv[1], seeds, MAX_SEEDS);
    if (n < 0)
        return 2;
    LLVMFuzzerTestOneInput((const uint8_t *)"", 0);
    for (int i = 0; i < n; i++)
        LLVMFuzzerTestOneInput(seeds[i].data, seeds[i].len);

    uint64_t rng = 0x9E3779B97F4A7C15ULL;
    uint8_t *buf = malloc(MAX_LEN);
    if (!buf)
        return 1;
    for (long r = 0; r < rounds; r++) {
        size_t len = 0;
        if (n > 0) {
            const struct seed *s = &seeds[next_random(&rng) % (uint64_t)n];
            len = s->len;
            memcpy(buf, s->data, len);
        }
        int edits = 1 + (int)(next_random(&rng) % 4);
        for (int e = 0; e < edits; e++)
            len = mutate(buf, len, seeds, n, &rng);
        LLVMFuzzerTestOneInput(buf, len);
    }
    free(buf);
    for (int i = 0; i < n; i++)
        free(seeds[i].data);
    printf("ok - %d corpus inputs and %ld mutations: no crash, no sanitizer report\n", n, rounds);
    return 0;
}
