/* cmd_send.c - `pdns-relay send`: a D4 protocol v1 client that streams a
 * passivedns CSV file as type-8 frames over TLS, for replays, tests and
 * benchmarks. A plain blocking client: it has one peer and nothing else to
 * do, so it needs no event loop.
 *
 * Frames carry whole lines and end with a newline (d4-core's worker only
 * forwards newline-terminated lines); each frame goes out in one SSL_write,
 * so no TLS record of it is shorter than the 62-byte header (d4-core
 * ignores reads under 62 bytes). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "config.h"
#include "d4.h"
#include "lines.h"

const char cmd_send_help[] =
    "usage: pdns-relay send --host H --port P --uuid U --key-file F\n"
    "                       [--type 8] [--ca FILE | --insecure]\n"
    "                       [--frame-size N] [FILE|-]\n"
    "\n"
    "Streams passivedns CSV lines to a D4 server (pdns-relay run, or a\n"
    "d4-core server) as D4 protocol v1 frames over TLS, signed with the\n"
    "sensor's HMAC key. Frames hold whole lines. Prints a summary on stderr.\n"
    "\n"
    "  --host H, --port P  the D4 server (default port 4443)\n"
    "  --uuid U            this sensor's uuid (32 hex digits)\n"
    "  --key-file F        the HMAC key the server issued (mode 0600)\n"
    "  --type T            D4 frame type (default 8, passivedns CSV)\n"
    "  --ca FILE           verify the server's certificate with this CA\n"
    "  --insecure          do not verify the server's certificate (tests)\n"
    "  --frame-size N      payload bytes per frame, at most (default 16000;\n"
    "                      a longer line goes in a frame of its own)\n";

struct sender {
    SSL *ssl;
    d4_header h;
    uint8_t *key;
    size_t keylen;
    pdns_buf payload, frame;
    size_t frame_size;
    uint64_t lines, frames, bytes, too_long;
};

static int ssl_write_all(SSL *ssl, const char *p, size_t n) {
    while (n) {
        int w = SSL_write(ssl, p, (int)(n > (1u << 30) ? (1u << 30) : n));
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int send_frame(struct sender *s) {
    if (!s->payload.len)
        return 0;
    s->h.timestamp = (uint64_t)time(NULL);
    s->frame.len = 0;
    if (d4_frame_encode(&s->h, s->key, s->keylen, (uint8_t *)s->payload.p,
                        s->payload.len, &s->frame) < 0 ||
        ssl_write_all(s->ssl, s->frame.p, s->frame.len) < 0)
        return -1;
    s->frames++;
    s->bytes += s->frame.len;
    s->payload.len = 0;
    return 0;
}

static int on_line(void *ctx, uint64_t lineno, char *line, size_t len) {
    struct sender *s = ctx;
    (void)lineno;
    if (!line) {
        s->too_long++;
        return 0;
    }
    if (len == 0)
        return 0;
    if (s->payload.len && s->payload.len + len + 1 > s->frame_size &&
        send_frame(s) < 0)
        return -1;
    if (pdns_buf_append(&s->payload, line, len) < 0 ||
        pdns_buf_append(&s->payload, "\n", 1) < 0)
        return -1;
    s->lines++;
    if (s->payload.len >= s->frame_size)
        return send_frame(s);
    return 0;
}

static int tcp_connect(const char *host, const char *port) {
    struct addrinfo hints, *res, *ai;
    int fd = -1, one = 1;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    int e = getaddrinfo(host, port, &hints, &res);
    if (e) {
        fprintf(stderr, "send: %s: %s\n", host, gai_strerror(e));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        fprintf(stderr, "send: cannot connect to %s:%s: %s\n", host, port,
                strerror(errno));
    else
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

int cmd_send(int argc, char **argv) {
    static const struct option opts[] = {
        {"host", required_argument, NULL, 'h'},
        {"port", required_argument, NULL, 'p'},
        {"uuid", required_argument, NULL, 'u'},
        {"key-file", required_argument, NULL, 'k'},
        {"type", required_argument, NULL, 't'},
        {"ca", required_argument, NULL, 'a'},
        {"insecure", no_argument, NULL, 'i'},
        {"frame-size", required_argument, NULL, 'f'},
        {NULL, 0, NULL, 0}};
    const char *host = NULL, *port = "4443", *uuid = NULL, *keyf = NULL,
               *ca = NULL, *file = "-";
    int insecure = 0, opt, fd = -1, in = 0, rc = 1;
    long type = 8, fsz = 16000;
    struct sender s;
    SSL_CTX *ctx = NULL;
    char err[512];

    memset(&s, 0, sizeof(s));
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'h': host = optarg; break;
        case 'p': port = optarg; break;
        case 'u': uuid = optarg; break;
        case 'k': keyf = optarg; break;
        case 't': type = strtol(optarg, NULL, 10); break;
        case 'a': ca = optarg; break;
        case 'i': insecure = 1; break;
        case 'f': fsz = strtol(optarg, NULL, 10); break;
        default:
            fputs(cmd_send_help, stderr);
            return 2;
        }
    }
    if (optind < argc)
        file = argv[optind];
    if (!host || !uuid || !keyf || (!ca && !insecure)) {
        fprintf(stderr, "send: --host, --uuid, --key-file and one of --ca or "
                "--insecure are required\n\n%s", cmd_send_help);
        return 2;
    }
    if (type < 1 || type > 255 || fsz < 64 || fsz > 64 * 1024 * 1024) {
        fprintf(stderr, "send: --type must be 1..255, --frame-size 64..%d\n",
                64 * 1024 * 1024);
        return 2;
    }
    if (pdns_uuid_parse(uuid, s.h.uuid) < 0) {
        fprintf(stderr, "send: --uuid %s is not a uuid\n", uuid);
        return 2;
    }
    if (config_read_key_file(keyf, &s.key, &s.keylen, err, sizeof(err)) < 0) {
        fprintf(stderr, "send: %s\n", err);
        return 1;
    }
    s.h.version = D4_VERSION;
    s.h.type = (uint8_t)type;
    s.frame_size = (size_t)fsz;
    if (strcmp(file, "-") != 0 && (in = open(file, O_RDONLY)) < 0) {
        fprintf(stderr, "send: %s: %s\n", file, strerror(errno));
        goto out;
    }
    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        goto out;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (insecure) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    } else {
        if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
            fprintf(stderr, "send: cannot load CA file %s\n", ca);
            goto out;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    if ((fd = tcp_connect(host, port)) < 0)
        goto out;
    s.ssl = SSL_new(ctx);
    SSL_set_fd(s.ssl, fd);
    SSL_set_tlsext_host_name(s.ssl, host);
    if (!insecure)
        SSL_set1_host(s.ssl, host);
    if (SSL_connect(s.ssl) != 1) {
        fprintf(stderr, "send: TLS handshake with %s:%s failed: %s\n", host,
                port, ERR_reason_error_string(ERR_get_error()));
        goto out;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (lines_read_fd(in, s.frame_size > 65536 ? s.frame_size : 65536,
                      on_line, &s) != 0 || send_frame(&s) < 0) {
        fprintf(stderr, "send: stream to %s:%s broken after %llu frames\n",
                host, port, (unsigned long long)s.frames);
        goto out;
    }
    /* Close gracefully: unread bytes in our receive queue (TLS 1.3 session
     * tickets) would make close() send a RST, and a RST makes the server's
     * kernel discard what it has not read yet. So: close_notify, FIN, then
     * read until the server closes too. */
    SSL_shutdown(s.ssl);
    shutdown(fd, SHUT_WR);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char drain[4096];
    while (read(fd, drain, sizeof(drain)) > 0)
        ;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) +
                  (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    fprintf(stderr, "send: %llu lines in %llu frames (%llu bytes) in %.3f s, "
            "%.0f lines/s%s\n", (unsigned long long)s.lines,
            (unsigned long long)s.frames, (unsigned long long)s.bytes, secs,
            secs > 0 ? (double)s.lines / secs : 0.0,
            s.too_long ? ", some lines too long were skipped" : "");
    rc = 0;
out:
    if (s.ssl)
        SSL_free(s.ssl);
    if (ctx)
        SSL_CTX_free(ctx);
    if (fd >= 0)
        close(fd);
    if (in > 0)
        close(in);
    sodium_free(s.key);
    pdns_buf_free(&s.payload);
    pdns_buf_free(&s.frame);
    return rc;
}
