/*
 * pgwire.h — PostgreSQL frontend/backend protocol v3 framing and codecs.
 *
 * Pure code on byte spans: no I/O, no libevent, no allocation per forwarded message.
 * Follows the PostgreSQL documentation, chapter "Frontend/Backend Protocol",
 * sections "Message Flow" (55.2) and "Message Formats" (55.7), and the server's
 * src/backend/postmaster/postmaster.c (ProcessStartupPacket) for startup limits.
 *
 * Conventions: functions that read return a pgw_status; functions that build
 * append to a caller-owned pgw_buf and return false only when the buffer could not
 * grow (out of memory). All multi-byte integers on the wire are big-endian.
 * On a failed build the partial message is removed from the buffer (b->len is back
 * where it was) and the sticky b->oom is set; later builds fail until pgw_buf_free.
 */
#ifndef PGW_PGWIRE_H
#define PGW_PGWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Protocol constants, from "Message Formats". */
#define PGW_PROTOCOL_3_0 196608u        /* 3 << 16 */
#define PGW_SSL_REQUEST_CODE 80877103u  /* 1234 << 16 | 5679 */
#define PGW_GSSENC_REQUEST_CODE 80877104u /* 1234 << 16 | 5680 */
#define PGW_CANCEL_REQUEST_CODE 80877102u /* 1234 << 16 | 5678 */
/* MAX_STARTUP_PACKET_LENGTH in pqcomm.h: the most bytes a startup packet may have after
 * its length word (ProcessStartupPacket subtracts the 4 bytes of the length word before
 * comparing), so the largest packet is PGW_MAX_STARTUP_TOTAL bytes in all. */
#define PGW_MAX_STARTUP_PACKET 10000u
#define PGW_MAX_STARTUP_TOTAL (PGW_MAX_STARTUP_PACKET + 4u)
/* PG_PROTOCOL_EARLIEST / PG_PROTOCOL_LATEST of PostgreSQL 14-17, quoted in the answer to
 * an unsupported protocol ("server supports 3.0 to 3.0"); later 3.x minors are passed
 * to the server, which answers them with NegotiateProtocolVersion. */
#define PGW_PROTOCOL_EARLIEST_MAJOR 3u
#define PGW_PROTOCOL_LATEST_MAJOR 3u
#define PGW_PROTOCOL_LATEST_MINOR 0u
#define PGW_DEFAULT_MAX_PACKET (1u << 30) /* 1 GiB, PostgreSQL's MaxAllocSize */
#define PGW_HEADER_LEN 5                 /* type byte + int32 length */

/* Result of a reader. */
typedef enum {
    PGW_OK = 0,        /* parsed */
    PGW_INCOMPLETE = 1, /* need more bytes; nothing consumed */
    PGW_BAD = -1,      /* malformed; the connection must be closed with 08P01 */
    PGW_TOO_LONG = -2, /* declared length over the limit */
} pgw_status;

/* ---------- framing ---------- */

/* Header of one typed message: type byte and total length including the 4 length
 * bytes (but not the type byte), as on the wire. */
typedef struct {
    char type;
    uint32_t len;
} pgw_header;

/*
 * pgw_read_header — decode the 5-byte header at the start of buf.
 * buf/n: bytes available (may be fewer than 5). max_len: largest accepted `len`.
 * Returns PGW_OK and fills *h; PGW_INCOMPLETE when n < 5; PGW_BAD when len < 4 or
 * len has its high bit set (the wire field is an int32, so that is a negative length,
 * as PostgreSQL's pq_getmessage treats it); PGW_TOO_LONG when len > max_len.
 * Never reads past buf[n-1].
 */
pgw_status pgw_read_header(const uint8_t *buf, size_t n, uint32_t max_len, pgw_header *h);

/*
 * Incremental framer over arbitrary chunks: feed bytes as they arrive, it reports
 * message boundaries without buffering bodies. Used to walk a byte stream where only
 * headers matter (forward by length).
 */
typedef struct {
    uint8_t hdr[PGW_HEADER_LEN]; /* partial header being assembled */
    uint32_t hdr_have;           /* bytes of hdr filled */
    uint32_t body_left;          /* body bytes of the current message not yet seen */
    uint32_t max_len;            /* limit on a message's len field */
    pgw_header cur;              /* header of the current message once complete */
} pgw_framer;

