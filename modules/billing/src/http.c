/* Billing's HTTP handlers: parse, authorize, call the service, respond.
 * No SQL and no business rule here; no provider vocabulary either. */
#include <string.h>

#include "internal.h"
#include "platform/db.h"
#include "platform/err.h"
#include "platform/http.h"

enum { MAX_PLANS = 16 };

/* GET /v1/plans: the public catalogue, no authentication. */
int billing__http_get_plans(struct bh_req *req)
{
    struct billing__plan plans[MAX_PLANS];
    int n = 0;
    struct bh_tx *tx = NULL;
    int rc = bh_tx_begin(&tx);
    if (rc != 0)
        return rc;
    rc = billing__repo_plans(tx, plans, MAX_PLANS, &n);
    bh_tx_rollback(tx); /* read only */
    if (rc != 0)
        return rc;
    json_t *data = json_array();
    for (int i = 0; data && i < n; i++)
        json_array_append_new(data, billing__plan_json(&plans[i]));
    json_t *body = json_pack("{s:o, s:n}", "data", data, "next_cursor");
    if (!body)
        return BH_ENOMEM;
    bh_reply_header(req, "Cache-Control", "public, max-age=60");
    return bh_reply_json(req, 200, body);
}
