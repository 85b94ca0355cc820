/*
 * test_osc_sql.c — the SQL the online schema change engine generates from hand-built
 * column maps (no server): identifier quoting, the string builder, object names, the
 * dual-write trigger function and triggers, the keyset backfill and its parameter
 * numbering, max key / chunk end, and the verify statements of both sides.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "osc_sql.h"

/* ---- helpers ---------------------------------------------------------------------- */

static char *dup_or_null(const char *s)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    assert_non_null(d);
    return d;
}

static void map_init(osc_map *m, int64_t id, const char *schema, const char *table,
                     const char *shadow_table, int ncols)
{
    memset(m, 0, sizeof *m);
    m->id = id;
    m->schema = dup_or_null(schema);
    m->table = dup_or_null(table);
    m->shadow_schema = dup_or_null("pgcutover");
    m->shadow_table = dup_or_null(shadow_table);
    m->cols = calloc((size_t)ncols, sizeof *m->cols);
    assert_non_null(m->cols);
    m->ncols = ncols;
}

static void map_col(osc_map *m, int i, const char *name, const char *type, const char *expr,
                    bool identity_always)
{
    m->cols[i].name = dup_or_null(name);
    m->cols[i].type = dup_or_null(type);
    m->cols[i].expr = dup_or_null(expr);
    m->cols[i].identity_always = identity_always;
}

static void map_key(osc_map *m, const char *name, const char *type, int col)
{
    m->key_name[m->nkeys] = dup_or_null(name);
    m->key_type[m->nkeys] = dup_or_null(type);
    m->key_col[m->nkeys] = col;
    m->nkeys++;
}

/* Single key: public.accounts (aid integer PK, abalance int -> bigint, note added). */
static void map_single(osc_map *m)
{
    map_init(m, 7, "public", "accounts", "accounts_7_new", 3);
    map_col(m, 0, "aid", "integer", "\"aid\"", false);
    map_col(m, 1, "abalance", "bigint", "\"abalance\"", false);
    map_col(m, 2, "note", "text", NULL, false);
    map_key(m, "aid", "integer", 0);
}

/*
 * Composite key (a integer, b text) of s.t, with: a widened to bigint; b renamed to "bee"
 * in the shadow; a column with an embedded double quote; a USING expression column; an
 * added column (expr NULL); an identity-always column.
 */
static void map_composite(osc_map *m)
{
    map_init(m, 42, "s", "t", "t_42_new", 6);
    map_col(m, 0, "a", "bigint", "\"a\"", false);
    map_col(m, 1, "bee", "text", "\"b\"", false);
    map_col(m, 2, "we\"ird", "text", "\"we\"\"ird\"", false);
    map_col(m, 3, "amount", "numeric(12,2)", "\"amount\" / 100.0", false);
    map_col(m, 4, "note", "text", NULL, false);
    map_col(m, 5, "seq", "bigint", "\"seq\"", true);
    map_key(m, "a", "integer", 0);
    map_key(m, "b", "text", 1);
}

/* Only a key (with an embedded quote, in a table with one) besides an identity-always and
 * an added column: no column for DO UPDATE SET. */
static void map_key_only(osc_map *m)
{
    map_init(m, 5, "public", "my\"tab", "my\"tab_5_new", 3);
    map_col(m, 0, "k\"q", "text", "\"k\"\"q\"", false);
    map_col(m, 1, "seq", "bigint", "\"seq\"", true);
    map_col(m, 2, "note", "text", NULL, false);
    map_key(m, "k\"q", "text", 0);
}

/* A key column whose value is a USING expression, not a plain reference. */
static void map_using_key(osc_map *m)
{
    map_init(m, 3, "public", "c", "c_3_new", 2);
    map_col(m, 0, "id", "bigint", "\"id\" * 10", false);
    map_col(m, 1, "v", "text", "\"v\"", false);
    map_key(m, "id", "integer", 0);
}

#define has(q, sub) has_at(q, sub, __LINE__)
#define lacks(q, sub) lacks_at(q, sub, __LINE__)

static void has_at(const char *q, const char *sub, int line)
{
    assert_non_null(q);
    if (strstr(q, sub) == NULL)
        fail_msg("line %d: generated SQL\n%s\nlacks\n%s", line, q, sub);
}

static void lacks_at(const char *q, const char *sub, int line)
{
    assert_non_null(q);
    if (strstr(q, sub) != NULL)
        fail_msg("line %d: generated SQL\n%s\nshould not contain\n%s", line, q, sub);
}

