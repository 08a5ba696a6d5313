/* Test servers for the download tests, header-only (every function static inline, so a test
 * program that includes this and uses half of it still builds with -Werror).
 *
 * 1. dlsrv_nginx: Debian's nginx on 127.0.0.1, run as the current user in a fresh temporary
 *    folder, serving files the test drops into s->www with ETag and Range (nginx does both for
 *    static files), optionally over TLS with a certificate signed by a fresh test CA.
 * 2. dlsrv_fault: a small HTTP/1.1 server on a pthread that serves one in-memory body with
 *    Content-Length, ETag, Range and If-Range, and misbehaves on request: drops the connection,
 *    ignores Range, changes its content, answers 500 or 404, trickles, corrupts a byte. It counts
 *    requests and body bytes so a test can assert what a client really transferred.
 *
 * Neither prints on success; failures to start print one line to stderr and return -1.
 */
#ifndef SIZEUP_TESTS_DLSRV_H
#define SIZEUP_TESTS_DLSRV_H

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------------ */
/* shared bits                                                                                 */

static inline void dlsrv_sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* A port nobody listens on right now: bind to port 0 and read back what the kernel chose. The
 * caller binds it again shortly after; the kernel does not hand the same ephemeral port out
 * again at once, so the race is theoretical for a test. */
static inline int dlsrv_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &al) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* True once something accepts TCP connections on 127.0.0.1:port. */
static inline bool dlsrv_port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static inline int dlsrv_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st; (void)flag; (void)f;
    remove(path);
    return 0;
}

/* rm -rf dir (used on the servers' temporary folders only). */
static inline void dlsrv_rm_rf(const char *dir)
{
    if (dir && dir[0])
        nftw(dir, dlsrv_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Write text to path; 0 or -1. */
static inline int dlsrv_write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int bad = fputs(text, f) < 0;
    bad |= fclose(f) != 0;
    return bad ? -1 : 0;
}

/* ------------------------------------------------------------------------------------------ */
/* nginx                                                                                       */

typedef struct dlsrv_nginx {
    pid_t pid;
    int port;
    char dir[512];       /* temporary folder: config, logs, pid, temp paths, certificates */
    char www[600];       /* document root (dir/www), created empty */
    char ca_pem[600];    /* the test CA certificate (tls only) */
    bool tls;
} dlsrv_nginx;

/* A CA and a server certificate for 127.0.0.1 and localhost signed by it, with the openssl
 * command line tool (EC keys: quick to make). */
static inline int dlsrv_make_certs(dlsrv_nginx *s)
{
    char ext[700], cmd[6000];
    snprintf(ext, sizeof ext, "%s/srv.ext", s->dir);
    if (dlsrv_write_text(ext, "basicConstraints=CA:FALSE\n"
                              "keyUsage=critical,digitalSignature,keyEncipherment\n"
                              "extendedKeyUsage=serverAuth\n"
                              "subjectAltName=IP:127.0.0.1,DNS:localhost\n") != 0)
        return -1;
    snprintf(cmd, sizeof cmd,
             "cd '%s' && { "
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout ca.key -out ca.pem -days 2 -subj /CN=sizeup-test-ca "
             "-addext basicConstraints=critical,CA:TRUE "
             "-addext keyUsage=critical,keyCertSign,cRLSign && "
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout srv.key -out srv.csr -subj /CN=127.0.0.1 && "
             "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "-out srv.pem -days 2 -extfile srv.ext; } >openssl.log 2>&1",
             s->dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "dlsrv: openssl failed, see %s/openssl.log\n", s->dir);
        return -1;
    }
    snprintf(s->ca_pem, sizeof s->ca_pem, "%s/ca.pem", s->dir);
    return 0;
}

/* nginx.conf for one server block. master_process off keeps nginx one process that runs as
 * the current user (as root, a master would switch its workers to "nobody", who cannot read
 * the 0700 temporary folder). Every path nginx writes is inside s->dir. */
