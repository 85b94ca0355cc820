/*
 * px_control_show.h — result sets of the console's SHOW commands, built as PostgreSQL
 * messages (RowDescription, DataRow…, CommandComplete; "Message Formats") with typed
 * columns so psql --csv and drivers can parse them. Each appends to a caller's pgw_buf
 * and returns false on out of memory.
 */
#ifndef PX_CONTROL_SHOW_H
#define PX_CONTROL_SHOW_H

#include <stdbool.h>

#include "pgwire.h"

bool px_show_clients(pgw_buf *b);
bool px_show_servers(pgw_buf *b);
bool px_show_stats(pgw_buf *b);
bool px_show_config(pgw_buf *b);
bool px_show_help(pgw_buf *b);

/* px_format_timestamptz — wall clock microseconds since the epoch as PostgreSQL's
 * timestamptz text in UTC ("2026-11-21 10:00:00.123456+00") into buf. */
void px_format_timestamptz(int64_t unix_us, char *buf, size_t len);

#endif
