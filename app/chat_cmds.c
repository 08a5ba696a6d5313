/* The TUI's slash commands, and the transcript as Markdown or JSON (for /save and the pager). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "app/app.h"
#include "app/chat_tui.h"
#include "ui/sanitize.h"
#include "ui/text.h"

/* One line per entry: the box wraps them to the screen, continuing under the entry's indent
 * (ui/box.c), so the text reads the same at 200 columns and at 40. */
static const char help_text[] =
    "Keys\n"
    "  Enter send (to every pane, or the focused one: F2 switches)\n"
    "  F3 scheduling: concurrent (all panes generate at once) or fair (one pane at a time with "
    "the machine to itself, after a warm-up, shuffled order)\n"
    "  F4 size view: the models' sizes and speeds in one table, with bars\n"
    "  Tab / Shift-Tab focus   Esc stop every answer   Ctrl-C stop; twice: quit\n"
    "  PgUp/PgDn, wheel: scroll   F5 zoom (plain text to select)\n"
    "  F6 transcript in $PAGER   F7 copy the last answer (OSC 52)\n"
    "  Ctrl-J or Alt-Enter: new line   Ctrl-R: search history\n"
    "Commands\n"
    "  /system TEXT\n"
    "  /set temp|top_k|top_p|min_p|repeat_penalty|seed|n_predict|n_ctx V (n_ctx: a new "
    "context, the conversation kept)\n"
    "  /set chat 0|1 (remote panes: completion or chat)\n"
    "  /model N REF   /add REF (a .gguf, a store model, URL#MODEL, @NAME/MODEL)\n"
    "  /close N   /clear   /regen\n"
    "  /save FILE(.md|.json) (/save! replaces a file)   /stats   /quit\n"
    "Figures\n"
    "  t/s now: decode speed over the last tokens; avg: decode-only tokens/s of the answer "
    "(first to last token); prompt: prompt tokens/s; ttft: send to first token; tok: tokens in "
    "the answer; ctx: context used of its size; mem: weights + KV cache + scratch on the "
    "backend; rss: host memory of the whole process. /save adds wall-time tokens/s (send to "
    "last token).\n"
    "  Top bar: a Vulkan device's memory allocated by the panes of its heap; the CPU's: the "
    "process's resident memory of the machine's RAM.\n"
    "  Every speed says the mode it was measured in ([fair], [conc]: concurrent).\n"
    "  A remote pane's times include the network (net); ~: tokens counted from chunks; its "
    "memory is the server's (remote, KV cache use when the server says); a prompt speed marked "
    "srv is the server's own (llama-server's).\n"
    "  -, or no figure: not measured (yet).\n"
    "Up, Down, PgUp, PgDn, Home, End scroll.\n"
    "Any other key closes this box.";

static const char *role_name(ui_role r)
{
    return r == UI_ROLE_USER ? "user" : r == UI_ROLE_MODEL ? "model" :
           r == UI_ROLE_ERROR ? "error" : "info";
}

/* Markdown of panes first..last, sanitized (ui/sanitize.h): it goes to $PAGER and to files a
 * user will cat, and a model's name (general.name) or a server's words must not drive the
 * terminal there either. Answers are sanitized as they arrive already, and caret notation is
 * printable, so the pass leaves them as they are. Caller frees; NULL when out of memory. */
char *app_chat_markdown(chat_tui *t, int first, int last)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    fprintf(f, "# sizeup chat transcript\n");
    for (int i = first; i <= last && i < t->n; i++) {
        const ui_pane_info *in = ui_pane_info_of(t->p[i]);
        fprintf(f, "\n## Pane %d: %s\n\n%s | %s\n", i + 1, in->name, in->mode, in->detail);
        for (size_t k = 0; k < ui_pane_turn_count(t->p[i]); k++) {
            ui_role role;
            size_t n;
            const char *s = ui_pane_turn(t->p[i], k, &role, &n);
            const char *who = role == UI_ROLE_USER ? "You" : role == UI_ROLE_MODEL ? in->name :
                              role == UI_ROLE_ERROR ? "Error" : "Note";
            fprintf(f, "\n**%s:** %.*s\n", who, (int)n, s);
            const char *note = ui_pane_turn_note(t->p[i], k);
            if (note)
                fprintf(f, "\n_Figures: %s_\n", note);
        }
    }
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    char *safe = ui_sanitize_dup(buf, len);
    free(buf);
    return safe;
}

