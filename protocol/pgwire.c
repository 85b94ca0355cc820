/*
 * pgwire.c — PostgreSQL frontend/backend protocol v3 framing and codecs.
 *
 * Byte layouts follow the PostgreSQL documentation, "Frontend/Backend Protocol",
 * section "Message Formats"; startup limits follow ProcessStartupPacket in the
 * server. Everything here works on caller-owned byte spans: no I/O, and the only
 * allocation is the growth of a pgw_buf when building messages the proxy sends.
 *
 * Every reader checks a length before touching a byte, so no input (short, truncated,
 * with negative or huge lengths, without terminators) makes it read past `n`.
 */
#include "pgwire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Framer state: hdr_have holds this value after an error (sticky until init). */
#define FRAMER_FAILED (PGW_HEADER_LEN + 1)

/* Startup packet layout: length word + request code / protocol version. */
#define STARTUP_HDR 8u
#define CANCEL_LEN 16u

/* First allocation of a pgw_buf; it doubles from there. */
#define BUF_MIN_CAP 64u

/* Largest length a message may declare: the int32 length field is signed. */
#define MSG_MAX_LEN 0x7fffffffu

static void put_bytes(pgw_buf *b, const void *p, size_t n);
static void put_u8(pgw_buf *b, uint8_t v);

/* ---------- big-endian helpers ---------- */

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void set_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/*
 * find_nul — offset of the first NUL in buf[from..end), or end when there is none.
 */
static size_t find_nul(const uint8_t *buf, size_t from, size_t end)
{
    const uint8_t *z;

    if (from >= end)
        return end;
    z = memchr(buf + from, 0, end - from);
    return z ? (size_t)(z - buf) : end;
}

/* ---------- framing ---------- */

pgw_status pgw_read_header(const uint8_t *buf, size_t n, uint32_t max_len, pgw_header *h)
{
    uint32_t len;

    if (n < PGW_HEADER_LEN)
        return PGW_INCOMPLETE;
    len = get_u32(buf + 1);
    /* The wire field is an int32: a high bit set means a negative length. */
    if (len < 4 || len > MSG_MAX_LEN)
        return PGW_BAD;
    if (len > max_len)
        return PGW_TOO_LONG;
    h->type = (char)buf[0];
    h->len = len;
    return PGW_OK;
}

void pgw_framer_init(pgw_framer *f, uint32_t max_len)
{
    memset(f, 0, sizeof(*f));
    f->max_len = max_len;
}

long pgw_framer_feed(pgw_framer *f, const uint8_t *buf, size_t n, pgw_frame_event *ev,
                     pgw_status *err)
{
    size_t take;
    pgw_status st;

    *ev = PGW_FRAME_NONE;

    if (f->hdr_have == FRAMER_FAILED) {
        /* Sticky: report the same error the failed header produced. */
        *err = pgw_read_header(f->hdr, PGW_HEADER_LEN, f->max_len, &f->cur);
        *ev = PGW_FRAME_ERROR;
        return -1;
    }

    if (f->hdr_have == PGW_HEADER_LEN) {
        /* Inside a message: body bytes, or the END of an empty body (0 consumed). */
        if (f->body_left == 0) {
            f->hdr_have = 0;
            *ev = PGW_FRAME_END;
            return 0;
        }
        take = n < f->body_left ? n : f->body_left;
        f->body_left -= (uint32_t)take;
        if (f->body_left == 0) {
            f->hdr_have = 0;
            *ev = PGW_FRAME_END;
        }
        return (long)take;
    }

    /* Assembling a header. */
    if (n == 0)
        return 0; /* buf may be NULL: memcpy must not see it */
    take = PGW_HEADER_LEN - f->hdr_have;
    if (take > n)
        take = n;
    memcpy(f->hdr + f->hdr_have, buf, take);
    f->hdr_have += (uint32_t)take;
    if (f->hdr_have < PGW_HEADER_LEN)
        return (long)take;

    st = pgw_read_header(f->hdr, PGW_HEADER_LEN, f->max_len, &f->cur);
    if (st != PGW_OK) {
        f->hdr_have = FRAMER_FAILED;
        *err = st;
        *ev = PGW_FRAME_ERROR;
        return -1;
    }
    f->body_left = f->cur.len - 4;
    *ev = PGW_FRAME_HEADER;
    return (long)take;
}