static inline int dlsrv_nginx_conf(const dlsrv_nginx *s, const char *extra, char *path,
                                   size_t pathlen)
{
    size_t cap = 8192 + (extra ? strlen(extra) : 0);
    char *conf = malloc(cap);
    if (!conf)
        return -1;
    const char *d = s->dir;
    snprintf(conf, cap,
             "daemon off;\nmaster_process off;\npid %s/nginx.pid;\nerror_log stderr warn;\n"
             "events { worker_connections 64; }\n"
             "http {\n"
             "  access_log off;\n  default_type application/octet-stream;\n"
             "  client_body_temp_path %s/tmp_body;\n  proxy_temp_path %s/tmp_proxy;\n"
             "  fastcgi_temp_path %s/tmp_fcgi;\n  uwsgi_temp_path %s/tmp_uwsgi;\n"
             "  scgi_temp_path %s/tmp_scgi;\n"
             "  server {\n"
             "    listen 127.0.0.1:%d%s;\n"
             "%s%s%s%s%s"
             "    root %s;\n    absolute_redirect off;\n"
             "%s\n"
             "  }\n}\n",
             d, d, d, d, d, d, s->port, s->tls ? " ssl" : "",
             s->tls ? "    ssl_certificate " : "", s->tls ? d : "",
             s->tls ? "/srv.pem;\n    ssl_certificate_key " : "", s->tls ? d : "",
             s->tls ? "/srv.key;\n" : "", s->www, extra ? extra : "");
    snprintf(path, pathlen, "%s/nginx.conf", d);
    int rc = dlsrv_write_text(path, conf);
    free(conf);
    return rc;
}

/* Start nginx on a free port with `extra` pasted inside the server block; waits until the port
 * accepts connections. 0, or -1 with a line on stderr (and nothing left running). */
static inline int dlsrv_nginx_start(dlsrv_nginx *s, const char *extra, bool tls)
{
    memset(s, 0, sizeof *s);
    s->tls = tls;
    snprintf(s->dir, sizeof s->dir, "/tmp/sizeup-nginx-XXXXXX");
    if (!mkdtemp(s->dir)) {
        fprintf(stderr, "dlsrv: mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    snprintf(s->www, sizeof s->www, "%s/www", s->dir);
    char conf[700], log[700];
    if (mkdir(s->www, 0755) != 0 || (tls && dlsrv_make_certs(s) != 0))
        goto fail;
    snprintf(log, sizeof log, "%s/nginx.log", s->dir);
    for (int tries = 0; tries < 5; tries++) {
        s->port = dlsrv_free_port();
        if (s->port < 0 || dlsrv_nginx_conf(s, extra, conf, sizeof conf) != 0)
            goto fail;
        s->pid = fork();
        if (s->pid < 0)
            goto fail;
        if (s->pid == 0) {
            /* A test that fails half way never gets to dlsrv_nginx_stop: take nginx down with
             * it rather than leave it running. */
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            FILE *lf = freopen(log, "w", stderr);
            (void)lf;
            execl("/usr/sbin/nginx", "nginx", "-e", "stderr", "-p", s->dir, "-c", conf,
                  (char *)NULL);
            _exit(127);
        }
        for (int i = 0; i < 500; i++) {       /* up to 5 s */
            if (dlsrv_port_open(s->port))
                return 0;
            int st;
            if (waitpid(s->pid, &st, WNOHANG) == s->pid)
                break;                        /* died: port taken meanwhile, or a bad config */
            dlsrv_sleep_ms(10);
        }
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
    fprintf(stderr, "dlsrv: nginx did not start, see %s\n", log);
    return -1;
fail:
    fprintf(stderr, "dlsrv: cannot set up nginx in %s: %s\n", s->dir, strerror(errno));
    dlsrv_rm_rf(s->dir);
    s->dir[0] = 0;
    return -1;
}

/* Stop nginx and remove its folder. Safe on a server that failed to start. */
static inline void dlsrv_nginx_stop(dlsrv_nginx *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        int st;
        for (int i = 0; i < 200 && waitpid(s->pid, &st, WNOHANG) == 0; i++)
            dlsrv_sleep_ms(10);
        if (kill(s->pid, 0) == 0) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, NULL, 0);
        }
        s->pid = 0;
    }
    dlsrv_rm_rf(s->dir);
    s->dir[0] = 0;
}

