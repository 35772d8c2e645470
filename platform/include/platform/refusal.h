/* Why a service said no. A service returns a bh_err code and, when the
 * client needs more than the code's name, fills a bh_refusal; the HTTP edge
 * answers both with bh_reply_refusal(). That is the one place a refusal
 * becomes a problem: the status is always bh_err_status(err) (err.c), and a
 * meaning has one shape whichever module refuses. Never pick a status in a
 * handler.
 *
 * Shapes, beyond the RFC 9457 core {type, title, status, detail, code,
 * request_id}:
 *   BH_ELIMIT   code "plan_limit_exceeded" (always), status 402, and
 *               {resource, limit, usage}: what the plan allows of resource
 *               and how many the organization has.
 *   field set   errors: [{field, message: detail}] (the field at fault);
 *               code "validation_failed" unless the service names one. */
#ifndef BH_PLATFORM_REFUSAL_H
#define BH_PLATFORM_REFUSAL_H

#include <jansson.h>
#include <stdint.h>

struct bh_req;

struct bh_refusal {
    const char *code;     /* stable problem code (static); NULL: bh_err_name(err) */
    const char *detail;   /* for people (static or in the request's arena); may be NULL */
    const char *field;    /* the request field at fault; may be NULL */
    const char *resource; /* BH_ELIMIT: the limited resource ("tasks", "members") */
    int64_t limit, usage; /* BH_ELIMIT: what the plan allows, what is used */
};

/* The stable code the problem for (err, why) carries; why may be NULL. */
const char *bh_refusal_code(int err, const struct bh_refusal *why);
/* The problem's members beyond the core for (err, why), merged into extra
 * (may be NULL; ownership taken); NULL when there are none or on OOM. */
json_t *bh_refusal_members(int err, const struct bh_refusal *why, json_t *extra);
/* The detail for (err, why): why->detail, or the platform's wording. */
const char *bh_refusal_detail(struct bh_req *req, int err, const struct bh_refusal *why);
/* Answers (err, why) as its problem, status bh_err_status(err); why may be
 * NULL (then as bh_reply_err). extra: more members (may be NULL; ownership
 * taken). */
int bh_reply_refusal(struct bh_req *req, int err, const struct bh_refusal *why, json_t *extra);

#endif
