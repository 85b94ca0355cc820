/* osc_plan.c — see osc_plan.h. Catalog queries follow the system catalog chapter of
 * the PostgreSQL documentation (pg_class, pg_index, pg_attribute, pg_constraint). */
#include "osc_plan.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "osc_db.h"
#include "osc_rights.h"
#include "osc_warn.h"

void osc_plan_free(osc_plan *p)
{
    osc_stmt_free(&p->stmt);
    free(p->sql);
    free(p->create_sql);
    free(p->alter_sql);
    free(p->user);
    osc_map_free(&p->map);
    for (int i = 0; i < p->nwarnings; i++)
        free(p->warnings[i]);
    memset(p, 0, sizeof *p);
}

void osc_plan_table_name(const char *table, int64_t id, const char *kind, char *buf, size_t len)
{
    char suffix[40];
    snprintf(suffix, sizeof suffix, "_%" PRId64 "_%s", id, kind);
    size_t keep = strlen(table), room = 63 - strlen(suffix);
    if (keep > room)
        keep = room;
    /* Never cut a UTF-8 sequence in half. */
    while (keep > 0 && ((unsigned char)table[keep] & 0xC0) == 0x80)
        keep--;
    snprintf(buf, len, "%.*s%s", (int)keep, table, suffix);
}

/* $3: the oid the user's name resolved to (resolve_sql), on the engine's pinned path. */
static const char table_sql[] =
    "SELECT c.oid, n.nspname, c.relname, c.relkind, c.relpersistence, c.relispartition, "
    "EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = c.oid), "
    "EXISTS (SELECT 1 FROM pg_inherits WHERE inhparent = c.oid), "
    "CASE WHEN c.reltuples < 0 THEN -1 ELSE c.reltuples::bigint END, "
    "pg_has_role($2, c.relowner, 'USAGE') OR coalesce((SELECT rolsuper FROM pg_roles WHERE "
    "rolname = $2), false), pg_get_userbyid(c.relowner) "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1::oid";

/* The schema of the btree equality operators of index i's key columns (the operators
 * every key comparison names, osc_sql.c add_op); NULL when they are in several. */
#define KEY_OPS_SQL                                                                             \
    "(SELECT CASE WHEN count(DISTINCT ns.nspname) = 1 THEN min(ns.nspname) END FROM "          \
    "pg_namespace ns, "                                                                         \
    "unnest(i.indclass::oid[]) WITH ORDINALITY AS q(opc, ord) JOIN pg_opclass oc ON oc.oid = "  \
    "q.opc JOIN pg_amop ao ON ao.amopfamily = oc.opcfamily AND ao.amopstrategy = 3 AND "         \
    "ao.amoplefttype = oc.opcintype AND ao.amoprighttype = oc.opcintype JOIN pg_operator o ON " \
    "o.oid = ao.amopopr WHERE ns.oid = o.oprnamespace AND q.ord <= i.indnkeyatts)"

/* The best key: primary key first, then the NOT NULL unique index with fewest columns;
 * never partial, expression or deferrable indexes (ON CONFLICT cannot use those). */
static const char key_sql[] =
    "SELECT i.indexrelid::regclass::text, i.indisprimary, "
    "array_to_string(array_agg(quote_ident(a.attname) ORDER BY k.ord), ', '), count(*), "
    "string_agg(a.attname, E'\\n' ORDER BY k.ord), "
    "string_agg(format_type(a.atttypid, a.atttypmod), E'\\n' ORDER BY k.ord), " KEY_OPS_SQL " "
    "FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) "
    "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
    "WHERE i.indrelid = $1 AND i.indisunique AND i.indisvalid AND i.indimmediate "
    "AND i.indpred IS NULL AND i.indexprs IS NULL AND k.ord <= i.indnkeyatts "
    "GROUP BY i.indexrelid, i.indisprimary, i.indclass, i.indnkeyatts HAVING bool_and(a.attnotnull) "
    "ORDER BY i.indisprimary DESC, count(*), 1 LIMIT 1";

/* Split s at newlines into at most max malloc'ed strings; returns the count. */
static int split_lines(const char *s, char **out, int max)
{
    int n = 0;
    while (n < max) {
        const char *nl = strchr(s, '\n');
        out[n++] = nl ? strndup(s, (size_t)(nl - s)) : strdup(s);
        if (nl == NULL)
            break;
        s = nl + 1;
    }
    return n;
}

/* Objects bound to the table (or its row type) by OID that the cutover does not carry
 * over: after the swap they would go on reading or writing the old table. The table's own
 * constraints, defaults, triggers, policies, statistics and publication membership (the
 * shadow has its own, LIKE …
 * INCLUDING ALL, or the cutover recreates them), views (recreated) and foreign keys from
 * other tables (re-pointed) are carried; everything else
 * PostgreSQL records as depending on the table — SQL-body functions, rules, materialized
 * views, policies and defaults of other tables, functions and columns of its row type —
 * is refused, named, before anything is created. */
