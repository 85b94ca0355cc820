/*
 * osc_stmt.h — the operator's statement, read with libpg_query (the real PostgreSQL
 * parser, protobuf parse tree): exactly one ALTER TABLE (or ALTER TABLE … RENAME
 * COLUMN) on one table; subcommands that move or re-classify the table (SET TABLESPACE,
 * SET LOGGED, partitioning, inheritance, …) are refused. Also
 * retargets the statement at the shadow table by rewriting the parse tree's RangeVar
 * and deparsing it, so names inside literals or defaults are never touched.
 * Pure code: no database access (catalog checks — partitioned, temporary, key — are
 * the engine's, against the live catalog).
 */
#ifndef OSC_STMT_H
#define OSC_STMT_H

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <stdbool.h>
#include <stddef.h>

#define OSC_MAX_SUBCMDS 32

/* Table lock modes by their number in PostgreSQL's lockdefs.h ("Explicit Locking",
 * table 13.2): a greater number conflicts with more. 0: none on an existing table. */
#define OSC_LOCK_ACCESS_SHARE 1
#define OSC_LOCK_ROW_SHARE 2
#define OSC_LOCK_SHARE_UPDATE_EXCLUSIVE 4
#define OSC_LOCK_SHARE_ROW_EXCLUSIVE 6
#define OSC_LOCK_ACCESS_EXCLUSIVE 8

/* What one subcommand does to the data, for the plan's warnings and column mapping. */
typedef enum {
    OSC_CMD_ADD_COLUMN,
    OSC_CMD_DROP_COLUMN,
    OSC_CMD_RENAME_COLUMN,
    OSC_CMD_ALTER_TYPE,
    OSC_CMD_SET_DEFAULT,     /* SET DEFAULT / DROP DEFAULT */
    OSC_CMD_NOT_NULL,        /* SET NOT NULL / DROP NOT NULL */
    OSC_CMD_ADD_CONSTRAINT,
    OSC_CMD_DROP_CONSTRAINT,
    OSC_CMD_COLUMN_OPTION,   /* SET STATISTICS / STORAGE / COMPRESSION, identity options */
    OSC_CMD_CATALOG,         /* catalog only by construction, naming objects a copy lacks:
                              * triggers, rules, row security, owner, (re)set options, replica
                              * identity, CLUSTER ON, ALTER CONSTRAINT (osc_plan_catalog_only) */
    OSC_CMD_VALIDATE_CONSTRAINT, /* VALIDATE CONSTRAINT: scans under SHARE UPDATE EXCLUSIVE */
} osc_cmd_kind;

typedef struct {
    osc_cmd_kind kind;
    char *column;   /* column named by the subcommand, NULL when none; malloc'ed */
    char *new_name; /* RENAME COLUMN: the new name; malloc'ed */
    bool has_using; /* ALTER TYPE … USING */
    char *using_expr; /* ALTER TYPE … USING: the expression, deparsed; malloc'ed */
    char *type_name;  /* ALTER TYPE: the new type, deparsed; malloc'ed */
    bool scans;       /* validates existing rows: SET NOT NULL, ADD CONSTRAINT, a column
                       * added with a CHECK, UNIQUE, PRIMARY KEY, EXCLUDE or REFERENCES */
    bool validatable; /* ADD CONSTRAINT … CHECK | FOREIGN KEY (not NOT VALID already): can be
                       * added NOT VALID and validated apart (osc_stmt_not_valid) */
    bool sets_not_null; /* ALTER COLUMN … SET NOT NULL */
    bool key_index;     /* ADD [CONSTRAINT n] PRIMARY KEY | UNIQUE (columns) without USING
                         * INDEX, WITH (…) or USING INDEX TABLESPACE: its index can be built
                         * CONCURRENTLY first and attached (osc_stmt_key) */
    int lock_level;     /* the lock ALTER TABLE takes on the table for it, as PostgreSQL's
                         * AlterTableGetLockLevel decides (the ALTER TABLE page): a lock mode
                         * number of lockdefs.h, OSC_LOCK_* */
} osc_cmd;

typedef struct {
    char *schema;   /* as written, NULL when unqualified; malloc'ed */
    char *table;    /* malloc'ed */
    int ncmds;
    osc_cmd cmds[OSC_MAX_SUBCMDS];
} osc_stmt;

/*
 * osc_stmt_parse — parse sql into *out. On refusal returns false with a 5-character
 * SQLSTATE in sqlstate (42601 syntax error or not an ALTER TABLE, 0A000 a form a shadow
 * copy cannot express) and a message that says what to do instead in err.
 * On success the caller frees *out with osc_stmt_free.
 */
bool osc_stmt_parse(const char *sql, osc_stmt *out, char sqlstate[6], char *err, size_t errlen);

/*
 * osc_stmt_not_valid — sql (an ALTER TABLE) with every ADD CONSTRAINT … CHECK and FOREIGN
 * KEY made NOT VALID and every ALTER COLUMN … SET NOT NULL left out (the caller proves
 * those with helper CHECKs), deparsed; "" when no subcommand is left. malloc'ed (caller
 * frees), or NULL with err filled.
 */
char *osc_stmt_not_valid(const char *sql, char *err, size_t errlen);

#define OSC_MAX_KEY_COLS 32