static json_t *pane_json(chat_tui *t, int i)
{
    const ui_pane_info *in = ui_pane_info_of(t->p[i]);
    const ui_pane_status *st = ui_pane_status_of(t->p[i]);
    /* The turns are sanitized text already; the header strings come from the model file or
     * the server: sanitized here, so no control reaches a terminal that shows the file and
     * invalid UTF-8 (which jansson refuses) becomes U+FFFD. */
    char *name = ui_sanitize_dup(in->name, strlen(in->name));
    char *mode = ui_sanitize_dup(in->mode, strlen(in->mode));
    char *detail = ui_sanitize_dup(in->detail, strlen(in->detail));
    if (!name || !mode || !detail) {
        free(name), free(mode), free(detail);
        return NULL;
    }
    json_t *turns = json_array();
    for (size_t k = 0; k < ui_pane_turn_count(t->p[i]); k++) {
        ui_role role;
        size_t n;
        const char *s = ui_pane_turn(t->p[i], k, &role, &n);
        json_t *o = json_pack("{s:s, s:s%}", "role", role_name(role), "text", s, n);
        const char *note = ui_pane_turn_note(t->p[i], k);
        if (o && note)
            json_object_set_new(o, "figures", json_string(note));
        json_array_append_new(turns, o);
    }
    json_t *o = json_pack("{s:i, s:s, s:s, s:s, s:b, s:o, s:{s:f, s:f, s:f, s:i, s:i, s:i, s:I, "
                          "s:I, s:I, s:s?, s:b, s:b}}",
                          "pane", i + 1, "model", name, "mode", mode, "detail", detail,
                          "remote", in->remote, "turns", turns, "last_figures",
                          "decode_tps", st->tps_avg, "prompt_tps", st->prompt_tps, "ttft_ms",
                          st->ttft_ms, "tokens", (int)st->n_gen, "ctx_used", (int)st->ctx_used,
                          "ctx_max", (int)st->ctx_max, "mem_weights",
                          (json_int_t)st->mem_weights, "mem_kv", (json_int_t)st->mem_kv,
                          "mem_scratch", (json_int_t)st->mem_scratch, "scheduling", st->sched,
                          "network_inclusive", st->remote, "approximate", st->approx);
    /* a prompt speed not measured here is null; the server's own has a name of its own */
    json_t *lf = o ? json_object_get(o, "last_figures") : NULL;
    if (lf && (st->prompt_tps <= 0 || st->prompt_srv || !st->sched))
        json_object_set_new(lf, "prompt_tps", json_null());
    if (lf && st->prompt_tps > 0 && st->prompt_srv)
        json_object_set_new(lf, "server_prompt_tps", json_real(st->prompt_tps));
    if (o && st->remote && st->has_kv)
        json_object_set_new(json_object_get(o, "last_figures"), "server_kv_usage",
                            json_real(st->kv_usage));
    free(name), free(mode), free(detail);
    return o;
}

/* The transcript as text: JSON for FILE.json, else Markdown. Caller frees; NULL when out of
 * memory. */
static char *transcript(chat_tui *t, const char *file)
{
    size_t n = strlen(file);
    if (!(n > 5 && !strcmp(file + n - 5, ".json")))
        return app_chat_markdown(t, 0, t->n - 1);
    json_t *panes = json_array();
    for (int i = 0; i < t->n; i++)
        json_array_append_new(panes, pane_json(t, i));
    json_t *root = json_pack("{s:o}", "panes", panes);
    char *text = root ? json_dumps(root, JSON_INDENT(2)) : NULL;
    json_decref(root);
    return text;
}

