/* bench_tls_conn.c — what a kept-alive agent connection costs the verifier's side at least, and
 * what a handshake per round would cost instead (printed, never pass/fail).
 *   bench_tls_conn [N]     (default 2000)
 * N client connections (the verifier's side: TLS 1.3, mTLS with an EC P-256 client certificate,
 * the peer's EC P-256 self-signed certificate pinned) to a server in the same process over
 * socketpairs. Each connection carries two requests and answers (the server's session tickets
 * are in, and the buffer OpenSSL read them with is gone), then idles with SSL_MODE_RELEASE_BUFFERS; the server's side is freed. The heap a
 * connection holds is counted exactly: OpenSSL's allocations go through counting functions
 * (CRYPTO_set_mem_functions, malloc_usable_size), so only the client's objects are in it.
 *   per_ctx   an SSL_CTX per connection with an X509 store holding the peer's certificate and
 *             the client certificate and key read from their files again (what libcurl 7.88
 *             does for every connection it opens);
 *   per_ctx_preparsed  the same, the client certificate and key parsed once and shared (what a
 *             CURLOPT_SSL_CTX_FUNCTION can do under libcurl 7.88);
 *   shared    one SSL_CTX for every connection, the peer's certificate compared per connection
 *             with the pinned one (SHA-256 of its DER) in a verify callback;
 *   session   no connection kept: the client's session (ticket and peer certificate) per peer;
 *   session_der  the same serialised (i2d_SSL_SESSION): its bytes, and the CPU of d2i per use.
 * CPU (CLOCK_THREAD_CPUTIME_ID) of the client's and of the server's side per handshake: full
 * (ECDHE + both certificates) and resumed (TLS 1.3 PSK with ECDHE, no certificates).
 * Output: one line per mode, "mode=... n=... bytes_per_conn=... allocs_per_conn=...
 * client_us=... server_us=...". */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

/* ---- counting allocator (OpenSSL's allocations only) -------------------------------------- */
static long long live_bytes, live_allocs;

static void *c_malloc(size_t n, const char *f, int l)
{
    (void)f; (void)l;
    void *p = malloc(n);
    if (p) {
        live_bytes += (long long)malloc_usable_size(p);
        live_allocs++;
    }
    return p;
}

static void *c_realloc(void *p, size_t n, const char *f, int l)
{
    (void)f; (void)l;
    size_t old = p ? malloc_usable_size(p) : 0;
    void *q = realloc(p, n);
    if (!q)
        return NULL;
    live_bytes += (long long)malloc_usable_size(q) - (long long)old;
    if (!p)
        live_allocs++;
    return q;
}

static void c_free(void *p, const char *f, int l)
{
    (void)f; (void)l;
    if (!p)
        return;
    live_bytes -= (long long)malloc_usable_size(p);
    live_allocs--;
    free(p);
}

static double cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int fail(const char *what)
{
    fprintf(stderr, "bench_tls_conn: %s\n", what);
    ERR_print_errors_fp(stderr);
    return -1;
}

/* ---- keys and certificates ---------------------------------------------------------------- */
static X509 *self_signed(EVP_PKEY *k, const char *cn)
{
    X509 *c = X509_new();
    X509_NAME *n = X509_NAME_new();
    if (!c || !n || !X509_set_version(c, 2) || !ASN1_INTEGER_set(X509_get_serialNumber(c), 1) ||
        !X509_gmtime_adj(X509_getm_notBefore(c), -3600) || !X509_gmtime_adj(X509_getm_notAfter(c), 86400L * 30) ||
        !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0) ||
        !X509_set_subject_name(c, n) || !X509_set_issuer_name(c, n) || !X509_set_pubkey(c, k) ||
        !X509_sign(c, k, EVP_sha256())) {
        X509_free(c);
        c = NULL;
    }
    X509_NAME_free(n);
    return c;
}

static int write_pem(const char *path, X509 *c, EVP_PKEY *k)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int ok = c ? PEM_write_X509(f, c) : PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* ---- the setting ---------------------------------------------------------------------------- */
typedef struct rig {
    SSL_CTX *server, *shared;
    EVP_PKEY *ckey, *skey;
    X509 *ccert, *scert;
    unsigned char spin[EVP_MAX_MD_SIZE];
    char cert_file[64], key_file[64];
} rig;

static int pin_idx;

