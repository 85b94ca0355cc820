/* px_daemon.c — see px_daemon.h. */
#include "px_daemon.h"

#include "osc_engine.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "conf_mask.h"
#include "px_cancel.h"
#include "px_log.h"
#include "px_prepare.h"
#include "px_session.h"
#include "px_tls.h"

px_daemon px_d;

static struct evconnlistener *listeners[3];
static int nlisteners;
static char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static struct event *shutdown_timer;
static uint64_t shutdown_deadline_us;
static int next_worker;

uint64_t px_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---------- server target ---------- */

static bool resolve_target(const conf_t *c, px_target *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    snprintf(t->host, sizeof t->host, "%s", c->server_host);
    t->port = c->server_port;
    t->tls_mode = c->server_tls_mode;
    if (c->server_host[0] == '/') {
        struct sockaddr_un *u = (struct sockaddr_un *)&t->addr;
        u->sun_family = AF_UNIX;
        int n = snprintf(u->sun_path, sizeof u->sun_path, "%s/.s.PGSQL.%d", c->server_host,
                         c->server_port);
        if (n >= (int)sizeof u->sun_path) {
            snprintf(err, errlen, "server_host: unix socket path too long");
            return false;
        }
        t->addrlen = sizeof *u;
        t->is_unix = true;
        return true;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    char port[16];
    snprintf(port, sizeof port, "%d", c->server_port);
    int rc = getaddrinfo(c->server_host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "server_host \"%s\": %s", c->server_host, gai_strerror(rc));
        return false;
    }
    memcpy(&t->addr, res->ai_addr, res->ai_addrlen);
    t->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return true;
}

void px_target_get(px_target *t, SSL_CTX **server_ctx)
{
    pthread_mutex_lock(&px_d.conf_lock);
    *t = px_d.target;
    if (server_ctx)
        *server_ctx = px_d.server_ctx;
    pthread_mutex_unlock(&px_d.conf_lock);
}

/* ---------- hold / release ---------- */

bool px_hold_active(void)
{
    return atomic_load_explicit(&px_d.hold, memory_order_acquire);
}

static void wake_all(void)
{
    for (int i = 0; i < px_d.nworkers; i++)
        event_active(px_d.workers[i].wake_ev, EV_READ, 0);
}

/* The hold has two owners: the operator (PAUSE/RESUME, on or off) and the engine
 * (counted: every px_hold_enter is followed by one px_hold_leave). It is in place while
 * either holds it, until hold_timeout_ms lifts it for everyone. */
static pthread_mutex_t hold_mu = PTHREAD_MUTEX_INITIALIZER;
static bool hold_operator;
static int hold_engine;

static void hold_on_locked(void)
{
    if (!atomic_exchange(&px_d.hold, true)) {
        atomic_store(&px_d.hold_started_us, px_now_us());
        atomic_store(&px_d.hold_first_park_us, 0);
        int ms = atomic_load(&px_d.conf.hold_timeout_ms);
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        if (px_d.hold_timer)
            evtimer_add(px_d.hold_timer, &tv);
        px_info("hold: new transactions wait at the proxy (hold_timeout_ms %d)", ms);
    }
}

static void hold_off_locked(void)
{
    if (atomic_exchange(&px_d.hold, false)) {
        uint64_t now = px_now_us(), first = atomic_load(&px_d.hold_first_park_us);
        atomic_store(&px_d.last_hold_max_wait_us, first ? now - first : 0);
        uint64_t held = now - atomic_load(&px_d.hold_started_us);
        atomic_fetch_add(&px_d.release_gen, 1);
        if (px_d.hold_timer)
            evtimer_del(px_d.hold_timer);
        wake_all();
        px_info("release: hold lifted after %.1f ms", held / 1000.0);
    }
}

double px_hold_last_max_wait_ms(void)
{
    return atomic_load(&px_d.last_hold_max_wait_us) / 1000.0;
}

double px_hold_wait_ms(void)
{
    uint64_t first = atomic_load(&px_d.hold_first_park_us);
    return px_hold_active() && first ? (px_now_us() - first) / 1000.0 : 0.0;
}

