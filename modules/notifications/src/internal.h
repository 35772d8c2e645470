/* What the notifications module's files share with each other, and nothing
 * outside the module may see (the seal keeps every name here local).
 * Pure logic (types, preferences, templates, MIME) is declared
 * apart from I/O (repo, transport, stream hub) so it can be unit tested. */
#ifndef NOTIFICATIONS_INTERNAL_H
#define NOTIFICATIONS_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "platform/cursor.h"
#include "platform/events.h"
#include "platform/http.h"
#include "platform/uuid.h"

struct bh_tx;

/* ---- notification types and channels (prefs.c) ------------------------ */

/* The event types that become notifications. A notification's `type` is
 * the event type string, and preferences are kept per type and channel. */
enum notifications__type {
    NOTIF_USER_SIGNED_UP,
    NOTIF_MEMBER_ADDED,
    NOTIF_MEMBER_INVITED,
    NOTIF_TASK_ASSIGNED,
    NOTIF_TASK_COMPLETED,
    NOTIF_TASK_COMMENTED,
    NOTIF_INVOICE_PAYMENT_FAILED,
    NOTIF_SUBSCRIPTION_CHANGED,
    NOTIF_N_TYPES
};

enum notifications__channel { NOTIF_IN_APP, NOTIF_EMAIL, NOTIF_N_CHANNELS };

/* "task.assigned" for NOTIF_TASK_ASSIGNED; never NULL for a valid type. */
const char *notifications__type_name(enum notifications__type t);
/* The type for a name, or -1 when unknown. */
int notifications__type_from_name(const char *name);
/* "in_app" / "email". */
const char *notifications__channel_name(enum notifications__channel c);
int notifications__channel_from_name(const char *name);

/* Which channels a user wants, per type. */
struct notifications__prefs {
    bool on[NOTIF_N_TYPES][NOTIF_N_CHANNELS];
};

/* The defaults: everything on (documented in docs/notifications.md). */
void notifications__prefs_defaults(struct notifications__prefs *p);
/* {"task.assigned": {"in_app": true, "email": false}, ...} for every type. */
json_t *notifications__prefs_to_json(const struct notifications__prefs *p);

/* Receives one validation problem: field is a dotted path
 * ("preferences.task.assigned.email"), message a sentence. */
typedef void (*notifications__error_fn)(void *arg, const char *field, const char *message);
/* Reads a PUT body's "preferences" object into *out, which starts from the
 * defaults: what the body leaves out takes its default (PUT replaces).
 * Unknown types and channels and non-boolean values are reported through
 * on_error. 0, or BH_EINVAL when anything was reported. */
int notifications__prefs_parse(const json_t *obj, struct notifications__prefs *out,
                               notifications__error_fn on_error, void *arg);

/* ---- templates (templates.c) -------------------------------------------- */

/* A notification's texts: title (in-app title and email subject), body
 * (in-app body), and the two email bodies. All malloc'd. */
struct notifications__rendered {
    char *title;
    char *body;
    char *email_text;
    char *email_html;
};

/* Expands "{{name}}" placeholders from vars (a JSON object; strings and
 * integers are used, anything else or a missing name expands to ""). With
 * html, every value is HTML-escaped (the template's own markup is trusted).
 * Returns malloc'd text or NULL on OOM. */
char *notifications__expand(const char *tmpl, const json_t *vars, bool html);
/* Renders type's templates. vars should hold "recipient_name" for the
 * greeting. 0 or BH_ENOMEM; release with notifications__rendered_release. */
int notifications__render(enum notifications__type type, const json_t *vars,
                          struct notifications__rendered *out);
void notifications__rendered_release(struct notifications__rendered *r);

/* ---- email messages (mime.c) ------------------------------------------- */

struct notifications__mail {
    const char *from;       /* "Bulkhead <no-reply@bulkhead.localhost>" */
    const char *to_address; /* "ada@example.com" */
    const char *to_name;    /* may be "" */
    const char *subject;
    const char *text;       /* plain-text body */
    const char *html;       /* HTML body */
    const char *message_id; /* "<id@host>": the same on every retry */
    time_t date;
};

/* An RFC 5322 message (multipart/alternative, UTF-8 quoted-printable bodies, RFC 2047
 * encoded words for non-ASCII headers, CRLF line ends). Malloc'd text with
 * its length in *len; NULL on OOM or when an address or header value holds
 * a line break (header injection). */
