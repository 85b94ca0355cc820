/*
 * test_osc_sql.c — the SQL the online schema change engine generates from hand-built
 * column maps (no server): identifier quoting, the string builder, object names, the
 * dual-write trigger function (which only logs keys) and triggers, the change log and the
 * statements that apply it, the keyset backfill and its parameter numbering, max key /
 * chunk end, and the verify statements of both sides.
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
    m->owner = dup_or_null("app"); /* the dual-write function is always given to an owner */
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
 * an added column: the key is the only column of the apply's DO UPDATE SET. */
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

#define starts(q, prefix) starts_at(q, prefix, __LINE__)

static void starts_at(const char *q, const char *prefix, int line)
{
    assert_non_null(q);
    if (strncmp(q, prefix, strlen(prefix)) != 0)
        fail_msg("line %d: generated SQL\n%s\ndoes not start with\n%s", line, q, prefix);
}

static size_t count_of(const char *q, const char *sub)
{
    size_t n = 0;
    for (const char *p = q; (p = strstr(p, sub)) != NULL; p += strlen(sub))
        n++;
    return n;
}

/* Replace a malloc'ed string field of a map (NULL allowed). */
static void set_str(char **field, const char *value)
{
    free(*field);
    *field = dup_or_null(value);
}

/* The value of the SQL string literal at *pp ('…', or E'…' after optional spaces), read as
 * PostgreSQL reads it whatever standard_conforming_strings is: a plain literal must hold no
 * backslash, an E'' literal only doubled ones; *pp moves past the literal. */
static char *unliteral(const char **pp)
{
    const char *p = *pp;
    while (*p == ' ')
        p++;
    bool e = *p == 'E';
    if (e)
        p++;
    if (*p != '\'')
        fail_msg("no SQL literal at\n%s", *pp);
    p++;
    osc_sb b = {0};
    osc_sb_addf(&b, "%s", "");
    for (;;) {
        if (*p == '\0')
            fail_msg("unterminated SQL literal in\n%s", *pp);
        if (*p == '\'') {
            if (p[1] != '\'')
                break;
            osc_sb_addf(&b, "'");
            p += 2;
        } else if (*p == '\\') {
            if (!e)
                fail_msg("backslash in a plain literal (an escape when "
                         "standard_conforming_strings is off) in\n%s", *pp);
            if (p[1] != '\\')
                fail_msg("backslash not doubled in an E'' literal in\n%s", *pp);
            osc_sb_addf(&b, "\\");
            p += 2;
        } else {
            osc_sb_addf(&b, "%c", *p);
            p++;
        }
    }
    *pp = p + 1;
    char *s = osc_sb_take(&b);
    assert_non_null(s);
    return s;
}

/* The statement q hands the owner's executor, decoded; *rest: the text after the literal
 * (", ARRAY[…]::text[], want_row)…"). Exactly one executor call per statement. */
static char *exec_inner(const char *q, const char **rest)
{
    static const char call[] = "pg_temp." OSC_AS_OWNER "(";
    assert_non_null(q);
    const char *p = strstr(q, call);
    if (p == NULL)
        fail_msg("generated SQL\n%s\ndoes not call the owner's executor", q);
    assert_int_equal(count_of(q, call), 1);
    p += strlen(call);
    char *inner = unliteral(&p);
    if (rest)
        *rest = p;
    return inner;
}

/* The dual-write function's body: the text between its dollar quotes, whose tag is put in
 * tag (e.g. "$pgc$"). */
static char *dw_body(const char *q, char *tag, size_t taglen)
{
    static const char head[] = "() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET "
                               "search_path = pg_catalog, pg_temp AS ";
    assert_non_null(q);
    const char *p = strstr(q, head);
    if (p == NULL)
        fail_msg("generated SQL\n%s\nlacks the dual-write function header", q);
    p += strlen(head);
    assert_true(*p == '$');
    const char *t_end = strchr(p + 1, '$');
    assert_non_null(t_end);
    size_t n = (size_t)(t_end - p) + 1;
    assert_true(n < taglen);
    memcpy(tag, p, n);
    tag[n] = '\0';
    const char *body = p + n, *close = strstr(body, tag);
    assert_non_null(close);
    char *s = strndup(body, (size_t)(close - body));
    assert_non_null(s);
    return s;
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

/* osc_sb_literal: '…' with quotes doubled; with a backslash, " E'…'" with backslashes
 * doubled too (the shape of libpq's PQescapeLiteral, space included), so the value is the
 * same whatever standard_conforming_strings is. */
static void test_sb_literal(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"plain text", "'plain text'"},
        {"", "''"},
        {"it's", "'it''s'"},
        {"''", "''''''"},
        {"a\\b", " E'a\\\\b'"},
        {"\\", " E'\\\\'"},
        {"it's a\\b", " E'it''s a\\\\b'"},
        {"\\'", " E'\\\\'''"},
        {"$pgc$ \"q\" ;--", "'$pgc$ \"q\" ;--'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        osc_sb b = {0};
        osc_sb_addf(&b, "x=");
        osc_sb_literal(&b, cases[i].in);
        char *s = osc_sb_take(&b);
        assert_non_null(s);
        assert_string_equal(s + 2, cases[i].want);
        const char *p = s + 2;
        char *back = unliteral(&p); /* and it reads back as the input */
        assert_string_equal(back, cases[i].in);
        assert_int_equal(*p, '\0');
        free(back);
        free(s);
    }
}

/* osc_map_free is safe on a zeroed map and twice in a row (it re-zeroes). */
static void test_map_free_zeroed(void **state)
{
    (void)state;
    osc_map m;
    memset(&m, 0, sizeof m);
    osc_map_free(&m);
    map_composite(&m);
    set_str(&m.key_ops, "public"); /* the new strings are freed too (ASan: no leak) */
    set_str(&m.shadow_key_ops, "ext");
    set_str(&m.owner, "app");
    osc_map_free(&m);
    assert_null(m.cols);
    assert_null(m.key_ops);
    assert_null(m.shadow_key_ops);
    assert_null(m.owner);
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

/* Ordered keys: plain keys whose type stays or widens within the integers and whose
 * collation stays; a key that becomes text (different order), changes its collation or is
 * computed with USING is compared as one range. */
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

    /* a key column whose collation changes on the shadow: the order is not the shadow's */
    map_single(&m);
    set_str(&m.key_type[0], "text");
    set_str(&m.cols[m.key_col[0]].type, "text");
    assert_true(osc_map_keys_ordered(&m));
    m.key_coll_changed = true;
    assert_false(osc_map_keys_ordered(&m));
    assert_true(osc_map_keys_plain(&m)); /* still a plain copy */
    m.key_coll_changed = false;
    assert_true(osc_map_keys_ordered(&m));
    osc_map_free(&m);
    map_composite(&m); /* integer -> bigint, text -> text (b renamed) */
    assert_true(osc_map_keys_ordered(&m));
    m.key_coll_changed = true;
    assert_false(osc_map_keys_ordered(&m));
    osc_map_free(&m);
}

/* Function, log and trigger names carry the migration id, including a 64-bit one. */
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
    osc_sql_log_name(42, buf, sizeof buf);
    assert_string_equal(buf, "m42_log");
    osc_sql_log_name(INT64_C(9000000000), buf, sizeof buf);
    assert_string_equal(buf, "m9000000000_log");
    char small[8]; /* truncated, still terminated, like snprintf */
    osc_sql_log_name(INT64_C(9000000000), small, sizeof small);
    assert_string_equal(small, "m900000");
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

#define DW_HEAD(id)                                                                          \
    "CREATE OR REPLACE FUNCTION pgcutover.\"m" id "_dw\"() RETURNS trigger LANGUAGE plpgsql " \
    "SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS "
#define DW_TAIL(id, owner)                                                                   \
    "$pgc$;\nREVOKE ALL ON FUNCTION pgcutover.\"m" id "_dw\"() FROM PUBLIC;\nALTER FUNCTION " \
    "pgcutover.\"m" id "_dw\"() OWNER TO " owner

/* Single key, the whole statement: a SECURITY DEFINER function with a pinned search_path
 * whose body only logs keys — a TRUNCATE marker, the OLD key of an UPDATE/DELETE, the NEW
 * key of an INSERT or of an UPDATE that changes the key (compared with the original key's
 * operators) — then REVOKE from PUBLIC and the owner given last. */
static void test_trigger_function_single(void **state)
{
    (void)state;
    osc_map m;
    map_single(&m);
    char *q = osc_sql_trigger_function(&m, false);
    assert_non_null(q);
    assert_string_equal(
        q, DW_HEAD("7") "$pgc$\n"
           "#variable_conflict use_column\n"
           "BEGIN\n"
           "  IF TG_OP = 'TRUNCATE' THEN\n"
           "    INSERT INTO pgcutover.\"m7_log\" (pgc_op) VALUES ('T');\n"
           "    RETURN NULL;\n"
           "  END IF;\n"
           "  IF TG_OP <> 'INSERT' THEN\n"
           "    INSERT INTO pgcutover.\"m7_log\" (pgc_op, k0) SELECT 'R', OLD.\"aid\";\n"
           "  END IF;\n"
           "  IF TG_OP = 'INSERT' OR NOT (OLD.\"aid\" OPERATOR(\"pg_catalog\".=) NEW.\"aid\") THEN\n"
           "    INSERT INTO pgcutover.\"m7_log\" (pgc_op, k0) SELECT 'R', NEW.\"aid\";\n"
           "  END IF;\n"
           "  RETURN NULL;\n"
           "END\n" DW_TAIL("7", "\"app\""));
    /* the trigger never reads or writes the shadow, nor records or swallows errors */
    lacks(q, "accounts_7_new");
    lacks(q, "\"pgcutover\"");
    lacks(q, "TRUNCATE \"");
    lacks(q, "DELETE FROM");
    lacks(q, "EXCEPTION");
    lacks(q, "_err");
    lacks(q, "trigger_errors");
    lacks(q, "GRANT");
    free(q);
    osc_map_free(&m);
}

/* Composite key: the log rows carry every key column (k0, k1) of OLD and of NEW; the
 * key-change test ANDs the parts; renamed, widened, USING, added and identity columns of
 * the shadow play no part (only the original's key is logged for plain keys). */
