/*
 * osc_sql.h — the SQL the engine runs, generated from a migration's column map. Pure
 * code (no database): unit-tested in tests/unit/test_osc_sql.c.
 *
 * The map says, for every column of the shadow table, how its value is computed from
 * a row of the original: an expression over the original's columns (a plain column
 * reference, or the ALTER's USING expression), or none (added and generated columns
 * take their default). Expressions are evaluated where the original's row is visible
 * under the original's own table name, so "col" and "table.col" both resolve:
 * FROM ONLY schema.table in the backfill and verify, and FROM (SELECT NEW.*) AS table
 * in the dual-write trigger (PostgreSQL "Trigger Functions", plpgsql-trigger.html).
 *
 * Every identifier is double-quoted (quote_ident rules: embedded quotes doubled);
 * every generated string is malloc'ed and owned by the caller; NULL means out of memory.
 */
#ifndef OSC_SQL_H
#define OSC_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OSC_MAX_KEYS 16

typedef struct {
    char *name;           /* shadow column name */
    char *type;           /* format_type() of the shadow column */
    char *expr;           /* value from the original's row; NULL = not copied */
    bool identity_always; /* GENERATED ALWAYS AS IDENTITY: never in DO UPDATE SET */
    /* A revert window's map only (osc_map.window), what a write must fit: */
    char *from_type;      /* the original's column type when the shadow's may reject its
                           * values (a narrower type); NULL = every value fits */
    bool not_null;        /* the shadow column is NOT NULL and its source may be NULL */
    bool needs_value;     /* NOT NULL, no default and not written: an INSERT cannot fit */
} osc_col;

typedef struct {
    int64_t id;
    char *schema, *table;               /* the original */
    char *shadow_schema, *shadow_table; /* the shadow */
    int nkeys;
    char *key_name[OSC_MAX_KEYS];       /* key columns in the original */
    char *key_type[OSC_MAX_KEYS];       /* their format_type() in the original */
    int key_col[OSC_MAX_KEYS];          /* index in cols of the shadow's key column */
    /* Schemas of the btree operators (=, <, >, …) of the key's index on the original and
     * on the shadow (NULL = pg_catalog): every comparison of keys is written
     * OPERATOR(schema.op), so no search_path can substitute an operator. */
    char *key_ops, *shadow_key_ops;
    char *owner;                        /* the original's owner (role name): the dual-write
                                         * function and the backfill run as this role */
    bool key_coll_changed;              /* a key column's collation differs on the shadow:
                                         * the original's key order is not the shadow's */
    bool window;                        /* a revert window (osc_window.h): the trigger also
                                         * records writes the shadow cannot hold */
    int nchecks;                        /* a window's shadow's CHECK constraints the original
                                         * lacks: name and expression, 2 × nchecks strings */
    char **checks;
    int ncols;
    osc_col *cols;
} osc_map;

/* A small growable string. */
typedef struct {
    char *s;
    size_t len, cap;
    bool oom;
} osc_sb;

