/* osc_stmt.c — see osc_stmt.h. Parse tree: libpg_query's protobuf (pg_query.proto),
 * node names as in PostgreSQL's src/include/nodes/parsenodes.h. */
#include "osc_stmt.h"

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "osc_sql.h"

typedef PgQuery__AlterTableType at_type;

static char *dup_or_null(const char *s)
{
    return (s && *s) ? strdup(s) : NULL;
}

/* Why a subcommand cannot be done through a shadow copy, or NULL when it can. */
static const char *refusal(at_type t)
{
    switch (t) {
    case PG_QUERY__ALTER_TABLE_TYPE__AT_SetTableSpace:
        return "SET TABLESPACE moves the table, it does not change its schema: use "
               "pg_repack --tablespace, or run it directly in a maintenance window";
    case PG_QUERY__ALTER_TABLE_TYPE__AT_SetLogged:
    case PG_QUERY__ALTER_TABLE_TYPE__AT_SetUnLogged:
        return "SET LOGGED/UNLOGGED changes persistence, which a shadow copy cannot carry; "
               "run it directly";
    case PG_QUERY__ALTER_TABLE_TYPE__AT_AttachPartition:
    case PG_QUERY__ALTER_TABLE_TYPE__AT_DetachPartition:
    case PG_QUERY__ALTER_TABLE_TYPE__AT_DetachPartitionFinalize:
    case PG_QUERY__ALTER_TABLE_TYPE__AT_AddInherit:
    case PG_QUERY__ALTER_TABLE_TYPE__AT_DropInherit:
    case PG_QUERY__ALTER_TABLE_TYPE__AT_AddOf:
    case PG_QUERY__ALTER_TABLE_TYPE__AT_DropOf:
        return "partitioning and inheritance changes are not supported: use ATTACH/DETACH "
               "PARTITION … CONCURRENTLY directly";
    case PG_QUERY__ALTER_TABLE_TYPE__AT_SetAccessMethod:
        return "SET ACCESS METHOD is not supported";
    case PG_QUERY__ALTER_TABLE_TYPE__AT_GenericOptions:
    case PG_QUERY__ALTER_TABLE_TYPE__AT_AlterColumnGenericOptions:
        return "OPTIONS belong to foreign tables: change them directly";
    default:
        return NULL;
    }
}

#define AT(x) PG_QUERY__ALTER_TABLE_TYPE__AT_##x
/* Subcommands that change only the catalog by construction (tablecmds.c never rewrites or
 * scans for them): triggers, rules, row security, owner, options, replica identity,
 * cluster mark, constraint attributes. They name objects a shadow copy does not have
 * (triggers, index names), so they are run on the table itself (osc_plan_catalog_only).
 * With the lock AlterTableGetLockLevel (PostgreSQL 15) takes for each; 0: ACCESS EXCLUSIVE. */
static const struct {
    at_type t;
    int lock;
} catalog_subcmds[] = {
    {AT(SetOptions), OSC_LOCK_SHARE_UPDATE_EXCLUSIVE},
    {AT(ResetOptions), OSC_LOCK_SHARE_UPDATE_EXCLUSIVE},
    /* fillfactor, autovacuum_*, …: the strongest option's lock, at most this */
    {AT(SetRelOptions), OSC_LOCK_SHARE_UPDATE_EXCLUSIVE},
    {AT(ResetRelOptions), OSC_LOCK_SHARE_UPDATE_EXCLUSIVE},
    {AT(ClusterOn), OSC_LOCK_SHARE_UPDATE_EXCLUSIVE},
    {AT(DropCluster), OSC_LOCK_SHARE_UPDATE_EXCLUSIVE},
    {AT(ValidateConstraint), OSC_LOCK_SHARE_UPDATE_EXCLUSIVE},
    {AT(EnableTrig), OSC_LOCK_SHARE_ROW_EXCLUSIVE},
    {AT(EnableAlwaysTrig), OSC_LOCK_SHARE_ROW_EXCLUSIVE},
    {AT(EnableReplicaTrig), OSC_LOCK_SHARE_ROW_EXCLUSIVE},
    {AT(DisableTrig), OSC_LOCK_SHARE_ROW_EXCLUSIVE},
    {AT(EnableTrigAll), OSC_LOCK_SHARE_ROW_EXCLUSIVE},
    {AT(DisableTrigAll), OSC_LOCK_SHARE_ROW_EXCLUSIVE},
    {AT(EnableTrigUser), OSC_LOCK_SHARE_ROW_EXCLUSIVE},
    {AT(DisableTrigUser), OSC_LOCK_SHARE_ROW_EXCLUSIVE},
    {AT(AlterConstraint), 0},
    {AT(ChangeOwner), 0},
    {AT(EnableRule), 0},
    {AT(EnableAlwaysRule), 0},
    {AT(EnableReplicaRule), 0},
    {AT(DisableRule), 0},
    {AT(ReplicaIdentity), 0},
    {AT(EnableRowSecurity), 0},
    {AT(DisableRowSecurity), 0},
    {AT(ForceRowSecurity), 0},
    {AT(NoForceRowSecurity), 0},
};