static void test_trigger_function_composite(void **state)
{
    (void)state;
    osc_map m;
    map_composite(&m);
    char *q = osc_sql_trigger_function(&m, false);
    assert_non_null(q);
    char tag[16];
    char *body = dw_body(q, tag, sizeof tag);
    assert_string_equal(tag, "$pgc$");
    assert_string_equal(
        body, "\n#variable_conflict use_column\nBEGIN\n"
              "  IF TG_OP = 'TRUNCATE' THEN\n"
              "    INSERT INTO pgcutover.\"m42_log\" (pgc_op) VALUES ('T');\n"
              "    RETURN NULL;\n"
              "  END IF;\n"
              "  IF TG_OP <> 'INSERT' THEN\n"
              "    INSERT INTO pgcutover.\"m42_log\" (pgc_op, k0, k1) SELECT 'R', OLD.\"a\", "
              "OLD.\"b\";\n"
              "  END IF;\n"
              "  IF TG_OP = 'INSERT' OR NOT (OLD.\"a\" OPERATOR(\"pg_catalog\".=) NEW.\"a\" AND "
              "OLD.\"b\" OPERATOR(\"pg_catalog\".=) NEW.\"b\") THEN\n"
              "    INSERT INTO pgcutover.\"m42_log\" (pgc_op, k0, k1) SELECT 'R', NEW.\"a\", "
              "NEW.\"b\";\n"
              "  END IF;\n"
              "  RETURN NULL;\n"
              "END\n");
    starts(q, DW_HEAD("42") "$pgc$\n#variable_conflict use_column\nBEGIN\n");
    ends(q, "END\n" DW_TAIL("42", "\"app\""));
    lacks(body, "t_42_new"); /* no reference to the shadow */
    lacks(body, "\"bee\"");
    lacks(body, "\"amount\"");
    lacks(body, "\"seq\"");
    lacks(body, "\"note\"");
    lacks(body, "s0"); /* plain keys: the shadow key is computed when the log is applied */
    lacks(body, "CAST(");
    lacks(body, "SELECT OLD.*");
    lacks(q, "IS DISTINCT FROM");
    lacks(q, "search_path FROM CURRENT");
    lacks(q, " = NEW.");
    lacks(q, " = OLD.");
    assert_int_equal(count_of(q, "$pgc$"), 2);
    assert_int_equal(count_of(body, "INSERT INTO pgcutover.\"m42_log\""), 3);
    free(body);
    free(q);
    osc_map_free(&m);
}

/* A USING key: the OLD row's log entry also carries the shadow key that row maps to (the
 * expression over OLD, cast to the shadow key's type); the NEW key only the original's. */
static void test_trigger_function_using_key(void **state)
{
    (void)state;
    osc_map m;
    map_using_key(&m);
    set_str(&m.shadow_key_ops, "ext"); /* the trigger compares original keys only */
    char *q = osc_sql_trigger_function(&m, false);
    assert_non_null(q);
    char tag[16];
    char *body = dw_body(q, tag, sizeof tag);
    assert_string_equal(tag, "$pgc$");
    assert_string_equal(
        body, "\n#variable_conflict use_column\nBEGIN\n"
              "  IF TG_OP = 'TRUNCATE' THEN\n"
              "    INSERT INTO pgcutover.\"m3_log\" (pgc_op) VALUES ('T');\n"
              "    RETURN NULL;\n"
              "  END IF;\n"
              "  IF TG_OP <> 'INSERT' THEN\n"
              "    BEGIN\n"
              "      INSERT INTO pgcutover.\"m3_log\" (pgc_op, k0, s0) SELECT 'R', OLD.\"id\", "
              "CAST((\"id\" * 10) AS bigint) FROM (SELECT OLD.*) AS \"c\";\n"
              "    EXCEPTION WHEN OTHERS THEN\n"
              "      INSERT INTO pgcutover.\"m3_log\" (pgc_op, k0) SELECT 'R', OLD.\"id\";\n"
              "    END;\n"
              "  END IF;\n"
              "  IF TG_OP = 'INSERT' OR NOT (OLD.\"id\" OPERATOR(\"pg_catalog\".=) NEW.\"id\") THEN\n"
              "    INSERT INTO pgcutover.\"m3_log\" (pgc_op, k0) SELECT 'R', NEW.\"id\";\n"
              "  END IF;\n"
              "  RETURN NULL;\n"
              "END\n");
    lacks(body, "c_3_new");
    lacks(body, "\"ext\"");
    lacks(body, "SELECT NEW.*");
    lacks(body, "\"v\""); /* a non-key column's expression is not the trigger's business */
    ends(q, "END\n" DW_TAIL("3", "\"app\""));
    free(body);
    free(q);

    /* composite with one USING part: every part's shadow key, cast to its own type */
    osc_map_free(&m);
    map_composite(&m);
    set_str(&m.cols[1].expr, "lower(\"b\")");
    assert_false(osc_map_keys_plain(&m));
    q = osc_sql_trigger_function(&m, false);
    has(q, "    INSERT INTO pgcutover.\"m42_log\" (pgc_op, k0, k1, s0, s1) SELECT 'R', OLD.\"a\", "
           "OLD.\"b\", CAST((\"a\") AS bigint), CAST((lower(\"b\")) AS text) FROM (SELECT OLD.*) "
           "AS \"t\";\n");
    has(q, "    INSERT INTO pgcutover.\"m42_log\" (pgc_op, k0, k1) SELECT 'R', NEW.\"a\", NEW.\"b\";\n");
    assert_int_equal(count_of(q, "CAST("), 2);
    free(q);
    osc_map_free(&m);
}

/* Owner: ALTER … OWNER TO with the name quoted, once, after REVOKE; nobody is granted
 * anything; noop keeps the ownership; without an owner there is no (writing) function. */
static void test_trigger_function_owner(void **state)
{
    (void)state;
    osc_map m;
    map_composite(&m);
    set_str(&m.owner, "Tab\"Owner");
    char *q = osc_sql_trigger_function(&m, false);
    ends(q, DW_TAIL("42", "\"Tab\"\"Owner\""));
    assert_int_equal(count_of(q, "OWNER TO"), 1);
    const char *rev = strstr(q, "REVOKE ALL ON FUNCTION pgcutover.\"m42_dw\"() FROM PUBLIC");
    const char *own = strstr(q, "ALTER FUNCTION pgcutover.\"m42_dw\"() OWNER TO");
    assert_non_null(rev);
    assert_non_null(own);
    assert_true(rev < own);
    lacks(q, "GRANT");
    lacks(q, "TO PUBLIC");
    assert_int_equal(count_of(q, "CREATE OR REPLACE FUNCTION"), 1);
    assert_int_equal(count_of(q, "SECURITY DEFINER"), 1);
    free(q);

    q = osc_sql_trigger_function(&m, true);
    lacks(q, "OWNER TO");
    lacks(q, "GRANT");
    free(q);

    /* without an owner there is no dual-write function: it would be the engine's */
    set_str(&m.owner, NULL);
    assert_null(osc_sql_trigger_function(&m, false));
    set_str(&m.owner, "");
    assert_null(osc_sql_trigger_function(&m, false));
    q = osc_sql_trigger_function(&m, true); /* the noop keeps whatever owner it has */
    assert_non_null(q);
    lacks(q, "OWNER TO");
    free(q);
    osc_map_free(&m);
}

/* Operators: the trigger compares OLD and NEW keys of the original, with key_ops (NULL or
 * "" is pg_catalog, a schema name is quoted); shadow_key_ops never appears in it. */
static void test_trigger_function_key_ops(void **state)
{
    (void)state;
    osc_map m;
    map_single(&m);
    set_str(&m.key_ops, "public");
    char *q = osc_sql_trigger_function(&m, false);
    has(q, "NOT (OLD.\"aid\" OPERATOR(\"public\".=) NEW.\"aid\")");
    lacks(q, "pg_catalog\".");
    free(q);
    set_str(&m.key_ops, "ext\"s");
    set_str(&m.shadow_key_ops, "shadowops");
    q = osc_sql_trigger_function(&m, false);
    has(q, "NOT (OLD.\"aid\" OPERATOR(\"ext\"\"s\".=) NEW.\"aid\")");
    lacks(q, "shadowops");
    lacks(q, "pg_catalog\".");
    free(q);
    set_str(&m.key_ops, "");
    set_str(&m.shadow_key_ops, "");
    q = osc_sql_trigger_function(&m, false);
    has(q, "NOT (OLD.\"aid\" OPERATOR(\"pg_catalog\".=) NEW.\"aid\")");
    lacks(q, "OPERATOR(\"\"");
    free(q);
    osc_map_free(&m);

    map_composite(&m);
    set_str(&m.key_ops, "public");
    set_str(&m.shadow_key_ops, "shadowops");
    q = osc_sql_trigger_function(&m, false);
    has(q, "NOT (OLD.\"a\" OPERATOR(\"public\".=) NEW.\"a\" AND OLD.\"b\" OPERATOR(\"public\".=) "
           "NEW.\"b\")");
    assert_int_equal(count_of(q, "OPERATOR("), 2);
    lacks(q, "shadowops");
    free(q);
    osc_map_free(&m);
}

/* Embedded quotes stay doubled in the key and table names throughout the body. */
static void test_trigger_function_quoting(void **state)
{
    (void)state;
    osc_map m;
    map_key_only(&m);
    char *q = osc_sql_trigger_function(&m, false);
    has(q, "INSERT INTO pgcutover.\"m5_log\" (pgc_op) VALUES ('T');");
    has(q, "INSERT INTO pgcutover.\"m5_log\" (pgc_op, k0) SELECT 'R', OLD.\"k\"\"q\";");
    has(q, "NOT (OLD.\"k\"\"q\" OPERATOR(\"pg_catalog\".=) NEW.\"k\"\"q\")");
    has(q, "INSERT INTO pgcutover.\"m5_log\" (pgc_op, k0) SELECT 'R', NEW.\"k\"\"q\";");
    lacks(q, "my\"\"tab"); /* plain key: the table's name is not needed */
    lacks(q, "\"seq\"");
    lacks(q, "\"note\"");
    free(q);

    /* a USING key names the table, as quoted */
    set_str(&m.cols[0].expr, "lower(\"k\"\"q\")");
    q = osc_sql_trigger_function(&m, false);
    has(q, "INSERT INTO pgcutover.\"m5_log\" (pgc_op, k0, s0) SELECT 'R', OLD.\"k\"\"q\", "
           "CAST((lower(\"k\"\"q\")) AS text) FROM (SELECT OLD.*) AS \"my\"\"tab\";");
    lacks(q, "my\"\"tab_5_new");
    free(q);
    osc_map_free(&m);
}

