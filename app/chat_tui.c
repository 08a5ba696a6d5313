/* The TUI loop of `sizeup chat`: one thread polls the terminal and the workers' wake pipe,
 * turns keys into actions, drains the workers' output into the panes and redraws at most ~30
 * times a second, incrementally. Terminal restore on every exit path: a normal return, SIGINT,
 * SIGTERM and SIGHUP (a flag the loop sees), and fatal signals (ui_draw_emergency, then the
 * signal again with its default action). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app/app.h"
#include "app/chat_tui.h"
#include "ui/draw.h"
#include "ui/input.h"
#include "ui/text.h"

#define FRAME_MS 33

static volatile sig_atomic_t sig_quit, sig_winch, sig_tstp, sig_cont;
static int sig_wake_fd = -1;

static void on_signal(int sig)
{
    int saved = errno;
    if (sig == SIGWINCH)
        sig_winch = 1;
    else if (sig == SIGTSTP)
        sig_tstp = 1;
    else if (sig == SIGCONT)
        sig_cont = 1;
    else
        sig_quit = sig;
    if (sig_wake_fd >= 0) {
        ssize_t r = write(sig_wake_fd, "s", 1);
        (void)r;
    }
    errno = saved;
}

static void on_fatal(int sig)
{
    ui_draw_emergency();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_signals(void)
{
    struct sigaction sa = { 0 };
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    const int soft[] = { SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGTSTP, SIGCONT };
    for (size_t i = 0; i < sizeof soft / sizeof soft[0]; i++)
        sigaction(soft[i], &sa, NULL);
    sa.sa_handler = on_fatal;
    sa.sa_flags = SA_RESETHAND;
    const int fatal[] = { SIGSEGV, SIGFPE, SIGILL, SIGABRT };  /* SIGBUS: app/fatal.c */
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++)
        sigaction(fatal[i], &sa, NULL);
}

static void restore_signals(void)
{
    const int all[] = { SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGTSTP, SIGCONT,
                        SIGSEGV, SIGFPE, SIGILL, SIGABRT };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        signal(all[i], SIG_DFL);
}

void app_chat_notice(chat_tui *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->notice, sizeof t->notice, fmt, ap);
    va_end(ap);
    t->notice_until = app_now_ms() + 4000;
    t->dirty = true;
}

bool app_chat_targets(const chat_tui *t, int i)
{
    return t->broadcast || i == t->focus;
}

