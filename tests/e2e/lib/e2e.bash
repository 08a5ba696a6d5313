# The pieces every end-to-end script (tests/e2e/*.sh) used to write out for itself: where the
# binary and the fixtures are, a temporary folder, a private home, tests/oaisrv.py on loopback,
# a tmux server of the script's own, and the pass counter. A script sources it first thing:
#
#     . "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.bash" || exit 1
#
# and then asks for the pieces it needs (e2e_tmp, e2e_home, e2e_oaisrv, e2e_tmux, e2e_nginx).
# Each piece registers its own cleanup with e2e_at_exit, so a script never writes a trap: the
# cleanups run at exit, on success, on failure and on a signal, newest first (tmux and servers
# stop before their temporary folder goes). Set KEEP=1 to keep the temporary folder.
#
# It lives below tests/e2e/lib/ so that the Makefile's wildcard (tests/e2e/*.sh) never runs it
# as a test. Nothing here prints unless a check fails; the checks and their messages stay in
# the scripts.

# BIN, FIX: the sizeup binary and the fixtures, absolute, so a script may cd anywhere. The
# defaults are relative to the source tree, from which the scripts run.
BIN=$(realpath -m "${SIZEUP_BIN:-build/sizeup}")
FIX=$(realpath -m "${SIZEUP_FIXTURES:-../shared/fixtures}")
# E2E_ROOT: the source tree (tests/oaisrv.py, downloads/catalog.json), found from this file.
E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)

# ---- exit hooks ----
E2E_EXIT_HOOKS=()
# e2e_at_exit CMD: runs the shell text CMD at exit, before the hooks registered earlier. CMD is
# evaluated then, so quote it to read variables late ('e2e_stop "$PID"') or expand them now.
e2e_at_exit() { E2E_EXIT_HOOKS=("$1" "${E2E_EXIT_HOOKS[@]}"); }
# Every hook runs even when one fails (also under set -e); the script's exit status is kept.
e2e_run_exit_hooks() {
    local hook
    for hook in "${E2E_EXIT_HOOKS[@]}"; do eval "$hook" || true; done
}
trap e2e_run_exit_hooks EXIT
# e2e_stop PID: stops a background process of this shell and reaps it; no PID, nothing to do.
e2e_stop() { [ -n "${1:-}" ] && kill "$1" 2>/dev/null && wait "$1" 2>/dev/null; }

# ---- the pass counter and a plain fail; a script replaces either when its output differs ----
passed=0
ok() { passed=$((passed + 1)); }
fail() { echo "FAIL: $1"; exit 1; }
# e2e_show_outputs [ERR_LINES [OUT_LINES]]: for a fail(): $T/err and $T/out when not empty,
# each line under "  err| " or "  out| ", the first ERR_LINES / OUT_LINES lines (all if none).
e2e_show_outputs() {
    e2e_show_file "$T/err" err "${1:-}"
    e2e_show_file "$T/out" out "${2:-}"
}
e2e_show_file() { # file, label, [lines]
    [ -s "$1" ] || return 0
    if [ -n "${3:-}" ]; then sed "s/^/  $2| /" "$1" | head -n "$3"; else sed "s/^/  $2| /" "$1"; fi
}
# jqe ARGS... FILE: jq -e, false on an empty FILE too (jq -e exits 0 on empty input, jq 1.6)
jqe() { [ -s "${@: -1}" ] && jq -e "$@"; }

# ---- pieces ----
# e2e_tmp NAME: T, a fresh folder /tmp/sizeup-NAME-XXXXXX, removed at exit (unless KEEP is set).
e2e_tmp() {
    T=$(mktemp -d "/tmp/sizeup-$1-XXXXXX") || { echo "FAIL: mktemp -d failed"; exit 1; }
    e2e_at_exit '[ -n "${KEEP:-}" ] || rm -rf "$T"'
}