#define ends(q, suffix) ends_at(q, suffix, __LINE__)

static void ends_at(const char *q, const char *suffix, int line)
{
    assert_non_null(q);
    size_t n = strlen(q), k = strlen(suffix);
    if (n < k || strcmp(q + n - k, suffix) != 0)
        fail_msg("line %d: generated SQL\n%s\ndoes not end with\n%s", line, q, suffix);
}

static size_t count_of(const char *q, const char *sub)
{
    size_t n = 0;
    for (const char *p = q; (p = strstr(p, sub)) != NULL; p += strlen(sub))
        n++;
    return n;
}

/* ---- osc_sb ----------------------------------------------------------------------- */

/* osc_sb_ident double-quotes names and doubles embedded quotes; addf appends formatted. */
static void test_sb_ident_quoting(void **state)
{
    (void)state;
    osc_sb b = {0};
    osc_sb_ident(&b, "plain");
    osc_sb_addf(&b, ".");
    osc_sb_ident(&b, "we\"ird");
    osc_sb_addf(&b, " %d ", 12);
    osc_sb_ident(&b, "\"\"");
    osc_sb_addf(&b, " ");
    osc_sb_ident(&b, "");
    osc_sb_addf(&b, " ");
    osc_sb_ident(&b, "Mixed Case;--");
    char *s = osc_sb_take(&b);
    assert_non_null(s);
    assert_string_equal(s, "\"plain\".\"we\"\"ird\" 12 \"\"\"\"\"\" \"\" \"Mixed Case;--\"");
    assert_null(b.s); /* the builder is reset */
    assert_int_equal(b.len, 0);
    free(s);
}

/* The builder grows past its first 256 bytes and keeps len equal to strlen. */
static void test_sb_grows(void **state)
{
    (void)state;
    osc_sb b = {0};
    char chunk[101];
    memset(chunk, 'x', 100);
    chunk[100] = 0;
    for (int i = 0; i < 30; i++)
        osc_sb_addf(&b, "%s", chunk);
    osc_sb_ident(&b, "end");
    assert_false(b.oom);
    assert_int_equal(b.len, 3005);
    assert_true(b.cap > b.len);
    char *s = osc_sb_take(&b);
    assert_non_null(s);
    assert_int_equal(strlen(s), 3005);
    assert_string_equal(s + 3000, "\"end\"");
    free(s);
}

/* osc_sb_take: NULL on an empty builder; NULL, buffer freed and builder reset on oom. */
static void test_sb_take_empty_and_oom(void **state)
{
    (void)state;
    osc_sb b = {0};
    assert_null(osc_sb_take(&b));

    osc_sb_addf(&b, "SELECT %d", 1);
    assert_non_null(b.s);
    b.oom = true; /* as after a failed realloc */
    osc_sb_addf(&b, " more");
    osc_sb_ident(&b, "x");
    assert_int_equal(b.len, 8);   /* nothing appended after oom */
    assert_null(osc_sb_take(&b)); /* and the buffer is freed: ASan would report a leak */
    assert_null(b.s);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    assert_false(b.oom);

    osc_sb c = {.oom = true};
    osc_sb_addf(&c, "x");
    assert_null(c.s);
    assert_null(osc_sb_take(&c));
}

/* osc_map_free is safe on a zeroed map and twice in a row (it re-zeroes). */
static void test_map_free_zeroed(void **state)
{
    (void)state;
    osc_map m;
    memset(&m, 0, sizeof m);
    osc_map_free(&m);
    map_composite(&m);
    osc_map_free(&m);
    assert_null(m.cols);
    assert_int_equal(m.ncols, 0);
    assert_int_equal(m.nkeys, 0);
    osc_map_free(&m);
}

/* ---- keys_plain and names ---------------------------------------------------------- */

