/*
 * conf_mask.h — keep secrets out of SHOW CONFIG, logs and error messages.
 *
 * A secret is a password in a libpq connection string (migration_conninfo): found with
 * libpq's own parser, PQconninfoParse ("Connection Strings", libpq 34.1.1), so both the
 * key=value form (password=..., quoted or not) and the URI form
 * (postgresql://user:secret@host, ?password=...) are covered; and the whole value of
 * any setting whose name says password, secret or passphrase. Every function writes
 * into a caller-owned buffer and never fails (output is truncated to fit).
 */
#ifndef CONF_MASK_H
#define CONF_MASK_H

#include <stdbool.h>
#include <stddef.h>

#include "conf.h"

/* What a secret is replaced with. */
#define CONF_MASK "********"

/*
 * conf_mask_conninfo — conninfo as key=value pairs in libpq's form, each password-type
 * option (password, sslpassword, any option libpq displays as "*") replaced by
 * CONF_MASK. A URI is shown as key=value pairs too. "" stays "", and so does a string
 * without '=' that is no URI (libpq takes it for a database name). When libpq cannot
 * parse it, the whole string is hidden: CONF_MASK " (not a valid connection string)".
 */
void conf_mask_conninfo(const char *conninfo, char *buf, size_t len);

/* conf_is_secret — whether setting s holds a secret as a whole (its name contains
 * "password", "secret" or "passphrase"). */
bool conf_is_secret(const conf_setting *s);

/*
 * conf_value_display — conf_value_text with secrets masked: what SHOW CONFIG and the
 * reload log show. Compare settings with conf_value_text, not with this.
 */
void conf_value_display(const conf_t *c, const conf_setting *s, char *buf, size_t len);

/*
 * conf_conninfo_check — whether libpq can parse conninfo (a string without '=' that is
 * no URI is a database name and passes). On failure, reason (len
 * bytes) holds libpq's message with every double-quoted part (libpq quotes the pieces
 * of the string it could not read, which may be a password) replaced by "...".
 */
bool conf_conninfo_check(const char *conninfo, char *reason, size_t len);

/*
 * conf_mask_in_text — replace in text (a NUL-terminated string in a buffer of cap
 * bytes) every occurrence of a password that conninfo holds by CONF_MASK, e.g. in a
 * connection error message. Passwords shorter than 4 characters are masked too. Does
 * nothing when conninfo holds no password or cannot be parsed.
 */
void conf_mask_in_text(char *text, size_t cap, const char *conninfo);

#endif
