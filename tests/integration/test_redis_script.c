/* Integration test of the one Lua script runner (bh_redis_script_as in
 * platform/src/redis_script.c) against a real Redis: EVALSHA by the SHA-1
 * known in advance, SCRIPT LOAD and one retry on NOSCRIPT, script errors
 * handed back, binary-safe arguments. Skipped (exit 77) without REDIS_URL
 * and BULKHEAD_REDIS_PASSWORD. It leaves no key behind. */
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/err.h"
#include "platform/redis.h"

#define SKIPPED 77

static const char *const USERS[] = {"tasks"};
static int failures;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

/* What cmake/embed-lua computes at build time, computed here. */
static void sha1_hex(const char *text, char out[41])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    EVP_Digest(text, strlen(text), md, &n, EVP_sha1(), NULL);
    for (unsigned i = 0; i < n && i < 20; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static const char INCR_TEXT[] = "return redis.call('INCRBY', KEYS[1], ARGV[1])\n";
static char incr_sha[41];
static const struct bh_redis_script incr = {
    .name = "incr.lua", .sha1 = incr_sha, .text = INCR_TEXT};

static void flush_scripts(void)
{
    redisReply *r = NULL;

    CHECK(bh_redis_as("tasks", &r, "SCRIPT FLUSH") == 0);
    if (r)
        freeReplyObject(r);
}

static bool script_known(const char *sha)
{
    redisReply *r = NULL;
    bool known = bh_redis_as("tasks", &r, "SCRIPT EXISTS %s", sha) == 0 &&
                 r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->integer == 1;

    if (r)
        freeReplyObject(r);
    return known;
}

static long long run_incr(const char *by)
{
    const char *args[] = {"tasks:script-probe", by};
    redisReply *r = NULL;
    long long v = -1;

    if (bh_redis_script_as("tasks", &incr, &r, 1, 2, args, NULL) == 0 &&
        r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    if (r)
        freeReplyObject(r);
    return v;
}

static void a_script_redis_never_saw_is_loaded_and_run(void)
{
    flush_scripts();
    CHECK(!script_known(incr_sha));
    CHECK(run_incr("2") == 2);
    CHECK(script_known(incr_sha));
    CHECK(run_incr("3") == 5); /* by its SHA-1 this time */
}

static void after_a_script_flush_the_next_call_loads_it_again(void)
{
    CHECK(run_incr("1") == 6);
    flush_scripts();
    CHECK(run_incr("1") == 7);
    CHECK(script_known(incr_sha));
}

static void a_script_error_comes_back_as_an_error_reply(void)
{
    static const char text[] = "return redis.error_reply('BOOM the script refused')\n";
    char sha[41];
    const struct bh_redis_script boom = {.name = "boom.lua", .sha1 = sha, .text = text};
    redisReply *r = NULL;

    sha1_hex(text, sha);
    CHECK(bh_redis_script_as("tasks", &boom, &r, 0, 0, NULL, NULL) == BH_EINTERNAL);
    CHECK(r != NULL && r->type == REDIS_REPLY_ERROR && strstr(r->str, "BOOM") != NULL);
    if (r)
        freeReplyObject(r);
}

static void a_sha_that_does_not_match_the_text_is_refused(void)
{
    const struct bh_redis_script stale = {
        .name = "stale.lua", .sha1 = "0000000000000000000000000000000000000000", .text = INCR_TEXT};
    const char *args[] = {"tasks:script-probe", "100"};
    redisReply *r = NULL;

    CHECK(bh_redis_script_as("tasks", &stale, &r, 1, 2, args, NULL) == BH_EINTERNAL);
    CHECK(r == NULL);
    CHECK(run_incr("0") == 7); /* the stale script never ran */
}

static void arguments_are_binary_safe(void)
{
    static const char text[] = "return string.len(ARGV[1])\n";
    char sha[41];
    const struct bh_redis_script len = {.name = "len.lua", .sha1 = sha, .text = text};
    const char *args[] = {"a\0b"};
    const size_t lens[] = {3};
    redisReply *r = NULL;

    sha1_hex(text, sha);
    CHECK(bh_redis_script_as("tasks", &len, &r, 0, 1, args, lens) == 0);
    CHECK(r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 3);
    if (r)
        freeReplyObject(r);
}

static void bad_arguments_are_refused_before_redis(void)
{
    redisReply *r = NULL;
    const char *args[] = {"k"};

    CHECK(bh_redis_script_as("tasks", &incr, &r, 2, 1, args, NULL) == BH_EINVAL);
    CHECK(bh_redis_script_as("tasks", &incr, &r, -1, 1, args, NULL) == BH_EINVAL);
    CHECK(bh_redis_script_as("tasks", NULL, &r, 0, 0, NULL, NULL) == BH_EINVAL);
    CHECK(r == NULL);
}

int main(void)
{
    const char *url = getenv("REDIS_URL"), *password = getenv("BULKHEAD_REDIS_PASSWORD");
    redisReply *r = NULL;

    if (url == NULL || password == NULL) {
        fprintf(stderr, "skipped: REDIS_URL and BULKHEAD_REDIS_PASSWORD are needed\n");
        return SKIPPED;
    }
    sha1_hex(INCR_TEXT, incr_sha);
    if (bh_redis_init(url, password, USERS, 1, 1000) != 0) {
        fprintf(stderr, "bh_redis_init failed\n");
        return 1;
    }
    bh_redis_as("tasks", &r, "DEL tasks:script-probe");
    if (r)
        freeReplyObject(r);
    a_script_redis_never_saw_is_loaded_and_run();
    after_a_script_flush_the_next_call_loads_it_again();
    a_script_error_comes_back_as_an_error_reply();
    a_sha_that_does_not_match_the_text_is_refused();
    arguments_are_binary_safe();
    bad_arguments_are_refused_before_redis();
    r = NULL;
    bh_redis_as("tasks", &r, "DEL tasks:script-probe");
    if (r)
        freeReplyObject(r);
    bh_redis_shutdown();
    if (failures > 0) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf(
        "ok - the script runner: load on first use, reload after a flush, errors, binary args\n");
    return 0;
}