/* catalog_subcmds' entry for t, or -1. */
static int catalog_entry(at_type t)
{
    for (size_t i = 0; i < sizeof catalog_subcmds / sizeof catalog_subcmds[0]; i++)
        if (catalog_subcmds[i].t == t)
            return (int)i;
    return -1;
}

/* The lock of a subcommand when less than ACCESS EXCLUSIVE, but ADD FOREIGN KEY (decided on
 * its constraint); 0 for the rest (AlterTableGetLockLevel, tablecmds.c). */
static int lock_level_of(at_type t)
{
    int i = catalog_entry(t);
    return t == AT(SetStatistics) ? OSC_LOCK_SHARE_UPDATE_EXCLUSIVE : i >= 0 ? catalog_subcmds[i].lock : 0;
}

static osc_cmd_kind kind_of(at_type t)
{
    if (t == PG_QUERY__ALTER_TABLE_TYPE__AT_ValidateConstraint)
        return OSC_CMD_VALIDATE_CONSTRAINT;
    if (catalog_entry(t) >= 0)
        return OSC_CMD_CATALOG;
    switch (t) {
    case PG_QUERY__ALTER_TABLE_TYPE__AT_AddColumn:
        return OSC_CMD_ADD_COLUMN;
    case PG_QUERY__ALTER_TABLE_TYPE__AT_DropColumn:
        return OSC_CMD_DROP_COLUMN;
    case PG_QUERY__ALTER_TABLE_TYPE__AT_AlterColumnType:
        return OSC_CMD_ALTER_TYPE;
    case PG_QUERY__ALTER_TABLE_TYPE__AT_ColumnDefault:
        return OSC_CMD_SET_DEFAULT;
    case PG_QUERY__ALTER_TABLE_TYPE__AT_SetNotNull:
    case PG_QUERY__ALTER_TABLE_TYPE__AT_DropNotNull:
        return OSC_CMD_NOT_NULL;
    case PG_QUERY__ALTER_TABLE_TYPE__AT_AddConstraint:
        return OSC_CMD_ADD_CONSTRAINT;
    case PG_QUERY__ALTER_TABLE_TYPE__AT_DropConstraint:
        return OSC_CMD_DROP_CONSTRAINT;
    default:
        return OSC_CMD_COLUMN_OPTION;
    }
}

/* See osc_stmt.h. */
PgQuery__ParseResult *osc_stmt_parse_tree(const char *sql, PgQueryProtobufParseResult *raw,
                                          char *err, size_t errlen)
{
    *raw = pg_query_parse_protobuf(sql);
    if (raw->error) {
        snprintf(err, errlen, "syntax error: %s", raw->error->message);
        return NULL;
    }
    PgQuery__ParseResult *tree =
        pg_query__parse_result__unpack(NULL, raw->parse_tree.len, (const uint8_t *)raw->parse_tree.data);
    if (tree == NULL)
        snprintf(err, errlen, "could not read the parse tree");
    return tree;
}

/* The text of one expression node (or, with type set, of "NULL::type" minus the
 * "NULL::"), deparsed by wrapping it in SELECT <expr>; malloc'ed, NULL on failure. */
static char *deparse_expr(PgQuery__Node *expr, PgQuery__TypeName *type)
{
    PgQuery__Node null_const = PG_QUERY__NODE__INIT, cast_node = PG_QUERY__NODE__INIT;
    PgQuery__AConst ac = PG_QUERY__A__CONST__INIT;
    PgQuery__TypeCast tc = PG_QUERY__TYPE_CAST__INIT;
    if (type != NULL) {
        ac.isnull = true;
        null_const.node_case = PG_QUERY__NODE__NODE_A_CONST;
        null_const.a_const = &ac;
        tc.arg = &null_const;
        tc.type_name = type;
        cast_node.node_case = PG_QUERY__NODE__NODE_TYPE_CAST;
        cast_node.type_cast = &tc;
        expr = &cast_node;
    }
    PgQuery__ResTarget rt = PG_QUERY__RES_TARGET__INIT;
    rt.val = expr;
    PgQuery__Node rt_node = PG_QUERY__NODE__INIT;
    rt_node.node_case = PG_QUERY__NODE__NODE_RES_TARGET;
    rt_node.res_target = &rt;
    PgQuery__Node *targets[1] = {&rt_node};
    PgQuery__SelectStmt sel = PG_QUERY__SELECT_STMT__INIT;
    sel.n_target_list = 1;
    sel.target_list = targets;
    sel.limit_option = PG_QUERY__LIMIT_OPTION__LIMIT_OPTION_DEFAULT;
    sel.op = PG_QUERY__SET_OPERATION__SETOP_NONE;
    PgQuery__Node sel_node = PG_QUERY__NODE__INIT;
    sel_node.node_case = PG_QUERY__NODE__NODE_SELECT_STMT;
    sel_node.select_stmt = &sel;
    PgQuery__RawStmt raw = PG_QUERY__RAW_STMT__INIT;
    raw.stmt = &sel_node;
    PgQuery__RawStmt *stmts[1] = {&raw};
    PgQuery__ParseResult pr = PG_QUERY__PARSE_RESULT__INIT;
    pr.version = PG_VERSION_NUM;
    pr.n_stmts = 1;
    pr.stmts = stmts;
    size_t len = pg_query__parse_result__get_packed_size(&pr);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL)
        return NULL;
    pg_query__parse_result__pack(&pr, buf);
    PgQueryDeparseResult d = pg_query_deparse_protobuf((PgQueryProtobuf){.len = len, .data = (char *)buf});
    free(buf);
    char *out = NULL;
    const char *prefix = type ? "SELECT NULL::" : "SELECT ";
    if (d.error == NULL && strncmp(d.query, prefix, strlen(prefix)) == 0)
        out = strdup(d.query + strlen(prefix));
    pg_query_free_deparse_result(d);
    return out;
}