/* "http://127.0.0.1:PORT" (https with tls), in a static buffer (one at a time). */
static inline const char *dlsrv_nginx_base(const dlsrv_nginx *s)
{
    static char buf[64];
    snprintf(buf, sizeof buf, "%s://127.0.0.1:%d", s->tls ? "https" : "http", s->port);
    return buf;
}

/* Copy a file into the document root as www/rel (folders created); 0 or -1. */
static inline int dlsrv_nginx_put(const dlsrv_nginx *s, const char *rel, const void *data,
                                  size_t len)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", s->www, rel);
    for (char *p = path + strlen(s->www) + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(path, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int bad = len && fwrite(data, 1, len, f) != len;
    bad |= fclose(f) != 0;
    return bad ? -1 : 0;
}

/* ------------------------------------------------------------------------------------------ */
/* a port that never answers                                                                  */

/* A listener that never accepts, its queue filled by connections of its own: Linux then drops
 * further SYNs, so a client's connect hangs until its timeout, as behind a blackholed route
 * (a local stand-in for an unreachable address; loopback itself never times out). */
typedef struct dlsrv_blackhole {
    int port;
    int listen_fd;
    int fill[8];             /* the connections that fill the queue, -1 when unused */
} dlsrv_blackhole;

static inline void dlsrv_blackhole_stop(dlsrv_blackhole *b)
{
    for (int i = 0; i < 8; i++)
        if (b->fill[i] >= 0)
            close(b->fill[i]);
    if (b->listen_fd >= 0)
        close(b->listen_fd);
    b->listen_fd = -1;
    for (int i = 0; i < 8; i++)
        b->fill[i] = -1;
}

/* 0 once a connect to the port no longer completes within 200 ms, else -1. */
static inline int dlsrv_blackhole_start(dlsrv_blackhole *b)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof a;
    for (int i = 0; i < 8; i++)
        b->fill[i] = -1;
    b->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (b->listen_fd < 0 || bind(b->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(b->listen_fd, (struct sockaddr *)&a, &al) != 0 || listen(b->listen_fd, 0))
        goto fail;
    b->port = ntohs(a.sin_port);
    for (int i = 0; i < 8; i++) {
        b->fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (b->fill[i] < 0)
            goto fail;
        if (connect(b->fill[i], (struct sockaddr *)&a, sizeof a) == 0)
            continue;
        if (errno != EINPROGRESS)
            goto fail;
        struct pollfd p = { .fd = b->fill[i], .events = POLLOUT };
        if (poll(&p, 1, 200) == 0)
            return 0;           /* this one hangs: so will the client's */
    }
fail:
    dlsrv_blackhole_stop(b);
    return -1;
}

/* ------------------------------------------------------------------------------------------ */
/* fault-injecting server                                                                      */

/* What to do wrong. Zero everywhere (the default) is a well-behaved server. The fields may be
 * changed between client calls (not during one): the server thread reads them per request. */
typedef struct dlsrv_faults {
    size_t drop_after;       /* > 0: close the connection after this many body bytes ... */
    int drop_times;          /* ... on this many responses (-1: every time; 0 counts as 1) */
    bool ignore_range;       /* answer 200 with the whole body to a Range request */
    int change_after;        /* > 0: after this many requests, serve body2 with ETag "v2" */
    bool ignore_if_range;    /* honour Range even when If-Range names another ETag */
    int fail_500;            /* answer 500 to this many requests first */
    bool not_found;          /* answer 404 to everything */
    long rate_bps;           /* > 0: send the body at about this many bytes per second */
    long corrupt_at;         /* >= 0: flip the bits of the body byte at this offset (when the
                              * server is made, it is -1) */
    bool no_etag;            /* send no ETag header */
    bool no_length;          /* no Content-Length: the body ends when the connection closes,
                              * so with drop_after a short body ends cleanly */
    bool linked_size;        /* send X-Linked-Size with the whole length, as Hugging Face does */
    const char *linked_text; /* with linked_size: this value instead of the length */
    bool last_modified;      /* send Last-Modified (another date for version 2) and honour an
                              * If-Range date as well as an ETag */
    size_t v2_len;           /* > 0: version 2 (change_after) is the first v2_len bytes only */
} dlsrv_faults;

/* The Last-Modified dates of the two versions. */
#define DLSRV_DATE_V1 "Wed, 21 Oct 2015 07:28:00 GMT"
#define DLSRV_DATE_V2 "Thu, 22 Oct 2015 08:00:00 GMT"

/* One answered request, for assertions. */
typedef struct dlsrv_req {
    int status;              /* 200, 206, 404, 416, 500 */
    long range_start;        /* from the Range header, -1 when none */
    long range_end;          /* inclusive end, -1 when open or none */
    uint64_t body_sent;      /* body bytes the server wrote for this response */
    bool auth;               /* an Authorization header came with it */
    char authorization[128]; /* its value */
    char if_range[64];
    bool has_length;         /* a Content-Length went with it */
} dlsrv_req;

#define DLSRV_MAX_REQS 64

typedef struct dlsrv_fault {
    int port;
    int listen_fd;
    pthread_t thread;
    atomic_bool stop;
    const uint8_t *body;     /* borrowed from the caller; version 1 */
    uint8_t *body2;          /* version 2 (changed content): body with its first 4096 bytes
                              * inverted; owned */
    size_t len;
    dlsrv_faults f;
    atomic_int requests;     /* requests answered so far */
    atomic_uint_least64_t bytes_sent;  /* body bytes sent over all responses */
    dlsrv_req reqs[DLSRV_MAX_REQS];    /* the first DLSRV_MAX_REQS requests */
    atomic_bool busy;        /* a connection is being served */
    int seen;                /* requests ever (not reset): counts towards change_after */
    int drops_done, fails_done;
} dlsrv_fault;

static inline bool dlsrv_send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        c += k;
        n -= (size_t)k;
    }
    return true;
}

