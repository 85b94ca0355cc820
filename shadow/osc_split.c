/* osc_split.c — see osc_split.h. Parse tree and tokens: libpg_query's protobuf
 * (pg_query.proto); transaction statements as in PostgreSQL's parsenodes.h
 * (TransactionStmt) and gram.y (TransactionStmt, transaction_mode_item). */
#include "osc_split.h"

#include <ctype.h>
#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SQLSTATE_SYNTAX "42601"
#define SQLSTATE_UNSUPPORTED "0A000"
#define SQLSTATE_NO_MEMORY "53200"

#define TOK_COMMENT PG_QUERY__TOKEN__SQL_COMMENT     /* -- … */
#define TOK_BLOCK_COMMENT PG_QUERY__TOKEN__C_COMMENT /* / * … * / */
#define TOK_SEMICOLON PG_QUERY__TOKEN__ASCII_59

static bool fail(char sqlstate[6], char *err, size_t errlen, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static bool fail(char sqlstate[6], char *err, size_t errlen, const char *code, const char *fmt, ...)
{
    memcpy(sqlstate, code, 6);
    if (errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return false;
}

/* Line numbers of byte offsets. The walk asks for them in increasing order, so the cursor
 * only moves forward (a file of n bytes costs O(n) in all); an earlier offset restarts. */
typedef struct {
    const char *text;
    size_t pos;
    int line;
} line_cursor;

static int line_at(line_cursor *c, size_t off)
{
    if (off < c->pos) {
        c->pos = 0;
        c->line = 1;
    }
    for (; c->pos < off && c->text[c->pos]; c->pos++)
        if (c->text[c->pos] == '\n')
            c->line++;
    return c->line;
}

static int line_of(const char *text, size_t off)
{
    line_cursor c = {text, 0, 1};
    return line_at(&c, off);
}

/* The byte offset of the 0-based character index n in UTF-8 text: PostgreSQL's error
 * cursor counts characters, not bytes (scanner_errposition, pg_mbstrlen_with_len), and
 * libpg_query parses as UTF-8. Stops at the end of text. */
static size_t byte_of_char(const char *text, int n)
{
    int chars = 0;
    size_t i;
    for (i = 0; text[i]; i++) {
        if (((unsigned char)text[i] & 0xC0) == 0x80)
            continue; /* a continuation byte belongs to the character before it */
        if (chars == n)
            return i;
        chars++;
    }
    return i;
}

/* The offset of the first token of s that is not a comment, or 0 (error path only). */
static size_t first_token_off(const char *s)
{
    size_t off = 0;
    PgQueryScanResult r = pg_query_scan(s);
    if (!r.error) {
        PgQuery__ScanResult *sc =
            pg_query__scan_result__unpack(NULL, r.pbuf.len, (const uint8_t *)r.pbuf.data);
        if (sc) {
            for (size_t i = 0; i < sc->n_tokens; i++)
                if (sc->tokens[i]->token != TOK_COMMENT &&
                    sc->tokens[i]->token != TOK_BLOCK_COMMENT) {
                    off = (size_t)sc->tokens[i]->start;
                    break;
                }
            pg_query__scan_result__free_unpacked(sc, NULL);
        }
    }
    pg_query_free_scan_result(r);
    return off;
}

/*
 * Where an error the parser raised without a position lies (a few grammar actions do, e.g.
 * "OUT and INOUT arguments aren't allowed in TABLE functions"): the scanner-based split
 * cuts text into candidate statements; parse them in order, each chunk starting after the
 * last one that parsed; a chunk that fails with a position ends inside a statement (the
 * scanner split also cuts at a BEGIN ATOMIC body's ';'), so it grows by the next piece;
 * the chunk that fails without one holds the error, at its first token. Error path only.
 */
static bool locate_unpositioned(const char *text, size_t *off)
{
    bool found = false;
    PgQuerySplitResult sp = pg_query_split_with_scanner(text);
    if (sp.error) {
        if (sp.error->cursorpos > 0) {
            *off = byte_of_char(text, sp.error->cursorpos - 1);
            found = true;
        }
        pg_query_free_split_result(sp);
        return found;
    }
    int start = 0; /* of the chunk */
    for (int i = 0; i < sp.n_stmts && !found; i++) {
        int end = sp.stmts[i]->stmt_location + sp.stmts[i]->stmt_len;
        char *chunk = strndup(text + start, (size_t)(end - start));
        if (!chunk)
            break;
        PgQuerySplitResult r = pg_query_split_with_parser(chunk);
        if (!r.error) {
            start = end + 1; /* past its ';' */
        } else if (r.error->cursorpos == 0) {
            *off = (size_t)start + first_token_off(chunk);
            found = true;
        }
        pg_query_free_split_result(r);
        free(chunk);
    }
    pg_query_free_split_result(sp);
    return found;
}

/* A syntax error the parser reported for text: "line N: message". */
static bool syntax_error(const char *text, const PgQueryError *e, char sqlstate[6], char *err,
                         size_t errlen)
{
    size_t off = 0;
    bool have = false;
    if (e->cursorpos > 0) {
        off = byte_of_char(text, e->cursorpos - 1);
        have = true;
    } else {
        have = locate_unpositioned(text, &off);
    }
    const char *hint = have && text[off] == '\\'
                           ? " (a psql meta-command such as \\connect or \\i: a migration file "
                             "holds SQL only; remove it)"
                           : "";
    return fail(sqlstate, err, errlen, SQLSTATE_SYNTAX, "line %d: %s%s",
                have ? line_of(text, off) : 1, e->message, hint);
}

/* ---- steps under construction ---- */

/* Append an empty step of kind to s; NULL when out of memory. */
static osc_step *push_step(osc_script *s, int *cap, osc_step_kind kind)
{
    if (s->n == *cap) {
        int ncap = *cap ? *cap * 2 : 16;
        osc_step *n = realloc(s->steps, sizeof *n * (size_t)ncap);
        if (!n)
            return NULL;
        s->steps = n;
        *cap = ncap;
    }
    osc_step *st = &s->steps[s->n++];
    memset(st, 0, sizeof *st);
    st->kind = kind;
    return st;
}

/* Append one statement (len bytes of text) to st. false when out of memory (st unchanged
 * but for arrays grown). Blocks are short, so the arrays grow by one. */
static bool step_add(osc_step *st, const char *text, size_t len, int line, int tag)
{
    size_t n = (size_t)st->nstmts + 1;
    char **stmts = realloc(st->stmts, sizeof *stmts * n);
    if (!stmts)
        return false;
    st->stmts = stmts;
    int *lines = realloc(st->lines, sizeof *lines * n);
    if (!lines)
        return false;
    st->lines = lines;
    int *tags = realloc(st->tags, sizeof *tags * n);
    if (!tags)
        return false;
    st->tags = tags;
    char *copy = strndup(text, len);
    if (!copy)
        return false;
    stmts[n - 1] = copy;
    lines[n - 1] = line;
    tags[n - 1] = tag;
    st->nstmts = (int)n;
    return true;
}

void osc_script_free(osc_script *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n; i++) {
        osc_step *st = &s->steps[i];
        for (int j = 0; j < st->nstmts; j++)
            free(st->stmts[j]);
        free(st->stmts);
        free(st->lines);
        free(st->tags);
    }
    free(s->steps);
    memset(s, 0, sizeof *s);
}

/* ---- the marker ---- */

typedef enum { DIR_NONE, DIR_BATCHED, DIR_UNKNOWN } directive;

/* What a line comment (the scanner's token: "--" up to the end of its line, without the
 * line end) says: the marker, a directive-like `pgcutover:<letter>…` that is not the
 * marker (a typo: refused, never ignored), or nothing. */
static directive directive_of(const char *c, size_t len)
{
    static const char prefix[] = "pgcutover:", word[] = "batched";
    size_t i = 2; /* past "--" */
    while (i < len && (c[i] == ' ' || c[i] == '\t'))
        i++;
    if (len - i < sizeof prefix - 1 || strncasecmp(c + i, prefix, sizeof prefix - 1) != 0)
        return DIR_NONE;
    i += sizeof prefix - 1;
    if (i >= len || !isalpha((unsigned char)c[i]))
        return DIR_NONE; /* "-- pgcutover: a note" is prose */
    if (len - i >= sizeof word - 1 && strncasecmp(c + i, word, sizeof word - 1) == 0) {
        size_t j = i + sizeof word - 1;
        while (j < len && (c[j] == ' ' || c[j] == '\t' || c[j] == '\r'))
            j++;
        if (j == len)
            return DIR_BATCHED;
    }
    return DIR_UNKNOWN;
}

/* ---- the walk over statements and tokens ---- */

typedef struct {
    const char *text;
    line_cursor lc;
    PgQuery__ScanToken **tok;
    size_t ntok, t; /* tokens, and the next one to look at */
    int last_line;  /* line where the last statement token or ';' seen ends; 0: none yet */
    char *sqlstate, *err;
    size_t errlen;
} walk;

static bool unknown_directive(walk *w, const PgQuery__ScanToken *k)
{
    return fail(w->sqlstate, w->err, w->errlen, SQLSTATE_SYNTAX,
                "line %d: unknown directive \"%.*s\": the only one is \"-- pgcutover:batched\", "
                "alone on its line before the UPDATE or DELETE it marks",
                line_at(&w->lc, (size_t)k->start), k->end - k->start, w->text + k->start);
}

/* Consume the tokens before the next statement's first token (';' of the statement before,
 * comments), bounded by end; *marker gets the line of a marker among them (0: none). On
 * return w->t is that first token (or the end of the tokens). */
static bool scan_gap(walk *w, size_t end, int *marker)
{
    *marker = 0;
    for (; w->t < w->ntok && (size_t)w->tok[w->t]->start < end; w->t++) {
        const PgQuery__ScanToken *k = w->tok[w->t];
        if (k->token == TOK_SEMICOLON) {
            w->last_line = line_at(&w->lc, (size_t)k->start);
        } else if (k->token == TOK_COMMENT) {
            directive d = directive_of(w->text + k->start, (size_t)(k->end - k->start));
            if (d == DIR_UNKNOWN)
                return unknown_directive(w, k);
            if (d == DIR_BATCHED) {
                int line = line_at(&w->lc, (size_t)k->start);
                if (line == w->last_line)
                    return fail(w->sqlstate, w->err, w->errlen, SQLSTATE_UNSUPPORTED,
                                "line %d: \"-- pgcutover:batched\" follows a statement on its "
                                "line, so it would mark the next statement, not that one: put "
                                "it on its own line before the UPDATE or DELETE it marks",
                                line);
                *marker = line;
            }
        } else if (k->token != TOK_BLOCK_COMMENT) {
            break;
        }
    }
    return true;
}

/* From the statement's first token (w->t) to the last before end: *last_end gets the end of
 * its last token that is not a comment. A marker in there marks nothing: refused. */
static bool scan_body(walk *w, size_t end, size_t *last_end)
{
    *last_end = (size_t)w->tok[w->t]->end;
    for (w->t++; w->t < w->ntok && (size_t)w->tok[w->t]->start < end; w->t++) {
        const PgQuery__ScanToken *k = w->tok[w->t];
        if (k->token == TOK_COMMENT) {
            directive d = directive_of(w->text + k->start, (size_t)(k->end - k->start));
            if (d == DIR_UNKNOWN)
                return unknown_directive(w, k);
            if (d == DIR_BATCHED)
                return fail(w->sqlstate, w->err, w->errlen, SQLSTATE_UNSUPPORTED,
                            "line %d: \"-- pgcutover:batched\" inside a statement marks "
                            "nothing: put it on its own line before the UPDATE or DELETE",
                            line_at(&w->lc, (size_t)k->start));
        } else if (k->token != TOK_BLOCK_COMMENT) {
            *last_end = (size_t)k->end;
        }
    }
    w->last_line = line_at(&w->lc, *last_end);
    return true;
}

/* The first word of a statement's text, for messages ("INSERT"). */
static int first_word_len(const char *s)
{
    int n = 0;
    while (n < 24 && (isalnum((unsigned char)s[n]) || s[n] == '_'))
        n++;
    return n ? n : 1;
}

/* Why a transaction mode on BEGIN/START TRANSACTION is refused, or NULL when it is one of
 * the defaults the engine's own transaction has (READ WRITE, NOT DEFERRABLE). gram.y
 * transaction_mode_item: transaction_isolation (a string), transaction_read_only and
 * transaction_deferrable (integer constants 1/0). */
static const char *mode_refusal(const PgQuery__Node *opt)
{
    if (opt->node_case != PG_QUERY__NODE__NODE_DEF_ELEM)
        return "an unknown transaction mode";
    const PgQuery__DefElem *d = opt->def_elem;
    const PgQuery__Node *a = d->arg;
    bool on = true; /* anything but an integer 0 counts as set */
    if (a && a->node_case == PG_QUERY__NODE__NODE_A_CONST &&
        a->a_const->val_case == PG_QUERY__A__CONST__VAL_IVAL && a->a_const->ival)
        on = a->a_const->ival->ival != 0;
    if (strcmp(d->defname, "transaction_isolation") == 0)
        return "an isolation level";
    if (strcmp(d->defname, "transaction_read_only") == 0)
        return on ? "READ ONLY" : NULL;
    if (strcmp(d->defname, "transaction_deferrable") == 0)
        return on ? "DEFERRABLE" : NULL;
    return "an unknown transaction mode";
}

/* The state of BEGIN … COMMIT while walking. */
typedef struct {
    int open_line; /* line of the BEGIN of the open block; 0: none */
    int step;      /* index of its step in the script, -1 while it has no statement */
} block_state;

/* A TransactionStmt at line: opens or closes a block, or is refused. */
static bool transaction(walk *w, block_state *b, const PgQuery__TransactionStmt *ts, int line)
{
    const char *what = NULL, *why = NULL;
    switch (ts->kind) {
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_BEGIN:
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_START:
        for (size_t i = 0; i < ts->n_options; i++) {
            const char *mode = mode_refusal(ts->options[i]);
            if (mode)
                return fail(w->sqlstate, w->err, w->errlen, SQLSTATE_UNSUPPORTED,
                            "line %d: BEGIN with %s: the engine runs a block in its own "
                            "transaction and sets its isolation itself; write plain BEGIN",
                            line, mode);
        }
        if (b->open_line)
            return fail(w->sqlstate, w->err, w->errlen, SQLSTATE_UNSUPPORTED,
                        "line %d: BEGIN inside the block opened at line %d: blocks do not nest; "
                        "COMMIT the first one before",
                        line, b->open_line);
        b->open_line = line;
        b->step = -1;
        return true;
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT:
        if (ts->chain)
            return fail(w->sqlstate, w->err, w->errlen, SQLSTATE_UNSUPPORTED,
                        "line %d: COMMIT AND CHAIN: end the block with plain COMMIT and open "
                        "the next one with BEGIN",
                        line);
        if (!b->open_line)
            return fail(w->sqlstate, w->err, w->errlen, SQLSTATE_UNSUPPORTED,
                        "line %d: COMMIT without BEGIN: each statement outside a block is "
                        "its own step already; remove it or add the BEGIN",
                        line);
        b->open_line = 0; /* an empty block leaves no step */
        b->step = -1;
        return true;
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK:
        what = "ROLLBACK";
        why = "a migration file's block must commit, its changes are the version; to undo a "
              "version, use its down file";
        break;
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_SAVEPOINT:
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_RELEASE:
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK_TO:
        what = ts->kind == PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_SAVEPOINT ? "SAVEPOINT"
               : ts->kind == PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_RELEASE
                   ? "RELEASE SAVEPOINT"
                   : "ROLLBACK TO SAVEPOINT";
        why = "a migration file's block runs as one atomic step and must commit whole; to "
              "undo a version, use its down file";
        break;
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_PREPARE:
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT_PREPARED:
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK_PREPARED:
        what = ts->kind == PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_PREPARE
                   ? "PREPARE TRANSACTION"
               : ts->kind == PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT_PREPARED
                   ? "COMMIT PREPARED"
                   : "ROLLBACK PREPARED";
        why = "two-phase commit has no place in a migration file: the engine commits each "
              "step itself, a block with COMMIT";
        break;
    default:
        what = "this transaction statement";
        why = "only BEGIN and COMMIT around a block are allowed in a migration file";
        break;
    }
    return fail(w->sqlstate, w->err, w->errlen, SQLSTATE_UNSUPPORTED, "line %d: %s: %s", line, what,
                why);
}

bool osc_split(const char *text, osc_script *out, char sqlstate[6], char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    sqlstate[0] = '\0';
    if (errlen > 0)
        err[0] = '\0';
    if (!text)
        return fail(sqlstate, err, errlen, SQLSTATE_SYNTAX, "line 1: no text");

    PgQueryProtobufParseResult pr = pg_query_parse_protobuf(text);
    if (pr.error) {
        syntax_error(text, pr.error, sqlstate, err, errlen);
        pg_query_free_protobuf_parse_result(pr);
        return false;
    }
    PgQueryScanResult sr = pg_query_scan(text);
    PgQuery__ParseResult *tree = pg_query__parse_result__unpack(
        NULL, pr.parse_tree.len, (const uint8_t *)pr.parse_tree.data);
    PgQuery__ScanResult *scan =
        sr.error ? NULL
                 : pg_query__scan_result__unpack(NULL, sr.pbuf.len, (const uint8_t *)sr.pbuf.data);
    bool ok = false;
    int cap = 0, tail_marker;
    size_t textlen = strlen(text);
    walk w = {text, {text, 0, 1}, NULL, 0, 0, 0, sqlstate, err, errlen};
    block_state b = {0, -1};

    if (sr.error) { /* the parser accepted what the scanner rejects: not expected */
        syntax_error(text, sr.error, sqlstate, err, errlen);
        goto done;
    }
    if (!tree || !scan) {
        fail(sqlstate, err, errlen, SQLSTATE_NO_MEMORY, "line 1: could not read the parse tree");
        goto done;
    }
    w.tok = scan->tokens;
    w.ntok = scan->n_tokens;

    for (size_t i = 0; i < tree->n_stmts; i++) {
        const PgQuery__RawStmt *rs = tree->stmts[i];
        size_t loc = (size_t)rs->stmt_location;
        /* stmt_len 0: the statement runs to the end of the text (the last one, no ';') */
        size_t end = rs->stmt_len > 0 ? loc + (size_t)rs->stmt_len : textlen;
        int marker, tag = rs->stmt ? (int)rs->stmt->node_case : 0;
        size_t last_end;
        if (!scan_gap(&w, end, &marker))
            goto done;
        if (w.t >= w.ntok || (size_t)w.tok[w.t]->start >= end) {
            fail(sqlstate, err, errlen, SQLSTATE_SYNTAX,
                 "line %d: the parser found a statement without tokens", line_at(&w.lc, loc));
            goto done;
        }
        size_t first = (size_t)w.tok[w.t]->start;
        int line = line_at(&w.lc, first);
        if (!scan_body(&w, end, &last_end))
            goto done;

        if (marker && tag != PG_QUERY__NODE__NODE_UPDATE_STMT &&
            tag != PG_QUERY__NODE__NODE_DELETE_STMT) {
            fail(sqlstate, err, errlen, SQLSTATE_UNSUPPORTED,
                 "line %d: \"-- pgcutover:batched\" marks the %.*s at line %d: only an UPDATE "
                 "or DELETE can run in batches",
                 marker, first_word_len(text + first), text + first, line);
            goto done;
        }
        if (marker && b.open_line) {
            fail(sqlstate, err, errlen, SQLSTATE_UNSUPPORTED,
                 "line %d: \"-- pgcutover:batched\" marks the %.*s at line %d inside the block "
                 "opened at line %d: a batched statement commits batch by batch, it cannot be "
                 "part of an atomic block; move it out of the block",
                 marker, first_word_len(text + first), text + first, line, b.open_line);
            goto done;
        }
        if (tag == PG_QUERY__NODE__NODE_TRANSACTION_STMT) {
            if (!transaction(&w, &b, rs->stmt->transaction_stmt, line))
                goto done;
            continue;
        }

        osc_step *st;
        if (b.open_line && b.step >= 0) {
            st = &out->steps[b.step];
        } else {
            st = push_step(out, &cap,
                           b.open_line ? OSC_STEP_BLOCK
                           : marker    ? OSC_STEP_BATCHED
                                       : OSC_STEP_ONE);
            if (st && b.open_line)
                b.step = out->n - 1;
        }
        if (!st || !step_add(st, text + first, last_end - first, line, tag)) {
            fail(sqlstate, err, errlen, SQLSTATE_NO_MEMORY, "line %d: out of memory", line);
            goto done;
        }
        out->nstatements++;
    }

    if (!scan_gap(&w, textlen, &tail_marker))
        goto done;
    if (tail_marker) {
        fail(sqlstate, err, errlen, SQLSTATE_UNSUPPORTED,
             "line %d: \"-- pgcutover:batched\" after the last statement marks nothing: put it "
             "on its own line before the UPDATE or DELETE it marks",
             tail_marker);
        goto done;
    }
    if (b.open_line) {
        fail(sqlstate, err, errlen, SQLSTATE_UNSUPPORTED,
             "line %d: BEGIN without COMMIT: the block opened here is never closed; end it "
             "with COMMIT",
             b.open_line);
        goto done;
    }
    ok = true;

done:
    if (!ok)
        osc_script_free(out);
    if (scan)
        pg_query__scan_result__free_unpacked(scan, NULL);
    if (tree)
        pg_query__parse_result__free_unpacked(tree, NULL);
    pg_query_free_scan_result(sr);
    pg_query_free_protobuf_parse_result(pr);
    return ok;
}