static bool fail(char sqlstate[6], const char *code, char *err, size_t errlen, const char *msg)
{
    memcpy(sqlstate, code, 6);
    snprintf(err, errlen, "%s", msg);
    return false;
}

/* A PRIMARY KEY or UNIQUE constraint whose index CREATE UNIQUE INDEX CONCURRENTLY can
 * build as it is: on columns (no USING INDEX), no WITH (…), no index tablespace. */
static bool key_buildable(const PgQuery__Constraint *k)
{
    return (k->contype == PG_QUERY__CONSTR_TYPE__CONSTR_PRIMARY ||
            k->contype == PG_QUERY__CONSTR_TYPE__CONSTR_UNIQUE) &&
           k->n_keys > 0 && k->n_keys <= OSC_MAX_KEY_COLS && (k->indexname == NULL || !*k->indexname) &&
           k->n_options == 0 && (k->indexspace == NULL || !*k->indexspace);
}

/* Append `"a", "b"` for a list of String nodes. */
static void ident_list(osc_sb *b, PgQuery__Node **names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        osc_sb_addf(b, "%s", i ? ", " : "");
        osc_sb_ident(b, names[i]->string ? names[i]->string->sval : "");
    }
}

bool osc_stmt_key(const char *sql, osc_key_stmt *out)
{
    memset(out, 0, sizeof *out);
    char err[256];
    PgQueryProtobufParseResult raw;
    PgQuery__ParseResult *tree = osc_stmt_parse_tree(sql, &raw, err, sizeof err);
    bool ok = false;
    if (tree == NULL || tree->n_stmts != 1 ||
        tree->stmts[0]->stmt->node_case != PG_QUERY__NODE__NODE_ALTER_TABLE_STMT)
        goto done;
    PgQuery__AlterTableStmt *a = tree->stmts[0]->stmt->alter_table_stmt;
    PgQuery__AlterTableCmd *c = a->n_cmds == 1 ? a->cmds[0]->alter_table_cmd : NULL;
    if (c == NULL || c->subtype != PG_QUERY__ALTER_TABLE_TYPE__AT_AddConstraint || c->def == NULL ||
        c->def->constraint == NULL || !key_buildable(c->def->constraint))
        goto done;
    PgQuery__Constraint *k = c->def->constraint;
    out->primary = k->contype == PG_QUERY__CONSTR_TYPE__CONSTR_PRIMARY;
    out->conname = dup_or_null(k->conname);
    for (size_t i = 0; i < k->n_keys; i++)
        out->keys[out->nkeys++] = strdup(k->keys[i]->string ? k->keys[i]->string->sval : "");
    osc_sb b = {0};
    osc_sb_addf(&b, "(");
    ident_list(&b, k->keys, k->n_keys);
    osc_sb_addf(&b, ")");
    if (k->n_including > 0) {
        osc_sb_addf(&b, " INCLUDE (");
        ident_list(&b, k->including, k->n_including);
        osc_sb_addf(&b, ")");
    }
    if (k->nulls_not_distinct)
        osc_sb_addf(&b, " NULLS NOT DISTINCT");
    out->columns = osc_sb_take(&b);
    out->attributes = strdup(k->deferrable ? k->initdeferred ? "DEFERRABLE INITIALLY DEFERRED"
                                                              : "DEFERRABLE" : "");
    ok = out->columns && out->attributes;
    for (int i = 0; i < out->nkeys; i++)
        ok &= out->keys[i] != NULL;
done:
    if (tree)
        pg_query__parse_result__free_unpacked(tree, NULL);
    pg_query_free_protobuf_parse_result(raw);
    if (!ok)
        osc_key_free(out);
    return ok;
}

void osc_key_free(osc_key_stmt *k)
{
    free(k->conname);
    for (int i = 0; i < k->nkeys; i++)
        free(k->keys[i]);
    free(k->columns);
    free(k->attributes);
    memset(k, 0, sizeof *k);
}

