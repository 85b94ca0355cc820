/*
 * px_prepare.c — see px_prepare.h. Tracking of a session's named prepared statements.
 * Message layouts: PostgreSQL documentation 55.7 "Message Formats"; which answers a
 * message gets and what an error skips: 55.2.3 "Extended Query" (after an ErrorResponse
 * the server discards messages up to the Sync) and 55.2.2 "Simple Query" (one
 * CommandComplete per statement; the first error ends the Query). PREPARE/DEALLOCATE/
 * DISCARD are read with libpg_query, PostgreSQL's own parser.
 */
#include "px_prepare_int.h"

#include <limits.h>
#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <stdlib.h>
#include <string.h>

#include "pgw_extended.h"
#include "px_log.h"

/* ---------- the table ---------- */

void px_pstmt_free(px_pstmt *st)
{
    if (st == NULL)
        return;
    free(st->name);
    free(st->query);
    free(st->oids);
    free(st);
}

static px_pstmt *pstmt_new(const char *name, const char *query, size_t qlen, int noids, bool sql)
{
    px_pstmt *st = calloc(1, sizeof *st);
    if (st == NULL)
        return NULL;
    st->name = strdup(name);
    st->query = malloc(qlen + 1);
    st->oids = noids ? calloc((size_t)noids, sizeof *st->oids) : NULL;
    if (st->name == NULL || st->query == NULL || (noids && st->oids == NULL)) {
        px_pstmt_free(st);
        return NULL;
    }
    memcpy(st->query, query, qlen);
    st->query[qlen] = 0;
    st->noids = noids;
    st->sql = sql;
    st->bytes = sizeof *st + strlen(name) + 1 + qlen + 1 + (size_t)noids * 4;
    return st;
}

void px_prep_remove(px_prep *p, px_pstmt *st)
{
    for (int i = 0; i < p->nst; i++)
        if (p->st[i] == st) {
            memmove(&p->st[i], &p->st[i + 1], (size_t)(p->nst - i - 1) * sizeof *p->st);
            p->nst--;
            break;
        }
    if (p->bound == st)
        p->bound = NULL;
    p->bytes -= st->bytes;
    px_pstmt_free(st);
}

/* The statement called name that a Parse of that name would collide with (not being
 * closed), or NULL. confirmed_only: only ones the server confirmed. */
static px_pstmt *find(const px_prep *p, const char *name, bool confirmed_only)
{
    for (int i = 0; i < p->nst; i++) {
        px_pstmt *st = p->st[i];
        if (!st->closing && (st->confirmed || !confirmed_only) && strcmp(st->name, name) == 0)
            return st;
    }
    return NULL;
}

static void free_op(px_op *op, bool applied)
{
    (void)applied;
    free(op->name);
    for (int i = 0; i < op->nops; i++) {
        free(op->ops[i].name);
        px_pstmt_free(op->ops[i].st);
    }
    free(op->ops);
    memset(op, 0, sizeof *op);
}

void px_prep_free(px_prep *p)
{
    if (p == NULL)
        return;
    for (int i = p->qhead; i < p->qlen; i++)
        free_op(&p->q[i], false);
    free(p->q);
    for (int i = 0; i < p->nst; i++)
        px_pstmt_free(p->st[i]);
    free(p->st);
    free(p->groups);
    free(p->failed);
    free(p);
}

int px_prep_count(const px_session *s, size_t *bytes)
{
    int n = 0;
    if (bytes)
        *bytes = s->prep ? s->prep->bytes : 0;
    for (int i = 0; s->prep && i < s->prep->nst; i++)
        n += s->prep->st[i]->confirmed;
    return n;
}

/* Stop tracking this session: past max_prepared_statements_bytes, or out of memory. Its
 * statements are left to PostgreSQL's own behaviour from now on. */
static void untrack(px_session *s, const char *why)
{
    px_info("c%llu %s/%s@%s: prepared statements no longer tracked (%s); they will not be "
            "re-prepared after a swap",
            (unsigned long long)s->id, s->database, s->user, s->addr, why);
    px_prep_free(s->prep);
    s->prep = NULL;
    s->prep_off = true;
    px_inc(s->w->stats.prep_untracked, 1);
}

