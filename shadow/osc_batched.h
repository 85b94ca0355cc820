/*
 * osc_batched.h — a batched data migration run (issue 15, "Data migrations"): one UPDATE
 * or DELETE applied to its table in key ranges of `batch_size` rows (keyset pagination,
 * osc_batched_sql.h), each range its own transaction that also records the range's upper
 * key as the migration's checkpoint — so after a crash or a failure the statement goes on
 * after the last committed range and every row is changed exactly once. Each range runs
 * as the user through the rights executor (osc_rights.h), with lock_timeout and retries;
 * max_rows_per_second throttles it. Recorded in pgcutover.migrations (strategy 'batched',
 * state copying → done | failed; rows_copied counts the rows the statement changed).
 */
#ifndef OSC_BATCHED_H
#define OSC_BATCHED_H

#include <libpq-fe.h>
#include <stdint.h>

#include "conf.h"
#include "osc_result.h"

/*
 * osc_batched_run — run sql (an UPDATE or DELETE) batched as `user` on c. resume: the id
 * of this statement's earlier migration row to continue from its checkpoint, or 0 for a
 * new one. *r gets one row (id, table, state done, strategy batched) or the error that
 * stopped it (the row is then failed, its checkpoint kept for a resume). Refused: a
 * table without a primary key or NOT NULL unique key (0A000), an UPDATE that assigns to
 * a key column (0A000: the ranges would move under it).
 */
void osc_batched_run(PGconn *c, const char *user, const char *sql, int64_t resume, const conf_t *s,
                     osc_result *r);

/*
 * osc_batched_recover — at start, in database db: batched statements left in copying by a
 * pgcutover that stopped (their session's advisory lock (OSC_LOCK_CLASS, id) is free) are
 * failed with "interrupted by a restart", their checkpoint kept, so running the statement
 * again (migrate up, or osc_batched_run with resume) goes on after it. One another live
 * pgcutover runs is left alone.
 */
void osc_batched_recover(PGconn *c, const char *db);

#endif