char *notifications__mime_compose(const struct notifications__mail *m, size_t *len);
/* The bare address inside "Name <addr>" (or the text itself), into out. */
bool notifications__mail_address(const char *from, char *out, size_t size);

/* ---- a growable string (buf.c) ------------------------------------------- */

/* Zero-initialise; on out-of-memory the text is dropped and every later
 * append ignored, so builders check once, at the end. */
struct notifications__buf {
    char *p;
    size_t len, cap;
    bool oom;
};
void notifications__buf_add(struct notifications__buf *b, const char *s, size_t n);
void notifications__buf_str(struct notifications__buf *b, const char *s);
/* The text (malloc'd, the caller frees it; "" when nothing was added), or
 * NULL after an out-of-memory. *len (may be NULL) gets its length. */
char *notifications__buf_finish(struct notifications__buf *b, size_t *len);

/* ---- persistence (repo.c: all the module's SQL) ------------------------- */

/* A notification as stored (the repo's answer; strings malloc'd, released
 * with notifications__rows_release). */
struct notifications__row {
    bh_uuid id;
    char type[64];
    char *title;
    char *body;
    char *data;          /* the JSON object, as text */
    char read_at[40];    /* RFC 3339, "" while unread */
    char created_at[40]; /* RFC 3339 */
};
struct notifications__rows {
    struct notifications__row *v;
    size_t n;
};
void notifications__rows_release(struct notifications__rows *rows);

struct notifications__new {
    bh_uuid id;
    const char *user_id;
    const char *org_id; /* may be NULL */
    const char *type;
    const char *title;
    const char *body;
    const json_t *data;
    const char *event_id;
};

struct notifications__delivery {
    bh_uuid id;
    const char *user_id;
    const char *event_id;
    const char *notification_id; /* may be NULL (in-app off) */
    const char *type;
    const char *to_address;
    const char *to_name;
    const char *subject;
    const char *text_body;
    const char *html_body;
};

/* A claimed delivery, ready to send (strings malloc'd, released with
 * notifications__claimed_release). */
struct notifications__claimed {
    bh_uuid id;
    char *to_address;
    char *to_name;
    char *subject;
    char *text;
    char *html;
    int attempts;
    int64_t created_epoch; /* Unix seconds: the message's Date */
};
void notifications__claimed_release(struct notifications__claimed *d);

/* A user's preferences over the defaults, on tx (or the pool when NULL). */
int notifications__repo_prefs_load(struct bh_tx *tx, const char *user_id,
                                   struct notifications__prefs *out);
int notifications__repo_prefs_replace(struct bh_tx *tx, const char *user_id,
                                      const struct notifications__prefs *p);
/* Inserts n; *created_at (malloc'd RFC 3339) for the live push. */
int notifications__repo_insert(struct bh_tx *tx, const struct notifications__new *n,
                               char **created_at);
int notifications__repo_insert_delivery(struct bh_tx *tx, const struct notifications__delivery *d);
/* Ids of this event's deliveries that were not sent yet: *ids malloc'd
 * (the caller frees it), *n of them. */
int notifications__repo_unsent_for_event(struct bh_tx *tx, const char *event_id, bh_uuid **ids,
                                         size_t *n);
/* A page of user_id's notifications, newest first; limit + 1 rows are
 * asked for so the caller knows whether there is a next page. */
int notifications__repo_list(const char *user_id, bool unread_only, const struct bh_cursor *after,
                             int limit, struct notifications__rows *out);
/* Notifications of user_id created after the one with id last_id: the
 * newest `limit` of them, newest first (the Last-Event-ID resume). */
int notifications__repo_since(const char *user_id, const char *last_id, int limit,
                              struct notifications__rows *out);
/* Marks one notification read: 0, or BH_ENOTFOUND when the user has none
 * with that id. */
int notifications__repo_mark_read(const char *user_id, const char *id);
int notifications__repo_mark_all_read(const char *user_id, long *count);
/* Claims a delivery for one send attempt (a lease, so two copies of the
 * same job cannot both send): *claimed says whether *out was filled.
 * Otherwise *busy tells whether someone else holds the lease (try again
 * later) rather than it being sent already or gone (nothing to do). */
int notifications__repo_claim_delivery(const char *id, int lease_s,
                                       struct notifications__claimed *out, bool *claimed,
                                       bool *busy);