/* Count st against the limit; false (and the session untracked) when past it. */
static bool charge(px_session *s, px_pstmt *st)
{
    int64_t limit = atomic_load_explicit(&px_d.max_prepared_statements_bytes, PX_RELAXED);
    if (st == NULL || (int64_t)(s->prep->bytes + st->bytes) > limit) {
        px_pstmt_free(st);
        untrack(s, st ? "max_prepared_statements_bytes reached" : "out of memory");
        return false;
    }
    s->prep->bytes += st->bytes;
    return true;
}

static bool table_add(px_prep *p, px_pstmt *st)
{
    if (p->nst == p->capst) {
        int cap = p->capst ? p->capst * 2 : 8;
        px_pstmt **n = realloc(p->st, (size_t)cap * sizeof *n);
        if (n == NULL)
            return false;
        p->st = n;
        p->capst = cap;
    }
    p->st[p->nst++] = st;
    return true;
}

static void publish(px_session *s);

/* ---------- the queue of pending effects ---------- */

static px_op *push(px_prep *p, px_op_kind kind)
{
    if (p->qhead == p->qlen)
        p->qhead = p->qlen = 0;
    if (p->qlen == p->qcap) {
        if (p->qhead > 0) {
            memmove(p->q, p->q + p->qhead, (size_t)(p->qlen - p->qhead) * sizeof *p->q);
            p->qlen -= p->qhead;
            p->qhead = 0;
        }
        if (p->qlen == p->qcap) {
            int cap = p->qcap ? p->qcap * 2 : 16;
            px_op *n = realloc(p->q, (size_t)cap * sizeof *n);
            if (n == NULL)
                return NULL;
            p->q = n;
            p->qcap = cap;
        }
    }
    px_op *op = &p->q[p->qlen++];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    return op;
}

static bool queue_empty(const px_prep *p)
{
    return p->qhead == p->qlen;
}

/* Before the first pending effect: the answers still due to requests sent earlier. */
static bool push_prefix(px_session *s)
{
    px_prep *p = s->prep;
    if (!queue_empty(p))
        return true;
    px_op *op;
    if (s->pending > 0) {
        if ((op = push(p, PX_OP_SKIPZ)) == NULL)
            return false;
        op->n = (uint32_t)s->pending;
    }
    if (s->grp_pc > 0) {
        if ((op = push(p, PX_OP_SKIP)) == NULL)
            return false;
        op->n = s->grp_pc;
    }
    return true;
}

/* An untracked Parse/Close while effects are pending: its answer is skipped. */
static bool push_skip(px_prep *p)
{
    if (queue_empty(p))
        return true;
    px_op *last = &p->q[p->qlen - 1];
    if (last->kind == PX_OP_SKIP) {
        last->n++;
        return true;
    }
    px_op *op = push(p, PX_OP_SKIP);
    if (op)
        op->n = 1;
    return op != NULL;
}

static bool ensure_prep(px_session *s)
{
    if (s->prep == NULL)
        s->prep = calloc(1, sizeof *s->prep);
    return s->prep != NULL;
}

/* Apply what a Query's statements did, for those that succeeded (index < ok). */
static void apply_query(px_prep *p, px_op *op, int ok)
{
    for (int i = 0; i < op->nops; i++) {
        px_sqlop *o = &op->ops[i];
        if (o->idx >= ok)
            continue;
        if (o->kind == PX_SQ_PREPARE) {
            if (find(p, o->st->name, false) == NULL && table_add(p, o->st)) {
                o->st->confirmed = true;
                o->st = NULL; /* the table has it */
            }
        } else if (o->kind == PX_SQ_DEALLOCATE) {
            px_pstmt *st = find(p, o->name, true);
            if (st)
                px_prep_remove(p, st);
        } else {
            for (int k = p->nst - 1; k >= 0; k--)
                if (p->st[k]->confirmed)
                    px_prep_remove(p, p->st[k]);
        }
    }
}