/* Text that the body holds — a USING key expression's string literal, an operator schema's
 * name — cannot end the body's quote: the tag is one the body does not contain, and the
 * body is intact between the tags. What the body does not hold (the shadow's name, a
 * non-key column's expression) leaves the tag alone. */
static void test_trigger_function_dollar_tag(void **state)
{
    (void)state;
    osc_map m;
    map_using_key(&m);
    set_str(&m.cols[0].expr, "\"id\" * 10 + length('$pgc$')");
    char *q = osc_sql_trigger_function(&m, false);
    char tag[16];
    char *body = dw_body(q, tag, sizeof tag);
    assert_string_equal(tag, "$pgc1$");
    assert_int_equal(count_of(q, "$pgc1$"), 2);
    has(body, "CAST((\"id\" * 10 + length('$pgc$')) AS bigint) FROM (SELECT OLD.*) AS \"c\";");
    starts(body, "\n#variable_conflict use_column\nBEGIN\n  IF TG_OP = 'TRUNCATE' THEN\n");
    ends(body, "  END IF;\n  RETURN NULL;\nEND\n");
    ends(q, "END\n$pgc1$;\nREVOKE ALL ON FUNCTION pgcutover.\"m3_dw\"() FROM PUBLIC;\n"
            "ALTER FUNCTION pgcutover.\"m3_dw\"() OWNER TO \"app\"");
    free(body);
    free(q);

    set_str(&m.cols[0].expr, "\"id\" * 10 + length('$pgc$' || '$pgc1$')");
    q = osc_sql_trigger_function(&m, false);
    body = dw_body(q, tag, sizeof tag);
    assert_string_equal(tag, "$pgc2$");
    assert_int_equal(count_of(q, "$pgc2$"), 2);
    has(body, "CAST((\"id\" * 10 + length('$pgc$' || '$pgc1$')) AS bigint)");
    ends(body, "RETURN NULL;\nEND\n");
    free(body);
    free(q);

    /* a non-key column's expression is not in the body: the tag stays */
    set_str(&m.cols[0].expr, "\"id\" * 10");
    set_str(&m.cols[1].expr, "'$pgc$' || \"v\"");
    q = osc_sql_trigger_function(&m, false);
    body = dw_body(q, tag, sizeof tag);
    assert_string_equal(tag, "$pgc$");
    lacks(q, "'$pgc$'");
    free(body);
    free(q);
    osc_map_free(&m);

    /* a name can hold it too: the operators' schema is in the body */
    map_single(&m);
    set_str(&m.key_ops, "x$pgc$y");
    q = osc_sql_trigger_function(&m, false);
    body = dw_body(q, tag, sizeof tag);
    assert_string_equal(tag, "$pgc1$");
    has(body, "NOT (OLD.\"aid\" OPERATOR(\"x$pgc$y\".=) NEW.\"aid\")");
    ends(body, "RETURN NULL;\nEND\n");
    free(body);
    free(q);

    /* the shadow's name is not in the body */
    set_str(&m.key_ops, NULL);
    set_str(&m.shadow_table, "x$pgc$y");
    q = osc_sql_trigger_function(&m, false);
    body = dw_body(q, tag, sizeof tag);
    assert_string_equal(tag, "$pgc$");
    lacks(q, "x$pgc$y");
    free(body);
    free(q);

    /* and a noop body keeps $pgc$ */
    q = osc_sql_trigger_function(&m, true);
    body = dw_body(q, tag, sizeof tag);
    assert_string_equal(tag, "$pgc$");
    free(body);
    free(q);
    osc_map_free(&m);
}

/* noop: the same function header (SECURITY DEFINER, fixed search_path) with a body that
 * only returns; ownership kept (owner or not). */
static void test_trigger_function_noop(void **state)
{
    (void)state;
    osc_map m;
    map_composite(&m);
    static const char want[] =
        "CREATE OR REPLACE FUNCTION pgcutover.\"m42_dw\"() RETURNS trigger LANGUAGE plpgsql "
        "SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $pgc$\n#variable_conflict use_column\nBEGIN\n  RETURN NULL; "
        "-- migration 42 stopped writing\nEND\n$pgc$;\nREVOKE ALL ON FUNCTION "
        "pgcutover.\"m42_dw\"() FROM PUBLIC";
    char *q = osc_sql_trigger_function(&m, true);
    assert_non_null(q);
    assert_string_equal(q, want);
    lacks(q, "INSERT");
    lacks(q, "DELETE");
    lacks(q, "TRUNCATE");
    lacks(q, "_log");
    free(q);
    set_str(&m.owner, NULL);
    q = osc_sql_trigger_function(&m, true);
    assert_non_null(q);
    assert_string_equal(q, want);
    free(q);
    osc_map_free(&m);
}

/*
 * A revert window's map (osc_window.h): R's original is the live table (abalance bigint,
 * a column "it's" text, n text), its shadow the old table (abalance integer, "it's"
 * char(5) NOT NULL, a dropped column gone NOT NULL without default, n integer, a CHECK the
 * change dropped).
 */
static void map_window(osc_map *m)
{
    map_init(m, 8, "public", "accounts", "accounts_7_old", 6);
    m->window = true;
    map_col(m, 0, "aid", "integer", "\"aid\"", false);
    map_col(m, 1, "abalance", "integer", "\"abalance\"", false);
    m->cols[1].from_type = dup_or_null("bigint");
    map_col(m, 2, "it's", "character(5)", "\"it's\"", false);
    m->cols[2].from_type = dup_or_null("text");
    m->cols[2].not_null = true;
    map_col(m, 3, "gone", "integer", NULL, false);
    m->cols[3].needs_value = true;
    map_col(m, 4, "bid", "integer", "\"bid\"", false);
    m->cols[4].from_type = dup_or_null("smallint"); /* a widening back: fits always */
    map_col(m, 5, "n", "integer", "\"n\"", false);
    m->cols[5].from_type = dup_or_null("text"); /* no number: the block, not a range */
    map_key(m, "aid", "integer", 0);
    m->nchecks = 1;
    m->checks = calloc(2, sizeof *m->checks);
    assert_non_null(m->checks);
    m->checks[0] = dup_or_null("pos'itive");
    m->checks[1] = dup_or_null("(abalance > '-1'::integer)");
}

/* The window's trigger checks each write against the old table and records, never
 * raises; a plain map has none of it. */
static void test_trigger_function_window(void **state)
{
    (void)state;
    osc_map m;
    map_window(&m);
    char *q = osc_sql_trigger_function(&m, false);
    assert_non_null(q);
    /* the narrowed integer by its range, no subtransaction */
    assert_non_null(strstr(q, "IF NEW.\"abalance\" NOT BETWEEN -2147483648 AND 2147483647 THEN"));
    assert_non_null(strstr(q, "'column \"abalance\": ' || pg_catalog.format('%s', NEW.\"abalance\") || "
                              "' is out of range for the old type integer'"));
    assert_null(strstr(q, "::text")); /* no cast a type's owner could define */
    /* char(5): PostgreSQL's assignment cast into a variable, in a block; names as literals */
    assert_non_null(strstr(q, "DECLARE\npgc_v2 character(5);\npgc_v5 integer;\nBEGIN\n"));
    assert_non_null(strstr(q, "pgc_v2 := NEW.\"it's\";\n    EXCEPTION WHEN OTHERS THEN"));
    assert_non_null(strstr(q, "'column \"it''s\": ' || SQLERRM"));
    assert_non_null(strstr(q, "IF NEW.\"it's\" IS NULL THEN"));
    assert_non_null(strstr(q, "IF TG_OP = 'INSERT' THEN"));
    assert_non_null(strstr(q, "no value for column \"gone\""));
    assert_null(strstr(q, "NEW.\"bid\" NOT BETWEEN")); /* smallint into integer fits */
    assert_null(strstr(q, "pgc_v4"));
    assert_non_null(strstr(q, "pgc_v5 := NEW.\"n\";"));
    assert_null(strstr(q, "NEW.\"n\" NOT BETWEEN"));
    /* the CHECK over the mapped row under the old names, the dropped column NULL */
    assert_non_null(strstr(q, "IF EXISTS (SELECT FROM (SELECT NEW.\"aid\" AS \"aid\", CAST(NEW.\"abalance\" "
                              "AS integer) AS \"abalance\", CAST(NEW.\"it's\" AS character(5)) AS \"it's\", "
                              "CAST(NULL AS integer) AS \"gone\", CAST(NEW.\"bid\" AS integer) AS \"bid\", "
                              "CAST(NEW.\"n\" AS integer) AS \"n\") AS "
                              "pgc_r WHERE NOT ((abalance > '-1'::integer))) THEN"));
    assert_non_null(strstr(q, "'violates check constraint \"pos''itive\" of the old table'"));
    /* the key in the reason */
    assert_non_null(strstr(q, "INSERT INTO pgcutover.\"m8_faults\" (key, reason) SELECT '(aid)=(' || "
                              "coalesce(pg_catalog.format('%s', NEW.\"aid\"), 'NULL') || ')', "));
    assert_null(strstr(q, "SELECT FROM pgcutover.\"m8_faults\"")); /* no read: no predicate lock */
    assert_null(strstr(q, "RAISE"));
    free(q);
    q = osc_sql_create_log(&m);
    assert_non_null(strstr(q, "CREATE TABLE IF NOT EXISTS pgcutover.\"m8_faults\" (key text NOT NULL, "
                              "reason text NOT NULL"));
    assert_non_null(strstr(q, "ALTER TABLE pgcutover.\"m8_faults\" OWNER TO \"app\""));
    free(q);
    bool oom = false;
    /* the apply keeps the old table's rows that still exist (their dropped column too) */
    q = osc_sql_apply(&m, 2, &oom);
    assert_non_null(strstr(q, " AND NOT EXISTS (SELECT FROM ONLY \"public\".\"accounts\" AS pgc_o "
                              "WHERE pgc_o.\"aid\" OPERATOR(\"pg_catalog\".=) pgc_s.\"aid\")"));
    free(q);
    m.window = false;
    q = osc_sql_apply(&m, 2, &oom);
    assert_null(strstr(q, "NOT EXISTS"));
    free(q);
    q = osc_sql_trigger_function(&m, false);
    assert_null(strstr(q, "faults"));
    assert_null(strstr(q, "DECLARE"));
    free(q);
    q = osc_sql_create_log(&m);
    assert_null(strstr(q, "faults"));
    free(q);
    osc_map_free(&m);
}

