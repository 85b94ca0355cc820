/* px_control.c — see px_control.h. */
#include "px_control.h"

bool px_control_authenticated(px_session *s)
{
    px_session_fail(s, "0A000", "the control console is not implemented yet");
    return false;
}

void px_control_read(px_session *s)
{
    (void)s;
}

void px_control_server_read(px_session *s)
{
    (void)s;
}

void px_control_session_end(px_session *s)
{
    (void)s;
}
