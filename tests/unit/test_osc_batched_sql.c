/* test_osc_batched_sql.c — the SQL of a batched data migration: the UPDATE or DELETE read
 * with the real parser (accepted forms, each refusal with its SQLSTATE), restricted to a
 * key range through its parse tree, and the keyset query for each range's upper bound.
 * Every generated statement is re-parsed; where the exact shape matters it is compared,
 * as a parse tree (locations aside), with the tree of the text it must mean. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include "osc_batched_sql.h"

/* pg_query_parse's JSON of sql with every location number removed (the positions of the
 * same tree written two ways differ); fails the test when sql does not parse. */
static char *tree_json(const char *sql)
{
    PgQueryParseResult r = pg_query_parse(sql);
    if (r.error)
        fail_msg("does not parse: %s\n  %s", r.error->message, sql);
    char *out = malloc(strlen(r.parse_tree) + 1), *o = out;
    const char *p = r.parse_tree;
    static const char *const keys[] = {"\"location\":", "\"stmt_location\":", "\"stmt_len\":"};
    while (*p) {
        bool skipped = false;
        for (size_t k = 0; k < 3 && !skipped; k++) {
            size_t n = strlen(keys[k]);
            if (strncmp(p, keys[k], n) == 0) {
                memcpy(o, p, n), o += n, p += n;
                while (*p == '-' || (*p >= '0' && *p <= '9'))
                    p++;
                skipped = true;
            }
        }
        if (!skipped)
            *o++ = *p++;
    }
    *o = '\0';
    pg_query_free_parse_result(r);
    return out;
}

/* got re-parses, to the same tree as want. */
static void assert_same_tree(const char *got, const char *want)
{
    assert_non_null(got);
    char *g = tree_json(got), *w = tree_json(want);
    if (strcmp(g, w) != 0)
        fail_msg("trees differ:\n  got:  %s\n  want: %s\n  %s\n  %s", got, want, g, w);
    free(g);
    free(w);
}

/* The protobuf tree of sql (must parse to one statement); *raw to free with free_tree. */
static PgQuery__ParseResult *tree_of(const char *sql, PgQueryProtobufParseResult *raw)
{
    *raw = pg_query_parse_protobuf(sql);
    if (raw->error)
        fail_msg("does not parse: %s\n  %s", raw->error->message, sql);
    PgQuery__ParseResult *t = pg_query__parse_result__unpack(NULL, raw->parse_tree.len,
                                                             (const uint8_t *)raw->parse_tree.data);
    assert_non_null(t);
    assert_int_equal(t->n_stmts, 1);
    return t;
}

static void free_tree(PgQuery__ParseResult *t, PgQueryProtobufParseResult raw)
{
    pg_query__parse_result__free_unpacked(t, NULL);
    pg_query_free_protobuf_parse_result(raw);
}

/* The WHERE of the one UPDATE, DELETE or SELECT of t. */
static PgQuery__Node *where_of(PgQuery__ParseResult *t)
{
    PgQuery__Node *n = t->stmts[0]->stmt;
    switch (n->node_case) {
    case PG_QUERY__NODE__NODE_UPDATE_STMT:
        return n->update_stmt->where_clause;
    case PG_QUERY__NODE__NODE_DELETE_STMT:
        return n->delete_stmt->where_clause;
    case PG_QUERY__NODE__NODE_SELECT_STMT:
        return n->select_stmt->where_clause;
    default:
        fail_msg("unexpected statement");
    }
    return NULL;
}

static char *range(const char *sql, const char *const *keys, int nkeys, bool first)
{
    char err[256];
    char *q = osc_batched_range_sql(sql, keys, nkeys, first, err, sizeof err);
    if (q == NULL)
        fail_msg("%s: %s", sql, err);
    return q;
}

static const char *const ID[] = {"id"};