/* osc_sql_drop_functions: the dual-write function (with its signature) and the log. */
static void test_drop_functions(void **state)
{
    (void)state;
    osc_map m;
    map_single(&m);
    char *q = osc_sql_drop_functions(&m);
    assert_non_null(q);
    assert_string_equal(q, "DROP FUNCTION IF EXISTS pgcutover.\"m7_dw\"(); DROP TABLE IF EXISTS "
                           "pgcutover.\"m7_log\"; DROP TABLE IF EXISTS pgcutover.\"m7_faults\"");
    free(q);
    osc_map_free(&m);
    map_composite(&m);
    m.id = INT64_C(9000000000);
    set_str(&m.owner, NULL); /* dropping needs no owner */
    q = osc_sql_drop_functions(&m);
    assert_string_equal(q, "DROP FUNCTION IF EXISTS pgcutover.\"m9000000000_dw\"(); DROP TABLE "
                           "IF EXISTS pgcutover.\"m9000000000_log\"; DROP TABLE IF EXISTS "
                           "pgcutover.\"m9000000000_faults\"");
    lacks(q, "_err");
    free(q);
    osc_map_free(&m);
}

/* ---- the change log ------------------------------------------------------------------ */

/* osc_sql_create_log: typed columns taken from the original's key (k…) and the shadow's
 * (s…) by CREATE TABLE AS … WITH NO DATA, then given to the owner; NULL without one. */
static void test_create_log(void **state)
{
    (void)state;
    osc_map m;
    map_single(&m);
    char *q = osc_sql_create_log(&m);
    assert_non_null(q);
    assert_string_equal(q, "CREATE TABLE IF NOT EXISTS pgcutover.\"m7_log\" AS SELECT "
                           "'R'::\"char\" AS pgc_op, pgc_o.\"aid\" AS k0, pgc_s.\"aid\" AS s0 "
                           "FROM ONLY \"public\".\"accounts\" AS pgc_o, "
                           "\"pgcutover\".\"accounts_7_new\" AS pgc_s WITH NO DATA;\n"
                           "ALTER TABLE pgcutover.\"m7_log\" OWNER TO \"app\"");
    free(q);
    osc_map_free(&m);

    map_composite(&m); /* b is "bee" on the shadow */
    set_str(&m.owner, "Tab\"Owner");
    q = osc_sql_create_log(&m);
    assert_non_null(q);
    assert_string_equal(q, "CREATE TABLE IF NOT EXISTS pgcutover.\"m42_log\" AS SELECT "
                           "'R'::\"char\" AS pgc_op, pgc_o.\"a\" AS k0, pgc_o.\"b\" AS k1, "
                           "pgc_s.\"a\" AS s0, pgc_s.\"bee\" AS s1 FROM ONLY \"s\".\"t\" AS pgc_o, "
                           "\"pgcutover\".\"t_42_new\" AS pgc_s WITH NO DATA;\n"
                           "ALTER TABLE pgcutover.\"m42_log\" OWNER TO \"Tab\"\"Owner\"");
    free(q);

    /* the log is never left the engine's */
    set_str(&m.owner, NULL);
    assert_null(osc_sql_create_log(&m));
    set_str(&m.owner, "");
    assert_null(osc_sql_create_log(&m));
    osc_map_free(&m);

    map_key_only(&m); /* quotes doubled */
    q = osc_sql_create_log(&m);
    assert_string_equal(q, "CREATE TABLE IF NOT EXISTS pgcutover.\"m5_log\" AS SELECT "
                           "'R'::\"char\" AS pgc_op, pgc_o.\"k\"\"q\" AS k0, pgc_s.\"k\"\"q\" AS s0 "
                           "FROM ONLY \"public\".\"my\"\"tab\" AS pgc_o, "
                           "\"pgcutover\".\"my\"\"tab_5_new\" AS pgc_s WITH NO DATA;\n"
                           "ALTER TABLE pgcutover.\"m5_log\" OWNER TO \"app\"");
    free(q);
    osc_map_free(&m);

    map_using_key(&m); /* the shadow key is the shadow's column, whatever computes it */
    q = osc_sql_create_log(&m);
    has(q, "pgc_o.\"id\" AS k0, pgc_s.\"id\" AS s0 FROM ONLY \"public\".\"c\" AS pgc_o, "
           "\"pgcutover\".\"c_3_new\" AS pgc_s WITH NO DATA;");
    lacks(q, "* 10");
    free(q);
    osc_map_free(&m);
}

/* osc_sql_log_count: the number of log rows as a one-element text[]. */
static void test_log_count(void **state)
{
    (void)state;
    osc_map m;
    map_single(&m);
    char *q = osc_sql_log_count(&m);
    assert_non_null(q);
    assert_string_equal(q, "SELECT ARRAY[count(*)::text] FROM pgcutover.\"m7_log\"");
    free(q);
    m.id = INT64_C(9000000000);
    q = osc_sql_log_count(&m);
    assert_string_equal(q, "SELECT ARRAY[count(*)::text] FROM pgcutover.\"m9000000000_log\"");
    free(q);
    osc_map_free(&m);
}

/* ---- applying the log ---------------------------------------------------------------- */

/* The five statements of one application, single key: shadow keys by assignment, the
 * TRUNCATE marker, delete by shadow key (the shadow's operators), copy the current rows of
 * the logged original keys (the original's operators) with every copied column in DO
 * UPDATE SET, the key too, then empty the log.
 *
 * Steps 2 and 3 start their WHERE with the key's first column OPERATOR(schema.=) ANY
 * (ARRAY(SELECT s0/k0 FROM log WHERE pgc_op = 'R')) before the exact EXISTS: the ANY over
 * an ARRAY(subquery) lets PostgreSQL reach the big table through its key index whatever it
 * guesses of the log's size (a ScalarArrayOp index scan); without it, a never-analyzed log
 * made the planner seq-scan a 1M-row table on every application. */
static void test_apply_single(void **state)
{
    (void)state;
    osc_map m;
    map_single(&m);
    /* The key keeps its type and collation: the logged k0 is the shadow key, so step 0 has
     * nothing to do (NULL) and step 2 compares k0. */
    static const char *const want[OSC_APPLY_STEPS] = {
        NULL,
        "DELETE FROM \"pgcutover\".\"accounts_7_new\" WHERE EXISTS (SELECT FROM "
        "pgcutover.\"m7_log\" WHERE pgc_op = 'T')",
        "DELETE FROM \"pgcutover\".\"accounts_7_new\" AS pgc_s WHERE pgc_s.\"aid\" "
        "OPERATOR(\"pg_catalog\".=) ANY (ARRAY(SELECT pgc_a.k0 FROM pgcutover.\"m7_log\" AS "
        "pgc_a WHERE pgc_a.pgc_op = 'R')) AND EXISTS (SELECT FROM pgcutover.\"m7_log\" AS pgc_l "
        "WHERE pgc_l.pgc_op = 'R' AND pgc_s.\"aid\" OPERATOR(\"pg_catalog\".=) pgc_l.k0)",
        "INSERT INTO \"pgcutover\".\"accounts_7_new\" (\"aid\", \"abalance\") OVERRIDING SYSTEM "
        "VALUE SELECT (\"aid\"), (\"abalance\") FROM ONLY \"public\".\"accounts\" WHERE "
        "\"public\".\"accounts\".\"aid\" OPERATOR(\"pg_catalog\".=) ANY (ARRAY(SELECT pgc_a.k0 "
        "FROM pgcutover.\"m7_log\" AS pgc_a WHERE pgc_a.pgc_op = 'R')) AND EXISTS (SELECT FROM "
        "pgcutover.\"m7_log\" AS pgc_l WHERE pgc_l.pgc_op = 'R' AND "
        "\"public\".\"accounts\".\"aid\" OPERATOR(\"pg_catalog\".=) pgc_l.k0) ON CONFLICT "
        "(\"aid\") DO UPDATE SET \"aid\" = EXCLUDED.\"aid\", \"abalance\" = EXCLUDED.\"abalance\"",
        "DELETE FROM pgcutover.\"m7_log\"",
    };
    assert_int_equal(OSC_APPLY_STEPS, 5);
    for (int n = 0; n < OSC_APPLY_STEPS; n++) {
        bool oom = true;
        char *q = osc_sql_apply(&m, n, &oom);
        assert_false(oom);
        if (want[n] == NULL) {
            assert_null(q);
            continue;
        }
        assert_non_null(q);
        assert_string_equal(q, want[n]);
        lacks(q, "\"note\""); /* added column: takes its default */
        lacks(q, "pg_temp."); /* the caller runs it through the executor */
        lacks(q, "$1");       /* no parameters */
        free(q);
    }
    osc_map_free(&m);
}

/* Composite key: every part (k0/k1, s0/s1) ANDed; the shadow's renamed key column "bee"
 * on the shadow side, "b" on the original's; the identity ALWAYS column is copied
 * (OVERRIDING SYSTEM VALUE) but never in DO UPDATE SET; the added column not at all. */