/* Drop the pending effects of the current group up to (not including) its Sync. */
static void discard_group(px_prep *p)
{
    while (!queue_empty(p)) {
        px_op *op = &p->q[p->qhead];
        if (op->kind == PX_OP_SYNC || op->kind == PX_OP_QUERY || op->kind == PX_OP_SKIPZ)
            return;
        if (op->kind == PX_OP_PARSE)
            px_prep_remove(p, op->st);
        else if (op->kind == PX_OP_CLOSE) {
            for (int i = 0; i < p->nst; i++)
                if (p->st[i]->closing && strcmp(p->st[i]->name, op->name) == 0) {
                    p->st[i]->closing = false;
                    break;
                }
        }
        free_op(op, false);
        p->qhead++;
    }
}

bool px_prep_watching(const px_session *s)
{
    return s->prep != NULL && !queue_empty(s->prep);
}

static void server_msg(px_session *s, char type);

void px_prep_server_msg(px_session *s, char type)
{
    server_msg(s, type);
    if (type == 'Z' || type == '1' || type == '3')
        publish(s);
}

static void server_msg(px_session *s, char type)
{
    px_prep *p = s->prep;
    if (p == NULL || queue_empty(p))
        return;
    px_op *op = &p->q[p->qhead];
    switch (type) {
    case '1': /* ParseComplete */
    case '3': /* CloseComplete */
        if (op->kind == PX_OP_SKIP) {
            if (--op->n == 0)
                p->qhead++;
        } else if (op->kind == PX_OP_PARSE && type == '1') {
            op->st->confirmed = true;
            p->qhead++;
        } else if (op->kind == PX_OP_CLOSE && type == '3') {
            for (int i = 0; i < p->nst; i++)
                if (p->st[i]->closing && strcmp(p->st[i]->name, op->name) == 0) {
                    px_prep_remove(p, p->st[i]);
                    break;
                }
            free_op(op, true);
            p->qhead++;
        }
        return;
    case 'C':
        if (op->kind == PX_OP_QUERY)
            p->qcc++;
        return;
    case 'E':
        if (op->kind == PX_OP_QUERY)
            p->qerr = true;
        else if (op->kind != PX_OP_SKIPZ)
            discard_group(p);
        return;
    case 'Z':
        if (op->kind == PX_OP_SKIPZ) {
            if (--op->n == 0)
                p->qhead++;
            return;
        }
        discard_group(p); /* answers that never came: an error skipped them */
        if (!queue_empty(p)) {
            op = &p->q[p->qhead];
            if (op->kind == PX_OP_QUERY)
                apply_query(p, op, p->qerr ? p->qcc : INT_MAX);
            if (op->kind == PX_OP_QUERY || op->kind == PX_OP_SYNC) {
                free_op(op, true);
                p->qhead++;
            }
        }
        p->qcc = 0;
        p->qerr = false;
        return;
    default:
        return;
    }
}

/* ---------- client messages ---------- */

static px_prep_verdict client_msg(px_session *s, size_t off, const pgw_header *h, size_t avail);

/* The body of message h at off, all of it, linear; NULL when not all in yet. */
static const uint8_t *whole_body(px_session *s, size_t off, const pgw_header *h, size_t avail)
{
    size_t total = (size_t)h->len + 1;
    if (avail - off < total)
        return NULL;
    uint8_t *p = evbuffer_pullup(s->client->in, (ev_ssize_t)(off + total));
    return p ? p + off + PGW_HEADER_LEN : NULL;
}

static void copy_body(px_session *s, size_t off, void *dst, size_t n)
{
    struct evbuffer_ptr ptr;
    evbuffer_ptr_set(s->client->in, &ptr, off + PGW_HEADER_LEN, EVBUFFER_PTR_SET);
    evbuffer_copyout_from(s->client->in, &ptr, dst, n);
}

static px_prep_verdict bad(px_session *s, const char *what)
{
    px_session_fail(s, "08P01", "invalid %s message", what);
    return PX_PREP_CLOSED;
}