/* Read a request head (up to the blank line) into buf; false on EOF, error or timeout. */
static inline bool dlsrv_read_head(dlsrv_fault *s, int fd, char *buf, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap && !atomic_load(&s->stop)) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int pr = poll(&p, 1, 100);
        if (pr == 0)
            continue;
        if (pr < 0 && errno == EINTR)
            continue;
        ssize_t k = pr > 0 ? recv(fd, buf + n, cap - 1 - n, 0) : -1;
        if (k <= 0)
            return false;
        n += (size_t)k;
        buf[n] = 0;
        if (strstr(buf, "\r\n\r\n"))
            return true;
    }
    return false;
}

/* The value of header `name` in a request head (case-insensitive name), copied into out. */
static inline bool dlsrv_header(const char *head, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *l = strstr(head, "\r\n"); l; l = strstr(l + 2, "\r\n")) {
        const char *h = l + 2;
        if (strncasecmp(h, name, nl) != 0 || h[nl] != ':')
            continue;
        h += nl + 1;
        while (*h == ' ')
            h++;
        size_t k = strcspn(h, "\r\n");
        if (k >= cap)
            k = cap - 1;
        memcpy(out, h, k);
        out[k] = 0;
        return true;
    }
    return false;
}

/* True when the client has closed its end (so a trickle stops at once instead of at the next
 * failing send). */