static void test_apply_composite(void **state)
{
    (void)state;
    osc_map m;
    map_composite(&m);
    static const char *const want[OSC_APPLY_STEPS] = {
        "UPDATE pgcutover.\"m42_log\" SET s0 = k0, s1 = k1",
        "DELETE FROM \"pgcutover\".\"t_42_new\" WHERE EXISTS (SELECT FROM pgcutover.\"m42_log\" "
        "WHERE pgc_op = 'T')",
        "DELETE FROM \"pgcutover\".\"t_42_new\" AS pgc_s WHERE pgc_s.\"a\" "
        "OPERATOR(\"pg_catalog\".=) ANY (ARRAY(SELECT pgc_a.s0 FROM pgcutover.\"m42_log\" AS "
        "pgc_a WHERE pgc_a.pgc_op = 'R')) AND EXISTS (SELECT FROM pgcutover.\"m42_log\" AS pgc_l "
        "WHERE pgc_l.pgc_op = 'R' AND pgc_s.\"a\" OPERATOR(\"pg_catalog\".=) pgc_l.s0 AND "
        "pgc_s.\"bee\" OPERATOR(\"pg_catalog\".=) pgc_l.s1)",
        "INSERT INTO \"pgcutover\".\"t_42_new\" (\"a\", \"bee\", \"we\"\"ird\", \"amount\", "
        "\"seq\") OVERRIDING SYSTEM VALUE SELECT (\"a\"), (\"b\"), (\"we\"\"ird\"), (\"amount\" / "
        "100.0), (\"seq\") FROM ONLY \"s\".\"t\" WHERE \"s\".\"t\".\"a\" "
        "OPERATOR(\"pg_catalog\".=) ANY (ARRAY(SELECT pgc_a.k0 FROM pgcutover.\"m42_log\" AS "
        "pgc_a WHERE pgc_a.pgc_op = 'R')) AND EXISTS (SELECT FROM pgcutover.\"m42_log\" "
        "AS pgc_l WHERE pgc_l.pgc_op = 'R' AND \"s\".\"t\".\"a\" OPERATOR(\"pg_catalog\".=) "
        "pgc_l.k0 AND \"s\".\"t\".\"b\" OPERATOR(\"pg_catalog\".=) pgc_l.k1) ON CONFLICT (\"a\", "
        "\"bee\") DO UPDATE SET \"a\" = EXCLUDED.\"a\", \"bee\" = EXCLUDED.\"bee\", "
        "\"we\"\"ird\" = EXCLUDED.\"we\"\"ird\", \"amount\" = EXCLUDED.\"amount\"",
        "DELETE FROM pgcutover.\"m42_log\"",
    };
    for (int n = 0; n < OSC_APPLY_STEPS; n++) {
        bool oom = true;
        char *q = osc_sql_apply(&m, n, &oom);
        assert_non_null(q);
        assert_false(oom);
        assert_string_equal(q, want[n]);
        lacks(q, "\"note\"");
        lacks(q, "\"seq\" = EXCLUDED"); /* identity ALWAYS: can only be updated to DEFAULT */
        lacks(q, "DO NOTHING");
        free(q);
    }
    osc_map_free(&m);

    /* an identity ALWAYS key column is copied but not in DO UPDATE SET either */
    map_single(&m);
    m.cols[0].identity_always = true;
    bool oom = true;
    char *q = osc_sql_apply(&m, 3, &oom);
    assert_false(oom);
    has(q, "INSERT INTO \"pgcutover\".\"accounts_7_new\" (\"aid\", \"abalance\") OVERRIDING "
           "SYSTEM VALUE SELECT (\"aid\"), (\"abalance\") FROM ONLY ");
    ends(q, " ON CONFLICT (\"aid\") DO UPDATE SET \"abalance\" = EXCLUDED.\"abalance\"");
    lacks(q, "\"aid\" = EXCLUDED");
    free(q);
    osc_map_free(&m);

    /* only a key besides identity ALWAYS and added columns: the key alone is SET, quoted */
    map_key_only(&m);
    q = osc_sql_apply(&m, 3, &oom);
    assert_false(oom);
    assert_string_equal(q, "INSERT INTO \"pgcutover\".\"my\"\"tab_5_new\" (\"k\"\"q\", \"seq\") "
                           "OVERRIDING SYSTEM VALUE SELECT (\"k\"\"q\"), (\"seq\") FROM ONLY "
                           "\"public\".\"my\"\"tab\" WHERE \"public\".\"my\"\"tab\".\"k\"\"q\" "
                           "OPERATOR(\"pg_catalog\".=) ANY (ARRAY(SELECT pgc_a.k0 FROM "
                           "pgcutover.\"m5_log\" AS pgc_a WHERE pgc_a.pgc_op = 'R')) AND "
                           "EXISTS (SELECT FROM pgcutover.\"m5_log\" "
                           "AS pgc_l WHERE pgc_l.pgc_op = 'R' AND \"public\".\"my\"\"tab\".\"k\"\"q\" "
                           "OPERATOR(\"pg_catalog\".=) pgc_l.k0) ON CONFLICT (\"k\"\"q\") DO UPDATE "
                           "SET \"k\"\"q\" = EXCLUDED.\"k\"\"q\"");
    free(q);
    osc_map_free(&m);
}

/* A USING key: no step 0 (the trigger logged the old rows' shadow keys; NULL, and not out
 * of memory); the other steps as for a plain key, step 3 copying the key's expression. */
static void test_apply_using_key(void **state)
{
    (void)state;
    osc_map m;
    map_using_key(&m);
    bool oom = true;
    assert_null(osc_sql_apply(&m, 0, &oom));
    assert_false(oom);
    static const char *const want[OSC_APPLY_STEPS] = {
        NULL,
        "DELETE FROM \"pgcutover\".\"c_3_new\" WHERE EXISTS (SELECT FROM pgcutover.\"m3_log\" "
        "WHERE pgc_op = 'T')",
        "DELETE FROM \"pgcutover\".\"c_3_new\" AS pgc_s WHERE pgc_s.\"id\" "
        "OPERATOR(\"pg_catalog\".=) ANY (ARRAY(SELECT pgc_a.s0 FROM pgcutover.\"m3_log\" AS "
        "pgc_a WHERE pgc_a.pgc_op = 'R')) AND EXISTS (SELECT FROM pgcutover.\"m3_log\" AS pgc_l "
        "WHERE pgc_l.pgc_op = 'R' AND pgc_s.\"id\" OPERATOR(\"pg_catalog\".=) pgc_l.s0)",
        "INSERT INTO \"pgcutover\".\"c_3_new\" (\"id\", \"v\") OVERRIDING SYSTEM VALUE SELECT "
        "(\"id\" * 10), (\"v\") FROM ONLY \"public\".\"c\" WHERE \"public\".\"c\".\"id\" "
        "OPERATOR(\"pg_catalog\".=) ANY (ARRAY(SELECT pgc_a.k0 FROM pgcutover.\"m3_log\" AS "
        "pgc_a WHERE pgc_a.pgc_op = 'R')) AND EXISTS (SELECT FROM "
        "pgcutover.\"m3_log\" AS pgc_l WHERE pgc_l.pgc_op = 'R' AND \"public\".\"c\".\"id\" "
        "OPERATOR(\"pg_catalog\".=) pgc_l.k0) ON CONFLICT (\"id\") DO UPDATE SET \"id\" = "
        "EXCLUDED.\"id\", \"v\" = EXCLUDED.\"v\"",
        "DELETE FROM pgcutover.\"m3_log\"",
    };
    for (int n = 1; n < OSC_APPLY_STEPS; n++) {
        oom = true;
        char *q = osc_sql_apply(&m, n, &oom);
        assert_non_null(q);
        assert_false(oom);
        assert_string_equal(q, want[n]);
        lacks(q, "SET s0");
        free(q);
    }
    osc_map_free(&m);
}

/* n outside 0..OSC_APPLY_STEPS-1: NULL, not out of memory. */
static void test_apply_out_of_range(void **state)
{
    (void)state;
    osc_map m;
    map_single(&m);
    static const int bad[] = {-1, OSC_APPLY_STEPS, OSC_APPLY_STEPS + 1, 100, -100};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bool oom = true;
        assert_null(osc_sql_apply(&m, bad[i], &oom));
        assert_false(oom);
    }
    osc_map_free(&m);
}

/* Operators of the apply: shadow_key_ops for the shadow keys (step 2), key_ops for the
 * original's (step 3), in the EXISTS and in the ANY (ARRAY(SELECT …)) on the key's first
 * column that precedes it (so the table is reached through its key index, a ScalarArrayOp
 * index scan, whatever the planner guesses of the log's size; a never-analyzed log once
 * made it seq-scan a 1M-row table on every application); the others compare no keys. */
static void test_apply_key_ops(void **state)
{
    (void)state;
    osc_map m;
    map_composite(&m);
    set_str(&m.key_ops, "public");
    set_str(&m.shadow_key_ops, "ext\"s");
    bool oom;
    char *q = osc_sql_apply(&m, 2, &oom);
    starts(q, "DELETE FROM \"pgcutover\".\"t_42_new\" AS pgc_s WHERE pgc_s.\"a\" "
              "OPERATOR(\"ext\"\"s\".=) ANY (ARRAY(SELECT pgc_a.s0 FROM pgcutover.\"m42_log\" "
              "AS pgc_a WHERE pgc_a.pgc_op = 'R')) AND EXISTS (SELECT FROM ");
    ends(q, "WHERE pgc_l.pgc_op = 'R' AND pgc_s.\"a\" OPERATOR(\"ext\"\"s\".=) pgc_l.s0 AND "
            "pgc_s.\"bee\" OPERATOR(\"ext\"\"s\".=) pgc_l.s1)");
    assert_int_equal(count_of(q, " ANY ("), 1); /* the first key column only */
    assert_int_equal(count_of(q, "OPERATOR(\"ext\"\"s\".=)"), 3);
    lacks(q, "USING");
    lacks(q, "pgc_a.s1");
    lacks(q, "pgc_a.k0");
    lacks(q, "\"public\".");
    lacks(q, "pg_catalog");
    free(q);
    q = osc_sql_apply(&m, 3, &oom);
    has(q, " FROM ONLY \"s\".\"t\" WHERE \"s\".\"t\".\"a\" OPERATOR(\"public\".=) ANY "
           "(ARRAY(SELECT pgc_a.k0 FROM pgcutover.\"m42_log\" AS pgc_a WHERE pgc_a.pgc_op = "
           "'R')) AND EXISTS (SELECT FROM pgcutover.\"m42_log\" AS pgc_l ");
    has(q, "WHERE pgc_l.pgc_op = 'R' AND \"s\".\"t\".\"a\" OPERATOR(\"public\".=) pgc_l.k0 AND "
           "\"s\".\"t\".\"b\" OPERATOR(\"public\".=) pgc_l.k1) ON CONFLICT");
    assert_int_equal(count_of(q, " ANY ("), 1);
    assert_int_equal(count_of(q, "OPERATOR(\"public\".=)"), 3);
    lacks(q, "pgc_a.k1");
    lacks(q, "pgc_a.s0");
    lacks(q, "ext\"\"s");
    lacks(q, "pg_catalog");
    free(q);
    for (int n = 0; n < OSC_APPLY_STEPS; n += n == 1 ? 3 : 1) { /* 0, 1, 4 */
        q = osc_sql_apply(&m, n, &oom);
        assert_non_null(q);
        lacks(q, "OPERATOR(");
        free(q);
    }
    set_str(&m.key_ops, "");
    set_str(&m.shadow_key_ops, NULL);
    q = osc_sql_apply(&m, 2, &oom);
    has(q, "WHERE pgc_s.\"a\" OPERATOR(\"pg_catalog\".=) ANY (ARRAY(SELECT pgc_a.s0 ");
    has(q, "pgc_s.\"a\" OPERATOR(\"pg_catalog\".=) pgc_l.s0");
    lacks(q, "\"public\".");
    free(q);
    q = osc_sql_apply(&m, 3, &oom);
    has(q, "WHERE \"s\".\"t\".\"a\" OPERATOR(\"pg_catalog\".=) ANY (ARRAY(SELECT pgc_a.k0 ");
    has(q, "\"s\".\"t\".\"a\" OPERATOR(\"pg_catalog\".=) pgc_l.k0");
    lacks(q, "OPERATOR(\"\"");
    free(q);
    osc_map_free(&m);
}

