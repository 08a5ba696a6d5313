#!/usr/bin/env bash
# The chat TUI used carelessly and attacked, in a real terminal (tmux), two fixture models on the
# CPU: tiny terminals (20x5, 40x10) and a storm of resizes while answering; a huge bracketed
# paste; a prompt full of escape sequences (title, OSC 52, CSI, 8-bit C1) that must neither
# reach the terminal nor break the screen; /save to an existing file (refused; /save! replaces
# it whole), to a folder, to a missing folder, to /dev/full; SIGTERM and SIGHUP while answering
# (the terminal restored, status 128+signal); Ctrl-Z and fg in a job-control shell. Every wait
# is for text that was not on screen before the step. Fails with the screen shown.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.bash" || exit 1
M1="$FIX/models/stories260K.gguf"
M2="$FIX/models/babyllama-930K-F32.gguf"
e2e_tmp abuse
e2e_tmux abuse
alive() { [ -s "$T/pid" ] && kill -0 "$(cat "$T/pid")" 2>/dev/null; }
command -v tmux >/dev/null || { echo "FAIL: tmux is not installed (make deps installs it)"; exit 1; }
for f in "$M1" "$M2"; do [ -f "$f" ] || { echo "FAIL: fixture missing: $f (set SIZEUP_FIXTURES)"; exit 1; }; done
export XDG_STATE_HOME="$T/state"
CHAT="env XDG_STATE_HOME=$T/state $BIN chat $M1 $M2 --backend cpu -c 8192"

# start one session of the TUI whose exit status and terminal state are recorded
start() { # cols rows [extra args]
    tmux kill-session -t "$S" 2>/dev/null
    rm -f "$T/stty.before" "$T/stty.after" "$T/pid"
    tmux new-session -d -s "$S" -x "$1" -y "$2" \
        "stty -a > $T/stty.before; sh -c 'echo \$\$ > $T/pid; exec $CHAT ${3:-}'; echo EXIT-STATUS:\$?; stty -a > $T/stty.after; sleep 60"
}
terminal_sane() { # what
    for _ in $(seq 1 30); do [ -s "$T/stty.after" ] && break; sleep 0.1; done
    # the size may differ (the window was resized); every mode must not
    diff <(sed 's/rows [0-9]*; columns [0-9]*;//' "$T/stty.before") \
         <(sed 's/rows [0-9]*; columns [0-9]*;//' "$T/stty.after") >/dev/null ||
        fail "$1: stty -a changed: $(diff "$T/stty.before" "$T/stty.after")"
    [ "$(tmux display-message -p -t "$S" '#{cursor_flag}')" = 1 ] || fail "$1: the cursor is hidden"
    [ "$(tmux display-message -p -t "$S" '#{alternate_on}')" = 0 ] || fail "$1: still on the alternate screen"
    [ "$(tmux display-message -p -t "$S" '#{mouse_any_flag}')" = 0 ] || fail "$1: mouse reporting left on"
}

# ---- tiny terminals and a resize storm while answering ----
start 20 5
sleep 2
alive || fail "20x5: sizeup did not survive the start"
tmux send-keys -t "$S" "Once upon a time" Enter
sleep 1
alive || fail "20x5: sizeup died answering"
[ "$(screen | LC_ALL=C.UTF-8 wc -L)" -le 20 ] || fail "20x5: lines wider than the terminal"
tmux resize-window -t "$S" -x 40 -y 10
wait_count "^all>" 1 5 || fail "40x10: no input line"
tmux send-keys -t "$S" "/set n_predict -1" Enter
wait_count "set n_predict -1" 1 10 || fail "40x10: /set did not answer"
tmux send-keys -t "$S" "The little dog" Enter
for i in $(seq 1 60); do
    tmux resize-window -t "$S" -x $(( 10 + (i * 37) % 150 )) -y $(( 3 + (i * 13) % 45 ))
    sleep 0.02
done
tmux resize-window -t "$S" -x 100 -y 30
sleep 0.5
alive || fail "the resize storm killed sizeup"
[ "$(screen | wc -l)" -eq 30 ] || fail "the screen did not follow the last resize"
[ "$(screen | LC_ALL=C.UTF-8 wc -L)" -le 100 ] || fail "lines wider than 100 columns after the storm"
tmux send-keys -t "$S" Escape
wait_count "stop: cancelled" 2 5 || fail "Esc did not stop the answers after the storm"

