/* What a failed statement means (db_internal.h): SQLSTATE to bh_err, in one
 * place, and whether the connection survived. It must never log statement
 * parameters. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "db_internal.h"
#include "pg.h"
#include "platform/err.h"
#include "platform/log.h"

static bool sqlstate_is(const char *state, const char *prefix)
{
    return strncmp(state, prefix, strlen(prefix)) == 0;
}

int bh__db_result_error(struct db_conn *c, const char *module, const PGresult *r, char *sqlstate,
                        char *constraint)
{
    PGconn *pg = c->pg;
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *name = r ? PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME) : NULL;
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;

    if (msg == NULL)
        msg = PQerrorMessage(pg);
    snprintf(sqlstate, SQLSTATE_LEN + 1, "%s", state ? state : "");
    snprintf(constraint, CONSTRAINT_MAX, "%s", name ? name : "");

    if (PQstatus(pg) != CONNECTION_OK || sqlstate_is(sqlstate, "08") ||
        sqlstate_is(sqlstate, "57P0")) {
        /* 08xxx: connection exception; 57P01-57P03: the server is going
         * away. Either way this connection is done for. */
        c->broken = true;
        bh_log(BH_LOG_WARN, "platform", "db %s: connection lost: %.*s", module, bh__pg_msg_len(msg),
               msg);
        return BH_EUNAVAILABLE;
    }
    if (strcmp(sqlstate, "23505") == 0 || strcmp(sqlstate, "23P01") == 0 ||
        strcmp(sqlstate, "40001") == 0 || strcmp(sqlstate, "40P01") == 0)
        return BH_ECONFLICT; /* unique/exclusion; serialization/deadlock: retryable */
    if (sqlstate_is(sqlstate, "23") || sqlstate_is(sqlstate, "22"))
        return BH_EINVAL; /* 23503, 23502, 23514, 22P02 and other data errors */
    if (strcmp(sqlstate, "57014") == 0 || strcmp(sqlstate, "55P03") == 0)
        return BH_ETIMEOUT; /* statement timeout; lock timeout */
    if (strcmp(sqlstate, "42501") == 0) {
        /* A module role touched what it does not own: fence 3 held, and
         * the code that tried is wrong. */
        bh_log(BH_LOG_ERROR, "platform", "db %s: permission denied (SQLSTATE 42501): %.*s", module,
               bh__pg_msg_len(msg), msg);
        return BH_EFORBIDDEN;
    }
    bh_log(BH_LOG_ERROR, "platform", "db %s: statement failed (SQLSTATE %s): %.*s", module,
           sqlstate[0] ? sqlstate : "none", bh__pg_msg_len(msg), msg);
    return BH_EINTERNAL;
}