bool osc_stmt_parse(const char *sql, osc_stmt *out, char sqlstate[6], char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    PgQueryProtobufParseResult raw;
    PgQuery__ParseResult *tree = osc_stmt_parse_tree(sql, &raw, err, errlen);
    bool ok = false;
    if (tree == NULL) {
        memcpy(sqlstate, "42601", 6);
        goto done;
    }
    if (tree->n_stmts != 1) {
        fail(sqlstate, "42601", err, errlen,
             tree->n_stmts == 0 ? "empty statement: give one ALTER TABLE"
                                : "several statements: give exactly one ALTER TABLE per "
                                  "migration (several subcommands, comma-separated, are fine)");
        goto done;
    }
    PgQuery__Node *n = tree->stmts[0]->stmt;
    if (n->node_case == PG_QUERY__NODE__NODE_RENAME_STMT) {
        PgQuery__RenameStmt *r = n->rename_stmt;
        if (r->rename_type != PG_QUERY__OBJECT_TYPE__OBJECT_COLUMN ||
            r->relation_type != PG_QUERY__OBJECT_TYPE__OBJECT_TABLE) {
            fail(sqlstate, "0A000", err, errlen,
                 "only RENAME COLUMN is done online; renaming a table or constraint is "
                 "instant: run it directly");
            goto done;
        }
        out->schema = dup_or_null(r->relation->schemaname);
        out->table = strdup(r->relation->relname);
        out->ncmds = 1;
        out->cmds[0] = (osc_cmd){.kind = OSC_CMD_RENAME_COLUMN, .column = strdup(r->subname), .new_name = strdup(r->newname), .lock_level = OSC_LOCK_ACCESS_EXCLUSIVE};
        ok = true;
        goto done;
    }
    if (n->node_case != PG_QUERY__NODE__NODE_ALTER_TABLE_STMT ||
        n->alter_table_stmt->objtype != PG_QUERY__OBJECT_TYPE__OBJECT_TABLE) {
        fail(sqlstate, "42601", err, errlen,
             "not an ALTER TABLE: the console runs online changes of one table "
             "(ALTER TABLE name …); type HELP for the other commands");
        goto done;
    }
    PgQuery__AlterTableStmt *a = n->alter_table_stmt;
    if (a->n_cmds > OSC_MAX_SUBCMDS) {
        fail(sqlstate, "0A000", err, errlen, "too many subcommands (at most 32)");
        goto done;
    }
    out->schema = dup_or_null(a->relation->schemaname);
    out->table = strdup(a->relation->relname);
    for (size_t i = 0; i < a->n_cmds; i++) {
        PgQuery__AlterTableCmd *c = a->cmds[i]->alter_table_cmd;
        const char *why = c ? refusal(c->subtype) : "unexpected subcommand";
        if (why) {
            fail(sqlstate, "0A000", err, errlen, why);
            goto done;
        }
        osc_cmd *oc = &out->cmds[out->ncmds++];
        oc->kind = kind_of(c->subtype);
        oc->sets_not_null = c->subtype == PG_QUERY__ALTER_TABLE_TYPE__AT_SetNotNull;
        /* AlterTableGetLockLevel (tablecmds.c) for the subcommands accepted here. */
        oc->lock_level = lock_level_of(c->subtype) ? lock_level_of(c->subtype)
                         : c->subtype == PG_QUERY__ALTER_TABLE_TYPE__AT_AddConstraint && c->def &&
                                 c->def->constraint &&
                                 c->def->constraint->contype == PG_QUERY__CONSTR_TYPE__CONSTR_FOREIGN
                             ? OSC_LOCK_SHARE_ROW_EXCLUSIVE
                             : OSC_LOCK_ACCESS_EXCLUSIVE;
        oc->scans = c->subtype == PG_QUERY__ALTER_TABLE_TYPE__AT_SetNotNull ||
                    c->subtype == PG_QUERY__ALTER_TABLE_TYPE__AT_AddConstraint;
        if (c->subtype == PG_QUERY__ALTER_TABLE_TYPE__AT_AddConstraint && c->def && c->def->constraint) {
            PgQuery__Constraint *k = c->def->constraint;
            oc->validatable = !k->skip_validation && (k->contype == PG_QUERY__CONSTR_TYPE__CONSTR_CHECK ||
                                                      k->contype == PG_QUERY__CONSTR_TYPE__CONSTR_FOREIGN);
            oc->scans = !k->skip_validation || (k->contype != PG_QUERY__CONSTR_TYPE__CONSTR_CHECK &&
                                                k->contype != PG_QUERY__CONSTR_TYPE__CONSTR_FOREIGN);
            oc->key_index = key_buildable(k);
        }
        if (oc->kind == OSC_CMD_ADD_COLUMN && c->def && c->def->column_def)
            for (size_t k = 0; k < c->def->column_def->n_constraints; k++) {
                PgQuery__Node *n = c->def->column_def->constraints[k];
                PgQuery__ConstrType t = n->constraint ? n->constraint->contype : 0;
                oc->scans |= t == PG_QUERY__CONSTR_TYPE__CONSTR_CHECK ||
                             t == PG_QUERY__CONSTR_TYPE__CONSTR_PRIMARY ||
                             t == PG_QUERY__CONSTR_TYPE__CONSTR_UNIQUE ||
                             t == PG_QUERY__CONSTR_TYPE__CONSTR_EXCLUSION ||
                             t == PG_QUERY__CONSTR_TYPE__CONSTR_FOREIGN;
            }
        oc->column = dup_or_null(c->name);
        if (oc->kind == OSC_CMD_ADD_COLUMN && c->def && c->def->column_def)
            oc->column = dup_or_null(c->def->column_def->colname);
        if (oc->kind == OSC_CMD_ALTER_TYPE && c->def && c->def->column_def) {
            PgQuery__ColumnDef *cd = c->def->column_def;
            oc->has_using = cd->raw_default != NULL;
            if (oc->has_using && (oc->using_expr = deparse_expr(cd->raw_default, NULL)) == NULL) {
                fail(sqlstate, "42601", err, errlen, "could not read the USING expression");
                goto done;
            }
            oc->type_name = deparse_expr(NULL, cd->type_name);
        }
    }
    ok = true;
done:
    if (tree)
        pg_query__parse_result__free_unpacked(tree, NULL);
    pg_query_free_protobuf_parse_result(raw);
    if (!ok)
        osc_stmt_free(out);
    return ok;
}

