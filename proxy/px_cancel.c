/* px_cancel.c — see px_cancel.h. */
#include "px_cancel.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pgwire.h"
#include "px_daemon.h"
#include "px_io.h"
#include "px_log.h"

/* Open-addressing set of (pid, key); sized for max_client_conn well beyond need. */
#define CANCEL_SLOTS 65536
typedef struct {
    uint32_t pid, key;
    bool used;
} cancel_slot;

static cancel_slot slots[CANCEL_SLOTS];
static pthread_mutex_t cancel_lock = PTHREAD_MUTEX_INITIALIZER;

static unsigned slot_of(uint32_t pid)
{
    return (pid * 2654435761u) % CANCEL_SLOTS;
}

void px_cancel_register(uint32_t pid, uint32_t key)
{
    pthread_mutex_lock(&cancel_lock);
    for (unsigned i = slot_of(pid), n = 0; n < CANCEL_SLOTS; i = (i + 1) % CANCEL_SLOTS, n++) {
        if (!slots[i].used) {
            slots[i] = (cancel_slot){pid, key, true};
            break;
        }
    }
    pthread_mutex_unlock(&cancel_lock);
}

void px_cancel_unregister(uint32_t pid, uint32_t key)
{
    pthread_mutex_lock(&cancel_lock);
    unsigned i = slot_of(pid);
    for (unsigned n = 0; n < CANCEL_SLOTS && slots[i].used; i = (i + 1) % CANCEL_SLOTS, n++) {
        if (slots[i].pid == pid && slots[i].key == key)
            break;
    }
    if (slots[i].used && slots[i].pid == pid && slots[i].key == key) {
        /* Backward-shift deletion keeps every probe chain intact. */
        slots[i].used = false;
        unsigned j = i;
        for (;;) {
            j = (j + 1) % CANCEL_SLOTS;
            if (!slots[j].used)
                break;
            unsigned home = slot_of(slots[j].pid);
            bool between = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
            if (!between) {
                slots[i] = slots[j];
                slots[j].used = false;
                i = j;
            }
        }
    }
    pthread_mutex_unlock(&cancel_lock);
}

bool px_cancel_known(uint32_t pid, uint32_t key)
{
    bool found = false;
    pthread_mutex_lock(&cancel_lock);
    unsigned i = slot_of(pid);
    for (unsigned n = 0; n < CANCEL_SLOTS && slots[i].used; i = (i + 1) % CANCEL_SLOTS, n++) {
        if (slots[i].pid == pid && slots[i].key == key) {
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&cancel_lock);
    return found;
}

/* ---------- rate-limited log line for unknown keys ---------- */

/* At most one "unknown backend" line per second; the next line says how many were
 * left out (like pgbouncer's log_stats / "log rate limit" counters). */
static pthread_mutex_t unknown_lock = PTHREAD_MUTEX_INITIALIZER;
static time_t unknown_last;
static unsigned long unknown_suppressed;

static void warn_unknown(uint32_t pid)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    pthread_mutex_lock(&unknown_lock);
    if (unknown_last != 0 && now.tv_sec == unknown_last) {
        unknown_suppressed++;
        pthread_mutex_unlock(&unknown_lock);
        return;
    }
    unsigned long left_out = unknown_suppressed;
    unknown_suppressed = 0;
    unknown_last = now.tv_sec;
    pthread_mutex_unlock(&unknown_lock);
    if (left_out > 0)
        px_warn("cancel request for unknown backend %u ignored (%lu more suppressed since the "
                "last such line)",
                pid, left_out);
    else
        px_warn("cancel request for unknown backend %u ignored", pid);
}

/* ---------- one forwarded request ---------- */

/* A forwarded CancelRequest: the requester's connection stays open until the server
 * has closed ours (it does so once the signal is delivered), so that a client waiting
 * for EOF, as libpq's PQcancel does, cannot run its next statement before the cancel
 * has landed. */
typedef struct cancel_req {
    px_io *client;   /* the requester's connection; NULL once it went away; owned */
    px_io *server;   /* our connection to the server; owned */
    struct event *timer;
    struct event_base *base;
    uint32_t pid;
    struct cancel_req *prev, *next; /* pending list, for px_cancel_free_pending */
} cancel_req;

static cancel_req *pending;
static pthread_mutex_t pending_lock = PTHREAD_MUTEX_INITIALIZER;