static bool write_all(int fd, const char *text)
{
    for (size_t n = strlen(text), done = 0; done < n;) {
        ssize_t w = write(fd, text + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        done += (size_t)w;
    }
    return true;
}

/* /save FILE never replaces anything; /save! FILE replaces a regular file, whole or not at all
 * (a new file beside it, renamed over it). As the CLI's output paths (app/outfile.c): a symlink
 * is followed for what it names and then replaced, never written through; a folder, FIFO,
 * device or socket is refused, for an open() of a FIFO blocks this thread (the UI's) until a
 * reader comes, and a device is not a transcript's place. Only new files are opened (O_EXCL,
 * mkostemp), O_NONBLOCK besides, so nothing here can wait on a reader. Every failure names the
 * file and the reason. */
static void save(chat_tui *t, const char *file, bool force)
{
    struct stat lsb, sb;
    bool exists = lstat(file, &lsb) == 0;
    if (exists && stat(file, &sb) != 0)
        sb = lsb;  /* a dangling symlink is simply an existing name */
    if (exists && S_ISDIR(sb.st_mode)) {
        app_chat_notice(t, "/save: %s is a folder; name a file in it", file);
        return;
    }
    if (exists && !S_ISREG(sb.st_mode) && !S_ISLNK(sb.st_mode)) {
        app_chat_notice(t, "/save: %s is %s, not a regular file; name a file", file,
                        app_file_kind(sb.st_mode));
        return;
    }
    if (exists && !force) {
        app_chat_notice(t, "/save: %s exists; /save! %s replaces it", file, file);
        return;
    }
    char *text = transcript(t, file), tmp[4200] = "";
    if (!text) {
        app_chat_notice(t, "/save: out of memory");
        return;
    }
    if (exists)
        snprintf(tmp, sizeof tmp, "%s.XXXXXX", file);
    int fd = exists ? mkostemp(tmp, O_CLOEXEC | O_NONBLOCK)
                    : open(file, O_WRONLY | O_CREAT | O_EXCL | O_NONBLOCK | O_CLOEXEC, 0644);
    if (fd >= 0 && exists && S_ISREG(sb.st_mode))
        fchmod(fd, sb.st_mode & 07777);  /* the replaced file's permissions, not mkstemp's */
    if (fd < 0) {
        app_chat_notice(t, "/save: cannot write %s: %s", file, strerror(errno));
        free(text);
        return;
    }
    bool ok = write_all(fd, text) && fsync(fd) == 0;
    int err = errno;
    ok = close(fd) == 0 && ok;
    err = ok ? 0 : err ? err : errno;
    if (ok && tmp[0] && rename(tmp, file) != 0)
        ok = false, err = errno;
    if (!ok)
        unlink(tmp[0] ? tmp : file);  /* nothing half-written is left, an old file stays */
    free(text);
    if (ok)
        app_chat_notice(t, "saved the transcript to %s", file);
    else
        app_chat_notice(t, "/save: writing %s failed: %s%s", file, strerror(err),
                        exists ? " (the old file is kept)" : "");
}

/* One row of /stats; the header goes through the same format, so the columns line up. */
#define STATS_ROW "%-4s %-11s %-14s %8s %11s %8s %7s %-13s %-26s %s\n"

/* One pane's figures as text: "-" for whatever was not measured (a pane before its first
 * answer; a served model's prompt speed, which only llama-server reports, as its own: "srv"). */
typedef struct stats_cells {
    char n[12], mode[24], dec[24], pp[24], ttft[24], tok[16], ctx[32], mem[64];
} stats_cells;

static void stats_cells_of(int i, const ui_pane_status *st, stats_cells *c)
{
    char w[16], kv[16], sc[16];
    snprintf(c->n, sizeof c->n, "%d", i + 1);
    snprintf(c->mode, sizeof c->mode, "-");
    snprintf(c->dec, sizeof c->dec, "-");
    snprintf(c->pp, sizeof c->pp, "-");
    snprintf(c->ttft, sizeof c->ttft, "-");
    snprintf(c->tok, sizeof c->tok, "-");
    snprintf(c->ctx, sizeof c->ctx, "-");
    if (st->remote && st->has_kv)
        snprintf(c->mem, sizeof c->mem, "remote, KV %.0f%%", st->kv_usage * 100);
    else if (st->remote)
        snprintf(c->mem, sizeof c->mem, "remote");
    else
        snprintf(c->mem, sizeof c->mem, "%s+%s+%s", app_fmt_bytes(st->mem_weights, w, sizeof w),
                 app_fmt_bytes(st->mem_kv, kv, sizeof kv),
                 app_fmt_bytes(st->mem_scratch, sc, sizeof sc));
    if (st->sched) {  /* measured */
        snprintf(c->mode, sizeof c->mode, "%s%s", st->sched, st->remote ? "+net" : "");
        snprintf(c->tok, sizeof c->tok, "%s%u", st->approx ? "~" : "", st->n_gen);
        snprintf(c->dec, sizeof c->dec, st->tps_avg < 1000 ? "%s%.1f" : "%s%.0f",
                 st->approx ? "~" : "", st->tps_avg);  /* a loopback server's fit the column */
        snprintf(c->ttft, sizeof c->ttft, "%.0f", st->ttft_ms);
        if (st->prompt_tps > 0)
            snprintf(c->pp, sizeof c->pp, "%.1f%s", st->prompt_tps, st->prompt_srv ? " srv" : "");
    }
    if (st->ctx_max)
        snprintf(c->ctx, sizeof c->ctx, "%u/%u", st->ctx_used, st->ctx_max);
}

/* A pane as a block for a narrow box: its name, then "label: value" fields (the table's
 * headings) flowed into width columns, never split across lines. */
static void stats_block(FILE *f, const stats_cells *c, const char *phase, const char *name,
                        int width)
{
    const char *label[] = { "phase", "measured in", "dec t/s", "prompt t/s", "ttft ms",
                            "tokens", "context", "memory" };
    const char *value[] = { phase, c->mode, c->dec, c->pp, c->ttft, c->tok, c->ctx, c->mem };
    fprintf(f, "pane %s: %s\n", c->n, name);
    int col = 0;
    for (size_t k = 0; k < sizeof label / sizeof label[0]; k++) {
        int w = (int)(strlen(label[k]) + 2 + strlen(value[k]));
        if (col && col + 2 + w > width) {
            fputc('\n', f);
            col = 0;
        }
        col += fprintf(f, "  %s: %s", label[k], value[k]);
    }
    fputc('\n', f);
}

/* The /stats text for a box width columns wide inside: the table where it fits, else a block
 * per pane; the same figures either way. Caller frees; NULL when out of memory. */
static char *stats_text(chat_tui *t, int width, bool table)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    if (table)
        fprintf(f, STATS_ROW, "pane", "phase", "measured in", "dec t/s", "prompt t/s", "ttft ms",
                "tokens", "context", "memory", "model");
    for (int i = 0; i < t->n; i++) {
        const ui_pane_status *st = ui_pane_status_of(t->p[i]);
        const char *name = ui_pane_info_of(t->p[i])->name;
        stats_cells c;
        stats_cells_of(i, st, &c);
        if (table)
            fprintf(f, STATS_ROW, c.n, ui_phase_name(st->phase), c.mode, c.dec, c.pp, c.ttft,
                    c.tok, c.ctx, c.mem, name);
        else
            stats_block(f, &c, ui_phase_name(st->phase), name, width);
    }
    fprintf(f, "memory: weights + KV cache + scratch on the backend; remote: the server's.\n"
            "+net: a remote pane's times include the network; ~: counted from chunks;\n"
            "srv: the server's own figure, not measured here; -: not measured (yet).\n"
            "Up, Down, PgUp, PgDn, Home, End scroll.\n"
            "Any other key closes this box.");
    fclose(f);
    return buf;
}