void osc_stmt_free(osc_stmt *s)
{
    free(s->schema);
    free(s->table);
    for (int i = 0; i < s->ncmds; i++) {
        free(s->cmds[i].column);
        free(s->cmds[i].new_name);
        free(s->cmds[i].using_expr);
        free(s->cmds[i].type_name);
    }
    memset(s, 0, sizeof *s);
}

char *osc_stmt_deparse_tree(PgQuery__ParseResult *tree, char *err, size_t errlen)
{
    size_t len = pg_query__parse_result__get_packed_size(tree);
    uint8_t *buf = malloc(len ? len : 1);
    char *result = NULL;
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pg_query__parse_result__pack(tree, buf);
    PgQueryProtobuf pb = {.len = len, .data = (char *)buf};
    PgQueryDeparseResult d = pg_query_deparse_protobuf(pb);
    free(buf);
    if (d.error)
        snprintf(err, errlen, "deparse: %s", d.error->message);
    else if ((result = strdup(d.query)) == NULL)
        snprintf(err, errlen, "out of memory");
    pg_query_free_deparse_result(d);
    return result;
}

char *osc_stmt_retarget(const char *sql, const char *schema, const char *table, char *err,
                        size_t errlen)
{
    PgQueryProtobufParseResult raw;
    PgQuery__ParseResult *tree = osc_stmt_parse_tree(sql, &raw, err, errlen);
    char *result = NULL;
    if (tree == NULL || tree->n_stmts != 1)
        goto done;
    PgQuery__Node *n = tree->stmts[0]->stmt;
    PgQuery__RangeVar *rv = n->node_case == PG_QUERY__NODE__NODE_ALTER_TABLE_STMT
                                ? n->alter_table_stmt->relation
                            : n->node_case == PG_QUERY__NODE__NODE_RENAME_STMT
                                ? n->rename_stmt->relation
                                : NULL;
    if (rv == NULL) {
        snprintf(err, errlen, "not an ALTER TABLE");
        goto done;
    }
    /* The tree owns its strings via protobuf-c's allocator (malloc): swap them. */
    /* Unset strings point at protobuf-c's shared empty string: never free that one. */
    if (rv->schemaname != protobuf_c_empty_string)
        free(rv->schemaname);
    if (rv->relname != protobuf_c_empty_string)
        free(rv->relname);
    rv->schemaname = strdup(schema);
    rv->relname = strdup(table);
    if (rv->schemaname == NULL || rv->relname == NULL)
        snprintf(err, errlen, "out of memory");
    else
        result = osc_stmt_deparse_tree(tree, err, errlen);
done:
    if (tree)
        pg_query__parse_result__free_unpacked(tree, NULL);
    pg_query_free_protobuf_parse_result(raw);
    return result;
}

void osc_idx_free(osc_idx_stmt *s)
{
    free(s->schema);
    free(s->name);
    free(s->index);
    free(s->sql);
    memset(s, 0, sizeof *s);
}

static bool set_name(osc_idx_stmt *out, const char *schema, const char *name)
{
    out->schema = schema && *schema ? strdup(schema) : NULL;
    out->name = strdup(name);
    return out->name != NULL;
}

