/* Replies: JSON, raw bytes, empty, and RFC 9457 problems with a stable
 * code, the request id and the recorded field errors. A request gets
 * exactly one reply; the lifecycle (http.c) hands it to libmicrohttpd. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"
#include "platform/err.h"
#include "platform/log.h"
#include "platform/problem.h"

void bh_req_field_error(struct bh_req *req, const char *field, const char *fmt, ...)
{
    struct field_error *e = bh_arena_alloc(req->arena, sizeof *e);
    if (!e)
        return;
    va_list ap;
    va_start(ap, fmt);
    e->message = bh_arena_vprintf(req->arena, fmt, ap);
    va_end(ap);
    e->field = bh_arena_strdup(req->arena, field);
    if (req->errors_tail)
        req->errors_tail->next = e;
    else
        req->errors = e;
    req->errors_tail = e;
}

bool bh_req_has_field_errors(const struct bh_req *req)
{
    return req->errors != NULL;
}

void bh_reply_header(struct bh_req *req, const char *name, const char *value)
{
    struct header *h = bh_arena_alloc(req->arena, sizeof *h);
    if (!h)
        return;
    h->name = bh_arena_strdup(req->arena, name);
    h->value = bh_arena_strdup(req->arena, value);
    h->next = req->headers;
    req->headers = h;
}

/* body is either malloc'd (owned, handed to libmicrohttpd) or bytes that
 * live as long as the request (its arena, or static): then owned is false
 * and they are sent without a copy. */
static int set_reply(struct bh_req *req, unsigned status, const char *type, char *body, size_t len,
                     bool owned)
{
    if (req->replied) {
        bh_log(BH_LOG_ERROR, "platform", "second reply to %s %s ignored", req->method, req->path);
        if (owned)
            free(body);
        return BH_EINTERNAL;
    }
    req->replied = true;
    req->status = status;
    req->resp_type = type;
    req->resp_body = owned ? body : NULL;
    req->resp_bytes = body;
    req->resp_len = len;
    return 0;
}

int bh_reply_raw(struct bh_req *req, unsigned status, const char *content_type, const char *body,
                 size_t len)
{
    len = body ? len : 0;
    char *copy = bh_arena_strndup(req->arena, body ? body : "", len);
    if (!copy)
        return BH_ENOMEM;
    return set_reply(req, status, bh_arena_strdup(req->arena, content_type), copy, len, false);
}

int bh_reply_bytes(struct bh_req *req, unsigned status, const char *content_type, const char *body,
                   size_t len)
{
    return set_reply(req, status, content_type, (char *)(uintptr_t)body, len, false);
}

int bh_reply_json(struct bh_req *req, unsigned status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(body);
    if (!text)
        return BH_ENOMEM;
    return set_reply(req, status, "application/json", text, strlen(text), true);
}

int bh_reply_empty(struct bh_req *req, unsigned status)
{
    return set_reply(req, status, NULL, NULL, 0, false);
}

int bh_reply_problem(struct bh_req *req, unsigned status, const char *code, const char *detail,
                     json_t *extra)
{
    json_t *p = json_object();
    if (!p) {
        json_decref(extra);
        return BH_ENOMEM;
    }
    char type[200];
    snprintf(type, sizeof type, BH_PROBLEM_BASE "%s", code);
    json_object_set_new(p, "type", json_string(type));
    json_object_set_new(p, "title", json_string(bh_status_title(status)));
    json_object_set_new(p, "status", json_integer(status));
    json_object_set_new(p, "detail", json_string(detail ? detail : bh_status_title(status)));
    json_object_set_new(p, "code", json_string(code));
    json_object_set_new(p, "request_id", json_string(req->request_id));
    if (req->errors) {
        json_t *errs = json_array();
        for (struct field_error *e = req->errors; e; e = e->next)
            json_array_append_new(errs, json_pack("{s:s, s:s}", "field", e->field ? e->field : "",
                                                  "message", e->message ? e->message : ""));
        json_object_set_new(p, "errors", errs);
    }
    if (extra) {
        json_object_update_missing(p, extra);
        json_decref(extra);
    }
    char *text = json_dumps(p, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(p);
    if (!text)
        return BH_ENOMEM;
    return set_reply(req, status, "application/problem+json", text, strlen(text), true);
}

int bh_reply_field_errors(struct bh_req *req)
{
    return bh_reply_problem(req, 422, "validation_failed", "The request has invalid fields.", NULL);
}

int bh_reply_err(struct bh_req *req, int err, const char *detail)
{
    unsigned status = bh_err_status(err);
    if (status >= 500 && !detail)
        detail = status == 503 ? "A dependency is unavailable; try again shortly."
                               : "An unexpected error occurred.";
    if (status == 503)
        bh_reply_header(req, "Retry-After", "1");
    return bh_reply_problem(req, status, bh_err_name(err), detail, NULL);
}

const char *bh_status_title(unsigned status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}