int notifications__repo_delivery_sent(const char *id, const char *transport);
/* Records a failure: attempted says whether the server was tried at all
 * (not when the breaker refused), final marks the delivery failed for good. */
int notifications__repo_delivery_failed(const char *id, const char *error, bool attempted,
                                        bool final);

/* ---- the notification pipeline (service.c) ------------------------------ */

/* One recipient of a notification. */
struct notifications__recipient {
    bh_uuid user_id;
    char email[256]; /* "" when unknown: no email then */
    char name[404];
};

/* What an event handler asks for: vars feed the templates (the recipient's
 * name is added per recipient), data becomes the notification's `data`. */
struct notifications__notice {
    enum notifications__type type;
    const char *consumer; /* the inbox key, "notifications.task_assigned" */
    const char *org_id;   /* may be NULL */
    json_t *vars;         /* borrowed */
    json_t *data;         /* borrowed */
};

/* Idempotently turns ev into notifications for the recipients: inbox
 * check, in-app rows and email deliveries per preferences, all on one
 * transaction; after commit, the live push and the email jobs. A
 * redelivered event only re-enqueues its unsent emails. 0 or a bh_err
 * (the platform retries the event). */
int notifications__deliver(const struct bh_event *ev, const struct notifications__notice *n,
                           const struct notifications__recipient *rcpts, size_t n_rcpts);
/* Attempts of the email job before it goes to the dead letters: with the
 * queue's backoff that covers an SMTP outage of many minutes. */
#define NOTIF_EMAIL_MAX_ATTEMPTS 15
/* The notifications.send_email job: payload {"delivery_id": "..."}. */
int notifications__send_email_job(const struct bh_job *job);
/* A notification as the API shows it. */
json_t *notifications__row_json(const struct notifications__row *row);

/* ---- event consumers (events.c): one per consumed event type ----------- */

int notifications__on_user_signed_up(const struct bh_event *ev);
int notifications__on_member_added(const struct bh_event *ev);
int notifications__on_member_invited(const struct bh_event *ev);
int notifications__on_task_assigned(const struct bh_event *ev);
int notifications__on_task_completed(const struct bh_event *ev);
int notifications__on_task_commented(const struct bh_event *ev);
int notifications__on_invoice_payment_failed(const struct bh_event *ev);
int notifications__on_subscription_changed(const struct bh_event *ev);

/* ---- email transport (transport.c) --------------------------------------- */

/* Result of one send: transient failures are retried (and count against
 * the SMTP circuit breaker), permanent ones are not; refused means the open
 * breaker did not even try. */
enum notifications__send_result {
    NOTIF_SENT,
    NOTIF_SEND_TRANSIENT,
    NOTIF_SEND_PERMANENT,
    NOTIF_SEND_REFUSED
};

int notifications__transport_init(void);
void notifications__transport_shutdown(void);
/* "smtp" when SMTP_URL is set, else "file" (.eml under the data dir). */
const char *notifications__transport_name(void);
/* How long one send may take (NOTIFICATIONS_SMTP_TIMEOUT_MS). */
long notifications__transport_timeout_ms(void);
/* Sends msg (len bytes) from from_addr to to_addr; name is a file-safe
 * stem for the file transport. err receives a short reason on failure. */
enum notifications__send_result notifications__transport_send(const char *from_addr,
                                                              const char *to_addr, const char *msg,
                                                              size_t len, const char *name,
                                                              char *err, size_t err_size);

/* ---- the live stream (stream.h has its parts) ----------------------------- */

/* Publishes a new notification (the API's JSON) to user_id's channel, for
 * every API process streaming to that user. Best effort: 0 or a bh_err. */
int notifications__stream_publish(const char *user_id, const json_t *notification);
/* GET /v1/me/notifications/stream, after auth_authenticate (stream.c):
 * the stream lasts as long as the request's session does. */
int notifications__stream_serve(struct bh_req *req, const char *last_id);
void notifications__stream_shutdown(void);

/* ---- handlers (http.c) -------------------------------------------------- */

int notifications__http_list(struct bh_req *req);
int notifications__http_mark_read(struct bh_req *req);
int notifications__http_mark_all_read(struct bh_req *req);
int notifications__http_get_prefs(struct bh_req *req);
int notifications__http_put_prefs(struct bh_req *req);
int notifications__http_stream(struct bh_req *req);

#endif
