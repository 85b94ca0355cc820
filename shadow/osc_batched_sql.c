/* osc_batched_sql.c — see osc_batched_sql.h. Parse tree: libpg_query's protobuf
 * (pg_query.proto), node names as in PostgreSQL's src/include/nodes/parsenodes.h; the
 * nodes added are the ones PostgreSQL's grammar (gram.y) builds for the same text, so the
 * deparser prints them as it prints a parsed statement. */
#include "osc_batched_sql.h"
#include "osc_stmt.h"

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef PgQuery__Node node;

static bool fail(char sqlstate[6], const char *code, char *err, size_t errlen, const char *msg)
{
    if (sqlstate)
        memcpy(sqlstate, code, 6);
    snprintf(err, errlen, "%s", msg);
    return false;
}


/* Whether message m or anything below it is a message of type want. Walks every message
 * field through protobuf-c's descriptors (repeated fields by their count, oneof members
 * only when set), so no node type can be forgotten. */
static bool contains(const ProtobufCMessage *m, const ProtobufCMessageDescriptor *want)
{
    if (m == NULL)
        return false;
    if (m->descriptor == want)
        return true;
    const char *base = (const char *)m;
    for (unsigned i = 0; i < m->descriptor->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &m->descriptor->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            ProtobufCMessage *const *arr = *(ProtobufCMessage *const *const *)(base + f->offset);
            for (size_t k = 0; k < n; k++)
                if (contains(arr[k], want))
                    return true;
            continue;
        }
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(base + f->quantifier_offset) != f->id)
            continue;
        if (contains(*(ProtobufCMessage *const *)(base + f->offset), want))
            return true;
    }
    return false;
}

/* The one UPDATE or DELETE of tree with its target and WHERE slot, or false with the
 * refusal (see osc_batched_parse). */
static bool batchable(PgQuery__ParseResult *tree, bool *is_delete, PgQuery__RangeVar **rv,
                      node ***where, char sqlstate[6], char *err, size_t errlen)
{
    if (tree->n_stmts == 0)
        return fail(sqlstate, "42601", err, errlen,
                    "empty statement: give one UPDATE or DELETE to run in batches");
    if (tree->n_stmts > 1)
        return fail(sqlstate, "42601", err, errlen,
                    "one statement at a time: a batched UPDATE or DELETE must be the only "
                    "statement (mark each statement of a file on its own)");
    node *n = tree->stmts[0]->stmt;
    PgQuery__WithClause *with;
    size_t n_returning;
    if (n && n->node_case == PG_QUERY__NODE__NODE_UPDATE_STMT) {
        *is_delete = false;
        *rv = n->update_stmt->relation;
        *where = &n->update_stmt->where_clause;
        with = n->update_stmt->with_clause;
        n_returning = n->update_stmt->n_returning_list;
    } else if (n && n->node_case == PG_QUERY__NODE__NODE_DELETE_STMT) {
        *is_delete = true;
        *rv = n->delete_stmt->relation;
        *where = &n->delete_stmt->where_clause;
        with = n->delete_stmt->with_clause;
        n_returning = n->delete_stmt->n_returning_list;
    } else {
        return fail(sqlstate, "42601", err, errlen,
                    "only an UPDATE or DELETE can run in batches: run other statements "
                    "unbatched");
    }
    if (*rv == NULL || (*rv)->relname == NULL || !*(*rv)->relname)
        return fail(sqlstate, "42601", err, errlen, "the statement names no table");
    if (with)
        return fail(sqlstate, "0A000", err, errlen,
                    "a WITH clause cannot be batched: its queries (and a data-modifying "
                    "CTE's writes) would run again in every batch; run the CTE's work as "
                    "its own statement first, or run this statement unbatched");
    if (**where && (**where)->node_case == PG_QUERY__NODE__NODE_CURRENT_OF_EXPR)
        return fail(sqlstate, "0A000", err, errlen,
                    "WHERE CURRENT OF changes one cursor row: there is nothing to batch; "
                    "run it unbatched");
    if (n_returning)
        return fail(sqlstate, "0A000", err, errlen,
                    "RETURNING cannot be batched: the rows would come back in pieces, one "
                    "set per batch transaction; drop RETURNING or run the statement "
                    "unbatched");
    if (contains(&n->base, &pg_query__param_ref__descriptor))
        return fail(sqlstate, "0A000", err, errlen,
                    "a batched statement cannot use parameters ($n): the batch bounds are "
                    "its parameters; write the values in the statement");
    return true;
}

