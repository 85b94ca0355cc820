/* px_tls.c — see px_tls.h. */
#include "px_tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>

static void ssl_err(char *err, size_t errlen, const char *what, const char *file)
{
    char buf[160];
    ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
    snprintf(err, errlen, "%s \"%s\": %s", what, file, buf);
    ERR_clear_error();
}

SSL_CTX *px_tls_client_ctx(const conf_t *c, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        snprintf(err, errlen, "SSL_CTX_new failed");
        return NULL;
    }
    /* client_tls_protocols and client_tls_ciphers (pgbouncer's names), checked when the
     * settings were loaded; the defaults are TLS 1.2-1.3 and Mozilla's "intermediate"
     * TLS 1.2 suites (no static RSA key exchange, no CBC/SHA-1). TLS 1.3 suites are
     * OpenSSL's defaults, all AEAD. */
    int lo, hi;
    if (!conf_tls_protocols(c->client_tls_protocols, &lo, &hi, err, errlen))
        goto fail;
    if (SSL_CTX_set_min_proto_version(ctx, lo) != 1 || SSL_CTX_set_max_proto_version(ctx, hi) != 1) {
        snprintf(err, errlen, "client_tls_protocols \"%s\": not supported by OpenSSL",
                 c->client_tls_protocols);
        goto fail;
    }
    if (SSL_CTX_set_cipher_list(ctx, c->client_tls_ciphers) != 1) {
        ssl_err(err, errlen, "client_tls_ciphers", c->client_tls_ciphers);
        goto fail;
    }
    SSL_CTX_set_dh_auto(ctx, 1); /* DHE suites with built-in groups sized to the key */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(ctx, c->client_tls_cert_file) != 1) {
        ssl_err(err, errlen, "client_tls_cert_file", c->client_tls_cert_file);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, c->client_tls_key_file, SSL_FILETYPE_PEM) != 1) {
        ssl_err(err, errlen, "client_tls_key_file", c->client_tls_key_file);
        goto fail;
    }
    if (*c->client_tls_ca_file) {
        if (SSL_CTX_load_verify_locations(ctx, c->client_tls_ca_file, NULL) != 1) {
            ssl_err(err, errlen, "client_tls_ca_file", c->client_tls_ca_file);
            goto fail;
        }
        /* Like PostgreSQL with ssl_ca_file: ask for a certificate, verify it if given. */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

SSL_CTX *px_tls_server_ctx(const conf_t *c, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        snprintf(err, errlen, "SSL_CTX_new failed");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    bool verify = c->server_tls_mode == CONF_STLS_VERIFY_CA ||
                  c->server_tls_mode == CONF_STLS_VERIFY_FULL;
    if (verify) {
        const char *ca = c->server_tls_ca_file;
        int ok = *ca ? SSL_CTX_load_verify_locations(ctx, ca, NULL)
                     : SSL_CTX_set_default_verify_paths(ctx);
        if (ok != 1) {
            ssl_err(err, errlen, "server_tls_ca_file", ca);
            SSL_CTX_free(ctx);
            return NULL;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    return ctx;
}

SSL *px_tls_server_ssl(SSL_CTX *ctx, conf_server_tls_mode mode, const char *host)
{
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL)
        return NULL;
    unsigned char addr[16];
    bool is_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
    if (!is_ip && host[0] != '/')
        SSL_set_tlsext_host_name(ssl, host);
    if (mode == CONF_STLS_VERIFY_FULL) {
        X509_VERIFY_PARAM *p = SSL_get0_param(ssl);
        if (is_ip)
            X509_VERIFY_PARAM_set1_ip_asc(p, host);
        else
            SSL_set1_host(ssl, host);
    }
    return ssl;
}