/* pgw_framer_init — reset a framer; max_len as for pgw_read_header. */
void pgw_framer_init(pgw_framer *f, uint32_t max_len);

/*
 * pgw_framer_feed — consume up to n bytes of buf.
 * Returns the number of bytes consumed (0 <= r <= n) and sets *ev; r is 0 only when
 * n == 0 or for the PGW_FRAME_END of a message with an empty body. One call reports at
 * most one event, so call it until all bytes are consumed (an empty message's END may
 * then come from the next call, which may pass n == 0):
 *   PGW_FRAME_NONE   nothing notable in the consumed bytes (more body or header bytes);
 *   PGW_FRAME_HEADER a header just completed: f->cur holds it (body bytes follow);
 *   PGW_FRAME_END    the current message's last byte was consumed.
 * A header with len == 4 yields PGW_FRAME_HEADER, and the next call yields PGW_FRAME_END
 * consuming 0 bytes. On a bad or too long header returns -1 and *ev = PGW_FRAME_ERROR,
 * with *err set to PGW_BAD or PGW_TOO_LONG; the framer then stays failed (every later
 * call returns the same error) until pgw_framer_init. *err is only written on error.
 */
typedef enum { PGW_FRAME_NONE, PGW_FRAME_HEADER, PGW_FRAME_END, PGW_FRAME_ERROR } pgw_frame_event;
long pgw_framer_feed(pgw_framer *f, const uint8_t *buf, size_t n, pgw_frame_event *ev,
                     pgw_status *err);

/* ---------- startup packets ("Message Formats": StartupMessage, SSLRequest,
 * GSSENCRequest, CancelRequest) ---------- */

typedef enum {
    PGW_STARTUP_MESSAGE,
    PGW_STARTUP_SSL,
    PGW_STARTUP_GSSENC,
    PGW_STARTUP_CANCEL,
} pgw_startup_kind;

typedef struct {
    const char *name;  /* points into the caller's packet buffer */
    const char *value; /* points into the caller's packet buffer */
} pgw_param;

/* Why a startup packet was refused, which decides the answer (as ProcessStartupPacket). */
typedef enum {
    PGW_SF_NONE = 0,   /* not refused */
    PGW_SF_LENGTH,     /* length under 8 or over PGW_MAX_STARTUP_TOTAL (also negative), or
                        * a CancelRequest not of 16 bytes: close without a word */
    PGW_SF_PROTOCOL,   /* unknown code / protocol major not 3: FATAL 0A000 */
    PGW_SF_LAYOUT,     /* StartupMessage without its terminator as last byte: FATAL 08P01 */
} pgw_startup_fault;

typedef struct {
    pgw_startup_kind kind;
    pgw_startup_fault fault; /* set when the parse returns PGW_BAD or PGW_TOO_LONG */
    uint32_t len;      /* total packet length including the length word */
    uint32_t protocol; /* StartupMessage: protocol version; PGW_SF_PROTOCOL: the code */
    uint32_t cancel_pid, cancel_key; /* CancelRequest */
    int nparams;       /* name/value pairs of a StartupMessage (no limit but the length) */
    const uint8_t *pkt; /* the packet (the caller's buffer) */
} pgw_startup;

/*
 * pgw_parse_startup — parse one untyped startup packet at buf[0..n), with the checks and
 * in the order of PostgreSQL 15's ProcessStartupPacket (src/backend/postmaster/
 * postmaster.c). Returns PGW_INCOMPLETE until the whole packet (its length word says how
 * long) is in buf. Refusals set out->fault:
 *   PGW_TOO_LONG, fault LENGTH: length over PGW_MAX_STARTUP_TOTAL (as soon as the length
 *     word is in buf; e.g. a typed message such as Terminate 'X' 0 0 0 4 sent first);
 *   PGW_BAD, fault LENGTH: length under 8 or negative (decided from the length word), or
 *     a CancelRequest that is not 16 bytes;
 *   PGW_BAD, fault PROTOCOL: a code that is no request and no protocol 3.x version;
 *   PGW_BAD, fault LAYOUT: a StartupMessage whose parameters do not end with one
 *     terminating NUL as the packet's last byte (a name without value, a string without
 *     terminator, bytes after the terminator).
 * SSLRequest and GSSENCRequest are recognised by their code whatever their length (the
 * server does not check it). Protocol minor versions above 0 are accepted (the server
 * negotiates them with NegotiateProtocolVersion). Bytes of buf beyond out->len belong to
 * whatever follows the packet and are not looked at. out->pkt points into buf, which
 * must outlive *out for pgw_startup_param / pgw_startup_next.
 */