/* osc_map_keys_plain: true for quoted plain copies (renamed too), false for USING/other. */
static void test_keys_plain(void **state)
{
    (void)state;
    osc_map m;
    map_single(&m);
    assert_true(osc_map_keys_plain(&m));
    osc_map_free(&m);

    map_composite(&m); /* b -> "bee": the value is still plain "b" */
    assert_true(osc_map_keys_plain(&m));
    free(m.cols[1].expr);
    m.cols[1].expr = strdup("b"); /* unquoted: not recognised as plain */
    assert_non_null(m.cols[1].expr);
    assert_false(osc_map_keys_plain(&m));
    free(m.cols[1].expr);
    m.cols[1].expr = NULL;
    assert_false(osc_map_keys_plain(&m));
    osc_map_free(&m);

    map_key_only(&m);
    assert_true(osc_map_keys_plain(&m));
    osc_map_free(&m);

    map_using_key(&m);
    assert_false(osc_map_keys_plain(&m));
    osc_map_free(&m);
}

/* Ordered keys: plain keys whose type stays or widens within the integers; a key that
 * becomes text (different order) or is computed with USING is compared as one range. */
static void test_keys_ordered(void **state)
{
    (void)state;
    osc_map m;
    map_single(&m);
    assert_true(osc_map_keys_ordered(&m));
    free(m.cols[m.key_col[0]].type);
    m.cols[m.key_col[0]].type = strdup("bigint");
    assert_true(osc_map_keys_ordered(&m)); /* integer -> bigint */
    free(m.cols[m.key_col[0]].type);
    m.cols[m.key_col[0]].type = strdup("text");
    assert_false(osc_map_keys_ordered(&m));
    osc_map_free(&m);
    map_using_key(&m);
    assert_false(osc_map_keys_ordered(&m));
    osc_map_free(&m);
}

/* Function and trigger names carry the migration id, including a 64-bit one. */
static void test_names(void **state)
{
    (void)state;
    char buf[80];
    osc_sql_function_name(42, buf, sizeof buf);
    assert_string_equal(buf, "m42_dw");
    osc_sql_trigger_name(42, false, buf, sizeof buf);
    assert_string_equal(buf, "pgcutover_m42_dw");
    osc_sql_trigger_name(42, true, buf, sizeof buf);
    assert_string_equal(buf, "pgcutover_m42_truncate");
    osc_sql_function_name(INT64_C(9000000000), buf, sizeof buf);
    assert_string_equal(buf, "m9000000000_dw");
    osc_sql_trigger_name(INT64_C(9000000000), true, buf, sizeof buf);
    assert_string_equal(buf, "pgcutover_m9000000000_truncate");
}

/* Row + TRUNCATE triggers on the original, ENABLE ALWAYS, and DROP IF EXISTS of both. */
static void test_create_and_drop_triggers(void **state)
{
    (void)state;
    osc_map m;
    map_single(&m);
    char *q = osc_sql_create_triggers(&m);
    assert_non_null(q);
    assert_string_equal(
        q,
        "CREATE TRIGGER \"pgcutover_m7_dw\" AFTER INSERT OR UPDATE OR DELETE ON "
        "\"public\".\"accounts\" FOR EACH ROW EXECUTE FUNCTION pgcutover.\"m7_dw\"();\n"
        "ALTER TABLE \"public\".\"accounts\" ENABLE ALWAYS TRIGGER \"pgcutover_m7_dw\";\n"
        "CREATE TRIGGER \"pgcutover_m7_truncate\" AFTER TRUNCATE ON \"public\".\"accounts\" "
        "FOR EACH STATEMENT EXECUTE FUNCTION pgcutover.\"m7_dw\"();\n"
        "ALTER TABLE \"public\".\"accounts\" ENABLE ALWAYS TRIGGER \"pgcutover_m7_truncate\";\n");
    free(q);
    q = osc_sql_drop_triggers(&m);
    assert_non_null(q);
    assert_string_equal(q,
                        "DROP TRIGGER IF EXISTS \"pgcutover_m7_dw\" ON \"public\".\"accounts\";\n"
                        "DROP TRIGGER IF EXISTS \"pgcutover_m7_truncate\" ON "
                        "\"public\".\"accounts\";\n");
    free(q);
    osc_map_free(&m);

    map_key_only(&m); /* the table name's quote is doubled */
    q = osc_sql_create_triggers(&m);
    has(q, " ON \"public\".\"my\"\"tab\" FOR EACH ROW EXECUTE FUNCTION pgcutover.\"m5_dw\"();");
    free(q);
    q = osc_sql_drop_triggers(&m);
    has(q, "DROP TRIGGER IF EXISTS \"pgcutover_m5_truncate\" ON \"public\".\"my\"\"tab\";");
    free(q);
    osc_map_free(&m);
}

/* ---- the dual-write trigger function ----------------------------------------------- */

