/* osc_warn.c — see osc_warn.h. Lock modes: PostgreSQL documentation "Explicit Locking"
 * (13.3.1, table 13.2) and the ALTER TABLE page; volatility: "Function Volatility
 * Categories" (pg_proc.provolatile). */
#include "osc_warn.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "osc_db.h"

static const osc_warn_rule_def rules[OSC_WARN_NRULES] = {
    [OSC_WARN_DESTRUCTIVE] = {"PGC001", "destructive",
                              "DROP COLUMN, DROP TABLE: the data goes with it",
                              "keep a copy of the data (pg_dump, CREATE TABLE … AS) and drop only "
                              "in the contract step, once no running code uses it"},
    [OSC_WARN_INCOMPATIBLE] = {"PGC002", "not backward compatible",
                               "RENAME of a column or table, DROP COLUMN, a type change other than "
                               "a widening one: application code running now breaks",
                               "expand/contract: add the new column or table beside the old, "
                               "dual-write and backfill it, switch readers to it, then drop the old "
                               "in a later migration"},
    [OSC_WARN_VOLATILE_DEFAULT] = {"PGC003", "volatile default",
                                   "ADD COLUMN with a DEFAULT that calls a volatile function "
                                   "(pg_proc.provolatile = v: clock_timestamp(), random(), "
                                   "gen_random_uuid(), nextval() …): every row gets its own value, "
                                   "so PostgreSQL rewrites the table",
                                   "add the column without a default (or with a constant one), SET "
                                   "DEFAULT for new rows, and backfill the existing rows in batches"},
    [OSC_WARN_NARROWING] = {"PGC004", "narrowing type change",
                            "ALTER COLUMN … TYPE that is not a widening (smallint → integer → "
                            "bigint → numeric, real → double precision, varchar(n) → varchar(m ≥ "
                            "n) or text), or any USING expression: a row may fail to convert or "
                            "lose data",
                            "check every row converts on a copy first, or add a column of the new "
                            "type beside the old (expand/contract)"},
    [OSC_WARN_FK_NO_INDEX] = {"PGC005", "foreign key without index",
                              "a new FOREIGN KEY whose columns no index of the table starts with: "
                              "every DELETE or key UPDATE on the referenced table scans this one",
                              "CREATE INDEX CONCURRENTLY on the referencing columns (the console "
                              "runs it as strategy concurrent)"},
    [OSC_WARN_LARGE_DML] = {"PGC006", "large data change",
                            "an UPDATE or DELETE of a migration file, not marked for batching, that "
                            "PostgreSQL's planner expects to touch more than batch_threshold_rows rows: "
                            "one transaction locks them all (their writers wait), bloats the table, "
                            "and a failure rolls all of it back",
                            "mark it -- pgcutover:batched (the console: BATCHED UPDATE …): key ranges "
                            "of batch_size rows, each its own transaction — no longer atomic"},
};

const osc_warn_rule_def *osc_warn_rules(int *n)
{
    *n = OSC_WARN_NRULES;
    return rules;
}

/* "<id> <name>: <detail>; <advice>" into buf. */
static void format_warning(char *buf, size_t len, osc_warn_rule rule, const char *detail)
{
    snprintf(buf, len, "%s %s: %s; %s", rules[rule].id, rules[rule].name, detail, rules[rule].advice);
}