static void req_free(cancel_req *r)
{
    pthread_mutex_lock(&pending_lock);
    if (r->prev)
        r->prev->next = r->next;
    else if (pending == r)
        pending = r->next;
    if (r->next)
        r->next->prev = r->prev;
    pthread_mutex_unlock(&pending_lock);
    if (r->timer)
        event_free(r->timer);
    px_io_free(r->server);
    px_io_free(r->client); /* closes the requester's socket: PQcancel returns now */
    free(r);
}

static void server_cb(px_io *io, px_io_event ev, void *arg)
{
    cancel_req *r = arg;
    if (ev == PX_IO_CONNECTED || ev == PX_IO_DRAINED) {
        if (!px_io_flush(io)) {
            px_warn("cancel request for backend %u: %s", r->pid, io->err);
            req_free(r);
            return;
        }
        /* Sent (or still sending): wait for the server to close, which it does once
         * it has read the request and signalled the backend. */
        px_io_read_enable(io, true);
        return;
    }
    if (ev == PX_IO_READ) {
        evbuffer_drain(io->in, evbuffer_get_length(io->in));
        return;
    }
    if (ev == PX_IO_ERROR)
        px_warn("cancel request for backend %u: %s", r->pid, io->err);
    req_free(r); /* EOF: done */
}

static void client_cb(px_io *io, px_io_event ev, void *arg)
{
    cancel_req *r = arg;
    if (ev == PX_IO_READ) {
        /* Nothing more is expected on a cancel connection; ignore it. */
        evbuffer_drain(io->in, evbuffer_get_length(io->in));
        return;
    }
    if (ev == PX_IO_EOF || ev == PX_IO_ERROR) {
        /* The requester gave up waiting; the request still goes through. */
        px_io_free(io);
        r->client = NULL;
    }
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    cancel_req *r = arg;
    px_warn("cancel request for backend %u: no answer from the server within %d ms",
            r->pid, PX_CANCEL_WAIT_MS);
    req_free(r);
}

void px_cancel_free_pending(struct event_base *base)
{
    pthread_mutex_lock(&pending_lock);
    cancel_req *mine = NULL;
    for (cancel_req *r = pending, *next; r; r = next) {
        next = r->next;
        if (r->base != base)
            continue;
        if (r->prev)
            r->prev->next = r->next;
        else
            pending = r->next;
        if (r->next)
            r->next->prev = r->prev;
        r->prev = NULL;
        r->next = mine;
        mine = r;
    }
    pthread_mutex_unlock(&pending_lock);
    while (mine) {
        cancel_req *next = mine->next;
        mine->next = NULL;
        req_free(mine);
        mine = next;
    }
}

bool px_cancel_forward(struct event_base *base, uint32_t pid, uint32_t key, px_io *client)
{
    if (!px_cancel_known(pid, key)) {
        warn_unknown(pid);
        px_io_free(client);
        return false;
    }
    cancel_req *r = calloc(1, sizeof *r);
    if (r == NULL) {
        px_io_free(client);
        return false;
    }
    r->base = base;
    r->pid = pid;
    r->client = client;
    if (client) {
        client->cb = client_cb;
        client->arg = r;
        px_io_read_enable(client, true); /* to notice an early close */
    }
    r->timer = evtimer_new(base, timeout_cb, r);
    px_target t;
    px_target_get(&t, NULL);
    int fd = r->timer ? socket(t.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
                      : -1;
    if (fd < 0) {
        px_warn("cancel request for backend %u: socket: %s", pid, strerror(errno));
        req_free(r);
        return false;
    }
    if (connect(fd, (struct sockaddr *)&t.addr, t.addrlen) < 0 && errno != EINPROGRESS) {
        px_warn("cancel request for backend %u: connect: %s", pid, strerror(errno));
        close(fd);
        req_free(r);
        return false;
    }
    r->server = px_io_new(base, fd, true, server_cb, r);
    if (r->server == NULL) {
        req_free(r);
        return false;
    }
    pgw_buf b;
    pgw_buf_init(&b);
    pgw_build_cancel_request(&b, pid, key);
    evbuffer_add(r->server->out, b.data, b.len);
    pgw_buf_free(&b);
    struct timeval tv = {PX_CANCEL_WAIT_MS / 1000, (PX_CANCEL_WAIT_MS % 1000) * 1000};
    evtimer_add(r->timer, &tv);
    pthread_mutex_lock(&pending_lock);
    r->next = pending;
    if (pending)
        pending->prev = r;
    pending = r;
    pthread_mutex_unlock(&pending_lock);
    px_debug("cancel request forwarded for backend %u", pid);
    return true;
}
