/*
 * osc_revert.h — REVERT MIGRATION n for the strategies that change only the catalog or
 * add an index or a constraint (issue 16, "Reverts of the other strategies where exact"):
 * instant, validate and concurrent migrations of a table. Every such migration records,
 * in the transaction of its change (or when its job begins), the table's catalog before
 * it (settings.catalog_before, OSC_CATALOG_SNAPSHOT_SQL); the revert compares that with
 * the catalog now and runs the inverse, each statement through the strategies' planner
 * like any console statement:
 *   a renamed column          renamed back (instant)
 *   a changed default         the old one set again, or dropped (instant)
 *   SET / DROP NOT NULL       the other (DROP: instant; SET: validate, no scan under the lock)
 *   an added constraint       dropped; a dropped one added again (validate)
 *   an added index            dropped, a dropped one built again (concurrent)
 *   an added column           dropped — its data since is lost, so only with
 *                             REVERT MIGRATION n ACCEPT DATA LOSS
 * and refuses, naming why, what has no exact inverse: a dropped column (its data is
 * gone), a changed column type, a migration followed by a later change of the same table
 * (revert that first), a table whose catalog differs from the one recorded right after
 * the migration (settings.catalog_after: changed outside pgcutover), a direct statement.
 * A copy migration is reverted through its revert window instead (osc_window.h; the
 * engine's REVERT command takes that path first, osc_revert_verdict says so).
 */
#ifndef OSC_REVERT_H
#define OSC_REVERT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "osc_result.h"

/* The catalog of table oid (an SQL expression of type oid) as jsonb: columns (attnum,
 * name, type, NOT NULL, default), constraints (name, definition) and the indexes no
 * constraint owns (name, definition). Names and expressions as PostgreSQL prints them
 * under the caller's search_path (the engine's pinned one: schema-qualified). */
#define OSC_CATALOG_SNAPSHOT_SQL(oid)                                                              \
    "pg_catalog.jsonb_build_object('cols', (SELECT coalesce(pg_catalog.jsonb_agg("                  \
    "pg_catalog.jsonb_build_object('n', a.attnum, 'name', a.attname, 'type', "                      \
    "pg_catalog.format_type(a.atttypid, a.atttypmod), 'notnull', a.attnotnull, 'default', "        \
    "pg_catalog.pg_get_expr(d.adbin, d.adrelid)) ORDER BY a.attnum), '[]') FROM "                   \
    "pg_catalog.pg_attribute a LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND "   \
    "d.adnum = a.attnum WHERE a.attrelid = " oid " AND a.attnum > 0 AND NOT a.attisdropped), "    \
    "'cons', (SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('name', "         \
    "c.conname, 'def', pg_catalog.pg_get_constraintdef(c.oid))), '[]') FROM "                      \
    "pg_catalog.pg_constraint c WHERE c.conrelid = " oid "), 'idx', (SELECT coalesce("           \
    "pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('name', ci.relname, 'def', "               \
    "pg_catalog.pg_get_indexdef(i.indexrelid))), '[]') FROM pg_catalog.pg_index i JOIN "            \
    "pg_catalog.pg_class ci ON ci.oid = i.indexrelid WHERE i.indrelid = " oid " AND NOT EXISTS " \
    "(SELECT FROM pg_catalog.pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = " \
    oid ")))"

/*
 * osc_revert_command — REVERT MIGRATION id [ACCEPT DATA LOSS] (plan false), or PLAN
 * REVERT MIGRATION id (plan true: the inverse statements, nothing run), for console user
 * `user` on c (a connection to db; the owner rule was checked by the caller). *r gets one
 * row per inverse statement (step, sql, strategy, note) — with plan the strategy column is
 * PLAN's — or the error: 0A000 with the reasons when there is no exact inverse, 55000
 * when the migration is not done or was reverted already, 22023 when the inverse drops
 * data and ACCEPT DATA LOSS was not said, or the first failing statement's own error.
 * The migration's row records the revert (settings.reverted_by, phase).
 */
void osc_revert_command(PGconn *c, const char *db, const char *user, int64_t id, bool plan,
                        bool accept_loss, osc_result *r);

/*
 * osc_revert_check — migration id's refusals ("; "-joined into why, "" when none) and the
 * columns its revert drops (", "-joined into loses, "" when none), both computed whatever
 * the other says. false with why = the database error.
 */
bool osc_revert_check(PGconn *c, int64_t id, char *why, size_t len, char *loses, size_t llen);

/*
 * osc_revert_verdict — whether migration id can be reverted now, for SHOW MIGRATION n's
 * revertible column: "yes", "yes, dropping column …" or "no: <why>" into out (len bytes).
 */
void osc_revert_verdict(PGconn *c, int64_t id, char *out, size_t len);

#endif