void osc_warn_add(osc_plan *p, osc_warn_rule rule, const char *fmt, ...)
{
    if (p->nwarnings >= OSC_MAX_WARNINGS)
        return;
    char detail[700], buf[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    format_warning(buf, sizeof buf, rule, detail);
    char *w = strdup(buf);
    if (w)
        p->warnings[p->nwarnings++] = w;
}

/* Columns added with a default that calls a volatile function, with those functions: the
 * function oids of the default's stored expression tree (pg_attrdef.adbin, nodeToString
 * text: FUNCEXPR :funcid, OPEXPR and the like :opfuncid) — pg_depend would not do, it
 * records no dependency on the built-in (pinned) functions. */
static const char volatile_sql[] =
    "SELECT a.attname, string_agg(DISTINCT f.proname || '()', ', ') FROM pg_attrdef d "
    "JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum "
    "CROSS JOIN LATERAL regexp_matches(d.adbin::text, ':(?:funcid|opfuncid) (\\d+)', 'g') m "
    "JOIN pg_proc f ON f.oid = m[1]::oid "
    "WHERE d.adrelid = $1::regclass AND d.adnum > $2::int AND a.attgenerated = '' AND "
    "f.provolatile = 'v' GROUP BY a.attname, a.attnum ORDER BY a.attnum";

/* Foreign keys of the shadow the original has none of that name of, with no index whose
 * leading columns are the key's (indkey is an int2vector: its array starts at 0). */
static const char fk_sql[] =
    "SELECT k.conname, (SELECT string_agg(quote_ident(attname), ', ' ORDER BY "
    "array_position(k.conkey, attnum)) FROM pg_attribute WHERE attrelid = k.conrelid AND attnum = "
    "ANY (k.conkey)), k.confrelid::regclass::text FROM pg_constraint k WHERE k.conrelid = "
    "$1::regclass AND k.contype = 'f' AND k.conname NOT IN (SELECT conname FROM pg_constraint WHERE "
    "conrelid = $2::oid AND contype = 'f') AND NOT EXISTS (SELECT FROM pg_index i WHERE i.indrelid "
    "= k.conrelid AND i.indpred IS NULL AND (i.indkey::int2[])[0:cardinality(k.conkey) - 1] @> "
    "k.conkey AND (i.indkey::int2[])[0:cardinality(k.conkey) - 1] <@ k.conkey) ORDER BY k.conname";

bool osc_warn_trial(PGconn *c, osc_plan *p, const char *shadow_rel, int nbefore, osc_result *r)
{
    char err[1024], code[6], nb[16], oid[16];
    snprintf(nb, sizeof nb, "%d", nbefore);
    snprintf(oid, sizeof oid, "%u", p->table_oid);
    const char *v[] = {shadow_rel, nb}, *fv[] = {shadow_rel, oid};
    PGresult *t = osc_exec(c, volatile_sql, 2, v, err, sizeof err, code);
    for (int i = 0; t && i < PQntuples(t); i++)
        osc_warn_add(p, OSC_WARN_VOLATILE_DEFAULT,
                     "column \"%s\" is added with a default that calls the volatile %s, so "
                     "PostgreSQL rewrites the whole table (here: the copy strategy, a shadow as "
                     "large as the table)",
                     PQgetvalue(t, i, 0), PQgetvalue(t, i, 1));
    PGresult *k = t ? osc_exec(c, fk_sql, 2, fv, err, sizeof err, code) : NULL;
    for (int i = 0; k && i < PQntuples(k); i++)
        osc_warn_add(p, OSC_WARN_FK_NO_INDEX,
                     "no index of %s.%s starts with (%s), the columns of the new foreign key %s "
                     "to %s: each DELETE or key UPDATE on %s scans %s.%s",
                     p->map.schema, p->map.table, PQgetvalue(k, i, 1), PQgetvalue(k, i, 0),
                     PQgetvalue(k, i, 2), PQgetvalue(k, i, 2), p->map.schema, p->map.table);
    bool ok = t && k;
    if (!ok)
        osc_result_error(r, code, NULL, "reading the change's defaults and foreign keys: %s", err);
    PQclear(t);
    PQclear(k);
    return ok;
}

void osc_warn_begin(osc_warn_out *o, osc_result *r)
{
    o->r = r;
    o->step = 0;
    static const char *const cols[] = {"phase", "description", "sql", "lock", "client_wait"};
    osc_result_col(r, "step", OSC_T_INT8);
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++)
        osc_result_col(r, cols[i], OSC_T_TEXT);
}

void osc_warn_row(osc_warn_out *o, const char *phase, const char *description, const char *sql,
                  const char *lock, const char *client_wait)
{
    char n[16];
    snprintf(n, sizeof n, "%d", ++o->step);
    const char *row[] = {n, phase, description, sql, lock, client_wait};
    osc_result_row(o->r, row);
}

void osc_warn_rows(osc_warn_out *o, const osc_plan *p)
{
    for (int i = 0; i < p->nwarnings; i++)
        osc_warn_row(o, "warning", p->warnings[i], NULL, NULL, NULL);
}

void osc_warn_direct_rows(osc_warn_out *o, const char *sql)
{
    osc_direct_facts f;
    char buf[1200];
    if (!osc_stmt_direct_facts(sql, &f))
        return;
    if (f.drops_table) {
        format_warning(buf, sizeof buf, OSC_WARN_DESTRUCTIVE,
                       "DROP TABLE deletes the table and every row in it, and running code that "
                       "uses it fails");
        osc_warn_row(o, "warning", buf, NULL, NULL, NULL);
    }
    if (f.renames_table) {
        format_warning(buf, sizeof buf, OSC_WARN_INCOMPATIBLE,
                       "RENAME TO: the old name stops working at once for running code");
        osc_warn_row(o, "warning", buf, NULL, NULL, NULL);
    }
}