static char *dup_or_null(const char *s)
{
    return (s && *s) ? strdup(s) : NULL;
}

bool osc_batched_parse(const char *sql, osc_batched_target *out, char sqlstate[6], char *err,
                       size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (sql == NULL)
        return fail(sqlstate, "42601", err, errlen, "no statement");
    PgQueryProtobufParseResult raw;
    PgQuery__ParseResult *tree = osc_stmt_parse_tree(sql, &raw, err, errlen);
    PgQuery__RangeVar *rv;
    node **where;
    bool ok = false;
    if (tree == NULL) {
        memcpy(sqlstate, "42601", 6);
        goto done;
    }
    if (!batchable(tree, &out->is_delete, &rv, &where, sqlstate, err, errlen))
        goto done;
    /* Every batch is the deparsed statement: find out now (at plan time) if libpg_query's
     * deparser cannot print it, rather than at the first batch. */
    char *text = osc_stmt_deparse_tree(tree, err, errlen);
    if (text == NULL) {
        memcpy(sqlstate, strncmp(err, "out of memory", 13) == 0 ? "53200" : "0A000", 6);
        goto done;
    }
    free(text);
    out->schema = dup_or_null(rv->schemaname);
    out->table = strdup(rv->relname);
    out->alias = rv->alias ? dup_or_null(rv->alias->aliasname) : NULL;
    out->only = !rv->inh;
    if (!out->is_delete) { /* the columns SET assigns (ResTarget names) */
        PgQuery__UpdateStmt *u = tree->stmts[0]->stmt->update_stmt;
        out->set_columns = calloc(u->n_target_list + 1, sizeof *out->set_columns);
        for (size_t i = 0; out->set_columns && i < u->n_target_list; i++)
            if (u->target_list[i]->node_case == PG_QUERY__NODE__NODE_RES_TARGET &&
                u->target_list[i]->res_target->name)
                out->set_columns[out->nset++] = strdup(u->target_list[i]->res_target->name);
        for (int i = 0; out->set_columns && i < out->nset; i++)
            if (out->set_columns[i] == NULL)
                out->set_columns = NULL; /* reported below; the strings leak on this OOM only */
    }
    if ((!out->is_delete && out->set_columns == NULL) || out->table == NULL || (rv->schemaname && *rv->schemaname && out->schema == NULL) ||
        (rv->alias && rv->alias->aliasname && *rv->alias->aliasname && out->alias == NULL)) {
        fail(sqlstate, "53200", err, errlen, "out of memory");
        goto done;
    }
    ok = true;
done:
    if (tree)
        pg_query__parse_result__free_unpacked(tree, NULL);
    pg_query_free_protobuf_parse_result(raw);
    if (!ok)
        osc_batched_target_free(out);
    return ok;
}

void osc_batched_target_free(osc_batched_target *t)
{
    free(t->schema);
    free(t->table);
    free(t->alias);
    for (int i = 0; i < t->nset; i++)
        free(t->set_columns[i]);
    free(t->set_columns);
    memset(t, 0, sizeof *t);
}

/*
 * Node builders. Every node, array and string is malloc'ed, so a built node belongs to
 * the tree it is attached to and is released with it (protobuf-c's free_unpacked, default
 * allocator). Each builder takes ownership of the nodes it is given: when one of them is
 * NULL (a failed allocation below) or an allocation fails, it frees the others and
 * returns NULL, so a nested call needs one NULL check at the top.
 */

static void node_free(node *n)
{
    if (n)
        pg_query__node__free_unpacked(n, NULL);
}

/* A new empty node, or NULL. */
static node *node_new(void)
{
    node *n = malloc(sizeof *n);
    if (n) {
        node init = PG_QUERY__NODE__INIT;
        *n = init;
    }
    return n;
}

/* A malloc'ed array of the n items (owned), or NULL with every item freed. */
static node **take_list(node *const *items, size_t n)
{
    node **arr = malloc((n ? n : 1) * sizeof *arr);
    bool ok = arr != NULL;
    for (size_t i = 0; i < n; i++)
        ok = ok && items[i] != NULL;
    if (!ok) {
        for (size_t i = 0; i < n; i++)
            node_free(items[i]);
        free(arr);
        return NULL;
    }
    memcpy(arr, items, n * sizeof *arr);
    return arr;
}