/* Composite key: key-change test, old-key delete, upsert columns/SET, error handler. */
static void test_trigger_function_composite(void **state)
{
    (void)state;
    osc_map m;
    map_composite(&m);
    char *q = osc_sql_trigger_function(&m, false);
    assert_non_null(q);
    assert_true(strncmp(q,
                        "CREATE OR REPLACE FUNCTION pgcutover.\"m42_dw\"() RETURNS trigger "
                        "LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS "
                        "$pgc$\n",
                        strlen("CREATE OR REPLACE FUNCTION pgcutover.\"m42_dw\"() RETURNS trigger "
                               "LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT "
                               "AS $pgc$\n")) == 0);
    has(q, "IF TG_OP = 'TRUNCATE' THEN\n      TRUNCATE \"pgcutover\".\"t_42_new\";\n      RETURN "
           "NULL;");
    has(q, "IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND (OLD.\"a\", OLD.\"b\") IS DISTINCT FROM "
           "(NEW.\"a\", NEW.\"b\")) THEN");
    has(q, "DELETE FROM \"pgcutover\".\"t_42_new\" AS pgc_s USING (SELECT (\"a\") AS pgc_k0, "
           "(\"b\") AS pgc_k1 FROM (SELECT OLD.*) AS \"t\") AS pgc_o WHERE pgc_s.\"a\" = "
           "pgc_o.pgc_k0 AND pgc_s.\"bee\" = pgc_o.pgc_k1;");
    has(q, "IF TG_OP = 'DELETE' THEN\n      RETURN NULL;\n    END IF;");
    has(q, "INSERT INTO \"pgcutover\".\"t_42_new\" (\"a\", \"bee\", \"we\"\"ird\", \"amount\", "
           "\"seq\") OVERRIDING SYSTEM VALUE SELECT (\"a\"), (\"b\"), (\"we\"\"ird\"), "
           "(\"amount\" / 100.0), (\"seq\") FROM (SELECT NEW.*) AS \"t\" ON CONFLICT (\"a\", "
           "\"bee\") DO UPDATE SET \"we\"\"ird\" = EXCLUDED.\"we\"\"ird\", \"amount\" = "
           "EXCLUDED.\"amount\";");
    lacks(q, "\"note\"");           /* added column: takes its default */
    lacks(q, "\"seq\" = EXCLUDED"); /* identity always: never updated */
    lacks(q, "\"a\" = EXCLUDED");   /* key columns: never updated */
    lacks(q, "\"bee\" = EXCLUDED");
    lacks(q, "DO NOTHING");
    has(q, "\n  EXCEPTION WHEN transaction_rollback OR lock_not_available THEN\n    RAISE;");
    has(q, "\n  WHEN OTHERS THEN\n");
    has(q, "INSERT INTO pgcutover.trigger_errors (migration_id, sqlstate, message) VALUES (42, "
           "SQLSTATE, SQLERRM);");
    lacks(q, "QUERY_CANCELED");
    assert_int_equal(count_of(q, "$pgc$"), 2);
    ends(q, "  END;\n  RETURN NULL;\nEND\n$pgc$");
    free(q);
    osc_map_free(&m);
}

/* Single key: the key comparison and the delete use the one column, parenthesized. */
static void test_trigger_function_single(void **state)
{
    (void)state;
    osc_map m;
    map_single(&m);
    char *q = osc_sql_trigger_function(&m, false);
    has(q, "CREATE OR REPLACE FUNCTION pgcutover.\"m7_dw\"()");
    has(q, "(TG_OP = 'UPDATE' AND (OLD.\"aid\") IS DISTINCT FROM (NEW.\"aid\"))");
    has(q, "USING (SELECT (\"aid\") AS pgc_k0 FROM (SELECT OLD.*) AS \"accounts\") AS pgc_o "
           "WHERE pgc_s.\"aid\" = pgc_o.pgc_k0;");
    has(q, "INSERT INTO \"pgcutover\".\"accounts_7_new\" (\"aid\", \"abalance\") OVERRIDING "
           "SYSTEM VALUE SELECT (\"aid\"), (\"abalance\") FROM (SELECT NEW.*) AS \"accounts\" ON "
           "CONFLICT (\"aid\") DO UPDATE SET \"abalance\" = EXCLUDED.\"abalance\";");
    has(q, "VALUES (7, SQLSTATE, SQLERRM)");
    has(q, "SECURITY DEFINER");
    free(q);
    osc_map_free(&m);
}