pgw_status pgw_parse_startup(const uint8_t *buf, size_t n, pgw_startup *out);

/* pgw_startup_param — value of parameter `name` in a parsed StartupMessage, or NULL.
 * When a name is repeated the last value wins, as in the server. */
const char *pgw_startup_param(const pgw_startup *s, const char *name);

/* pgw_startup_next — iterate the parameters of a parsed StartupMessage: start with
 * *pos = 0; each call fills *p (pointers into the packet) and returns true, false after
 * the last one. */
bool pgw_startup_next(const pgw_startup *s, size_t *pos, pgw_param *p);

/* ---------- growable output buffer for messages the proxy builds itself ---------- */

typedef struct {
    uint8_t *data; /* malloc'ed; owned by the pgw_buf, freed by pgw_buf_free */
    size_t len, cap;
    bool oom;      /* sticky: a growth failed, contents are incomplete */
} pgw_buf;

void pgw_buf_init(pgw_buf *b);
void pgw_buf_free(pgw_buf *b);
void pgw_buf_reset(pgw_buf *b); /* len = 0, keeps memory */

/* ---------- builders: each appends one complete message to b ("Message Formats") --- */

/* ErrorResponse ('E') / NoticeResponse ('N'). severity e.g. "ERROR", "FATAL";
 * sqlstate 5 chars; detail and hint may be NULL. Fields in order: 'S' and 'V' (both
 * severity), 'C', 'M', then 'D' and 'H' when given, then the terminating NUL.
 * Returns false on out of memory. */
bool pgw_build_error(pgw_buf *b, const char *severity, const char *sqlstate,
                     const char *message, const char *detail, const char *hint);
bool pgw_build_notice(pgw_buf *b, const char *severity, const char *sqlstate,
                      const char *message, const char *detail, const char *hint);
/*
 * pgw_build_startup_refusal — what PostgreSQL 15 sends for a refused startup packet
 * (s->fault): nothing for PGW_SF_LENGTH (the caller closes silently); ErrorResponse FATAL
 * 0A000 "unsupported frontend protocol %u.%u: server supports 3.0 to 3.0" for
 * PGW_SF_PROTOCOL, in the protocol-2 form ('E', "FATAL:  <message>\n", NUL, no length
 * word) when the client asked for a major version 1 or 2, as the server's
 * send_message_to_frontend does; ErrorResponse FATAL 08P01 "invalid startup packet layout:
 * expected terminator as last byte" for PGW_SF_LAYOUT. The message text also goes to
 * msg (msglen bytes, for the log; "" for LENGTH). Returns false on out of memory.
 */
bool pgw_build_startup_refusal(pgw_buf *b, const pgw_startup *s, char *msg, size_t msglen);
/* ReadyForQuery ('Z') with status 'I', 'T' or 'E'. */
bool pgw_build_ready(pgw_buf *b, char status);
/* CommandComplete ('C') with the tag, e.g. "SELECT 3". */
bool pgw_build_command_complete(pgw_buf *b, const char *tag);
/* Frontend messages the proxy sends on its own (re-preparing statements, "Message
 * Formats"): Query ('Q') with one SQL string; Parse ('P') of statement name (""
 * = unnamed) with query text and noids parameter type OIDs (0 = unspecified; more than
 * 65535 fails as out of memory, the count is an int16); Close ('C') of kind 'S'
 * (statement) or 'P' (portal); Sync ('S'). Strings are copied. */
bool pgw_build_query(pgw_buf *b, const char *sql);
bool pgw_build_parse(pgw_buf *b, const char *name, const char *query, const uint32_t *oids,
                     int noids);
