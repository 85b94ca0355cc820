/*
 * px_io.h — one socket's buffered, non-blocking I/O on a libevent base, plain or TLS
 * (OpenSSL), in the manner of pgbouncer's sbuf.c: reads land in `in`, the owner moves
 * bytes to another px_io's `out` (evbuffer_remove_buffer moves whole chains without
 * copying) and calls px_io_flush, which writes at once and arms EV_WRITE only for what
 * the kernel did not take. Reading can be switched off for backpressure and holds.
 *
 * A px_io belongs to one worker thread (its event_base) for its whole life.
 */
#ifndef PX_IO_H
#define PX_IO_H

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct px_io px_io;

/* What happened, for px_io_cb. */
typedef enum {
    PX_IO_READ,      /* new bytes in io->in */
    PX_IO_DRAINED,   /* io->out fell to 0 or below the low mark after being above */
    PX_IO_CONNECTED, /* a connect or a TLS handshake completed */
    PX_IO_EOF,       /* peer closed */
    PX_IO_ERROR,     /* socket or TLS error; io->err says what */
} px_io_event;

typedef void (*px_io_cb)(px_io *io, px_io_event ev, void *arg);

struct px_io {
    int fd;
    SSL *ssl;                  /* NULL when plain; owned */
    struct event *rev, *wev;   /* owned */
    struct evbuffer *in, *out; /* owned */
    bool reading;              /* EV_READ armed */
    bool connecting;           /* non-blocking connect in progress */
    bool handshaking;          /* TLS handshake in progress */
    bool tls_server;           /* handshake as server (accept) */
    bool tls_write_wants_read; /* SSL_write returned WANT_READ */
    bool eof;
    size_t out_low;            /* DRAINED fires when out drops to this after being above */
    bool out_was_high;
    px_io_cb cb;
    void *arg;
    char err[160];
};

/* Out-buffer marks: a producer stops reading its own source while the destination's
 * out is above PX_IO_OUT_HIGH; DRAINED at PX_IO_OUT_LOW resumes it. Bytes. */
#define PX_IO_OUT_HIGH (256 * 1024)
#define PX_IO_OUT_LOW (64 * 1024)
/* Largest single read, bytes. */
#define PX_IO_READ_MAX (64 * 1024)

/*
 * px_io_new — wrap connected (or connecting, when connecting is true) non-blocking
 * socket fd. Takes ownership of fd (closed by px_io_free). Reading starts disabled.
 * Returns NULL on out of memory (fd is then closed).
 */
px_io *px_io_new(struct event_base *base, int fd, bool connecting, px_io_cb cb, void *arg);

/* px_io_free — close the socket, free SSL, buffers and events. NULL is ignored. */
void px_io_free(px_io *io);

/* px_io_read_enable — arm or disarm reading (idempotent). */
void px_io_read_enable(px_io *io, bool on);

/*
 * px_io_flush — write as much of io->out as the socket takes now; arm EV_WRITE for the
 * rest. Returns false after a write error (io->err set; the owner will also get
 * PX_IO_ERROR from the event loop only if it keeps the io, so act on false).
 */
bool px_io_flush(px_io *io);

/*
 * px_io_start_tls — begin a TLS handshake on io with ssl (ownership passes to io).
 * as_server: accept (client side of the proxy) or connect (server side). Bytes already
 * in io->in are a protocol violation for TLS start and must be checked by the caller.
 * PX_IO_CONNECTED is delivered when the handshake completes.
 */
void px_io_start_tls(px_io *io, SSL *ssl, bool as_server);

/* px_io_out_len / px_io_in_len — buffered byte counts. */
size_t px_io_out_len(const px_io *io);
size_t px_io_in_len(const px_io *io);

#endif