static const char bound_sql[] =
    "SELECT string_agg(DISTINCT pg_describe_object(d.classid, d.objid, d.objsubid), '; ') "
    "FROM pg_depend d WHERE d.deptype = 'n' AND ("
    "  (d.refclassid = 'pg_class'::regclass AND d.refobjid = $1::oid "
    "   AND NOT (d.classid = 'pg_constraint'::regclass AND EXISTS (SELECT FROM pg_constraint k "
    "     WHERE k.oid = d.objid AND (k.contype = 'f' OR k.conrelid = $1::oid))) "
    "   AND NOT (d.classid = 'pg_attrdef'::regclass AND EXISTS (SELECT FROM pg_attrdef ad "
    "     WHERE ad.oid = d.objid AND ad.adrelid = $1::oid)) "
    "   AND NOT (d.classid = 'pg_trigger'::regclass AND EXISTS (SELECT FROM pg_trigger tg "
    "     WHERE tg.oid = d.objid AND tg.tgrelid = $1::oid)) "
    "   AND NOT (d.classid = 'pg_policy'::regclass AND EXISTS (SELECT FROM pg_policy po "
    "     WHERE po.oid = d.objid AND po.polrelid = $1::oid)) "
    "   AND NOT (d.classid = 'pg_statistic_ext'::regclass AND EXISTS (SELECT FROM "
    "     pg_statistic_ext st WHERE st.oid = d.objid AND st.stxrelid = $1::oid)) "
    "   AND NOT (d.classid = 'pg_publication_rel'::regclass AND EXISTS (SELECT FROM "
    "     pg_publication_rel pr WHERE pr.oid = d.objid AND pr.prrelid = $1::oid)) "
    "   AND NOT (d.classid = 'pg_rewrite'::regclass AND EXISTS (SELECT FROM pg_rewrite w JOIN "
    "     pg_class v ON v.oid = w.ev_class WHERE w.oid = d.objid AND v.relkind = 'v' "
    "     AND w.rulename = '_RETURN'))) "
    "  OR (d.refclassid = 'pg_type'::regclass AND d.refobjid = (SELECT reltype FROM pg_class "
    "   WHERE oid = $1::oid) AND NOT (d.classid = 'pg_rewrite'::regclass AND EXISTS (SELECT FROM "
    "   pg_rewrite w JOIN pg_class v ON v.oid = w.ev_class WHERE w.oid = d.objid AND v.relkind = 'v')))"
    ") OR (d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass "
    "  AND d.refobjid = $1::oid AND d.deptype = 'a' AND EXISTS (SELECT FROM pg_rewrite w "
    "  WHERE w.oid = d.objid AND w.ev_class = $1::oid))";

bool osc_plan_bound(PGconn *c, unsigned table_oid, char *found, size_t flen, char *err,
                    size_t errlen, char code[6])
{
    char oid[16];
    snprintf(oid, sizeof oid, "%u", table_oid);
    const char *v[] = {oid};
    PGresult *t = osc_exec(c, bound_sql, 1, v, err, errlen, code);
    found[0] = 0;
    if (t == NULL)
        return false;
    if (!PQgetisnull(t, 0, 0))
        snprintf(found, flen, "%s", PQgetvalue(t, 0, 0));
    PQclear(t);
    return true;
}

static bool bound_objects(PGconn *c, osc_plan *p, osc_result *r)
{
    char err[1024], code[6], found[800];
    if (!osc_plan_bound(c, p->table_oid, found, sizeof found, err, sizeof err, code)) {
        osc_result_error(r, code, NULL, "reading what depends on the table: %s", err);
        return false;
    }
    if (found[0])
        osc_result_error(r, "0A000",
                         "drop them (or change them not to use the table) before the change and "
                         "create them again after it, or change the table directly",
                         "cannot change \"%s.%s\" online: these objects are bound to the table "
                         "and would go on using the old table after the swap: %.700s",
                         p->map.schema, p->map.table, found);
    return found[0] == 0;
}

