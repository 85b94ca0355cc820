/*
 * osc_plan.h — plan and prepare (DESIGN.md §2 steps 1-2): read the operator's ALTER
 * TABLE (osc_stmt), check the table in the live catalog (ordinary, not temporary, not
 * partitioned or inherited, a primary key or NOT NULL unique key, owned by the
 * operator), then build the shadow table inside a transaction — LIKE … INCLUDING ALL,
 * reloptions, outgoing foreign keys NOT VALID, the ALTER retargeted at it — and read
 * the column map by attnum, recorded before the ALTER so renames map correctly.
 * PLAN rolls that transaction back (nothing changes, but the ALTER is proven to work);
 * prepare commits it together with the map and the migration row's update.
 */
#ifndef OSC_PLAN_H
#define OSC_PLAN_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "osc_result.h"
#include "osc_sql.h"
#include "osc_stmt.h"

#define OSC_MAX_WARNINGS 16

/* How a statement is run (issue 13; more strategies follow): */
typedef enum {
    OSC_STRATEGY_COPY,    /* the shadow table engine (DESIGN.md §2) */
    OSC_STRATEGY_INSTANT, /* catalog only: the statement itself, under the proxy's hold */
    OSC_STRATEGY_VALIDATE, /* catalog only but for CHECKs / FOREIGN KEYs it adds: those NOT
                            * VALID under the hold, then VALIDATE CONSTRAINT apart */
} osc_strategy;

typedef struct {
    osc_stmt stmt;
    char *sql;                 /* the statement as given; malloc'ed */
    uint32_t table_oid;
    int64_t rows_estimated;
    char key_desc[512];        /* "(id) from primary key accounts_pkey", or "none usable" */
    bool keyless;              /* no primary key nor NOT NULL unique key: no copy */
    bool key_ops_mixed;        /* the key's operators live in several schemas: no copy */
    bool force_copy;           /* a copy whatever the verdict (instant_ddl = off; set by
                                * osc_plan_shadow itself when it prepares a copy) */
    char *create_sql;          /* the shadow's CREATE TABLE (+ reloptions, foreign keys) */
    char *alter_sql;           /* the ALTER retargeted at the shadow */
    osc_map map;               /* shadow names and columns; map.id as given */
    char *user;                /* the console user, as whom the statement is tried */
    osc_strategy strategy;     /* PostgreSQL's verdict on the trial (osc_plan_shadow) */
    char why[512];             /* that verdict in words, for PLAN */
    int nwarnings;
    char *warnings[OSC_MAX_WARNINGS];
} osc_plan;

/*
 * osc_plan_check — parse sql and check its table in c's catalog for console user
 * `user`; fills p->stmt, table_oid, rows_estimated, key_desc and p->map's original
 * names, key, key operators' schema and owner. The table's name resolves with the user's
 * default search_path (osc_rights_user_path), the catalog with pg_catalog only. On refusal returns false with the SQLSTATE and a message that says what
 * to do instead in *r (42601, 42P01, 42501, 0A000).
 */
bool osc_plan_check(PGconn *c, const char *sql, const char *user, osc_plan *p, osc_result *r);

/*
 * osc_plan_bound — the objects PostgreSQL records as bound to table table_oid (or its row
 * type) by OID that a swap does not carry over (SQL-body functions, rules, materialized
 * views, other tables' defaults and policies, …: after a swap they would go on using the
 * table swapped out), described and joined by "; " into found ("" when none). For the
 * admission of a change and again under the cutover's lock (objects made since). False
 * with err and code when the catalog cannot be read.
 */
bool osc_plan_bound(PGconn *c, unsigned table_oid, char *found, size_t flen, char *err,
                    size_t errlen, char code[6]);

/*
 * osc_plan_shadow — after osc_plan_check: in one transaction create the shadow
 * pgcutover.<shadow_name> (refused with 42501 when schema pgcutover is not the
 * engine's, osc_state_trusted) owned by the table's owner, apply the ALTER as the console
 * user (osc_rights.h: its names resolve with the user's search_path, its code runs with
 * the user's rights), bind its USING expressions (osc_rights_bind_expr) and read the
 * column map into p->map (id given). Sets p->strategy from PostgreSQL's own verdict on
 * that trial, not from a list of subcommands: instant when the copy's table and indexes
 * kept their storage (relfilenode: nothing was rewritten or built) and no subcommand
 * validates existing rows (osc_cmd.scans); copy otherwise. keep = false rolls everything back (PLAN); keep = true also saves the map and
 * the migration row's names/key/estimate and commits (prepare). On failure (the ALTER
 * fails on the shadow, the key does not survive it, a lock times out) returns false
 * with *r filled; nothing is left behind.
 */
bool osc_plan_shadow(PGconn *c, osc_plan *p, int64_t id, const char *shadow_name, int lock_timeout_ms,
                     bool keep, osc_result *r);

/*
 * osc_plan_catalog_only — after osc_plan_check: whether p's statement is made only of
 * subcommands that change the catalog alone by construction (OSC_CMD_CATALOG, which name
 * triggers, rules or indexes an empty copy does not have, so no trial on one). Returns 1
 * and sets p->strategy and p->why when it is (instant; validate when every subcommand is
 * VALIDATE CONSTRAINT, which scans under SHARE UPDATE EXCLUSIVE and runs outside the
 * hold); 0 when the statement has none of them (the trial decides); -1 with 0A000 in *r
 * when it mixes them with others (run them in a statement of their own).
 */
int osc_plan_catalog_only(osc_plan *p, osc_result *r);

/* OSC_STORAGE_SQL — one text row: the relfilenodes of $1::regclass and of its indexes,
 * sorted; a rewrite, a rebuilt or a new index changes it (PostgreSQL's own verdict on
 * whether a statement rewrote anything). */
#define OSC_STORAGE_SQL                                                                          \
    "SELECT string_agg(c.relfilenode::text, ',' ORDER BY c.relfilenode) FROM pg_class c WHERE " \
    "c.oid = $1::regclass OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = "      \
    "$1::regclass)"

/* osc_plan_free — release *p; safe on a zeroed plan. */
void osc_plan_free(osc_plan *p);

/* osc_plan_table_name — "<table>_<id>_<suffix>" (suffix "new" for the shadow, "old" for
 * the original after the swap), the table name cut so it fits in 63 bytes. */
void osc_plan_table_name(const char *table, int64_t id, const char *suffix, char *buf, size_t len);

#endif