static node *mk_string(const char *s)
{
    node *n = node_new();
    PgQuery__String *st = malloc(sizeof *st);
    char *d = strdup(s);
    if (n == NULL || st == NULL || d == NULL) {
        free(n), free(st), free(d);
        return NULL;
    }
    PgQuery__String init = PG_QUERY__STRING__INIT;
    *st = init;
    st->sval = d;
    n->node_case = PG_QUERY__NODE__NODE_STRING;
    n->string = st;
    return n;
}

/* ColumnRef qual.col, or col when qual is NULL (gram.y's columnref). */
static node *mk_colref(const char *qual, const char *col)
{
    node *parts[2];
    size_t np = 0;
    if (qual)
        parts[np++] = mk_string(qual);
    parts[np++] = mk_string(col);
    node **fields = take_list(parts, np);
    node *n = fields ? node_new() : NULL;
    PgQuery__ColumnRef *cr = n ? malloc(sizeof *cr) : NULL;
    if (cr == NULL) {
        for (size_t i = 0; fields && i < np; i++)
            node_free(fields[i]);
        free(fields), free(n);
        return NULL;
    }
    PgQuery__ColumnRef init = PG_QUERY__COLUMN_REF__INIT;
    *cr = init;
    cr->n_fields = np;
    cr->fields = fields;
    cr->location = -1;
    n->node_case = PG_QUERY__NODE__NODE_COLUMN_REF;
    n->column_ref = cr;
    return n;
}

/* ParamRef $number. */
static node *mk_param(int number)
{
    node *n = node_new();
    PgQuery__ParamRef *p = malloc(sizeof *p);
    if (n == NULL || p == NULL) {
        free(n), free(p);
        return NULL;
    }
    PgQuery__ParamRef init = PG_QUERY__PARAM_REF__INIT;
    *p = init;
    p->number = number;
    p->location = -1;
    n->node_case = PG_QUERY__NODE__NODE_PARAM_REF;
    n->param_ref = p;
    return n;
}

/* The row (items…) as gram.y builds an implicit row constructor, or the one item itself:
 * "(a)" is a parenthesised expression, not a row. */
static node *mk_row(node *const *items, size_t n)
{
    if (n == 1)
        return items[0];
    node **args = take_list(items, n);
    node *r = args ? node_new() : NULL;
    PgQuery__RowExpr *re = r ? malloc(sizeof *re) : NULL;
    if (re == NULL) {
        for (size_t i = 0; args && i < n; i++)
            node_free(args[i]);
        free(args), free(r);
        return NULL;
    }
    PgQuery__RowExpr init = PG_QUERY__ROW_EXPR__INIT;
    *re = init;
    re->n_args = n;
    re->args = args;
    re->row_format = PG_QUERY__COERCION_FORM__COERCE_IMPLICIT_CAST;
    re->location = -1;
    r->node_case = PG_QUERY__NODE__NODE_ROW_EXPR;
    r->row_expr = re;
    return r;
}

/* A_Expr l op r (an unqualified operator name, as written in SQL). */
static node *mk_op(const char *op, node *l, node *r)
{
    node *name = mk_string(op);
    node **names = take_list(&name, 1);
    node *n = names && l && r ? node_new() : NULL;
    PgQuery__AExpr *e = n ? malloc(sizeof *e) : NULL;
    if (e == NULL) {
        if (names)
            node_free(names[0]);
        free(names), free(n);
        node_free(l), node_free(r);
        return NULL;
    }
    PgQuery__AExpr init = PG_QUERY__A__EXPR__INIT;
    *e = init;
    e->kind = PG_QUERY__A__EXPR__KIND__AEXPR_OP;
    e->n_name = 1;
    e->name = names;
    e->lexpr = l;
    e->rexpr = r;
    e->location = -1;
    n->node_case = PG_QUERY__NODE__NODE_A_EXPR;
    n->a_expr = e;
    return n;
}

