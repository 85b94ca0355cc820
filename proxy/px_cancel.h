/*
 * px_cancel.h — CancelRequest forwarding ("Message Flow" 55.2.8 Canceling Requests in
 * Progress). Clients see the server's real BackendKeyData, so a CancelRequest is
 * forwarded as is, on a new server connection — but only for a (pid, key) pair that
 * one of our sessions received, so the proxy cannot be used to cancel other backends.
 */
#ifndef PX_CANCEL_H
#define PX_CANCEL_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

#include "px_io.h"

/* px_cancel_register / px_cancel_unregister — a session's BackendKeyData. Thread-safe. */
void px_cancel_register(uint32_t pid, uint32_t key);
void px_cancel_unregister(uint32_t pid, uint32_t key);
/* px_cancel_known — whether (pid, key) belongs to a live session. */
bool px_cancel_known(uint32_t pid, uint32_t key);

/* How long a forwarded CancelRequest may wait for the server to close our connection
 * before the requester's connection is closed anyway, milliseconds. */
#define PX_CANCEL_WAIT_MS 10000

/*
 * px_cancel_forward — if (pid, key) is known, connect to the server (non-blocking, on
 * base) and send the CancelRequest. client is the requester's connection; ownership
 * passes to this function (NULL is allowed). It is closed only once the server has
 * closed the forwarded connection — PostgreSQL does so after it has signalled the
 * backend — or the forward failed, or PX_CANCEL_WAIT_MS passed: libpq's PQcancel waits
 * for that EOF so that a late cancel cannot hit the client's next statement
 * (fe-connect.c, internal_cancel). Returns false when the pair is unknown (the client
 * is closed at once; one WARNING per second at most, with the number left out) or the
 * connect could not start (logged; like the server, nothing is reported to the
 * requester).
 */
bool px_cancel_forward(struct event_base *base, uint32_t pid, uint32_t key, px_io *client);

/* px_cancel_free_pending — free every forwarded request still waiting on base (both
 * connections closed). For worker shutdown, after its loop has stopped. */
void px_cancel_free_pending(struct event_base *base);

#endif
