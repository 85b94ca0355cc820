/*
 * px_session.h — one application connection and its own server connection (session
 * mode, as pgbouncer's pool_mode = session): startup (SSLRequest, GSSENCRequest,
 * CancelRequest, StartupMessage), the server connect (optionally TLS), authentication
 * relayed message by message, then the relay with header-only inspection.
 * A session's state is explicit (px_session_state) and it lives on one worker.
 */
#ifndef PX_SESSION_H
#define PX_SESSION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "px_daemon.h"
#include "px_io.h"

typedef enum {
    PS_STARTUP,        /* reading the client's startup packet(s) */
    PS_CLIENT_TLS,     /* TLS handshake with the client */
    PS_CONNECTING,     /* connecting to the server */
    PS_SERVER_SSLREQ,  /* SSLRequest sent to the server, waiting for 'S'/'N' */
    PS_SERVER_TLS,     /* TLS handshake with the server */
    PS_RELAY,          /* authentication and queries relayed */
    PS_CLOSING,        /* flushing a last message to the client, then free */
} px_session_state;

struct px_session {
    uint64_t id;
    px_worker *w;
    px_session *prev, *next;         /* worker's list */
    px_session *park_next;           /* worker's parked list */
    px_session_state state;
    bool is_control;                 /* accepted on the control port */
    px_io *client, *server;
    bool client_tls, server_tls;
    bool ssl_done, gss_done;         /* SSLRequest / GSSENCRequest answered (no second one) */
    char addr[64];                   /* client address */
    char user[64], database[64], appname[64];
    uint8_t *startup;                /* the StartupMessage, sent to the server verbatim */
    uint32_t startup_len;
    uint64_t connected_us;
    int64_t connected_unix_us;       /* wall clock at accept, for SHOW CLIENTS */
    struct px_control *ctl;          /* control console state, after login */

    /* relay state */
    uint32_t c_left, s_left;         /* body bytes of the message being forwarded */
    char xact;                       /* last ReadyForQuery status: 'I', 'T', 'E' */
    char copy;                       /* 0, 'i' COPY IN, 'o' COPY OUT, 'b' COPY BOTH */
    bool authed;                     /* first ReadyForQuery seen */
    bool idle;                       /* at a transaction boundary, nothing in flight */
    bool unsynced;                   /* extended-protocol messages sent since the last Sync */
    bool req_open;                   /* a request is out and its ReadyForQuery not back */
    bool client_paused, server_paused; /* reading stopped for backpressure */
    bool parked;
    bool terminating;                /* client sent Terminate */
    bool ctl_waiting;                /* console: a non-authentication message waits for login */
    bool inflight;                   /* counted in px_d.inflight: a request forwarded from a
                                      * transaction boundary, not yet answered */
    bool in_xact;                    /* counted in px_d.in_xact: inside a transaction block */
    int pending;                     /* Query/Sync/FunctionCall forwarded, awaiting 'Z' */
    uint64_t req_start_us, park_start_us;
    uint32_t be_pid, be_key;         /* server's BackendKeyData */
    struct event *linger;            /* PS_CLOSING deadline */
    struct event *login_timer;       /* client_login_timeout, until the first ReadyForQuery */

    /* prepared statements (px_prepare.h) */
    struct px_prep *prep;            /* NULL until the session prepares a named statement */
    bool prep_off;                   /* past max_prepared_statements_bytes: not tracked */
    bool prep_wait;                  /* stale: the next message waits for outstanding answers */
    uint32_t grp_pc;                 /* Parse/Close sent since the last Sync or Query */
    _Atomic uint64_t stale;          /* a row type changed: re-prepare before the next message
                                      * (the change's sequence number, 0 = not stale) */

    /* statistics (read by the console from other threads) */
    _Atomic uint64_t st_xacts, st_queries, st_bytes_in, st_bytes_out, st_held_us;
    _Atomic uint64_t st_reprepared, st_prep_left; /* statements re-prepared / left to PostgreSQL */
    _Atomic uint64_t st_prep_n, st_prep_bytes;    /* tracked statements and their bytes */
};

/* px_session_accept — create a session for accepted socket fd on worker w. Takes fd. */
void px_session_accept(px_worker *w, int fd, bool is_control);

/* px_session_unpark — forward a parked session's waiting messages (worker thread). */
void px_session_unpark(px_session *s);

/* px_session_free — close both sides, unlink, count statistics into px_d.closed. */
void px_session_free(px_session *s);

/* px_session_fail — send an ErrorResponse (severity FATAL) to the client, then close
 * once it is written. */
void px_session_fail(px_session *s, const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