/* The peer's certificate must be the pinned one (its DER's SHA-256, kept in the SSL's ex_data). */
static int pin_cb(X509_STORE_CTX *x, void *arg)
{
    (void)arg;
    SSL *s = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
    const unsigned char *pin = s ? SSL_get_ex_data(s, pin_idx) : NULL;
    X509 *leaf = X509_STORE_CTX_get0_cert(x);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (!pin || !leaf || !X509_digest(leaf, EVP_sha256(), md, &len) || len != 32 || memcmp(md, pin, 32) != 0) {
        X509_STORE_CTX_set_error(x, X509_V_ERR_CERT_REJECTED);
        return 0;
    }
    return 1;
}

static int accept_client(X509_STORE_CTX *x, void *arg)
{
    (void)x; (void)arg;
    return 1;   /* the agent's check of the verifier's certificate is not what is measured */
}

/* A client SSL_CTX as libcurl 7.88 builds one for each connection. */
static SSL_CTX *curl_like_ctx(const rig *r)
{
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());
    if (!c)
        return NULL;
    X509_STORE *st = SSL_CTX_get_cert_store(c);
    if (!SSL_CTX_use_certificate_chain_file(c, r->cert_file) ||
        !SSL_CTX_use_PrivateKey_file(c, r->key_file, SSL_FILETYPE_PEM) || !SSL_CTX_check_private_key(c) ||
        !X509_STORE_add_cert(st, r->scert)) {
        SSL_CTX_free(c);
        return NULL;
    }
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
    return c;
}

/* The same, with the client certificate and key parsed once and shared (up-referenced), as a
 * CURLOPT_SSL_CTX_FUNCTION can set them under libcurl 7.88; the peer's certificate is still
 * parsed into the context's store for each connection (libcurl's CURLOPT_CAINFO_BLOB). */
static SSL_CTX *preparsed_ctx(const rig *r)
{
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());
    if (!c)
        return NULL;
    unsigned char *der = NULL;
    int len = i2d_X509(r->scert, &der);
    const unsigned char *q = der;
    X509 *peer = len > 0 ? d2i_X509(NULL, &q, len) : NULL;
    OPENSSL_free(der);
    if (!peer || !SSL_CTX_use_certificate(c, r->ccert) || !SSL_CTX_use_PrivateKey(c, r->ckey) ||
        !X509_STORE_add_cert(SSL_CTX_get_cert_store(c), peer)) {
        X509_free(peer);
        SSL_CTX_free(c);
        return NULL;
    }
    X509_free(peer);
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
    return c;
}