static void test_parse_targets(void **state)
{
    (void)state;
    osc_batched_target t;
    char code[6], err[256];
    assert_true(osc_batched_parse("UPDATE s.orders AS o SET total = 0 FROM items i WHERE "
                                  "i.order_id = o.id",
                                  &t, code, err, sizeof err));
    assert_false(t.is_delete);
    assert_string_equal(t.schema, "s");
    assert_string_equal(t.table, "orders");
    assert_string_equal(t.alias, "o");
    assert_false(t.only);
    osc_batched_target_free(&t);
    assert_null(t.table);

    /* The marker comment before the statement and a trailing semicolon are fine. */
    assert_true(osc_batched_parse("-- pgcutover:batched\ndelete from only \"Event Log\";", &t, code,
                                  err, sizeof err));
    assert_true(t.is_delete);
    assert_null(t.schema);
    assert_string_equal(t.table, "Event Log");
    assert_null(t.alias);
    assert_true(t.only);
    osc_batched_target_free(&t);

    assert_true(osc_batched_parse("DELETE FROM ev e USING users u WHERE e.uid = u.id", &t, code,
                                  err, sizeof err));
    assert_true(t.is_delete);
    assert_string_equal(t.alias, "e");
    assert_false(t.only); /* inheritance children included, as written */
    osc_batched_target_free(&t);
    osc_batched_target_free(&t); /* twice: safe on a zeroed struct */
}

static void refused(const char *sql, const char *want_code, const char *want_text)
{
    osc_batched_target t;
    char code[6] = "", err[256] = "";
    assert_false(osc_batched_parse(sql, &t, code, err, sizeof err));
    if (strcmp(code, want_code) != 0)
        fail_msg("%s: SQLSTATE %s, want %s (%s)", sql, code, want_code, err);
    if (strstr(err, want_text) == NULL)
        fail_msg("%s: error \"%s\" lacks \"%s\"", sql, err, want_text);
    assert_null(t.table); /* nothing left allocated */
    /* The range rewrite refuses the same statements on its own. */
    err[0] = '\0';
    assert_null(osc_batched_range_sql(sql, ID, 1, false, err, sizeof err));
    if (strstr(err, want_text) == NULL)
        fail_msg("range of %s: error \"%s\" lacks \"%s\"", sql, err, want_text);
}

static void test_refusals(void **state)
{
    (void)state;
    refused("WITH gone AS (DELETE FROM a RETURNING id) UPDATE t SET x = 1 WHERE id IN "
            "(SELECT id FROM gone)",
            "0A000", "WITH");
    refused("WITH c AS (SELECT 1) DELETE FROM t", "0A000", "WITH");
    refused("UPDATE t SET x = 1 RETURNING id", "0A000", "RETURNING");
    refused("DELETE FROM t WHERE a < 3 RETURNING *", "0A000", "RETURNING");
    refused("UPDATE t SET x = 1 WHERE CURRENT OF c", "0A000", "CURRENT OF");
    refused("DELETE FROM t WHERE CURRENT OF c", "0A000", "CURRENT OF");
    refused("UPDATE t SET x = $1 WHERE id = 3", "0A000", "parameters");
    refused("DELETE FROM t WHERE a IN (SELECT b FROM u WHERE c = $2)", "0A000", "parameters");
    refused("INSERT INTO t VALUES (1)", "42601", "only an UPDATE or DELETE");
    refused("SELECT * FROM t WHERE id = 1", "42601", "only an UPDATE or DELETE");
    refused("MERGE INTO t USING u ON t.id = u.id WHEN MATCHED THEN DELETE", "42601",
            "only an UPDATE or DELETE");
    refused("UPDATE t SET x = 1; DELETE FROM t", "42601", "one statement");
    refused("", "42601", "empty");
    refused("  ; -- nothing", "42601", "empty");
    refused("UPDATE t SET", "42601", "syntax error");
    refused("UPDATE t SET x = 'unterminated", "42601", "syntax error");
}

/* Without WHERE: the bounds become the WHERE. */
static void test_update_without_where(void **state)
{
    (void)state;
    char *q = range("UPDATE t SET a = a + 1", ID, 1, false);
    assert_string_equal(q, "UPDATE t SET a = a + 1 WHERE t.id > $1 AND t.id <= $2");
    assert_same_tree(q, "UPDATE t SET a = a + 1 WHERE t.id > $1 AND t.id <= $2");
    free(q);
    q = range("UPDATE t SET a = a + 1", ID, 1, true);
    assert_string_equal(q, "UPDATE t SET a = a + 1 WHERE t.id <= $1");
    assert_same_tree(q, "UPDATE t SET a = a + 1 WHERE t.id <= $1");
    free(q);
}