static inline bool dlsrv_peer_gone(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };
    if (poll(&p, 1, 0) <= 0)
        return false;
    if (p.revents & (POLLHUP | POLLERR | POLLRDHUP))
        return true;
    char c;
    return recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

/* Send body[from, to) with the configured drop, corruption and rate; returns the bytes sent
 * and sets *dropped when the connection is to be closed early. */
static inline uint64_t dlsrv_send_body(dlsrv_fault *s, int fd, const uint8_t *body, size_t from,
                                       size_t to, bool drop, bool *dropped)
{
    size_t limit = to;
    if (drop && from + s->f.drop_after < to) {
        limit = from + s->f.drop_after;
        *dropped = true;
    }
    long rate = s->f.rate_bps;
    size_t chunk = rate > 0 ? (size_t)(rate / 20 > 0 ? rate / 20 : 1) : 65536;
    uint8_t tmp[65536];
    uint64_t sent = 0;
    for (size_t off = from; off < limit && !atomic_load(&s->stop);) {
        size_t n = limit - off < chunk ? limit - off : chunk;
        if (n > sizeof tmp)
            n = sizeof tmp;
        memcpy(tmp, body + off, n);
        if (s->f.corrupt_at >= 0 && (size_t)s->f.corrupt_at >= off &&
            (size_t)s->f.corrupt_at < off + n)
            tmp[s->f.corrupt_at - (long)off] ^= 0xff;
        if (rate > 0 && dlsrv_peer_gone(fd))
            break;
        if (!dlsrv_send_all(fd, tmp, n))
            break;
        off += n;
        sent += n;
        atomic_fetch_add(&s->bytes_sent, n);
        if (rate > 0)
            dlsrv_sleep_ms(50);
    }
    return sent;
}

/* Parse "bytes=A-" or "bytes=A-B" (the only forms the client under test sends). */
static inline void dlsrv_parse_range(const char *v, long *a, long *b)
{
    *a = *b = -1;
    if (strncmp(v, "bytes=", 6) != 0)
        return;
    char *end;
    long x = strtol(v + 6, &end, 10);
    if (end == v + 6 || *end != '-')
        return;
    *a = x;
    if (end[1] >= '0' && end[1] <= '9')
        *b = strtol(end + 1, NULL, 10);
}

/* Decide the status for one request and fill in the record; *from and *to get the body slice. */
static inline int dlsrv_decide(dlsrv_fault *s, int n, const char *head, dlsrv_req *r,
                               size_t *from, size_t *to, const char *etag, const char *date,
                               size_t len)
{
    char v[128];
    r->range_start = r->range_end = -1;
    if (dlsrv_header(head, "Range", v, sizeof v))
        dlsrv_parse_range(v, &r->range_start, &r->range_end);
    r->auth = dlsrv_header(head, "Authorization", r->authorization, sizeof r->authorization);
    bool if_range = dlsrv_header(head, "If-Range", r->if_range, sizeof r->if_range);
    *from = 0;
    *to = len;
    if (s->f.not_found)
        return 404;
    if (s->fails_done < s->f.fail_500) {
        s->fails_done++;
        return 500;
    }
    (void)n;
    bool use_range = r->range_start >= 0 && !s->f.ignore_range;
    /* RFC 9110: a stale validator (an ETag, or a date when dates are on) gets the whole body */
    bool fresh = !strcmp(r->if_range, etag) ||
                 (s->f.last_modified && !strcmp(r->if_range, date));
    if (use_range && if_range && !s->f.ignore_if_range && !fresh)
        use_range = false;
    if (!use_range)
        return 200;
    if ((size_t)r->range_start >= len)
        return 416;
    *from = (size_t)r->range_start;
    if (r->range_end >= 0 && (size_t)r->range_end + 1 < len)
        *to = (size_t)r->range_end + 1;
    return 206;
}

