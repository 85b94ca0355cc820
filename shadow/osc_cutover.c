/* osc_cutover.c — see osc_cutover.h. What is carried over is captured into a temporary
 * table of statements (phase pre: after the names are swapped, before the old table moves
 * to schema pgcutover; post: after; commit: after COMMIT) by catalog queries, so the SQL
 * that runs is visible in one place. */
#include "osc_cutover.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "osc_db.h"

/*
 * Parameters of every capture query (typed where used, as format() takes "any"): $1 original oid, $2 shadow oid, $3 the new table's
 * qualified name (the original's), $4 the old table's qualified name after the swap,
 * $5 migration id, $6 the original's schema. Each returns (phase, sql, alt_sql).
 */
static const char *const captures[] = {
    /* The owner first: a sequence may only be owned by a column of a table with its owner. */
    "SELECT 'pre', format('ALTER TABLE %s OWNER TO %I', $3::text, pg_get_userbyid(relowner)), NULL "
    "FROM pg_class WHERE oid = $1::oid",
    /* The original's indexes and identity sequences take names of their own before the
     * old table moves to schema pgcutover, where the kept old tables of every earlier
     * change of any table meet: "<name>_m<id>_<n>" (their names go to the shadow's). */
    "SELECT 'pre', format('ALTER %s %s RENAME TO %I', CASE c.relkind WHEN 'S' THEN 'SEQUENCE' "
    "  ELSE 'INDEX' END, quote_ident(n.nspname) || '.' || quote_ident(c.relname), "
    "  left(c.relname, 40) || '_m' || $5::bigint || '_' || row_number() OVER (ORDER BY c.oid)), NULL "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = $1::oid) "
    "OR c.oid IN (SELECT d.objid FROM pg_depend d WHERE d.refobjid = $1::oid AND d.deptype = 'i' "
    "  AND d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass "
    "  AND d.refobjsubid > 0)",
    /* Serial sequences owned by the original's columns follow the mapped column (before
     * the original moves: owned sequences move with their table). */
    "SELECT 'pre', format('ALTER SEQUENCE %s OWNED BY %s', d.objid::regclass, "
    "  coalesce($3::text || '.' || quote_ident(mc.name), 'NONE')), NULL "
    "FROM pg_depend d JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid "
    "JOIN pg_class sq ON sq.oid = d.objid AND sq.relkind = 'S' "
    "LEFT JOIN pgcutover.migration_columns mc ON mc.migration_id = $5::bigint AND mc.expr = chr(34) || replace(a.attname, chr(34), chr(34) || chr(34)) || chr(34) "
    "WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass "
    "AND d.refobjid = $1::oid AND d.deptype = 'a'",
    /* Identity sequences of the shadow: the original's data type (LIKE does not copy
     * AS type) when the column kept its type, the next value after the original's, and
     * the original's name. */
    "SELECT 'post', CASE WHEN oa.atttypid = a.atttypid AND os.seqtypid IS NOT NULL THEN format("
    "  'ALTER SEQUENCE %s AS %s; ', $6::text || '.' || quote_ident(sq.relname), "
    "  format_type(os.seqtypid, NULL)) ELSE '' END || "
    "  format('SELECT setval(%L, greatest(%s, (SELECT max(%I) FROM %s), 1))', "
    "  $6::text || '.' || quote_ident(sq.relname), "
    "  coalesce(pg_sequence_last_value(pg_get_serial_sequence($1::oid::regclass::text, oa.attname))::text, 'NULL'), "
    "  a.attname, $3::text), NULL "
    "FROM pg_attribute a JOIN pg_depend d ON d.refobjid = a.attrelid AND d.refobjsubid = a.attnum "
    "  AND d.deptype = 'i' AND d.classid = 'pg_class'::regclass "
    "JOIN pg_class sq ON sq.oid = d.objid AND sq.relkind = 'S' "
    "LEFT JOIN pgcutover.migration_columns mc ON mc.migration_id = $5::bigint AND mc.name = a.attname "
    "LEFT JOIN pg_attribute oa ON oa.attrelid = $1::oid AND chr(34) || replace(oa.attname, chr(34), chr(34) || chr(34)) || chr(34) = mc.expr "
    "LEFT JOIN pg_sequence os ON os.seqrelid = pg_get_serial_sequence($1::oid::regclass::text, "
    "  oa.attname)::regclass "
    "WHERE a.attrelid = $2::oid AND a.attidentity <> ''",
    "SELECT 'post', format('ALTER SEQUENCE %s RENAME TO %I', $6::text || '.' || quote_ident(sq.relname), "
    "  osq.relname), NULL "
    "FROM pg_attribute a JOIN pg_depend d ON d.refobjid = a.attrelid AND d.refobjsubid = a.attnum "
    "  AND d.deptype = 'i' AND d.classid = 'pg_class'::regclass "
    "JOIN pg_class sq ON sq.oid = d.objid "
    "JOIN pgcutover.migration_columns mc ON mc.migration_id = $5::bigint AND mc.name = a.attname "
    "JOIN pg_attribute oa ON oa.attrelid = $1::oid AND chr(34) || replace(oa.attname, chr(34), chr(34) || chr(34)) || chr(34) = mc.expr "
    "JOIN pg_depend od ON od.refobjid = oa.attrelid AND od.refobjsubid = oa.attnum AND od.deptype = 'i' "
    "  AND od.classid = 'pg_class'::regclass "
    "JOIN pg_class osq ON osq.oid = od.objid "
    "WHERE a.attrelid = $2::oid AND a.attidentity <> '' AND sq.relname <> osq.relname",
    /* Index names: shadow index i takes the name of the original's index with the same
     * definition (after USING), kind, and rank among equals. */
    "WITH o AS (SELECT c.relname, i.indisprimary, i.indisunique, regexp_replace(pg_get_indexdef("
    "  i.indexrelid), '^.* USING ', '') AS sig, row_number() OVER (PARTITION BY regexp_replace("
    "  pg_get_indexdef(i.indexrelid), '^.* USING ', '') ORDER BY i.indexrelid) AS n FROM pg_index i "
    "  JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1::oid), "
    "s AS (SELECT c.relname, i.indisprimary, i.indisunique, regexp_replace(pg_get_indexdef("
    "  i.indexrelid), '^.* USING ', '') AS sig, row_number() OVER (PARTITION BY regexp_replace("
    "  pg_get_indexdef(i.indexrelid), '^.* USING ', '') ORDER BY i.indexrelid) AS n FROM pg_index i "
    "  JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $2::oid) "
    "SELECT 'post', format('ALTER INDEX %s RENAME TO %I', $6::text || '.' || quote_ident(s.relname), "
    "  o.relname), NULL FROM o JOIN s USING (sig, n, indisprimary, indisunique) "
    "WHERE s.relname <> o.relname",
    "SELECT 'post', format('GRANT %s ON TABLE %s TO %s%s', a.privilege_type, $3::text, "
    "  CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END, "
    "  CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END), NULL "
    "FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = $1::oid AND a.grantee <> c.relowner",
    "SELECT 'post', format('GRANT %s (%I) ON TABLE %s TO %s%s', g.privilege_type, mc.name, $3::text, "
    "  CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END, "
    "  CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END), NULL "
    "FROM pg_attribute a JOIN pgcutover.migration_columns mc ON mc.migration_id = $5::bigint "
    "  AND mc.expr = chr(34) || replace(a.attname, chr(34), chr(34) || chr(34)) || chr(34), aclexplode(a.attacl) g "
    "WHERE a.attrelid = $1::oid AND a.attacl IS NOT NULL",
    "SELECT 'post', format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', $3::text), NULL FROM pg_class "
    "WHERE oid = $1::oid AND relrowsecurity",
    "SELECT 'post', format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', $3::text), NULL FROM pg_class "
    "WHERE oid = $1::oid AND relforcerowsecurity",
    "SELECT 'post', format('CREATE POLICY %I ON %s AS %s FOR %s TO %s%s%s', p.polname, $3::text, "
    "  CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END, "
    "  CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' "
    "    WHEN 'd' THEN 'DELETE' ELSE 'ALL' END, "
    "  (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r)) END, "
    "    ', ') FROM unnest(p.polroles) r), "
    "  CASE WHEN p.polqual IS NULL THEN '' ELSE ' USING (' || pg_get_expr(p.polqual, p.polrelid) || ')' END, "
    "  CASE WHEN p.polwithcheck IS NULL THEN '' ELSE ' WITH CHECK (' || "
    "    pg_get_expr(p.polwithcheck, p.polrelid) || ')' END), NULL "
    "FROM pg_policy p WHERE p.polrelid = $1::oid",
    "SELECT 'post', pg_get_triggerdef(t.oid), NULL FROM pg_trigger t WHERE t.tgrelid = $1::oid "
    "AND NOT t.tgisinternal AND t.tgname NOT LIKE 'pgcutover\\_m%'",
    "SELECT 'post', format('ALTER TABLE %s %s TRIGGER %I', $3::text, CASE t.tgenabled WHEN 'D' THEN "
    "  'DISABLE' WHEN 'R' THEN 'ENABLE REPLICA' ELSE 'ENABLE ALWAYS' END, t.tgname), NULL "
    "FROM pg_trigger t WHERE t.tgrelid = $1::oid AND NOT t.tgisinternal AND t.tgenabled <> 'O' "
    "AND t.tgname NOT LIKE 'pgcutover\\_m%'",
    "SELECT 'post', format('ALTER TABLE %s REPLICA IDENTITY %s', $3::text, CASE c.relreplident "
    "  WHEN 'f' THEN 'FULL' WHEN 'n' THEN 'NOTHING' ELSE 'USING INDEX ' || quote_ident(("
    "  SELECT ic.relname FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid "
    "  WHERE i.indrelid = $1::oid AND i.indisreplident)) END), NULL "
    "FROM pg_class c WHERE c.oid = $1::oid AND c.relreplident <> 'd'",
    "SELECT 'post', format('ALTER PUBLICATION %I DROP TABLE %s', p.pubname, $4::text), NULL "
    "FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid WHERE pr.prrelid = $1::oid",
    "SELECT 'post', format('ALTER PUBLICATION %I ADD TABLE %s%s%s', p.pubname, $3::text, "
    "  (SELECT ' (' || string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) || ')' FROM "
    "  pg_attribute a WHERE a.attrelid = $1::oid AND a.attnum = ANY (pr.prattrs)), "
    "  ' WHERE (' || pg_get_expr(pr.prqual, pr.prrelid) || ')'), NULL "
    "FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid WHERE pr.prrelid = $1::oid",
    "SELECT 'post', format('COMMENT ON TABLE %s IS %L', $3::text, obj_description($1::oid, 'pg_class')), NULL "
    "WHERE obj_description($1::oid, 'pg_class') IS NOT NULL",
    /* Views over the original, and views over those, are bound by oid: define them again,
     * bases first. When a column's type changed, CREATE OR REPLACE cannot, so the view is
     * dropped with its dependents (CASCADE) and created again — the dependents follow in
     * this same list. Owner, grants and comment are set again after each. */
    "WITH RECURSIVE v(oid, depth) AS (SELECT r.ev_class, 1 FROM pg_depend d JOIN pg_rewrite r "
    "  ON r.oid = d.objid WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = "
    "  'pg_class'::regclass AND d.refobjid = $1::oid AND r.ev_class <> $1::oid "
    "  UNION ALL SELECT r.ev_class, v.depth + 1 FROM v JOIN pg_depend d ON d.refobjid = v.oid "
    "  AND d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass "
    "  JOIN pg_rewrite r ON r.oid = d.objid AND r.ev_class <> v.oid WHERE v.depth < 20), "
    "w AS (SELECT oid, max(depth) AS depth FROM v GROUP BY oid) "
    "SELECT 'post', format('CREATE OR REPLACE VIEW %s%s AS %s', w.oid::regclass, opt, def) || tail, "
    "  format('DROP VIEW IF EXISTS %s CASCADE; CREATE VIEW %s%s AS %s', w.oid::regclass, "
    "  w.oid::regclass, opt, def) || tail "
    "FROM w JOIN pg_class c ON c.oid = w.oid, LATERAL (SELECT coalesce(' WITH (' || "
    "  array_to_string(c.reloptions, ', ') || ')', '') AS opt, pg_get_viewdef(w.oid) AS def, "
    "  format('; ALTER VIEW %s OWNER TO %I', w.oid::regclass, pg_get_userbyid(c.relowner)) "
    "  || coalesce((SELECT string_agg(format('; GRANT %s ON %s TO %s%s', a.privilege_type, "
    "  w.oid::regclass, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid("
    "  a.grantee)) END, CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END), '') "
    "  FROM aclexplode(c.relacl) a WHERE a.grantee <> c.relowner), '') "
    "  || coalesce(format('; COMMENT ON VIEW %s IS %L', w.oid::regclass, obj_description(w.oid, "
    "  'pg_class')), '') AS tail) x "
    "WHERE c.relkind = 'v' ORDER BY w.depth, w.oid",
    /* Foreign keys that reference the original (from other tables, and the shadow's own
     * self-references) are added again, NOT VALID, and validated after the commit. */
    "SELECT 'post', format('ALTER TABLE %1$s DROP CONSTRAINT %2$I; ALTER TABLE %1$s ADD CONSTRAINT "
    "  %2$I %3$s NOT VALID', CASE WHEN con.conrelid = $2::oid THEN $3::text ELSE con.conrelid::regclass::text "
    "  END, con.conname, pg_get_constraintdef(con.oid)), NULL "
    "FROM pg_constraint con WHERE con.confrelid = $1::oid AND con.contype = 'f' AND con.conrelid <> $1::oid",
    "SELECT 'commit', format('ALTER TABLE %s VALIDATE CONSTRAINT %I', CASE WHEN con.conrelid = $2::oid "
    "  THEN $3::text ELSE con.conrelid::regclass::text END, con.conname), NULL "
    "FROM pg_constraint con WHERE con.contype = 'f' AND (con.confrelid = $1::oid AND con.conrelid <> $1::oid "
    "  OR con.conrelid = $2::oid AND NOT con.convalidated)",
};