# e2e_home: HOME and the XDG folders (config, cache, state, data) in fresh folders under $T, so
# nothing of the user's is read and everything sizeup writes stays under $T. After e2e_tmp.
e2e_home() {
    mkdir -p "$T/home" "$T/cfg" "$T/cache" "$T/state" "$T/data"
    export HOME="$T/home" XDG_CONFIG_HOME="$T/cfg" XDG_CACHE_HOME="$T/cache" \
        XDG_STATE_HOME="$T/state" XDG_DATA_HOME="$T/data"
}

# e2e_oaisrv [ARGS...]: starts tests/oaisrv.py on 127.0.0.1 (more options in ARGS) and waits
# up to 10 s for its port: P is the port, SRV_PID the server, stopped at exit. The port file is
# $T/port. Exits the script, failed, when the server does not start. After e2e_tmp.
e2e_oaisrv() {
    python3 "$E2E_ROOT/tests/oaisrv.py" --port-file "$T/port" "$@" &
    SRV_PID=$!
    e2e_at_exit "e2e_stop $SRV_PID"
    for _ in $(seq 1 100); do [ -s "$T/port" ] && break; sleep 0.1; done
    [ -s "$T/port" ] || { echo "FAIL: tests/oaisrv.py did not start"; exit 1; }
    P=$(cat "$T/port")
}

# e2e_nginx PORT: starts nginx (daemon off) on the configuration $T/nginx.conf, which listens on
# 127.0.0.1:PORT, and waits up to 5 s for that port: NGINX_PID is nginx, stopped at exit.
# Returns 1 with NGINX_PID empty when nginx died or never listened (the port may be taken: try
# another); its log is $T/logs/nginx.log. After e2e_tmp.
e2e_nginx() {
    [ -n "${E2E_NGINX_HOOK:-}" ] || { e2e_at_exit 'e2e_stop "$NGINX_PID"'; E2E_NGINX_HOOK=1; }
    mkdir -p "$T/logs"
    /usr/sbin/nginx -e stderr -p "$T" -c "$T/nginx.conf" 2>"$T/logs/nginx.log" &
    NGINX_PID=$!
    for _ in $(seq 1 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        kill -0 "$NGINX_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill "$NGINX_PID" 2>/dev/null
    wait "$NGINX_PID" 2>/dev/null
    NGINX_PID=
    return 1
}

# e2e_tmux NAME: a tmux server of the script's own, socket sizeup-NAME-PID (S, also the name of
# the session the script drives), killed at exit. Another test's server or the user's cannot
# disturb it, and its sessions get this script's environment rather than a running server's.
# Defines:
#   tmux ARGS...               tmux on that server
#   screen                     what session $S shows now
#   count REGEX                how many matches of REGEX the screen shows
#   wait_count REGEX N SECS    until the screen shows N matches of REGEX; 1 if not in SECS
#   wait_for TEXT SECS         until the screen shows the fixed TEXT; 1 if not in SECS
#   fail MESSAGE               FAIL: MESSAGE, the screen, exit 1 (replace it after e2e_tmux
#                              where a script shows more)
e2e_tmux() {
    S=sizeup-$1-$$
    e2e_at_exit 'tmux kill-server 2>/dev/null'
    tmux() { command tmux -L "$S" "$@"; }
    screen() { tmux capture-pane -p -t "$S"; }
    count() { screen | grep -oE -- "$1" | wc -l; }
    wait_count() { # regex, how many, seconds
        for _ in $(seq 1 $(( $3 * 10 ))); do
            [ "$(count "$1")" -ge "$2" ] && return 0
            sleep 0.1
        done
        return 1
    }
    wait_for() { # fixed text, seconds
        for _ in $(seq 1 $(( $2 * 10 ))); do screen | grep -qF -- "$1" && return 0; sleep 0.1; done
        return 1
    }
    fail() { echo "FAIL: $1"; tmux capture-pane -p -t "$S" 2>/dev/null | sed 's/^/  | /'; exit 1; }
}