static px_prep_verdict on_parse(px_session *s, size_t off, const pgw_header *h, size_t avail)
{
    uint8_t first;
    if (h->len < 5)
        return bad(s, "Parse");
    if (avail - off < PGW_HEADER_LEN + 1)
        return PX_PREP_MORE;
    copy_body(s, off, &first, 1);
    if (first == 0 || s->prep_off) { /* the unnamed statement: not tracked */
        s->grp_pc++;
        if (s->prep && !push_skip(s->prep))
            untrack(s, "out of memory");
        return PX_PREP_FORWARD;
    }
    const uint8_t *body = whole_body(s, off, h, avail);
    if (body == NULL)
        return PX_PREP_MORE;
    pgw_parse m;
    if (pgw_read_parse(body, h->len - 4, &m) != PGW_OK)
        return bad(s, "Parse");
    if (!ensure_prep(s) || !push_prefix(s)) {
        untrack(s, "out of memory");
        s->grp_pc++;
        return PX_PREP_FORWARD;
    }
    s->grp_pc++;
    if (find(s->prep, m.name, false)) { /* the server answers 42P05 */
        if (!push_skip(s->prep))
            untrack(s, "out of memory");
        return PX_PREP_FORWARD;
    }
    px_pstmt *st = pstmt_new(m.name, m.query, strlen(m.query), m.noids, false);
    if (!charge(s, st))
        return PX_PREP_FORWARD;
    for (int i = 0; i < m.noids; i++)
        st->oids[i] = pgw_parse_oid(&m, i);
    px_op *op = NULL;
    if (!table_add(s->prep, st)) {
        s->prep->bytes -= st->bytes;
        px_pstmt_free(st);
        untrack(s, "out of memory");
    } else if ((op = push(s->prep, PX_OP_PARSE)) == NULL) {
        untrack(s, "out of memory");
    } else {
        op->st = st;
    }
    return PX_PREP_FORWARD;
}

static px_prep_verdict on_close(px_session *s, size_t off, const pgw_header *h, size_t avail)
{
    if (s->prep == NULL) {
        s->grp_pc++;
        return PX_PREP_FORWARD;
    }
    uint8_t kind[2];
    if (h->len < 6)
        return bad(s, "Close");
    if (avail - off < PGW_HEADER_LEN + 2)
        return PX_PREP_MORE;
    copy_body(s, off, kind, 2);
    px_pstmt *st = NULL;
    const char *name = NULL;
    if (kind[0] == 'S' && kind[1] != 0) {
        const uint8_t *body = whole_body(s, off, h, avail);
        if (body == NULL)
            return PX_PREP_MORE;
        char k;
        if (pgw_read_close(body, h->len - 4, &k, &name) != PGW_OK)
            return bad(s, "Close");
        st = find(s->prep, name, false);
    }
    px_op *op = NULL;
    bool ok = st == NULL ? push_skip(s->prep)
                         : push_prefix(s) && (op = push(s->prep, PX_OP_CLOSE)) != NULL &&
                               (op->name = strdup(name)) != NULL;
    s->grp_pc++;
    if (!ok)
        untrack(s, "out of memory");
    else if (st)
        st->closing = true;
    return PX_PREP_FORWARD;
}

/* Bind, Describe, Execute: how the client uses tracked statements (binary results, a
 * Describe of the portal before each Execute). Only with statements tracked. */
static px_prep_verdict on_use(px_session *s, size_t off, const pgw_header *h, size_t avail)
{
    px_prep *p = s->prep;
    if (h->type == 'E') {
        if (p->bound && !p->described)
            p->bound->no_describe = true;
        p->bound = NULL;
        return PX_PREP_FORWARD;
    }
    if (h->type == 'D') {
        uint8_t k;
        if (h->len < 6)
            return bad(s, "Describe");
        if (avail - off < PGW_HEADER_LEN + 1)
            return PX_PREP_MORE;
        copy_body(s, off, &k, 1);
        if (k == 'P')
            p->described = true;
        return PX_PREP_FORWARD;
    }
    /* Bind: names first (a small peek), the whole only for a tracked statement */
    uint8_t peek[256];
    size_t blen = h->len - 4, n = blen < sizeof peek ? blen : sizeof peek;
    if (avail - off < PGW_HEADER_LEN + n)
        return PX_PREP_MORE;
    copy_body(s, off, peek, n);
    const char *portal, *stmt;
    pgw_status rc = pgw_read_bind_stmt(peek, n, n == blen, &portal, &stmt);
    if (rc == PGW_BAD)
        return bad(s, "Bind");
    p->bound = NULL;
    p->described = false;
    if (rc == PGW_OK && *stmt == 0)
        return PX_PREP_FORWARD;
    const uint8_t *body = whole_body(s, off, h, avail);
    if (body == NULL)
        return PX_PREP_MORE;
    pgw_bind b;
    if (pgw_read_bind(body, blen, &b) != PGW_OK)
        return bad(s, "Bind");
    px_pstmt *st = find(p, b.stmt, false);
    if (st) {
        st->binary |= b.binary_results;
        p->bound = st;
    }
    return PX_PREP_FORWARD;
}

