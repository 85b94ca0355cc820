/*
 * osc_rights.h — who the engine's SQL runs as (README "Security model"). The rule:
 * whatever a user's text or a user's objects make PostgreSQL execute runs with the rights
 * PostgreSQL would use if that user ran the statement directly; the engine's own
 * bookkeeping runs with search_path = pg_catalog, pg_temp on objects it owns.
 *
 *   the console user's statement (PLAN, the trial, the ALTER on the shadow)
 *                                     the console user, through OSC_AS_USER
 *   backfill, verify, dual-write      the table's owner, through OSC_AS_OWNER and the
 *                                     SECURITY DEFINER dual-write function it owns
 *   state, shadow creation, cutover   the engine's role
 *
 * An executor is a SECURITY DEFINER plpgsql function in the engine session's temporary
 * schema (no other session can call it), owned by the role to run as, that EXECUTEs a
 * statement. Inside a SECURITY DEFINER function PostgreSQL refuses SET ROLE, RESET ROLE
 * and SET SESSION AUTHORIZATION (guc.c, GUC_NOT_WHILE_SEC_REST), so code the statement
 * reaches cannot climb back to the engine's role — the shape of PostgreSQL's own fix for
 * CVE-2022-1552 (VACUUM/REINDEX switch to the table owner).
 */
#ifndef OSC_RIGHTS_H
#define OSC_RIGHTS_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

/* The search_path the engine's connections and its own functions use. */
#define OSC_SAFE_PATH "pg_catalog, pg_temp"

/*
 * osc_rights_executor — create (or replace) pg_temp.<name>(sql text, args text[],
 * want_row bool, path text DEFAULT NULL) on connection c, owned by role. When path is not
 * NULL the statement's names resolve with it (like a session of that role would), else
 * with OSC_SAFE_PATH; the setting ends with the call. Returns false with err filled
 * (42501 in code when the engine may not give the function to role: it must be superuser
 * or a member of role).
 */
bool osc_rights_executor(PGconn *c, const char *name, const char *role, char *err, size_t errlen,
                         char code[6]);

/*
 * osc_rights_bind_expr — expr (an expression over the columns of schema.table, as in an
 * ALTER's USING) with every function, operator, type and relation name resolved now with
 * search_path path and written schema-qualified, so that later evaluation under
 * OSC_SAFE_PATH means the same objects (PostgreSQL resolves it: a temporary view's
 * pg_get_viewdef under OSC_SAFE_PATH). Column references come out qualified by the
 * table's name. Must run inside the caller's transaction; *out is malloc'ed (caller
 * frees). false with err/code filled when the expression does not parse or resolve.
 */
bool osc_rights_bind_expr(PGconn *c, const char *schema, const char *table, const char *expr,
                          const char *path, char **out, char *err, size_t errlen, char code[6]);

/*
 * osc_rights_regclass — the oid (as text into oid, "0" when there is none) the relation
 * name qname (quoted as SQL writes it) means with search_path path — as a session of the
 * user would resolve it — the engine's OSC_SAFE_PATH restored after. false with err/code
 * on a database error.
 */
bool osc_rights_regclass(PGconn *c, const char *qname, const char *path, char oid[16], char *err,
                         size_t errlen, char code[6]);

/*
 * osc_rights_user_path — the search_path a new session of role would start with when no
 * setting overrides it: "role", public (PostgreSQL's default "$user", public spelled out,
 * so that it means the console user, not the engine). *out malloc'ed.
 */
char *osc_rights_user_path(const char *role);

/*
 * osc_rights_explain_rows — how many rows PostgreSQL's planner expects sql (an UPDATE or
 * DELETE) to touch: EXPLAIN (FORMAT JSON) run as role (a SECURITY DEFINER function in
 * pg_temp owned by role, like osc_rights_executor: planning can run the user's immutable
 * functions) with search_path path; the "Plan Rows" of the modify node's input. Nothing
 * is executed. false with err/code (the statement does not plan, e.g. 42P01).
 */
bool osc_rights_explain_rows(PGconn *c, const char *role, const char *sql, const char *path,
                             double *rows, char *err, size_t errlen, char code[6]);

#endif