static int rig_init(rig *r)
{
    memset(r, 0, sizeof *r);
    r->ckey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    r->skey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    r->ccert = r->ckey ? self_signed(r->ckey, "verifier") : NULL;
    r->scert = r->skey ? self_signed(r->skey, "agent") : NULL;
    unsigned len = 0;
    if (!r->ccert || !r->scert || !X509_digest(r->scert, EVP_sha256(), r->spin, &len))
        return fail("keys");
    snprintf(r->cert_file, sizeof r->cert_file, "/tmp/bench_tls_conn.%ld.crt", (long)getpid());
    snprintf(r->key_file, sizeof r->key_file, "/tmp/bench_tls_conn.%ld.key", (long)getpid());
    if (write_pem(r->cert_file, r->ccert, NULL) < 0 || write_pem(r->key_file, NULL, r->ckey) < 0)
        return fail("cannot write the client's certificate and key to /tmp");
    r->server = SSL_CTX_new(TLS_server_method());
    r->shared = SSL_CTX_new(TLS_client_method());
    if (!r->server || !r->shared || !SSL_CTX_use_certificate(r->server, r->scert) ||
        !SSL_CTX_use_PrivateKey(r->server, r->skey) || !SSL_CTX_use_certificate(r->shared, r->ccert) ||
        !SSL_CTX_use_PrivateKey(r->shared, r->ckey))
        return fail("contexts");
    static const unsigned char sid[] = "quince-agent";   /* resumption with client certificates needs one */
    if (!SSL_CTX_set_session_id_context(r->server, sid, sizeof sid - 1))
        return fail("session id context");
    SSL_CTX_set_verify(r->server, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    SSL_CTX_set_cert_verify_callback(r->server, accept_client, NULL);
    SSL_CTX_set_verify(r->shared, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_cert_verify_callback(r->shared, pin_cb, NULL);
    SSL_CTX_set_session_cache_mode(r->shared, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_set_mode(r->shared, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_mode(r->server, SSL_MODE_RELEASE_BUFFERS);
    return 0;
}

static void rig_free(rig *r)
{
    SSL_CTX_free(r->server);
    SSL_CTX_free(r->shared);
    X509_free(r->ccert);
    X509_free(r->scert);
    EVP_PKEY_free(r->ckey);
    EVP_PKEY_free(r->skey);
    unlink(r->cert_file);
    unlink(r->key_file);
}

/* ---- one connection ------------------------------------------------------------------------- */
typedef struct conn {
    SSL *c;
    SSL_CTX *ctx;      /* per_ctx only */
    int fd;
} conn;

static bool pending(SSL *s, int rc)
{
    int e = SSL_get_error(s, rc);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

/* Handshake, one request and its answer; the server's side is freed. cus/sus get the CPU of each side. */
static int connect_one(rig *r, conn *k, SSL_SESSION *resume, double *cus, double *sus)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return fail("socketpair (raise the open-file limit or lower N)");
    if (fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0 || fcntl(sv[1], F_SETFL, O_NONBLOCK) < 0)
        return fail("fcntl");
    double t = cpu_us();
    SSL_CTX *ctx = k->ctx ? k->ctx : r->shared;
    SSL *c = SSL_new(ctx);
    if (!c || !SSL_set_fd(c, sv[0]) || (!k->ctx && !SSL_set_ex_data(c, pin_idx, r->spin)) ||
        (resume && !SSL_set_session(c, resume)))
        return fail("client SSL");
    SSL_set_connect_state(c);
    *cus += cpu_us() - t;
    t = cpu_us();
    SSL *s = SSL_new(r->server);
    if (!s || !SSL_set_fd(s, sv[1]))
        return fail("server SSL");
    SSL_set_accept_state(s);
    *sus += cpu_us() - t;
    int cd = 0, sd = 0;
    for (int i = 0; i < 100 && (cd != 1 || sd != 1); i++) {
        if (cd != 1) {
            t = cpu_us();
            cd = SSL_do_handshake(c);
            *cus += cpu_us() - t;
            if (cd != 1 && !pending(c, cd))
                return fail("client handshake");
        }
        if (sd != 1) {
            t = cpu_us();
            sd = SSL_do_handshake(s);
            *sus += cpu_us() - t;
            if (sd != 1 && !pending(s, sd))
                return fail("server handshake");
        }
    }
    if (cd != 1 || sd != 1)
        return fail("handshake did not finish");
    if (resume && !SSL_session_reused(c))
        return fail("the session was not resumed");
    /* Two requests: the first answer comes after the session tickets, and OpenSSL 3.0 keeps the
     * handshake message buffer (16 KB) it read them with until the next record is read. */
    static const char req[] = "GET /v2.1/quotes/integrity HTTP/1.1\r\n\r\n", ans[] = "HTTP/1.1 200 OK\r\n\r\n";
    char buf[256];
    for (int round = 0; round < 2; round++) {
        int got = 0;
        t = cpu_us();
        int wc = SSL_write(c, req, (int)sizeof req - 1);
        *cus += cpu_us() - t;
        for (int i = 0; i < 100 && got <= 0; i++) {
            t = cpu_us();
            got = SSL_read(s, buf, sizeof buf);
            *sus += cpu_us() - t;
            if (got <= 0 && !pending(s, got))
                return fail("server read");
        }
        t = cpu_us();
        int ws = SSL_write(s, ans, (int)sizeof ans - 1);
        *sus += cpu_us() - t;
        got = 0;
        for (int i = 0; i < 100 && got <= 0; i++) {
            t = cpu_us();
            got = SSL_read(c, buf, sizeof buf);
            *cus += cpu_us() - t;
            if (got <= 0 && !pending(c, got))
                return fail("client read");
        }
        if (wc <= 0 || ws <= 0 || got <= 0)
            return fail("request");
        /* Read on until the socket is dry, as an HTTP client does. */
        t = cpu_us();
        int more = SSL_read(c, buf, sizeof buf);
        *cus += cpu_us() - t;
        if (more > 0 || !pending(c, more))
            return fail("unexpected data after the answer");
    }
    SSL_free(s);
    close(sv[1]);
    k->c = c;
    k->fd = sv[0];
    return 0;
}

static void conn_free(conn *k)
{
    /* A connection closed without close_notify marks its session not resumable. */
    if (k->c && SSL_shutdown(k->c) < 0)
        ERR_clear_error();
    SSL_free(k->c);
    SSL_CTX_free(k->ctx);
    if (k->fd >= 0)
        close(k->fd);
    k->c = NULL;
    k->ctx = NULL;
    k->fd = -1;
}

static void report(const char *mode, long n, long long b0, long long a0, double cus, double sus)
{
    printf("mode=%s n=%ld bytes_per_conn=%.0f allocs_per_conn=%.1f client_us=%.0f server_us=%.0f\n", mode, n,
           (double)(live_bytes - b0) / (double)n, (double)(live_allocs - a0) / (double)n, cus / (double)n,
           sus / (double)n);
}

/* N connections, each with its own context from MAKE; the heap they keep and the CPU, as MODE. */
static int per_ctx_mode(rig *r, conn *k, long n, SSL_CTX *(*make)(const rig *), const char *mode)
{
    long long b0 = live_bytes, a0 = live_allocs;
    double cus = 0, sus = 0;
    for (long i = 0; i < n; i++) {
        k[i].fd = -1;
        double t = cpu_us();
        k[i].ctx = make(r);
        cus += cpu_us() - t;
        if (!k[i].ctx)
            return fail("per-connection context");
        if (connect_one(r, &k[i], NULL, &cus, &sus) < 0)
            return -1;
    }
    report(mode, n, b0, a0, cus, sus);
    for (long i = 0; i < n; i++)
        conn_free(&k[i]);
    return 0;
}

int main(int argc, char **argv)
{
    if (!CRYPTO_set_mem_functions(c_malloc, c_realloc, c_free))
        return fail("CRYPTO_set_mem_functions") ? 1 : 1;
    signal(SIGPIPE, SIG_IGN);      /* close_notify to a server side already gone */
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 2000;
    if (n < 1 || n > 100000) {
        fprintf(stderr, "usage: bench_tls_conn [N]   (1..100000 connections)\n");
        return 2;
    }
    rig r;
    pin_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    conn *k = calloc((size_t)n, sizeof *k);
    if (!k || pin_idx < 0 || rig_init(&r) < 0)
        return 1;
    int rc = 1;
    /* Warm up OpenSSL's lazily built tables, so they are not charged to the first mode. */
    double cus = 0, sus = 0;
    conn w = { .fd = -1 };
    if (connect_one(&r, &w, NULL, &cus, &sus) < 0)
        goto out;
    conn_free(&w);

    /* per_ctx: libcurl 7.88's way; per_ctx_preparsed: a context per connection, the client's
     * certificate and key shared. */
    bool only_shared = argc > 2 && strcmp(argv[2], "shared") == 0;
    if (!only_shared && (per_ctx_mode(&r, k, n, curl_like_ctx, "per_ctx") < 0 ||
                         per_ctx_mode(&r, k, n, preparsed_ctx, "per_ctx_preparsed") < 0))
        goto out;

    /* shared: one context. */
    long long b0 = live_bytes, a0 = live_allocs;
    cus = sus = 0;
    for (long i = 0; i < n; i++) {
        k[i].fd = -1;
        if (connect_one(&r, &k[i], NULL, &cus, &sus) < 0)
            goto out;
    }
    report("shared", n, b0, a0, cus, sus);

    /* session: keep only each client's session, then resume them all. */
    SSL_SESSION **ss = calloc((size_t)n, sizeof *ss);
    if (!ss)
        goto out;
    for (long i = 0; i < n; i++) {
        ss[i] = SSL_get1_session(k[i].c);
        conn_free(&k[i]);
        if (!ss[i]) {
            fail("no session");
            free(ss);
            goto out;
        }
    }
    report("session", n, b0, a0, 0, 0);
    /* The same sessions serialised (what a per-agent store of them would keep), and the cost of
     * turning one back into an object before a resumption. */
    long long der = 0;
    double t_d2i = 0;
    for (long i = 0; i < n; i++) {
        unsigned char *d = NULL;
        int len = i2d_SSL_SESSION(ss[i], &d);
        const unsigned char *q = d;
        double t = cpu_us();
        SSL_SESSION *back = len > 0 ? d2i_SSL_SESSION(NULL, &q, len) : NULL;
        t_d2i += cpu_us() - t;
        OPENSSL_free(d);
        if (!back) {
            fail("session (de)serialisation");
            free(ss);
            goto out;
        }
        SSL_SESSION_free(back);
        der += len;
    }
    printf("mode=session_der n=%ld bytes_per_conn=%.0f client_us=%.0f server_us=0\n", n, (double)der / (double)n,
           t_d2i / (double)n);
    b0 = live_bytes;
    a0 = live_allocs;
    cus = sus = 0;
    rc = 0;
    for (long i = 0; i < n && rc == 0; i++) {
        k[i].fd = -1;
        if (connect_one(&r, &k[i], ss[i], &cus, &sus) < 0)
            rc = 1;
        conn_free(&k[i]);
    }
    if (rc == 0)
        report("resumed", n, b0, a0, cus, sus);
    for (long i = 0; i < n; i++)
        SSL_SESSION_free(ss[i]);
    free(ss);
out:
    for (long i = 0; i < n; i++)
        if (k[i].c)
            conn_free(&k[i]);
    free(k);
    rig_free(&r);
    return rc;
}