/* ---- backfill ---------------------------------------------------------------------- */

/* Composite, has_last: the INSERT runs in the owner's executor with $1[1..4] (last, end);
 * outside, $1..$4 feed the executor and the checkpoint, $5 is the id. */
static void test_backfill_composite_has_last(void **state)
{
    (void)state;
    osc_map m;
    map_composite(&m);
    char *q = osc_sql_backfill(&m, true, true);
    assert_non_null(q);
    const char *rest;
    char *inner = exec_inner(q, &rest);
    assert_string_equal(
        inner, "INSERT INTO \"pgcutover\".\"t_42_new\" (\"a\", \"bee\", \"we\"\"ird\", "
               "\"amount\", \"seq\") OVERRIDING SYSTEM VALUE SELECT (\"a\"), (\"b\"), "
               "(\"we\"\"ird\"), (\"amount\" / 100.0), (\"seq\") FROM ONLY \"s\".\"t\" WHERE "
               "(\"a\", \"b\") OPERATOR(\"pg_catalog\".>) ($1[1]::integer, $1[2]::text) AND "
               "(\"a\", \"b\") OPERATOR(\"pg_catalog\".<=) ($1[3]::integer, $1[4]::text) ON "
               "CONFLICT (\"a\", \"bee\") DO NOTHING");
    starts(rest, ", ARRAY[$1::text, $2::text, $3::text, $4::text]::text[], "
                 "false))[1]::bigint AS n), pgc_ck AS (");
    starts(q, "WITH pgc_n AS (SELECT (pg_temp.pgc_as_owner('INSERT INTO ");
    /* the checkpoint moves only when it stands at this batch's start (parallel batches) */
    has(q, "pgc_ck AS (UPDATE pgcutover.migrations SET checkpoint = CASE WHEN checkpoint IS NOT "
           "DISTINCT FROM ARRAY[$1::text, $2::text] THEN ARRAY[$3::text, $4::text] ELSE checkpoint "
           "END, rows_copied = rows_copied + pgc_n.n, updated_at = now() FROM pgc_n WHERE id = $5 "
           "RETURNING checkpoint = ARRAY[$3::text, $4::text] AS moved)");
    ends(q, "SELECT pgc_n.n, (SELECT count(*) FROM pgc_ck WHERE moved) FROM pgc_n");
    lacks(q, "\"note\"");
    lacks(q, "$6");
    lacks(inner, "$2"); /* inside, every key part is an element of $1 */
    lacks(inner, " FOR "); /* no row lock: later writes are in the change log */
    lacks(q, "LIMIT");  /* the batch's end bounds it (osc_sql_chunk_end) */
    lacks(q, "RETURNING 1");
    free(inner);
    free(q);
    osc_map_free(&m);
}

/* Composite key without has_last: only the end bound ($1[1..2]), checkpoint $1..$2, id $3. */
static void test_backfill_composite_first_batch(void **state)
{
    (void)state;
    osc_map m;
    map_composite(&m);
    char *q = osc_sql_backfill(&m, false, true);
    const char *rest;
    char *inner = exec_inner(q, &rest);
    ends(inner, " FROM ONLY \"s\".\"t\" WHERE (\"a\", \"b\") OPERATOR(\"pg_catalog\".<=) "
                "($1[1]::integer, $1[2]::text) ON CONFLICT (\"a\", \"bee\") DO NOTHING");
    starts(rest, ", ARRAY[$1::text, $2::text]::text[], false))[1]::bigint AS n)");
    has(q, "CASE WHEN checkpoint IS NOT DISTINCT FROM NULL::text[] THEN ARRAY[$1::text, "
           "$2::text] ELSE checkpoint END");
    has(q, "WHERE id = $3 RETURNING");
    lacks(q, ".>)");
    lacks(q, "$4");
    lacks(q, "$1[3]");
    free(inner);
    free(q);
    osc_map_free(&m);
}

#define SINGLE_INNER                                                                          \
    "INSERT INTO \"pgcutover\".\"accounts_7_new\" (\"aid\", \"abalance\") OVERRIDING SYSTEM " \
    "VALUE SELECT (\"aid\"), (\"abalance\") FROM ONLY \"public\".\"accounts\" WHERE (\"aid\") " \
    "OPERATOR(\"pg_catalog\".>) ($1[1]::integer) AND (\"aid\") OPERATOR(\"pg_catalog\".<=) "     \
    "($1[2]::integer) ON CONFLICT (\"aid\") DO NOTHING"

/* Single key: $1 last, $2 end, $3 id (and $1 end, $2 id without last). */
static void test_backfill_single(void **state)
{
    (void)state;
    osc_map m;
    map_single(&m);
    char *q = osc_sql_backfill(&m, true, true);
    assert_non_null(q);
    assert_string_equal(
        q, "WITH pgc_n AS (SELECT (pg_temp.pgc_as_owner('" SINGLE_INNER "', ARRAY[$1::text, "
           "$2::text]::text[], false))[1]::bigint AS n), pgc_ck AS (UPDATE pgcutover.migrations "
           "SET checkpoint = CASE WHEN checkpoint IS NOT DISTINCT FROM ARRAY[$1::text] THEN "
           "ARRAY[$2::text] ELSE checkpoint END, rows_copied = rows_copied + pgc_n.n, updated_at = "
           "now() FROM pgc_n WHERE id = $3 RETURNING checkpoint = ARRAY[$2::text] AS moved) "
           "SELECT pgc_n.n, (SELECT count(*) FROM pgc_ck WHERE moved) FROM pgc_n");
    char *inner = exec_inner(q, NULL);
    assert_string_equal(inner, SINGLE_INNER);
    free(inner);
    free(q);

    q = osc_sql_backfill(&m, false, true);
    inner = exec_inner(q, NULL);
    ends(inner, "WHERE (\"aid\") OPERATOR(\"pg_catalog\".<=) ($1[1]::integer) ON CONFLICT "
                "(\"aid\") DO NOTHING");
    has(q, "', ARRAY[$1::text]::text[], false))[1]::bigint AS n)");
    has(q, "THEN ARRAY[$1::text] ELSE checkpoint END");
    has(q, "WHERE id = $2 RETURNING");
    lacks(q, "$3");
    free(inner);
    free(q);

    /* without on_conflict: a plain INSERT for a range the log's application has not
     * written into */
    q = osc_sql_backfill(&m, true, false);
    inner = exec_inner(q, NULL);
    assert_string_equal(inner, "INSERT INTO \"pgcutover\".\"accounts_7_new\" (\"aid\", "
                               "\"abalance\") OVERRIDING SYSTEM VALUE SELECT (\"aid\"), "
                               "(\"abalance\") FROM ONLY \"public\".\"accounts\" WHERE (\"aid\") "
                               "OPERATOR(\"pg_catalog\".>) ($1[1]::integer) AND (\"aid\") "
                               "OPERATOR(\"pg_catalog\".<=) ($1[2]::integer)");
    lacks(q, "ON CONFLICT");
    free(inner);
    free(q);

    /* shadow_has runs as the engine (plain parameters), on the shadow's key and operators */
    q = osc_sql_shadow_has(&m, true);
    assert_string_equal(q, "SELECT 1 FROM \"pgcutover\".\"accounts_7_new\" WHERE (\"aid\") "
                           "OPERATOR(\"pg_catalog\".>) ($1::integer) AND (\"aid\") "
                           "OPERATOR(\"pg_catalog\".<=) ($2::integer) LIMIT 1");
    free(q);
    q = osc_sql_shadow_has(&m, false);
    assert_string_equal(q, "SELECT 1 FROM \"pgcutover\".\"accounts_7_new\" WHERE (\"aid\") "
                           "OPERATOR(\"pg_catalog\".<=) ($1::integer) LIMIT 1");
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
    char *inner = exec_inner(q, NULL);
    assert_string_equal(inner, "INSERT INTO \"pgcutover\".\"c_3_new\" (\"id\", \"v\") OVERRIDING "
                               "SYSTEM VALUE SELECT (\"id\" * 10), (\"v\") FROM ONLY "
                               "\"public\".\"c\" WHERE (\"id\") OPERATOR(\"pg_catalog\".>) "
                               "($1[1]::integer) AND (\"id\") OPERATOR(\"pg_catalog\".<=) "
                               "($1[2]::integer) ON CONFLICT (\"id\") DO NOTHING");
    free(inner);
    free(q);
    osc_map_free(&m);
}

/* The inner statement is a SQL literal: a quote in a USING expression is doubled, a
 * backslash turns it into E'' with the backslash doubled; either way it reads back as
 * the statement itself, and nothing of it is left outside the literal. */
static void test_backfill_literal_escaping(void **state)
{
    (void)state;
    osc_map m;
    map_using_key(&m);
    set_str(&m.cols[1].expr, "coalesce(\"v\", 'it''s')");
    char *q = osc_sql_backfill(&m, false, false);
    has(q, "pg_temp.pgc_as_owner('INSERT INTO \"pgcutover\".\"c_3_new\" (\"id\", \"v\") "
           "OVERRIDING SYSTEM VALUE SELECT (\"id\" * 10), (coalesce(\"v\", ''it''''s'')) FROM "
           "ONLY \"public\".\"c\" WHERE (\"id\") OPERATOR(\"pg_catalog\".<=) ($1[1]::integer)', "
           "ARRAY[$1::text]::text[], false)");
    const char *rest;
    char *inner = exec_inner(q, &rest);
    assert_string_equal(inner, "INSERT INTO \"pgcutover\".\"c_3_new\" (\"id\", \"v\") OVERRIDING "
                               "SYSTEM VALUE SELECT (\"id\" * 10), (coalesce(\"v\", 'it''s')) "
                               "FROM ONLY \"public\".\"c\" WHERE (\"id\") "
                               "OPERATOR(\"pg_catalog\".<=) ($1[1]::integer)");
    starts(rest, ", ARRAY[$1::text]::text[], false)");
    lacks(q, " E'");
    free(inner);
    free(q);

    set_str(&m.cols[1].expr, "replace(\"v\", '\\', '/')");
    q = osc_sql_backfill(&m, false, false);
    has(q, "pg_temp.pgc_as_owner( E'INSERT INTO ");
    has(q, "(replace(\"v\", ''\\\\'', ''/''))");
    inner = exec_inner(q, &rest);
    has(inner, "SELECT (\"id\" * 10), (replace(\"v\", '\\', '/')) FROM ONLY \"public\".\"c\"");
    starts(rest, ", ARRAY[$1::text]::text[], false)");
    free(inner);
    free(q);

    /* the same in verify (original side) */
    set_str(&m.cols[1].expr, "'a''b' || \"v\"");
    q = osc_sql_verify(&m, false, true, true);
    has(q, "CAST((''a''''b'' || \"v\") AS text)");
    inner = exec_inner(q, NULL);
    has(inner, "CAST(('a''b' || \"v\") AS text)");
    free(inner);
    free(q);
    osc_map_free(&m);
}