void px_hold(void)
{
    pthread_mutex_lock(&hold_mu);
    hold_operator = true;
    hold_on_locked();
    pthread_mutex_unlock(&hold_mu);
}

void px_release(void)
{
    pthread_mutex_lock(&hold_mu);
    hold_operator = false;
    if (hold_engine == 0)
        hold_off_locked();
    pthread_mutex_unlock(&hold_mu);
}

void px_hold_enter(void)
{
    pthread_mutex_lock(&hold_mu);
    hold_engine++;
    hold_on_locked();
    pthread_mutex_unlock(&hold_mu);
    /* The drain (bounded: PX_HOLD_DRAIN_MS). Requests forwarded just before the hold,
     * outside a transaction, are answered before the engine takes its lock: queued behind
     * that lock they would run after the change, with plans prepared before it (issue 14's
     * 0A000). Transactions under way end: one that holds a lock on a table the engine
     * locks second, and wants the one it locked first (ADD FOREIGN KEY locks the
     * referencing table, then the referenced), would make a cycle only lock_timeout
     * breaks; their next transaction is held like every new one. */
    uint64_t until = px_now_us() + PX_HOLD_DRAIN_MS * 1000ULL;
    while ((atomic_load(&px_d.inflight) > 0 || atomic_load(&px_d.in_xact) > 0) &&
           px_now_us() < until) {
        struct timespec ts = {0, 1000 * 1000}; /* 1 ms */
        nanosleep(&ts, NULL);
    }
}

void px_hold_leave(void)
{
    pthread_mutex_lock(&hold_mu);
    if (hold_engine > 0)
        hold_engine--;
    if (!hold_operator && hold_engine == 0)
        hold_off_locked();
    pthread_mutex_unlock(&hold_mu);
}

static void hold_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    pthread_mutex_lock(&hold_mu);
    if (px_hold_active()) {
        px_warn("hold_timeout_ms reached: releasing held sessions");
        hold_operator = false;
        hold_off_locked();
    }
    pthread_mutex_unlock(&hold_mu);
}

void px_stats_total(px_stats *out)
{
    memset(out, 0, sizeof *out);
    px_stats_add(out, &px_d.closed);
    for (int i = 0; i < px_d.nworkers; i++) {
        px_worker *w = &px_d.workers[i];
        px_stats_add(out, &w->stats);
        pthread_mutex_lock(&w->lock);
        for (px_session *s = w->sessions; s; s = s->next) {
            px_inc(out->xacts, px_get(s->st_xacts));
            px_inc(out->queries, px_get(s->st_queries));
            px_inc(out->bytes_in, px_get(s->st_bytes_in));
            px_inc(out->bytes_out, px_get(s->st_bytes_out));
        }
        pthread_mutex_unlock(&w->lock);
    }
}

/* ---------- workers ---------- */

static void worker_wake(evutil_socket_t fd, short what, void *arg)
{
    px_worker *w = arg;
    (void)fd;
    (void)what;
    pthread_mutex_lock(&w->lock);
    int n = w->nqueue, *q = NULL;
    if (n) {
        q = malloc(sizeof(int) * (size_t)n);
        if (q)
            memcpy(q, w->queue, sizeof(int) * (size_t)n);
        else
            for (int i = 0; i < n; i++)
                close(w->queue[i] / 2);
        w->nqueue = 0;
    }
    pthread_mutex_unlock(&w->lock);
    for (int i = 0; q && i < n; i++)
        px_session_accept(w, q[i] / 2, q[i] % 2);
    free(q);

    uint64_t gen = atomic_load(&px_d.release_gen);
    if (gen != w->release_seen || !px_hold_active()) {
        w->release_seen = gen;
        /* Unpark in arrival order: the list is LIFO, so reverse it first. */
        px_session *rev = NULL;
        while (w->parked) {
            px_session *s = w->parked;
            w->parked = s->park_next;
            s->park_next = rev;
            rev = s;
        }
        while (rev) {
            px_session *s = rev;
            rev = s->park_next;
            s->park_next = NULL;
            px_session_unpark(s);
        }
    }
}

