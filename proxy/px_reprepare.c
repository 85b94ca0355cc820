/*
 * px_reprepare.c — re-preparing a session's statements after a table's row type changed
 * (see px_prepare.h). Once the server has answered everything the client sent, and before
 * the client's next message goes on, the proxy sends on the session's server connection,
 * pipelined, one group per statement:
 *   Parse probe (the text), Close 'S' probe, Close 'S' name, Parse name (the text), Sync
 * (SQL PREPARE: one Query "PREPARE probe ...; DEALLOCATE probe; DEALLOCATE name;
 * PREPARE name ..."). The probe comes first so that a text that no longer parses (its
 * column was dropped) fails before the client's statement is touched: it stays as
 * PostgreSQL left it, and the client's next use fails as it would without the proxy.
 * Inside a transaction block the groups run between SAVEPOINT and RELEASE SAVEPOINT: a
 * failed probe aborts only the savepoint (ROLLBACK TO SAVEPOINT, then the statements
 * after it in a new round), never the client's transaction; prepared statements are not
 * transactional, so the rollback keeps the ones re-made before it. The proxy reads every
 * answer itself. Statements the client binds with binary results or executes without a
 * Describe of the portal are not re-prepared: the client could not decode rows of a new
 * description, so PostgreSQL's own answer (none if the result type did not change, else
 * 0A000 "cached plan must not change result type") reaches it, counted as left.
 * ("Message Flow" 55.2.3 Extended Query and 55.2.2 Simple Query; SAVEPOINT.)
 */
#include "px_prepare_int.h"

#include <stdlib.h>
#include <string.h>

#include "pgw_extended.h"
#include "px_log.h"

/* The last changes that marked sessions, for SHOW MIGRATION n (px_prep_change_stats):
 * a ring indexed by sequence number; a slot is reused by the change PX_PREP_CHANGES
 * later, so a session answering an older change finds its slot taken and is not counted. */
#define PX_PREP_CHANGES 64
typedef struct {
    uint64_t seq; /* 0 = empty */
    char db[64]; /* as px_session.database */
    int64_t migration;
    int64_t marked, sessions, statements, left;
    uint64_t max_us, sum_us;
} px_change;
static px_change changes[PX_PREP_CHANGES];
static uint64_t change_seq;
static pthread_mutex_t change_lock = PTHREAD_MUTEX_INITIALIZER;

void px_prep_mark_stale(const char *db, int64_t migration)
{
    pthread_mutex_lock(&change_lock);
    uint64_t seq = ++change_seq;
    px_change *c = &changes[seq % PX_PREP_CHANGES];
    memset(c, 0, sizeof *c);
    c->seq = seq;
    snprintf(c->db, sizeof c->db, "%s", db);
    c->migration = migration;
    pthread_mutex_unlock(&change_lock);
    int64_t marked = 0;
    for (int i = 0; i < px_d.nworkers; i++) {
        px_worker *w = &px_d.workers[i];
        pthread_mutex_lock(&w->lock);
        for (px_session *s = w->sessions; s; s = s->next)
            if (!s->is_control && strcmp(s->database, db) == 0) {
                atomic_store(&s->stale, seq);
                marked++;
            }
        pthread_mutex_unlock(&w->lock);
    }
    pthread_mutex_lock(&change_lock);
    if (c->seq == seq)
        c->marked = marked;
    pthread_mutex_unlock(&change_lock);
}

bool px_prep_change_stats(const char *db, int64_t migration, osc_reprepare_stats *out)
{
    const px_change *best = NULL; /* a swap retried marks once per attempt: the last one */
    pthread_mutex_lock(&change_lock);
    for (int i = 0; i < PX_PREP_CHANGES; i++) {
        const px_change *c = &changes[i];
        if (c->seq != 0 && c->migration == migration && strcmp(c->db, db) == 0 &&
            (best == NULL || c->seq > best->seq))
            best = c;
    }
    if (best)
        *out = (osc_reprepare_stats){best->marked, best->sessions, best->statements, best->left,
                                     best->max_us / 1000.0, best->sum_us / 1000.0};
    pthread_mutex_unlock(&change_lock);
    return best != NULL;
}

/* A session finished answering change seq: count it there if the slot is still its. */
static void count_change(uint64_t seq, int done, int left, uint64_t us)
{
    pthread_mutex_lock(&change_lock);
    px_change *c = &changes[seq % PX_PREP_CHANGES];
    if (seq != 0 && c->seq == seq) {
        c->sessions += done > 0;
        c->statements += done;
        c->left += left;
        c->sum_us += us;
        if (us > c->max_us)
            c->max_us = us;
    }
    pthread_mutex_unlock(&change_lock);
}

#define PROBE "pgcutover_reprepare_probe"
#define SAVEPOINT "pgcutover_reprepare"