bool osc_stmt_index(const char *sql, bool *is_index, osc_idx_stmt *out, char sqlstate[6],
                    char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    *is_index = false;
    PgQueryProtobufParseResult raw;
    PgQuery__ParseResult *tree = osc_stmt_parse_tree(sql, &raw, err, errlen);
    bool ok = false;
    if (tree == NULL || tree->n_stmts != 1) {
        if (tree)
            pg_query__parse_result__free_unpacked(tree, NULL);
        pg_query_free_protobuf_parse_result(raw);
        return false; /* not ours: the caller reports what it is */
    }
    PgQuery__Node *n = tree->stmts[0]->stmt;
    if (n->node_case == PG_QUERY__NODE__NODE_INDEX_STMT) {
        *is_index = true;
        PgQuery__IndexStmt *ix = n->index_stmt;
        out->kind = OSC_IDX_CREATE;
        out->unique = ix->unique;
        out->index = ix->idxname && *ix->idxname ? strdup(ix->idxname) : NULL;
        if (!set_name(out, ix->relation->schemaname, ix->relation->relname))
            goto oom;
        ix->concurrent = true;
        if ((out->sql = osc_stmt_deparse_tree(tree, err, errlen)) == NULL)
            fail(sqlstate, "42601", err, errlen, "cannot rewrite the statement CONCURRENTLY");
        ok = out->sql != NULL;
    } else if (n->node_case == PG_QUERY__NODE__NODE_DROP_STMT &&
               n->drop_stmt->remove_type == PG_QUERY__OBJECT_TYPE__OBJECT_INDEX) {
        *is_index = true;
        PgQuery__DropStmt *dr = n->drop_stmt;
        out->kind = OSC_IDX_DROP;
        if (dr->n_objects != 1 || dr->objects[0]->node_case != PG_QUERY__NODE__NODE_LIST) {
            fail(sqlstate, "0A000", err, errlen, "drop one index per statement (DROP INDEX "
                                                 "CONCURRENTLY takes one)");
            goto done;
        }
        if (dr->behavior == PG_QUERY__DROP_BEHAVIOR__DROP_CASCADE) {
            fail(sqlstate, "0A000", err, errlen, "DROP INDEX … CASCADE cannot run concurrently: "
                                                 "drop what depends on the index first");
            goto done;
        }
        PgQuery__List *names = dr->objects[0]->list;
        const char *parts[3] = {NULL, NULL, NULL};
        for (size_t i = 0; i < names->n_items && i < 3; i++)
            parts[i] = names->items[i]->node_case == PG_QUERY__NODE__NODE_STRING
                           ? names->items[i]->string->sval
                           : "";
        bool two = names->n_items == 2;
        if (names->n_items > 2 || !set_name(out, two ? parts[0] : NULL, two ? parts[1] : parts[0]))
            goto oom;
        osc_sb b = {0};
        osc_sb_addf(&b, "DROP INDEX CONCURRENTLY %s", dr->missing_ok ? "IF EXISTS " : "");
        osc_sb_qualified(&b, out->schema, out->name);
        ok = (out->sql = osc_sb_take(&b)) != NULL;
    } else if (n->node_case == PG_QUERY__NODE__NODE_REINDEX_STMT) {
        *is_index = true;
        PgQuery__ReindexStmt *re = n->reindex_stmt;
        if (re->kind != PG_QUERY__REINDEX_OBJECT_TYPE__REINDEX_OBJECT_INDEX &&
            re->kind != PG_QUERY__REINDEX_OBJECT_TYPE__REINDEX_OBJECT_TABLE) {
            fail(sqlstate, "0A000", err, errlen, "REINDEX SCHEMA, DATABASE and SYSTEM are not run "
                                                 "online: reindex the tables or indexes one by one");
            goto done;
        }
        bool table = re->kind == PG_QUERY__REINDEX_OBJECT_TYPE__REINDEX_OBJECT_TABLE;
        out->kind = table ? OSC_IDX_REINDEX_TABLE : OSC_IDX_REINDEX_INDEX;
        if (!set_name(out, re->relation->schemaname, re->relation->relname))
            goto oom;
        osc_sb b = {0};
        osc_sb_addf(&b, "REINDEX (CONCURRENTLY) %s ", table ? "TABLE" : "INDEX");
        osc_sb_qualified(&b, out->schema, out->name);
        ok = (out->sql = osc_sb_take(&b)) != NULL;
    }
    goto done;
oom:
    fail(sqlstate, "53200", err, errlen, "out of memory");
done:
    pg_query__parse_result__free_unpacked(tree, NULL);
    pg_query_free_protobuf_parse_result(raw);
    if (!ok)
        osc_idx_free(out);
    return ok;
}