/* BoolExpr args[0] AND args[1] AND …; with one argument, that argument. */
static node *mk_and(node *const *items, size_t n)
{
    if (n == 1)
        return items[0];
    node **args = take_list(items, n);
    node *b = args ? node_new() : NULL;
    PgQuery__BoolExpr *be = b ? malloc(sizeof *be) : NULL;
    if (be == NULL) {
        for (size_t i = 0; args && i < n; i++)
            node_free(args[i]);
        free(args), free(b);
        return NULL;
    }
    PgQuery__BoolExpr init = PG_QUERY__BOOL_EXPR__INIT;
    *be = init;
    be->boolop = PG_QUERY__BOOL_EXPR_TYPE__AND_EXPR;
    be->n_args = n;
    be->args = args;
    be->location = -1;
    b->node_case = PG_QUERY__NODE__NODE_BOOL_EXPR;
    b->bool_expr = be;
    return b;
}

/* ($1)[number]::type — parameter number of a statement run through the rights executor
 * (osc_rights.h), whose one parameter is a text[]: parsed by libpg_query from a SELECT
 * of it, so type (format_type's text, from the catalog) becomes the TypeName PostgreSQL
 * itself would build; the expression is detached from that tree. */
static node *mk_array_param(int number, const char *type)
{
    size_t n = strlen(type) + 64;
    char *sql = malloc(n);
    if (sql == NULL)
        return NULL;
    snprintf(sql, n, "SELECT ($1)[%d]::%s", number, type);
    char err[256];
    PgQueryProtobufParseResult raw;
    PgQuery__ParseResult *tree = osc_stmt_parse_tree(sql, &raw, err, sizeof err);
    free(sql);
    node *expr = NULL;
    if (tree && tree->n_stmts == 1 && tree->stmts[0]->stmt->node_case == PG_QUERY__NODE__NODE_SELECT_STMT) {
        PgQuery__SelectStmt *s = tree->stmts[0]->stmt->select_stmt;
        if (s->n_target_list == 1 && s->target_list[0]->node_case == PG_QUERY__NODE__NODE_RES_TARGET) {
            expr = s->target_list[0]->res_target->val;
            s->target_list[0]->res_target->val = NULL;
        }
    }
    if (tree)
        pg_query__parse_result__free_unpacked(tree, NULL);
    pg_query_free_protobuf_parse_result(raw);
    return expr;
}

/* (qual.k1, …, qual.kn) op ($first, …, $first+n-1); with types, each parameter is
 * ($1)[p]::types[i] instead (mk_array_param). */
static node *mk_key_cmp(const char *op, const char *qual, const char *const *keys, int nkeys,
                        int first, const char *const *types)
{
    node *cols[OSC_BATCHED_MAX_KEYS], *params[OSC_BATCHED_MAX_KEYS];
    for (int i = 0; i < nkeys; i++) {
        cols[i] = mk_colref(qual, keys[i]);
        params[i] = types ? mk_array_param(first + i, types[i]) : mk_param(first + i);
    }
    return mk_op(op, mk_row(cols, (size_t)nkeys), mk_row(params, (size_t)nkeys));
}

/* Whether keys is a usable key (see the header), else false with err. */
static bool keys_ok(const char *const *keys, int nkeys, char *err, size_t errlen)
{
    if (keys == NULL || nkeys < 1 || nkeys > OSC_BATCHED_MAX_KEYS) {
        snprintf(err, errlen, "a batched statement needs a key of 1 to %d columns (got %d)",
                 OSC_BATCHED_MAX_KEYS, keys ? nkeys : 0);
        return false;
    }
    for (int i = 0; i < nkeys; i++)
        if (keys[i] == NULL || !*keys[i]) {
            snprintf(err, errlen, "key column %d has no name", i + 1);
            return false;
        }
    return true;
}

char *osc_batched_range_sql_bounds(const char *sql, const char *const *key_columns, int nkeys,
                                   bool has_lo, bool has_hi, char *err, size_t errlen)
{
    return osc_batched_range_sql_typed(sql, key_columns, NULL, nkeys, has_lo, has_hi, err, errlen);
}