/* Status of statement i in this re-prepare (p->failed reused as a byte per statement). */
enum { ST_TODO = 0, ST_DONE, ST_FAILED, ST_LEFT };

static void quote_ident(const char *name, char *out, size_t len)
{
    size_t k = 0;
    if (k + 1 < len)
        out[k++] = '"';
    for (const char *c = name; *c && k + 3 < len; c++) {
        if (*c == '"')
            out[k++] = '"';
        out[k++] = *c;
    }
    out[k++] = '"';
    out[k] = 0;
}

static bool build_stmt(pgw_buf *b, const px_pstmt *st)
{
    if (!st->sql)
        return pgw_build_parse(b, PROBE, st->query, st->oids, st->noids) &&
               pgw_build_close(b, 'S', PROBE) && pgw_build_close(b, 'S', st->name) &&
               pgw_build_parse(b, st->name, st->query, st->oids, st->noids) && pgw_build_sync(b);
    size_t qn = strlen(st->name) * 2 + 3;
    char *q = malloc(qn);
    size_t n = strlen(st->query) * 2 + qn * 2 + 200;
    char *sql = malloc(n);
    bool ok = q && sql;
    if (ok) {
        quote_ident(st->name, q, qn);
        snprintf(sql, n, "PREPARE " PROBE " %s; DEALLOCATE " PROBE "; DEALLOCATE %s; PREPARE %s %s",
                 st->query, q, q, st->query);
        ok = pgw_build_query(b, sql);
    }
    free(q);
    free(sql);
    return ok;
}

/* Send one round: the statements still to do, in a savepoint when in a transaction. */
static bool send_round(px_session *s)
{
    px_prep *p = s->prep;
    uint8_t *status = (uint8_t *)p->failed;
    pgw_buf b;
    pgw_buf_init(&b);
    p->ngroups = p->gi = 0;
    p->first_err = -1;
    if (p->in_xact) {
        p->groups[p->ngroups++] = PX_G_SAVEPOINT;
        pgw_build_query(&b, "SAVEPOINT " SAVEPOINT);
    }
    for (int i = 0; i < p->nst; i++)
        if (status[i] == ST_TODO) {
            p->groups[p->ngroups++] = i;
            build_stmt(&b, p->st[i]);
        }
    if (p->in_xact) {
        p->groups[p->ngroups++] = PX_G_RELEASE;
        pgw_build_query(&b, "RELEASE SAVEPOINT " SAVEPOINT);
    }
    bool ok = !b.oom && evbuffer_add(s->server->out, b.data, b.len) == 0;
    pgw_buf_free(&b);
    if (!ok) {
        px_session_fail(s, "53200", "out of memory");
        return false;
    }
    if (!px_io_flush(s->server)) {
        px_session_fail(s, "08006", "server connection lost: %s", s->server->err);
        return false;
    }
    return true;
}

px_stale_verdict px_prep_stale_check(px_session *s)
{
    uint64_t change = atomic_load_explicit(&s->stale, memory_order_acquire);
    if (change == 0)
        return PX_STALE_GO;
    px_prep *p = s->prep;
    if (p == NULL || px_prep_count(s, NULL) == 0) {
        atomic_store(&s->stale, 0);
        return PX_STALE_GO;
    }
    if (s->xact == 'E')
        return PX_STALE_GO; /* nothing can be prepared in an aborted transaction: later */
    if (s->pending > 0)
        return PX_STALE_WAIT;
    atomic_store(&s->stale, 0); /* a mark from now on means another round */
    p->change = change;
    free(p->groups);
    free(p->failed);
    p->groups = malloc(((size_t)p->nst + 3) * sizeof *p->groups);
    p->failed = calloc((size_t)p->nst + 1, 1);
    if (p->groups == NULL || p->failed == NULL) {
        px_session_fail(s, "53200", "out of memory");
        return PX_STALE_CLOSED;
    }
    uint8_t *status = (uint8_t *)p->failed;
    int todo = 0;
    p->done = p->left = 0;
    for (int i = 0; i < p->nst; i++) {
        px_pstmt *st = p->st[i];
        if (!st->confirmed)
            status[i] = ST_LEFT; /* cannot be: nothing is pending */
        else if (!st->sql && (st->binary || st->no_describe)) {
            status[i] = ST_LEFT;
            p->left++;
        } else
            todo++;
    }
    if (todo == 0) {
        px_inc(s->w->stats.prep_left, (uint64_t)p->left);
        px_inc(s->st_prep_left, (uint64_t)p->left);
        count_change(change, 0, p->left, 0);
        return PX_STALE_GO;
    }
    p->in_xact = s->xact == 'T';
    p->busy = true;
    p->start_us = px_now_us();
    px_io_read_enable(s->client, false);
    if (!send_round(s))
        return PX_STALE_CLOSED;
    return PX_STALE_BUSY;
}

