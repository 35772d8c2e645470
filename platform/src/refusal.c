/* Refusals into problems: the one shape per meaning (see refusal.h). Must
 * never choose a status: that is bh_err_status()'s alone. */
#include "platform/refusal.h"

#include "platform/arena.h"
#include "platform/err.h"
#include "platform/http.h"

const char *bh_refusal_code(int err, const struct bh_refusal *why)
{
    if (err == BH_ELIMIT)
        return bh_err_name(BH_ELIMIT);
    if (why && why->code)
        return why->code;
    if (why && why->field)
        return "validation_failed";
    return bh_err_name(err);
}

json_t *bh_refusal_members(int err, const struct bh_refusal *why, json_t *extra)
{
    if (!why)
        return extra;
    json_t *m = extra ? extra : json_object();
    if (!m)
        return NULL;
    if (err == BH_ELIMIT) {
        json_t *lim = json_pack("{s:s, s:I, s:I}", "resource", why->resource ? why->resource : "",
                                "limit", (json_int_t)why->limit, "usage", (json_int_t)why->usage);
        json_object_update(m, lim);
        json_decref(lim);
    }
    if (why->field && !json_object_get(m, "errors"))
        json_object_set_new(m, "errors",
                            json_pack("[{s:s, s:s}]", "field", why->field, "message",
                                      why->detail ? why->detail : "is invalid"));
    if (json_object_size(m) == 0) {
        json_decref(m);
        return NULL;
    }
    return m;
}

const char *bh_refusal_detail(struct bh_req *req, int err, const struct bh_refusal *why)
{
    if (why && err == BH_ELIMIT && !why->detail && why->resource)
        return bh_arena_printf(bh_req_arena(req),
                               "The organization's plan allows %lld %s and it has %lld.",
                               (long long)why->limit, why->resource, (long long)why->usage);
    if (why && why->field && !why->code)
        return "The request has invalid fields.";
    return why ? why->detail : NULL;
}

int bh_reply_refusal(struct bh_req *req, int err, const struct bh_refusal *why, json_t *extra)
{
    if (!why && !extra)
        return bh_reply_err(req, err, NULL);
    return bh_reply_problem(req, bh_err_status(err), bh_refusal_code(err, why),
                            bh_refusal_detail(req, err, why), bh_refusal_members(err, why, extra));
}