/* ---------- startup packets ---------- */

/*
 * next_param — the name/value pair at buf[*pos..len) of a StartupMessage whose parameter
 * list starts at STARTUP_HDR. Returns 1 and advances *pos past the pair, 0 at the final
 * terminator when it is the last byte, -1 on a bad layout (the server's "invalid startup
 * packet layout: expected terminator as last byte").
 */
static int next_param(const uint8_t *buf, size_t len, size_t *pos, pgw_param *p)
{
    size_t at = *pos, name_end, val_end;

    if (at >= len)
        return -1; /* no final terminator */
    if (buf[at] == 0) /* the final terminator, which must be the last byte */
        return at == len - 1 ? 0 : -1;
    name_end = find_nul(buf, at, len);
    if (name_end >= len)
        return -1; /* name without terminator */
    val_end = find_nul(buf, name_end + 1, len);
    if (val_end >= len)
        return -1; /* name without its value, or value without terminator */
    if (p != NULL) {
        p->name = (const char *)buf + at;
        p->value = (const char *)buf + name_end + 1;
    }
    *pos = val_end + 1;
    return 1;
}

static pgw_status startup_fault(pgw_startup *out, pgw_startup_fault f, pgw_status st)
{
    out->fault = f;
    out->nparams = 0;
    return st;
}

pgw_status pgw_parse_startup(const uint8_t *buf, size_t n, pgw_startup *out)
{
    uint32_t len, code;
    size_t pos = STARTUP_HDR;
    int r;

    memset(out, 0, sizeof(*out));
    if (n < 4)
        return PGW_INCOMPLETE;
    len = get_u32(buf);
    /* ProcessStartupPacket: len -= 4; len < 4 || len > MAX_STARTUP_PACKET_LENGTH, on the
     * int32, so a length with the high bit set is negative and too short. */
    if (len > MSG_MAX_LEN || len < STARTUP_HDR)
        return startup_fault(out, PGW_SF_LENGTH, PGW_BAD);
    if (len > PGW_MAX_STARTUP_TOTAL)
        return startup_fault(out, PGW_SF_LENGTH, PGW_TOO_LONG);
    if (n < len)
        return PGW_INCOMPLETE;

    code = get_u32(buf + 4);
    out->len = len;
    out->pkt = buf;
    switch (code) {
    case PGW_SSL_REQUEST_CODE:
    case PGW_GSSENC_REQUEST_CODE:
        out->kind = code == PGW_SSL_REQUEST_CODE ? PGW_STARTUP_SSL : PGW_STARTUP_GSSENC;
        return PGW_OK;
    case PGW_CANCEL_REQUEST_CODE:
        if (len != CANCEL_LEN) /* as PostgreSQL 17; 15 closes silently too */
            return startup_fault(out, PGW_SF_LENGTH, PGW_BAD);
        out->kind = PGW_STARTUP_CANCEL;
        out->cancel_pid = get_u32(buf + 8);
        out->cancel_key = get_u32(buf + 12);
        return PGW_OK;
    default:
        break;
    }

    out->protocol = code;
    if (code >> 16 < PGW_PROTOCOL_EARLIEST_MAJOR || code >> 16 > PGW_PROTOCOL_LATEST_MAJOR)
        return startup_fault(out, PGW_SF_PROTOCOL, PGW_BAD);
    out->kind = PGW_STARTUP_MESSAGE;
    while ((r = next_param(buf, len, &pos, NULL)) == 1)
        out->nparams++;
    if (r < 0)
        return startup_fault(out, PGW_SF_LAYOUT, PGW_BAD);
    return PGW_OK;
}