bool px_prep_busy(const px_session *s)
{
    return s->prep != NULL && s->prep->busy;
}

static void finish(px_session *s)
{
    px_prep *p = s->prep;
    uint8_t *status = (uint8_t *)p->failed;
    int failed = 0;
    for (int i = 0; i < p->nst; i++) {
        if (status[i] == ST_DONE) {
            p->done++;
            p->st[i]->binary = p->st[i]->no_describe = false;
        } else if (status[i] == ST_FAILED || status[i] == ST_TODO) {
            failed++;
        }
    }
    uint64_t us = px_now_us() - p->start_us;
    px_inc(s->w->stats.prep_reprepared, (uint64_t)p->done);
    px_inc(s->w->stats.prep_sessions, 1);
    px_inc(s->w->stats.prep_left, (uint64_t)(p->left + failed));
    px_inc(s->w->stats.prep_us, us);
    px_inc(s->st_reprepared, (uint64_t)p->done);
    px_inc(s->st_prep_left, (uint64_t)(p->left + failed));
    count_change(p->change, p->done, p->left + failed, us);
    px_debug("c%llu %s/%s@%s: re-prepared %d statements in %.3f ms (%d left to PostgreSQL, %d "
             "no longer parse)",
             (unsigned long long)s->id, s->database, s->user, s->addr, p->done, us / 1000.0,
             p->left, failed);
    p->busy = false;
    if (!s->client_paused && !s->parked)
        px_io_read_enable(s->client, true);
}

/* The ReadyForQuery that ends group p->gi arrived. Returns 1 when all is done, 0 when
 * more is due, -1 when the session was failed. */
static int group_done(px_session *s, bool err)
{
    px_prep *p = s->prep;
    uint8_t *status = (uint8_t *)p->failed;
    int g = p->groups[p->gi];
    if (err && (!p->in_xact || p->first_err < 0)) {
        if (p->in_xact)
            p->first_err = p->gi;
        if (g >= 0)
            status[g] = ST_FAILED;
    } else if (!err && g >= 0 && (!p->in_xact || p->first_err < 0)) {
        status[g] = ST_DONE;
    }
    if (++p->gi < p->ngroups)
        return 0;
    if (p->in_xact && p->first_err >= 0 && p->groups[0] != PX_G_ROLLBACK) {
        if (p->groups[p->first_err] == PX_G_SAVEPOINT) {
            finish(s); /* no savepoint to go back to: leave the rest to PostgreSQL */
            return 1;
        }
        pgw_buf b;
        pgw_buf_init(&b);
        pgw_build_query(&b, "ROLLBACK TO SAVEPOINT " SAVEPOINT "; RELEASE SAVEPOINT " SAVEPOINT);
        bool ok = !b.oom && evbuffer_add(s->server->out, b.data, b.len) == 0;
        pgw_buf_free(&b);
        if (!ok || !px_io_flush(s->server)) {
            px_session_fail(s, "08006", "server connection lost while re-preparing");
            return -1;
        }
        p->groups[0] = PX_G_ROLLBACK;
        p->ngroups = 1;
        p->gi = 0;
        p->first_err = -1;
        return 0;
    }
    bool todo = false;
    for (int i = 0; i < p->nst; i++)
        todo |= status[i] == ST_TODO;
    if (p->groups[0] == PX_G_ROLLBACK && !err && todo)
        return send_round(s) ? 0 : -1;
    finish(s);
    return 1;
}

int px_prep_consume(px_session *s)
{
    struct evbuffer *in = s->server->in;
    px_prep *p = s->prep;
    for (;;) {
        size_t avail = evbuffer_get_length(in);
        uint8_t hb[PGW_HEADER_LEN + 1];
        if (avail < PGW_HEADER_LEN)
            return 0;
        evbuffer_copyout(in, hb, PGW_HEADER_LEN);
        pgw_header h;
        if (pgw_read_header(hb, PGW_HEADER_LEN, UINT32_MAX >> 1, &h) != PGW_OK) {
            px_session_fail(s, "08P01", "invalid message from server");
            return -1;
        }
        size_t total = (size_t)h.len + 1;
        if (avail < total)
            return 0;
        if (h.type == 'A' || h.type == 'S') { /* the client's: a notification, a setting */
            evbuffer_remove_buffer(in, s->client->out, total);
            px_inc(s->st_bytes_out, total);
            if (!px_io_flush(s->client)) {
                px_session_free(s);
                return -1;
            }
            continue;
        }
        evbuffer_drain(in, total);
        if (h.type == 'E') {
            p->gerr = true;
        } else if (h.type == 'Z') {
            bool err = p->gerr;
            p->gerr = false;
            int r = group_done(s, err);
            if (r != 0)
                return r;
        }
    }
}