static void test_update_with_where(void **state)
{
    (void)state;
    char *q = range("update public.accounts set flag = true where balance < 0", ID, 1, false);
    assert_same_tree(q, "UPDATE public.accounts SET flag = true WHERE (balance < 0) AND "
                        "accounts.id > $1 AND accounts.id <= $2");
    free(q);
}

/* UPDATE … FROM with an alias: the key is the target's, qualified by its alias (the FROM
 * side has an id column too). */
static void test_update_from_alias(void **state)
{
    (void)state;
    static const char *const keys[] = {"tenant", "id"};
    const char *sql = "UPDATE shop.orders AS o SET total = s.sum FROM (SELECT order_id, "
                      "sum(price) FROM items GROUP BY order_id) AS s(id, sum) WHERE o.id = s.id";
    char *q = range(sql, keys, 2, false);
    assert_same_tree(q, "UPDATE shop.orders AS o SET total = s.sum FROM (SELECT order_id, "
                        "sum(price) FROM items GROUP BY order_id) AS s(id, sum) WHERE "
                        "(o.id = s.id) AND (o.tenant, o.id) > ($1, $2) AND (o.tenant, o.id) "
                        "<= ($3, $4)");
    free(q);
    q = range(sql, keys, 2, true);
    assert_same_tree(q, "UPDATE shop.orders AS o SET total = s.sum FROM (SELECT order_id, "
                        "sum(price) FROM items GROUP BY order_id) AS s(id, sum) WHERE "
                        "(o.id = s.id) AND (o.tenant, o.id) <= ($1, $2)");
    free(q);
}

/* DELETE … USING, alias and ONLY kept; a condition that is an AND of its own. */
static void test_delete_using(void **state)
{
    (void)state;
    const char *sql = "DELETE FROM ONLY events ev USING users u WHERE ev.user_id = u.id AND "
                      "u.deleted_at IS NOT NULL";
    char *q = range(sql, ID, 1, false);
    assert_same_tree(q, "DELETE FROM ONLY events ev USING users u WHERE (ev.user_id = u.id AND "
                        "u.deleted_at IS NOT NULL) AND ev.id > $1 AND ev.id <= $2");
    free(q);
    /* Without an alias the table's name qualifies the key, even schema-qualified. */
    q = range("DELETE FROM app.events USING users WHERE events.user_id = users.id", ID, 1, true);
    assert_same_tree(q, "DELETE FROM app.events USING users WHERE events.user_id = users.id "
                        "AND events.id <= $1");
    free(q);
}

/* An OR (or anything binding looser than AND) in the condition keeps its meaning: the
 * re-parsed WHERE is an AND whose first argument is the whole original condition. */