/* No non-key column to update: DO NOTHING; embedded quotes stay doubled throughout. */
static void test_trigger_function_do_nothing(void **state)
{
    (void)state;
    osc_map m;
    map_key_only(&m);
    char *q = osc_sql_trigger_function(&m, false);
    has(q, "TRUNCATE \"pgcutover\".\"my\"\"tab_5_new\";");
    has(q, "(OLD.\"k\"\"q\") IS DISTINCT FROM (NEW.\"k\"\"q\")");
    has(q, "FROM (SELECT OLD.*) AS \"my\"\"tab\") AS pgc_o WHERE pgc_s.\"k\"\"q\" = pgc_o.pgc_k0;");
    has(q, "INSERT INTO \"pgcutover\".\"my\"\"tab_5_new\" (\"k\"\"q\", \"seq\") OVERRIDING "
           "SYSTEM VALUE SELECT (\"k\"\"q\"), (\"seq\") FROM (SELECT NEW.*) AS \"my\"\"tab\" ON "
           "CONFLICT (\"k\"\"q\") DO NOTHING;");
    lacks(q, "DO UPDATE");
    lacks(q, "\"note\"");
    has(q, "WHEN OTHERS THEN");
    has(q, "VALUES (5, SQLSTATE, SQLERRM)");
    free(q);
    osc_map_free(&m);
}

/* A USING key: the old shadow key is the expression over OLD, matched on the shadow key. */
static void test_trigger_function_using_key(void **state)
{
    (void)state;
    osc_map m;
    map_using_key(&m);
    char *q = osc_sql_trigger_function(&m, false);
    /* A USING key may read any column, so every UPDATE deletes the old shadow row. */
    has(q, "IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND TRUE) THEN");
    has(q, "USING (SELECT (\"id\" * 10) AS pgc_k0 FROM (SELECT OLD.*) AS \"c\") AS pgc_o WHERE "
           "pgc_s.\"id\" = pgc_o.pgc_k0;");
    has(q, "SELECT (\"id\" * 10), (\"v\") FROM (SELECT NEW.*) AS \"c\" ON CONFLICT (\"id\") DO "
           "UPDATE SET \"v\" = EXCLUDED.\"v\";");
    free(q);
    osc_map_free(&m);
}

/* noop: the same function header (SECURITY DEFINER) with a body that only returns. */
static void test_trigger_function_noop(void **state)
{
    (void)state;
    osc_map m;
    map_composite(&m);
    char *q = osc_sql_trigger_function(&m, true);
    assert_non_null(q);
    assert_string_equal(q,
                        "CREATE OR REPLACE FUNCTION pgcutover.\"m42_dw\"() RETURNS trigger "
                        "LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS "
                        "$pgc$\nBEGIN\n  RETURN NULL; -- migration 42 stopped writing\nEND\n$pgc$");
    lacks(q, "INSERT");
    lacks(q, "DELETE");
    lacks(q, "TRUNCATE");
    free(q);
    osc_map_free(&m);
}

/* ---- backfill ---------------------------------------------------------------------- */

/* Composite, has_last: $1..$2 last, $3..$4 end (and checkpoint), $5 id; FROM ONLY etc. */
static void test_backfill_composite_has_last(void **state)
{
    (void)state;
    osc_map m;
    map_composite(&m);
    char *q = osc_sql_backfill(&m, true, true);
    assert_non_null(q);
    has(q, "WITH pgc_ins AS (INSERT INTO \"pgcutover\".\"t_42_new\" (\"a\", \"bee\", "
           "\"we\"\"ird\", \"amount\", \"seq\") OVERRIDING SYSTEM VALUE SELECT (\"a\"), (\"b\"), "
           "(\"we\"\"ird\"), (\"amount\" / 100.0), (\"seq\") FROM ONLY \"s\".\"t\" WHERE ");
    has(q, "(\"a\", \"b\") > ($1::integer, $2::text) AND (\"a\", \"b\") <= ($3::integer, "
           "$4::text)");
    has(q, " FOR KEY SHARE ON CONFLICT (\"a\", \"bee\") DO NOTHING RETURNING 1)");
    has(q, "pgc_n AS (SELECT count(*) AS n FROM pgc_ins)");
    /* the checkpoint moves only when it stands at this batch's start (parallel batches) */
    has(q, "UPDATE pgcutover.migrations SET checkpoint = CASE WHEN checkpoint IS NOT DISTINCT "
           "FROM ARRAY[$1::text, $2::text] THEN ARRAY[$3::text, $4::text] ELSE checkpoint END, "
           "rows_copied = rows_copied + pgc_n.n, updated_at = now() FROM pgc_n WHERE id = $5 "
           "RETURNING checkpoint = ARRAY[$3::text, $4::text] AS moved)");
    ends(q, "SELECT pgc_n.n, (SELECT count(*) FROM pgc_ck WHERE moved) FROM pgc_n");
    lacks(q, "\"note\"");
    lacks(q, "$6");
    lacks(q, "LIMIT"); /* the batch's end bounds it (osc_sql_chunk_end) */
    free(q);
    osc_map_free(&m);
}

