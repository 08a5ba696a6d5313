/* Key decoding and readline's callback interface inside the TUI (see input.h). */
#include "ui/input.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <readline/history.h>
#include <readline/readline.h>

#define QCAP 4096
#define ACAP 64
#define PASTE_END "\033[201~"

typedef struct act {
    ui_action a;
    char *line;
} act;

static struct {
    unsigned char q[QCAP];      /* bytes waiting for readline's getc */
    size_t qhead, qtail;
    act acts[ACAP];
    size_t ahead, atail;
    enum { K_GROUND, K_ESC, K_CSI, K_SS3, K_PASTE } st;
    char seq[40];               /* the escape sequence being read */
    size_t nseq;
    char *paste;
    size_t npaste, cpaste;
    char *history;
    FILE *devnull;
    bool grab_scroll;           /* Up, Down, Home, End are actions (a box is open) */
} I;

static void push_act(ui_action a, char *line)
{
    if (a == UI_ACT_EDITED && I.atail != I.ahead && I.acts[(I.atail - 1) % ACAP].a == a)
        return;  /* one redraw of the line is enough */
    if (I.atail - I.ahead >= ACAP) {  /* a flood of keys: drop the newest */
        free(line);
        return;
    }
    I.acts[I.atail++ % ACAP] = (act){ a, line };
}

ui_action ui_input_next(char **line)
{
    *line = NULL;
    if (I.ahead == I.atail)
        return UI_ACT_NONE;
    act x = I.acts[I.ahead++ % ACAP];
    *line = x.line;
    return x.a;
}

/* ---- readline plumbing ---- */

static int q_getc(FILE *f)
{
    (void)f;
    if (I.qhead == I.qtail)
        return EOF;  /* not reached: readline asks only when the hook said there is input */
    return I.q[I.qhead++ % QCAP];
}

static int q_available(void)
{
    return I.qhead != I.qtail;
}

static void redisplay(void)
{
    push_act(UI_ACT_EDITED, NULL);
}

static void no_prep(int meta)
{
    (void)meta;
}

static void no_deprep(void)
{
}

static void on_line(char *line)
{
    if (!line) {
        push_act(UI_ACT_EOF, NULL);
        return;
    }
    if (*line) {
        add_history(line);
        if (I.history && append_history(1, I.history) != 0)
            write_history(I.history);
    }
    push_act(UI_ACT_LINE, line);
}

static int insert_newline(int count, int key)
{
    (void)key;
    for (int i = 0; i < (count > 0 ? count : 1); i++)
        rl_insert_text("\n");
    return 0;
}

void ui_input_open(const char *history_path)
{
    memset(&I, 0, sizeof I);
    rl_catch_signals = 0;
    rl_catch_sigwinch = 0;
    rl_change_environment = 0;
    rl_prep_term_function = no_prep;
    rl_deprep_term_function = no_deprep;
    rl_getc_function = q_getc;
    rl_input_available_hook = q_available;
    rl_redisplay_function = redisplay;
    I.devnull = fopen("/dev/null", "w");
    if (I.devnull)
        rl_outstream = I.devnull;  /* readline writes nothing to the terminal */
    rl_readline_name = "sizeup";
    rl_variable_bind("bell-style", "none");
    rl_variable_bind("editing-mode", "emacs");
    rl_bind_key('\n', insert_newline);
    rl_bind_keyseq("\\e\\r", insert_newline);
    rl_bind_keyseq("\\e\\n", insert_newline);
    if (history_path) {
        history_write_timestamps = 1;  /* the timestamp lines keep a multi-line entry whole */
        I.history = strdup(history_path);
        read_history(history_path);
    }
    rl_callback_handler_install("> ", on_line);
}

void ui_input_close(void)
{
    rl_callback_handler_remove();
    if (I.history)
        history_truncate_file(I.history, 1000);
    free(I.history);
    free(I.paste);
    char *l;
    while (ui_input_next(&l) != UI_ACT_NONE)
        free(l);
    if (I.devnull)
        fclose(I.devnull);
    rl_outstream = NULL;
    memset(&I, 0, sizeof I);
}

static void to_readline(const char *b, size_t n)
{
    for (size_t i = 0; i < n && I.qtail - I.qhead < QCAP; i++)
        I.q[I.qtail++ % QCAP] = (unsigned char)b[i];
    while (q_available())
        rl_callback_read_char();
}

const char *ui_input_text(size_t *len, size_t *cursor)
{
    const char *s = rl_line_buffer ? rl_line_buffer : "";
    *len = (size_t)rl_end;
    *cursor = (size_t)(rl_point < 0 ? 0 : rl_point);
    return s;
}

void ui_input_set_text(const char *text)
{
    rl_replace_line(text, 0);
    rl_point = rl_end;
    push_act(UI_ACT_EDITED, NULL);
}

const char *ui_input_prompt(void)
{
    return rl_display_prompt ? rl_display_prompt : "";
}

void ui_input_set_prompt(const char *prompt)
{
    rl_set_prompt(prompt);
    push_act(UI_ACT_EDITED, NULL);
}

/* ---- the key decoder ---- */

/* Up, Down, Home and End while a box takes them (CSI and SS3 forms, xterm's and the VT220's
 * Home/End); true when seq was one of them and became an action. */