/* ---------- simple Query: PREPARE / DEALLOCATE / DISCARD ALL ---------- */

/* What follows the statement's name in PREPARE text stmt[0..len): found with libpg_query's
 * scanner (the second token that is no comment), never by splitting SQL by hand. */
static char *prepare_rest(const char *stmt, size_t len)
{
    char *text = strndup(stmt, len);
    if (text == NULL)
        return NULL;
    PgQueryScanResult r = pg_query_scan(text);
    char *rest = NULL;
    if (r.error == NULL) {
        PgQuery__ScanResult *sr =
            pg_query__scan_result__unpack(NULL, r.pbuf.len, (const uint8_t *)r.pbuf.data);
        int seen = 0;
        for (size_t i = 0; sr && i < sr->n_tokens; i++) {
            PgQuery__ScanToken *t = sr->tokens[i];
            if (t->token == PG_QUERY__TOKEN__SQL_COMMENT || t->token == PG_QUERY__TOKEN__C_COMMENT)
                continue;
            if (++seen == 3) {
                rest = strdup(text + t->start);
                break;
            }
        }
        if (sr)
            pg_query__scan_result__free_unpacked(sr, NULL);
    }
    pg_query_free_scan_result(r);
    free(text);
    return rest;
}

static bool add_sqlop(px_op *op, px_sq_kind kind, int idx, px_pstmt *st, const char *name)
{
    px_sqlop *n = realloc(op->ops, (size_t)(op->nops + 1) * sizeof *n);
    if (n == NULL)
        return false;
    op->ops = n;
    px_sqlop *o = &op->ops[op->nops];
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->idx = idx;
    o->st = st;
    if (name && (o->name = strdup(name)) == NULL)
        return false;
    op->nops++;
    return true;
}

/* Read the Query's statements with libpg_query into op's effects. False on out of
 * memory or past the limit (the session is then untracked). A Query PostgreSQL cannot
 * parse has no effect (the server refuses it too). */
static bool read_query(px_session *s, const char *sql, px_op *op)
{
    PgQueryProtobufParseResult raw = pg_query_parse_protobuf(sql);
    bool ok = true;
    if (raw.error == NULL) {
        PgQuery__ParseResult *tree = pg_query__parse_result__unpack(
            NULL, raw.parse_tree.len, (const uint8_t *)raw.parse_tree.data);
        for (size_t i = 0; ok && tree && i < tree->n_stmts; i++) {
            PgQuery__RawStmt *rs = tree->stmts[i];
            PgQuery__Node *n = rs->stmt;
            if (n == NULL)
                continue;
            size_t len = rs->stmt_len ? (size_t)rs->stmt_len : strlen(sql + rs->stmt_location);
            if (n->node_case == PG_QUERY__NODE__NODE_PREPARE_STMT) {
                char *rest = prepare_rest(sql + rs->stmt_location, len);
                px_pstmt *st = rest ? pstmt_new(n->prepare_stmt->name, rest, strlen(rest), 0, true)
                                    : NULL;
                free(rest);
                if (!charge(s, st))
                    ok = false;
                else if (!add_sqlop(op, PX_SQ_PREPARE, (int)i, st, NULL)) {
                    px_pstmt_free(st);
                    ok = false;
                }
            } else if (n->node_case == PG_QUERY__NODE__NODE_DEALLOCATE_STMT) {
                const char *name = n->deallocate_stmt->name;
                ok = add_sqlop(op, *name ? PX_SQ_DEALLOCATE : PX_SQ_DEALLOCATE_ALL, (int)i, NULL,
                               *name ? name : NULL);
            } else if (n->node_case == PG_QUERY__NODE__NODE_DISCARD_STMT &&
                       n->discard_stmt->target == PG_QUERY__DISCARD_MODE__DISCARD_ALL) {
                ok = add_sqlop(op, PX_SQ_DEALLOCATE_ALL, (int)i, NULL, NULL);
            }
        }
        if (tree)
            pg_query__parse_result__free_unpacked(tree, NULL);
        else
            ok = false;
    }
    pg_query_free_protobuf_parse_result(raw);
    return ok;
}