void app_chat_stats_refresh(chat_tui *t, int width)
{
    char *text = stats_text(t, width, true);
    bool fits = true;
    for (const char *l = text; l && fits;) {
        const char *e = strchr(l, '\n');
        size_t len = e ? (size_t)(e - l) : strlen(l);
        fits = ui_text_width(l, len) <= width;
        l = e ? e + 1 : NULL;
    }
    if (text && !fits) {
        free(text);
        text = stats_text(t, width, false);
    }
    if (!text)
        return;  /* out of memory: the box keeps what it showed */
    free(t->overlay);
    t->overlay = text;
}

/* Post a job to the panes the message goes to. */
static void post_targets(chat_tui *t, app_job job, const char *text)
{
    for (int i = 0; i < t->n; i++)
        if (app_chat_targets(t, i) && t->w[i])
            app_worker_post(t->w[i], job, text);
}

static void add_or_swap(chat_tui *t, int i, const char *ref)
{
    char why[600];
    bool remote;
    char *path = app_chat_resolve_local(ref, &remote, why, sizeof why);
    if (!path && !remote) {
        app_chat_notice(t, "%s", why);
        return;
    }
    if (i == t->n && t->n == 1 && !t->w[0])
        i = 0;  /* the "no model" pane makes way */
    app_chat_open_pane(t, i, path, path ? NULL : ref);
    t->focus = i;
    free(path);
}