static bool scroll_key(const char *seq)
{
    static const struct { const char *seq; ui_action a; } keys[] = {
        { "\033[A", UI_ACT_UP }, { "\033OA", UI_ACT_UP },
        { "\033[B", UI_ACT_DOWN }, { "\033OB", UI_ACT_DOWN },
        { "\033[H", UI_ACT_HOME }, { "\033OH", UI_ACT_HOME },
        { "\033[1~", UI_ACT_HOME }, { "\033[7~", UI_ACT_HOME },
        { "\033[F", UI_ACT_END }, { "\033OF", UI_ACT_END },
        { "\033[4~", UI_ACT_END }, { "\033[8~", UI_ACT_END },
    };
    if (!I.grab_scroll)
        return false;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!strcmp(seq, keys[i].seq)) {
            push_act(keys[i].a, NULL);
            return true;
        }
    return false;
}

void ui_input_grab_scroll(bool on)
{
    I.grab_scroll = on;
}

/* A whole CSI sequence (I.seq, from ESC): the TUI's own keys, else readline's (arrows, Home,
 * Delete, ...). */
static void csi_done(void)
{
    static const struct { const char *seq; ui_action a; } keys[] = {
        { "\033[5~", UI_ACT_PAGE_UP }, { "\033[6~", UI_ACT_PAGE_DOWN },
        { "\033[Z", UI_ACT_FOCUS_PREV }, { "\033[11~", UI_ACT_HELP },
        { "\033[12~", UI_ACT_BROADCAST }, { "\033[15~", UI_ACT_ZOOM },
        { "\033[17~", UI_ACT_PAGER }, { "\033[18~", UI_ACT_COPY },
        { "\033[13~", UI_ACT_SCHED }, { "\033[14~", UI_ACT_SIZES },
    };
    I.seq[I.nseq] = 0;
    I.st = K_GROUND;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!strcmp(I.seq, keys[i].seq)) {
            push_act(keys[i].a, NULL);
            return;
        }
    if (scroll_key(I.seq))
        return;
    if (!strcmp(I.seq, "\033[200~")) {
        I.st = K_PASTE;
        I.npaste = 0;
        return;
    }
    if (I.nseq > 3 && I.seq[2] == '<') {  /* SGR mouse: ESC [ < button ; x ; y M|m */
        int button = atoi(I.seq + 3);
        if (I.seq[I.nseq - 1] == 'M' && (button == 64 || button == 65))
            push_act(button == 64 ? UI_ACT_WHEEL_UP : UI_ACT_WHEEL_DOWN, NULL);
        return;  /* clicks are not used */
    }
    to_readline(I.seq, I.nseq);
}

/* The pasted block, CR/CRLF made '\n', goes into the line as text: one message. */
static void paste_done(void)
{
    size_t o = 0;
    for (size_t i = 0; i < I.npaste; i++) {
        char c = I.paste[i];
        if (c == '\r') {
            c = '\n';
            if (i + 1 < I.npaste && I.paste[i + 1] == '\n')
                i++;
        }
        I.paste[o++] = c;
    }
    I.paste[o] = 0;
    rl_insert_text(I.paste);
    push_act(UI_ACT_EDITED, NULL);
    I.st = K_GROUND;
}

static void paste_byte(char c)
{
    if (I.npaste + 2 > I.cpaste) {
        size_t cap = I.cpaste ? I.cpaste * 2 : 4096;
        char *p = realloc(I.paste, cap);
        if (!p)
            return;
        I.paste = p;
        I.cpaste = cap;
    }
    I.paste[I.npaste++] = c;
    size_t k = strlen(PASTE_END);
    if (I.npaste >= k && !memcmp(I.paste + I.npaste - k, PASTE_END, k)) {
        I.npaste -= k;
        paste_done();
    }
}

static void ground_byte(char c)
{
    switch (c) {
    case '\033': I.st = K_ESC; I.seq[0] = c; I.nseq = 1; break;
    case '\t': push_act(UI_ACT_FOCUS_NEXT, NULL); break;
    case 0x03: push_act(UI_ACT_INTERRUPT, NULL); break;
    case 0x1A: push_act(UI_ACT_SUSPEND, NULL); break;
    case 0x0C: push_act(UI_ACT_REDRAW, NULL); break;
    default: to_readline(&c, 1); break;
    }
}

void ui_input_feed(const char *bytes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = bytes[i];
        switch (I.st) {
        case K_GROUND: ground_byte(c); break;
        case K_PASTE: paste_byte(c); break;
        case K_ESC:
            I.seq[I.nseq++] = c;
            if (c == '[')
                I.st = K_CSI;
            else if (c == 'O')
                I.st = K_SS3;
            else {  /* Alt-key: readline's meta bindings (Alt-Enter, Alt-b, ...) */
                I.st = K_GROUND;
                to_readline(I.seq, I.nseq);
            }
            break;
        case K_SS3:
            I.seq[I.nseq++] = c;
            I.st = K_GROUND;
            if (c == 'P')
                push_act(UI_ACT_HELP, NULL);
            else if (c == 'Q')
                push_act(UI_ACT_BROADCAST, NULL);
            else if (c == 'R')
                push_act(UI_ACT_SCHED, NULL);
            else if (c == 'S')
                push_act(UI_ACT_SIZES, NULL);
            else {
                I.seq[I.nseq] = 0;
                if (!scroll_key(I.seq))
                    to_readline(I.seq, I.nseq);
            }
            break;
        case K_CSI:
            I.seq[I.nseq++] = c;
            if ((unsigned char)c >= 0x40 && (unsigned char)c <= 0x7E)
                csi_done();
            else if (I.nseq >= sizeof I.seq - 1)
                I.st = K_GROUND;  /* too long to be a key: dropped */
            break;
        }
    }
}

bool ui_input_esc_pending(void)
{
    return I.st == K_ESC;
}

void ui_input_timeout(void)
{
    if (I.st == K_ESC) {
        I.st = K_GROUND;
        push_act(UI_ACT_STOP, NULL);
    }
}