/* $XDG_STATE_HOME/sizeup/NAME (default ~/.local/state), its folder made; NULL when no home. */
static char *state_path(const char *name)
{
    const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    char dir[4096];
    if (xdg && *xdg)
        snprintf(dir, sizeof dir, "%s/sizeup", xdg);
    else if (home && *home)
        snprintf(dir, sizeof dir, "%s/.local/state/sizeup", home);
    else
        return NULL;
    for (char *s = dir + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            mkdir(dir, 0700);
            *s = '/';
        }
    mkdir(dir, 0700);
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* ---- panes ---- */

bool app_chat_open_pane(chat_tui *t, int i, const char *path, const char *ref)
{
    if (i > t->n || i >= UI_MAX_PANES)
        return false;
    ui_pane *p = i < t->n ? t->p[i] : ui_pane_new();
    if (!p)
        return false;
    if (i < t->n) {
        app_worker_stop(t->w[i]);
        t->w[i] = NULL;
        ui_pane_clear(p);
        *ui_pane_status_of(p) = (ui_pane_status){ .progress = -1 };
    } else {
        t->p[t->n++] = p;
    }
    ui_pane_info *in = ui_pane_info_of(p);
    app_chat_ref_label(path ? path : ref, in->name, sizeof in->name);
    snprintf(in->mode, sizeof in->mode, "loading");
    in->detail[0] = 0;
    t->load_since[i] = 0;
    t->w[i] = app_worker_start(path, ref, &t->cfg, t->wake[1]);
    if (!t->w[i])
        ui_pane_add_turn(p, UI_ROLE_ERROR, "could not start a worker thread for this model");
    else if (t->n_sets) {  /* it starts as the others were set, and says so */
        char msg[900];
        size_t n = (size_t)snprintf(msg, sizeof msg, "/set for all panes applies here too:");
        for (int k = 0; k < t->n_sets && n < sizeof msg; k++)
            n += (size_t)snprintf(msg + n, sizeof msg - n, " %s%s", t->sets[k],
                                  k + 1 < t->n_sets ? "," : "");
        ui_pane_add_turn(p, UI_ROLE_INFO, msg);
    }
    t->full = t->dirty = true;
    return t->w[i] != NULL;
}

void app_chat_close_pane(chat_tui *t, int i)
{
    app_worker_stop(t->w[i]);
    ui_pane_free(t->p[i]);
    for (int k = i; k + 1 < t->n; k++) {
        t->w[k] = t->w[k + 1];
        t->p[k] = t->p[k + 1];
        t->load_since[k] = t->load_since[k + 1];
    }
    t->n--;
    if (t->focus >= t->n)
        t->focus = t->n ? t->n - 1 : 0;
    t->full = t->dirty = true;
}

/* A pane that says there is no model and how to get one (the fixture-free fallback). */
static void empty_pane(chat_tui *t)
{
    ui_pane *p = ui_pane_new();
    if (!p)
        return;
    t->p[t->n] = p;
    t->w[t->n++] = NULL;
    ui_pane_info *in = ui_pane_info_of(p);
    snprintf(in->name, sizeof in->name, "no model");
    snprintf(in->mode, sizeof in->mode, "-");
    ui_pane_add_turn(p, UI_ROLE_INFO,
                     "No model is available: the store is empty and no model was named.\n\n"
                     "Get one:  sizeup pull qwen2.5:0.5b   (sizeup catalog lists more)\n"
                     "Open a file:  sizeup chat ./model.gguf\n"
                     "Or here:  /add REF  (a .gguf path, or a model already in the store)\n\n"
                     "/quit or Ctrl-C twice leaves.");
}

void app_chat_post_turns(chat_tui *t, app_job job, const char *text)
{
    int order[UI_MAX_PANES], n = 0;
    for (int i = 0; i < t->n; i++)
        if (app_chat_targets(t, i) && t->w[i])
            order[n++] = i;
    bool fair = t->mode == APP_SCHED_FAIR && t->gate;
    if (fair)  /* no pane always goes first */
        app_sched_shuffle(order, n, &t->rng);
    for (int k = 0; k < n; k++) {
        long ticket = fair ? app_sched_gate_ticket(t->gate) : -1;
        if (!app_worker_post_turn(t->w[order[k]], job, text, ticket)) {
            app_sched_gate_done(t->gate, ticket);
            app_chat_notice(t, "pane %d has too many messages waiting; Esc stops them",
                            order[k] + 1);
        }
    }
}

static void send_line(chat_tui *t, const char *line)
{
    for (int i = 0; i < t->n; i++) {
        if (!app_chat_targets(t, i))
            continue;
        if (!t->w[i]) {
            app_chat_notice(t, "pane %d has no model: /add REF or /model %d REF", i + 1, i + 1);
            continue;
        }
        ui_pane_add_turn(t->p[i], UI_ROLE_USER, line);
        ui_pane_scroll_to_end(t->p[i]);
    }
    app_chat_post_turns(t, APP_JOB_SEND, line);
    t->dirty = true;
}

static void switch_mode(chat_tui *t)
{
    t->mode = t->mode == APP_SCHED_FAIR ? APP_SCHED_CONCURRENT : APP_SCHED_FAIR;
    app_chat_notice(t, t->mode == APP_SCHED_FAIR ?
                    "fair: one pane at a time with the machine to itself, after a warm-up, in a "
                    "shuffled order" : "concurrent: every pane generates at once (they slow "
                    "each other down)");
}

static void stop_all(chat_tui *t)
{
    for (int i = 0; i < t->n; i++)
        if (t->w[i])
            app_worker_cancel(t->w[i]);
}

static bool any_busy(chat_tui *t)
{
    for (int i = 0; i < t->n; i++)
        if (t->w[i] && app_worker_busy(t->w[i]))
            return true;
    return false;
}

/* ---- keys ---- */

static void open_pager(chat_tui *t)
{
    char *md = app_chat_markdown(t, t->focus, t->focus);
    char path[] = "/tmp/sizeup-transcript-XXXXXX";
    int fd = md ? mkstemp(path) : -1;
    if (fd < 0) {
        free(md);
        app_chat_notice(t, "cannot write the transcript for the pager");
        return;
    }
    ssize_t wr = write(fd, md, strlen(md));
    (void)wr;
    close(fd);
    free(md);
    const char *pager = getenv("PAGER");
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "%s '%s'", pager && *pager ? pager : "less", path);
    ui_draw_suspend();
    signal(SIGINT, SIG_IGN);  /* Ctrl-C belongs to the pager now */
    int rc = system(cmd);
    (void)rc;
    install_signals();
    ui_draw_resume();
    unlink(path);
    t->full = t->dirty = true;
}