/* ---- max key, chunk end ------------------------------------------------------------- */

/* max_key: keys as text by their output function (pg_catalog.format), aliased pgc_tN, so
 * ORDER BY ... DESC sorts by the key columns; runs as the engine, no executor. */
static void test_max_key(void **state)
{
    (void)state;
    osc_map m;
    map_composite(&m);
    char *q = osc_sql_max_key(&m);
    assert_non_null(q);
    assert_string_equal(q, "SELECT pg_catalog.format('%s', \"a\") AS pgc_t0, "
                           "pg_catalog.format('%s', \"b\") AS pgc_t1 FROM ONLY \"s\".\"t\" WHERE "
                           "TRUE ORDER BY \"a\" DESC, \"b\" DESC LIMIT 1");
    lacks(q, "::text");
    free(q);
    osc_map_free(&m);
    map_key_only(&m);
    q = osc_sql_max_key(&m);
    assert_non_null(q);
    assert_string_equal(q, "SELECT pg_catalog.format('%s', \"k\"\"q\") AS pgc_t0 FROM ONLY "
                           "\"public\".\"my\"\"tab\" WHERE TRUE ORDER BY \"k\"\"q\" DESC LIMIT 1");
    free(q);
    osc_map_free(&m);
}

/* chunk_end: format() outputs, ascending order; lo, then hi, then n for all bounds;
 * plain parameters (no executor), the original's operators. */