bool osc_stmt_direct(const char *sql, const char **kind)
{
    static const struct {
        PgQuery__Node__NodeCase node;
        const char *kind;
    } direct[] = {
        {PG_QUERY__NODE__NODE_CREATE_STMT, "CREATE TABLE"},
        {PG_QUERY__NODE__NODE_VIEW_STMT, "CREATE VIEW"},
        {PG_QUERY__NODE__NODE_CREATE_TABLE_AS_STMT, "CREATE TABLE AS / MATERIALIZED VIEW"},
        {PG_QUERY__NODE__NODE_CREATE_FUNCTION_STMT, "CREATE FUNCTION"},
        {PG_QUERY__NODE__NODE_ALTER_FUNCTION_STMT, "ALTER FUNCTION"},
        {PG_QUERY__NODE__NODE_DROP_STMT, "DROP"},
        {PG_QUERY__NODE__NODE_RENAME_STMT, "RENAME"},
        {PG_QUERY__NODE__NODE_COMMENT_STMT, "COMMENT"},
        {PG_QUERY__NODE__NODE_GRANT_STMT, "GRANT/REVOKE"},
        {PG_QUERY__NODE__NODE_ALTER_DEFAULT_PRIVILEGES_STMT, "ALTER DEFAULT PRIVILEGES"},
        {PG_QUERY__NODE__NODE_CREATE_SEQ_STMT, "CREATE SEQUENCE"},
        {PG_QUERY__NODE__NODE_ALTER_SEQ_STMT, "ALTER SEQUENCE"},
        {PG_QUERY__NODE__NODE_DEFINE_STMT, "CREATE AGGREGATE/OPERATOR/TYPE"},
        {PG_QUERY__NODE__NODE_COMPOSITE_TYPE_STMT, "CREATE TYPE"},
        {PG_QUERY__NODE__NODE_CREATE_ENUM_STMT, "CREATE TYPE AS ENUM"},
        {PG_QUERY__NODE__NODE_ALTER_ENUM_STMT, "ALTER TYPE (enum)"},
        {PG_QUERY__NODE__NODE_CREATE_RANGE_STMT, "CREATE TYPE AS RANGE"},
        {PG_QUERY__NODE__NODE_ALTER_TYPE_STMT, "ALTER TYPE"},
        {PG_QUERY__NODE__NODE_CREATE_DOMAIN_STMT, "CREATE DOMAIN"},
        {PG_QUERY__NODE__NODE_ALTER_DOMAIN_STMT, "ALTER DOMAIN"},
        {PG_QUERY__NODE__NODE_CREATE_SCHEMA_STMT, "CREATE SCHEMA"},
        {PG_QUERY__NODE__NODE_ALTER_OWNER_STMT, "ALTER … OWNER TO"},
        {PG_QUERY__NODE__NODE_ALTER_OBJECT_SCHEMA_STMT, "ALTER … SET SCHEMA"},
        {PG_QUERY__NODE__NODE_CREATE_TRIG_STMT, "CREATE TRIGGER"},
        {PG_QUERY__NODE__NODE_CREATE_POLICY_STMT, "CREATE POLICY"},
        {PG_QUERY__NODE__NODE_ALTER_POLICY_STMT, "ALTER POLICY"},
        {PG_QUERY__NODE__NODE_RULE_STMT, "CREATE RULE"},
        {PG_QUERY__NODE__NODE_CREATE_STATS_STMT, "CREATE STATISTICS"},
        {PG_QUERY__NODE__NODE_ALTER_STATS_STMT, "ALTER STATISTICS"},
        {PG_QUERY__NODE__NODE_ALTER_TABLE_STMT, "ALTER VIEW/SEQUENCE/INDEX/MATERIALIZED VIEW"},
    };
    *kind = NULL;
    char err[256];
    PgQueryProtobufParseResult raw;
    PgQuery__ParseResult *tree = osc_stmt_parse_tree(sql, &raw, err, sizeof err);
    if (tree != NULL && tree->n_stmts == 1) {
        PgQuery__Node *n = tree->stmts[0]->stmt;
        for (size_t i = 0; i < sizeof direct / sizeof direct[0] && *kind == NULL; i++)
            if (n->node_case == direct[i].node)
                *kind = direct[i].kind;
        /* Planned or run concurrently instead: ALTER TABLE (also its RENAME COLUMN and
         * RENAME CONSTRAINT), DROP INDEX. */
        if (n->node_case == PG_QUERY__NODE__NODE_ALTER_TABLE_STMT &&
            n->alter_table_stmt->objtype == PG_QUERY__OBJECT_TYPE__OBJECT_TABLE)
            *kind = NULL;
        if (n->node_case == PG_QUERY__NODE__NODE_RENAME_STMT &&
            n->rename_stmt->relation_type == PG_QUERY__OBJECT_TYPE__OBJECT_TABLE &&
            (n->rename_stmt->rename_type == PG_QUERY__OBJECT_TYPE__OBJECT_COLUMN ||
             n->rename_stmt->rename_type == PG_QUERY__OBJECT_TYPE__OBJECT_TABCONSTRAINT))
            *kind = NULL;
        if (n->node_case == PG_QUERY__NODE__NODE_DROP_STMT &&
            n->drop_stmt->remove_type == PG_QUERY__OBJECT_TYPE__OBJECT_INDEX)
            *kind = NULL;
    }
    if (tree)
        pg_query__parse_result__free_unpacked(tree, NULL);
    pg_query_free_protobuf_parse_result(raw);
    return *kind != NULL;
}

char *osc_stmt_not_valid(const char *sql, char *err, size_t errlen)
{
    PgQueryProtobufParseResult raw;
    PgQuery__ParseResult *tree = osc_stmt_parse_tree(sql, &raw, err, errlen);
    char *result = NULL;
    if (tree == NULL || tree->n_stmts != 1 ||
        tree->stmts[0]->stmt->node_case != PG_QUERY__NODE__NODE_ALTER_TABLE_STMT) {
        snprintf(err, errlen, "not an ALTER TABLE");
        goto done;
    }
    PgQuery__AlterTableStmt *a = tree->stmts[0]->stmt->alter_table_stmt;
    size_t kept = 0;
    for (size_t i = 0; i < a->n_cmds; i++) {
        PgQuery__AlterTableCmd *c = a->cmds[i]->alter_table_cmd;
        if (c && c->subtype == PG_QUERY__ALTER_TABLE_TYPE__AT_SetNotNull) {
            pg_query__node__free_unpacked(a->cmds[i], NULL); /* the caller's helper CHECK */
            continue;
        }
        if (c && c->subtype == PG_QUERY__ALTER_TABLE_TYPE__AT_AddConstraint && c->def &&
            c->def->constraint &&
            (c->def->constraint->contype == PG_QUERY__CONSTR_TYPE__CONSTR_CHECK ||
             c->def->constraint->contype == PG_QUERY__CONSTR_TYPE__CONSTR_FOREIGN)) {
            c->def->constraint->skip_validation = true;
            c->def->constraint->initially_valid = false;
        }
        a->cmds[kept++] = a->cmds[i];
    }
    a->n_cmds = kept;
    result = kept ? osc_stmt_deparse_tree(tree, err, errlen) : strdup("");
    if (result == NULL && !kept)
        snprintf(err, errlen, "out of memory");
done:
    if (tree)
        pg_query__parse_result__free_unpacked(tree, NULL);
    pg_query_free_protobuf_parse_result(raw);
    return result;
}

