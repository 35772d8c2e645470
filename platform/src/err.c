/* Names and HTTP statuses of bh_err codes: the single mapping. */
#include "platform/err.h"
#include "platform/http.h"

const char *bh_err_name(int err)
{
    switch (err) {
    case BH_OK: return "ok";
    case BH_ENOMEM: return "out_of_memory";
    case BH_EINVAL: return "invalid_request";
    case BH_ENOTFOUND: return "not_found";
    case BH_ECONFLICT: return "conflict";
    case BH_EFORBIDDEN: return "forbidden";
    case BH_EUNAUTH: return "unauthorized";
    case BH_EUNAVAILABLE: return "service_unavailable";
    case BH_ETIMEOUT: return "timeout";
    case BH_ELIMIT: return "plan_limit_exceeded";
    case BH_EPRECONDITION: return "precondition_failed";
    case BH_ERATELIMIT: return "rate_limited";
    case BH_EPAYMENT: return "payment_declined";
    case BH_EUNPROCESSABLE: return "unprocessable";
    default: return "internal_error";
    }
}

unsigned bh_err_status(int err)
{
    switch (err) {
    case BH_EINVAL: return 400;
    case BH_EUNAUTH: return 401;
    case BH_ELIMIT:
    case BH_EPAYMENT: return 402;
    case BH_EFORBIDDEN: return 403;
    case BH_ENOTFOUND: return 404;
    case BH_ECONFLICT: return 409;
    case BH_EPRECONDITION: return 412;
    case BH_EUNPROCESSABLE: return 422;
    case BH_ERATELIMIT: return 429;
    case BH_EUNAVAILABLE:
    case BH_ETIMEOUT: return 503;
    default: return 500;
    }
}