/* /set KEY VALUE to the panes a message goes to. Sent to every pane, it is also what panes
 * added or swapped in later start with, or a comparison with them would quietly be unequal
 * (other sampling, another length); /set to the focused pane (F2) stays that pane's. */
static void set_all(chat_tui *t, const char *kv)
{
    post_targets(t, APP_JOB_SET, kv);
    if (!t->broadcast)
        return;
    app_chat_set_apply(&t->cfg, kv);
    size_t k = strcspn(kv, " ");
    int i = 0;
    while (i < t->n_sets && !(strncmp(t->sets[i], kv, k) == 0 && t->sets[i][k] == ' '))
        i++;
    if (i == (int)(sizeof t->sets / sizeof t->sets[0]))
        return;  /* not reached: fewer keys than slots */
    snprintf(t->sets[i], sizeof t->sets[i], "%s", kv);
    t->n_sets += i == t->n_sets;
}

/* "N" of /model N and /close N: a pane index, or -1 after a notice. */
static int pane_arg(chat_tui *t, const char *cmd, const char *arg)
{
    int n = atoi(arg);
    if (n < 1 || n > t->n) {
        app_chat_notice(t, "%s: pane number 1 to %d expected", cmd, t->n);
        return -1;
    }
    return n - 1;
}

/* /add, /model and /close; false when cmd is none of them. */
static bool pane_command(chat_tui *t, const char *cmd, const char *arg)
{
    if (!strcmp(cmd, "add")) {
        if (t->n == UI_MAX_PANES)
            app_chat_notice(t, "/add: %d panes at most; /close one first", UI_MAX_PANES);
        else if (*arg)
            add_or_swap(t, t->n, arg);
        else
            app_chat_notice(t, "/add REF (a .gguf file, a model of the store, a reference "
                            "to download: qwen2.5:0.5b, hf.co/..., a URL; or a served model: "
                            "URL#MODEL, @NAME/MODEL)");
    } else if (!strcmp(cmd, "model")) {
        int i = pane_arg(t, "/model", arg);
        const char *ref = arg + strcspn(arg, " ");
        ref += strspn(ref, " ");
        if (i >= 0 && *ref)
            add_or_swap(t, i, ref);
        else if (i >= 0)
            app_chat_notice(t, "/model N REF");
    } else if (!strcmp(cmd, "close")) {
        int i = pane_arg(t, "/close", arg);
        if (i >= 0 && t->n == 1)
            app_chat_notice(t, "/close: the last pane stays (/quit leaves)");
        else if (i >= 0)
            app_chat_close_pane(t, i);
    } else {
        return false;
    }
    return true;
}

/* /regen: the new answer takes the last one's place on screen (and in /save); a pane still
 * answering is left alone, since its last answer is not finished. */
static void regen(chat_tui *t)
{
    for (int i = 0; i < t->n; i++) {
        if (!app_chat_targets(t, i) || !t->w[i])
            continue;
        if (app_worker_busy(t->w[i])) {
            app_chat_notice(t, "/regen: pane %d is still answering (Esc stops it)", i + 1);
            continue;
        }
        size_t last = ui_pane_last_turn(t->p[i], UI_ROLE_MODEL);
        if (last == SIZE_MAX) {
            app_chat_notice(t, "/regen: pane %d has no answer yet", i + 1);
            continue;
        }
        if (app_worker_post(t->w[i], APP_JOB_REGEN, NULL))
            ui_pane_drop_turns(t->p[i], last);
    }
}