# ---- a huge paste is one message, and the UI stays responsive ----
python3 -c "import sys; sys.stdout.write('word ' * 60000)" > "$T/paste.txt"   # 300 KB
tmux load-buffer -b big "$T/paste.txt"
tmux paste-buffer -p -b big -t "$S"
sleep 1
tmux send-keys -t "$S" Enter
wait_count "prompt tokens do not fit the context" 2 30 || fail "the huge paste was not sent, or no clear error"
wait_count "not kept" 2 5 || fail "the message too long for the context stays in the conversation"
# a pane whose conversation holds the answer cancelled above is told /clear, an empty one a
# shorter message (which depends on whether a token came before Esc): either says what to do
# (the words are matched where the pane's wrapping cannot split them)
wait_count "shorter message|/clear starts" 2 5 && wait_count "n_ctx" 2 1 && wait_count "for a larger" 2 1 ||
    fail "the context-full error does not say what to do (a shorter message or /clear, /set n_ctx)"
alive || fail "the huge paste killed sizeup"
tmux send-keys -t "$S" "/clear" Enter
sleep 0.5

# ---- escape sequences in a prompt: shown, never obeyed ----
tmux select-pane -t "$S" -T "title-before"
evil=$'\033]0;PWNED\a\033]52;c;cHdu\a\033[2J\033[31mRED\302\233H\033P+q\033\\'
tmux send-keys -t "$S" -l "/set n_predict 4"
tmux send-keys -t "$S" Enter
wait_count "set n_predict 4" 2 5 || fail "/set n_predict 4 did not answer"
printf '%s' "say $evil done" > "$T/evil.txt"
tmux load-buffer -b evil "$T/evil.txt"
tmux paste-buffer -p -b evil -t "$S"
wait_count "RED\^\[\[H" 1 5 || fail "the 8-bit CSI in the input line is not shown as ^[["
tmux send-keys -t "$S" Enter
wait_count "\^\[\]0;PWNED" 2 10 || fail "the escape sequence is not shown as ^[ in both panes"
[ "$(tmux display-message -p -t "$S" '#{pane_title}')" = "title-before" ] || fail "the prompt set the terminal title"
wait_count "stop: token limit" 2 10 || fail "the answers to the escape prompt did not finish"
alive || fail "the escape prompt broke sizeup"

# ---- /save: refuse to overwrite, folders, missing folders, a full disk ----
echo "keep me" > "$T/old.md"
tmux send-keys -t "$S" "/save $T/old.md" Enter
wait_count "old.md exists; /save! " 1 5 || fail "/save over an existing file was not refused"
[ "$(cat "$T/old.md")" = "keep me" ] || fail "/save overwrote an existing file"
tmux send-keys -t "$S" "/save! $T/old.md" Enter
wait_count "saved the transcript to .*old.md" 1 5 || fail "/save! did not replace the file"
grep -q '^## Pane 2' "$T/old.md" || fail "/save! did not write the transcript"
ls "$T" | grep -q 'old.md.' && fail "/save! left a temporary file: $(ls "$T")"
mkdir "$T/dir"
tmux send-keys -t "$S" "/save $T/dir" Enter
wait_count "dir is a folder" 1 5 || fail "/save to a folder: no clear message"
tmux send-keys -t "$S" "/save $T/nowhere/x.md" Enter
wait_count "x.md: No such file or directory" 1 5 || fail "/save into a missing folder: no clear message"
# a device or FIFO is refused as the CLI's output paths are; a FIFO nobody reads once froze the
# UI for good in open()
tmux send-keys -t "$S" "/save! /dev/full" Enter
wait_count "/dev/full is a device, not a regular file" 1 5 || fail "/save! /dev/full: not refused"
mkfifo "$T/fifo"
ln -s "$T/fifo" "$T/fifolink"
tmux send-keys -t "$S" "/save! $T/fifo" Enter
wait_count "fifo is a FIFO, not a regular file" 1 5 || fail "/save! FIFO: not refused (the UI blocked?)"
tmux send-keys -t "$S" "/save! $T/fifolink" Enter
wait_count "fifolink is a FIFO, not a regular file" 1 5 || fail "/save! symlink to a FIFO: not refused"
alive || fail "the /save attempts killed sizeup"
# /add names a device as the CLI does, not as a missing file or a bad reference
tmux send-keys -t "$S" "/add /dev/zero" Enter
wait_count "/dev/zero: not a regular file \\(a device\\)" 1 5 || fail "/add /dev/zero: not named a device"
tmux send-keys -t "$S" "/quit" Enter
wait_count "EXIT-STATUS:0" 1 10 || fail "/quit did not exit with status 0"
terminal_sane "/quit"

