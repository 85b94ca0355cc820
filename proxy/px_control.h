/*
 * px_control.h — the control console: a session accepted on control_port whose login
 * is relayed to PostgreSQL like any other, after which pgcutover itself answers simple
 * queries (SHOW …, PAUSE, RESUME, migration commands) with real result sets.
 */
#ifndef PX_CONTROL_H
#define PX_CONTROL_H

#include <stdbool.h>

#include "px_session.h"

/* px_control_authenticated — the server accepted the login (first ReadyForQuery,
 * already consumed). Starts the admission check (osc_engine_admit on a console job
 * thread, for the StartupMessage's user: superuser or member of control_role; nothing
 * in the user's relayed session is asked), then sends ReadyForQuery and serves, or
 * refuses with 42501. Client input waits meanwhile. Returns false when the session was
 * closed. */
bool px_control_authenticated(px_session *s);
/* px_control_read — client bytes arrived on an authenticated console session. */
void px_control_read(px_session *s);
/* px_control_server_read — server bytes arrived on a console session after login: read
 * and dropped (the console asks that connection nothing). */
void px_control_server_read(px_session *s);
/* px_control_session_end — the session is being freed. */
void px_control_session_end(px_session *s);

#endif
