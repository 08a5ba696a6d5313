/* The checks every command that writes a model file (quantize OUT, gen-model -o) makes on its
 * output path before doing any work, so a mistake costs a message rather than the user's file:
 * OUT must not be the input (through any name: symlinks and hard links compare by device and
 * inode), must not be a directory, device, FIFO or socket, and must not exist unless --force.
 * The write itself goes through gguf_writer_write_ex (a fresh O_EXCL temp file beside OUT,
 * fsync, rename), with GGUF_WRITE_NO_REPLACE when --force was not given, so an OUT created
 * between this check and the rename is not overwritten either. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/app.h"

/* The folder OUT is written in (the temp file beside it, then the rename) must exist and be
 * writable by us; say so now rather than after the work (gen-model on a large shape takes
 * minutes). AT_EACCESS: the permissions of the effective user, who does the writing; a
 * read-only mount answers EROFS even to root. */
static int check_parent(const char *cmd, const char *out)
{
    const char *slash = strrchr(out, '/');
    char *dir = slash ? strndup(out, slash == out ? 1 : (size_t)(slash - out)) : strdup(".");
    if (!dir)
        return app_fail(cmd, "out of memory");
    struct stat st;
    int rc = 0;
    if (stat(dir, &st) != 0)
        rc = app_fail(cmd, "cannot write %s: folder %s: %s", out, dir, strerror(errno));
    else if (!S_ISDIR(st.st_mode))
        rc = app_fail(cmd, "cannot write %s: %s is not a folder", out, dir);
    else if (faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS) != 0)
        rc = app_fail(cmd, "cannot write %s: folder %s: %s", out, dir, strerror(errno));
    free(dir);
    return rc;
}

const char *app_file_kind(unsigned mode)
{
    mode_t m = (mode_t)mode;
    return S_ISDIR(m) ? "a directory" : S_ISCHR(m) || S_ISBLK(m) ? "a device"
         : S_ISFIFO(m) ? "a FIFO" : S_ISSOCK(m) ? "a socket" : "not a regular file";
}

int app_check_output(const char *cmd, const char *out, const char *in, bool force)
{
    struct stat lst, st, ist;
    if (!*out)
        return app_fail(cmd, "the output path is empty");
    if (lstat(out, &lst) != 0) {
        if (errno != ENOENT)
            return app_fail(cmd, "cannot write %s: %s", out, strerror(errno));
        return check_parent(cmd, out);
    }
    /* Follow a symlink for what it names; a dangling one is simply an existing name. */
    if (stat(out, &st) == 0) {
        if (in && stat(in, &ist) == 0 && st.st_dev == ist.st_dev && st.st_ino == ist.st_ino)
            return app_fail(cmd, "%s is the input file %s%s; write the copy to another path",
                            out, in, S_ISLNK(lst.st_mode) ? " (through a symlink)"
                            : strcmp(out, in) ? " (the same file under another name)" : "");
        if (!S_ISREG(st.st_mode))
            return app_fail(cmd, "%s is %s, not a regular file; refusing to replace it", out,
                            app_file_kind(st.st_mode));
    }
    if (!force)
        return app_fail(cmd, "%s exists; add --force to replace it", out);
    return check_parent(cmd, out);
}
