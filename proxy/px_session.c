/*
 * px_session.c — see px_session.h. Message flow follows the PostgreSQL documentation,
 * "Frontend/Backend Protocol": 55.2.1 Start-up, 55.2.10 SSL Session Encryption,
 * 55.2.2-55.2.4 query cycles ending in ReadyForQuery.
 */
#include "px_session.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "pgwire.h"
#include "px_cancel.h"
#include "px_control.h"
#include "px_log.h"
#include "px_prepare.h"
#include "px_tls.h"

#define LINGER_SECONDS 5

static void client_cb(px_io *io, px_io_event ev, void *arg);
static void server_cb(px_io *io, px_io_event ev, void *arg);
static bool relay_client(px_session *s);
static bool relay_server(px_session *s);

/* ---------- lifecycle ---------- */

static void describe_peer(int fd, char *out, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t l = sizeof ss;
    snprintf(out, len, "?");
    if (getpeername(fd, (struct sockaddr *)&ss, &l) != 0)
        return;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        snprintf(out, len, "%s:%d", ip, ntohs(a->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        char ip[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        snprintf(out, len, "[%s]:%d", ip, ntohs(a->sin6_port));
    } else {
        snprintf(out, len, "unix");
    }
}

static void login_timeout_cb(evutil_socket_t fd, short what, void *arg);

/* login_done — the first ReadyForQuery went to the client: no more login deadline. */
static void login_done(px_session *s)
{
    if (s->login_timer) {
        event_free(s->login_timer);
        s->login_timer = NULL;
    }
}

void px_session_accept(px_worker *w, int fd, bool is_control)
{
    px_session *s = calloc(1, sizeof *s);
    if (s == NULL) {
        close(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    s->id = atomic_fetch_add(&px_d.next_session_id, 1) + 1;
    s->w = w;
    s->is_control = is_control;
    s->state = PS_STARTUP;
    s->connected_us = px_now_us();
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    s->connected_unix_us = (int64_t)rt.tv_sec * 1000000 + rt.tv_nsec / 1000;
    describe_peer(fd, s->addr, sizeof s->addr);
    s->client = px_io_new(w->base, fd, false, client_cb, s);
    if (s->client == NULL) {
        free(s);
        return;
    }
    if (!is_control)
        atomic_fetch_add(&px_d.nclients, 1);
    else
        atomic_fetch_add(&px_d.ncontrol, 1);
    /* client_login_timeout (pgbouncer's name; PostgreSQL's authentication_timeout):
     * from accept to the first ReadyForQuery, on both ports, so sockets that never
     * finish the TLS handshake, the startup packet or the authentication cannot hold
     * the max_client_conn / max_control_conn slots. */
    int lt = atomic_load(&px_d.client_login_timeout);
    if (lt > 0) {
        struct timeval tv = {lt, 0};
        s->login_timer = evtimer_new(w->base, login_timeout_cb, s);
        if (s->login_timer)
            evtimer_add(s->login_timer, &tv);
    }
    pthread_mutex_lock(&w->lock);
    s->next = w->sessions;
    if (w->sessions)
        w->sessions->prev = s;
    w->sessions = s;
    w->nsessions++;
    pthread_mutex_unlock(&w->lock);
    px_io_read_enable(s->client, true);
}

static void unpark_unlink(px_session *s)
{
    px_session **pp = &s->w->parked;
    while (*pp && *pp != s)
        pp = &(*pp)->park_next;
    if (*pp)
        *pp = s->park_next;
    s->park_next = NULL;
}

void px_session_free(px_session *s)
{
    if (s->inflight) {
        s->inflight = false;
        atomic_fetch_sub(&px_d.inflight, 1);
    }
    if (s->in_xact) {
        s->in_xact = false;
        atomic_fetch_sub(&px_d.in_xact, 1);
    }
    px_worker *w = s->w;
    if (s->parked)
        unpark_unlink(s);
    if (s->is_control)
        px_control_session_end(s);
    pthread_mutex_lock(&w->lock);
    if (s->prev)
        s->prev->next = s->next;
    else
        w->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    w->nsessions--;
    pthread_mutex_unlock(&w->lock);
    if (s->be_pid)
        px_cancel_unregister(s->be_pid, s->be_key);
    if (!s->is_control)
        atomic_fetch_sub(&px_d.nclients, 1);
    else
        atomic_fetch_sub(&px_d.ncontrol, 1);
    login_done(s);
    px_inc(px_d.closed.xacts, px_get(s->st_xacts));
    px_inc(px_d.closed.queries, px_get(s->st_queries));
    px_inc(px_d.closed.bytes_in, px_get(s->st_bytes_in));
    px_inc(px_d.closed.bytes_out, px_get(s->st_bytes_out));
    if (s->linger)
        event_free(s->linger);
    px_io_free(s->client);
    px_io_free(s->server);
    free(s->startup);
    px_prep_free(s->prep);
    free(s);
}

static void linger_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    px_session_free(arg);
}

/* Close once the client has been sent what is in its out buffer (bounded wait). */
static void close_after_flush(px_session *s)
{
    login_done(s);
    s->state = PS_CLOSING;
    px_io_read_enable(s->client, false);
    if (s->server) {
        px_io_free(s->server);
        s->server = NULL;
    }
    if (!px_io_flush(s->client) || px_io_out_len(s->client) == 0) {
        px_session_free(s);
        return;
    }
    struct timeval tv = {LINGER_SECONDS, 0};
    s->linger = evtimer_new(s->w->base, linger_cb, s);
    if (s->linger)
        evtimer_add(s->linger, &tv);
}

/* Send an ErrorResponse FATAL with an optional detail, log one line, close once sent. */
static void send_fatal(px_session *s, const char *sqlstate, const char *msg, const char *detail)
{
    px_info("c%llu %s/%s@%s: %s (%s)", (unsigned long long)s->id, s->database, s->user, s->addr,
            msg, sqlstate);
    pgw_buf b;
    pgw_buf_init(&b);
    pgw_build_error(&b, "FATAL", sqlstate, msg, detail, NULL);
    if (!b.oom)
        evbuffer_add(s->client->out, b.data, b.len);
    pgw_buf_free(&b);
    close_after_flush(s);
}

void px_session_fail(px_session *s, const char *sqlstate, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    send_fatal(s, sqlstate, msg, NULL);
}

/* client_login_timeout reached. Before the startup packet was read (silent sockets, a
 * TLS handshake or SSLRequest that goes nowhere) the connection is closed without a word,
 * as PostgreSQL's StartupPacketTimeoutHandler does; once the client said who it is, it
 * gets a FATAL 08P01 (as pgbouncer's "client_login_timeout"), so the application
 * sees why. One log line either way. */
static void login_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    px_session *s = arg;
    (void)fd;
    (void)what;
    int lt = atomic_load(&px_d.client_login_timeout);
    if (s->startup == NULL) {
        px_info("c%llu %s%s: client_login_timeout (%d s) before the startup packet: closed",
                (unsigned long long)s->id, s->addr, s->is_control ? " (console)" : "", lt);
        px_session_free(s);
        return;
    }
    px_session_fail(s, "08P01", "client_login_timeout (%d s) reached before login completed",
                    lt);
}

/* ---------- startup: client side ---------- */

static void connect_server(px_session *s);

static void copy_param(char *dst, size_t len, const pgw_startup *st, const char *name)
{
    const char *v = pgw_startup_param(st, name);
    snprintf(dst, len, "%s", v ? v : "");
}

static void reply_byte(px_session *s, char c)
{
    evbuffer_add(s->client->out, &c, 1);
    px_io_flush(s->client);
}

/* Refuse a startup packet as PostgreSQL 15's ProcessStartupPacket does: a bad length
 * closes without a word (a client that sent something else first, e.g. node-postgres'
 * Terminate 'X' 0 0 0 4 before its StartupMessage, must not get an error to raise), an
 * unsupported protocol or a bad layout gets the server's FATAL. One log line either way. */
static void refuse_startup(px_session *s, const pgw_startup *st)
{
    char msg[200];
    pgw_buf b;
    pgw_buf_init(&b);
    bool ok = pgw_build_startup_refusal(&b, st, msg, sizeof msg);
    if (st->fault == PGW_SF_LENGTH || !ok) {
        px_info("c%llu %s: invalid length of startup packet: closed", (unsigned long long)s->id,
                s->addr);
        pgw_buf_free(&b);
        px_session_free(s);
        return;
    }
    px_info("c%llu %s: %s (%s)", (unsigned long long)s->id, s->addr, msg,
            st->fault == PGW_SF_LAYOUT ? "08P01" : "0A000");
    evbuffer_add(s->client->out, b.data, b.len);
    pgw_buf_free(&b);
    close_after_flush(s);
}

#define MITM_DETAIL                                                                                \
    "This could be either a client-software bug or evidence of an attempted man-in-the-middle "   \
    "attack."

/* Handle one startup packet in client->in. Returns false when the session is gone or
 * must wait (no further packet processing now). */
static bool startup_packet(px_session *s)
{
    struct evbuffer *in = s->client->in;
    size_t have = evbuffer_get_length(in);
    if (have < 4)
        return false;
    size_t n = have < PGW_MAX_STARTUP_TOTAL ? have : PGW_MAX_STARTUP_TOTAL;
    const uint8_t *p = evbuffer_pullup(in, (ev_ssize_t)n);
    if (p == NULL) {
        px_session_fail(s, "53200", "out of memory");
        return false;
    }
    pgw_startup st;
    pgw_status rc = pgw_parse_startup(p, n, &st);
    if (rc == PGW_INCOMPLETE)
        return false;
    if (rc == PGW_OK && ((st.kind == PGW_STARTUP_SSL && s->ssl_done) ||
                         (st.kind == PGW_STARTUP_GSSENC && s->gss_done))) {
        /* A second request of the same kind: the server reads its code as a protocol
         * version ("unsupported frontend protocol 1234.5679"). */
        st.protocol = st.kind == PGW_STARTUP_SSL ? PGW_SSL_REQUEST_CODE : PGW_GSSENC_REQUEST_CODE;
        st.fault = PGW_SF_PROTOCOL;
        rc = PGW_BAD;
    }
    if (rc != PGW_OK) {
        refuse_startup(s, &st);
        return false;
    }
    uint32_t plen = st.len;
    switch (st.kind) {
    case PGW_STARTUP_SSL:
        evbuffer_drain(in, plen);
        /* As the server: another SSLRequest is refused; a GSSENCRequest may follow only
         * when TLS was declined (the client may negotiate in either order). */
        s->ssl_done = true;
        if (px_d.client_ctx == NULL) {
            reply_byte(s, 'N');
            if (evbuffer_get_length(in) > 0) {
                send_fatal(s, "08P01", "received unencrypted data after SSL request",
                           MITM_DETAIL);
                return false;
            }
            return true;
        }
        if (evbuffer_get_length(in) > 0) {
            /* Bytes after SSLRequest would be read as if encrypted (CVE-2021-23214). */
            send_fatal(s, "08P01", "received unencrypted data after SSL request", MITM_DETAIL);
            return false;
        }
        SSL *ssl = SSL_new(px_d.client_ctx);
        if (ssl == NULL) {
            px_session_fail(s, "53200", "out of memory");
            return false;
        }
        reply_byte(s, 'S');
        s->gss_done = true;
        s->state = PS_CLIENT_TLS;
        s->client_tls = true;
        px_io_start_tls(s->client, ssl, true);
        return false;
    case PGW_STARTUP_GSSENC:
        evbuffer_drain(in, plen);
        s->gss_done = true;
        reply_byte(s, 'N');
        if (evbuffer_get_length(in) > 0) {
            send_fatal(s, "08P01", "received unencrypted data after GSSAPI encryption request",
                       MITM_DETAIL);
            return false;
        }
        return true;
    case PGW_STARTUP_CANCEL:
        evbuffer_drain(in, plen);
        /* The client's connection goes with the request: it is closed once the
         * server has taken the cancel (see px_cancel_forward). */
        px_cancel_forward(s->w->base, st.cancel_pid, st.cancel_key, s->client);
        s->client = NULL;
        px_session_free(s);
        return false;
    case PGW_STARTUP_MESSAGE:
        break;
    }
    copy_param(s->user, sizeof s->user, &st, "user");
    copy_param(s->database, sizeof s->database, &st, "database");
    if (!*s->database)
        snprintf(s->database, sizeof s->database, "%s", s->user);
    copy_param(s->appname, sizeof s->appname, &st, "application_name");
    s->startup = malloc(plen);
    if (s->startup == NULL) {
        px_session_fail(s, "53200", "out of memory");
        return false;
    }
    evbuffer_remove(in, s->startup, plen);
    s->startup_len = plen;
    if (!*s->user) {
        px_session_fail(s, "28000", "no PostgreSQL user name specified in startup packet");
        return false;
    }
    if (!s->is_control && atomic_load(&px_d.nclients) > atomic_load(&px_d.max_client_conn)) {
        px_session_fail(s, "53300", "sorry, too many clients already (max_client_conn %d)",
                        atomic_load(&px_d.max_client_conn));
        return false;
    }
    if (s->is_control && atomic_load(&px_d.ncontrol) > atomic_load(&px_d.max_control_conn)) {
        px_session_fail(s, "53300",
                        "sorry, too many console connections already (max_control_conn %d)",
                        atomic_load(&px_d.max_control_conn));
        return false;
    }
    if (px_d.conf.client_tls_mode == CONF_CTLS_REQUIRE && !s->client_tls) {
        px_session_fail(s, "28000",
                        "client_tls_mode is require: connect with TLS (sslmode=require)");
        return false;
    }
    px_io_read_enable(s->client, false); /* nothing more until the server answers */
    connect_server(s);
    return false;
}

static void client_startup_read(px_session *s)
{
    while (s->state == PS_STARTUP && startup_packet(s))
        ;
}

/* ---------- startup: server side ---------- */

static void send_startup_to_server(px_session *s)
{
    s->state = PS_RELAY;
    evbuffer_add(s->server->out, s->startup, s->startup_len);
    if (!px_io_flush(s->server)) {
        px_session_fail(s, "08006", "could not send startup packet to server: %s",
                        s->server->err);
        return;
    }
    px_io_read_enable(s->server, true);
    px_io_read_enable(s->client, true);
    if (px_io_in_len(s->client) > 0)
        relay_client(s);
}

static void connect_server(px_session *s)
{
    px_target t;
    SSL_CTX *sctx;
    px_target_get(&t, &sctx);
    int fd = socket(t.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        px_session_fail(s, "08006", "could not create socket: %s", strerror(errno));
        return;
    }
    if (!t.is_unix) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    if (connect(fd, (struct sockaddr *)&t.addr, t.addrlen) < 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        px_session_fail(s, "08006", "could not connect to server %s:%d: %s", t.host, t.port,
                        strerror(e));
        return;
    }
    s->state = PS_CONNECTING;
    s->server = px_io_new(s->w->base, fd, true, server_cb, s);
    if (s->server == NULL)
        px_session_fail(s, "53200", "out of memory");
}

static void server_connected(px_session *s)
{
    px_target t;
    SSL_CTX *sctx;
    px_target_get(&t, &sctx);
    if (s->state == PS_SERVER_TLS) {
        s->server_tls = true;
        send_startup_to_server(s);
        return;
    }
    if (t.tls_mode == CONF_STLS_DISABLE || t.is_unix || sctx == NULL) {
        send_startup_to_server(s);
        return;
    }
    pgw_buf b;
    pgw_buf_init(&b);
    pgw_build_ssl_request(&b);
    evbuffer_add(s->server->out, b.data, b.len);
    pgw_buf_free(&b);
    s->state = PS_SERVER_SSLREQ;
    px_io_flush(s->server);
    px_io_read_enable(s->server, true);
}

static void server_ssl_answer(px_session *s)
{
    px_target t;
    SSL_CTX *sctx;
    px_target_get(&t, &sctx);
    char c;
    if (evbuffer_remove(s->server->in, &c, 1) != 1)
        return;
    if (c == 'S' && evbuffer_get_length(s->server->in) == 0) {
        SSL *ssl = sctx ? px_tls_server_ssl(sctx, t.tls_mode, t.host) : NULL;
        if (ssl == NULL) {
            px_session_fail(s, "08006", "could not start TLS to server");
            return;
        }
        s->state = PS_SERVER_TLS;
        px_io_read_enable(s->server, false);
        px_io_start_tls(s->server, ssl, false);
    } else if (c == 'N' && t.tls_mode == CONF_STLS_PREFER) {
        px_io_read_enable(s->server, false);
        send_startup_to_server(s);
    } else if (c == 'N') {
        px_session_fail(s, "08006", "server does not support TLS, but server_tls_mode is %s",
                        t.tls_mode == CONF_STLS_REQUIRE ? "require" : "verify");
    } else {
        px_session_fail(s, "08006", "unexpected answer to SSLRequest from server");
    }
}

/* ---------- relay ---------- */

static inline void copy_at(struct evbuffer *b, size_t off, void *dst, size_t n)
{
    struct evbuffer_ptr p;
    evbuffer_ptr_set(b, &p, off, EVBUFFER_PTR_SET);
    evbuffer_copyout_from(b, &p, dst, n);
}

static void park(px_session *s)
{
    s->parked = true;
    s->park_start_us = px_now_us();
    uint64_t none = 0; /* the first park of this hold marks the longest wait's start */
    atomic_compare_exchange_strong(&px_d.hold_first_park_us, &none, s->park_start_us);
    s->park_next = s->w->parked;
    s->w->parked = s;
    px_io_read_enable(s->client, false);
}

void px_session_unpark(px_session *s)
{
    assert(s->parked);
    uint64_t waited = px_now_us() - s->park_start_us;
    s->parked = false;
    px_inc(s->st_held_us, waited);
    px_stats_record_hold(&s->w->stats, waited);
    if (!s->client_paused)
        px_io_read_enable(s->client, true);
    relay_client(s);
}

/* Client -> server: walk headers, forward by length, count requests, park at a
 * transaction boundary while a hold is in place. Returns false when the session was
 * closed (freed or closing). */
static bool relay_client(px_session *s)
{
    struct evbuffer *in = s->client->in;
    size_t avail = evbuffer_get_length(in), fwd = 0;
    uint32_t max_len = atomic_load_explicit(&px_d.max_packet_size, PX_RELAXED);
    bool hold_here = false, stale_here = false;
    if (px_prep_busy(s))
        return true; /* the client's messages wait for the re-prepare (px_prep_consume) */
    while (fwd < avail) {
        if (s->c_left) {
            size_t n = avail - fwd < s->c_left ? avail - fwd : s->c_left;
            fwd += n;
            s->c_left -= (uint32_t)n;
            continue;
        }
        if (avail - fwd < PGW_HEADER_LEN)
            break;
        uint8_t hb[PGW_HEADER_LEN];
        copy_at(in, fwd, hb, PGW_HEADER_LEN);
        pgw_header h;
        pgw_status rc = pgw_read_header(hb, PGW_HEADER_LEN, max_len, &h);
        if (rc != PGW_OK) {
            char t[8]; /* h is not filled on error: name the type byte itself */
            snprintf(t, sizeof t, hb[0] >= 0x20 && hb[0] < 0x7f ? "'%c'" : "0x%02x", hb[0]);
            px_session_fail(s, rc == PGW_TOO_LONG ? "54000" : "08P01",
                            rc == PGW_TOO_LONG ? "message of type %s longer than max_packet_size"
                                               : "invalid message length (type %s)",
                            t);
            return false;
        }
        if (s->is_control && h.type != 'p') {
            s->ctl_waiting = true;
            /* Console: only authentication responses reach the server. Anything else
             * waits in the buffer (reading stopped) until the role check is done and
             * the console itself answers it, so no query can pass the check. */
            px_io_read_enable(s->client, false);
            break;
        }
        if (s->idle && h.type != 'X' && !s->is_control && px_hold_active()) {
            hold_here = true; /* forward what precedes, then park on this message */
            break;
        }
        if (!s->unsynced && h.type != 'X' && atomic_load_explicit(&s->stale, PX_RELAXED)) {
            if (fwd > 0) { /* forward what precedes first */
                stale_here = true;
                break;
            }
            px_stale_verdict v = px_prep_stale_check(s);
            if (v == PX_STALE_CLOSED)
                return false;
            if (v == PX_STALE_BUSY)
                return true;
            if (v == PX_STALE_WAIT) {
                s->prep_wait = true; /* on_ready resumes */
                px_io_read_enable(s->client, false);
                break;
            }
        }
        if (!s->is_control) {
            px_prep_verdict pv = px_prep_client_msg(s, fwd, &h, avail);
            if (pv == PX_PREP_CLOSED)
                return false;
            if (pv == PX_PREP_MORE)
                break;
        }
        switch (h.type) {
        case 'Q':
        case 'S':
            s->unsynced = false;
            s->pending++;
            break;
        case 'F':
            s->pending++;
            break;
        case 'X':
            s->terminating = true;
            break;
        case 'd':
        case 'c':
        case 'f':
            break;
        default:
            s->unsynced = true;
        }
        if (!s->req_open && h.type != 'X') {
            s->req_open = true;
            s->req_start_us = px_now_us();
        }
        if (s->idle && !s->inflight && !s->is_control && h.type != 'X') {
            s->inflight = true; /* an implicit transaction (or a BEGIN) on its way */
            atomic_fetch_add(&px_d.inflight, 1);
        }
        s->idle = false;
        s->c_left = h.len + 1;
    }
    if (fwd) {
        evbuffer_remove_buffer(in, s->server->out, fwd);
        px_inc(s->st_bytes_in, fwd);
        if (!px_io_flush(s->server)) {
            px_session_fail(s, "08006", "server connection lost: %s", s->server->err);
            return false;
        }
        if (px_io_out_len(s->server) > PX_IO_OUT_HIGH) {
            s->client_paused = true;
            px_io_read_enable(s->client, false);
        }
    }
    if (hold_here)
        park(s);
    else if (stale_here)
        return relay_client(s);
    return true;
}

/* A ReadyForQuery from the server ends a request cycle. */
static void on_ready(px_session *s, char status)
{
    s->xact = status;
    s->copy = 0;
    if (s->pending > 0)
        s->pending--;
    if (!s->authed) {
        s->authed = true;
        login_done(s);
        s->pending = 0;
        s->req_open = false;
    } else if (s->pending == 0 && s->req_open) {
        s->req_open = false;
        px_stats_record_latency(&s->w->stats, px_now_us() - s->req_start_us);
    }
    px_inc(s->st_queries, 1);
    if (status == 'I')
        px_inc(s->st_xacts, 1);
    s->idle = s->pending == 0 && !s->unsynced && status == 'I';
    bool in_xact = status != 'I' && !s->is_control;
    if (in_xact != s->in_xact) { /* the hold's drain counts it (px_hold_enter) */
        s->in_xact = in_xact;
        atomic_fetch_add(&px_d.in_xact, in_xact ? 1 : -1);
    }
    if (s->inflight && (s->idle || status != 'I')) { /* answered, or inside a transaction now */
        s->inflight = false;
        atomic_fetch_sub(&px_d.inflight, 1);
    }
}

/* AuthenticationSASL: drop SCRAM-SHA-256-PLUS. Channel binding binds to the certificate
 * of the TLS connection the client sees, which is the proxy's (or none), never the
 * server's, so it cannot cross the proxy. Returns the rebuilt message in b, or false to
 * forward the original. */
static bool filter_sasl(const uint8_t *body, size_t n, pgw_buf *b)
{
    const char *mechs[16], *keep[16];
    int count = 0, nkeep = 0;
    if (pgw_read_sasl_mechanisms(body, n, mechs, 16, &count) != PGW_OK)
        return false;
    for (int i = 0; i < count; i++)
        if (strcmp(mechs[i], "SCRAM-SHA-256-PLUS") != 0)
            keep[nkeep++] = mechs[i];
    if (nkeep == count)
        return false;
    return pgw_build_auth_sasl(b, keep, nkeep) && !b->oom;
}

/* Server -> client: forward by length; inspect ReadyForQuery, BackendKeyData,
 * Authentication and COPY responses. Returns false when the session was closed. */
static bool relay_server(px_session *s)
{
    struct evbuffer *in = s->server->in, *out = s->client->out;
    if (px_prep_busy(s)) {
        int r = px_prep_consume(s);
        if (r < 0)
            return false;
        if (r == 0)
            return true;
        /* done: the client's waiting message goes on, then whatever the server sends */
        if (!relay_client(s))
            return false;
    }
    size_t avail = evbuffer_get_length(in), fwd = 0;
    while (fwd < avail) {
        if (s->s_left) {
            size_t n = avail - fwd < s->s_left ? avail - fwd : s->s_left;
            fwd += n;
            s->s_left -= (uint32_t)n;
            continue;
        }
        if (avail - fwd < PGW_HEADER_LEN)
            break;
        uint8_t hb[PGW_HEADER_LEN];
        copy_at(in, fwd, hb, PGW_HEADER_LEN);
        pgw_header h;
        if (pgw_read_header(hb, PGW_HEADER_LEN, UINT32_MAX >> 1, &h) != PGW_OK) {
            px_session_fail(s, "08P01", "invalid message from server");
            return false;
        }
        size_t total = (size_t)h.len + 1;
        bool inspect = h.type == 'Z' || h.type == 'K' || (h.type == 'R' && total <= 512);
        if (h.type != 'Z' && px_prep_watching(s))
            px_prep_server_msg(s, h.type); /* header only: confirms tracked changes */
        if (!inspect) {
            if (h.type == 'G')
                s->copy = 'i';
            else if (h.type == 'H')
                s->copy = 'o';
            else if (h.type == 'W')
                s->copy = 'b';
            s->s_left = (uint32_t)total;
            continue;
        }
        if (avail - fwd < total)
            break; /* small message: wait for all of it */
        uint8_t body[512];
        size_t blen = total - PGW_HEADER_LEN;
        copy_at(in, fwd + PGW_HEADER_LEN, body, blen < sizeof body ? blen : sizeof body);
        if (h.type == 'Z') {
            char st;
            if (pgw_read_ready(body, blen, &st) != PGW_OK) {
                px_session_fail(s, "08P01", "invalid ReadyForQuery from server");
                return false;
            }
            if (s->is_control && !s->authed) {
                /* The control console takes over after authentication. */
                evbuffer_remove_buffer(in, out, fwd);
                evbuffer_drain(in, total);
                s->authed = true;
                login_done(s);
                return px_control_authenticated(s);
            }
            if (px_prep_watching(s))
                px_prep_server_msg(s, 'Z');
            on_ready(s, st);
        } else if (h.type == 'K') {
            if (pgw_read_backend_key(body, blen, &s->be_pid, &s->be_key) == PGW_OK)
                px_cancel_register(s->be_pid, s->be_key);
        } else if (h.type == 'R') {
            uint32_t code;
            pgw_buf b;
            pgw_buf_init(&b);
            bool ok = pgw_read_auth_code(body, blen, &code) == PGW_OK;
            if (ok && s->is_control && s->ctl_waiting && code != 0 && code != 12) {
                /* As PostgreSQL: the client's next message must answer the request. */
                pgw_buf_free(&b);
                px_session_fail(s, "08P01", "expected an authentication response, got another "
                                            "message before login completed");
                return false;
            }
            if (ok && code == 10 && filter_sasl(body, blen, &b)) {
                evbuffer_remove_buffer(in, out, fwd);
                evbuffer_drain(in, total);
                evbuffer_add(out, b.data, b.len);
                px_inc(s->st_bytes_out, fwd + b.len);
                avail = evbuffer_get_length(in);
                fwd = 0;
                pgw_buf_free(&b);
                continue;
            }
            pgw_buf_free(&b);
        }
        fwd += total;
    }
    if (fwd) {
        evbuffer_remove_buffer(in, out, fwd);
        px_inc(s->st_bytes_out, fwd);
    }
    if (!px_io_flush(s->client)) {
        px_session_free(s);
        return false;
    }
    if (px_io_out_len(s->client) > PX_IO_OUT_HIGH) {
        s->server_paused = true;
        px_io_read_enable(s->server, false);
    }
    if (s->prep_wait && s->pending == 0) { /* a stale session's message waited for this */
        s->prep_wait = false;
        if (!s->client_paused && !s->parked)
            px_io_read_enable(s->client, true);
        if (!s->parked)
            return relay_client(s);
    }
    return true;
}

/* ---------- event callbacks ---------- */

static void client_cb(px_io *io, px_io_event ev, void *arg)
{
    px_session *s = arg;
    (void)io;
    switch (ev) {
    case PX_IO_READ:
        if (s->state == PS_STARTUP)
            client_startup_read(s);
        else if (s->state == PS_RELAY && s->is_control && s->authed)
            px_control_read(s);
        else if (s->state == PS_RELAY && !s->parked)
            relay_client(s);
        return;
    case PX_IO_CONNECTED: /* TLS handshake with the client done */
        s->state = PS_STARTUP;
        px_io_read_enable(s->client, true);
        if (px_io_in_len(s->client) > 0)
            client_startup_read(s);
        return;
    case PX_IO_DRAINED:
        if (s->state == PS_CLOSING) {
            if (px_io_out_len(s->client) == 0)
                px_session_free(s);
            return;
        }
        if (s->server_paused && px_io_out_len(s->client) <= PX_IO_OUT_LOW) {
            s->server_paused = false;
            px_io_read_enable(s->server, true);
            if (px_io_in_len(s->server) > 0)
                relay_server(s);
        }
        return;
    case PX_IO_EOF:
    case PX_IO_ERROR:
        if (ev == PX_IO_ERROR && !s->terminating)
            px_debug("c%llu client: %s", (unsigned long long)s->id, io->err);
        px_session_free(s);
        return;
    }
}

static void server_cb(px_io *io, px_io_event ev, void *arg)
{
    px_session *s = arg;
    switch (ev) {
    case PX_IO_READ:
        if (s->state == PS_SERVER_SSLREQ)
            server_ssl_answer(s);
        else if (s->is_control && s->authed)
            px_control_server_read(s);
        else
            relay_server(s);
        return;
    case PX_IO_CONNECTED:
        server_connected(s);
        return;
    case PX_IO_DRAINED:
        if (s->client_paused && px_io_out_len(s->server) <= PX_IO_OUT_LOW) {
            s->client_paused = false;
            if (!s->parked)
                px_io_read_enable(s->client, true);
            if (px_io_in_len(s->client) > 0 && !s->parked)
                relay_client(s);
        }
        return;
    case PX_IO_EOF:
    case PX_IO_ERROR:
        if (s->state == PS_RELAY) {
            /* Deliver what the server said last (e.g. a FATAL), then close. */
            if (px_io_in_len(io) > 0 && !(s->is_control && s->authed) && !relay_server(s))
                return;
            close_after_flush(s);
        } else if (s->state == PS_CLOSING) {
            return;
        } else {
            px_target t;
            px_target_get(&t, NULL);
            px_session_fail(s, "08006", "could not connect to server %s:%d: %s", t.host, t.port,
                            io->err[0] ? io->err : "connection closed");
        }
        return;
    }
}