/* A primary key or unique constraint to build CONCURRENTLY, then attach USING INDEX. */
typedef struct {
    bool primary;                  /* PRIMARY KEY (else UNIQUE) */
    char *conname;                 /* as written; NULL when PostgreSQL chooses; malloc'ed */
    int nkeys;
    char *keys[OSC_MAX_KEY_COLS];  /* the key columns; malloc'ed */
    char *columns;                 /* `("a", "b") INCLUDE ("c") NULLS NOT DISTINCT`: what
                                    * follows ON table in the CREATE INDEX; malloc'ed */
    char *attributes;              /* `DEFERRABLE INITIALLY DEFERRED` or ""; malloc'ed */
} osc_key_stmt;

/*
 * osc_stmt_key — when sql is an ALTER TABLE whose only subcommand has key_index set
 * (osc_cmd), fill *out (caller osc_key_free's it) and return true; false otherwise,
 * nothing filled. Pure (libpg_query); PostgreSQL's ALTER TABLE page, "ADD
 * table_constraint_using_index".
 */
bool osc_stmt_key(const char *sql, osc_key_stmt *out);
/* osc_key_free — release *k; safe on a zeroed struct. */
void osc_key_free(osc_key_stmt *k);

/* osc_stmt_free — release what osc_stmt_parse allocated; safe on a zeroed struct. */
void osc_stmt_free(osc_stmt *s);

/*
 * osc_stmt_retarget — the same statement aimed at schema.table (both required), as
 * SQL text deparsed from the rewritten parse tree. Returns a malloc'ed string (caller
 * frees) or NULL with err filled.
 */
char *osc_stmt_retarget(const char *sql, const char *schema, const char *table, char *err,
                        size_t errlen);

/* An index statement, run CONCURRENTLY (osc_strategy.h). */
typedef enum { OSC_IDX_CREATE, OSC_IDX_DROP, OSC_IDX_REINDEX_INDEX, OSC_IDX_REINDEX_TABLE } osc_idx_kind;

typedef struct {
    osc_idx_kind kind;
    char *schema, *name; /* CREATE, REINDEX TABLE: the table; DROP, REINDEX INDEX: the index
                          * (schema NULL when unqualified); malloc'ed */
    char *index;         /* CREATE: the new index's name, NULL when PostgreSQL chooses it */
    bool unique;         /* CREATE UNIQUE INDEX */
    char *sql;           /* the statement with CONCURRENTLY; malloc'ed */
} osc_idx_stmt;

/*
 * osc_stmt_index — whether sql is one CREATE INDEX, DROP INDEX or REINDEX INDEX|TABLE
 * statement; when it is, fills *out (caller osc_idx_free's it) or refuses (false with
 * 42601/0A000 in sqlstate and what to do in err: several indexes in one DROP, CASCADE,
 * REINDEX SCHEMA/DATABASE/SYSTEM, a partitioned … ). *is_index says whether sql is one of
 * these at all (false: not an index statement, nothing filled, no error).
 */
bool osc_stmt_index(const char *sql, bool *is_index, osc_idx_stmt *out, char sqlstate[6],
                    char *err, size_t errlen);
/* osc_idx_free — release *s; safe on a zeroed struct. */
void osc_idx_free(osc_idx_stmt *s);

/*
 * osc_stmt_direct — whether sql is one DDL statement the console runs as it is (strategy
 * direct, osc_strategy.h): CREATE/ALTER/DROP of views, functions, sequences, types,
 * domains, schemas, triggers, policies, rules, statistics, tables (not ALTER TABLE, which
 * is planned, nor index statements, which run concurrently), COMMENT, GRANT/REVOKE,
 * ALTER … OWNER/SET SCHEMA/RENAME of such objects. *kind gets a short name of the
 * statement ("CREATE FUNCTION") or NULL. Pure.
 */
bool osc_stmt_direct(const char *sql, const char **kind);

/* What PLAN says of a direct statement (osc_warn.h). */
typedef struct {
    int lock_level;     /* the strongest lock it takes on an existing table (OSC_LOCK_*, 0
                         * none), after the "Explicit Locking" table: DROP/RENAME/ALTER of a
                         * relation, CREATE POLICY/RULE ACCESS EXCLUSIVE; CREATE TRIGGER, a
                         * CREATE TABLE with a FOREIGN KEY (on the referenced table) SHARE ROW
                         * EXCLUSIVE; COMMENT, CREATE STATISTICS SHARE UPDATE EXCLUSIVE; CREATE
                         * VIEW / TABLE AS ACCESS SHARE (the tables it reads) */
    bool drops_table;   /* DROP TABLE */
    bool renames_table; /* ALTER TABLE … RENAME TO */
} osc_direct_facts;

/* osc_stmt_direct_facts — *out for sql (one statement osc_stmt_direct accepts); false
 * (out zeroed) when sql does not parse as one statement. Pure. */
bool osc_stmt_direct_facts(const char *sql, osc_direct_facts *out);

/*
 * osc_stmt_parse_tree — sql parsed by libpg_query into its protobuf tree (pg_query.proto);
 * NULL with err ("syntax error: …", or the tree unreadable) on failure. *raw is always to
 * be released with pg_query_free_protobuf_parse_result, the tree (when not NULL) with
 * pg_query__parse_result__free_unpacked. Shared by the modules that rewrite statements.
 */
PgQuery__ParseResult *osc_stmt_parse_tree(const char *sql, PgQueryProtobufParseResult *raw,
                                          char *err, size_t errlen);

/* osc_stmt_deparse_tree — the SQL text of a (rewritten) tree, by libpg_query's deparser;
 * malloc'ed (caller frees), or NULL with err filled. */
char *osc_stmt_deparse_tree(PgQuery__ParseResult *tree, char *err, size_t errlen);

#endif