const char *osc_warn_lock_name(int level)
{
    switch (level) {
    case OSC_LOCK_ACCESS_SHARE:
        return "ACCESS SHARE";
    case OSC_LOCK_ROW_SHARE:
        return "ROW SHARE";
    case OSC_LOCK_SHARE_UPDATE_EXCLUSIVE:
        return "SHARE UPDATE EXCLUSIVE";
    case OSC_LOCK_SHARE_ROW_EXCLUSIVE:
        return "SHARE ROW EXCLUSIVE";
    case OSC_LOCK_ACCESS_EXCLUSIVE:
        return "ACCESS EXCLUSIVE";
    default:
        return "none";
    }
}

int osc_warn_stmt_lock(const osc_stmt *s)
{
    int level = 0;
    for (int i = 0; i < s->ncmds; i++)
        if (s->cmds[i].lock_level > level)
            level = s->cmds[i].lock_level;
    return level;
}

void osc_warn_held_wait(const conf_t *s, char *buf, size_t len)
{
    snprintf(buf, len, "up to %d ms per attempt (lock_timeout_ms) × %d attempts "
                       "(cutover_attempts) = %lld ms at most, new transactions held at the "
                       "proxy, none in a lock queue",
             s->lock_timeout_ms, s->cutover_attempts,
             (long long)s->lock_timeout_ms * s->cutover_attempts);
}

/* ms as "<n> ms", "<n.n> s", "<n.n> min" or "<n.n> h". */
static void human_ms(double ms, char *buf, size_t len)
{
    if (ms < 1000)
        snprintf(buf, len, "%.0f ms", ms);
    else if (ms < 120e3)
        snprintf(buf, len, "%.1f s", ms / 1e3);
    else if (ms < 7200e3)
        snprintf(buf, len, "%.1f min", ms / 60e3);
    else
        snprintf(buf, len, "%.1f h", ms / 3600e3);
}

void osc_warn_estimate(osc_warn_out *o, PGconn *c, const char *oid, osc_est_kind kind,
                       int64_t rows, const conf_t *s)
{
    char d[700], t[32];
    if (kind == OSC_EST_CATALOG) {
        osc_warn_row(o, "estimate", "milliseconds (catalog only) — an estimate: PostgreSQL "
                                    "changes only its catalog, whatever the table's size",
                     NULL, NULL, NULL);
        return;
    }
    long long bytes = 0, total = 0;
    char err[256], code[6];
    const char *v[] = {oid && *oid ? oid : "0"};
    PGresult *r = osc_exec(c, "SELECT coalesce(pg_relation_size($1::oid), 0), "
                              "coalesce(pg_total_relation_size($1::oid), 0)",
                           1, v, err, sizeof err, code);
    if (r) {
        bytes = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        total = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    }
    PQclear(r);
    if (kind == OSC_EST_COPY) {
        int max = s ? s->max_rows_per_second : 0;
        bool capped = max > 0 && max < OSC_EST_COPY_ROWS_PER_S;
        double rate = capped ? max : OSC_EST_COPY_ROWS_PER_S;
        human_ms((double)rows / rate * 1000.0, t, sizeof t);
        snprintf(d, sizeof d, "about %s — an estimate: the backfill of %" PRId64 " rows "
                              "(pg_class.reltuples, or a count if never analyzed) at %.0f rows/s (%s); verify and cutover add "
                              "little; the shadow needs about %.1f MB more disk "
                              "(pg_total_relation_size)",
                 t, rows, rate, capped ? "max_rows_per_second" : "an assumed rate; "
                 "max_rows_per_second caps it lower", total / 1e6);
    } else {
        int reads = kind == OSC_EST_BUILD ? 2 : 1;
        human_ms((double)bytes * reads / (OSC_EST_SCAN_MB_PER_S * 1e6) * 1000.0, t, sizeof t);
        snprintf(d, sizeof d, "about %s — an estimate: %s of the table's %.1f MB "
                              "(pg_relation_size) at an assumed %d MB/s%s",
                 t, reads == 2 ? "two reads" : "one read", bytes / 1e6, OSC_EST_SCAN_MB_PER_S,
                 reads == 2 ? ", the sort not counted; it also waits for older transactions"
                            : " per constraint validated");
    }
    osc_warn_row(o, "estimate", d, NULL, NULL, NULL);
}
