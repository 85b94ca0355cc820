/* osc_sql.c — see osc_sql.h. */
#include "osc_sql.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void osc_sb_addf(osc_sb *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || b->len + (size_t)n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (n >= 0 && cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *s = n < 0 ? NULL : realloc(b->s, cap);
        if (s == NULL) {
            b->oom = true;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void osc_sb_ident(osc_sb *b, const char *name)
{
    osc_sb_addf(b, "\"");
    for (const char *p = name; *p; p++)
        osc_sb_addf(b, *p == '"' ? "\"\"" : "%c", *p);
    osc_sb_addf(b, "\"");
}

void osc_sb_text_array(osc_sb *b, int first, int n)
{
    osc_sb_addf(b, "ARRAY[");
    for (int i = 0; i < n; i++)
        osc_sb_addf(b, "%s$%d::text", i ? ", " : "", first + i);
    osc_sb_addf(b, "]");
}

void osc_sb_literal(osc_sb *b, const char *s)
{
    bool backslash = strchr(s, '\\') != NULL;
    osc_sb_addf(b, backslash ? " E'" : "'");
    for (const char *p = s; *p; p++)
        osc_sb_addf(b, *p == '\'' ? "''" : *p == '\\' ? "\\\\" : "%c", *p);
    osc_sb_addf(b, "'");
}

char *osc_sb_take(osc_sb *b)
{
    if (b->oom || b->s == NULL) {
        free(b->s);
        memset(b, 0, sizeof *b);
        return NULL;
    }
    char *s = b->s;
    memset(b, 0, sizeof *b);
    return s;
}

void osc_map_free(osc_map *m)
{
    free(m->schema);
    free(m->table);
    free(m->shadow_schema);
    free(m->shadow_table);
    for (int i = 0; i < m->nkeys; i++) {
        free(m->key_name[i]);
        free(m->key_type[i]);
    }
    for (int i = 0; i < m->ncols; i++) {
        free(m->cols[i].name);
        free(m->cols[i].type);
        free(m->cols[i].expr);
        free(m->cols[i].from_type);
    }
    free(m->cols);
    for (int i = 0; i < 2 * m->nchecks; i++)
        free(m->checks[i]);
    free(m->checks);
    free(m->key_ops);
    free(m->shadow_key_ops);
    free(m->owner);
    memset(m, 0, sizeof *m);
}

/* Whether expr is exactly the quoted identifier of name. */
static bool is_plain_ref(const char *expr, const char *name)
{
    osc_sb b = {0};
    osc_sb_ident(&b, name);
    bool same = !b.oom && expr && strcmp(expr, b.s) == 0;
    free(b.s);
    return same;
}

bool osc_map_keys_plain(const osc_map *m)
{
    for (int k = 0; k < m->nkeys; k++)
        if (!is_plain_ref(m->cols[m->key_col[k]].expr, m->key_name[k]))
            return false;
    return true;
}

bool osc_map_keys_ordered(const osc_map *m)
{
    if (m->key_coll_changed || !osc_map_keys_plain(m))
        return false;
    for (int k = 0; k < m->nkeys; k++) {
        const char *from = m->key_type[k], *to = m->cols[m->key_col[k]].type;
        bool same = strcmp(from, to) == 0;
        bool widened = (strcmp(from, "smallint") == 0 &&
                        (strcmp(to, "integer") == 0 || strcmp(to, "bigint") == 0)) ||
                       (strcmp(from, "integer") == 0 && strcmp(to, "bigint") == 0);
        if (!same && !widened)
            return false;
    }
    return true;
}

void osc_sql_function_name(int64_t id, char *buf, size_t len)
{
    snprintf(buf, len, "m%" PRId64 "_dw", id);
}

void osc_sql_log_name(int64_t id, char *buf, size_t len)
{
    snprintf(buf, len, "m%" PRId64 "_log", id);
}

void osc_sql_trigger_name(int64_t id, bool truncate, char *buf, size_t len)
{
    snprintf(buf, len, "pgcutover_m%" PRId64 "_%s", id, truncate ? "truncate" : "dw");
}

void osc_sb_qualified(osc_sb *b, const char *schema, const char *table)
{
    if (schema) {
        osc_sb_ident(b, schema);
        osc_sb_addf(b, ".");
    }
    osc_sb_ident(b, table);
}

static void add_function(osc_sb *b, const osc_map *m)
{
    char fn[64];
    osc_sql_function_name(m->id, fn, sizeof fn);
    osc_sb_addf(b, "pgcutover.");
    osc_sb_ident(b, fn);
}

static void add_log(osc_sb *b, const osc_map *m)
{
    char name[64];
    osc_sql_log_name(m->id, name, sizeof name);
    osc_sb_addf(b, "pgcutover.");
    osc_sb_ident(b, name);
}

/* pgcutover."m<id>_faults": a revert window's writes the old table cannot hold. */
static void add_faults(osc_sb *b, const osc_map *m)
{
    osc_sb_addf(b, "pgcutover.\"m%" PRId64 "_faults\"", m->id);
}

/* OPERATOR("schema".op) of the key's btree operators on the original or the shadow. */
static void add_op(osc_sb *b, const osc_map *m, bool shadow, const char *op)
{
    const char *schema = shadow ? m->shadow_key_ops : m->key_ops;
    osc_sb_addf(b, " OPERATOR(");
    osc_sb_ident(b, schema && *schema ? schema : "pg_catalog");
    osc_sb_addf(b, ".%s) ", op);
}

/* "col1", "col2" … of the copied shadow columns. */
static void add_copied_names(osc_sb *b, const osc_map *m)
{
    bool first = true;
    for (int i = 0; i < m->ncols; i++) {
        if (m->cols[i].expr == NULL)
            continue;
        osc_sb_addf(b, first ? "" : ", ");
        osc_sb_ident(b, m->cols[i].name);
        first = false;
    }
}

/* (expr1), (expr2) … of the copied shadow columns; cast to the shadow types if cast. */
static void add_copied_exprs(osc_sb *b, const osc_map *m, bool cast)
{
    bool first = true;
    for (int i = 0; i < m->ncols; i++) {
        if (m->cols[i].expr == NULL)
            continue;
        if (cast)
            osc_sb_addf(b, "%sCAST((%s) AS %s)", first ? "" : ", ", m->cols[i].expr, m->cols[i].type);
        else
            osc_sb_addf(b, "%s(%s)", first ? "" : ", ", m->cols[i].expr);
        first = false;
    }
}

/* ("k1", "k2") of the original's key, each qualified by prefix when not NULL. */
static void add_key_tuple(osc_sb *b, const osc_map *m, const char *prefix)
{
    osc_sb_addf(b, "(");
    for (int k = 0; k < m->nkeys; k++) {
        osc_sb_addf(b, "%s%s%s", k ? ", " : "", prefix ? prefix : "", prefix ? "." : "");
        osc_sb_ident(b, m->key_name[k]);
    }
    osc_sb_addf(b, ")");
}

/* ($first::type1, $first+1::type2 …) — a key given as text parameters; inner: the
 * statement runs in the executor, where the parameters are the elements of $1. An
 * untyped parameter cast to a type reads it with the type's input function; inside the
 * executor the text→type cast runs with the owner's rights. */
static void add_key_params(osc_sb *b, const osc_map *m, int first, bool inner)
{
    osc_sb_addf(b, "(");
    for (int k = 0; k < m->nkeys; k++)
        osc_sb_addf(b, inner ? "%s$1[%d]::%s" : "%s$%d::%s", k ? ", " : "", first + k, m->key_type[k]);
    osc_sb_addf(b, ")");
}

/* The shadow's key column names as ("a", "b"). */
static void add_shadow_key(osc_sb *b, const osc_map *m, const char *prefix)
{
    osc_sb_addf(b, "(");
    for (int k = 0; k < m->nkeys; k++) {
        osc_sb_addf(b, "%s%s%s", k ? ", " : "", prefix ? prefix : "", prefix ? "." : "");
        osc_sb_ident(b, m->cols[m->key_col[k]].name);
    }
    osc_sb_addf(b, ")");
}

/* The body between dollar quotes: a tag that the body does not contain, so no text in
 * it (a USING expression's string literal) can end the quote. */
static void add_dollar_quoted(osc_sb *b, const char *body)
{
    char tag[32] = "$pgc$";
    for (int i = 1; strstr(body, tag) != NULL; i++)
        snprintf(tag, sizeof tag, "$pgc%d$", i);
    osc_sb_addf(b, "%s%s%s", tag, body, tag);
}

/* k0, k1 … (or s0 …) of the log. */
static void add_log_cols(osc_sb *b, const osc_map *m, char prefix)
{
    for (int k = 0; k < m->nkeys; k++)
        osc_sb_addf(b, "%s%c%d", k ? ", " : "", prefix, k);
}

/* One log row for the key of row ("OLD" or "NEW"); with_shadow_key: also the shadow key
 * that row maps to (a USING key, computed from the whole row). */
static void add_log_insert(osc_sb *b, const osc_map *m, const char *row, bool with_shadow_key)
{
    osc_sb_addf(b, "    INSERT INTO ");
    add_log(b, m);
    osc_sb_addf(b, " (pgc_op, ");
    add_log_cols(b, m, 'k');
    if (with_shadow_key) {
        osc_sb_addf(b, ", ");
        add_log_cols(b, m, 's');
    }
    osc_sb_addf(b, ") SELECT 'R'");
    for (int k = 0; k < m->nkeys; k++) {
        osc_sb_addf(b, ", %s.", row);
        osc_sb_ident(b, m->key_name[k]);
    }
    for (int k = 0; with_shadow_key && k < m->nkeys; k++) {
        const osc_col *kc = &m->cols[m->key_col[k]];
        osc_sb_addf(b, ", CAST((%s) AS %s)", kc->expr, kc->type);
    }
    if (with_shadow_key) {
        osc_sb_addf(b, " FROM (SELECT %s.*) AS ", row);
        osc_sb_ident(b, m->table);
    }
    osc_sb_addf(b, ";\n");
}

/* Whether every value of type from is a value of type to (format_type() spellings): the
 * widenings a copy migration makes, whose inverse a revert window checks. */
static bool fits_always(const char *from, const char *to)
{
    static const char *const pairs[][2] = {
        {"smallint", "integer"}, {"smallint", "bigint"}, {"integer", "bigint"},
        {"smallint", "numeric"}, {"integer", "numeric"}, {"bigint", "numeric"},
        {"real", "double precision"}, {"character varying", "text"}, {"character", "text"}};
    if (strcmp(from, to) == 0 || strcmp(to, "text") == 0)
        return true;
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
        if (strcmp(from, pairs[i][0]) == 0 && strcmp(to, pairs[i][1]) == 0)
            return true;
    return false;
}

/* The smallest and largest integer of type t, for a range test of a value of type from
 * without a subtransaction; false unless t is an integer type and from a number type
 * (a text value, say, is no number to compare: it takes the block). */
static bool int_range(const char *from, const char *t, const char **lo, const char **hi)
{
    static const char *const numbers[] = {"smallint", "integer", "bigint", "numeric"};
    bool number = false;
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++)
        number = number || strcmp(from, numbers[i]) == 0;
    if (!number)
        return false;
    static const char *const r[][3] = {{"smallint", "-32768", "32767"},
                                       {"integer", "-2147483648", "2147483647"}};
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++)
        if (strcmp(t, r[i][0]) == 0) {
            *lo = r[i][1];
            *hi = r[i][2];
            return true;
        }
    return false;
}

