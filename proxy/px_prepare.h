/*
 * px_prepare.h — a session's named prepared statements, and re-preparing them after a
 * swap (issue 14). In the manner of pgbouncer 1.21+ (src/prepare.c, server.c), with the
 * proxy in session mode: the client's statements live on its own server connection, so
 * nothing is renamed; the proxy only records them so that it can create them again when
 * a table's row type changed under them ("cached plan must not change result type").
 *
 * Tracking (px_prep_client_msg, px_prep_server_msg) follows the extended protocol's
 * Parse / Close 'S' and the SQL-level PREPARE / DEALLOCATE [ALL] / DISCARD ALL of simple
 * Query messages. A change counts once the server confirmed it (ParseComplete,
 * CloseComplete, the statement's CommandComplete), so a Parse the server refused is never
 * re-created. Only headers are looked at on the hot path, plus the first body byte of a
 * Parse or Close and the first keyword of a Query; the whole message only for a named
 * Parse, a Close of a statement, a Bind of a tracked statement and a Query whose first
 * keyword is PREPARE, DEALLOCATE or DISCARD. A session that prepares nothing has no
 * px_prep at all. Memory per session: max_prepared_statements_bytes; past it the session
 * stops being tracked (counted in SHOW STATS prepared_untracked).
 *
 * Re-preparing (px_prep_stale_*, px_reprepare.c): see px_reprepare.c.
 *
 * All functions run on the session's worker thread, except px_prep_mark_stale.
 */
#ifndef PX_PREPARE_H
#define PX_PREPARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "osc_engine.h"
#include "pgwire.h"
#include "px_daemon.h"

typedef struct px_prep px_prep;

/* What the relay does with a client message after px_prep_client_msg. */
typedef enum {
    PX_PREP_FORWARD = 0, /* forward it (by length) */
    PX_PREP_MORE = 1,    /* more of its bytes must arrive first: stop here, keep reading */
    PX_PREP_CLOSED = -1, /* the session was failed (malformed message): stop */
} px_prep_verdict;

/*
 * px_prep_client_msg — look at client message h (type and length) that starts at offset
 * off of the session's client input, of which avail bytes are buffered, before it is
 * forwarded. Records Parse/Close/Query effects as pending until the server answers, and
 * how the client binds tracked statements (binary results, Describe). A malformed Parse,
 * Close, Describe or Bind fails the session with 08P01 naming the message. Cheap for
 * every other type (a switch on the type byte).
 */
px_prep_verdict px_prep_client_msg(px_session *s, size_t off, const pgw_header *h, size_t avail);

/* px_prep_watching — whether the server's '1', '3', 'C', 'E', 'Z' must be passed to
 * px_prep_server_msg (a confirmation is pending). */
bool px_prep_watching(const px_session *s);

/* px_prep_server_msg — a server message of this type was relayed to the client (only
 * its header is needed): confirms or drops pending changes. */
void px_prep_server_msg(px_session *s, char type);

/* px_prep_free — free a session's tracking (NULL is ignored). */
void px_prep_free(px_prep *p);

/* px_prep_count — tracked (confirmed) statements of a session, and their bytes. */
int px_prep_count(const px_session *s, size_t *bytes);

/*
 * px_prep_mark_stale — a table's row type changed in database db by migration id: every
 * client session of that database may hold stale plans and re-prepares its statements
 * before its next message (osc_engine_hooks.row_type_changed). The change's cost is
 * counted under (db, migration) for px_prep_change_stats; a session marked again before
 * it re-prepared counts for the later change only. Thread-safe; returns at once.
 */
void px_prep_mark_stale(const char *db, int64_t migration);

/*
 * px_prep_change_stats — what re-preparing after migration id of db has cost so far
 * (osc_engine_hooks.reprepare_stats). The last PX_PREP_CHANGES changes of this process
 * are kept; false for an older one or one this process never saw. Thread-safe.
 */
bool px_prep_change_stats(const char *db, int64_t migration, osc_reprepare_stats *out);

/* Result of px_prep_stale_check. */
typedef enum {
    PX_STALE_GO,      /* nothing to do now: forward the client's message */
    PX_STALE_WAIT,    /* wait for the server's outstanding answers (on_ready resumes) */
    PX_STALE_BUSY,    /* re-preparing: the client's message waits for px_prep_consume */
    PX_STALE_CLOSED,  /* the session was failed */
} px_stale_verdict;

/*
 * px_prep_stale_check — called before forwarding a stale session's next message at a
 * Sync boundary. Starts the re-prepare when the server has answered everything and the
 * transaction is not aborted; with nothing tracked clears the mark.
 */
px_stale_verdict px_prep_stale_check(px_session *s);

/* px_prep_busy — a re-prepare is in flight: the server's bytes go to px_prep_consume. */
bool px_prep_busy(const px_session *s);

/*
 * px_prep_consume — read the server's answers to the re-prepare from s->server->in (whole
 * messages only; NotificationResponse and ParameterStatus go on to the client, the rest
 * is the proxy's). Returns 1 when the re-prepare finished (the caller resumes the
 * client), 0 when more answers are due, -1 when the session was failed.
 */
int px_prep_consume(px_session *s);

#endif