/* Composite key without has_last: only the end bound ($1..$2), checkpoint $1..$2, id $3. */
static void test_backfill_composite_first_batch(void **state)
{
    (void)state;
    osc_map m;
    map_composite(&m);
    char *q = osc_sql_backfill(&m, false, true);
    has(q, " FROM ONLY \"s\".\"t\" WHERE (\"a\", \"b\") <= ($1::integer, $2::text) FOR KEY "
           "SHARE ON CONFLICT (\"a\", \"bee\") DO NOTHING RETURNING 1)");
    has(q, "CASE WHEN checkpoint IS NOT DISTINCT FROM NULL::text[] THEN ARRAY[$1::text, "
           "$2::text] ELSE checkpoint END");
    has(q, "WHERE id = $3 RETURNING");
    lacks(q, ") > (");
    lacks(q, "$4");
    free(q);
    osc_map_free(&m);
}

/* Single key: $1 last, $2 end, $3 id (and $1 end, $2 id without last). */
static void test_backfill_single(void **state)
{
    (void)state;
    osc_map m;
    map_single(&m);
    char *q = osc_sql_backfill(&m, true, true);
    assert_non_null(q);
    assert_string_equal(
        q, "WITH pgc_ins AS (INSERT INTO \"pgcutover\".\"accounts_7_new\" (\"aid\", "
           "\"abalance\") OVERRIDING SYSTEM VALUE SELECT (\"aid\"), (\"abalance\") FROM ONLY "
           "\"public\".\"accounts\" WHERE (\"aid\") > ($1::integer) AND (\"aid\") <= "
           "($2::integer) FOR KEY SHARE ON CONFLICT (\"aid\") DO NOTHING RETURNING 1), pgc_n AS "
           "(SELECT count(*) AS n FROM pgc_ins), pgc_ck AS (UPDATE pgcutover.migrations SET "
           "checkpoint = CASE WHEN checkpoint IS NOT DISTINCT FROM ARRAY[$1::text] THEN "
           "ARRAY[$2::text] ELSE checkpoint END, rows_copied = rows_copied + pgc_n.n, updated_at = "
           "now() FROM pgc_n WHERE id = $3 RETURNING checkpoint = ARRAY[$2::text] AS moved) "
           "SELECT pgc_n.n, (SELECT count(*) FROM pgc_ck WHERE moved) FROM pgc_n");
    free(q);
    q = osc_sql_backfill(&m, false, true);
    has(q, "WHERE (\"aid\") <= ($1::integer) FOR KEY SHARE ON CONFLICT (\"aid\") DO NOTHING");
    has(q, "THEN ARRAY[$1::text] ELSE checkpoint END");
    has(q, "WHERE id = $2 RETURNING");
    lacks(q, "$3");
    free(q);
    /* without on_conflict: a plain INSERT for a range the triggers have not written into */
    q = osc_sql_backfill(&m, true, false);
    has(q, "($2::integer) FOR KEY SHARE RETURNING 1)");
    lacks(q, "ON CONFLICT");
    free(q);
    q = osc_sql_shadow_has(&m, true);
    assert_string_equal(q, "SELECT 1 FROM \"pgcutover\".\"accounts_7_new\" WHERE (\"aid\") > "
                           "($1::integer) AND (\"aid\") <= ($2::integer) LIMIT 1");
    free(q);
    osc_map_free(&m);
}