bool osc_plan_check(PGconn *c, const char *sql, const char *user, osc_plan *p, osc_result *r)
{
    char code[6], err[1024];
    memset(p, 0, sizeof *p);
    p->sql = strdup(sql);
    p->user = strdup(user);
    if (!osc_stmt_parse(sql, &p->stmt, code, err, sizeof err)) {
        osc_result_error(r, code, NULL, "%s", err);
        return false;
    }
    osc_sb name = {0};
    osc_sb_qualified(&name, p->stmt.schema, p->stmt.table);
    char *qname = osc_sb_take(&name), *path = osc_rights_user_path(user);
    char resolved[16];
    bool found = qname && path && osc_rights_regclass(c, qname, path, resolved, err, sizeof err, code);
    free(qname);
    free(path);
    if (!found) {
        osc_result_error(r, code, NULL, "%s", err);
        return false;
    }
    const char *v[] = {resolved, user};
    PGresult *t = osc_exec(c, table_sql, 2, v, err, sizeof err, code);
    if (t == NULL) {
        osc_result_error(r, code, NULL, "%s", err);
        return false;
    }
    if (PQntuples(t) != 1) {
        osc_result_error(r, "42P01", "check the name and the console's database (psql -d)",
                         "relation \"%s%s%s\" does not exist", p->stmt.schema ? p->stmt.schema : "",
                         p->stmt.schema ? "." : "", p->stmt.table);
        PQclear(t);
        return false;
    }
    p->table_oid = (uint32_t)strtoul(PQgetvalue(t, 0, 0), NULL, 10);
    p->map.schema = strdup(PQgetvalue(t, 0, 1));
    p->map.table = strdup(PQgetvalue(t, 0, 2));
    char kind = PQgetvalue(t, 0, 3)[0], persistence = PQgetvalue(t, 0, 4)[0];
    bool partition = PQgetvalue(t, 0, 5)[0] == 't', child = PQgetvalue(t, 0, 6)[0] == 't';
    bool parent = PQgetvalue(t, 0, 7)[0] == 't', owner = PQgetvalue(t, 0, 9)[0] == 't';
    p->rows_estimated = strtoll(PQgetvalue(t, 0, 8), NULL, 10);
    p->map.owner = strdup(PQgetvalue(t, 0, 10));
    PQclear(t);
    const char *why = NULL;
    if (strcmp(p->map.schema, "pgcutover") == 0)
        why = "it is in schema pgcutover, which holds pgcutover's own state and shadow tables";
    else if (kind == 'p')
        why = "it is a partitioned table: change the partitions one by one, or the parent "
              "directly (ALTER on a partitioned table does not rewrite the partitions at once)";
    else if (kind != 'r')
        why = "it is not an ordinary table (a view, materialized view, foreign table or "
              "sequence): change it directly";
    else if (persistence == 't')
        why = "it is a temporary table: only its own session can see it; change it there";
    else if (partition || child)
        why = "it is a partition or inheritance child: change it through its parent or "
              "detach it first";
    else if (parent)
        why = "it has inheritance children, whose rows a shadow copy of the parent would "
              "not carry: change it directly or convert to declarative partitioning";
    if (why) {
        osc_result_error(r, "0A000", NULL, "cannot change \"%s.%s\" online: %s", p->map.schema,
                         p->map.table, why);
        return false;
    }
    if (!owner) {
        osc_result_error(r, "42501", "connect to the console as the table's owner or a superuser",
                         "must be owner of table %s.%s to change it", p->map.schema, p->map.table);
        return false;
    }
    char oid[16];
    snprintf(oid, sizeof oid, "%u", p->table_oid);
    const char *kv[] = {oid};
    t = osc_exec(c, key_sql, 1, kv, err, sizeof err, code);
    if (t == NULL) {
        osc_result_error(r, code, NULL, "%s", err);
        return false;
    }
    /* No usable key: only the copy needs one (copy_key_refusal, after the verdict). */
    p->keyless = PQntuples(t) != 1 || atoi(PQgetvalue(t, 0, 3)) > OSC_MAX_KEYS;
    if (!p->keyless) {
        snprintf(p->key_desc, sizeof p->key_desc, "(%s) from %s %s", PQgetvalue(t, 0, 2),
                 PQgetvalue(t, 0, 1)[0] == 't' ? "primary key" : "unique index", PQgetvalue(t, 0, 0));
        p->map.nkeys = split_lines(PQgetvalue(t, 0, 4), p->map.key_name, OSC_MAX_KEYS);
        split_lines(PQgetvalue(t, 0, 5), p->map.key_type, OSC_MAX_KEYS);
        p->key_ops_mixed = PQgetisnull(t, 0, 6);
        p->map.key_ops = strdup(PQgetvalue(t, 0, 6));
    } else {
        snprintf(p->key_desc, sizeof p->key_desc, "none usable");
    }
    PQclear(t);
    if (!bound_objects(c, p, r))
        return false;
    if (p->rows_estimated < 0) { /* never analyzed: count (such tables are usually new) */
        char *q = NULL;
        osc_sb b = {0};
        osc_sb_addf(&b, "SELECT count(*) FROM ONLY ");
        osc_sb_qualified(&b, p->map.schema, p->map.table);
        q = osc_sb_take(&b);
        t = q ? osc_exec(c, q, 0, NULL, err, sizeof err, code) : NULL;
        free(q);
        p->rows_estimated = t ? strtoll(PQgetvalue(t, 0, 0), NULL, 10) : 0;
        PQclear(t);
    }
    return true;
}

