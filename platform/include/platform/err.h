/* Error codes shared by the platform and every module.
 * Functions that do something return 0 or one of these negative codes; the
 * HTTP edge (http.c, bh_reply_err) is the one place that turns them into a
 * status. Never return an HTTP status from a service function. */
#ifndef BH_PLATFORM_ERR_H
#define BH_PLATFORM_ERR_H

enum bh_err {
    BH_OK = 0,
    BH_ENOMEM = -1,          /* allocation failed                        → 500 */
    BH_EINVAL = -2,          /* input failed validation                  → 400/422 */
    BH_ENOTFOUND = -3,       /* no such thing, or the caller may not know → 404 */
    BH_ECONFLICT = -4,       /* state conflict, unique violation         → 409 */
    BH_EFORBIDDEN = -5,      /* known caller, not allowed                → 403 */
    BH_EUNAUTH = -6,         /* no or bad credentials                    → 401 */
    BH_EUNAVAILABLE = -7,    /* a dependency is down or a pool is full   → 503 */
    BH_ETIMEOUT = -8,        /* a time budget ran out                    → 503 */
    BH_EINTERNAL = -9,       /* a bug or an unexpected failure           → 500 */
    BH_ELIMIT = -10,         /* a plan limit was reached                 → 402 */
    BH_EPRECONDITION = -11,  /* If-Match did not match                   → 412 */
    BH_ERATELIMIT = -12,     /* too many requests                        → 429 */
    BH_EPAYMENT = -13,       /* payment declined                         → 402 */
    BH_EUNPROCESSABLE = -14, /* well-formed but semantically invalid    → 422 */
};

/* A short stable name for an error code ("not_found"); never NULL. */
const char *bh_err_name(int err);

#endif