static void copy_last_answer(chat_tui *t)
{
    ui_pane *p = t->p[t->focus];
    for (size_t i = ui_pane_turn_count(p); i-- > 0;) {
        ui_role role;
        size_t len;
        const char *s = ui_pane_turn(p, i, &role, &len);
        if (role == UI_ROLE_MODEL) {
            ui_draw_osc52(s, len);
            app_chat_notice(t, "copied the last answer of pane %d (OSC 52, if the terminal "
                            "allows it)", t->focus + 1);
            return;
        }
    }
    app_chat_notice(t, "pane %d has no answer to copy yet", t->focus + 1);
}

static void suspend(chat_tui *t)
{
    ui_draw_suspend();
    signal(SIGTSTP, SIG_DFL);
    raise(SIGTSTP);  /* stops here until SIGCONT */
    install_signals();
    ui_draw_resume();
    t->full = t->dirty = true;
}

static void scroll_focused(chat_tui *t, long lines_up)
{
    int cols, rows;
    ui_draw_size(&cols, &rows);
    ui_layout L;
    ui_layout_compute(cols, rows, t->n, t->zoom, t->focus, 1, &L);
    int h = L.pane[t->focus].body.h;
    long step = lines_up == 0 ? 0 : lines_up;
    if (step == 1 || step == -1)
        step *= h > 2 ? h - 1 : 1;  /* a page */
    ui_pane_scroll(t->p[t->focus], step, h);
    t->dirty = true;
}

static void on_interrupt(chat_tui *t)
{
    if (any_busy(t)) {
        stop_all(t);
        app_chat_notice(t, "stopped");
    } else if (t->quit_armed) {
        t->quit = true;
    } else {
        t->quit_armed = true;
        app_chat_notice(t, "press Ctrl-C again to quit (or type /quit)");
        return;
    }
}

/* Up, Down, PgUp, PgDn, Home, End and the wheel scroll a box taller than the screen (a page
 * as the last frame laid it out; the next frame clamps); false for any other key. */
static bool overlay_scroll(chat_tui *t, ui_action a)
{
    int page = t->box.text.h > 2 ? t->box.text.h - 1 : 1, top = t->overlay_top;
    switch (a) {
    case UI_ACT_UP: top -= 1; break;
    case UI_ACT_DOWN: top += 1; break;
    case UI_ACT_PAGE_UP: top -= page; break;
    case UI_ACT_PAGE_DOWN: top += page; break;
    case UI_ACT_WHEEL_UP: top -= 3; break;
    case UI_ACT_WHEEL_DOWN: top += 3; break;
    case UI_ACT_HOME: top = 0; break;
    case UI_ACT_END: top = t->box.n_lines; break;
    default: return false;
    }
    int max = t->box.n_lines - t->box.text.h;
    t->overlay_top = top > max ? max : top < 0 ? 0 : top;
    t->dirty = true;
    return true;
}