static void test_where_precedence(void **state)
{
    (void)state;
    char *q = range("UPDATE t SET a = 0 WHERE a = 1 OR b = 2", ID, 1, false);
    PgQueryProtobufParseResult raw;
    PgQuery__ParseResult *tree = tree_of(q, &raw);
    PgQuery__Node *w = where_of(tree);
    assert_int_equal(w->node_case, PG_QUERY__NODE__NODE_BOOL_EXPR);
    assert_int_equal(w->bool_expr->boolop, PG_QUERY__BOOL_EXPR_TYPE__AND_EXPR);
    assert_int_equal(w->bool_expr->n_args, 3);
    PgQuery__Node *orig = w->bool_expr->args[0];
    assert_int_equal(orig->node_case, PG_QUERY__NODE__NODE_BOOL_EXPR);
    assert_int_equal(orig->bool_expr->boolop, PG_QUERY__BOOL_EXPR_TYPE__OR_EXPR);
    assert_int_equal(orig->bool_expr->n_args, 2);
    assert_int_equal(w->bool_expr->args[1]->node_case, PG_QUERY__NODE__NODE_A_EXPR);
    assert_string_equal(w->bool_expr->args[1]->a_expr->name[0]->string->sval, ">");
    assert_string_equal(w->bool_expr->args[2]->a_expr->name[0]->string->sval, "<=");
    free_tree(tree, raw);
    free(q);

    /* More conditions whose text has AND/OR/NOT in places a text splice would break. */
    static const char *const conds[] = {
        "a = 1 OR b = 2 AND c = 3",
        "NOT a OR b",
        "NOT (a AND b)",
        "x BETWEEN 1 AND 2",
        "x NOT BETWEEN SYMMETRIC 2 AND 1 OR y",
        "flag",
        "CASE WHEN a THEN b OR c ELSE d END",
        "EXISTS (SELECT 1 FROM u WHERE u.id = t.id OR u.x) OR t.y",
        "a IS DISTINCT FROM b OR c IS NULL",
        "coalesce(a, b) = ANY (ARRAY[1, 2]) OR s LIKE 'a%' ESCAPE '!'",
    };
    for (size_t i = 0; i < sizeof conds / sizeof conds[0]; i++) {
        char sql[512], want[512];
        snprintf(sql, sizeof sql, "UPDATE t SET z = 1 WHERE %s", conds[i]);
        snprintf(want, sizeof want, "UPDATE t SET z = 1 WHERE (%s) AND t.id > $1 AND t.id <= $2",
                 conds[i]);
        q = range(sql, ID, 1, false);
        assert_same_tree(q, want);
        free(q);
    }
}

/* Composite keys and names that need quotes (mixed case, space, quote, reserved words):
 * the deparser quotes them, and they come back exactly. */
static void test_quoted_composite_key(void **state)
{
    (void)state;
    static const char *const keys[] = {"Tenant Id", "order", "x\"y", "plain"};
    char *q = range("UPDATE \"My Table\" SET \"Value\" = 0 WHERE \"Value\" < 0", keys, 4, false);
    assert_same_tree(
        q, "UPDATE \"My Table\" SET \"Value\" = 0 WHERE (\"Value\" < 0) AND "
           "(\"My Table\".\"Tenant Id\", \"My Table\".\"order\", \"My Table\".\"x\"\"y\", "
           "\"My Table\".plain) > ($1, $2, $3, $4) AND (\"My Table\".\"Tenant Id\", "
           "\"My Table\".\"order\", \"My Table\".\"x\"\"y\", \"My Table\".plain) <= "
           "($5, $6, $7, $8)");
    /* And the re-parsed names are the raw names, parameters numbered in order. */
    PgQueryProtobufParseResult raw;
    PgQuery__ParseResult *tree = tree_of(q, &raw);
    PgQuery__Node *hi = where_of(tree)->bool_expr->args[2];
    PgQuery__RowExpr *cols = hi->a_expr->lexpr->row_expr, *params = hi->a_expr->rexpr->row_expr;
    assert_int_equal(cols->n_args, 4);
    for (int i = 0; i < 4; i++) {
        PgQuery__ColumnRef *cr = cols->args[i]->column_ref;
        assert_int_equal(cr->n_fields, 2);
        assert_string_equal(cr->fields[0]->string->sval, "My Table");
        assert_string_equal(cr->fields[1]->string->sval, keys[i]);
        assert_int_equal(params->args[i]->param_ref->number, 5 + i);
    }
    free_tree(tree, raw);
    free(q);
    /* A quoted alias qualifies the key. */
    q = range("DELETE FROM t AS \"Old Rows\" WHERE \"Old Rows\".a", ID, 1, true);
    assert_same_tree(q, "DELETE FROM t AS \"Old Rows\" WHERE \"Old Rows\".a AND "
                        "\"Old Rows\".id <= $1");
    free(q);
}

/* The rewrite is a tree edit: WHERE inside literals, dollar quotes, identifiers and
 * comments is never taken for the statement's WHERE. */