/* Answer one request on fd. */
static inline void dlsrv_serve_one(dlsrv_fault *s, int fd)
{
    char head[8192];
    if (!dlsrv_read_head(s, fd, head, sizeof head))
        return;
    int n = atomic_load(&s->requests);
    dlsrv_req tmp_req, *r = n < DLSRV_MAX_REQS ? &s->reqs[n] : &tmp_req;
    memset(r, 0, sizeof *r);
    bool v2 = s->f.change_after > 0 && s->seen >= s->f.change_after;
    s->seen++;
    const uint8_t *body = v2 ? s->body2 : s->body;
    const char *etag = v2 ? "\"v2\"" : "\"v1\"";
    const char *date = v2 ? DLSRV_DATE_V2 : DLSRV_DATE_V1;
    size_t len = v2 && s->f.v2_len && s->f.v2_len < s->len ? s->f.v2_len : s->len;
    size_t from, to;
    r->status = dlsrv_decide(s, n, head, r, &from, &to, etag, date, len);
    bool is_head = strncmp(head, "HEAD ", 5) == 0;
    char hdr[1024], et[64] = "", cl[64] = "", extra[160] = "", lsz[32];
    if (!s->f.no_etag)
        snprintf(et, sizeof et, "ETag: %s\r\n", etag);
    const char *reason = r->status == 200 ? "OK" : r->status == 206 ? "Partial Content"
                       : r->status == 404 ? "Not Found" : r->status == 416 ? "Range Not Satisfiable"
                       : "Internal Server Error";
    bool ok = r->status == 200 || r->status == 206;
    r->has_length = !(ok && s->f.no_length);
    if (r->has_length)
        snprintf(cl, sizeof cl, "Content-Length: %zu\r\n", ok ? to - from : 0);
    if (s->f.linked_size)
        snprintf(extra, sizeof extra, "X-Linked-Size: %s\r\n", s->f.linked_text ? s->f.linked_text
                 : (snprintf(lsz, sizeof lsz, "%zu", len), lsz));
    if (s->f.last_modified)
        snprintf(extra + strlen(extra), sizeof extra - strlen(extra),
                 "Last-Modified: %s\r\n", date);
    int hl = snprintf(hdr, sizeof hdr,
                      "HTTP/1.1 %d %s\r\n%s%s%sAccept-Ranges: bytes\r\nConnection: close\r\n",
                      r->status, reason, cl, et, extra);
    if (r->status == 206)
        hl += snprintf(hdr + hl, sizeof hdr - (size_t)hl, "Content-Range: bytes %zu-%zu/%zu\r\n",
                       from, to - 1, len);
    if (r->status == 416)
        hl += snprintf(hdr + hl, sizeof hdr - (size_t)hl, "Content-Range: bytes */%zu\r\n", len);
    hl += snprintf(hdr + hl, sizeof hdr - (size_t)hl, "\r\n");
    atomic_fetch_add(&s->requests, 1);
    if (!dlsrv_send_all(fd, hdr, (size_t)hl) || !ok || is_head)
        return;
    bool drop = s->f.drop_after > 0 &&
                (s->f.drop_times < 0 || s->drops_done < (s->f.drop_times ? s->f.drop_times : 1));
    bool dropped = false;
    r->body_sent = dlsrv_send_body(s, fd, body, from, to, drop, &dropped);
    if (dropped)
        s->drops_done++;
}

static inline void *dlsrv_fault_main(void *arg)
{
    dlsrv_fault *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = { .fd = s->listen_fd, .events = POLLIN };
        if (poll(&p, 1, 50) <= 0)
            continue;
        /* busy is raised before the client can have its answer, so a test that waits for
         * it to fall (dlsrv_fault_idle) sees the finished record of its last request. */
        atomic_store(&s->busy, true);
        int fd = accept(s->listen_fd, NULL, NULL);
        if (fd >= 0) {
            dlsrv_serve_one(s, fd);
            /* A graceful close: the client gets every byte sent, then EOF (a "dropped"
             * response is short, not reset). */
            shutdown(fd, SHUT_WR);
            close(fd);
        }
        atomic_store(&s->busy, false);
    }
    return NULL;
}