static void test_chunk_end(void **state)
{
    (void)state;
    osc_map m;
    map_composite(&m);
    static const char head[] = "SELECT pg_catalog.format('%s', \"a\") AS pgc_t0, "
                               "pg_catalog.format('%s', \"b\") AS pgc_t1 FROM ONLY \"s\".\"t\" "
                               "WHERE ";
    static const char *const want[2][2] = {
        {"TRUE ORDER BY \"a\", \"b\" OFFSET $1 - 1 LIMIT 1",
         "(\"a\", \"b\") OPERATOR(\"pg_catalog\".<=) ($1::integer, $2::text) ORDER BY \"a\", "
         "\"b\" OFFSET $3 - 1 LIMIT 1"},
        {"(\"a\", \"b\") OPERATOR(\"pg_catalog\".>) ($1::integer, $2::text) ORDER BY \"a\", \"b\" "
         "OFFSET $3 - 1 LIMIT 1",
         "(\"a\", \"b\") OPERATOR(\"pg_catalog\".>) ($1::integer, $2::text) AND (\"a\", \"b\") "
         "OPERATOR(\"pg_catalog\".<=) ($3::integer, $4::text) ORDER BY \"a\", \"b\" OFFSET $5 - 1 "
         "LIMIT 1"},
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
    assert_string_equal(q, "SELECT pg_catalog.format('%s', \"aid\") AS pgc_t0 FROM ONLY "
                           "\"public\".\"accounts\" WHERE (\"aid\") OPERATOR(\"pg_catalog\".>) "
                           "($1::integer) AND (\"aid\") OPERATOR(\"pg_catalog\".<=) ($2::integer) "
                           "ORDER BY \"aid\" OFFSET $3 - 1 LIMIT 1");
    free(q);
    osc_map_free(&m);
}

/* ---- verify ------------------------------------------------------------------------ */

#define VERIFY_ORIG_INNER                                                                      \
    "SELECT ARRAY[count(*)::text, coalesce(sum(hashtextextended(ROW(CAST((\"a\") AS bigint), " \
    "CAST((\"b\") AS text), CAST((\"we\"\"ird\") AS text), CAST((\"amount\" / 100.0) AS "       \
    "numeric(12,2)), CAST((\"seq\") AS bigint))::text, 0)::numeric), 0)::text] FROM ONLY "     \
    "\"s\".\"t\" WHERE "

/* Original side: expressions CAST to shadow types, original key ranges, lo/hi numbering,
 * all inside the owner's executor; one row of two text values. */
static void test_verify_original(void **state)
{
    (void)state;
    osc_map m;
    map_composite(&m);
    char *q = osc_sql_verify(&m, false, true, true);
    assert_non_null(q);
    assert_string_equal(
        q, "SELECT pgc_r[1], pgc_r[2] FROM pg_temp.pgc_as_owner('" VERIFY_ORIG_INNER
           "(\"a\", \"b\") OPERATOR(\"pg_catalog\".>) ($1[1]::integer, $1[2]::text) AND (\"a\", "
           "\"b\") OPERATOR(\"pg_catalog\".<=) ($1[3]::integer, $1[4]::text)', ARRAY[$1::text, "
           "$2::text, $3::text, $4::text]::text[], true) AS pgc_r");
    char *inner = exec_inner(q, NULL);
    assert_string_equal(inner, VERIFY_ORIG_INNER "(\"a\", \"b\") OPERATOR(\"pg_catalog\".>) "
                               "($1[1]::integer, $1[2]::text) AND (\"a\", \"b\") "
                               "OPERATOR(\"pg_catalog\".<=) ($1[3]::integer, $1[4]::text)");
    lacks(q, "\"note\"");
    free(inner);
    free(q);

    q = osc_sql_verify(&m, false, false, true);
    inner = exec_inner(q, NULL);
    assert_string_equal(inner, VERIFY_ORIG_INNER "(\"a\", \"b\") OPERATOR(\"pg_catalog\".<=) "
                               "($1[1]::integer, $1[2]::text)");
    ends(q, "', ARRAY[$1::text, $2::text]::text[], true) AS pgc_r");
    lacks(q, "$3");
    lacks(q, ".>)");
    free(inner);
    free(q);

    q = osc_sql_verify(&m, false, true, false);
    inner = exec_inner(q, NULL);
    assert_string_equal(inner, VERIFY_ORIG_INNER "(\"a\", \"b\") OPERATOR(\"pg_catalog\".>) "
                               "($1[1]::integer, $1[2]::text)");
    ends(q, "', ARRAY[$1::text, $2::text]::text[], true) AS pgc_r");
    lacks(q, "<=");
    lacks(q, "$3");
    free(inner);
    free(q);

    q = osc_sql_verify(&m, false, false, false);
    inner = exec_inner(q, NULL);
    assert_string_equal(inner, VERIFY_ORIG_INNER "TRUE");
    ends(q, "WHERE TRUE', ARRAY[]::text[], true) AS pgc_r"); /* no parameter at all */
    lacks(q, "$1");
    free(inner);
    free(q);
    osc_map_free(&m);
}

#define VERIFY_SHADOW_INNER                                                                    \
    "SELECT ARRAY[count(*)::text, coalesce(sum(hashtextextended(ROW(\"a\", \"bee\", "          \
    "\"we\"\"ird\", \"amount\", \"seq\")::text, 0)::numeric), 0)::text] FROM "                 \
    "\"pgcutover\".\"t_42_new\" WHERE "

/* Shadow side: shadow column names, no casts, no ONLY, ranges on the shadow's key names
 * with the shadow's operators. */
static void test_verify_shadow(void **state)
{
    (void)state;
    osc_map m;
    map_composite(&m);
    char *q = osc_sql_verify(&m, true, true, true);
    assert_non_null(q);
    assert_string_equal(
        q, "SELECT pgc_r[1], pgc_r[2] FROM pg_temp.pgc_as_owner('" VERIFY_SHADOW_INNER
           "(\"a\", \"bee\") OPERATOR(\"pg_catalog\".>) ($1[1]::integer, $1[2]::text) AND (\"a\", "
           "\"bee\") OPERATOR(\"pg_catalog\".<=) ($1[3]::integer, $1[4]::text)', ARRAY[$1::text, "
           "$2::text, $3::text, $4::text]::text[], true) AS pgc_r");
    lacks(q, "CAST(");
    lacks(q, "\"note\"");
    free(q);

    q = osc_sql_verify(&m, true, false, true);
    char *inner = exec_inner(q, NULL);
    assert_string_equal(inner, VERIFY_SHADOW_INNER "(\"a\", \"bee\") OPERATOR(\"pg_catalog\".<=) "
                               "($1[1]::integer, $1[2]::text)");
    lacks(q, "$3");
    free(inner);
    free(q);

    q = osc_sql_verify(&m, true, true, false);
    inner = exec_inner(q, NULL);
    assert_string_equal(inner, VERIFY_SHADOW_INNER "(\"a\", \"bee\") OPERATOR(\"pg_catalog\".>) "
                               "($1[1]::integer, $1[2]::text)");
    lacks(q, "<=");
    free(inner);
    free(q);

    q = osc_sql_verify(&m, true, false, false);
    inner = exec_inner(q, NULL);
    assert_string_equal(inner, VERIFY_SHADOW_INNER "TRUE");
    lacks(q, "ONLY");
    free(inner);
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
    char *oi = exec_inner(o, NULL), *si = exec_inner(s, NULL);
    assert_string_equal(oi, "SELECT ARRAY[count(*)::text, coalesce(sum(hashtextextended(ROW("
                            "CAST((\"aid\") AS integer), CAST((\"abalance\") AS bigint))::text, "
                            "0)::numeric), 0)::text] FROM ONLY \"public\".\"accounts\" WHERE "
                            "(\"aid\") OPERATOR(\"pg_catalog\".>) ($1[1]::integer) AND (\"aid\") "
                            "OPERATOR(\"pg_catalog\".<=) ($1[2]::integer)");
    assert_string_equal(si, "SELECT ARRAY[count(*)::text, coalesce(sum(hashtextextended(ROW("
                            "\"aid\", \"abalance\")::text, 0)::numeric), 0)::text] FROM "
                            "\"pgcutover\".\"accounts_7_new\" WHERE (\"aid\") "
                            "OPERATOR(\"pg_catalog\".>) ($1[1]::integer) AND (\"aid\") "
                            "OPERATOR(\"pg_catalog\".<=) ($1[2]::integer)");
    free(oi);
    free(si);
    free(o);
    free(s);
    osc_map_free(&m);
}

/* ---- operators and search_path across every statement ------------------------------- */

/* key_ops applies to every comparison on the original (trigger's OLD/NEW, backfill,
 * chunk_end, verify of the original), shadow_key_ops to those on the shadow (trigger's
 * delete, shadow_has, verify of the shadow); NULL is pg_catalog. */
static void test_key_ops_in_ranges(void **state)
{
    (void)state;
    osc_map m;
    map_single(&m);
    set_str(&m.key_ops, "public");
    char *q = osc_sql_backfill(&m, true, true);
    char *inner = exec_inner(q, NULL);
    has(inner, "WHERE (\"aid\") OPERATOR(\"public\".>) ($1[1]::integer) AND (\"aid\") "
               "OPERATOR(\"public\".<=) ($1[2]::integer)");
    lacks(q, "pg_catalog\".");
    free(inner);
    free(q);
    q = osc_sql_chunk_end(&m, true, true);
    has(q, "WHERE (\"aid\") OPERATOR(\"public\".>) ($1::integer) AND (\"aid\") "
           "OPERATOR(\"public\".<=) ($2::integer)");
    lacks(q, "pg_catalog\".");
    free(q);
    q = osc_sql_verify(&m, false, true, true);
    inner = exec_inner(q, NULL);
    has(inner, "(\"aid\") OPERATOR(\"public\".>) ($1[1]::integer) AND (\"aid\") "
               "OPERATOR(\"public\".<=) ($1[2]::integer)");
    free(inner);
    free(q);
    /* the shadow's side keeps pg_catalog (shadow_key_ops NULL) */
    q = osc_sql_shadow_has(&m, true);
    has(q, "(\"aid\") OPERATOR(\"pg_catalog\".>) ($1::integer) AND (\"aid\") "
           "OPERATOR(\"pg_catalog\".<=) ($2::integer)");
    lacks(q, "\"public\".");
    free(q);
    q = osc_sql_verify(&m, true, true, true);
    inner = exec_inner(q, NULL);
    has(inner, "(\"aid\") OPERATOR(\"pg_catalog\".>) ($1[1]::integer) AND (\"aid\") "
               "OPERATOR(\"pg_catalog\".<=) ($1[2]::integer)");
    lacks(q, "\"public\".");
    free(inner);
    free(q);

    set_str(&m.shadow_key_ops, "ext");
    q = osc_sql_shadow_has(&m, false);
    assert_string_equal(q, "SELECT 1 FROM \"pgcutover\".\"accounts_7_new\" WHERE (\"aid\") "
                           "OPERATOR(\"ext\".<=) ($1::integer) LIMIT 1");
    free(q);
    q = osc_sql_verify(&m, true, true, false);
    inner = exec_inner(q, NULL);
    ends(inner, "WHERE (\"aid\") OPERATOR(\"ext\".>) ($1[1]::integer)");
    free(inner);
    free(q);
    osc_map_free(&m);
}

typedef char *(*gen_fn)(const osc_map *m, int variant);

static char *gen_trigger(const osc_map *m, int v)
{
    return osc_sql_trigger_function(m, v & 1);
}
static char *gen_backfill(const osc_map *m, int v)
{
    return osc_sql_backfill(m, v & 1, v & 2);
}
static char *gen_shadow_has(const osc_map *m, int v)
{
    return osc_sql_shadow_has(m, v & 1);
}
static char *gen_max_key(const osc_map *m, int v)
{
    (void)v;
    return osc_sql_max_key(m);
}
static char *gen_verify(const osc_map *m, int v)
{
    return osc_sql_verify(m, v & 1, v & 2, v & 4);
}
static char *gen_chunk_end(const osc_map *m, int v)
{
    return osc_sql_chunk_end(m, v & 1, v & 2);
}
static char *gen_create_triggers(const osc_map *m, int v)
{
    (void)v;
    return osc_sql_create_triggers(m);
}
static char *gen_drop_triggers(const osc_map *m, int v)
{
    (void)v;
    return osc_sql_drop_triggers(m);
}
static char *gen_drop_functions(const osc_map *m, int v)
{
    (void)v;
    return osc_sql_drop_functions(m);
}
static char *gen_create_log(const osc_map *m, int v)
{
    (void)v;
    return osc_sql_create_log(m);
}
static char *gen_log_count(const osc_map *m, int v)
{
    (void)v;
    return osc_sql_log_count(m);
}
static char *gen_apply(const osc_map *m, int v)
{
    bool oom;
    return osc_sql_apply(m, v, &oom);
}

/* No statement, for any map, inherits the caller's search_path or compares keys with IS
 * DISTINCT FROM or a bare operator (resolved by search_path), nor casts a key with ::text
 * (a user's CREATE CAST); every comparison of keys is OPERATOR(schema.op). (The trigger's
 * TG_OP tests and the apply's pgc_op tests compare text and "char" with literals under the
 * pinned search_path pg_catalog, pg_temp, where no operator can be substituted.) */
static void test_no_path_dependent_sql(void **state)
{
    (void)state;
    static const struct {
        gen_fn fn;
        int variants;
    } gens[] = {
        {gen_trigger, 2},         {gen_backfill, 4},      {gen_shadow_has, 2},
        {gen_max_key, 1},         {gen_verify, 8},        {gen_chunk_end, 4},
        {gen_create_triggers, 1}, {gen_drop_triggers, 1}, {gen_drop_functions, 1},
        {gen_create_log, 1},      {gen_log_count, 1},     {gen_apply, OSC_APPLY_STEPS},
    };
    void (*maps[])(osc_map *) = {map_single, map_composite, map_key_only, map_using_key};
    for (size_t mi = 0; mi < sizeof maps / sizeof maps[0]; mi++) {
        osc_map m;
        maps[mi](&m);
        bool plain = osc_map_keys_plain(&m);
        assert_true(plain == (maps[mi] != map_using_key));
        for (int owner = 0; owner < 2; owner++) {
            set_str(&m.owner, owner ? "app" : "Other \"Owner");
            for (size_t g = 0; g < sizeof gens / sizeof gens[0]; g++)
                for (int v = 0; v < gens[g].variants; v++) {
                    char *q = gens[g].fn(&m, v);
                    if (q == NULL && gens[g].fn == gen_apply && v == 0)
                        continue; /* no step 0 for a USING key or an unchanged key */
                    assert_non_null(q);
                    lacks(q, "search_path FROM CURRENT");
                    lacks(q, "IS DISTINCT FROM");
                    lacks(q, "::text AS pgc_t");
                    lacks(q, ") > (");
                    lacks(q, ") <= (");
                    lacks(q, ") = (");
                    lacks(q, " = pgc_o.");
                    lacks(q, " = pgc_l.");
                    lacks(q, " = ANY"); /* only OPERATOR(schema.=) ANY */
                    lacks(q, " = NEW.");
                    lacks(q, " = OLD.");
                    lacks(q, "\" = \""); /* "x" = "y": a bare comparison of columns */
                    lacks(q, "\" > ");
                    lacks(q, "\" < ");
                    if (strstr(q, "search_path") != NULL) /* only ever the fixed one */
                        assert_int_equal(count_of(q, "search_path"),
                                         count_of(q, "SET search_path = pg_catalog, pg_temp AS "));
                    free(q);
                }
        }
        osc_map_free(&m);
    }
}

/* Step 3 when only an identity ALWAYS key is copied: nothing can differ, DO NOTHING (an
 * empty DO UPDATE SET would be a syntax error). */
static void test_apply_identity_key_only(void **state)
{
    (void)state;
    osc_map m;
    map_key_only(&m);
    m.cols[0].identity_always = true;
    bool oom;
    char *q = osc_sql_apply(&m, 3, &oom);
    assert_non_null(q);
    ends(q, "ON CONFLICT (\"k\"\"q\") DO NOTHING");
    lacks(q, "DO UPDATE");
    free(q);
    osc_map_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apply_identity_key_only),
        cmocka_unit_test(test_sb_ident_quoting),
        cmocka_unit_test(test_sb_grows),
        cmocka_unit_test(test_sb_take_empty_and_oom),
        cmocka_unit_test(test_sb_literal),
        cmocka_unit_test(test_map_free_zeroed),
        cmocka_unit_test(test_keys_plain),
        cmocka_unit_test(test_keys_ordered),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_create_and_drop_triggers),
        cmocka_unit_test(test_trigger_function_single),
        cmocka_unit_test(test_trigger_function_composite),
        cmocka_unit_test(test_trigger_function_using_key),
        cmocka_unit_test(test_trigger_function_owner),
        cmocka_unit_test(test_trigger_function_key_ops),
        cmocka_unit_test(test_trigger_function_quoting),
        cmocka_unit_test(test_trigger_function_dollar_tag),
        cmocka_unit_test(test_trigger_function_noop),
        cmocka_unit_test(test_trigger_function_window),
        cmocka_unit_test(test_drop_functions),
        cmocka_unit_test(test_create_log),
        cmocka_unit_test(test_log_count),
        cmocka_unit_test(test_apply_single),
        cmocka_unit_test(test_apply_composite),
        cmocka_unit_test(test_apply_using_key),
        cmocka_unit_test(test_apply_out_of_range),
        cmocka_unit_test(test_apply_key_ops),
        cmocka_unit_test(test_backfill_composite_has_last),
        cmocka_unit_test(test_backfill_composite_first_batch),
        cmocka_unit_test(test_backfill_single),
        cmocka_unit_test(test_backfill_using_key),
        cmocka_unit_test(test_backfill_literal_escaping),
        cmocka_unit_test(test_max_key),
        cmocka_unit_test(test_chunk_end),
        cmocka_unit_test(test_verify_original),
        cmocka_unit_test(test_verify_shadow),
        cmocka_unit_test(test_verify_sides_agree_on_columns),
        cmocka_unit_test(test_key_ops_in_ranges),
        cmocka_unit_test(test_no_path_dependent_sql),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