/* Whether objects of type t are relations (a table's lock). */
static bool relation_object(PgQuery__ObjectType t)
{
    return t == PG_QUERY__OBJECT_TYPE__OBJECT_TABLE || t == PG_QUERY__OBJECT_TYPE__OBJECT_VIEW ||
           t == PG_QUERY__OBJECT_TYPE__OBJECT_MATVIEW || t == PG_QUERY__OBJECT_TYPE__OBJECT_SEQUENCE ||
           t == PG_QUERY__OBJECT_TYPE__OBJECT_FOREIGN_TABLE || t == PG_QUERY__OBJECT_TYPE__OBJECT_INDEX ||
           t == PG_QUERY__OBJECT_TYPE__OBJECT_COLUMN;
}

/* Whether a CREATE TABLE's columns or table constraints have a FOREIGN KEY. */
static bool has_foreign_key(const PgQuery__CreateStmt *cs)
{
    for (size_t i = 0; i < cs->n_table_elts; i++) {
        const PgQuery__Node *e = cs->table_elts[i];
        if (e->node_case == PG_QUERY__NODE__NODE_CONSTRAINT &&
            e->constraint->contype == PG_QUERY__CONSTR_TYPE__CONSTR_FOREIGN)
            return true;
        for (size_t k = 0; e->node_case == PG_QUERY__NODE__NODE_COLUMN_DEF &&
                           k < e->column_def->n_constraints; k++)
            if (e->column_def->constraints[k]->node_case == PG_QUERY__NODE__NODE_CONSTRAINT &&
                e->column_def->constraints[k]->constraint->contype == PG_QUERY__CONSTR_TYPE__CONSTR_FOREIGN)
                return true;
    }
    return false;
}

bool osc_stmt_direct_facts(const char *sql, osc_direct_facts *out)
{
    memset(out, 0, sizeof *out);
    char err[256];
    PgQueryProtobufParseResult raw;
    PgQuery__ParseResult *tree = osc_stmt_parse_tree(sql, &raw, err, sizeof err);
    bool ok = tree != NULL && tree->n_stmts == 1;
    if (ok) {
        PgQuery__Node *n = tree->stmts[0]->stmt;
        switch (n->node_case) {
        case PG_QUERY__NODE__NODE_DROP_STMT:
            out->drops_table = n->drop_stmt->remove_type == PG_QUERY__OBJECT_TYPE__OBJECT_TABLE;
            out->lock_level = relation_object(n->drop_stmt->remove_type) ? OSC_LOCK_ACCESS_EXCLUSIVE : 0;
            break;
        case PG_QUERY__NODE__NODE_RENAME_STMT:
            out->renames_table = n->rename_stmt->rename_type == PG_QUERY__OBJECT_TYPE__OBJECT_TABLE;
            out->lock_level = n->rename_stmt->relation ? OSC_LOCK_ACCESS_EXCLUSIVE : 0;
            break;
        case PG_QUERY__NODE__NODE_ALTER_OWNER_STMT:
            out->lock_level = relation_object(n->alter_owner_stmt->object_type) ? OSC_LOCK_ACCESS_EXCLUSIVE : 0;
            break;
        case PG_QUERY__NODE__NODE_ALTER_OBJECT_SCHEMA_STMT:
            out->lock_level = relation_object(n->alter_object_schema_stmt->object_type)
                                  ? OSC_LOCK_ACCESS_EXCLUSIVE : 0;
            break;
        case PG_QUERY__NODE__NODE_ALTER_TABLE_STMT: /* of a view, sequence, index … */
        case PG_QUERY__NODE__NODE_CREATE_POLICY_STMT:
        case PG_QUERY__NODE__NODE_ALTER_POLICY_STMT:
        case PG_QUERY__NODE__NODE_RULE_STMT:
            out->lock_level = OSC_LOCK_ACCESS_EXCLUSIVE;
            break;
        case PG_QUERY__NODE__NODE_CREATE_TRIG_STMT:
            out->lock_level = OSC_LOCK_SHARE_ROW_EXCLUSIVE;
            break;
        case PG_QUERY__NODE__NODE_CREATE_STMT:
            out->lock_level = has_foreign_key(n->create_stmt) ? OSC_LOCK_SHARE_ROW_EXCLUSIVE : 0;
            break;
        case PG_QUERY__NODE__NODE_COMMENT_STMT:
            out->lock_level = relation_object(n->comment_stmt->objtype) ? OSC_LOCK_SHARE_UPDATE_EXCLUSIVE : 0;
            break;
        case PG_QUERY__NODE__NODE_CREATE_STATS_STMT:
            out->lock_level = OSC_LOCK_SHARE_UPDATE_EXCLUSIVE;
            break;
        case PG_QUERY__NODE__NODE_VIEW_STMT:
        case PG_QUERY__NODE__NODE_CREATE_TABLE_AS_STMT:
            out->lock_level = OSC_LOCK_ACCESS_SHARE;
            break;
        default:
            break;
        }
    }
    if (tree)
        pg_query__parse_result__free_unpacked(tree, NULL);
    pg_query_free_protobuf_parse_result(raw);
    return ok;
}