/* INSERT INTO the faults table: the written row's key and reason (an SQL expression that
 * may use NEW, SQLERRM, SQLSTATE, built in *reason, which this takes and empties). Names reach the SQL only as literals. A row per such
 * write, as the log has: the trigger reads no table, so a SERIALIZABLE writer takes no
 * predicate lock here and cannot fail with 40001 on another writer's fault (a cap by
 * NOT EXISTS did: test_engine_random seed 9). */
static void add_fault(osc_sb *b, const osc_map *m, osc_sb *reason)
{
    osc_sb names = {0};
    osc_sb_addf(&names, "(");
    for (int k = 0; k < m->nkeys; k++)
        osc_sb_addf(&names, "%s%s", k ? ", " : "", m->key_name[k]); /* as PostgreSQL's messages */
    osc_sb_addf(&names, ")=(");
    char *n = osc_sb_take(&names);
    osc_sb_addf(b, "      INSERT INTO ");
    add_faults(b, m);
    osc_sb_addf(b, " (key, reason) SELECT ");
    osc_sb_literal(b, n ? n : "(key)=(");
    free(n);
    for (int k = 0; k < m->nkeys; k++) {
        /* the type's output function, never a ::text cast a type's owner could define */
        osc_sb_addf(b, " || %scoalesce(pg_catalog.format('%%s', NEW.", k ? "', ' || " : "");
        osc_sb_ident(b, m->key_name[k]);
        osc_sb_addf(b, "), 'NULL')");
    }
    char *r = osc_sb_take(reason);
    osc_sb_addf(b, " || ')', %s;\n", r ? r : "'out of memory'");
    free(r);
}