/* A USING key: ranges over the original's key, copies the expression, conflicts on shadow. */
static void test_backfill_using_key(void **state)
{
    (void)state;
    osc_map m;
    map_using_key(&m);
    char *q = osc_sql_backfill(&m, true, true);
    has(q, "SELECT (\"id\" * 10), (\"v\") FROM ONLY \"public\".\"c\" WHERE (\"id\") > "
           "($1::integer) AND (\"id\") <= ($2::integer) FOR KEY SHARE ON CONFLICT (\"id\") DO "
           "NOTHING");
    free(q);
    osc_map_free(&m);
}

/* ---- max key, chunk end ------------------------------------------------------------- */

/* max_key: text outputs aliased pgc_tN, so ORDER BY ... DESC sorts by the key columns. */
static void test_max_key(void **state)
{
    (void)state;
    osc_map m;
    map_composite(&m);
    char *q = osc_sql_max_key(&m);
    assert_non_null(q);
    assert_string_equal(q, "SELECT \"a\"::text AS pgc_t0, \"b\"::text AS pgc_t1 FROM ONLY "
                           "\"s\".\"t\" WHERE TRUE ORDER BY \"a\" DESC, \"b\" DESC LIMIT 1");
    free(q);
    osc_map_free(&m);
    map_key_only(&m);
    q = osc_sql_max_key(&m);
    assert_non_null(q);
    assert_string_equal(q, "SELECT \"k\"\"q\"::text AS pgc_t0 FROM ONLY \"public\".\"my\"\"tab\" "
                           "WHERE TRUE ORDER BY \"k\"\"q\" DESC LIMIT 1");
    free(q);
    osc_map_free(&m);
}

/* chunk_end: aliased text outputs, ascending order; lo, then hi, then n for all bounds. */
static void test_chunk_end(void **state)
{
    (void)state;
    osc_map m;
    map_composite(&m);
    static const char head[] = "SELECT \"a\"::text AS pgc_t0, \"b\"::text AS pgc_t1 FROM ONLY "
                               "\"s\".\"t\" WHERE ";
    static const char *const want[2][2] = {
        {"TRUE ORDER BY \"a\", \"b\" OFFSET $1 - 1 LIMIT 1",
         "(\"a\", \"b\") <= ($1::integer, $2::text) ORDER BY \"a\", \"b\" OFFSET $3 - 1 LIMIT 1"},
        {"(\"a\", \"b\") > ($1::integer, $2::text) ORDER BY \"a\", \"b\" OFFSET $3 - 1 LIMIT 1",
         "(\"a\", \"b\") > ($1::integer, $2::text) AND (\"a\", \"b\") <= ($3::integer, $4::text) "
         "ORDER BY \"a\", \"b\" OFFSET $5 - 1 LIMIT 1"},
    };
    for (int lo = 0; lo < 2; lo++)
        for (int hi = 0; hi < 2; hi++) {
            char *q = osc_sql_chunk_end(&m, lo, hi);
            assert_non_null(q);
            assert_true(strncmp(q, head, strlen(head)) == 0);
            assert_string_equal(q + strlen(head), want[lo][hi]);
            free(q);
        }
    osc_map_free(&m);

    map_single(&m);
    char *q = osc_sql_chunk_end(&m, true, true);
    assert_non_null(q);
    assert_string_equal(q, "SELECT \"aid\"::text AS pgc_t0 FROM ONLY \"public\".\"accounts\" WHERE "
                           "(\"aid\") > ($1::integer) AND (\"aid\") <= ($2::integer) ORDER BY "
                           "\"aid\" OFFSET $3 - 1 LIMIT 1");
    free(q);
    osc_map_free(&m);
}

/* ---- verify ------------------------------------------------------------------------ */

/* Original side: expressions CAST to shadow types, original key ranges, lo/hi numbering. */
static void test_verify_original(void **state)
{
    (void)state;
    osc_map m;
    map_composite(&m);
    char *q = osc_sql_verify(&m, false, true, true);
    assert_non_null(q);
    assert_string_equal(
        q, "SELECT count(*)::text, coalesce(sum(hashtextextended(ROW(CAST((\"a\") AS bigint), "
           "CAST((\"b\") AS text), CAST((\"we\"\"ird\") AS text), CAST((\"amount\" / 100.0) AS "
           "numeric(12,2)), CAST((\"seq\") AS bigint))::text, 0)::numeric), 0)::text FROM ONLY "
           "\"s\".\"t\" WHERE (\"a\", \"b\") > ($1::integer, $2::text) AND (\"a\", \"b\") <= "
           "($3::integer, $4::text)");
    lacks(q, "\"note\"");
    free(q);

    q = osc_sql_verify(&m, false, false, true);
    has(q, " FROM ONLY \"s\".\"t\" WHERE (\"a\", \"b\") <= ($1::integer, $2::text)");
    lacks(q, "$3");
    lacks(q, ") > (");
    free(q);

    q = osc_sql_verify(&m, false, true, false);
    has(q, " FROM ONLY \"s\".\"t\" WHERE (\"a\", \"b\") > ($1::integer, $2::text)");
    lacks(q, "<=");
    lacks(q, "$3");
    free(q);

    q = osc_sql_verify(&m, false, false, false);
    ends(q, " FROM ONLY \"s\".\"t\" WHERE TRUE");
    lacks(q, "$1");
    free(q);
    osc_map_free(&m);
}