/* Any other key closes the help or stats box, and does nothing else: a space typed to close it
 * would otherwise start the next line (which then is no command and goes to every model), Enter
 * would send what was typed. What it did to the input line is undone. Ctrl-C and Ctrl-Z keep
 * their meaning. true: the key was taken. */
static bool overlay_key(chat_tui *t, ui_action a)
{
    size_t len, cur;
    const char *in = ui_input_text(&len, &cur);
    const char *kept = t->overlay_input ? t->overlay_input : "";
    if (!t->overlay || a == UI_ACT_NONE || a == UI_ACT_INTERRUPT || a == UI_ACT_SUSPEND)
        return false;
    if (overlay_scroll(t, a))
        return true;
    if (a == UI_ACT_EDITED && len == strlen(kept) && !memcmp(in, kept, len))
        return false;  /* a redisplay that changed nothing (the one after the opening line) */
    free(t->overlay);
    t->overlay = NULL;
    t->overlay_stats = false;
    if (a == UI_ACT_EDITED || a == UI_ACT_LINE)
        ui_input_set_text(kept);
    free(t->overlay_input);
    t->overlay_input = NULL;
    t->full = t->dirty = true;
    return true;
}

/* What a key does (when no box took it). */
static void on_key(chat_tui *t, ui_action a, char *line)
{
    switch (a) {
    case UI_ACT_LINE: {
        /* "  /save x" is a command too: leading blanks are easy to type and invisible */
        const char *cmd = line + strspn(line, " \t");
        if (cmd[0] == '/')
            app_chat_command(t, cmd);
        else if (line[0])
            send_line(t, line);
        break;
    }
    case UI_ACT_EOF: t->quit = true; break;
    case UI_ACT_FOCUS_NEXT: t->focus = (t->focus + 1) % t->n; t->full = true; break;
    case UI_ACT_FOCUS_PREV: t->focus = (t->focus + t->n - 1) % t->n; t->full = true; break;
    case UI_ACT_BROADCAST:
        t->broadcast = !t->broadcast;
        app_chat_notice(t, t->broadcast ? "Enter sends to every pane" :
                        "Enter sends to the focused pane only (Tab moves the focus)");
        break;
    case UI_ACT_STOP:
        if (any_busy(t))
            stop_all(t);
        else if (t->zoom)
            t->zoom = false, ui_draw_mouse(true), t->full = true;
        break;
    case UI_ACT_INTERRUPT: on_interrupt(t); break;
    case UI_ACT_SUSPEND: suspend(t); break;
    case UI_ACT_REDRAW: t->full = true; break;
    case UI_ACT_PAGE_UP: scroll_focused(t, 1); break;
    case UI_ACT_PAGE_DOWN: scroll_focused(t, -1); break;
    case UI_ACT_WHEEL_UP: scroll_focused(t, 3); break;
    case UI_ACT_WHEEL_DOWN: scroll_focused(t, -3); break;
    case UI_ACT_HELP: app_chat_command(t, "/help"); break;
    case UI_ACT_ZOOM:
        t->zoom = !t->zoom;
        ui_draw_mouse(!t->zoom);  /* zoomed text is for selecting: the terminal gets the mouse */
        t->full = true;
        break;
    case UI_ACT_PAGER: open_pager(t); break;
    case UI_ACT_COPY: copy_last_answer(t); break;
    case UI_ACT_SCHED: switch_mode(t); break;
    case UI_ACT_SIZES: t->sizes = !t->sizes; t->full = true; break;
    case UI_ACT_EDITED: case UI_ACT_NONE: break;
    case UI_ACT_UP: case UI_ACT_DOWN: case UI_ACT_HOME: case UI_ACT_END:
        break;  /* decoded while a box was open, which a key before them closed */
    }
    t->dirty = true;
}