# ---- a model whose name (general.name) is escape sequences: F6 ($PAGER=cat) and /save ----
# The name is shown in the transcript's headings; neither the pager nor a `cat` of the saved file
# may set the title or write the clipboard. The GGUF is the fixture with general.name rewritten.
python3 - "$M1" "$T/evil.gguf" <<'PY' || fail "could not write the evil GGUF"
import struct, sys
src, dst = sys.argv[1], sys.argv[2]
name = b'\x1b]0;PWNED-TITLE\x07\x1b]52;c;cHdu\x07\xc2\x9b2Jevil'
d = open(src, 'rb').read()
pos = 8
def take(fmt):
    global pos
    v = struct.unpack_from('<' + fmt, d, pos)[0]
    pos += struct.calcsize('<' + fmt)
    return v
SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
def skip(t):
    global pos
    if t == 8:
        n = take('Q')  # read before pos is: `pos += take()` would add to the old pos
        pos += n
    elif t == 9:
        et, n = take('I'), take('Q')
        for _ in range(n):
            skip(et)
    else:
        pos += SIZES[t]
n_t, n_kv = take('Q'), take('Q')
out, align = bytearray(d[:24]), 32
for _ in range(n_kv):   # every key as it is but general.name; the tensor data moves as a whole
    start = pos
    key = d[pos + 8:pos + 8 + struct.unpack_from('<Q', d, pos)[0]]
    pos += 8 + len(key)
    t = take('I')
    vstart = pos
    if key == b'general.alignment':
        align = struct.unpack_from('<I', d, pos)[0]
    skip(t)
    out += d[start:vstart] + struct.pack('<Q', len(name)) + name if key == b'general.name' \
        else d[start:pos]
infos = pos
for _ in range(n_t):
    n = take('Q')
    pos += n
    n = take('I')
    pos += 8 * n + 12
out += d[infos:pos]
out += bytes(-len(out) % align)
open(dst, 'wb').write(out + d[(pos + align - 1) // align * align:])
PY
tmux kill-session -t "$S" 2>/dev/null
tmux new-session -d -s "$S" -x 100 -y 30 \
    "env PAGER=cat XDG_STATE_HOME=$T/state $BIN chat $T/evil.gguf --backend cpu -n 4; sleep 60"
tmux select-pane -t "$S" -T "title-before"
wait_count "completion mode" 1 20 || fail "evil name: the model did not load"
tmux send-keys -t "$S" "Once upon a time" Enter
wait_count "stop: token limit" 1 10 || fail "evil name: no answer"
tmux send-keys -t "$S" F6
sleep 1
tmux send-keys -t "$S" "/save $T/evil.md" Enter
wait_count "saved the transcript to .*evil.md" 1 5 || fail "evil name: /save did not save"
[ "$(tmux display-message -p -t "$S" '#{pane_title}')" = "title-before" ] ||
    fail "F6 (\$PAGER): the model's name set the terminal title"
grep -q 'PWNED-TITLE' "$T/evil.md" || fail "/save: the model's name is missing from the transcript"
LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]\|\xc2[\x80-\x9f]' "$T/evil.md" &&
    fail "/save: control characters from the model's name in the file: $(cat -v "$T/evil.md" | head)"
grep -qF '^[]0;PWNED-TITLE^G' "$T/evil.md" || fail "/save: the name is not in caret notation"
grep -q '^\*\*You:\*\* Once upon a time$' "$T/evil.md" || fail "/save: the transcript text changed"
tmux send-keys -t "$S" "/save $T/evil.json" Enter
wait_count "saved the transcript to .*evil.json" 1 5 || fail "evil name: /save FILE.json did not save"
jq -r '.panes[0].model' "$T/evil.json" > "$T/evil.name" || fail "/save FILE.json: not JSON"
grep -qF '^[]0;PWNED-TITLE^G' "$T/evil.name" || fail "/save FILE.json: the name is not in caret notation"
LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]\|\xc2[\x80-\x9f]' "$T/evil.json" &&
    fail "/save FILE.json: control characters from the model's name in the file"
tmux send-keys -t "$S" "/quit" Enter
sleep 0.5