static void *worker_main(void *arg)
{
    px_worker *w = arg;
    event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static void hand_over(int fd, bool is_control)
{
    if (atomic_load(&px_d.shutting_down)) {
        close(fd);
        return;
    }
    px_worker *w = &px_d.workers[next_worker++ % px_d.nworkers];
    pthread_mutex_lock(&w->lock);
    if (w->nqueue == w->capqueue) {
        int cap = w->capqueue ? w->capqueue * 2 : 64;
        int *q = realloc(w->queue, sizeof(int) * (size_t)cap);
        if (q == NULL) {
            pthread_mutex_unlock(&w->lock);
            close(fd);
            return;
        }
        w->queue = q;
        w->capqueue = cap;
    }
    w->queue[w->nqueue++] = fd * 2 + (is_control ? 1 : 0);
    pthread_mutex_unlock(&w->lock);
    event_active(w->wake_ev, EV_READ, 0);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    (void)l;
    (void)sa;
    (void)socklen;
    evutil_make_socket_nonblocking(fd);
    evutil_make_socket_closeonexec(fd);
    hand_over(fd, arg != NULL);
}

/* Accepting pauses for this long when the process is out of file descriptors or memory:
 * the pending connection stays in the listen queue, so the listener would wake at once
 * again and spin (pgbouncer pauses its listener the same way). */
#define ACCEPT_PAUSE_MS 1000

static struct event *accept_resume_ev;
static bool accept_paused;

static void accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    accept_paused = false;
    for (int i = 0; i < nlisteners; i++)
        evconnlistener_enable(listeners[i]);
}

/* Main thread. Out of descriptors (EMFILE, ENFILE) or memory (ENOBUFS, ENOMEM): stop
 * every listener for ACCEPT_PAUSE_MS, with one log line per pause. Other errors (a peer
 * that reset before accept) are logged and accepting goes on. */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    int e = EVUTIL_SOCKET_ERROR();
    (void)l;
    (void)arg;
    if (e != EMFILE && e != ENFILE && e != ENOBUFS && e != ENOMEM) {
        px_warn("accept: %s", strerror(e));
        return;
    }
    if (accept_paused)
        return;
    accept_paused = true;
    for (int i = 0; i < nlisteners; i++)
        evconnlistener_disable(listeners[i]);
    struct timeval tv = {ACCEPT_PAUSE_MS / 1000, (ACCEPT_PAUSE_MS % 1000) * 1000};
    if (accept_resume_ev == NULL)
        accept_resume_ev = evtimer_new(px_d.main_base, accept_resume_cb, NULL);
    if (accept_resume_ev == NULL || evtimer_add(accept_resume_ev, &tv) != 0) {
        accept_resume_cb(-1, 0, NULL); /* cannot pause: better spin than stop for good */
        px_warn("accept: %s", strerror(e));
        return;
    }
    px_warn("accept: %s: not accepting new connections for %d ms", strerror(e), ACCEPT_PAUSE_MS);
}

/* ---------- listeners ---------- */

static bool listen_tcp(const char *addr, int port, bool is_control)
{
    if (!*addr)
        return true;
    const char *host = strcmp(addr, "*") == 0 ? NULL : addr;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
    char ports[16];
    snprintf(ports, sizeof ports, "%d", port);
    int rc = getaddrinfo(host, ports, &hints, &res);
    if (rc != 0) {
        px_error("listen %s:%d: %s", addr, port, gai_strerror(rc));
        return false;
    }
    struct evconnlistener *l = evconnlistener_new_bind(
        px_d.main_base, accept_cb, is_control ? (void *)1 : NULL,
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 512, res->ai_addr,
        (int)res->ai_addrlen);
    freeaddrinfo(res);
    if (l == NULL) {
        px_error("could not listen on %s:%d: %s", addr, port, strerror(errno));
        return false;
    }
    evconnlistener_set_error_cb(l, accept_error_cb);
    listeners[nlisteners++] = l;
    px_info("listening on %s:%d%s", addr, port, is_control ? " (control console)" : "");
    return true;
}

