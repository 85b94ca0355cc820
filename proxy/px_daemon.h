/*
 * px_daemon.h — the proxy process: settings in force, worker threads (one event_base
 * each), listeners, the hold, signals and shutdown. Sessions live on one worker for
 * their lifetime; the main thread only accepts and hands sockets over.
 */
#ifndef PX_DAEMON_H
#define PX_DAEMON_H

#include <event2/event.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf.h"
#include "px_stats.h"

typedef struct px_session px_session;

/* Where server connections go (resolved at start and on reload). */
typedef struct {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    bool is_unix;
    char host[256];
    int port;
    conf_server_tls_mode tls_mode;
} px_target;

typedef struct px_worker {
    int id;
    pthread_t thread;
    struct event_base *base;
    struct event *wake_ev;      /* new sockets queued, or a release */
    pthread_mutex_t lock;       /* protects sessions list and the accept queue */
    px_session *sessions;       /* all sessions of this worker (doubly linked) */
    int nsessions;
    int *queue, nqueue, capqueue; /* accepted fds waiting (encoded: fd*2 + is_control) */
    px_session *parked;         /* sessions whose next message waits for release */
    uint64_t release_seen;      /* last px_daemon.release_gen handled */
    px_stats stats;             /* latency histogram and totals of this worker */
} px_worker;

typedef struct {
    conf_t conf;                /* settings in force; main thread writes under conf_lock */
    conf_cmdline cmdline;       /* to reload the same file and --set overrides */
    pthread_mutex_t conf_lock;  /* protects conf, target, server_ctx */
    px_target target;
    SSL_CTX *client_ctx;        /* NULL when client_tls_mode = disable */
    SSL_CTX *server_ctx;        /* NULL when server_tls_mode = disable */
    int nworkers;
    px_worker *workers;
    struct event_base *main_base;
    _Atomic int nclients;       /* client sessions, for max_client_conn */
    _Atomic int max_client_conn;
    _Atomic int ncontrol;       /* control console sessions, for max_control_conn */
    _Atomic int max_control_conn;
    _Atomic int client_login_timeout; /* seconds; 0 = none */
    _Atomic uint32_t max_packet_size;
    _Atomic int64_t max_prepared_statements_bytes; /* per session; 0 = no tracking */
    _Atomic bool hold;          /* new transactions wait at the proxy */
    _Atomic int inflight;       /* sessions with a request forwarded outside a transaction
                                 * and not yet answered (px_hold_enter waits for them) */
    _Atomic int in_xact;        /* client sessions inside a transaction block (idem) */
    _Atomic uint64_t hold_started_us;
    _Atomic uint64_t release_gen;
    _Atomic uint64_t hold_first_park_us;   /* when the first session parked in this hold */
    _Atomic uint64_t last_hold_max_wait_us; /* longest wait in the hold that ended last */
    _Atomic bool shutting_down;
    _Atomic uint64_t next_session_id;
    _Atomic int console_jobs;   /* console queries running on their own threads */
    _Atomic int console_answers; /* console jobs whose answer the worker has not taken */
    _Atomic bool console_closed; /* shutdown: no new console job threads (the engine is
                                  * stopped, so its commands answer at once on the worker) */
    struct event *hold_timer;
    px_stats closed;            /* counters of sessions that have ended */
} px_daemon;

extern px_daemon px_d;

/* px_now_us — CLOCK_MONOTONIC in microseconds. */
uint64_t px_now_us(void);

/*
 * px_daemon_run — bind listeners, start workers, run until SIGTERM (after sessions end
 * or shutdown_timeout), SIGINT (at once) or SHUTDOWN. conf is taken over by the
 * daemon. Returns the process exit code; errors (cannot bind, bad TLS files) are logged
 * and give 1.
 */
int px_daemon_run(conf_t *conf, const conf_cmdline *cl);

/* px_target_get — a copy of the current server target and its TLS context. */
void px_target_get(px_target *t, SSL_CTX **server_ctx);

/*
 * px_hold — from now on, a session idle at a transaction boundary has its next
 * message parked until px_release; sessions inside a transaction run on. Released by
 * itself after hold_timeout_ms. Thread-safe; returns at once (the hold is in place when
 * it returns).
 */
void px_hold(void);
/* px_release — forward every parked message, in order. Thread-safe; idempotent. */
void px_release(void);
/* How long px_hold_enter waits, at most, for the transactions and requests already under
 * way to end (the hold's drain), in milliseconds. */
#define PX_HOLD_DRAIN_MS 200

/* px_hold_enter / px_hold_leave — the engine's hold (counted, independent of the
 * operator's PAUSE/RESUME): the hold is in place while either wants it. px_hold_enter
 * returns once no session is inside a transaction block (px_d.in_xact) and none has a
 * request forwarded from a transaction boundary still unanswered (px_d.inflight), or
 * after PX_HOLD_DRAIN_MS: so nothing sent before the hold queues behind the engine's lock
 * and runs after its change, and no transaction under way holds a lock the engine needs
 * while it waits for one the engine took (a lock cycle that only lock_timeout breaks).
 * Blocks the calling (engine) thread; never call it from a worker. Thread-safe. */
void px_hold_enter(void);
void px_hold_leave(void);
/* px_hold_last_max_wait_ms — the longest a session waited in the hold that ended last
 * (from the first park to the release), in milliseconds; 0 when nobody waited. */
double px_hold_last_max_wait_ms(void);
/* px_hold_wait_ms — how long the oldest parked message of the current hold has waited,
 * in milliseconds; 0 when no hold is in place or nothing is parked. */
double px_hold_wait_ms(void);
/* px_hold_active — whether a hold is in place. */
bool px_hold_active(void);

/* px_stats_total — sum of all workers' and ended sessions' statistics into *out
 * (zeroed first). */
void px_stats_total(px_stats *out);

/* px_reload — re-read the configuration (SIGHUP, RELOAD). On error keeps the old
 * settings and fills err. Main thread or any thread. */
bool px_reload(char *err, size_t errlen);

/* px_shutdown — ask for a SIGTERM-like shutdown. Thread-safe. */
void px_shutdown(void);

#endif