static void test_literals_untouched(void **state)
{
    (void)state;
    char *q = range("UPDATE t SET note = 'x WHERE y; --' /* WHERE */ WHERE note <> $$ WHERE $$ "
                    "AND \"WHERE\" = E'\\' WHERE' -- WHERE\n",
                    ID, 1, false);
    assert_same_tree(q, "UPDATE t SET note = 'x WHERE y; --' WHERE (note <> ' WHERE ' AND "
                        "\"WHERE\" = E'\\' WHERE') AND t.id > $1 AND t.id <= $2");
    assert_non_null(strstr(q, "'x WHERE y; --'"));
    free(q);
    /* No WHERE at all, but the text of a literal has one. */
    q = range("UPDATE t SET note = 'WHERE id = 1'", ID, 1, true);
    assert_same_tree(q, "UPDATE t SET note = 'WHERE id = 1' WHERE t.id <= $1");
    free(q);
}

/* Statement forms the deparser must print back faithfully (multi-column SET, DEFAULT,
 * subscripts, casts with typmods, COLLATE, LATERAL, sub-selects): each range statement is
 * the tree of the original with the bounds ANDed to its condition. */
static void test_statement_forms(void **state)
{
    (void)state;
    static const struct {
        const char *sql, *want;
    } cases[] = {
        {"UPDATE t SET (a, b) = (SELECT x, y FROM u WHERE u.id = t.id) WHERE a IS NULL",
         "UPDATE t SET (a, b) = (SELECT x, y FROM u WHERE u.id = t.id) WHERE (a IS NULL) AND "
         "t.id > $1 AND t.id <= $2"},
        {"UPDATE t SET a = DEFAULT, arr[1] = 2, comp.f = 3 WHERE data->>'k' = 'v' COLLATE \"C\"",
         "UPDATE t SET a = DEFAULT, arr[1] = 2, comp.f = 3 WHERE (data->>'k' = 'v' COLLATE \"C\") "
         "AND t.id > $1 AND t.id <= $2"},
        {"UPDATE t SET a = b::numeric(10,2) WHERE ts < now() - '30 days'::interval",
         "UPDATE t SET a = b::numeric(10,2) WHERE (ts < now() - '30 days'::interval) AND "
         "t.id > $1 AND t.id <= $2"},
        {"DELETE FROM t USING LATERAL (SELECT 1) s(x) WHERE t.a = s.x",
         "DELETE FROM t USING LATERAL (SELECT 1) s(x) WHERE (t.a = s.x) AND t.id > $1 AND "
         "t.id <= $2"},
        {"DELETE FROM t WHERE (a, b) IN (SELECT a, b FROM u) OR a = -1",
         "DELETE FROM t WHERE ((a, b) IN (SELECT a, b FROM u) OR a = -1) AND t.id > $1 AND "
         "t.id <= $2"},
        {"UPDATE t SET j = jsonb_set(j, '{a}', '1') WHERE NOT EXISTS (SELECT FROM u WHERE "
         "u.t_id = t.id)",
         "UPDATE t SET j = jsonb_set(j, '{a}', '1') WHERE (NOT EXISTS (SELECT FROM u WHERE "
         "u.t_id = t.id)) AND t.id > $1 AND t.id <= $2"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *q = range(cases[i].sql, ID, 1, false);
        assert_same_tree(q, cases[i].want);
        free(q);
    }
}

/* The last range is open above; without either bound the statement is unchanged. */
static void test_range_bounds(void **state)
{
    (void)state;
    static const char *const keys[] = {"a", "b"};
    char err[256];
    char *q = osc_batched_range_sql_bounds("DELETE FROM t WHERE x", keys, 2, true, false, err,
                                           sizeof err);
    assert_same_tree(q, "DELETE FROM t WHERE x AND (t.a, t.b) > ($1, $2)");
    free(q);
    q = osc_batched_range_sql_bounds("DELETE FROM t", keys, 2, true, false, err, sizeof err);
    assert_same_tree(q, "DELETE FROM t WHERE (t.a, t.b) > ($1, $2)");
    free(q);
    q = osc_batched_range_sql_bounds("DELETE FROM t WHERE x OR y", keys, 2, false, false, err,
                                     sizeof err);
    assert_same_tree(q, "DELETE FROM t WHERE x OR y");
    free(q);
    q = osc_batched_range_sql_bounds("UPDATE t SET c = 1", keys, 2, true, true, err, sizeof err);
    char *r = osc_batched_range_sql("UPDATE t SET c = 1", keys, 2, false, err, sizeof err);
    assert_string_equal(q, r);
    free(q);
    free(r);
}

static void test_bad_keys(void **state)
{
    (void)state;
    static const char *const empty[] = {""}, *const null[] = {"a", NULL};
    const char *many[OSC_BATCHED_MAX_KEYS + 1];
    for (int i = 0; i <= OSC_BATCHED_MAX_KEYS; i++)
        many[i] = "k";
    char err[256];
    const char *sql = "UPDATE t SET a = 1";
    assert_null(osc_batched_range_sql(sql, ID, 0, false, err, sizeof err));
    assert_non_null(strstr(err, "key"));
    assert_null(osc_batched_range_sql(sql, NULL, 1, false, err, sizeof err));
    assert_null(osc_batched_range_sql(sql, many, OSC_BATCHED_MAX_KEYS + 1, false, err, sizeof err));
    assert_null(osc_batched_range_sql(sql, empty, 1, false, err, sizeof err));
    assert_null(osc_batched_range_sql(sql, null, 2, false, err, sizeof err));
    assert_null(osc_batched_range_sql(NULL, ID, 1, false, err, sizeof err));
    /* The longest key is fine. */
    char *q = osc_batched_range_sql(sql, many, OSC_BATCHED_MAX_KEYS, false, err, sizeof err);
    assert_non_null(q);
    assert_non_null(strstr(q, "$64"));
    assert_null(strstr(q, "$65"));
    free(tree_json(q));
    free(q);
}

static char *bound(const osc_batched_target *t, const char *const *keys, int nkeys, bool first,
                   long rows)
{
    char *q = osc_batched_bound_sql(t, keys, nkeys, first, rows);
    assert_non_null(q);
    free(tree_json(q)); /* re-parses */
    return q;
}

static void test_bound_sql(void **state)
{
    (void)state;
    osc_batched_target t = {.table = "accounts"};
    char *q = bound(&t, ID, 1, false, 1000);
    assert_string_equal(q, "SELECT id FROM accounts WHERE id > $1 ORDER BY id LIMIT 1 OFFSET 999");
    free(q);
    q = bound(&t, ID, 1, true, 1);
    assert_string_equal(q, "SELECT id FROM accounts ORDER BY id LIMIT 1 OFFSET 0");
    free(q);

    /* Names that need quotes, ONLY, schema-qualified, composite. */
    static const char *const keys[] = {"Tenant Id", "select", "x\"y", "UserId", "id"};
    osc_batched_target u = {.schema = "My Schema", .table = "user", .only = true};
    q = bound(&u, keys, 5, false, 500);
    assert_same_tree(q,
                     "SELECT \"Tenant Id\", \"select\", \"x\"\"y\", \"UserId\", id FROM ONLY "
                     "\"My Schema\".\"user\" WHERE (\"Tenant Id\", \"select\", \"x\"\"y\", "
                     "\"UserId\", id) > ($1, $2, $3, $4, $5) ORDER BY \"Tenant Id\", \"select\", "
                     "\"x\"\"y\", \"UserId\", id OFFSET 499 LIMIT 1");
    PgQueryProtobufParseResult raw;
    PgQuery__ParseResult *tree = tree_of(q, &raw);
    PgQuery__SelectStmt *s = tree->stmts[0]->stmt->select_stmt;
    assert_string_equal(s->from_clause[0]->range_var->schemaname, "My Schema");
    assert_string_equal(s->from_clause[0]->range_var->relname, "user");
    assert_false(s->from_clause[0]->range_var->inh);
    assert_int_equal(s->n_target_list, 5);
    assert_int_equal(s->n_sort_clause, 5);
    for (int i = 0; i < 5; i++) {
        assert_string_equal(s->target_list[i]->res_target->val->column_ref->fields[0]->string->sval,
                            keys[i]);
        assert_string_equal(s->sort_clause[i]->sort_by->node->column_ref->fields[0]->string->sval,
                            keys[i]);
        assert_int_equal(where_of(tree)->a_expr->rexpr->row_expr->args[i]->param_ref->number,
                         i + 1);
    }
    free_tree(tree, raw);
    free(q);
    q = bound(&u, keys, 5, true, 500);
    assert_same_tree(q, "SELECT \"Tenant Id\", \"select\", \"x\"\"y\", \"UserId\", id FROM ONLY "
                        "\"My Schema\".\"user\" ORDER BY \"Tenant Id\", \"select\", \"x\"\"y\", "
                        "\"UserId\", id LIMIT 1 OFFSET 499");
    free(q);

    /* From a parsed target: as written (without ONLY: children included). */
    osc_batched_target p;
    char code[6], err[256];
    assert_true(osc_batched_parse("UPDATE app.\"Orders\" o SET x = 1 WHERE o.x IS NULL", &p, code,
                                  err, sizeof err));
    q = bound(&p, ID, 1, false, INT32_MAX);
    assert_string_equal(q, "SELECT id FROM app.\"Orders\" WHERE id > $1 ORDER BY id LIMIT 1 "
                           "OFFSET 2147483646");
    free(q);

    /* Refused arguments. */
    assert_null(osc_batched_bound_sql(&p, ID, 1, false, 0));
    assert_null(osc_batched_bound_sql(&p, ID, 1, false, -5));
    assert_null(osc_batched_bound_sql(&p, ID, 1, false, (long)INT32_MAX + 1));
    assert_null(osc_batched_bound_sql(&p, ID, 0, false, 10));
    assert_null(osc_batched_bound_sql(&p, NULL, 1, false, 10));
    static const char *const blank[] = {""};
    assert_null(osc_batched_bound_sql(&p, blank, 1, false, 10));
    assert_null(osc_batched_bound_sql(NULL, ID, 1, false, 10));
    osc_batched_target_free(&p);
    osc_batched_target none = {0};
    assert_null(osc_batched_bound_sql(&none, ID, 1, false, 10));
}

/* The rights executor's forms: every bound is ($1)[p]::type (one text[] parameter), the
 * type as format_type prints it, parsed into the tree; and an UPDATE's SET columns. */
static void test_typed_for_executor(void **state)
{
    (void)state;
    const char *keys[] = {"id", "at"}, *types[] = {"integer", "timestamp with time zone"};
    char err[256];
    char *got = osc_batched_range_sql_typed("UPDATE t SET v = 1 WHERE v > 0", keys, types, 2, true,
                                            true, err, sizeof err);
    assert_same_tree(got, "UPDATE t SET v = 1 WHERE v > 0 AND (t.id, t.at) > (($1)[1]::int, "
                          "($1)[2]::timestamp with time zone) AND (t.id, t.at) <= (($1)[3]::int, ($1)[4]::timestamp with time zone)");
    free(got);
    osc_batched_target t;
    char code[6];
    assert_true(osc_batched_parse("UPDATE s.t AS x SET a = 1, (b, c) = (2, 3)", &t, code, err, sizeof err));
    got = osc_batched_bound_sql_typed(&t, keys, types, 2, false, 50);
    assert_same_tree(got, "SELECT id, at FROM s.t WHERE (id, at) > (($1)[1]::int, ($1)[2]::timestamp with time zone) "
                          "ORDER BY id, at LIMIT 1 OFFSET 49");
    free(got);
    assert_int_equal(t.nset, 3);
    assert_string_equal(t.set_columns[0], "a");
    assert_string_equal(t.set_columns[1], "b");
    assert_string_equal(t.set_columns[2], "c");
    osc_batched_target_free(&t);
    const char *bad[] = {"int; DROP TABLE x", "integer"};
    assert_null(osc_batched_range_sql_typed("DELETE FROM t", keys, bad, 2, false, true, err, sizeof err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_targets),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_update_without_where),
        cmocka_unit_test(test_update_with_where),
        cmocka_unit_test(test_update_from_alias),
        cmocka_unit_test(test_delete_using),
        cmocka_unit_test(test_where_precedence),
        cmocka_unit_test(test_quoted_composite_key),
        cmocka_unit_test(test_literals_untouched),
        cmocka_unit_test(test_statement_forms),
        cmocka_unit_test(test_range_bounds),
        cmocka_unit_test(test_bad_keys),
        cmocka_unit_test(test_bound_sql),
        cmocka_unit_test(test_typed_for_executor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
