/* SIGBUS from a model file truncated (or shrunk by a rewrite) while sizeup has it mapped: the
 * weights are read straight from the mapping (engine/gguf.c), and the kernel answers a read of
 * a page past the file's new end with SIGBUS. That is a clear death with a reason, not a bare
 * signal: the handler restores the terminal when the TUI holds it, names the file and exits 1.
 * Only async-signal-safe calls here: write(2), _exit, the table lookup of gguf_mapped_path_at
 * (stat(2)), and the restore hook (ui_draw_emergency: write(2) and tcsetattr). A SIGBUS that
 * is not about a file (BUS_ADRERR) is passed on as before (the default action, after the
 * restore); one in a file the table does not know (it is full) is reported without the name. */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "app/app.h"
#include "engine/gguf.h"

static void (*volatile fatal_restore)(void);

static void say(const char *s)
{
    ssize_t w = write(STDERR_FILENO, s, strlen(s));
    (void)w;
}

static void on_sigbus(int sig, siginfo_t *si, void *uctx)
{
    (void)uctx;
    void (*restore)(void) = fatal_restore;
    if (restore)
        restore();
    const char *path = gguf_mapped_path_at(si ? si->si_addr : NULL);
    if (!path && !(si && si->si_code == BUS_ADRERR)) {  /* a page past a mapped file's end */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    say(path ? "sizeup: the model file " : "sizeup: a model file");
    say(path ? path : "");
    say(" was truncated or changed while in use; stopping\n");
    _exit(1);
}

void app_fatal_install(void)
{
    struct sigaction sa = { 0 };
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);
}

void app_fatal_set_restore(void (*restore)(void))
{
    fatal_restore = restore;
}