# ---- the help and /stats boxes at 40x10 and 20x5: they scroll, stay on screen, close ----
start 40 10 "-n 4"
wait_count "completion mode" 1 20 || fail "40x10: the panes did not load"
tmux send-keys -t "$S" F1
wait_count "more below" 1 5 || fail "40x10: the help does not say there is more below"
tmux send-keys -t "$S" End
wait_count "closes this box" 1 5 || fail "40x10: End did not show the help's last line"
[ "$(screen | LC_ALL=C.UTF-8 wc -L)" -le 40 ] || fail "40x10: the help is wider than the terminal"
tmux send-keys -t "$S" Escape
sleep 0.3
tmux send-keys -t "$S" "/stats" Enter
wait_count "pane 1" 1 5 || fail "40x10: /stats did not open"
tmux send-keys -t "$S" End
wait_count "closes this box" 1 5 || fail "40x10: End did not reach the end of /stats"
tmux send-keys -t "$S" Escape
sleep 0.3
tmux resize-window -t "$S" -x 20 -y 5
sleep 0.3
for k in F1 "/stats"; do
    if [ "$k" = F1 ]; then tmux send-keys -t "$S" F1; else tmux send-keys -t "$S" "$k" Enter; fi
    sleep 0.3
    tmux send-keys -t "$S" NPage End Up Home Down
    sleep 0.3
    alive || fail "20x5: the $k box killed sizeup"
    [ "$(screen | LC_ALL=C.UTF-8 wc -L)" -le 20 ] || fail "20x5: the $k box is wider than the terminal"
    [ "$(screen | wc -l)" -eq 5 ] || fail "20x5: the $k box is taller than the terminal"
    tmux send-keys -t "$S" x
    sleep 0.3
    screen | tail -1 | grep -q "x" && fail "20x5: the key that closed the $k box was typed"
done
tmux send-keys -t "$S" "/quit" Enter
wait_count "EXIT-STATUS:0" 1 10 || fail "20x5: /quit did not exit with status 0"
terminal_sane "/quit at 20x5"

# ---- SIGTERM and SIGHUP while answering: the terminal restored, 128 + the signal ----
for sig in TERM HUP; do
    start 100 30 "-n -1"
    wait_count "completion mode" 2 20 || fail "$sig: the panes did not load"
    tmux send-keys -t "$S" "Once upon a time" Enter
    wait_count "generating" 1 10 || fail "$sig: no answer started"
    kill -"$sig" "$(cat "$T/pid")" || fail "$sig: no process to signal"
    want=$(( 128 + $(kill -l "$sig") ))
    wait_count "EXIT-STATUS:$want" 1 10 || fail "SIG$sig did not end sizeup with status $want"
    terminal_sane "SIG$sig"
done

# ---- Ctrl-Z and fg from a job-control shell ----
tmux kill-session -t "$S"
tmux new-session -d -s "$S" -x 100 -y 30 "bash --norc --noprofile -i"
tmux send-keys -t "$S" "PS1='prompt$ '; stty -a > $T/stty.before" Enter
sleep 0.3
tmux send-keys -t "$S" "$CHAT" Enter
wait_count "completion mode" 2 20 || fail "Ctrl-Z: the panes did not load"
tmux send-keys -t "$S" C-z
wait_count "Stopped" 1 5 || fail "Ctrl-Z did not suspend sizeup"
tmux send-keys -t "$S" "stty -a > $T/stty.after" Enter
sleep 0.3
diff "$T/stty.before" "$T/stty.after" >/dev/null || fail "Ctrl-Z: stty -a differs while suspended"
[ "$(tmux display-message -p -t "$S" '#{cursor_flag}')" = 1 ] || fail "Ctrl-Z: the cursor is hidden"
tmux send-keys -t "$S" "clear; fg" Enter
wait_count "completion mode" 2 5 || fail "fg did not redraw the TUI"
tmux send-keys -t "$S" "Once upon a time" Enter
wait_count "stop: " 2 20 || fail "after fg the TUI does not answer"
tmux send-keys -t "$S" "/quit" Enter
wait_count "^prompt\\$" 1 5 || fail "/quit after fg did not return to the shell"
tmux send-keys -t "$S" "stty -a > $T/stty.after" Enter
sleep 0.3
diff "$T/stty.before" "$T/stty.after" >/dev/null || fail "after fg and /quit: stty -a differs"
echo "tui_abuse: passed"