/* Shadow side: shadow column names, no casts, no ONLY, ranges on the shadow's key names. */
static void test_verify_shadow(void **state)
{
    (void)state;
    osc_map m;
    map_composite(&m);
    char *q = osc_sql_verify(&m, true, true, true);
    assert_non_null(q);
    assert_string_equal(
        q, "SELECT count(*)::text, coalesce(sum(hashtextextended(ROW(\"a\", \"bee\", "
           "\"we\"\"ird\", \"amount\", \"seq\")::text, 0)::numeric), 0)::text FROM "
           "\"pgcutover\".\"t_42_new\" WHERE (\"a\", \"bee\") > ($1::integer, $2::text) AND "
           "(\"a\", \"bee\") <= ($3::integer, $4::text)");
    lacks(q, "CAST(");
    lacks(q, "\"note\"");
    free(q);

    q = osc_sql_verify(&m, true, false, true);
    has(q, " FROM \"pgcutover\".\"t_42_new\" WHERE (\"a\", \"bee\") <= ($1::integer, $2::text)");
    lacks(q, "$3");
    free(q);

    q = osc_sql_verify(&m, true, true, false);
    has(q, " WHERE (\"a\", \"bee\") > ($1::integer, $2::text)");
    lacks(q, "<=");
    free(q);

    q = osc_sql_verify(&m, true, false, false);
    has(q, " FROM \"pgcutover\".\"t_42_new\" WHERE TRUE");
    lacks(q, "ONLY");
    free(q);
    osc_map_free(&m);
}

/* Both sides hash the same number of values, in the same column order. */
static void test_verify_sides_agree_on_columns(void **state)
{
    (void)state;
    osc_map m;
    map_single(&m);
    char *o = osc_sql_verify(&m, false, true, true);
    char *s = osc_sql_verify(&m, true, true, true);
    has(o, "ROW(CAST((\"aid\") AS integer), CAST((\"abalance\") AS bigint))::text");
    has(o, "FROM ONLY \"public\".\"accounts\" WHERE (\"aid\") > ($1::integer) AND (\"aid\") <= "
           "($2::integer)");
    has(s, "ROW(\"aid\", \"abalance\")::text");
    has(s, "FROM \"pgcutover\".\"accounts_7_new\" WHERE (\"aid\") > ($1::integer) AND (\"aid\") "
           "<= ($2::integer)");
    free(o);
    free(s);
    osc_map_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sb_ident_quoting),
        cmocka_unit_test(test_sb_grows),
        cmocka_unit_test(test_sb_take_empty_and_oom),
        cmocka_unit_test(test_map_free_zeroed),
        cmocka_unit_test(test_keys_plain),
        cmocka_unit_test(test_keys_ordered),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_create_and_drop_triggers),
        cmocka_unit_test(test_trigger_function_composite),
        cmocka_unit_test(test_trigger_function_single),
        cmocka_unit_test(test_trigger_function_do_nothing),
        cmocka_unit_test(test_trigger_function_using_key),
        cmocka_unit_test(test_trigger_function_noop),
        cmocka_unit_test(test_backfill_composite_has_last),
        cmocka_unit_test(test_backfill_composite_first_batch),
        cmocka_unit_test(test_backfill_single),
        cmocka_unit_test(test_backfill_using_key),
        cmocka_unit_test(test_max_key),
        cmocka_unit_test(test_chunk_end),
        cmocka_unit_test(test_verify_original),
        cmocka_unit_test(test_verify_shadow),
        cmocka_unit_test(test_verify_sides_agree_on_columns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