static void on_action(chat_tui *t, ui_action a, char *line)
{
    if (a != UI_ACT_INTERRUPT && a != UI_ACT_EDITED && a != UI_ACT_NONE)
        t->quit_armed = false;
    if (overlay_key(t, a))
        return;
    bool had_overlay = t->overlay != NULL;
    on_key(t, a, line);
    if (!had_overlay && t->overlay) {  /* the line as it stands now: a command's is gone */
        size_t len, cur;
        const char *in = a == UI_ACT_LINE ? "" : ui_input_text(&len, &cur);
        free(t->overlay_input);
        t->overlay_input = strdup(in);
    }
    ui_input_grab_scroll(t->overlay != NULL);  /* the arrows scroll the box, not the history */
}

/* ---- frames and the loop ---- */

/* The global bar's devices and their memory: a Vulkan device with what this process's panes
 * allocated on it of its memory heap; the CPU with the process's resident memory of the
 * machine's RAM (weights of a mapped file count once touched). */
static void bar_text(const chat_tui *t, char *bar, size_t cap)
{
    char a[16], b[16];
    bool host = false;
    size_t n = (size_t)snprintf(bar, cap, "%d model%s", t->n, t->n == 1 ? "" : "s");
    for (int i = 0; i < t->n && n < cap; i++) {
        const ui_pane_info *in = ui_pane_info_of(t->p[i]);
        bool seen = false;
        for (int k = 0; k < i; k++)
            seen |= !strcmp(ui_pane_info_of(t->p[k])->backend, in->backend);
        if (!in->backend[0] || seen)
            continue;
        if (strncmp(in->backend, "vulkan", 6)) {  /* "cpu", "cpu (Vulkan unavailable: ...)" */
            host = true;
            continue;
        }
        unsigned long long used = 0;
        for (int k = 0; k < t->n; k++) {
            const ui_pane_status *st = ui_pane_status_of(t->p[k]);
            if (!strcmp(ui_pane_info_of(t->p[k])->backend, in->backend))
                used += st->mem_weights + st->mem_kv + st->mem_scratch;
        }
        n += (size_t)snprintf(bar + n, cap - n, " | %s: %s of %s", in->backend,
                              app_fmt_bytes(used, a, sizeof a),
                              in->dev_heap ? app_fmt_bytes(in->dev_heap, b, sizeof b) : "?");
    }
    if (n < cap)
        n += (size_t)snprintf(bar + n, cap - n, " | %s%s of %s RAM", host ? "cpu: RSS " : "RSS ",
                              app_fmt_bytes(app_host_rss(), a, sizeof a),
                              app_fmt_bytes(app_host_ram(), b, sizeof b));
    if (n < cap) /* the scheduling mode every speed on screen was measured in (F3) */
        snprintf(bar + n, cap - n, " | %s", app_sched_mode_name(t->mode));
}

static void frame(chat_tui *t, bool full)
{
    static char prompt[16], bar[400];
    char want[16];
    snprintf(want, sizeof want, t->broadcast ? "all> " : "%d> ", t->focus + 1);
    if (strcmp(want, prompt)) {
        memcpy(prompt, want, sizeof prompt);
        ui_input_set_prompt(prompt);
    }
    bar_text(t, bar, sizeof bar);
    int cols, rows;
    ui_draw_size(&cols, &rows);
    ui_screen s = { .n_panes = t->n, .focus = t->focus, .zoom = t->zoom,
                    .broadcast = t->broadcast, .bar = bar, .overlay = t->overlay };
    if (t->sizes) {
        app_chat_size_view(t, &t->size_view);
        s.size = &t->size_view;
    }
    for (int i = 0; i < t->n; i++)
        s.panes[i] = t->p[i];
    s.input = ui_input_text(&s.input_len, &s.input_cursor);
    s.prompt = ui_input_prompt();
    s.notice = app_now_ms() < t->notice_until ? t->notice : NULL;
    ui_layout L;
    ui_layout_compute(cols, rows, t->n, t->zoom, t->focus, ui_draw_input_rows(&s, cols), &L);
    if (t->overlay) {  /* the box as draw.c will lay it out: the scroll keys page by it */
        if (t->overlay_stats)
            app_chat_stats_refresh(t, cols - 4);
        ui_box_compute(t->overlay, cols, rows - L.input.h, t->overlay_top, &t->box);
        t->overlay_top = t->box.top;
        s.overlay = t->overlay;
        s.overlay_top = t->overlay_top;
    }
    ui_draw_frame(&s, &L, full);
}

