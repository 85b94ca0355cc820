/*
 * osc_backfill.h — the copy of a backfill round (DESIGN.md §2.4) on parallel
 * connections: the next ranges of `batch` keys after the checkpoint are copied at the
 * same time, each by one INSERT … SELECT on its own connection and in
 * its own transaction, which also moves the checkpoint when its range starts at it.
 * A range the log's application has not written into yet is copied with a plain INSERT
 * (about twice as fast); otherwise, and after a 23505, with ON CONFLICT (key) DO NOTHING.
 * Rows are read at each batch's own snapshot, without row locks: a write committed after
 * it is in the change log, applied after the round (osc_capture.h). A round either copies
 * every range or reports an error: running it again is safe, as copying a range twice
 * changes nothing (ON CONFLICT).
 */
#ifndef OSC_BACKFILL_H
#define OSC_BACKFILL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "osc_sql.h"

/* Connections copying at once (the machine this was measured on has 2 cores). */
#define OSC_BACKFILL_WORKERS 2

typedef struct {
    const osc_map *map;
    PGconn *worker[OSC_BACKFILL_WORKERS];
    char *copy[2][2];  /* [has_lo][on_conflict] */
    char *has[2];      /* [has_lo] */
    char *ends[2];     /* [has_lo] */
    char ids[32];
} osc_backfill;

/*
 * osc_backfill_open — statements for m and one connection per worker to database db
 * (application_name "pgcutover m<id> w<n>", deadlock_timeout and lock_timeout short so
 * the engine, not the application, yields on a conflict). false with err on failure;
 * osc_backfill_close releases what was opened either way.
 */
bool osc_backfill_open(osc_backfill *b, const osc_map *m, const char *db, char *err, size_t errlen);
void osc_backfill_close(osc_backfill *b);

/*
 * osc_backfill_round — copy up to nranges ranges of `batch` keys after last (has_last;
 * key parts as text, malloc'ed, replaced by the round's end on success) and not above
 * max, using coordinator connection c for the range ends and the checkpoint. Adds the
 * rows inserted to *rows and sets *final when max was reached. On failure returns false
 * with err and the SQLSTATE in code (last unchanged; the caller may run it again).
 */
bool osc_backfill_round(osc_backfill *b, PGconn *c, char **last, bool *has_last, char **max,
                        int batch, int nranges, int64_t *rows, bool *final, char *err,
                        size_t errlen, char code[6]);

#endif
