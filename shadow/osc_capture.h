/*
 * osc_capture.h — applying the change log (osc_sql.h, "The change capture"): the engine
 * makes the shadow equal to the original for every key the application wrote, by
 * re-reading those keys' current rows in its own transaction. Runs on the migration
 * driver's connection, which must have the owner's executor (OSC_AS_OWNER): the shadow's
 * defaults, CHECKs and USING expressions are evaluated with the table owner's rights and
 * the engine session's settings (TimeZone, DateStyle …), exactly as the backfill does.
 */
#ifndef OSC_CAPTURE_H
#define OSC_CAPTURE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "osc_sql.h"

/*
 * osc_capture_apply — apply every log row the transaction's snapshot sees. With own_txn,
 * in a REPEATABLE READ transaction of its own (committed on success, rolled back on
 * failure); without, in the caller's transaction (the verify's, REPEATABLE READ, or the
 * cutover's, under its ACCESS EXCLUSIVE lock). *applied (may be NULL) gets the number of
 * log rows applied. false with err and code (SQLSTATE) on failure: a row the shadow
 * rejects (a CHECK or cast the ALTER adds) is a failure of the migration, reported here.
 */
bool osc_capture_apply(PGconn *c, const osc_map *m, bool own_txn, int64_t *applied, char *err,
                       size_t errlen, char code[6]);

/* osc_capture_backlog — the number of log rows committed and not yet applied, or -1 with
 * err/code on failure. */
int64_t osc_capture_backlog(PGconn *c, const osc_map *m, char *err, size_t errlen, char code[6]);

#endif