/* Signals seen by the loop (the handlers only set flags). */
static void handle_signals(chat_tui *t)
{
    if (sig_winch) {
        sig_winch = 0;
        int cols, rows;
        ui_draw_resize(&cols, &rows);
        t->full = t->dirty = true;
    }
    if (sig_tstp) {
        sig_tstp = 0;
        suspend(t);
    }
    if (sig_cont) {
        sig_cont = 0;
        ui_draw_resume();
        t->full = t->dirty = true;
    }
}

/* Bytes from the terminal and the wake pipe; false when the terminal is gone. */
static bool read_inputs(chat_tui *t, const struct pollfd *fds, int r)
{
    char buf[4096];
    if (r == 0 && ui_input_esc_pending())
        ui_input_timeout();
    if (r > 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
        ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
            return false;
        if (n > 0)
            ui_input_feed(buf, (size_t)n);
    }
    if (r > 0 && (fds[1].revents & POLLIN))
        while (read(t->wake[0], buf, sizeof buf) > 0)
            ;
    return true;
}

static void loop(chat_tui *t)
{
    struct pollfd fds[2] = { { STDIN_FILENO, POLLIN, 0 }, { t->wake[0], POLLIN, 0 } };
    double last_frame = 0, last_rss = 0;
    bool notice_shown = false;
    while (!t->quit && !sig_quit) {
        double now = app_now_ms();
        int timeout = 500;
        if (ui_input_esc_pending())
            timeout = 40;  /* an Esc alone, unless a sequence follows at once */
        if (t->dirty || t->full)
            timeout = last_frame + FRAME_MS > now ? (int)(last_frame + FRAME_MS - now) + 1 : 0;
        int r = poll(fds, 2, timeout);
        if (!read_inputs(t, fds, r))
            break;
        handle_signals(t);
        for (int i = 0; i < t->n; i++)
            if (t->w[i] && app_worker_drain(t->w[i], t->p[i]))
                t->dirty = true;
        char *line;
        ui_action a;
        while ((a = ui_input_next(&line)) != UI_ACT_NONE) {
            on_action(t, a, line);
            free(line);
        }
        now = app_now_ms();
        if (now - last_rss >= 1000) {  /* memory and loading time, once a second */
            unsigned long long rss = app_host_rss();
            for (int i = 0; i < t->n; i++) {
                ui_pane_status *st = ui_pane_status_of(t->p[i]);
                st->host_rss = rss;
                if (st->phase != UI_PHASE_LOADING || st->progress >= 0)
                    t->load_since[i] = 0;  /* the engine's progress says it is not stuck */
                else if (!t->load_since[i])
                    t->load_since[i] = now;
                else  /* no progress known: the time says it is not stuck */
                    snprintf(st->note, sizeof st->note, "%.0f s", (now - t->load_since[i]) / 1e3);
            }
            last_rss = now;
            t->dirty = true;
        }
        if (notice_shown != (now < t->notice_until)) {
            notice_shown = !notice_shown;
            t->dirty = true;
        }
        if ((t->dirty || t->full) && now - last_frame >= FRAME_MS) {
            frame(t, t->full);
            t->dirty = t->full = false;
            last_frame = now;
        }
    }
}