bool pgw_startup_next(const pgw_startup *s, size_t *pos, pgw_param *p)
{
    if (s->kind != PGW_STARTUP_MESSAGE || s->pkt == NULL || s->fault != PGW_SF_NONE)
        return false;
    if (*pos < STARTUP_HDR)
        *pos = STARTUP_HDR;
    return next_param(s->pkt, s->len, pos, p) == 1;
}

const char *pgw_startup_param(const pgw_startup *s, const char *name)
{
    const char *found = NULL;
    size_t pos = 0;
    pgw_param p;

    if (name == NULL)
        return NULL;
    /* The last occurrence wins, as in the server's ProcessStartupPacket. */
    while (pgw_startup_next(s, &pos, &p))
        if (strcmp(p.name, name) == 0)
            found = p.value;
    return found;
}

bool pgw_build_startup_refusal(pgw_buf *b, const pgw_startup *s, char *msg, size_t msglen)
{
    char text[160];
    uint32_t major = s->protocol >> 16, minor = s->protocol & 0xffff;

    if (msglen > 0)
        msg[0] = '\0';
    switch (s->fault) {
    case PGW_SF_NONE:
    case PGW_SF_LENGTH:
        return !b->oom;
    case PGW_SF_LAYOUT:
        snprintf(text, sizeof(text),
                 "invalid startup packet layout: expected terminator as last byte");
        if (msglen > 0)
            snprintf(msg, msglen, "%s", text);
        return pgw_build_error(b, "FATAL", "08P01", text, NULL, NULL);
    case PGW_SF_PROTOCOL:
        break;
    }
    snprintf(text, sizeof(text), "unsupported frontend protocol %u.%u: server supports %u.0 to %u.%u",
             major, minor, PGW_PROTOCOL_EARLIEST_MAJOR, PGW_PROTOCOL_LATEST_MAJOR,
             PGW_PROTOCOL_LATEST_MINOR);
    if (msglen > 0)
        snprintf(msg, msglen, "%s", text);
    if (major >= 3 || s->protocol == 0)
        return pgw_build_error(b, "FATAL", "0A000", text, NULL, NULL);
    /* Protocol 1.x/2.x: the old error format, 'E' and one string, without a length. */
    {
        size_t start = b->len;

        put_u8(b, 'E');
        put_bytes(b, "FATAL:  ", 8);
        put_bytes(b, text, strlen(text));
        put_bytes(b, "\n", 2); /* the newline and the terminating NUL */
        if (b->oom) {
            if (start <= b->len)
                b->len = start;
            return false;
        }
        return true;
    }
}

/* ---------- growable output buffer ---------- */

void pgw_buf_init(pgw_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->oom = false;
}

void pgw_buf_free(pgw_buf *b)
{
    free(b->data);
    pgw_buf_init(b);
}

void pgw_buf_reset(pgw_buf *b)
{
    b->len = 0;
}

/*
 * buf_reserve — make room for `extra` more bytes, doubling the capacity.
 * Returns false (and sets the sticky oom flag) when the buffer cannot grow.
 */
static bool buf_reserve(pgw_buf *b, size_t extra)
{
    size_t need, cap;
    uint8_t *p;

    if (b->oom)
        return false;
    if (extra > SIZE_MAX - b->len)
        goto fail;
    need = b->len + extra;
    if (need <= b->cap)
        return true;
    cap = b->cap ? b->cap : BUF_MIN_CAP;
    while (cap < need) {
        if (cap > SIZE_MAX / 2)
            goto fail;
        cap *= 2;
    }
    p = realloc(b->data, cap);
    if (p == NULL)
        goto fail;
    b->data = p;
    b->cap = cap;
    return true;
fail:
    b->oom = true;
    return false;
}

