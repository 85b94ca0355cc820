/* px_io.c — see px_io.h. */
#include "px_io.h"

#include <assert.h>
#include <errno.h>
#include <openssl/err.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static void io_on_read(evutil_socket_t fd, short what, void *arg);
static void io_on_write(evutil_socket_t fd, short what, void *arg);

px_io *px_io_new(struct event_base *base, int fd, bool connecting, px_io_cb cb, void *arg)
{
    px_io *io = calloc(1, sizeof *io);
    if (io == NULL) {
        close(fd);
        return NULL;
    }
    io->fd = fd;
    io->cb = cb;
    io->arg = arg;
    io->connecting = connecting;
    io->out_low = PX_IO_OUT_LOW;
    io->in = evbuffer_new();
    io->out = evbuffer_new();
    io->rev = event_new(base, fd, EV_READ | EV_PERSIST, io_on_read, io);
    io->wev = event_new(base, fd, EV_WRITE | EV_PERSIST, io_on_write, io);
    if (!io->in || !io->out || !io->rev || !io->wev) {
        px_io_free(io);
        return NULL;
    }
    if (connecting)
        event_add(io->wev, NULL);
    return io;
}

void px_io_free(px_io *io)
{
    if (io == NULL)
        return;
    if (io->rev)
        event_free(io->rev);
    if (io->wev)
        event_free(io->wev);
    if (io->ssl) {
        if (!io->handshaking && !io->eof)
            SSL_shutdown(io->ssl); /* best effort close_notify; never blocks */
        SSL_free(io->ssl);
    }
    if (io->fd >= 0)
        close(io->fd);
    if (io->in)
        evbuffer_free(io->in);
    if (io->out)
        evbuffer_free(io->out);
    free(io);
}

void px_io_read_enable(px_io *io, bool on)
{
    if (on == io->reading)
        return;
    io->reading = on;
    if (on)
        event_add(io->rev, NULL);
    else if (!io->handshaking && !io->tls_write_wants_read)
        event_del(io->rev);
}

size_t px_io_out_len(const px_io *io)
{
    return evbuffer_get_length(io->out);
}

size_t px_io_in_len(const px_io *io)
{
    return evbuffer_get_length(io->in);
}

static void set_ssl_err(px_io *io, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[120];
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    else
        snprintf(buf, sizeof buf, "%s", errno ? strerror(errno) : "connection closed");
    snprintf(io->err, sizeof io->err, "%s: %s", what, buf);
    ERR_clear_error();
}

/* Fire the owner's callback. The owner may free io inside it: callers return at once. */
static void io_fire(px_io *io, px_io_event ev)
{
    io->cb(io, ev, io->arg);
}

static void tls_handshake(px_io *io)
{
    ERR_clear_error();
    int r = io->tls_server ? SSL_accept(io->ssl) : SSL_connect(io->ssl);
    if (r == 1) {
        io->handshaking = false;
        event_del(io->wev);
        if (!io->reading)
            event_del(io->rev);
        io_fire(io, PX_IO_CONNECTED);
        return;
    }
    int e = SSL_get_error(io->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        event_add(io->rev, NULL);
        event_del(io->wev);
    } else if (e == SSL_ERROR_WANT_WRITE) {
        event_add(io->wev, NULL);
    } else {
        set_ssl_err(io, "TLS handshake");
        io_fire(io, PX_IO_ERROR);
    }
}

void px_io_start_tls(px_io *io, SSL *ssl, bool as_server)
{
    assert(io->ssl == NULL);
    io->ssl = ssl;
    io->tls_server = as_server;
    io->handshaking = true;
    SSL_set_fd(ssl, io->fd);
    SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    tls_handshake(io);
}

/* Plain read: one readv into reserved evbuffer space (no intermediate copy). */
static ssize_t read_plain(px_io *io)
{
    struct evbuffer_iovec v[2];
    int nv = evbuffer_reserve_space(io->in, PX_IO_READ_MAX, v, 2);
    if (nv <= 0)
        return -2;
    ssize_t n = readv(io->fd, (struct iovec *)v, nv);
    if (n <= 0) {
        evbuffer_commit_space(io->in, v, 0);
        return n;
    }
    size_t left = (size_t)n;
    for (int i = 0; i < nv; i++) {
        if (v[i].iov_len > left)
            v[i].iov_len = left;
        left -= v[i].iov_len;
    }
    evbuffer_commit_space(io->in, v, nv);
    return n;
}

/* TLS read: drain what OpenSSL has, up to PX_IO_READ_MAX per event. Returns bytes read,
 * 0 on clean EOF, -1 on error (io->err set), -3 when it would block with nothing read. */