void app_chat_command(chat_tui *t, const char *line)
{
    char cmd[32] = "";
    const char *arg = line + 1;
    size_t k = strcspn(arg, " ");
    snprintf(cmd, sizeof cmd, "%.*s", (int)(k < 31 ? k : 31), arg);
    arg += k;
    arg += strspn(arg, " ");
    if (!strcmp(cmd, "help")) {
        free(t->overlay);
        t->overlay = strdup(help_text);
        t->overlay_stats = false;
        t->overlay_top = 0;
    } else if (!strcmp(cmd, "quit") || !strcmp(cmd, "bye")) {
        t->quit = true;
    } else if (!strcmp(cmd, "system")) {
        post_targets(t, APP_JOB_SYSTEM, arg);
    } else if (!strcmp(cmd, "set")) {
        const char *why = app_chat_set_check(arg);
        if (why)
            app_chat_notice(t, "%s", why);
        else
            set_all(t, arg);
    } else if (!strcmp(cmd, "clear")) {
        post_targets(t, APP_JOB_CLEAR, NULL);
        for (int i = 0; i < t->n; i++)
            if (app_chat_targets(t, i) && t->w[i])
                ui_pane_clear(t->p[i]);
    } else if (!strcmp(cmd, "regen")) {
        regen(t);
    } else if (!strcmp(cmd, "save") || !strcmp(cmd, "save!")) {
        if (*arg)
            save(t, arg, cmd[4] == '!');
        else
            app_chat_notice(t, "/save FILE (FILE.json for JSON; /save! FILE replaces a file)");
    } else if (!strcmp(cmd, "stats")) {
        t->overlay_stats = true;
        t->overlay_top = 0;
        app_chat_stats_refresh(t, 1000);  /* laid out again to the screen at each frame */
    } else if (!pane_command(t, cmd, arg)) {
        app_chat_notice(t, "unknown command /%s (F1 or /help lists them)", cmd);
    }
    t->full = t->dirty = true;
}

/* ---- the size view (F4) ---- */

void app_chat_size_view(chat_tui *t, ui_size_view *v)
{
    memset(v, 0, sizeof *v);
    v->n = t->n;
    for (int i = 0; i < t->n; i++) {
        const ui_pane_info *in = ui_pane_info_of(t->p[i]);
        const ui_pane_status *st = ui_pane_status_of(t->p[i]);
        char (*tx)[24] = v->text[i];
        double *val = v->value[i];
        snprintf(v->name[i], sizeof v->name[i], "%d %.50s", i + 1, in->name);
        for (int f = 0; f < UI_SIZE_N; f++)
            snprintf(tx[f], sizeof tx[f], "-");
        if (in->n_params) {
            app_fmt_count(in->n_params, tx[UI_SIZE_PARAMS], sizeof tx[UI_SIZE_PARAMS]);
            val[UI_SIZE_PARAMS] = (double)in->n_params;
        }
        if (in->quant[0])
            snprintf(tx[UI_SIZE_QUANT], sizeof tx[UI_SIZE_QUANT], "%s", in->quant);
        if (in->file_bytes) {
            app_fmt_bytes(in->file_bytes, tx[UI_SIZE_FILE], sizeof tx[UI_SIZE_FILE]);
            val[UI_SIZE_FILE] = (double)in->file_bytes;
        }
        uint64_t mem = st->mem_weights + st->mem_kv + st->mem_scratch;
        if (in->remote)  /* the server's memory is not this machine's: no bar */
            snprintf(tx[UI_SIZE_MEM], sizeof tx[UI_SIZE_MEM], "remote");
        else if (mem) {
            app_fmt_bytes(mem, tx[UI_SIZE_MEM], sizeof tx[UI_SIZE_MEM]);
            val[UI_SIZE_MEM] = (double)mem;
        }
        if (!st->sched)
            continue;  /* nothing measured yet */
        const char *ap = st->approx ? "~" : "";
        if (st->prompt_tps > 0) {
            snprintf(tx[UI_SIZE_PP], sizeof tx[UI_SIZE_PP], "%.1f%s", st->prompt_tps,
                     st->prompt_srv ? " srv" : "");
            val[UI_SIZE_PP] = st->prompt_tps;
        }
        snprintf(tx[UI_SIZE_TG], sizeof tx[UI_SIZE_TG], "%s%.1f", ap, st->tps_avg);
        val[UI_SIZE_TG] = st->tps_avg;
        snprintf(tx[UI_SIZE_MODE], sizeof tx[UI_SIZE_MODE], "%s%s", st->sched,
                 st->remote ? "+net" : "");
        snprintf(tx[UI_SIZE_TTFT], sizeof tx[UI_SIZE_TTFT], "%.0f ms", st->ttft_ms);
        val[UI_SIZE_TTFT] = st->ttft_ms;
    }
}