/* Serve body (borrowed, len bytes, must outlive the server) on 127.0.0.1 at a free port with the
 * given faults (NULL: none). 0, or -1 with a line on stderr. */
static inline int dlsrv_fault_start(dlsrv_fault *s, const void *body, size_t len,
                                    const dlsrv_faults *f)
{
    memset(s, 0, sizeof *s);
    signal(SIGPIPE, SIG_IGN);
    s->body = body;
    s->len = len;
    s->f.corrupt_at = -1;
    if (f)
        s->f = *f;
    s->body2 = malloc(len ? len : 1);
    if (!s->body2)
        return -1;
    memcpy(s->body2, body, len);
    for (size_t i = 0; i < len && i < 4096; i++)
        s->body2[i] ^= 0xff;
    s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof a;
    int one = 1;
    if (s->listen_fd < 0 ||
        setsockopt(s->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(s->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(s->listen_fd, (struct sockaddr *)&a, &al) != 0 ||
        listen(s->listen_fd, 16) != 0)
        goto fail;
    s->port = ntohs(a.sin_port);
    if (pthread_create(&s->thread, NULL, dlsrv_fault_main, s) != 0)
        goto fail;
    return 0;
fail:
    fprintf(stderr, "dlsrv: fault server: %s\n", strerror(errno));
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    free(s->body2);
    s->body2 = NULL;
    return -1;
}

/* Default faults (none); use as a starting point: `dlsrv_faults f = dlsrv_no_faults();`. */
static inline dlsrv_faults dlsrv_no_faults(void)
{
    dlsrv_faults f;
    memset(&f, 0, sizeof f);
    f.corrupt_at = -1;
    return f;
}

static inline void dlsrv_fault_stop(dlsrv_fault *s)
{
    if (!s->body2)
        return;
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    close(s->listen_fd);
    free(s->body2);
    s->body2 = NULL;
}

/* "http://127.0.0.1:PORT" + path, in a static buffer (one at a time). */
static inline const char *dlsrv_fault_url(const dlsrv_fault *s, const char *path)
{
    static char buf[512];
    snprintf(buf, sizeof buf, "http://127.0.0.1:%d%s", s->port, path ? path : "/");
    return buf;
}

/* Wait until the server thread has finished the connection it is serving, if any, so the
 * counters and records are final and the faults may be changed. Call it after a client call
 * returns and before reading s->reqs or changing s->f (the accessors below do). */
static inline void dlsrv_fault_idle(dlsrv_fault *s)
{
    for (int i = 0; i < 1000 && atomic_load(&s->busy); i++)
        dlsrv_sleep_ms(5);
}

/* Requests answered so far (after dlsrv_fault_idle). */
static inline int dlsrv_fault_requests(dlsrv_fault *s)
{
    dlsrv_fault_idle(s);
    return atomic_load(&s->requests);
}

/* Body bytes sent so far over all responses (after dlsrv_fault_idle). */
static inline uint64_t dlsrv_fault_bytes(dlsrv_fault *s)
{
    dlsrv_fault_idle(s);
    return atomic_load(&s->bytes_sent);
}

/* Replace the faults between two client calls (after dlsrv_fault_idle). */
static inline void dlsrv_fault_set(dlsrv_fault *s, const dlsrv_faults *f)
{
    dlsrv_fault_idle(s);
    s->f = *f;
    s->drops_done = s->fails_done = 0;
}

/* Forget the counters and per-request records (between two client calls). */
static inline void dlsrv_fault_reset_counts(dlsrv_fault *s)
{
    dlsrv_fault_idle(s);
    atomic_store(&s->requests, 0);
    atomic_store(&s->bytes_sent, 0);
    memset(s->reqs, 0, sizeof s->reqs);
}

#endif
