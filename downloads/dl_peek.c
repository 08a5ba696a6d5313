/* Remote header peek: read just enough of a model's first file to parse its GGUF header, so
 * `sizeup inspect` can show the model card and memory estimate before a multi-gigabyte
 * download. The caller's enough() decides when the bytes suffice; ranges start at 256 KiB and
 * double, because a header is usually a few hundred KiB but a large vocabulary can push it to
 * several MiB. A file already on disk is read from there and costs no network. */
#include "downloads/dl_ref_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PEEK_FIRST ((size_t)256 << 10)
#define PEEK_DEFAULT_MAX ((size_t)64 << 20)

/* Where the bytes come from: a local file (fd >= 0) or a URL. */
typedef struct peek_src {
    const char *what;      /* URL or path, for messages */
    const char *url;
    int fd;
    uint64_t size;         /* whole file, 0 until known */
    uint64_t transferred;
} peek_src;

/* Append bytes [have, want) of the file to buf; *got may fall short at the end of the file. */
static dl_status read_more(dl_ctx *c, peek_src *s, uint8_t *buf, size_t have, size_t want,
                           size_t *got)
{
    *got = 0;
    if (s->fd < 0) {
        uint64_t size = 0;
        dl_status st = dl_get_range(c, s->url, have, want - have, buf + have, got, &size);
        s->transferred += *got;
        if (size)
            s->size = size;
        return st;
    }
    while (have + *got < want) {
        ssize_t n = pread(s->fd, buf + have + *got, want - have - *got, (off_t)(have + *got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return dl_fail(c, DL_ERR_IO, "cannot read %s: %s", s->what, strerror(errno));
        if (n == 0)
            break;
        *got += (size_t)n;
    }
    return DL_OK;
}

/* The growing loop: read, ask enough(), double, until it says yes, fails or the cap is hit. */
static dl_status peek_loop(dl_ctx *c, peek_src *s, dl_peek_enough_fn enough, void *user,
                           size_t max_bytes, uint8_t **buf, size_t *len)
{
    size_t have = 0, want = PEEK_FIRST < max_bytes ? PEEK_FIRST : max_bytes;
    for (;;) {
        if (s->size && want > s->size)
            want = (size_t)s->size;
        uint8_t *grown = realloc(*buf, want ? want : 1);
        if (!grown)
            return dl_fail(c, DL_ERR_IO, "%s: out of memory for %zu bytes", s->what, want);
        *buf = grown;
        size_t got = 0, asked = want > have ? want - have : 0;
        dl_status st = asked ? read_more(c, s, *buf, have, want, &got) : DL_OK;
        if (st)
            return st;
        have += got;
        *len = have;
        bool at_end = got < asked || (s->size && have >= s->size);
        if (!s->size && at_end)
            s->size = have;            /* a short answer ended: that was the whole file */
        /* A server that ignores Range and sends no length gives the first bytes of a file of
         * unknown size: taking them for the whole file would make every tensor "run past the
         * end". Without the size the header cannot be checked, so say that instead. */
        if (!s->size)
            return dl_fail(c, DL_ERR_FORMAT, "%s: the file's size is unknown: the server sent "
                           "neither Content-Range nor Content-Length (it does not support "
                           "range requests), so its header cannot be read on its own; sizeup "
                           "pull downloads the whole file", s->what);
        char msg[256] = "";
        int r = enough(*buf, have, s->size, user, msg, sizeof msg);
        if (r == 0)
            return DL_OK;
        if (r < 0)
            return dl_fail(c, DL_ERR_FORMAT, "%s: %s", s->what, *msg ? msg : "not a GGUF file");
        if (at_end || have >= max_bytes)
            return dl_fail(c, DL_ERR_FORMAT, "%s: the header does not fit in the first %zu "
                           "bytes%s%s", s->what, have, *msg ? ": " : "", msg);
        want = have * 2 < max_bytes ? have * 2 : max_bytes;
    }
}

dl_status dl_peek(dl_ctx *c, const char *ref, dl_peek_enough_fn enough, void *user,
                  size_t max_bytes, void **buf, size_t *len, uint64_t *file_size,
                  uint64_t *transferred)
{
    dl_resolved r;
    uint8_t *data = NULL;
    *buf = NULL;
    *len = 0;
    *file_size = *transferred = 0;
    dl_status st = dl_resolve(c, ref, false, &r);
    if (st)
        return st;
    const dl_file *f = &r.files[0];
    peek_src s = { f->url, f->url, -1, f->size, 0 };
    if (f->present || !f->url) {
        struct stat sb;
        s.what = f->path;
        s.fd = open(f->path, O_RDONLY | O_CLOEXEC);
        if (s.fd < 0 || fstat(s.fd, &sb) != 0)
            st = dl_fail(c, DL_ERR_IO, "cannot open %s: %s", f->path, strerror(errno));
        else
            s.size = (uint64_t)sb.st_size;
    }
    if (!st)
        st = peek_loop(c, &s, enough, user, max_bytes ? max_bytes : PEEK_DEFAULT_MAX, &data,
                       len);
    if (s.fd >= 0)
        close(s.fd);
    *transferred = s.transferred;
    *file_size = s.size;
    if (st) {
        free(data);
        *len = 0;
    } else {
        *buf = data;
    }
    dl_resolved_free(&r);
    return st;
}
