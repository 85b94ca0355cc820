/* osc_rights.c — see osc_rights.h. */
#include "osc_rights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "osc_db.h"
#include "osc_sql.h"

bool osc_rights_executor(PGconn *c, const char *name, const char *role, char *err, size_t errlen,
                         char code[6])
{
    osc_sb b = {0};
    osc_sb_addf(&b, "CREATE OR REPLACE FUNCTION pg_temp.");
    osc_sb_ident(&b, name);
    osc_sb_addf(&b, "(pgc_sql text, pgc_args text[], pgc_want_row bool, pgc_path text DEFAULT "
                    "NULL) RETURNS text[] LANGUAGE plpgsql SECURITY DEFINER SET search_path = "
                    OSC_SAFE_PATH " AS $pgc$\nDECLARE\n  pgc_row text[];\n  pgc_n bigint;\nBEGIN\n"
                    "  IF pgc_path IS NOT NULL THEN\n"
                    "    PERFORM pg_catalog.set_config('search_path', pgc_path, true);\n"
                    "  END IF;\n  IF pgc_want_row THEN\n"
                    "    EXECUTE pgc_sql INTO pgc_row USING pgc_args;\n    RETURN pgc_row;\n"
                    "  END IF;\n  EXECUTE pgc_sql USING pgc_args;\n"
                    "  GET DIAGNOSTICS pgc_n = ROW_COUNT;\n  RETURN ARRAY[pgc_n::text];\nEND\n$pgc$;\n"
                    "ALTER FUNCTION pg_temp.");
    osc_sb_ident(&b, name);
    osc_sb_addf(&b, "(text, text[], bool, text) OWNER TO ");
    osc_sb_ident(&b, role);
    char *q = osc_sb_take(&b);
    if (q == NULL) {
        snprintf(err, errlen, "out of memory");
        snprintf(code, 6, "53200");
        return false;
    }
    bool ok = osc_run(c, q, 0, NULL, err, errlen, code);
    free(q);
    if (!ok && strcmp(code, "42501") == 0) {
        char why[512];
        snprintf(why, sizeof why, "%s", err);
        snprintf(err, errlen, "the engine's role cannot act as role \"%s\" (%s): make it a "
                              "superuser or a member of that role", role, why);
    }
    return ok;
}

bool osc_rights_regclass(PGconn *c, const char *qname, const char *path, char oid[16], char *err,
                         size_t errlen, char code[6])
{
    const char *pv[] = {path}, *nv[] = {qname};
    bool ok = osc_run(c, "SELECT pg_catalog.set_config('search_path', $1, false)", 1, pv, err,
                      errlen, code);
    PGresult *t = ok ? osc_exec(c, "SELECT coalesce(pg_catalog.to_regclass($1)::pg_catalog.oid, 0)",
                                1, nv, err, errlen, code)
                     : NULL;
    if (t)
        snprintf(oid, 16, "%s", PQgetvalue(t, 0, 0));
    PQclear(t);
    return osc_run(c, "SET search_path = " OSC_SAFE_PATH, 0, NULL, err, errlen, code) && t != NULL;
}

char *osc_rights_user_path(const char *role)
{
    osc_sb b = {0};
    osc_sb_ident(&b, role);
    osc_sb_addf(&b, ", public");
    return osc_sb_take(&b);
}

bool osc_rights_bind_expr(PGconn *c, const char *schema, const char *table, const char *expr,
                          const char *path, char **out, char *err, size_t errlen, char code[6])
{
    static const char marker[] = " AS pgc_bound_expr";
    *out = NULL;
    const char *pv[] = {path};
    osc_sb b = {0};
    osc_sb_addf(&b, "CREATE TEMP VIEW pgc_bind AS SELECT (%s)%s FROM ONLY ", expr, marker);
    osc_sb_qualified(&b, schema, table);
    osc_sb_addf(&b, " AS ");
    osc_sb_ident(&b, table);
    char *q = osc_sb_take(&b);
    bool ok = q && osc_run(c, "SAVEPOINT pgc_bind", 0, NULL, err, errlen, code) &&
              osc_run(c, "SELECT pg_catalog.set_config('search_path', $1, true)", 1, pv, err, errlen,
                      code) &&
              osc_run(c, q, 0, NULL, err, errlen, code) &&
              osc_run(c, "SET LOCAL search_path = " OSC_SAFE_PATH, 0, NULL, err, errlen, code);
    free(q);
    PGresult *r = ok ? osc_exec(c, "SELECT pg_catalog.pg_get_viewdef('pg_temp.pgc_bind'::pg_catalog.regclass)",
                                0, NULL, err, errlen, code)
                     : NULL;
    if (r) {
        /* " SELECT <expr> AS pgc_bound_expr\n   FROM ONLY …": the last marker is ours (only
         * the FROM clause follows it). */
        const char *def = PQgetvalue(r, 0, 0), *start = strstr(def, "SELECT "), *end = NULL;
        for (const char *p = start; p && (p = strstr(p, marker)) != NULL; p++)
            end = p;
        if (start && end && end > start + 7)
            *out = strndup(start + 7, (size_t)(end - start - 7));
        else {
            snprintf(err, errlen, "cannot read back the bound expression: %s", def);
            snprintf(code, 6, "XX000");
        }
        PQclear(r);
    }
    /* Back to the caller's transaction as it was (the view and the path go). */
    PQclear(PQexec(c, "ROLLBACK TO SAVEPOINT pgc_bind"));
    PQclear(PQexec(c, "RELEASE SAVEPOINT pgc_bind"));
    PQclear(PQexec(c, "SET LOCAL search_path = " OSC_SAFE_PATH));
    return *out != NULL;
}

bool osc_rights_explain_rows(PGconn *c, const char *role, const char *sql, const char *path,
                             double *rows, char *err, size_t errlen, char code[6])
{
    osc_sb b = {0};
    osc_sb_addf(&b, "CREATE OR REPLACE FUNCTION pg_temp.pgc_explain_rows(pgc_sql text, pgc_path text) "
                    "RETURNS float8 LANGUAGE plpgsql SECURITY DEFINER SET search_path = " OSC_SAFE_PATH
                    " AS $pgc$\nDECLARE\n  pgc_plan json;\nBEGIN\n"
                    "  PERFORM pg_catalog.set_config('search_path', pgc_path, true);\n"
                    "  EXECUTE 'EXPLAIN (FORMAT JSON) ' || pgc_sql INTO pgc_plan;\n"
                    "  RETURN coalesce(pgc_plan->0->'Plan'->'Plans'->0->>'Plan Rows', "
                    "pgc_plan->0->'Plan'->>'Plan Rows')::float8;\nEND\n$pgc$;\n"
                    "ALTER FUNCTION pg_temp.pgc_explain_rows(text, text) OWNER TO ");
    osc_sb_ident(&b, role);
    char *q = osc_sb_take(&b);
    const char *v[] = {sql, path};
    PGresult *t = NULL;
    bool ok = q && osc_run(c, q, 0, NULL, err, errlen, code) &&
              (t = osc_exec(c, "SELECT pg_temp.pgc_explain_rows($1, $2)", 2, v, err, errlen, code));
    free(q);
    if (ok)
        *rows = PQgetisnull(t, 0, 0) ? 0 : strtod(PQgetvalue(t, 0, 0), NULL);
    else if (q == NULL) {
        snprintf(err, errlen, "out of memory");
        snprintf(code, 6, "53200");
    }
    PQclear(t);
    return ok;
}