/* A literal of printf-formatted text into b (names quoted safely whatever they hold). */
static void add_literalf(osc_sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_literalf(osc_sb *b, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    osc_sb_literal(b, text);
}

/* Whether column c of a window's map needs the assignment check in a block (pgc_v<i>). */
static bool needs_block(const osc_col *c)
{
    const char *lo, *hi;
    return c->expr && c->from_type && !fits_always(c->from_type, c->type) &&
           !int_range(c->from_type, c->type, &lo, &hi);
}

/* A revert window's checks (osc_window.h) of each INSERT and UPDATE: would the old table
 * hold the row mapped back? A narrowed integer by its range; any other narrowed type by
 * an assignment to a variable of the old type (PostgreSQL's assignment cast, as the
 * revert's INSERT makes it) in a block that catches the error — one subtransaction per
 * write, only for such columns; a NULL into a NOT NULL column; an INSERT that leaves a
 * dropped NOT NULL column without a value. A failing check records the key and reason
 * and never fails the application's statement. */
static void add_window_checks(osc_sb *b, const osc_map *m)
{
    osc_sb_addf(b, "  IF TG_OP <> 'DELETE' THEN\n");
    for (int i = 0; i < m->ncols; i++) {
        const osc_col *c = &m->cols[i];
        const char *lo, *hi;
        osc_sb why = {0};
        if (c->expr && c->from_type && !fits_always(c->from_type, c->type)) {
            bool range = int_range(c->from_type, c->type, &lo, &hi);
            if (range) {
                osc_sb_addf(b, "    IF NEW.%s NOT BETWEEN %s AND %s THEN\n", c->expr, lo, hi);
                add_literalf(&why, "column %s: ", c->expr);
                osc_sb_addf(&why, " || pg_catalog.format('%%s', NEW.%s) || ", c->expr);
                add_literalf(&why, " is out of range for the old type %s", c->type);
            } else {
                osc_sb_addf(b, "    BEGIN\n      pgc_v%d := NEW.%s;\n    EXCEPTION WHEN OTHERS THEN\n",
                            i, c->expr);
                add_literalf(&why, "column %s: ", c->expr);
                osc_sb_addf(&why, " || SQLERRM || ' (SQLSTATE ' || SQLSTATE || ')'");
            }
            add_fault(b, m, &why);
            osc_sb_addf(b, range ? "    END IF;\n" : "    END;\n");
        }
        if (c->expr && c->not_null) {
            osc_sb_addf(b, "    IF NEW.%s IS NULL THEN\n", c->expr);
            add_literalf(&why, "column %s is NULL: the old table's column is NOT NULL", c->expr);
            add_fault(b, m, &why);
            osc_sb_addf(b, "    END IF;\n");
        }
        if (c->expr == NULL && c->needs_value) {
            osc_sb_addf(b, "    IF TG_OP = 'INSERT' THEN\n");
            add_literalf(&why, "a new row has no value for column \"%s\" of the old table (NOT NULL, "
                               "no default, not in the new table)", c->name);
            add_fault(b, m, &why);
            osc_sb_addf(b, "    END IF;\n");
        }
    }
    for (int k = 0; k < m->nchecks; k++) {
        const char *name = m->checks[2 * k], *expr = m->checks[2 * k + 1];
        /* the mapped row under the old table's names: a column not written is NULL (an
         * UPDATE keeps its value there; a CHECK passes on NULL in most cases) */
        osc_sb_addf(b, "    BEGIN\n      IF EXISTS (SELECT FROM (SELECT ");
        for (int i = 0; i < m->ncols; i++) {
            const osc_col *c = &m->cols[i];
            if (c->expr && c->from_type == NULL)
                osc_sb_addf(b, "%sNEW.%s AS ", i ? ", " : "", c->expr);
            else
                osc_sb_addf(b, "%sCAST(%s%s AS %s) AS ", i ? ", " : "", c->expr ? "NEW." : "NULL",
                            c->expr ? c->expr : "", c->type);
            osc_sb_ident(b, c->name);
        }
        osc_sb_addf(b, ") AS pgc_r WHERE NOT (%s)) THEN\n", expr);
        osc_sb why = {0};
        add_literalf(&why, "violates check constraint \"%s\" of the old table", name);
        add_fault(b, m, &why);
        osc_sb_addf(b, "      END IF;\n    EXCEPTION WHEN OTHERS THEN\n");
        add_literalf(&why, "check constraint \"%s\" of the old table: ", name);
        osc_sb_addf(&why, " || SQLERRM || ' (SQLSTATE ' || SQLSTATE || ')'");
        add_fault(b, m, &why);
        osc_sb_addf(b, "    END;\n");
    }
    osc_sb_addf(b, "  END IF;\n");
}

/* The dual-write function's body. */
static char *trigger_body(const osc_map *m, bool noop)
{
    osc_sb b = {0};
    /* A table named old or new: its alias below is a column source, not the record. */
    osc_sb_addf(&b, "\n#variable_conflict use_column\n");
    bool declared = false;
    for (int i = 0; m->window && !noop && i < m->ncols; i++)
        if (needs_block(&m->cols[i])) {
            osc_sb_addf(&b, "%spgc_v%d %s;\n", declared ? "" : "DECLARE\n", i, m->cols[i].type);
            declared = true;
        }
    osc_sb_addf(&b, "BEGIN\n");
    if (noop) {
        osc_sb_addf(&b, "  RETURN NULL; -- migration %" PRId64 " stopped writing\nEND\n", m->id);
        return osc_sb_take(&b);
    }
    bool plain = osc_map_keys_plain(m);
    osc_sb_addf(&b, "  IF TG_OP = 'TRUNCATE' THEN\n    INSERT INTO ");
    add_log(&b, m);
    osc_sb_addf(&b, " (pgc_op) VALUES ('T');\n    RETURN NULL;\n  END IF;\n"
                    "  IF TG_OP <> 'INSERT' THEN\n");
    if (plain) {
        add_log_insert(&b, m, "OLD", false);
    } else {
        /* The old row's shadow key, by the ALTER's USING: if it fails on this row, the key
         * alone (the application's statement must not fail; that row could not be copied
         * either, so the backfill or the log's application fails the migration). */
        osc_sb_addf(&b, "    BEGIN\n  ");
        add_log_insert(&b, m, "OLD", true);
        osc_sb_addf(&b, "    EXCEPTION WHEN OTHERS THEN\n  ");
        add_log_insert(&b, m, "OLD", false);
        osc_sb_addf(&b, "    END;\n");
    }
    /* The new key only when it is another key: an UPDATE that keeps it (also as an equal
     * but not identical value) is found again by the old one. */
    osc_sb_addf(&b, "  END IF;\n  IF TG_OP = 'INSERT' OR NOT (");
    for (int k = 0; k < m->nkeys; k++) {
        osc_sb_addf(&b, "%sOLD.", k ? " AND " : "");
        osc_sb_ident(&b, m->key_name[k]);
        add_op(&b, m, false, "=");
        osc_sb_addf(&b, "NEW.");
        osc_sb_ident(&b, m->key_name[k]);
    }
    osc_sb_addf(&b, ") THEN\n");
    add_log_insert(&b, m, "NEW", false);
    osc_sb_addf(&b, "  END IF;\n");
    if (m->window)
        add_window_checks(&b, m);
    osc_sb_addf(&b, "  RETURN NULL;\nEND\n");
    return osc_sb_take(&b);
}

char *osc_sql_trigger_function(const osc_map *m, bool noop)
{
    if (!noop && (m->owner == NULL || !*m->owner))
        return NULL; /* never a SECURITY DEFINER function of the engine's that writes */
    char *body = trigger_body(m, noop);
    if (body == NULL)
        return NULL;
    osc_sb b = {0};
    osc_sb_addf(&b, "CREATE OR REPLACE FUNCTION ");
    add_function(&b, m);
    osc_sb_addf(&b, "() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = "
                    "pg_catalog, pg_temp AS ");
    add_dollar_quoted(&b, body);
    free(body);
    osc_sb_addf(&b, ";\nREVOKE ALL ON FUNCTION ");
    add_function(&b, m);
    osc_sb_addf(&b, "() FROM PUBLIC");
    if (!noop) {
        osc_sb_addf(&b, ";\nALTER FUNCTION ");
        add_function(&b, m);
        osc_sb_addf(&b, "() OWNER TO ");
        osc_sb_ident(&b, m->owner);
    }
    return osc_sb_take(&b);
}

char *osc_sql_drop_functions(const osc_map *m)
{
    osc_sb b = {0};
    osc_sb_addf(&b, "DROP FUNCTION IF EXISTS ");
    add_function(&b, m);
    osc_sb_addf(&b, "(); DROP TABLE IF EXISTS ");
    add_log(&b, m);
    osc_sb_addf(&b, "; DROP TABLE IF EXISTS ");
    add_faults(&b, m);
    return osc_sb_take(&b);
}

char *osc_sql_create_log(const osc_map *m)
{
    if (m->owner == NULL || !*m->owner)
        return NULL;
    osc_sb b = {0};
    osc_sb_addf(&b, "CREATE TABLE IF NOT EXISTS ");
    add_log(&b, m);
    osc_sb_addf(&b, " AS SELECT 'R'::\"char\" AS pgc_op");
    for (int k = 0; k < m->nkeys; k++) {
        osc_sb_addf(&b, ", pgc_o.");
        osc_sb_ident(&b, m->key_name[k]);
        osc_sb_addf(&b, " AS k%d", k);
    }
    for (int k = 0; k < m->nkeys; k++) {
        osc_sb_addf(&b, ", pgc_s.");
        osc_sb_ident(&b, m->cols[m->key_col[k]].name);
        osc_sb_addf(&b, " AS s%d", k);
    }
    osc_sb_addf(&b, " FROM ONLY ");
    osc_sb_qualified(&b, m->schema, m->table);
    osc_sb_addf(&b, " AS pgc_o, ");
    osc_sb_qualified(&b, m->shadow_schema, m->shadow_table);
    osc_sb_addf(&b, " AS pgc_s WITH NO DATA;\nALTER TABLE ");
    add_log(&b, m);
    osc_sb_addf(&b, " OWNER TO ");
    osc_sb_ident(&b, m->owner);
    if (m->window) {
        osc_sb_addf(&b, ";\nCREATE TABLE IF NOT EXISTS ");
        add_faults(&b, m);
        osc_sb_addf(&b, " (key text NOT NULL, reason text NOT NULL, at timestamptz NOT NULL "
                        "DEFAULT pg_catalog.now());\nALTER TABLE ");
        add_faults(&b, m);
        osc_sb_addf(&b, " OWNER TO ");
        osc_sb_ident(&b, m->owner);
    }
    return osc_sb_take(&b);
}

char *osc_sql_log_count(const osc_map *m)
{
    osc_sb b = {0};
    osc_sb_addf(&b, "SELECT ARRAY[count(*)::text] FROM ");
    add_log(&b, m);
    return osc_sb_take(&b);
}

/* "col" = EXCLUDED."col", … for every copied column but identity ALWAYS ones, the key's
 * too. Returns whether any was written. */
static bool add_set_excluded(osc_sb *b, const osc_map *m)
{
    bool any = false;
    for (int i = 0; i < m->ncols; i++) {
        const osc_col *c = &m->cols[i]; /* keys too: an equal key may be spelled otherwise */
        if (c->expr == NULL || c->identity_always)
            continue;
        osc_sb_addf(b, any ? ", " : "");
        osc_sb_ident(b, c->name);
        osc_sb_addf(b, " = EXCLUDED.");
        osc_sb_ident(b, c->name);
        any = true;
    }
    return any;
}

/* Whether the shadow's key columns have the original's types and collations (no USING):
 * then a logged key is its own shadow key, and the log's s columns stay unused. */
static bool keys_same(const osc_map *m)
{
    if (!osc_map_keys_plain(m) || m->key_coll_changed)
        return false;
    for (int k = 0; k < m->nkeys; k++)
        if (strcmp(m->key_type[k], m->cols[m->key_col[k]].type) != 0)
            return false;
    return true;
}

/* OPERATOR(schema.=) ANY (ARRAY(SELECT s0 FROM log …)) — the logged values of the key's
 * first column as an array, so the table is reached through its key index (a
 * ScalarArrayOp index scan) whatever the planner guesses of the log's size; the EXISTS
 * that follows keeps the match exact for a composite key. */
static void add_logged_any(osc_sb *b, const osc_map *m, bool shadow)
{
    add_op(b, m, shadow, "=");
    osc_sb_addf(b, "ANY (ARRAY(SELECT pgc_a.%c0 FROM ", shadow && !keys_same(m) ? 's' : 'k');
    add_log(b, m);
    osc_sb_addf(b, " AS pgc_a WHERE pgc_a.pgc_op = 'R'))");
}

char *osc_sql_apply(const osc_map *m, int n, bool *oom)
{
    osc_sb b = {0};
    *oom = false;
    switch (n) {
    case 0:
        if (!osc_map_keys_plain(m) || keys_same(m))
            return NULL; /* the trigger logged the shadow key, or k is the shadow key */
        osc_sb_addf(&b, "UPDATE ");
        add_log(&b, m);
        osc_sb_addf(&b, " SET ");
        for (int k = 0; k < m->nkeys; k++)
            osc_sb_addf(&b, "%ss%d = k%d", k ? ", " : "", k, k);
        break;
    case 1:
        osc_sb_addf(&b, "DELETE FROM ");
        osc_sb_qualified(&b, m->shadow_schema, m->shadow_table);
        osc_sb_addf(&b, " WHERE EXISTS (SELECT FROM ");
        add_log(&b, m);
        osc_sb_addf(&b, " WHERE pgc_op = 'T')");
        break;
    case 2:
        osc_sb_addf(&b, "DELETE FROM ");
        osc_sb_qualified(&b, m->shadow_schema, m->shadow_table);
        osc_sb_addf(&b, " AS pgc_s WHERE pgc_s.");
        osc_sb_ident(&b, m->cols[m->key_col[0]].name);
        add_logged_any(&b, m, true);
        osc_sb_addf(&b, " AND EXISTS (SELECT FROM ");
        add_log(&b, m);
        osc_sb_addf(&b, " AS pgc_l WHERE pgc_l.pgc_op = 'R'");
        for (int k = 0; k < m->nkeys; k++) {
            osc_sb_addf(&b, " AND pgc_s.");
            osc_sb_ident(&b, m->cols[m->key_col[k]].name);
            add_op(&b, m, true, "=");
            osc_sb_addf(&b, "pgc_l.%c%d", keys_same(m) ? 'k' : 's', k);
        }
        osc_sb_addf(&b, ")");
        if (m->window) {
            /* A revert window keeps the old table's rows that still exist: step 3's upsert
             * writes their mapped columns and leaves the others (a column the change
             * dropped) as they were; a deleted row would take its default instead. */
            osc_sb_addf(&b, " AND NOT EXISTS (SELECT FROM ONLY ");
            osc_sb_qualified(&b, m->schema, m->table);
            osc_sb_addf(&b, " AS pgc_o WHERE ");
            for (int k = 0; k < m->nkeys; k++) {
                osc_sb_addf(&b, "%spgc_o.", k ? " AND " : "");
                osc_sb_ident(&b, m->key_name[k]);
                add_op(&b, m, false, "=");
                osc_sb_addf(&b, "pgc_s.");
                osc_sb_ident(&b, m->cols[m->key_col[k]].name);
            }
            osc_sb_addf(&b, ")");
        }
        break;
    case 3:
        osc_sb_addf(&b, "INSERT INTO ");
        osc_sb_qualified(&b, m->shadow_schema, m->shadow_table);
        osc_sb_addf(&b, " (");
        add_copied_names(&b, m);
        osc_sb_addf(&b, ") OVERRIDING SYSTEM VALUE SELECT ");
        add_copied_exprs(&b, m, false);
        osc_sb_addf(&b, " FROM ONLY ");
        osc_sb_qualified(&b, m->schema, m->table);
        osc_sb_addf(&b, " WHERE ");
        osc_sb_qualified(&b, m->schema, m->table);
        osc_sb_addf(&b, ".");
        osc_sb_ident(&b, m->key_name[0]);
        add_logged_any(&b, m, false);
        osc_sb_addf(&b, " AND EXISTS (SELECT FROM ");
        add_log(&b, m);
        osc_sb_addf(&b, " AS pgc_l WHERE pgc_l.pgc_op = 'R'");
        for (int k = 0; k < m->nkeys; k++) {
            osc_sb_addf(&b, " AND ");
            osc_sb_qualified(&b, m->schema, m->table);
            osc_sb_addf(&b, ".");
            osc_sb_ident(&b, m->key_name[k]);
            add_op(&b, m, false, "=");
            osc_sb_addf(&b, "pgc_l.k%d", k);
        }
        osc_sb_addf(&b, ") ON CONFLICT ");
        add_shadow_key(&b, m, NULL);
        osc_sb b2 = {0};
        if (add_set_excluded(&b2, m))
            osc_sb_addf(&b, " DO UPDATE SET %s", b2.s);
        else /* only an identity ALWAYS key is copied: nothing can differ */
            osc_sb_addf(&b, " DO NOTHING");
        b.oom |= b2.oom;
        free(b2.s);
        break;
    case 4:
        osc_sb_addf(&b, "DELETE FROM ");
        add_log(&b, m);
        break;
    default:
        return NULL;
    }
    char *q = osc_sb_take(&b);
    *oom = q == NULL;
    return q;
}

char *osc_sql_create_triggers(const osc_map *m)
{
    osc_sb b = {0};
    char trg[80];
    for (int t = 0; t < 2; t++) {
        osc_sql_trigger_name(m->id, t == 1, trg, sizeof trg);
        osc_sb_addf(&b, "CREATE TRIGGER ");
        osc_sb_ident(&b, trg);
        osc_sb_addf(&b, t == 0 ? " AFTER INSERT OR UPDATE OR DELETE ON " : " AFTER TRUNCATE ON ");
        osc_sb_qualified(&b, m->schema, m->table);
        osc_sb_addf(&b, t == 0 ? " FOR EACH ROW EXECUTE FUNCTION " : " FOR EACH STATEMENT EXECUTE FUNCTION ");
        add_function(&b, m);
        osc_sb_addf(&b, "();\nALTER TABLE ");
        osc_sb_qualified(&b, m->schema, m->table);
        osc_sb_addf(&b, " ENABLE ALWAYS TRIGGER ");
        osc_sb_ident(&b, trg);
        osc_sb_addf(&b, ";\n");
    }
    return osc_sb_take(&b);
}

char *osc_sql_drop_triggers(const osc_map *m)
{
    osc_sb b = {0};
    char trg[80];
    for (int t = 0; t < 2; t++) {
        osc_sql_trigger_name(m->id, t == 1, trg, sizeof trg);
        osc_sb_addf(&b, "DROP TRIGGER IF EXISTS ");
        osc_sb_ident(&b, trg);
        osc_sb_addf(&b, " ON ");
        osc_sb_qualified(&b, m->schema, m->table);
        osc_sb_addf(&b, ";\n");
    }
    return osc_sb_take(&b);
}

/* WHERE clause on the key: key > $lo_first… (has_lo) AND key <= $hi_first… (has_hi), with
 * the key index's own operators; "TRUE" when neither. inner: see add_key_params. */
static void add_range(osc_sb *b, const osc_map *m, const char *prefix, bool has_lo, int lo_first,
                      bool has_hi, int hi_first, bool shadow, bool inner)
{
    if (!has_lo && !has_hi)
        osc_sb_addf(b, "TRUE");
    for (int part = 0; part < 2; part++) {
        if (part == 0 ? !has_lo : !has_hi)
            continue;
        if (part == 1 && has_lo)
            osc_sb_addf(b, " AND ");
        if (shadow)
            add_shadow_key(b, m, prefix);
        else
            add_key_tuple(b, m, prefix);
        add_op(b, m, shadow, part == 0 ? ">" : "<=");
        add_key_params(b, m, part == 0 ? lo_first : hi_first, inner);
    }
}

static void add_key_order(osc_sb *b, const osc_map *m, const char *prefix, bool desc)
{
    for (int k = 0; k < m->nkeys; k++) {
        osc_sb_addf(b, "%s%s%s", k ? ", " : "", prefix ? prefix : "", prefix ? "." : "");
        osc_sb_ident(b, m->key_name[k]);
        osc_sb_addf(b, desc ? " DESC" : "");
    }
}

/* pg_temp.<executor>(<inner as a literal>, ARRAY[$1::text … $n::text]::text[], want_row) */
static void add_exec_call(osc_sb *b, const char *inner, int nparams, bool want_row)
{
    osc_sb_addf(b, "pg_temp.%s(", OSC_AS_OWNER);
    osc_sb_literal(b, inner);
    osc_sb_addf(b, ", ARRAY[");
    for (int i = 1; i <= nparams; i++)
        osc_sb_addf(b, "%s$%d::text", i > 1 ? ", " : "", i);
    osc_sb_addf(b, "]::text[], %s)", want_row ? "true" : "false");
}

char *osc_sql_backfill(const osc_map *m, bool has_last, bool on_conflict)
{
    int k = m->nkeys, end_first = has_last ? k + 1 : 1, id = end_first + k;
    osc_sb in = {0};
    osc_sb_addf(&in, "INSERT INTO ");
    osc_sb_qualified(&in, m->shadow_schema, m->shadow_table);
    osc_sb_addf(&in, " (");
    add_copied_names(&in, m);
    osc_sb_addf(&in, ") OVERRIDING SYSTEM VALUE SELECT ");
    add_copied_exprs(&in, m, false);
    osc_sb_addf(&in, " FROM ONLY ");
    osc_sb_qualified(&in, m->schema, m->table);
    osc_sb_addf(&in, " WHERE ");
    add_range(&in, m, NULL, has_last, 1, true, end_first, false, true);
    if (on_conflict) {
        osc_sb_addf(&in, " ON CONFLICT ");
        add_shadow_key(&in, m, NULL);
        osc_sb_addf(&in, " DO NOTHING");
    }
    char *inner = osc_sb_take(&in);
    if (inner == NULL)
        return NULL;
    osc_sb b = {0};
    osc_sb_addf(&b, "WITH pgc_n AS (SELECT (");
    add_exec_call(&b, inner, id - 1, false);
    free(inner);
    osc_sb_addf(&b, ")[1]::bigint AS n), pgc_ck AS ("
                    "UPDATE pgcutover.migrations SET checkpoint = CASE WHEN checkpoint IS NOT "
                    "DISTINCT FROM ");
    if (has_last)
        osc_sb_text_array(&b, 1, k);
    else
        osc_sb_addf(&b, "NULL::text[]");
    osc_sb_addf(&b, " THEN ");
    osc_sb_text_array(&b, end_first, k);
    osc_sb_addf(&b, " ELSE checkpoint END, rows_copied = rows_copied + pgc_n.n, updated_at = now() "
                    "FROM pgc_n WHERE id = $%d RETURNING checkpoint = ",
                id);
    osc_sb_text_array(&b, end_first, k);
    osc_sb_addf(&b, " AS moved) SELECT pgc_n.n, (SELECT count(*) FROM pgc_ck WHERE moved) FROM "
                    "pgc_n");
    return osc_sb_take(&b);
}

char *osc_sql_shadow_has(const osc_map *m, bool has_last)
{
    osc_sb b = {0};
    osc_sb_addf(&b, "SELECT 1 FROM ");
    osc_sb_qualified(&b, m->shadow_schema, m->shadow_table);
    osc_sb_addf(&b, " WHERE ");
    add_range(&b, m, NULL, has_last, 1, true, has_last ? m->nkeys + 1 : 1, true, false);
    osc_sb_addf(&b, " LIMIT 1");
    return osc_sb_take(&b);
}

/* SELECT format('%s', "k1") AS pgc_t0, … FROM ONLY original WHERE — the key as text by
 * the type's output function (a ::text cast could run a CREATE CAST function of the
 * type's owner with the engine's rights); aliased, so that an ORDER BY "k1" that follows
 * sorts by the column, not by this text output. */
static void add_key_select(osc_sb *b, const osc_map *m)
{
    osc_sb_addf(b, "SELECT ");
    for (int k = 0; k < m->nkeys; k++) {
        osc_sb_addf(b, "%spg_catalog.format('%%s', ", k ? ", " : "");
        osc_sb_ident(b, m->key_name[k]);
        osc_sb_addf(b, ") AS pgc_t%d", k);
    }
    osc_sb_addf(b, " FROM ONLY ");
    osc_sb_qualified(b, m->schema, m->table);
    osc_sb_addf(b, " WHERE ");
}

char *osc_sql_max_key(const osc_map *m)
{
    osc_sb b = {0};
    add_key_select(&b, m);
    osc_sb_addf(&b, "TRUE ORDER BY ");
    add_key_order(&b, m, NULL, true);
    osc_sb_addf(&b, " LIMIT 1");
    return osc_sb_take(&b);
}

char *osc_sql_verify(const osc_map *m, bool shadow, bool has_lo, bool has_hi)
{
    osc_sb in = {0};
    osc_sb_addf(&in, "SELECT ARRAY[count(*)::text, coalesce(sum(hashtextextended(ROW(");
    if (shadow) {
        bool first = true;
        for (int i = 0; i < m->ncols; i++) {
            if (m->cols[i].expr == NULL)
                continue;
            osc_sb_addf(&in, first ? "" : ", ");
            osc_sb_ident(&in, m->cols[i].name);
            first = false;
        }
    } else {
        add_copied_exprs(&in, m, true);
    }
    osc_sb_addf(&in, ")::text, 0)::numeric), 0)::text] FROM %s", shadow ? "" : "ONLY ");
    if (shadow)
        osc_sb_qualified(&in, m->shadow_schema, m->shadow_table);
    else
        osc_sb_qualified(&in, m->schema, m->table);
    osc_sb_addf(&in, " WHERE ");
    add_range(&in, m, NULL, has_lo, 1, has_hi, has_lo ? m->nkeys + 1 : 1, shadow, true);
    char *inner = osc_sb_take(&in);
    if (inner == NULL)
        return NULL;
    osc_sb b = {0};
    osc_sb_addf(&b, "SELECT pgc_r[1], pgc_r[2] FROM ");
    add_exec_call(&b, inner, (has_lo + has_hi) * m->nkeys, true);
    free(inner);
    osc_sb_addf(&b, " AS pgc_r");
    return osc_sb_take(&b);
}

char *osc_sql_chunk_end(const osc_map *m, bool has_lo, bool has_hi)
{
    osc_sb b = {0};
    int k = m->nkeys, hi_first = has_lo ? k + 1 : 1, n = hi_first + (has_hi ? k : 0);
    add_key_select(&b, m);
    add_range(&b, m, NULL, has_lo, 1, has_hi, hi_first, false, false);
    osc_sb_addf(&b, " ORDER BY ");
    add_key_order(&b, m, NULL, false);
    osc_sb_addf(&b, " OFFSET $%d - 1 LIMIT 1", n);
    return osc_sb_take(&b);
}