static bool listen_unix(const char *dir, int port)
{
    if (!*dir)
        return true;
    struct sockaddr_un u = {.sun_family = AF_UNIX};
    if (snprintf(u.sun_path, sizeof u.sun_path, "%s/.s.PGSQL.%d", dir, port) >=
        (int)sizeof u.sun_path) {
        px_error("unix_socket_dir \"%s\": path too long", dir);
        return false;
    }
    unlink(u.sun_path); /* stale socket of a previous run */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&u, sizeof u) < 0 || listen(fd, 512) < 0) {
        px_error("could not listen on %s: %s", u.sun_path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return false;
    }
    chmod(u.sun_path, 0777);
    struct evconnlistener *l =
        evconnlistener_new(px_d.main_base, accept_cb, NULL, LEV_OPT_CLOSE_ON_FREE, 512, fd);
    if (l == NULL) {
        close(fd);
        return false;
    }
    evconnlistener_set_error_cb(l, accept_error_cb);
    listeners[nlisteners++] = l;
    snprintf(unix_path, sizeof unix_path, "%s", u.sun_path);
    px_info("listening on %s", u.sun_path);
    return true;
}

static void close_listeners(void)
{
    for (int i = 0; i < nlisteners; i++)
        evconnlistener_free(listeners[i]);
    nlisteners = 0;
    if (*unix_path)
        unlink(unix_path);
    *unix_path = 0;
}

/* ---------- reload, signals, shutdown ---------- */

bool px_reload(char *err, size_t errlen)
{
    conf_t nc = {0};
    if (!conf_load(&nc, &px_d.cmdline, err, errlen)) {
        px_error("reload failed, keeping the old settings: %s", err);
        return false;
    }
    px_target t;
    if (!resolve_target(&nc, &t, err, errlen)) {
        px_error("reload failed, keeping the old settings: %s", err);
        conf_free(&nc);
        return false;
    }
    SSL_CTX *sctx = NULL;
    if (nc.server_tls_mode != CONF_STLS_DISABLE && !(sctx = px_tls_server_ctx(&nc, err, errlen))) {
        px_error("reload failed, keeping the old settings: %s", err);
        conf_free(&nc);
        return false;
    }
    for (int i = 0; i < conf_nsettings; i++) {
        const conf_setting *s = &conf_settings[i];
        char a[512], b[512];
        conf_value_text(&px_d.conf, s, a, sizeof a);
        conf_value_text(&nc, s, b, sizeof b);
        /* Compared as they are, logged masked (conf_value_display: no passwords). */
        char shown[512];
        if (strcmp(a, b) != 0 && !s->reloadable) {
            conf_value_display(&px_d.conf, s, shown, sizeof shown);
            px_warn("reload: %s changed but needs a restart; keeping %s", s->name, shown);
            conf_set(&nc, s->name, a, err, errlen);
        } else if (strcmp(a, b) != 0) {
            conf_value_display(&nc, s, shown, sizeof shown);
            px_info("reload: %s = %s", s->name, shown);
        }
    }
    pthread_mutex_lock(&px_d.conf_lock);
    /* The old server context may still be in use by handshakes: keep it alive
     * (one small leak per reload that changes TLS) rather than risk a use after free. */
    px_d.server_ctx = sctx ? sctx : px_d.server_ctx;
    px_d.target = t;
    conf_t old = px_d.conf;
    px_d.conf = nc;
    pthread_mutex_unlock(&px_d.conf_lock);
    conf_free(&old);
    atomic_store(&px_d.max_client_conn, nc.max_client_conn);
    atomic_store(&px_d.max_control_conn, nc.max_control_conn);
    atomic_store(&px_d.client_login_timeout, nc.client_login_timeout);
    atomic_store(&px_d.max_packet_size, (uint32_t)nc.max_packet_size);
    atomic_store(&px_d.max_prepared_statements_bytes, (int64_t)nc.max_prepared_statements_bytes);
    px_log_set_level(nc.log_level);
    px_info("configuration reloaded");
    return true;
}