/* While curses owns the terminal, stray stderr output (a driver's warning, say) would tear the
 * screen: it goes to a log file instead. Returns the saved descriptor, or -1. */
static int stderr_to_log(const char *path)
{
    int fd = path ? open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : -1;
    if (fd < 0)
        return -1;
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
    return saved;
}

static void stderr_back(int saved)
{
    if (saved >= 0) {
        dup2(saved, STDERR_FILENO);
        close(saved);
    }
}

/* The SIGBUS handler's restore (app/fatal.c), which runs on the worker thread that read the
 * lost page while the UI thread may be drawing: stdout goes to /dev/null first, so no frame
 * lands after the restore (alternate screen, cursor, mouse modes), then the terminal's modes
 * are undone through a dup of it, and stderr goes back to the terminal so the message is seen
 * there rather than only in the log. Async-signal-safe calls only. */
static volatile int fatal_saved_err = -1;

static void fatal_restore(void)
{
    int tty = dup(STDOUT_FILENO), null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (tty >= 0 && null >= 0)
        dup2(null, STDOUT_FILENO);
    ui_draw_emergency_to(tty >= 0 ? tty : STDOUT_FILENO);
    if (fatal_saved_err >= 0)
        dup2(fatal_saved_err, STDERR_FILENO);
}

static void teardown(chat_tui *t)
{
    stop_all(t);
    for (int i = 0; i < t->n; i++) {
        app_worker_stop(t->w[i]);
        ui_pane_free(t->p[i]);
    }
    free(t->overlay);
    free(t->overlay_input);
    app_sched_gate_free(t->gate);  /* after the workers: they hold tickets until they stop */
    close(t->wake[0]);
    close(t->wake[1]);
}

int app_chat_tui(char **paths, const char *const *refs, size_t n, const app_chat_cfg *cfg)
{
    chat_tui t = { 0 };
    t.cfg = *cfg;
    t.broadcast = true;
    t.mode = APP_SCHED_CONCURRENT;
    t.rng = (uint64_t)time(NULL);
    if (pipe2(t.wake, O_NONBLOCK | O_CLOEXEC))
        return app_fail("chat", "cannot make a pipe: %s", strerror(errno));
    ui_text_locale();
    char *hist = state_path("history"), *log = state_path("chat.log");
    int saved_err = stderr_to_log(log);
    if (!ui_draw_open()) {
        stderr_back(saved_err);
        free(hist);
        free(log);
        close(t.wake[0]);
        close(t.wake[1]);
        for (size_t i = 0; i < n; i++)
            if (!paths[i] && !app_is_remote_ref(refs[i]))
                return app_fail("chat", "this terminal cannot be driven, and the line mode "
                                "needs %s downloaded first (sizeup pull)", refs[i]);
        return app_chat_plain(paths, refs, n, cfg);
    }
    sig_wake_fd = t.wake[1];
    install_signals();
    fatal_saved_err = saved_err;
    app_fatal_set_restore(fatal_restore);
    ui_input_open(hist);
    t.gate = t.cfg.gate = app_sched_gate_new();  /* NULL (out of memory): concurrent only */
    for (size_t i = 0; i < n && i < UI_MAX_PANES; i++)
        if (paths[i] || (refs && refs[i]))
            app_chat_open_pane(&t, t.n, paths[i], refs ? refs[i] : NULL);
    if (!t.n)
        empty_pane(&t);
    if (cfg->banner)
        ui_pane_add_turn(t.p[0], UI_ROLE_INFO, cfg->banner);
    t.full = t.dirty = true;
    loop(&t);
    int sig = sig_quit;
    ui_input_close();
    ui_draw_close();
    app_fatal_set_restore(NULL);
    teardown(&t);
    restore_signals();
    sig_wake_fd = -1;
    stderr_back(saved_err);
    free(hist);
    free(log);
    return sig ? 128 + sig : 0;
}
