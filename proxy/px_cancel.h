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

/* px_cancel_register / px_cancel_unregister — a session's BackendKeyData. Thread-safe. */
void px_cancel_register(uint32_t pid, uint32_t key);
void px_cancel_unregister(uint32_t pid, uint32_t key);
/* px_cancel_known — whether (pid, key) belongs to a live session. */
bool px_cancel_known(uint32_t pid, uint32_t key);

/*
 * px_cancel_forward — if (pid, key) is known, connect to the server (non-blocking, on
 * base) and send the CancelRequest; the connection closes once it is sent. Returns
 * false when the pair is unknown or the connect could not start (logged; like the
 * server, nothing is reported to the requester).
 */
bool px_cancel_forward(struct event_base *base, uint32_t pid, uint32_t key);

#endif