static px_prep_verdict on_query(px_session *s, size_t off, const pgw_header *h, size_t avail)
{
    s->grp_pc = 0;
    bool watch = s->prep && !queue_empty(s->prep);
    size_t blen = h->len - 4;
    bool look = false;
    if (!s->prep_off && blen > 0) {
        uint8_t c;
        if (avail - off < PGW_HEADER_LEN + 1)
            return PX_PREP_MORE;
        copy_body(s, off, &c, 1);
        /* The keywords that matter start with p, d (or a blank or comment first). */
        look = strchr("pPdD \t\r\n\f\v-/", c) != NULL && c != 0;
    }
    if (look) {
        uint8_t peek[64];
        char kw[16];
        size_t n = blen < sizeof peek ? blen : sizeof peek;
        if (avail - off < PGW_HEADER_LEN + n)
            return PX_PREP_MORE;
        copy_body(s, off, peek, n);
        pgw_status rc = pgw_query_keyword(peek, n, n == blen, kw, sizeof kw);
        if (rc == PGW_INCOMPLETE) {
            const uint8_t *body = whole_body(s, off, h, avail);
            if (body == NULL)
                return PX_PREP_MORE;
            pgw_query_keyword(body, blen, true, kw, sizeof kw);
        }
        look = strcmp(kw, "prepare") == 0 || strcmp(kw, "deallocate") == 0 ||
               strcmp(kw, "discard") == 0;
    }
    if (!look) {
        if (watch && push(s->prep, PX_OP_QUERY) == NULL)
            untrack(s, "out of memory");
        return PX_PREP_FORWARD;
    }
    const uint8_t *body = whole_body(s, off, h, avail);
    if (body == NULL)
        return PX_PREP_MORE;
    if (memchr(body, 0, blen) == NULL)
        return bad(s, "Query");
    if (!ensure_prep(s) || !push_prefix(s)) {
        untrack(s, "out of memory");
        return PX_PREP_FORWARD;
    }
    px_op *op = push(s->prep, PX_OP_QUERY);
    if (op == NULL) {
        untrack(s, "out of memory");
        return PX_PREP_FORWARD;
    }
    if (!read_query(s, (const char *)body, op) && s->prep)
        untrack(s, "out of memory");
    return PX_PREP_FORWARD;
}

/* Publish the table's size for SHOW CLIENTS (read from the console's thread). */
static void publish(px_session *s)
{
    size_t bytes;
    int n = px_prep_count(s, &bytes);
    atomic_store_explicit(&s->st_prep_n, (uint64_t)n, PX_RELAXED);
    atomic_store_explicit(&s->st_prep_bytes, (uint64_t)bytes, PX_RELAXED);
}

static px_prep_verdict client_msg(px_session *s, size_t off, const pgw_header *h, size_t avail)
{
    switch (h->type) {
    case 'P':
        return on_parse(s, off, h, avail);
    case 'C':
        return on_close(s, off, h, avail);
    case 'Q':
        return on_query(s, off, h, avail);
    case 'S':
        s->grp_pc = 0;
        if (s->prep && !queue_empty(s->prep) && push(s->prep, PX_OP_SYNC) == NULL)
            untrack(s, "out of memory");
        return PX_PREP_FORWARD;
    case 'F':
        if (s->prep && !queue_empty(s->prep) && push(s->prep, PX_OP_SYNC) == NULL)
            untrack(s, "out of memory");
        return PX_PREP_FORWARD;
    case 'B':
    case 'D':
    case 'E':
        if (s->prep && s->prep->nst > 0)
            return on_use(s, off, h, avail);
        return PX_PREP_FORWARD;
    default:
        return PX_PREP_FORWARD;
    }
}

px_prep_verdict px_prep_client_msg(px_session *s, size_t off, const pgw_header *h, size_t avail)
{
    px_prep_verdict v = client_msg(s, off, h, avail);
    if (v == PX_PREP_FORWARD && (s->prep || s->prep_off) &&
        (h->type == 'P' || h->type == 'C' || h->type == 'Q'))
        publish(s);
    return v;
}
