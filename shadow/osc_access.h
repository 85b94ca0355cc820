/*
 * osc_access.h — who may act on a migration (README "Security model"): the one rule of
 * every console command on a migration (SHOW, PAUSE, RESUME, SET, CUTOVER, ABORT, DROP,
 * REVERT), and the pinned read-only transaction its catalog reads run in.
 */
#ifndef OSC_ACCESS_H
#define OSC_ACCESS_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "osc_result.h"

/*
 * OSC_MAY_ACT_SQL — a boolean SQL expression: a superuser, or a role with
 * pg_has_role(user, owner, 'USAGE') — the owner of the table or a member that inherits
 * its rights (as ALTER's own admission, osc_plan.c table_sql). Which table: the one the
 * migration recorded by OID (the original; a cutover keeps that relation as the old
 * table, so the OID names it until DROP MIGRATION); when that relation is gone, for a
 * done migration only, the table now bearing the migration's name (the one the cutover
 * swapped in, which it gave the original's owner); otherwise (the table dropped)
 * superusers only. Never the recorded started_by: ownership changes after the start
 * count. $1 is the user (the name PostgreSQL authenticated); m is pgcutover.migrations.
 * Run it only between osc_access_pin_begin and osc_access_pin_end.
 */
#define OSC_MAY_ACT_SQL                                                                          \
    "(coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = $1), false) "   \
    "OR coalesce(pg_catalog.pg_has_role($1, coalesce("                                          \
    "(SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = m.table_oid), "                \
    "(SELECT c.relowner FROM pg_catalog.pg_class c WHERE m.state = 'done' AND c.oid = "         \
    "pg_catalog.to_regclass(pg_catalog.quote_ident(m.table_schema) || '.' || "                 \
    "pg_catalog.quote_ident(m.table_name)))), 'USAGE'), false))"

/* osc_access_pin_begin — BEGIN READ ONLY with search_path = pg_catalog, pg_temp, so no
 * object a user made can stand in for a catalog's (functions, operators, views). False
 * with err. osc_access_pin_end rolls it back. */
bool osc_access_pin_begin(PGconn *c, char *err, size_t errlen);
void osc_access_pin_end(PGconn *c);

typedef enum { OSC_MAY_YES, OSC_MAY_NO, OSC_MAY_MISSING, OSC_MAY_ERROR } osc_may;

/* osc_access_may_act — whether user may act on migration id (OSC_MAY_ACT_SQL); table
 * gets "schema.table" (quoted as needed) when the migration exists, err the reason of
 * OSC_MAY_ERROR. */
osc_may osc_access_may_act(PGconn *c, const char *user, int64_t id, char *table, size_t tlen,
                           char *err, size_t errlen);

/* osc_access_no_such — answer *r with 42P01: database db has no migration id. */
void osc_access_no_such(osc_result *r, int64_t id, const char *db);

/* osc_access_check — osc_access_may_act as a command's answer: true when user may act on
 * id, else false with *r answered 42P01 (no such migration), 42501 (not the owner; as
 * PostgreSQL's "must be owner of table") or XX000. */
bool osc_access_check(PGconn *c, const char *db, const char *user, int64_t id, osc_result *r);

#endif