bool osc_cutover_swap(PGconn *c, const osc_map *m, const char *old_name, osc_sb *after_commit,
                      char *err, size_t errlen, char code[6])
{
    char o_oid[16], s_oid[16], ids[32];
    osc_sb nb = {0}, ob = {0}, sb = {0}, orig = {0}, shadow = {0};
    osc_sb_qualified(&nb, m->schema, m->table);
    osc_sb_addf(&ob, "pgcutover.");
    osc_sb_ident(&ob, old_name);
    osc_sb_ident(&sb, m->schema);
    char *new_q = osc_sb_take(&nb), *old_q = osc_sb_take(&ob), *schema_q = osc_sb_take(&sb);
    bool ok = new_q && old_q && schema_q;
    PGresult *r = NULL;
    snprintf(ids, sizeof ids, "%" PRId64, m->id);
    /* Oids and the capture, with every name schema-qualified. */
    if (ok) {
        osc_sb_qualified(&shadow, m->shadow_schema, m->shadow_table);
        char *sq = osc_sb_take(&shadow);
        const char *ov[] = {new_q, sq};
        r = sq ? osc_exec(c, "SELECT $1::regclass::oid, $2::regclass::oid", 2, ov, err, errlen, code) : NULL;
        free(sq);
        ok = r != NULL;
        if (ok) {
            snprintf(o_oid, sizeof o_oid, "%s", PQgetvalue(r, 0, 0));
            snprintf(s_oid, sizeof s_oid, "%s", PQgetvalue(r, 0, 1));
        }
        PQclear(r);
    }
    ok = ok && osc_run(c, "SET LOCAL search_path = ''", 0, NULL, err, errlen, code) &&
         osc_run(c, "CREATE TEMP TABLE pgc_carry (ord serial, phase text, sql text, alt_sql text) "
                    "ON COMMIT DROP",
                 0, NULL, err, errlen, code);
    const char *params[] = {o_oid, s_oid, new_q, old_q, ids, schema_q};
    for (size_t i = 0; ok && i < sizeof captures / sizeof captures[0]; i++) {
        osc_sb q = {0};
        /* Every parameter is referenced, so each has a type even where a capture
         * does not use it. */
        osc_sb_addf(&q, "INSERT INTO pgc_carry (phase, sql, alt_sql) SELECT * FROM (%s) pgc_q "
                        "WHERE ($1::oid, $2::oid, $3::text, $4::text, $5::bigint, $6::text) "
                        "IS NOT NULL",
                    captures[i]);
        char *qs = osc_sb_take(&q);
        ok = qs && osc_run(c, qs, 6, params, err, errlen, code);
        free(qs);
    }
    /* The dual-write triggers go; the original becomes <old_name> in its schema and the
     * shadow takes its place; serial sequences are re-owned while both tables share the
     * schema (OWNED BY needs that, and owned sequences would move with the old table);
     * then the old table moves to schema pgcutover. */
    char *drop = ok ? osc_sql_drop_triggers(m) : NULL;
    ok = ok && drop && osc_run(c, drop, 0, NULL, err, errlen, code);
    free(drop);
    r = ok ? osc_exec(c, "SELECT phase, sql, alt_sql FROM pgc_carry ORDER BY ord", 0, NULL, err,
                      errlen, code)
           : NULL;
    ok = r != NULL;
    if (ok) {
        osc_sb_addf(&orig, "ALTER TABLE %s RENAME TO ", new_q);
        osc_sb_ident(&orig, old_name);
        osc_sb_addf(&orig, "; ALTER TABLE ");
        osc_sb_qualified(&orig, m->shadow_schema, m->shadow_table);
        osc_sb_addf(&orig, " SET SCHEMA %s; ALTER TABLE %s.", schema_q, schema_q);
        osc_sb_ident(&orig, m->shadow_table);
        osc_sb_addf(&orig, " RENAME TO ");
        osc_sb_ident(&orig, m->table);
        char *swap = osc_sb_take(&orig);
        ok = swap && osc_run(c, swap, 0, NULL, err, errlen, code);
        free(swap);
    }
    for (int i = 0; ok && i < PQntuples(r); i++)
        if (strcmp(PQgetvalue(r, i, 0), "pre") == 0)
            ok = osc_run(c, PQgetvalue(r, i, 1), 0, NULL, err, errlen, code);
    if (ok) {
        osc_sb_addf(&orig, "ALTER TABLE %s.", schema_q);
        osc_sb_ident(&orig, old_name);
        osc_sb_addf(&orig, " SET SCHEMA pgcutover");
        char *move = osc_sb_take(&orig);
        ok = move && osc_run(c, move, 0, NULL, err, errlen, code);
        free(move);
    }
    for (int i = 0; ok && i < PQntuples(r); i++) {
        const char *phase = PQgetvalue(r, i, 0), *sql = PQgetvalue(r, i, 1);
        if (strcmp(phase, "commit") == 0) {
            osc_sb_addf(after_commit, "%s\n", sql);
            continue;
        }
        if (strcmp(phase, "post") != 0)
            continue;
        if (PQgetisnull(r, i, 2)) {
            ok = osc_run(c, sql, 0, NULL, err, errlen, code);
            continue;
        }
        /* A statement with a fallback runs in a savepoint first. */
        ok = osc_run(c, "SAVEPOINT pgc_try", 0, NULL, err, errlen, code);
        if (ok && !osc_run(c, sql, 0, NULL, err, errlen, code))
            ok = osc_run(c, "ROLLBACK TO SAVEPOINT pgc_try", 0, NULL, err, errlen, code) &&
                 osc_run(c, PQgetvalue(r, i, 2), 0, NULL, err, errlen, code);
        else if (ok)
            ok = osc_run(c, "RELEASE SAVEPOINT pgc_try", 0, NULL, err, errlen, code);
    }
    if (ok) {
        char *q = osc_sql_drop_functions(m);
        ok = q && osc_run(c, q, 0, NULL, err, errlen, code);
        free(q);
    }
    if (!ok && !*err)
        snprintf(err, errlen, "out of memory");
    PQclear(r);
    free(new_q);
    free(old_q);
    free(schema_q);
    return ok;
}
