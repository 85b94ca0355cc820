/*
 * px_tls.h — OpenSSL contexts for both sides of the proxy.
 * Client side (the proxy is the TLS server): client_tls_cert_file/key_file, optional
 * client_tls_ca_file to request and verify client certificates, client_tls_protocols
 * (SSL_CTX_set_min/max_proto_version) and client_tls_ciphers (SSL_CTX_set_cipher_list).
 * Server side (the proxy is a TLS client of PostgreSQL): server_tls_mode as libpq's
 * sslmode (prefer/require: no verification; verify-ca: chain against
 * server_tls_ca_file; verify-full: chain and host name).
 */
#ifndef PX_TLS_H
#define PX_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

#include "conf.h"

/*
 * px_tls_client_ctx — context to accept TLS from applications, or NULL with a reason
 * in err when the files cannot be loaded. Caller owns it (SSL_CTX_free).
 */
SSL_CTX *px_tls_client_ctx(const conf_t *c, char *err, size_t errlen);

/* px_tls_server_ctx — context to connect to PostgreSQL, NULL with err on failure. */
SSL_CTX *px_tls_server_ctx(const conf_t *c, char *err, size_t errlen);

/*
 * px_tls_server_ssl — a new SSL for one server connection, with SNI and (verify-full)
 * host name check set for host. NULL on out of memory.
 */
SSL *px_tls_server_ssl(SSL_CTX *ctx, conf_server_tls_mode mode, const char *host);

#endif
