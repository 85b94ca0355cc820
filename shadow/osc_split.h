/*
 * osc_split.h — one migration file's text split into the steps the engine runs (issue
 * 15), by libpg_query (the real PostgreSQL parser): statements, BEGIN … COMMIT blocks,
 * and the `-- pgcutover:batched` marker. Never by splitting on ';': dollar-quoted bodies,
 * E'' strings, quoted identifiers, nested comments and SQL-standard BEGIN ATOMIC bodies
 * are the parser's business. Pure code: no database access.
 *
 * How: one pg_query_parse_protobuf of the whole text gives each statement's range
 * (RawStmt stmt_location/stmt_len — the very ranges pg_query_split_with_parser returns,
 * which walks the same raw parse tree; libpg_query src/pg_query_split.c) together with
 * its node, so a file is parsed once; one pg_query_scan gives the tokens (comments
 * included) that place each statement's first and last token and find the markers.
 *
 * Rules (the unit test tests/unit/test_osc_split.c holds each):
 * - Statements: empty ones (`;;`) and text that is only comments give no step; an empty
 *   file gives 0 steps. A statement's text runs from its first token to its last, exactly
 *   as in the file (comments inside kept; comments before it, comments between its last
 *   token and its ';', and the ';' left out). Its line is the 1-based line of its first
 *   token (lines end at '\n'; CRLF files count the same).
 * - Blocks: BEGIN [WORK|TRANSACTION] or START TRANSACTION opens a block closed by COMMIT
 *   [WORK|TRANSACTION] or END; the statements between form one OSC_STEP_BLOCK (the BEGIN
 *   and COMMIT are not in it); an empty block is no step. Told from the parse tree
 *   (TransactionStmt kind), so a plpgsql body's BEGIN … END or a DO block's COMMIT is
 *   not a block. Refused (0A000, "line N: …", N the statement's line): a block never
 *   closed (N: its BEGIN), COMMIT without BEGIN, BEGIN inside a block, ROLLBACK/ABORT,
 *   SAVEPOINT, RELEASE, ROLLBACK TO, PREPARE TRANSACTION, COMMIT/ROLLBACK PREPARED, COMMIT
 *   AND CHAIN, and transaction modes on BEGIN/START TRANSACTION other than the defaults
 *   READ WRITE and NOT DEFERRABLE (an isolation level, READ ONLY, DEFERRABLE): the engine
 *   runs a block in its own transaction.
 * - Batched marker: a line comment whose text after `--` and optional blanks is
 *   `pgcutover:batched` (any case), followed by nothing but blanks, found between the
 *   previous statement's end (its ';') and this statement's first token, marks this
 *   statement OSC_STEP_BATCHED. Other comments and blank lines may stand between the
 *   marker and the statement, before or after it: everything in that gap precedes this
 *   statement and no other. Refused, with the marker's line: a marker on the line where
 *   the previous statement (or its ';') ends (`UPDATE a …; -- pgcutover:batched` reads
 *   as marking that UPDATE but would mark the next statement — put the marker on its own
 *   line); a marker inside a statement (between its first token and its ';', which would
 *   otherwise be silently ignored); a marker after the last statement; a marked statement
 *   other than UPDATE or DELETE; a marked statement inside a block (a batched statement
 *   commits batch by batch, it cannot be part of an atomic step). A line comment that
 *   starts `pgcutover:` followed by a letter but is not exactly the marker (a typo such
 *   as `-- pgcutover:batch`, or words after it) is refused with 42601, wherever it is, so
 *   a mistyped marker never turns a batched UPDATE into one long transaction. Text in a
 *   string literal, a dollar-quoted body or a block comment is never a marker.
 * - Syntax errors (42601) name the line of the parser's error position (a psql
 *   meta-command such as \connect or \i is one, with a hint); for the few errors the
 *   parser reports without a position, the line of the first statement that fails to
 *   parse on its own.
 */
#ifndef OSC_SPLIT_H
#define OSC_SPLIT_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    OSC_STEP_ONE,     /* one statement */
    OSC_STEP_BLOCK,   /* BEGIN … COMMIT in the file: its statements (without the BEGIN/COMMIT),
                       * to run as one atomic step */
    OSC_STEP_BATCHED, /* one UPDATE or DELETE marked `-- pgcutover:batched` */
} osc_step_kind;

typedef struct {
    osc_step_kind kind;
    int nstmts;   /* >= 1 (1 for OSC_STEP_ONE and OSC_STEP_BATCHED) */
    char **stmts; /* each statement's text exactly as in the file (from its first token
                   * to its last, comments inside kept, no trailing ';'); malloc'ed */
    int *lines;   /* 1-based line in the file where each statement starts */
    int *tags;    /* each statement's node kind: the PgQuery__Node__NodeCase of its
                   * RawStmt (e.g. PG_QUERY__NODE__NODE_ALTER_TABLE_STMT,
                   * <pg_query/pg_query.pb-c.h>), so the engine can classify without
                   * re-parsing */
} osc_step;

typedef struct {
    osc_step *steps; /* in file order; malloc'ed */
    int n;           /* number of steps */
    int nstatements; /* statements in all steps (BEGIN/COMMIT not counted) */
} osc_script;

/*
 * osc_split — split text (a migration file's whole content, NUL-terminated, UTF-8) into
 * steps, by the rules above. On success fills *out (the caller releases it with
 * osc_script_free; an empty or comment-only file gives n == 0) and returns true. On a
 * syntax error or a misuse returns false with *out zeroed, a 5-character SQLSTATE in
 * sqlstate (42601 syntax, 0A000 an unsupported form, 53200 out of memory) and "line N: what
 * is wrong and what to do" in err (truncated to errlen). text NULL: false, 42601, "line 1:
 * no text".
 */
bool osc_split(const char *text, osc_script *out, char sqlstate[6], char *err, size_t errlen);

/* osc_script_free — release everything osc_split allocated and zero *s; safe on a zeroed
 * struct and twice. */
void osc_script_free(osc_script *s);

#endif