/* Widening type changes that never lose data and never fail. */
static bool widening(const char *from, const char *to)
{
    static const char *const pairs[][2] = {
        {"smallint", "integer"},  {"smallint", "bigint"},        {"smallint", "numeric"},
        {"integer", "bigint"},    {"integer", "numeric"},         {"bigint", "numeric"},
        {"real", "double precision"}, {"character varying", "text"}, {"character", "text"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
        if (strcmp(from, pairs[i][0]) == 0 && strcmp(to, pairs[i][1]) == 0)
            return true;
    if (strncmp(from, "character varying(", 18) == 0 &&
        (strcmp(to, "text") == 0 || strcmp(to, "character varying") == 0))
        return true;
    if (strncmp(from, "character varying(", 18) == 0 && strncmp(to, "character varying(", 18) == 0)
        return atoi(to + 18) >= atoi(from + 18);
    return false;
}

/* Run one statement, filling *r on failure. */
static bool step(PGconn *c, const char *sql, osc_result *r, const char *what)
{
    char err[1024], code[6];
    if (osc_run(c, sql, 0, NULL, err, sizeof err, code))
        return true;
    osc_result_error(r, code, NULL, "%s: %s", what, err);
    return false;
}

/* Column names and types of rel (live columns in attnum order) with generated and
 * identity flags. */
static PGresult *columns_of(PGconn *c, const char *rel, osc_result *r)
{
    char err[1024], code[6];
    const char *v[] = {rel};
    PGresult *t = osc_exec(c,
                           "SELECT attnum, attname, format_type(atttypid, atttypmod), "
                           "attgenerated <> '', attidentity = 'a' FROM pg_attribute WHERE "
                           "attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                           1, v, err, sizeof err, code);
    if (t == NULL)
        osc_result_error(r, code, NULL, "reading columns: %s", err);
    return t;
}

/* CREATE TABLE for the shadow, reloptions and the outgoing foreign keys NOT VALID. */
static char *create_sql(PGconn *c, osc_plan *p, bool unlogged, osc_result *r)
{
    char err[1024], code[6], oid[16];
    snprintf(oid, sizeof oid, "%u", p->table_oid);
    const char *v[] = {oid};
    PGresult *t = osc_exec(c,
                           "SELECT array_to_string(reloptions, ', '), (SELECT string_agg(format("
                           "'ADD CONSTRAINT %I %s NOT VALID', conname, pg_get_constraintdef(oid)), "
                           "', ' ORDER BY conname) FROM pg_constraint WHERE conrelid = $1 AND "
                           "contype = 'f') FROM pg_class WHERE oid = $1",
                           1, v, err, sizeof err, code);
    if (t == NULL) {
        osc_result_error(r, code, NULL, "reading table options: %s", err);
        return NULL;
    }
    osc_sb b = {0};
    osc_sb_addf(&b, "CREATE %sTABLE ", unlogged ? "UNLOGGED " : "");
    osc_sb_qualified(&b, p->map.shadow_schema, p->map.shadow_table);
    osc_sb_addf(&b, " (LIKE ");
    osc_sb_qualified(&b, p->map.schema, p->map.table);
    osc_sb_addf(&b, " INCLUDING ALL)");
    for (int i = 0; i < 2; i++) {
        if (PQgetisnull(t, 0, i) || !*PQgetvalue(t, 0, i))
            continue;
        osc_sb_addf(&b, ";\nALTER TABLE ");
        osc_sb_qualified(&b, p->map.shadow_schema, p->map.shadow_table);
        osc_sb_addf(&b, i == 0 ? " SET (%s)" : " %s", PQgetvalue(t, 0, i));
    }
    PQclear(t);
    return osc_sb_take(&b);
}

/* The ALTER's USING expression for column name, or NULL. */
static const char *using_of(const osc_stmt *s, const char *name)
{
    for (int i = 0; i < s->ncmds; i++)
        if (s->cmds[i].kind == OSC_CMD_ALTER_TYPE && s->cmds[i].using_expr && s->cmds[i].column &&
            strcmp(s->cmds[i].column, name) == 0)
            return s->cmds[i].using_expr;
    return NULL;
}

/* Read the shadow's columns after the ALTER into p->map, mapping attnum i <= nbefore to
 * the original's i-th live column (LIKE creates them in order, 1..n). */
static bool build_map(PGconn *c, osc_plan *p, PGresult *before, const char *shadow_rel, osc_result *r)
{
    PGresult *after = columns_of(c, shadow_rel, r);
    if (after == NULL)
        return false;
    int nbefore = PQntuples(before), n = PQntuples(after);
    p->map.cols = calloc((size_t)n + 1, sizeof *p->map.cols);
    p->map.ncols = n;
    bool ok = p->map.cols != NULL;
    for (int i = 0; ok && i < n; i++) {
        osc_col *col = &p->map.cols[i];
        int attnum = atoi(PQgetvalue(after, i, 0));
        col->name = strdup(PQgetvalue(after, i, 1));
        col->type = strdup(PQgetvalue(after, i, 2));
        col->identity_always = PQgetvalue(after, i, 4)[0] == 't';
        if (attnum > nbefore || PQgetvalue(after, i, 3)[0] == 't')
            continue; /* added or generated: takes its default / computes itself */
        const char *src = PQgetvalue(before, attnum - 1, 1);
        const char *use = using_of(&p->stmt, src);
        osc_sb e = {0};
        if (use)
            osc_sb_addf(&e, "%s", use);
        else
            osc_sb_ident(&e, src);
        col->expr = osc_sb_take(&e);
        const char *from = PQgetvalue(before, attnum - 1, 2);
        bool widens = strcmp(from, col->type) == 0 || widening(from, col->type);
        if (!widens)
            osc_warn_add(p, OSC_WARN_INCOMPATIBLE, "column \"%s\" changes type from %s to %s: "
                         "running code may read or write values the new type does not take", src,
                         from, col->type);
        if (!use && !widens)
            osc_warn_add(p, OSC_WARN_NARROWING, "column \"%s\" from %s to %s may lose data or fail "
                         "on some rows (assignment cast, as ALTER TABLE does); a row that fails "
                         "fails the change", src, from, col->type);
        if (use)
            osc_warn_add(p, OSC_WARN_NARROWING, "column \"%s\" becomes %s USING %s: the expression "
                         "decides every value and may fail on some rows", src, col->type, use);
        if (strcmp(src, col->name) != 0)
            osc_warn_add(p, OSC_WARN_INCOMPATIBLE, "column \"%s\" is renamed to \"%s\": the old "
                         "name stops working at once for running code", src, col->name);
        for (int k = 0; k < p->map.nkeys && p->strategy == OSC_STRATEGY_COPY; k++)
            if (strcmp(p->map.key_name[k], src) == 0)
                p->map.key_col[k] = i + 1; /* +1: 0 means not found */
    }
    for (int k = 0; ok && k < p->map.nkeys && p->strategy == OSC_STRATEGY_COPY; k++) {
        if (p->map.key_col[k] == 0) {
            osc_result_error(r, "0A000", "keep the key; drop or change it in a later migration",
                             "the ALTER removes key column \"%s\", which the online change "
                             "needs to match rows",
                             p->map.key_name[k]);
            ok = false;
        }
        p->map.key_col[k]--;
    }
    for (int i = 0; i < nbefore; i++) { /* dropped columns */
        bool kept = false;
        for (int j = 0; j < n; j++)
            kept |= atoi(PQgetvalue(after, j, 0)) == i + 1;
        if (!kept) {
            osc_warn_add(p, OSC_WARN_DESTRUCTIVE, "column \"%s\" and its data are dropped",
                         PQgetvalue(before, i, 1));
            osc_warn_add(p, OSC_WARN_INCOMPATIBLE, "column \"%s\" is dropped: running code that "
                         "reads or writes it fails", PQgetvalue(before, i, 1));
        }
    }
    if (ok && !osc_warn_trial(c, p, shadow_rel, nbefore, r))
        ok = false;
    PQclear(after);
    if (!ok && r->ok)
        osc_result_error(r, "53200", NULL, "out of memory");
    return ok;
}

/* The shadow must still have a unique, non-partial index on exactly the key columns. */
static bool key_survives(PGconn *c, osc_plan *p, const char *shadow_rel, osc_result *r)
{
    osc_sb b = {0};
    osc_sb_addf(&b, "SELECT " KEY_OPS_SQL " FROM pg_index i WHERE i.indrelid = $1::regclass AND "
                    "i.indisunique AND i.indimmediate AND i.indpred IS NULL AND i.indexprs IS NULL "
                    "AND i.indnkeyatts = %d AND (SELECT array_agg(a.attname::text ORDER BY "
                    "a.attname) FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(n, o) JOIN "
                    "pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n WHERE k.o <= "
                    "i.indnkeyatts) = (SELECT array_agg(x ORDER BY x) FROM unnest(ARRAY[",
                 p->map.nkeys);
    for (int k = 0; k < p->map.nkeys; k++) {
        osc_sb_addf(&b, "%s$%d", k ? ", " : "", k + 2);
    }
    osc_sb_addf(&b, "]::text[]) x) LIMIT 1");
    char *q = osc_sb_take(&b);
    const char *v[OSC_MAX_KEYS + 1] = {shadow_rel};
    for (int k = 0; k < p->map.nkeys; k++)
        v[k + 1] = p->map.cols[p->map.key_col[k]].name;
    char err[1024], code[6];
    PGresult *t = q ? osc_exec(c, q, p->map.nkeys + 1, v, err, sizeof err, code) : NULL;
    free(q);
    bool ok = t && PQntuples(t) > 0;
    if (ok) {
        free(p->map.shadow_key_ops);
        p->map.shadow_key_ops = strdup(PQgetvalue(t, 0, 0));
        if (PQgetisnull(t, 0, 0)) {
            osc_result_error(r, "0A000", "keep the key's types, or give them operators of one schema",
                             "the shadow's key %s compares with operators of different schemas",
                             p->key_desc);
            PQclear(t);
            return false;
        }
    }
    if (t == NULL)
        osc_result_error(r, code, NULL, "checking the shadow's key: %s", err);
    else if (!ok)
        osc_result_error(r, "0A000", "keep the primary key (or unique key) in this change",
                         "the ALTER removes the unique index on the key %s, which the online "
                         "change needs to match rows",
                         p->key_desc);
    PQclear(t);
    return ok;
}

/* Whether a key column's collation differs on the shadow (then the original's key order
 * is not the shadow's: no range comparisons on the shadow, osc_map_keys_ordered). */
static bool key_collations(PGconn *c, osc_plan *p, const char *orig_rel, const char *shadow_rel,
                           osc_result *r)
{
    char err[1024], code[6];
    p->map.key_coll_changed = false;
    for (int k = 0; k < p->map.nkeys; k++) {
        const char *v[] = {orig_rel, p->map.key_name[k], shadow_rel, p->map.cols[p->map.key_col[k]].name};
        PGresult *t = osc_exec(c,
                               "SELECT (SELECT attcollation FROM pg_attribute WHERE attrelid = "
                               "$1::regclass AND attname = $2) IS DISTINCT FROM (SELECT attcollation "
                               "FROM pg_attribute WHERE attrelid = $3::regclass AND attname = $4)",
                               4, v, err, sizeof err, code);
        if (t == NULL) {
            osc_result_error(r, code, NULL, "reading the key's collations: %s", err);
            return false;
        }
        p->map.key_coll_changed |= PQgetvalue(t, 0, 0)[0] == 't';
        PQclear(t);
    }
    return true;
}

/* The shadow (and what it owns) to the table's owner, who will write it through the
 * triggers and the backfill, and USAGE on schema pgcutover for that. */
static bool give_shadow(PGconn *c, osc_plan *p, const char *shadow_rel, osc_result *r)
{
    osc_sb b = {0};
    osc_sb_addf(&b, "ALTER TABLE %s OWNER TO ", shadow_rel);
    osc_sb_ident(&b, p->map.owner);
    /* Serialized with other first uses (osc_state_ensure's lock): concurrent GRANTs on one
     * schema fail with "tuple concurrently updated". */
    osc_sb_addf(&b, "; SELECT pg_advisory_xact_lock(1885823861, 0); GRANT USAGE ON SCHEMA pgcutover TO ");
    osc_sb_ident(&b, p->map.owner);
    char *q = osc_sb_take(&b);
    bool ok = q && step(c, q, r, "giving the shadow table to the table's owner");
    free(q);
    return ok;
}

/* The storage of rel and its indexes (their relfilenodes, sorted): a rewrite, a rebuilt or
 * a new index changes it; an index PostgreSQL recreates on its old storage (a
 * binary-coercible type change, TryReuseIndex) does not. malloc'ed; NULL with *r filled. */
static char *storage_of(PGconn *c, const char *rel, osc_result *r)
{
    char err[1024], code[6];
    const char *v[] = {rel};
    PGresult *t = osc_exec(c, OSC_STORAGE_SQL, 1, v, err, sizeof err, code);
    if (t == NULL) {
        osc_result_error(r, code, NULL, "reading the copy's storage: %s", err);
        return NULL;
    }
    char *s = strdup(PQgetvalue(t, 0, 0));
    PQclear(t);
    return s;
}

int osc_plan_catalog_only(osc_plan *p, osc_result *r)
{
    int catalog = 0, validate = 0;
    for (int i = 0; i < p->stmt.ncmds; i++) {
        catalog += p->stmt.cmds[i].kind == OSC_CMD_CATALOG;
        validate += p->stmt.cmds[i].kind == OSC_CMD_VALIDATE_CONSTRAINT;
    }
    if (catalog + validate == 0)
        return 0;
    if (catalog + validate < p->stmt.ncmds || (catalog && validate)) {
        osc_result_error(r, "0A000", "run the subcommands on triggers, rules, row security, owner, "
                                     "options, replica identity, CLUSTER ON, ALTER/VALIDATE "
                                     "CONSTRAINT in an ALTER TABLE of their own",
                         "cannot change \"%s.%s\" online in one step: the statement mixes "
                         "catalog-only subcommands with others%s",
                         p->map.schema, p->map.table, validate ? " (VALIDATE CONSTRAINT runs "
                                                                 "outside the hold, the others "
                                                                 "under it)" : "");
        return -1;
    }
    p->strategy = validate ? OSC_STRATEGY_VALIDATE : OSC_STRATEGY_INSTANT;
    snprintf(p->why, sizeof p->why, "%s",
             validate ? "validate: VALIDATE CONSTRAINT scans the table under SHARE UPDATE "
                        "EXCLUSIVE (reads and writes go on): run as it is, outside the hold"
                      : "instant: these subcommands change only the catalog (PostgreSQL never "
                        "rewrites for them; they name objects an empty copy lacks, so no trial): "
                        "run under the hold, rolled back should the table's storage change");
    return 1;
}

/* The copy matches rows by a key: refuse it (0A000, what to do) on a table without a usable
 * one. True when the plan may go on. */
static bool copy_key_refusal(const osc_plan *p, osc_result *r)
{
    if (p->strategy != OSC_STRATEGY_COPY)
        return true;
    if (p->keyless)
        osc_result_error(r, "0A000",
                         "add a primary key first: ALTER TABLE … ADD PRIMARY KEY (…) runs online "
                         "(CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT … USING INDEX)",
                         "cannot copy \"%s.%s\" online: it has neither a primary key nor a "
                         "NOT NULL unique key, which the backfill and the dual-write triggers "
                         "need to find rows",
                         p->map.schema, p->map.table);
    else if (p->key_ops_mixed)
        osc_result_error(r, "0A000", "use a key whose columns' types compare with operators of one schema",
                         "cannot copy \"%s.%s\" online: the comparison operators of its key "
                         "%s live in different schemas",
                         p->map.schema, p->map.table, p->key_desc);
    return r->ok;
}

static bool verdict(PGconn *c, osc_plan *p, const char *shadow_rel, const char *before,
                    osc_result *r);

/* PostgreSQL's verdict on the trial (osc_plan.h), then a copy all the same when the plan
 * must be one (p->force_copy). */
static bool decide(PGconn *c, osc_plan *p, const char *shadow_rel, const char *before,
                   osc_result *r)
{
    if (!verdict(c, p, shadow_rel, before, r))
        return false;
    if (p->force_copy && p->strategy != OSC_STRATEGY_COPY) {
        p->strategy = OSC_STRATEGY_COPY;
        size_t l = strlen(p->why);
        snprintf(p->why + l, sizeof p->why - l, "; copied all the same: instant_ddl = off");
    }
    return true;
}

/* PostgreSQL's verdict on the trial: instant, validate or copy. */
static bool verdict(PGconn *c, osc_plan *p, const char *shadow_rel, const char *before,
                    osc_result *r)
{
    char *after = storage_of(c, shadow_rel, r);
    if (after == NULL)
        return false;
    bool rewritten = strcmp(before, after) != 0;
    free(after);
    const char *scanning = NULL;
    bool validatable = false;
    /* SET NOT NULL: a CHECK (col IS NOT NULL) validated apart lets PostgreSQL 12+ set it
     * without a scan (osc_strategy_validate). */
    bool not_null = false;
    for (int i = 0; i < p->stmt.ncmds; i++)
        not_null |= p->stmt.cmds[i].sets_not_null;
    /* One ADD PRIMARY KEY / UNIQUE: its index built CONCURRENTLY first, then attached. */
    bool one_key = p->stmt.ncmds == 1 && p->stmt.cmds[0].key_index;
    if (one_key) {
        p->strategy = OSC_STRATEGY_VALIDATE;
        snprintf(p->why, sizeof p->why,
                 "validate: the constraint's unique index built first by CREATE UNIQUE INDEX "
                 "CONCURRENTLY (SHARE UPDATE EXCLUSIVE: writes go on; a PRIMARY KEY's nullable "
                 "columns proven NOT NULL before by CHECKs validated apart), then ADD CONSTRAINT "
                 "… USING INDEX under the hold (no build, no scan)");
        return true;
    }
    /* validate only when the statement is nothing but validations: a violating row then
     * takes back all of it by dropping what it added, as the plain ALTER would fail whole */
    bool others = false;
    for (int i = 0; i < p->stmt.ncmds && scanning == NULL; i++) {
        if (p->stmt.cmds[i].scans && (p->stmt.cmds[i].validatable || p->stmt.cmds[i].sets_not_null))
            validatable = true;
        else if (p->stmt.cmds[i].scans)
            scanning = p->stmt.cmds[i].column ? p->stmt.cmds[i].column : "a constraint";
        else
            others = true;
    }
    if (validatable && others && !rewritten && !scanning)
        scanning = "a validation beside other changes, which a violating row could not take back "
                   "one by one: the copy applies all or nothing";
    p->strategy = rewritten || scanning ? OSC_STRATEGY_COPY
                  : validatable         ? OSC_STRATEGY_VALIDATE
                                        : OSC_STRATEGY_INSTANT;
    if (rewritten)
        snprintf(p->why, sizeof p->why, "copy: on an empty copy PostgreSQL rewrote the table or "
                                        "built an index (its storage changed), so on the table it "
                                        "would hold ACCESS EXCLUSIVE for the whole rewrite");
    else if (validatable && others)
        snprintf(p->why, sizeof p->why, "copy: %s", scanning);
    else if (scanning)
        snprintf(p->why, sizeof p->why, "copy: a subcommand (on %s) validates every existing row "
                                        "under ACCESS EXCLUSIVE",
                 scanning);
    else if (validatable)
        snprintf(p->why, sizeof p->why, "validate: nothing but the CHECK or FOREIGN KEY "
                                        "constraints it adds%s, added NOT VALID under the hold and "
                                        "validated apart (SHARE UPDATE EXCLUSIVE: writes go on)%s",
                 not_null ? " and its SET NOT NULL (each a CHECK (… IS NOT NULL))" : "",
                 not_null ? ", then SET NOT NULL without a scan under the hold" : "");
    else
        snprintf(p->why, sizeof p->why, "instant: on an empty copy PostgreSQL changed only the "
                                        "catalog (no rewrite, no index built, nothing validated)");
    return true;
}

/* The retargeted ALTER as the console user, with the user's search_path. */
static bool try_as_user(PGconn *c, osc_plan *p, osc_result *r)
{
    char err[1024], code[6];
    char *path = osc_rights_user_path(p->user);
    const char *v[] = {p->alter_sql, path};
    bool ok = path && osc_rights_executor(c, OSC_AS_USER, p->user, err, sizeof err, code);
    if (!ok) {
        osc_result_error(r, path ? code : "53200", NULL, "%s", path ? err : "out of memory");
        free(path);
        return false;
    }
    ok = osc_run(c, "SELECT pg_temp." OSC_AS_USER "($1, ARRAY[]::text[], false, $2)", 2, v, err,
                 sizeof err, code);
    free(path);
    if (!ok)
        osc_result_error(r, code, "the statement fails on an empty copy of the table, so it "
                                  "would fail on the table too; nothing was changed",
                         "%s", err);
    return ok;
}

/* Every USING expression bound to the objects its names mean for the console user. */
static bool bind_using(PGconn *c, osc_plan *p, osc_result *r)
{
    char err[1024], code[6];
    char *path = osc_rights_user_path(p->user);
    bool ok = path != NULL;
    for (int i = 0; ok && i < p->stmt.ncmds; i++) {
        osc_cmd *cmd = &p->stmt.cmds[i];
        char *bound = NULL;
        if (cmd->using_expr == NULL)
            continue;
        ok = osc_rights_bind_expr(c, p->map.schema, p->map.table, cmd->using_expr, path, &bound,
                                  err, sizeof err, code);
        if (!ok) {
            osc_result_error(r, code, NULL, "the USING expression of column \"%s\": %s",
                             cmd->column ? cmd->column : "?", err);
            break;
        }
        free(cmd->using_expr);
        cmd->using_expr = bound;
    }
    if (path == NULL)
        osc_result_error(r, "53200", NULL, "out of memory");
    free(path);
    return ok;
}

bool osc_plan_shadow(PGconn *c, osc_plan *p, int64_t id, const char *shadow_name, int lock_timeout_ms,
                     bool keep, osc_result *r)
{
    char err[1024], code[6], sql[128];
    p->map.id = id;
    p->force_copy |= keep; /* preparing a copy: its key and column map are needed */
    free(p->map.shadow_schema);
    free(p->map.shadow_table);
    p->map.shadow_schema = strdup("pgcutover");
    p->map.shadow_table = strdup(shadow_name);
    osc_sb rel = {0};
    osc_sb_qualified(&rel, "pgcutover", shadow_name);
    char *shadow_rel = osc_sb_take(&rel);
    osc_sb orig = {0};
    osc_sb_qualified(&orig, p->map.schema, p->map.table);
    char *orig_rel = osc_sb_take(&orig);
    PGresult *before = NULL;
    bool ok = false;
    if (!step(c, "BEGIN", r, "begin"))
        goto out;
    snprintf(sql, sizeof sql, "SET LOCAL lock_timeout = %d", lock_timeout_ms);
    if (!step(c, sql, r, "lock_timeout") ||
        !step(c, "CREATE SCHEMA IF NOT EXISTS pgcutover", r, "creating schema pgcutover"))
        goto rollback;
    if (!osc_state_trusted(c, err, sizeof err, code)) {
        osc_result_error(r, code, NULL, "%s", err);
        goto rollback;
    }
    const char *v[] = {orig_rel};
    PGresult *t = osc_exec(c, "SELECT relpersistence = 'u' FROM pg_class WHERE oid = $1::regclass",
                           1, v, err, sizeof err, code);
    bool unlogged = t && PQgetvalue(t, 0, 0)[0] == 't';
    PQclear(t);
    free(p->create_sql);
    p->create_sql = create_sql(c, p, unlogged, r);
    if (p->create_sql == NULL || !step(c, p->create_sql, r, "creating the shadow table") ||
        !give_shadow(c, p, shadow_rel, r))
        goto rollback;
    if ((before = columns_of(c, orig_rel, r)) == NULL)
        goto rollback;
    free(p->alter_sql);
    p->alter_sql = osc_stmt_retarget(p->sql, "pgcutover", shadow_name, err, sizeof err);
    if (p->alter_sql == NULL) {
        osc_result_error(r, "42601", NULL, "cannot retarget the statement: %s", err);
        goto rollback;
    }
    char *storage_before = storage_of(c, shadow_rel, r);
    if (storage_before == NULL || !try_as_user(c, p, r) || !bind_using(c, p, r) ||
        !decide(c, p, shadow_rel, storage_before, r)) {
        free(storage_before);
        goto rollback;
    }
    free(storage_before);
    if (!copy_key_refusal(p, r) || !build_map(c, p, before, shadow_rel, r) ||
        (p->strategy == OSC_STRATEGY_COPY &&
         (!key_survives(c, p, shadow_rel, r) || !key_collations(c, p, orig_rel, shadow_rel, r))))
        goto rollback;
    if (!keep) {
        ok = step(c, "ROLLBACK", r, "rollback");
        goto out;
    }
    char ids[32];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    char est[32];
    snprintf(est, sizeof est, "%" PRId64, p->rows_estimated);
    const char *uv[] = {ids, shadow_name, p->key_desc, est, p->map.key_ops, p->map.shadow_key_ops,
                        p->map.key_coll_changed ? "t" : "f"};
    if (!osc_map_save(c, &p->map, err, sizeof err) ||
        !osc_run(c,
                 "UPDATE pgcutover.migrations SET shadow_name = $2, key_columns = $3, "
                 "rows_estimated = $4, key_ops = $5, shadow_key_ops = $6, key_coll_changed = $7, "
                 "phase = 'shadow created', updated_at = now() WHERE id = $1",
                 7, uv, err, sizeof err, code)) {
        osc_result_error(r, "XX000", NULL, "recording the column map: %s", err);
        goto rollback;
    }
    ok = step(c, "COMMIT", r, "commit");
    goto out;
rollback:
    PQclear(PQexec(c, "ROLLBACK"));
out:
    PQclear(before);
    free(shadow_rel);
    free(orig_rel);
    return ok;
}