char *osc_batched_range_sql_typed(const char *sql, const char *const *key_columns,
                                  const char *const *key_types, int nkeys, bool has_lo, bool has_hi,
                                  char *err, size_t errlen)
{
    if (!keys_ok(key_columns, nkeys, err, errlen))
        return NULL;
    if (sql == NULL) {
        snprintf(err, errlen, "no statement");
        return NULL;
    }
    PgQueryProtobufParseResult raw;
    PgQuery__ParseResult *tree = osc_stmt_parse_tree(sql, &raw, err, errlen);
    char *result = NULL;
    char code[6];
    bool is_delete;
    PgQuery__RangeVar *rv;
    node **where;
    if (tree == NULL || !batchable(tree, &is_delete, &rv, &where, code, err, errlen))
        goto done;
    const char *qual = rv->alias && rv->alias->aliasname && *rv->alias->aliasname
                           ? rv->alias->aliasname
                           : rv->relname;
    /* Detach the user's condition: the AND below owns it (and frees it if building fails,
     * leaving the statement's slot empty rather than dangling). */
    node *conds[3];
    size_t nc = 0;
    if (*where)
        conds[nc++] = *where;
    *where = NULL;
    if (has_lo)
        conds[nc++] = mk_key_cmp(">", qual, key_columns, nkeys, 1, key_types);
    if (has_hi)
        conds[nc++] = mk_key_cmp("<=", qual, key_columns, nkeys, has_lo ? nkeys + 1 : 1, key_types);
    if (nc > 0 && (*where = mk_and(conds, nc)) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    result = osc_stmt_deparse_tree(tree, err, errlen);
done:
    if (tree)
        pg_query__parse_result__free_unpacked(tree, NULL);
    pg_query_free_protobuf_parse_result(raw);
    return result;
}

char *osc_batched_range_sql(const char *sql, const char *const *key_columns, int nkeys, bool first,
                            char *err, size_t errlen)
{
    return osc_batched_range_sql_bounds(sql, key_columns, nkeys, !first, true, err, errlen);
}

/* A_Const integer v (gram.y's Iconst). */
static node *mk_int(int32_t v)
{
    node *n = node_new();
    PgQuery__AConst *c = malloc(sizeof *c);
    PgQuery__Integer *i = malloc(sizeof *i);
    if (n == NULL || c == NULL || i == NULL) {
        free(n), free(c), free(i);
        return NULL;
    }
    PgQuery__AConst cinit = PG_QUERY__A__CONST__INIT;
    PgQuery__Integer iinit = PG_QUERY__INTEGER__INIT;
    *c = cinit;
    *i = iinit;
    i->ival = v;
    c->val_case = PG_QUERY__A__CONST__VAL_IVAL;
    c->ival = i;
    c->location = -1;
    n->node_case = PG_QUERY__NODE__NODE_A_CONST;
    n->a_const = c;
    return n;
}

/* ResTarget val (a SELECT list item without AS). */
static node *mk_target(node *val)
{
    node *n = val ? node_new() : NULL;
    PgQuery__ResTarget *t = n ? malloc(sizeof *t) : NULL;
    if (t == NULL) {
        free(n), node_free(val);
        return NULL;
    }
    PgQuery__ResTarget init = PG_QUERY__RES_TARGET__INIT;
    *t = init;
    t->val = val;
    t->location = -1;
    n->node_case = PG_QUERY__NODE__NODE_RES_TARGET;
    n->res_target = t;
    return n;
}

/* SortBy val, ascending with the default NULLS order. */
static node *mk_sortby(node *val)
{
    node *n = val ? node_new() : NULL;
    PgQuery__SortBy *s = n ? malloc(sizeof *s) : NULL;
    if (s == NULL) {
        free(n), node_free(val);
        return NULL;
    }
    PgQuery__SortBy init = PG_QUERY__SORT_BY__INIT;
    *s = init;
    s->node = val;
    s->sortby_dir = PG_QUERY__SORT_BY_DIR__SORTBY_DEFAULT;
    s->sortby_nulls = PG_QUERY__SORT_BY_NULLS__SORTBY_NULLS_DEFAULT;
    s->location = -1;
    n->node_case = PG_QUERY__NODE__NODE_SORT_BY;
    n->sort_by = s;
    return n;
}

/* RangeVar [ONLY] schema.table (schema NULL: unqualified). */
static node *mk_rangevar(const char *schema, const char *table, bool only)
{
    node *n = node_new();
    PgQuery__RangeVar *rv = malloc(sizeof *rv);
    char *s = schema ? strdup(schema) : NULL, *t = strdup(table), *p = strdup("p");
    if (n == NULL || rv == NULL || (schema && s == NULL) || t == NULL || p == NULL) {
        free(n), free(rv), free(s), free(t), free(p);
        return NULL;
    }
    PgQuery__RangeVar init = PG_QUERY__RANGE_VAR__INIT;
    *rv = init;
    if (s)
        rv->schemaname = s;
    rv->relname = t;
    rv->inh = !only;
    rv->relpersistence = p;
    rv->location = -1;
    n->node_case = PG_QUERY__NODE__NODE_RANGE_VAR;
    n->range_var = rv;
    return n;
}

char *osc_batched_bound_sql(const osc_batched_target *t, const char *const *key_columns, int nkeys,
                            bool first, long batch_rows)
{
    return osc_batched_bound_sql_typed(t, key_columns, NULL, nkeys, first, batch_rows);
}

char *osc_batched_bound_sql_typed(const osc_batched_target *t, const char *const *key_columns,
                                  const char *const *key_types, int nkeys, bool first, long batch_rows)
{
    char err[256];
    if (t == NULL || t->table == NULL || !*t->table || (t->schema && !*t->schema) ||
        batch_rows < 1 || batch_rows > INT32_MAX || !keys_ok(key_columns, nkeys, err, sizeof err))
        return NULL;
    node *targets[OSC_BATCHED_MAX_KEYS], *sorts[OSC_BATCHED_MAX_KEYS];
    for (int i = 0; i < nkeys; i++) {
        targets[i] = mk_target(mk_colref(NULL, key_columns[i]));
        sorts[i] = mk_sortby(mk_colref(NULL, key_columns[i]));
    }
    node *from = mk_rangevar(t->schema, t->table, t->only);
    node *where = first ? NULL : mk_key_cmp(">", NULL, key_columns, nkeys, 1, key_types);
    node *offset = mk_int((int32_t)(batch_rows - 1)), *limit = mk_int(1);
    node **target_list = take_list(targets, (size_t)nkeys);
    node **sort_list = take_list(sorts, (size_t)nkeys);
    node **from_list = take_list(&from, 1);

    /* Assemble the statement; from here on the tree owns what is attached to it. */
    PgQuery__ParseResult *tree = malloc(sizeof *tree);
    PgQuery__RawStmt *raw = malloc(sizeof *raw);
    PgQuery__RawStmt **stmts = malloc(sizeof *stmts);
    node *stmt = node_new();
    PgQuery__SelectStmt *sel = malloc(sizeof *sel);
    char *result = NULL;
    if (tree && raw && stmts && stmt && sel) {
        PgQuery__ParseResult tinit = PG_QUERY__PARSE_RESULT__INIT;
        PgQuery__RawStmt rinit = PG_QUERY__RAW_STMT__INIT;
        PgQuery__SelectStmt sinit = PG_QUERY__SELECT_STMT__INIT;
        *tree = tinit, *raw = rinit, *sel = sinit;
        tree->version = PG_VERSION_NUM;
        tree->n_stmts = 1;
        tree->stmts = stmts;
        stmts[0] = raw;
        raw->stmt = stmt;
        stmt->node_case = PG_QUERY__NODE__NODE_SELECT_STMT;
        stmt->select_stmt = sel;
        sel->op = PG_QUERY__SET_OPERATION__SETOP_NONE;
        sel->limit_option = PG_QUERY__LIMIT_OPTION__LIMIT_OPTION_COUNT;
        if (target_list)
            sel->n_target_list = (size_t)nkeys, sel->target_list = target_list;
        if (sort_list)
            sel->n_sort_clause = (size_t)nkeys, sel->sort_clause = sort_list;
        if (from_list)
            sel->n_from_clause = 1, sel->from_clause = from_list;
        sel->where_clause = where;
        sel->limit_offset = offset;
        sel->limit_count = limit;
        if (target_list && sort_list && from_list && (first || where) && offset && limit)
            result = osc_stmt_deparse_tree(tree, err, sizeof err);
        pg_query__parse_result__free_unpacked(tree, NULL);
        return result;
    }
    free(tree), free(raw), free(stmts), free(stmt), free(sel);
    for (int i = 0; target_list && i < nkeys; i++)
        node_free(target_list[i]);
    for (int i = 0; sort_list && i < nkeys; i++)
        node_free(sort_list[i]);
    if (from_list)
        node_free(from_list[0]);
    free(target_list), free(sort_list), free(from_list);
    node_free(where), node_free(offset), node_free(limit);
    return NULL;
}