void osc_sb_addf(osc_sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* osc_sb_ident — append name double-quoted. */
void osc_sb_ident(osc_sb *b, const char *name);
/* osc_sb_qualified — append "schema"."table" (just "table" when schema is NULL). */
void osc_sb_qualified(osc_sb *b, const char *schema, const char *table);
/* osc_sb_text_array — append ARRAY[$first::text, …] of n parameters (a key as text[]). */
void osc_sb_text_array(osc_sb *b, int first, int n);
/* osc_sb_literal — append s as a SQL string literal, correct whatever
 * standard_conforming_strings is (E'' with doubled backslashes when s has any), like
 * libpq's PQescapeLiteral. */
void osc_sb_literal(osc_sb *b, const char *s);
/* osc_sb_take — the built string (caller frees), or NULL (and freed) on out of memory. */
char *osc_sb_take(osc_sb *b);

/* osc_map_free — release every string and the column array; safe on a zeroed map. */
void osc_map_free(osc_map *m);

/* osc_map_keys_plain — every shadow key column is a plain copy of its original key
 * column (no USING), so key ranges of the original are key ranges of the shadow. */
bool osc_map_keys_plain(const osc_map *m);

/* osc_map_keys_ordered — plain, and each key keeps its type or widens it within the
 * integers (smallint → integer → bigint), so key ranges of the original select the same
 * rows of the shadow (verify compares range by range only then), and no key column
 * changes its collation (key_coll_changed). */
bool osc_map_keys_ordered(const osc_map *m);

/*
 * The executor (osc_rights.h): pg_temp.<OSC_AS_OWNER>(sql text, args text[], want_row bool,
 * path text) is a SECURITY DEFINER function in the engine session's own temporary schema,
 * owned by the table's owner, that EXECUTEs sql USING args (inside sql, $1[n] is the n-th
 * key parameter, as text). It returns the first row of sql (one text[] column) when
 * want_row, else ARRAY[rows affected]. Whatever the statement evaluates — the ALTER's
 * USING expressions, the table's defaults, CHECKs and index expressions and the functions
 * they call — runs with the owner's rights, and inside a SECURITY DEFINER function
 * PostgreSQL refuses SET ROLE, RESET ROLE and SET SESSION AUTHORIZATION, so nothing can
 * climb back to the engine's role (the model is CVE-2022-1552's fix).
 */
#define OSC_AS_OWNER "pgc_as_owner"
#define OSC_AS_USER "pgc_as_user"

/* Names of a migration's objects: the dual-write function pgcutover.m<id>_dw(), its
 * row trigger pgcutover_m<id>_dw and statement trigger pgcutover_m<id>_truncate. */
void osc_sql_function_name(int64_t id, char *buf, size_t len);

void osc_sql_trigger_name(int64_t id, bool truncate, char *buf, size_t len);

/*
 * The change capture (DESIGN.md §2.3). The dual-write trigger only logs the keys an
 * application write touches into pgcutover.m<id>_log — the old key of an UPDATE or DELETE
 * (with, for a key computed by USING, the shadow key the old row maps to), the new key of
 * an INSERT or of an UPDATE that changes the key, or a TRUNCATE marker — in the writer's
 * transaction, so it commits or rolls back with the write. It never reads or writes the
 * shadow: no snapshot, isolation level or session setting of the writer matters, and it
 * raises no error PostgreSQL would not raise. The engine applies the log (osc_sql_apply)
 * in its own REPEATABLE READ transactions by re-reading the current row of every logged
 * key from the original: idempotent and order-free, so the shadow equals the original as
 * of the apply's snapshot for every key ever written or copied.
 */

/* osc_sql_log_name — "m<id>_log", the change log's name in schema pgcutover. */
void osc_sql_log_name(int64_t id, char *buf, size_t len);

/* osc_sql_create_log — CREATE TABLE IF NOT EXISTS pgcutover.m<id>_log (pgc_op "char",
 * k0…: the original's key columns, s0…: the shadow's, with their types and collations,
 * by CREATE TABLE AS … WITH NO DATA), owned by m->owner; for a revert window (m->window)
 * also pgcutover.m<id>_faults (key text, reason text, at timestamptz): the writes since
 * the swap that the old table could not hold, recorded by the trigger (osc_window.h). */
char *osc_sql_create_log(const osc_map *m);

/*
 * osc_sql_trigger_function — CREATE OR REPLACE FUNCTION for the dual-write trigger
 * (see above). SECURITY DEFINER owned by the table's owner (m->owner) with search_path =
 * pg_catalog, pg_temp and every name and operator schema-qualified: it writes with the
 * owner's rights, never the engine's, and no writable schema can substitute a function
 * or operator (CVE-2018-1058). Application roles need no rights on schema pgcutover.
 * With noop, the body does nothing (how a failed or aborted migration stops writing
 * before its triggers can be dropped; ownership is kept). NULL when m->owner is not set
 * (and not noop): the function is never left the engine's.
 */
char *osc_sql_trigger_function(const osc_map *m, bool noop);
/* osc_sql_create_triggers — CREATE TRIGGER (row and truncate) + ENABLE ALWAYS. */
char *osc_sql_create_triggers(const osc_map *m);
/* osc_sql_drop_triggers — DROP TRIGGER IF EXISTS both. */
char *osc_sql_drop_triggers(const osc_map *m);
/* osc_sql_drop_functions — DROP FUNCTION IF EXISTS the dual-write function and DROP
 * TABLE IF EXISTS the change log and the faults table. */
char *osc_sql_drop_functions(const osc_map *m);

/*
 * osc_sql_apply — the n-th statement (0 ≤ n < OSC_APPLY_STEPS) of one application of the
 * change log, each to run through the owner's executor (OSC_AS_OWNER, no parameters), all
 * in one REPEATABLE READ transaction (or under the cutover's lock), so every statement
 * sees the same log rows and the same original:
 *   0  the shadow key of every logged key (s = k: an assignment cast, as the backfill's
 *      INSERT makes it) when the key changes type or collation (USING keys carry theirs
 *      from the trigger; an unchanged key is its own shadow key: NULL, nothing to do)
 *   1  after a TRUNCATE marker, delete every shadow row
 *   2  delete the shadow rows of the logged keys (a revert window's map, osc_window.h:
 *      only those whose row is gone from the original, so the columns the map does not
 *      write — a column the change dropped — keep their values in step 3's upsert)
 *   3  copy the logged keys' current rows from the original (ON CONFLICT (key) DO UPDATE
 *      every column, the key's spelling too)
 *   4  delete the log rows applied (exactly those this snapshot sees)
 * Statement 4's row count is the number of log rows applied. Steps 2 and 3 reach the
 * tables through their key index (the logged first key column as an ARRAY, whatever the
 * planner guesses of the log). NULL for a step with nothing to do (step 0, see above) or
 * out of memory (*oom set).
 */
#define OSC_APPLY_STEPS 5
char *osc_sql_apply(const osc_map *m, int n, bool *oom);
/* osc_sql_log_count — SELECT ARRAY[count(*)::text] FROM the log (through the executor). */
char *osc_sql_log_count(const osc_map *m);

/*
 * osc_sql_backfill — one keyset batch as a single statement, so the batch and its
 * checkpoint commit together: copy the original's rows with key > $last (when has_last)
 * and key <= $end as this statement's snapshot sees them (a write committed after it is
 * in the change log, applied after the round), mapped into the shadow —
 * with on_conflict, ON CONFLICT (key) DO NOTHING (rows the log's application wrote win);
 * without, a plain INSERT, about twice as fast, for a range the application of the log has
 * not written into (osc_sql_shadow_has) — count its rows
 * in rows_copied and move the checkpoint to $end when it stands at $last (of parallel
 * batches, the one that starts at the checkpoint moves it). The batch's end comes from osc_sql_chunk_end, so no ORDER BY
 * or LIMIT over the rows is needed. Parameters: $1..$k last key (has_last only), then the
 * end key, then the migration id. One row: rows inserted, checkpoint moved (0 or 1).
 * The INSERT runs through the owner's executor (OSC_AS_OWNER, which the connection must
 * have); the checkpoint is the engine's.
 */
char *osc_sql_backfill(const osc_map *m, bool has_last, bool on_conflict);
/* osc_sql_shadow_has — SELECT 1 when the shadow holds a row with key in ($last, $end]
 * (has_last) or (-inf, $end]; only for osc_map_keys_ordered maps. Parameters as
 * osc_sql_backfill without the id. */
char *osc_sql_shadow_has(const osc_map *m, bool has_last);
/* osc_sql_max_key — SELECT the original's greatest key, one text column per key part. */
char *osc_sql_max_key(const osc_map *m);

/*
 * osc_sql_verify — count and order-independent hash of the mapped columns of rows with
 * key in ($lo, $hi] (each bound optional), on the original (shadow = false; each
 * expression cast to its shadow column's type) or on the shadow. Parameters: lo's key
 * parts, then hi's. One row: count, hash (both as text). Runs through the owner's
 * executor (the USING expressions are the table's owner's business, not the engine's).
 */
char *osc_sql_verify(const osc_map *m, bool shadow, bool has_lo, bool has_hi);
/* osc_sql_chunk_end — the n-th key of the original after $lo (has_lo) and not above $hi
 * (has_hi), as text columns; no row when fewer remain. Parameters: lo's key parts, then
 * hi's, then n. Batch ends for the backfill, range ends for verify. */
char *osc_sql_chunk_end(const osc_map *m, bool has_lo, bool has_hi);

#endif