static int total_sessions(void)
{
    int n = 0;
    for (int i = 0; i < px_d.nworkers; i++) {
        pthread_mutex_lock(&px_d.workers[i].lock);
        n += px_d.workers[i].nsessions;
        pthread_mutex_unlock(&px_d.workers[i].lock);
    }
    return n;
}

static void shutdown_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    int n = total_sessions();
    if (n == 0 || px_now_us() >= shutdown_deadline_us) {
        if (n)
            px_warn("shutdown_timeout reached with %d sessions left: closing them", n);
        event_base_loopbreak(px_d.main_base);
    }
}

static void begin_shutdown(void)
{
    if (atomic_exchange(&px_d.shutting_down, true))
        return;
    close_listeners();
    px_release();
    shutdown_deadline_us = px_now_us() + (uint64_t)px_d.conf.shutdown_timeout * 1000000u;
    px_info("shutting down: waiting up to %d s for %d sessions", px_d.conf.shutdown_timeout,
            total_sessions());
    struct timeval tv = {0, 100000};
    shutdown_timer = event_new(px_d.main_base, -1, EV_PERSIST, shutdown_tick, NULL);
    event_add(shutdown_timer, &tv);
    shutdown_tick(-1, 0, NULL);
}

static void shutdown_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    begin_shutdown();
}

static struct event *shutdown_ev;

void px_shutdown(void)
{
    event_active(shutdown_ev, EV_READ, 0);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    (void)arg;
    char err[512];
    if (sig == SIGHUP) {
        px_info("SIGHUP: reloading configuration");
        px_reload(err, sizeof err);
    } else if (sig == SIGTERM) {
        px_info("SIGTERM: no new connections, waiting for sessions to finish");
        begin_shutdown();
    } else if (sig == SIGINT) {
        px_info("SIGINT: closing at once");
        close_listeners();
        event_base_loopbreak(px_d.main_base);
    }
}

/* ---------- run ---------- */

static void engine_log(int level, const char *line)
{
    px_log((conf_log_level)level, "%s", line);
}

static bool engine_settings(conf_t *out)
{
    pthread_mutex_lock(&px_d.conf_lock);
    bool ok = conf_copy(out, &px_d.conf);
    pthread_mutex_unlock(&px_d.conf_lock);
    return ok;
}

static bool start_workers(int n)
{
    px_d.nworkers = n;
    px_d.workers = calloc((size_t)n, sizeof(px_worker));
    if (px_d.workers == NULL)
        return false;
    for (int i = 0; i < n; i++) {
        px_worker *w = &px_d.workers[i];
        w->id = i;
        pthread_mutex_init(&w->lock, NULL);
        w->base = event_base_new();
        if (w->base == NULL)
            return false;
        w->wake_ev = event_new(w->base, -1, EV_PERSIST, worker_wake, w);
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
            return false;
    }
    return true;
}

static void stop_workers(void)
{
    for (int i = 0; i < px_d.nworkers; i++)
        event_base_loopbreak(px_d.workers[i].base);
    for (int i = 0; i < px_d.nworkers; i++) {
        px_worker *w = &px_d.workers[i];
        pthread_join(w->thread, NULL);
        while (w->sessions)
            px_session_free(w->sessions);
        for (int j = 0; j < w->nqueue; j++)
            close(w->queue[j] / 2);
        free(w->queue);
        event_free(w->wake_ev);
        px_cancel_free_pending(w->base);
        event_base_free(w->base);
        pthread_mutex_destroy(&w->lock);
    }
    free(px_d.workers);
    px_d.workers = NULL;
    px_d.nworkers = 0;
}