bool pgw_build_close(pgw_buf *b, char kind, const char *name);
bool pgw_build_sync(pgw_buf *b);
/* EmptyQueryResponse ('I'). */
bool pgw_build_empty_query(pgw_buf *b);
/* ParameterStatus ('S'). */
bool pgw_build_parameter_status(pgw_buf *b, const char *name, const char *value);
/* BackendKeyData ('K'). */
bool pgw_build_backend_key(pgw_buf *b, uint32_t pid, uint32_t key);
/* AuthenticationOk ('R', code 0). */
bool pgw_build_auth_ok(pgw_buf *b);
/* AuthenticationSASL ('R', code 10): mechanisms is an array of n names. */
bool pgw_build_auth_sasl(pgw_buf *b, const char *const *mechanisms, int n);
/* AuthenticationSASLContinue (code 11) / AuthenticationSASLFinal (code 12). */
bool pgw_build_auth_sasl_continue(pgw_buf *b, const uint8_t *data, size_t len);
bool pgw_build_auth_sasl_final(pgw_buf *b, const uint8_t *data, size_t len);

/* One column of a RowDescription. type_oid: PostgreSQL type OID (PGW_OID_*). */
typedef struct {
    const char *name;
    uint32_t type_oid;
} pgw_column;
#define PGW_OID_BOOL 16u
#define PGW_OID_INT8 20u
#define PGW_OID_INT4 23u
#define PGW_OID_TEXT 25u
#define PGW_OID_FLOAT8 701u
#define PGW_OID_TIMESTAMPTZ 1184u

/* RowDescription ('T'), text format; type sizes filled for the OIDs above, -1 else.
 * Per field: name, table OID 0, attnum 0, type OID, typlen, typmod -1, format 0.
 * Returns false (and sets oom) also when n > 32767 (the count is an int16). */
bool pgw_build_row_description(pgw_buf *b, const pgw_column *cols, int n);
/* DataRow ('D'): values[i] NULL means SQL NULL; text format. n > 32767 fails as above. */
bool pgw_build_data_row(pgw_buf *b, const char *const *values, int n);
/* A startup packet: StartupMessage (protocol 3.0) from name/value pairs. */
bool pgw_build_startup(pgw_buf *b, const pgw_param *params, int n);
/* SSLRequest / CancelRequest. */
bool pgw_build_ssl_request(pgw_buf *b);
bool pgw_build_cancel_request(pgw_buf *b, uint32_t pid, uint32_t key);

/* ---------- readers for the backend messages the proxy inspects. Each takes the
 * message body (after the 5-byte header) and its length. ---------- */

/* ReadyForQuery: *status = 'I', 'T' or 'E'. PGW_BAD on wrong length or status. */
pgw_status pgw_read_ready(const uint8_t *body, size_t n, char *status);
/* BackendKeyData: pid and secret key. PGW_BAD unless n == 8. */
pgw_status pgw_read_backend_key(const uint8_t *body, size_t n, uint32_t *pid, uint32_t *key);

/* ErrorResponse/NoticeResponse fields; pointers into body (not copies: each points at
 * a NUL-terminated string inside body). Missing fields are NULL. */
typedef struct {
    const char *severity; /* 'V' (non-localized) else 'S' */
    const char *sqlstate; /* 'C' */
    const char *message;  /* 'M' */
    const char *detail;   /* 'D' */
    const char *hint;     /* 'H' */
} pgw_error_fields;
/* PGW_BAD on a field without terminator, a missing final terminator, or bytes after
 * it; *out is then all NULL. Unknown field types are skipped; a repeated field keeps
 * its last value. */
pgw_status pgw_read_error(const uint8_t *body, size_t n, pgw_error_fields *out);

/* Authentication request ('R'): *code (0 ok, 3 cleartext, 5 md5, 10 SASL, 11, 12).
 * PGW_BAD when n < 4, when code 0 or 3 has n != 4, or code 5 (salt) has n != 8. */
pgw_status pgw_read_auth_code(const uint8_t *body, size_t n, uint32_t *code);
/*
 * pgw_read_sasl_mechanisms — AuthenticationSASL (code 10) body: list of mechanism
 * names. Fills names[0..*count) with pointers into body, at most max entries.
 * PGW_BAD when the code is not 10, a name lacks its terminator, the list lacks the
 * final empty string, or there are more than max names.
 */
pgw_status pgw_read_sasl_mechanisms(const uint8_t *body, size_t n, const char **names, int max,
                                    int *count);

#endif