static ssize_t read_tls(px_io *io)
{
    size_t total = 0;
    while (total < PX_IO_READ_MAX) {
        struct evbuffer_iovec v;
        if (evbuffer_reserve_space(io->in, 16384, &v, 1) != 1)
            return -1;
        ERR_clear_error();
        int r = SSL_read(io->ssl, v.iov_base, (int)v.iov_len);
        if (r > 0) {
            v.iov_len = (size_t)r;
            evbuffer_commit_space(io->in, &v, 1);
            total += (size_t)r;
            continue;
        }
        evbuffer_commit_space(io->in, &v, 0);
        int e = SSL_get_error(io->ssl, r);
        if (e == SSL_ERROR_WANT_READ)
            break;
        if (e == SSL_ERROR_WANT_WRITE) {
            event_add(io->wev, NULL);
            break;
        }
        if (e == SSL_ERROR_ZERO_RETURN)
            return total ? (ssize_t)total : 0;
        if (total)
            break; /* deliver what we have; the error repeats on the next read */
        set_ssl_err(io, "TLS read");
        return -1;
    }
    return total ? (ssize_t)total : -3;
}

static void io_on_read(evutil_socket_t fd, short what, void *arg)
{
    px_io *io = arg;
    (void)fd;
    (void)what;
    if (io->handshaking) {
        tls_handshake(io);
        return;
    }
    if (io->tls_write_wants_read) {
        io->tls_write_wants_read = false;
        if (!io->reading)
            event_del(io->rev);
        if (!px_io_flush(io)) {
            io_fire(io, PX_IO_ERROR);
            return;
        }
        if (!io->reading)
            return;
    }
    ssize_t n = io->ssl ? read_tls(io) : read_plain(io);
    if (n > 0) {
        io_fire(io, PX_IO_READ);
        return;
    }
    if (n == 0) {
        io->eof = true;
        event_del(io->rev);
        io_fire(io, PX_IO_EOF);
        return;
    }
    if (n == -3 || (n == -1 && !io->ssl && (errno == EAGAIN || errno == EINTR)))
        return;
    if (!io->ssl)
        snprintf(io->err, sizeof io->err, "read: %s", n == -2 ? "out of memory" : strerror(errno));
    event_del(io->rev);
    io_fire(io, PX_IO_ERROR);
}

static bool flush_tls(px_io *io)
{
    while (evbuffer_get_length(io->out) > 0) {
        struct evbuffer_iovec v;
        /* Coalesce small chains so tiny messages do not each become a TLS record. */
        size_t want = evbuffer_get_length(io->out);
        if (want > 16384)
            want = 16384;
        evbuffer_pullup(io->out, (ssize_t)want);
        if (evbuffer_peek(io->out, (ssize_t)want, NULL, &v, 1) < 1)
            break;
        ERR_clear_error();
        int r = SSL_write(io->ssl, v.iov_base, (int)(v.iov_len < want ? v.iov_len : want));
        if (r > 0) {
            evbuffer_drain(io->out, (size_t)r);
            continue;
        }
        int e = SSL_get_error(io->ssl, r);
        if (e == SSL_ERROR_WANT_WRITE) {
            event_add(io->wev, NULL);
            return true;
        }
        if (e == SSL_ERROR_WANT_READ) {
            io->tls_write_wants_read = true;
            event_add(io->rev, NULL);
            return true;
        }
        set_ssl_err(io, "TLS write");
        return false;
    }
    event_del(io->wev);
    return true;
}

bool px_io_flush(px_io *io)
{
    if (io->connecting || io->handshaking)
        return true; /* written once connected */
    size_t before = evbuffer_get_length(io->out);
    if (before == 0)
        return true;
    if (io->ssl) {
        if (!flush_tls(io))
            return false;
    } else {
        int n = evbuffer_write(io->out, io->fd);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            snprintf(io->err, sizeof io->err, "write: %s", strerror(errno));
            return false;
        }
        if (evbuffer_get_length(io->out) > 0)
            event_add(io->wev, NULL);
        else
            event_del(io->wev);
    }
    if (evbuffer_get_length(io->out) > PX_IO_OUT_HIGH)
        io->out_was_high = true;
    return true;
}

static void io_on_write(evutil_socket_t fd, short what, void *arg)
{
    px_io *io = arg;
    (void)what;
    if (io->connecting) {
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
        io->connecting = false;
        event_del(io->wev);
        if (err) {
            snprintf(io->err, sizeof io->err, "%s", strerror(err));
            io_fire(io, PX_IO_ERROR);
            return;
        }
        io_fire(io, PX_IO_CONNECTED);
        return;
    }
    if (io->handshaking) {
        tls_handshake(io);
        return;
    }
    if (!px_io_flush(io)) {
        io_fire(io, PX_IO_ERROR);
        return;
    }
    size_t left = evbuffer_get_length(io->out);
    if (io->out_was_high && left <= io->out_low) {
        io->out_was_high = false;
        io_fire(io, PX_IO_DRAINED);
        return;
    }
    if (left == 0)
        io_fire(io, PX_IO_DRAINED);
}
