/* Idempotency keys for billing's money-moving requests, as a reusable piece:
 * a handler calls billing__idem_begin() (claims the key in its own short
 * transaction, or answers a replay, a conflict or a misuse itself), does its
 * work, and answers through billing__idem_reply()/_problem(), which store the
 * response for replays. It must never let two requests with one key both do
 * the work: the claim is an INSERT ... ON CONFLICT on (org_id, key). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "platform/err.h"
#include "platform/log.h"
#include "platform/problem.h"

enum { KEY_MAX = 255 };

static bool key_ok(const char *key)
{
    size_t n = strlen(key);
    if (n == 0 || n > KEY_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (key[i] < 0x21 || key[i] > 0x7e) /* visible ASCII only */
            return false;
    return true;
}

/* SHA-256 over what makes two requests "the same": method, route and body. */
static void request_hash(struct bh_req *req, char out[65])
{
    crypto_hash_sha256_state st;
    unsigned char digest[crypto_hash_sha256_BYTES];
    size_t len = 0;
    const char *body = bh_req_body(req, &len);
    const char *method = bh_req_method(req);
    const char *route = bh_req_route(req);
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const unsigned char *)method, strlen(method));
    crypto_hash_sha256_update(&st, (const unsigned char *)" ", 1);
    crypto_hash_sha256_update(&st, (const unsigned char *)route, strlen(route));
    crypto_hash_sha256_update(&st, (const unsigned char *)"\n", 1);
    crypto_hash_sha256_update(&st, (const unsigned char *)body, len);
    crypto_hash_sha256_final(&st, digest);
    sodium_bin2hex(out, 65, digest, sizeof digest);
}

/* The key is already taken: replays the stored answer, or refuses a reuse
 * with another request or one still in progress. Returns 1 when it
 * replied, or a negative bh_err. */
static int answer_stored(struct bh_req *req, const struct billing__idem *out)
{
    struct billing__idem_stored stored;
    int rc = billing__repo_idem_get(out, bh_req_arena(req), &stored);
    if (rc == BH_ENOTFOUND) /* purged between the two statements */
        rc = BH_ECONFLICT;
    if (rc != 0)
        return rc;
    if (strcmp(stored.hash, out->hash) != 0) {
        bh_reply_refusal(req, BH_EUNPROCESSABLE,
                         &(struct bh_refusal){
                             .code = "idempotency_key_reused",
                             .detail = "This Idempotency-Key was used with a different request."},
                         NULL);
        return 1;
    }
    if (stored.status == 0) {
        bh_reply_header(req, "Retry-After", "1");
        bh_reply_refusal(
            req, BH_ECONFLICT,
            &(struct bh_refusal){
                .code = "idempotency_request_in_progress",
                .detail = "A request with this Idempotency-Key is still being processed."},
            NULL);
        return 1;
    }
    bh_reply_header(req, "Idempotent-Replayed", "true");
    bh_reply_raw(req, (unsigned)stored.status, stored.type, stored.body, strlen(stored.body));
    return 1;
}

int billing__idem_begin(struct bh_req *req, const bh_uuid *org_id, struct billing__idem *out)
{
    memset(out, 0, sizeof *out);
    const char *key = bh_req_header(req, "Idempotency-Key");
    if (!key || !*key) {
        bh_reply_refusal(
            req, BH_EINVAL,
            &(struct bh_refusal){
                .code = "idempotency_key_required",
                .detail = "This request moves money or changes a plan: send an Idempotency-Key "
                          "header (a unique value per intended operation)."},
            NULL);
        return 1;
    }
    if (!key_ok(key)) {
        bh_reply_refusal(
            req, BH_EINVAL,
            &(struct bh_refusal){.code = "idempotency_key_invalid",
                                 .detail =
                                     "Idempotency-Key must be 1 to 255 visible ASCII characters."},
            NULL);
        return 1;
    }
    out->org_id = *org_id;
    snprintf(out->key, sizeof out->key, "%s", key);
    request_hash(req, out->hash);

    bool claimed = false;
    int rc = billing__repo_idem_claim(out, billing__now(), &claimed);
    if (rc != 0)
        return rc;
    if (claimed) {
        out->claimed = true;
        return 0;
    }
    return answer_stored(req, out);
}

/* Stores the response (text) and replies with it. A failure to store is
 * logged and the key released: the work is done, and a retry will find its
 * effect in place (plan changes are themselves idempotent on the target). */
static int store_and_reply(struct bh_req *req, struct billing__idem *idem, unsigned status,
                           const char *type, char *text)
{
    int rc = billing__repo_idem_store(idem, (int)status, type, text);
    if (rc != 0) {
        bh_log_warn("could not store the response for an idempotency key: %s", bh_err_name(rc));
        billing__idem_release(idem);
    }
    idem->claimed = false;
    rc = bh_reply_raw(req, status, type, text, strlen(text));
    free(text);
    return rc;
}

int billing__idem_reply(struct bh_req *req, struct billing__idem *idem, unsigned status,
                        json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(body);
    if (!text) {
        billing__idem_release(idem);
        return BH_ENOMEM;
    }
    return store_and_reply(req, idem, status, "application/json", text);
}

int billing__idem_problem(struct bh_req *req, struct billing__idem *idem, int err,
                          const struct bh_refusal *why, json_t *extra)
{
    unsigned status = bh_err_status(err);
    const char *code = bh_refusal_code(err, why);
    const char *detail = bh_refusal_detail(req, err, why);
    if (!detail)
        detail = bh_status_title(status);
    extra = bh_refusal_members(err, why, extra);
    /* The same shape bh_reply_problem() produces, built here so that the
     * stored copy and the reply are byte for byte the same. */
    char type[200];
    snprintf(type, sizeof type, BH_PROBLEM_BASE "%s", code);
    json_t *p = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s}", "type", type, "title",
                          bh_status_title(status), "status", (int)status, "detail", detail, "code",
                          code, "request_id", bh_req_id(req));
    if (p && extra)
        json_object_update_missing(p, extra);
    json_decref(extra);
    char *text = p ? json_dumps(p, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(p);
    if (!text) {
        billing__idem_release(idem);
        return BH_ENOMEM;
    }
    return store_and_reply(req, idem, status, "application/problem+json", text);
}

void billing__idem_release(struct billing__idem *idem)
{
    if (!idem->claimed)
        return;
    idem->claimed = false;
    int rc = billing__repo_idem_release(idem);
    if (rc != 0)
        bh_log_warn("could not release an idempotency key: %s (it frees itself after its lease)",
                    bh_err_name(rc));
}