static void put_bytes(pgw_buf *b, const void *p, size_t n)
{
    if (n == 0 || !buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void put_u8(pgw_buf *b, uint8_t v)
{
    put_bytes(b, &v, 1);
}

static void put_u16(pgw_buf *b, uint16_t v)
{
    uint8_t p[2] = {(uint8_t)(v >> 8), (uint8_t)v};

    put_bytes(b, p, 2);
}

static void put_u32(pgw_buf *b, uint32_t v)
{
    uint8_t p[4];

    set_u32(p, v);
    put_bytes(b, p, 4);
}

/* put_str — a NUL-terminated string; NULL is written as the empty string. */
static void put_str(pgw_buf *b, const char *s)
{
    if (s != NULL)
        put_bytes(b, s, strlen(s));
    put_u8(b, 0);
}

/*
 * msg_begin — start a message: type byte (none when type is 0, for startup packets)
 * and a placeholder length. Returns the offset of the message start. Builders need not
 * check oom first: once it is set every put_* is a no-op and msg_end fails.
 */
static size_t msg_begin(pgw_buf *b, char type)
{
    size_t start = b->len;

    if (type != 0)
        put_u8(b, (uint8_t)type);
    put_u32(b, 0);
    return start;
}

/*
 * msg_end — patch the length word of the message begun at `start`. On failure (out of
 * memory, or a message over the int32 length) the partial message is dropped, the
 * sticky oom flag is set, and false is returned.
 */
static bool msg_end(pgw_buf *b, size_t start, bool typed)
{
    size_t at = start + (typed ? 1 : 0);

    if (!b->oom && b->len - at > MSG_MAX_LEN)
        b->oom = true;
    if (b->oom) {
        if (start <= b->len)
            b->len = start;
        return false;
    }
    set_u32(b->data + at, (uint32_t)(b->len - at));
    return true;
}

/* ---------- builders ---------- */

/* build_error_like — ErrorResponse / NoticeResponse: S, V, C, M, optional D, H, NUL. */
static bool build_error_like(pgw_buf *b, char type, const char *severity, const char *sqlstate,
                             const char *message, const char *detail, const char *hint)
{
    size_t start = msg_begin(b, type);

    put_u8(b, 'S');
    put_str(b, severity);
    put_u8(b, 'V');
    put_str(b, severity);
    put_u8(b, 'C');
    put_str(b, sqlstate);
    put_u8(b, 'M');
    put_str(b, message);
    if (detail != NULL) {
        put_u8(b, 'D');
        put_str(b, detail);
    }
    if (hint != NULL) {
        put_u8(b, 'H');
        put_str(b, hint);
    }
    put_u8(b, 0);
    return msg_end(b, start, true);
}

bool pgw_build_error(pgw_buf *b, const char *severity, const char *sqlstate, const char *message,
                     const char *detail, const char *hint)
{
    return build_error_like(b, 'E', severity, sqlstate, message, detail, hint);
}

bool pgw_build_notice(pgw_buf *b, const char *severity, const char *sqlstate, const char *message,
                      const char *detail, const char *hint)
{
    return build_error_like(b, 'N', severity, sqlstate, message, detail, hint);
}

bool pgw_build_ready(pgw_buf *b, char status)
{
    size_t start = msg_begin(b, 'Z');

    put_u8(b, (uint8_t)status);
    return msg_end(b, start, true);
}

bool pgw_build_command_complete(pgw_buf *b, const char *tag)
{
    size_t start = msg_begin(b, 'C');

    put_str(b, tag);
    return msg_end(b, start, true);
}

bool pgw_build_query(pgw_buf *b, const char *sql)
{
    size_t start = msg_begin(b, 'Q');

    put_str(b, sql);
    return msg_end(b, start, true);
}

bool pgw_build_parse(pgw_buf *b, const char *name, const char *query, const uint32_t *oids,
                     int noids)
{
    size_t start = msg_begin(b, 'P');

    if (noids < 0 || noids > 65535)
        b->oom = true;
    put_str(b, name);
    put_str(b, query);
    put_u16(b, (uint16_t)noids);
    for (int i = 0; i < noids && !b->oom; i++)
        put_u32(b, oids[i]);
    return msg_end(b, start, true);
}

bool pgw_build_close(pgw_buf *b, char kind, const char *name)
{
    size_t start = msg_begin(b, 'C');

    put_u8(b, (uint8_t)kind);
    put_str(b, name);
    return msg_end(b, start, true);
}

bool pgw_build_sync(pgw_buf *b)
{
    size_t start = msg_begin(b, 'S');

    return msg_end(b, start, true);
}

bool pgw_build_empty_query(pgw_buf *b)
{
    size_t start = msg_begin(b, 'I');

    return msg_end(b, start, true);
}

bool pgw_build_parameter_status(pgw_buf *b, const char *name, const char *value)
{
    size_t start = msg_begin(b, 'S');

    put_str(b, name);
    put_str(b, value);
    return msg_end(b, start, true);
}

bool pgw_build_backend_key(pgw_buf *b, uint32_t pid, uint32_t key)
{
    size_t start = msg_begin(b, 'K');

    put_u32(b, pid);
    put_u32(b, key);
    return msg_end(b, start, true);
}

bool pgw_build_auth_ok(pgw_buf *b)
{
    size_t start = msg_begin(b, 'R');

    put_u32(b, 0);
    return msg_end(b, start, true);
}

bool pgw_build_auth_sasl(pgw_buf *b, const char *const *mechanisms, int n)
{
    size_t start;
    int i;

    start = msg_begin(b, 'R');
    put_u32(b, 10);
    for (i = 0; i < n; i++)
        put_str(b, mechanisms[i]);
    put_u8(b, 0);
    return msg_end(b, start, true);
}

/* build_auth_data — AuthenticationSASLContinue / AuthenticationSASLFinal. */
static bool build_auth_data(pgw_buf *b, uint32_t code, const uint8_t *data, size_t len)
{
    size_t start = msg_begin(b, 'R');

    put_u32(b, code);
    if (len > MSG_MAX_LEN) {
        b->oom = true;
    } else if (len > 0) {
        put_bytes(b, data, len);
    }
    return msg_end(b, start, true);
}

bool pgw_build_auth_sasl_continue(pgw_buf *b, const uint8_t *data, size_t len)
{
    return build_auth_data(b, 11, data, len);
}

bool pgw_build_auth_sasl_final(pgw_buf *b, const uint8_t *data, size_t len)
{
    return build_auth_data(b, 12, data, len);
}

/* type_len — pg_type.typlen of the built-in types pgwire.h names; -1 (varlena) else. */
static int16_t type_len(uint32_t oid)
{
    switch (oid) {
    case PGW_OID_BOOL:
        return 1;
    case PGW_OID_INT4:
        return 4;
    case PGW_OID_INT8:
    case PGW_OID_FLOAT8:
    case PGW_OID_TIMESTAMPTZ:
        return 8;
    default:
        return -1;
    }
}

bool pgw_build_row_description(pgw_buf *b, const pgw_column *cols, int n)
{
    size_t start;
    int i;

    if (n < 0)
        n = 0;
    if (n > INT16_MAX) { /* the field count is an int16 */
        b->oom = true;
        return false;
    }
    start = msg_begin(b, 'T');
    put_u16(b, (uint16_t)n);
    for (i = 0; i < n; i++) {
        put_str(b, cols[i].name);
        put_u32(b, 0);                /* table OID */
        put_u16(b, 0);                /* column attribute number */
        put_u32(b, cols[i].type_oid); /* data type OID */
        put_u16(b, (uint16_t)type_len(cols[i].type_oid));
        put_u32(b, 0xffffffffu); /* type modifier -1 */
        put_u16(b, 0);           /* format code: text */
    }
    return msg_end(b, start, true);
}

bool pgw_build_data_row(pgw_buf *b, const char *const *values, int n)
{
    size_t start;
    int i;

    if (n < 0)
        n = 0;
    if (n > INT16_MAX) { /* the field count is an int16 */
        b->oom = true;
        return false;
    }
    start = msg_begin(b, 'D');
    put_u16(b, (uint16_t)n);
    for (i = 0; i < n; i++) {
        size_t vlen;

        if (values[i] == NULL) {
            put_u32(b, 0xffffffffu); /* -1: SQL NULL, no value bytes */
            continue;
        }
        vlen = strlen(values[i]);
        if (vlen > MSG_MAX_LEN) {
            b->oom = true;
            break;
        }
        put_u32(b, (uint32_t)vlen);
        put_bytes(b, values[i], vlen);
    }
    return msg_end(b, start, true);
}

bool pgw_build_startup(pgw_buf *b, const pgw_param *params, int n)
{
    size_t start;
    int i;

    start = msg_begin(b, 0);
    put_u32(b, PGW_PROTOCOL_3_0);
    for (i = 0; i < n; i++) {
        put_str(b, params[i].name);
        put_str(b, params[i].value);
    }
    put_u8(b, 0);
    return msg_end(b, start, false);
}

bool pgw_build_ssl_request(pgw_buf *b)
{
    size_t start = msg_begin(b, 0);

    put_u32(b, PGW_SSL_REQUEST_CODE);
    return msg_end(b, start, false);
}

bool pgw_build_cancel_request(pgw_buf *b, uint32_t pid, uint32_t key)
{
    size_t start = msg_begin(b, 0);

    put_u32(b, PGW_CANCEL_REQUEST_CODE);
    put_u32(b, pid);
    put_u32(b, key);
    return msg_end(b, start, false);
}

/* ---------- readers ---------- */

pgw_status pgw_read_ready(const uint8_t *body, size_t n, char *status)
{
    if (n != 1)
        return PGW_BAD;
    if (body[0] != 'I' && body[0] != 'T' && body[0] != 'E')
        return PGW_BAD;
    *status = (char)body[0];
    return PGW_OK;
}

pgw_status pgw_read_backend_key(const uint8_t *body, size_t n, uint32_t *pid, uint32_t *key)
{
    if (n != 8)
        return PGW_BAD;
    *pid = get_u32(body);
    *key = get_u32(body + 4);
    return PGW_OK;
}

pgw_status pgw_read_error(const uint8_t *body, size_t n, pgw_error_fields *out)
{
    const char *sev_s = NULL, *sev_v = NULL;
    size_t pos = 0;

    memset(out, 0, sizeof(*out));
    while (pos < n) {
        uint8_t code = body[pos];
        const char *val;
        size_t end;

        if (code == 0) {
            if (pos != n - 1)
                break; /* bytes after the final terminator */
            out->severity = sev_v ? sev_v : sev_s;
            return PGW_OK;
        }
        end = find_nul(body, pos + 1, n);
        if (end >= n)
            break; /* field without terminator */
        val = (const char *)body + pos + 1;
        switch (code) {
        case 'S':
            sev_s = val;
            break;
        case 'V':
            sev_v = val;
            break;
        case 'C':
            out->sqlstate = val;
            break;
        case 'M':
            out->message = val;
            break;
        case 'D':
            out->detail = val;
            break;
        case 'H':
            out->hint = val;
            break;
        default: /* other fields (position, where, ...) are skipped */
            break;
        }
        pos = end + 1;
    }
    memset(out, 0, sizeof(*out));
    return PGW_BAD;
}

pgw_status pgw_read_auth_code(const uint8_t *body, size_t n, uint32_t *code)
{
    uint32_t c;

    if (n < 4)
        return PGW_BAD;
    c = get_u32(body);
    /* Fixed-size requests: Ok and CleartextPassword have no data, MD5 a 4-byte salt. */
    if ((c == 0 || c == 3) && n != 4)
        return PGW_BAD;
    if (c == 5 && n != 8)
        return PGW_BAD;
    *code = c;
    return PGW_OK;
}

pgw_status pgw_read_sasl_mechanisms(const uint8_t *body, size_t n, const char **names, int max,
                                    int *count)
{
    size_t pos = 4;
    int k = 0;

    *count = 0;
    if (n < 4 || get_u32(body) != 10)
        return PGW_BAD;
    while (pos < n) {
        size_t end;

        if (body[pos] == 0) { /* the empty string ending the list: the last byte */
            if (pos != n - 1)
                return PGW_BAD;
            *count = k;
            return PGW_OK;
        }
        end = find_nul(body, pos, n);
        if (end >= n || k >= max)
            return PGW_BAD;
        names[k++] = (const char *)body + pos;
        pos = end + 1;
    }
    return PGW_BAD; /* no final empty string */
}