int px_daemon_run(conf_t *conf, const conf_cmdline *cl)
{
    char err[512];
    int rc = 1;
    px_d.conf = *conf;
    memset(conf, 0, sizeof *conf);
    px_d.cmdline = *cl;
    pthread_mutex_init(&px_d.conf_lock, NULL);
    atomic_store(&px_d.max_client_conn, px_d.conf.max_client_conn);
    atomic_store(&px_d.max_control_conn, px_d.conf.max_control_conn);
    atomic_store(&px_d.client_login_timeout, px_d.conf.client_login_timeout);
    atomic_store(&px_d.max_packet_size, (uint32_t)px_d.conf.max_packet_size);
    atomic_store(&px_d.max_prepared_statements_bytes,
                 (int64_t)px_d.conf.max_prepared_statements_bytes);
    px_log_set_level(px_d.conf.log_level);
    signal(SIGPIPE, SIG_IGN);
    evthread_use_pthreads();

    if (!resolve_target(&px_d.conf, &px_d.target, err, sizeof err)) {
        px_error("%s", err);
        goto out;
    }
    if (px_d.conf.client_tls_mode != CONF_CTLS_DISABLE &&
        !(px_d.client_ctx = px_tls_client_ctx(&px_d.conf, err, sizeof err))) {
        px_error("%s", err);
        goto out;
    }
    if (px_d.conf.server_tls_mode != CONF_STLS_DISABLE &&
        !(px_d.server_ctx = px_tls_server_ctx(&px_d.conf, err, sizeof err))) {
        px_error("%s", err);
        goto out;
    }
    px_d.main_base = event_base_new();
    int n = px_d.conf.workers > 0 ? px_d.conf.workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    if (!start_workers(n)) {
        px_error("could not start %d workers", n);
        goto out;
    }
    px_d.hold_timer = evtimer_new(px_d.main_base, hold_timeout_cb, NULL);
    shutdown_ev = event_new(px_d.main_base, -1, 0, shutdown_cb, NULL);
    struct event *sigs[3];
    int signos[3] = {SIGHUP, SIGTERM, SIGINT};
    for (int i = 0; i < 3; i++) {
        sigs[i] = evsignal_new(px_d.main_base, signos[i], signal_cb, NULL);
        event_add(sigs[i], NULL);
    }
    if (listen_tcp(px_d.conf.listen_addr, px_d.conf.listen_port, false) &&
        listen_unix(px_d.conf.unix_socket_dir, px_d.conf.listen_port) &&
        listen_tcp(px_d.conf.control_addr, px_d.conf.control_port, true)) {
        px_info("pgcutover %s ready: %d workers, server %s:%d", PGC_VERSION, n,
                px_d.conf.server_host, px_d.conf.server_port);
        osc_engine_hooks hooks = {px_hold_enter, px_hold_leave, engine_log, engine_settings,
                                  px_hold_last_max_wait_ms, px_hold_wait_ms,
                                  px_prep_mark_stale, px_prep_change_stats};
        osc_engine_start(&hooks);
        event_base_dispatch(px_d.main_base);
        /* The engine wakes the console jobs waiting in it (a CUTOVER or ABORT behind a
         * lock answers 57P01) and waits for them to leave before it frees a migration. */
        osc_engine_stop();
        atomic_store(&px_d.console_closed, true);
        /* Console jobs post their answer to a worker's event_base: the workers (still
         * running) must take every answer and the threads must end before the bases
         * go. After osc_engine_stop no job can block in the engine, so this is short. */
        for (int i = 0; atomic_load(&px_d.console_jobs) > 0 ||
                        atomic_load(&px_d.console_answers) > 0; i++) {
            if (i == 100)
                px_warn("shutdown: waiting for %d console jobs", atomic_load(&px_d.console_jobs));
            usleep(10000);
        }
        rc = 0;
    }
    close_listeners();
    stop_workers();
    for (int i = 0; i < 3; i++)
        event_free(sigs[i]);
    event_free(px_d.hold_timer);
    event_free(shutdown_ev);
    if (accept_resume_ev) {
        event_free(accept_resume_ev);
        accept_resume_ev = NULL;
    }
    if (shutdown_timer)
        event_free(shutdown_timer);
    event_base_free(px_d.main_base);
    px_info("pgcutover stopped");
out:
    if (px_d.client_ctx)
        SSL_CTX_free(px_d.client_ctx);
    if (px_d.server_ctx)
        SSL_CTX_free(px_d.server_ctx);
    conf_free(&px_d.conf);
    return rc;
}
