# shellcheck shell=bash
# shellcheck disable=SC2034,SC2013 # variables are for the scripts that source us
# SPDX-License-Identifier: MIT
# lib.sh - shared helpers for the evd integration tests (source it, don't run it).
#
# Every test gets its own mktemp runtime directory, exports EVD_RUNTIME_DIR,
# starts its own evd and cleans up everything it started on exit (trap).
# Every command that could block runs under timeout(1), so a hang fails the
# test instead of wedging it.  Binaries come from $EVD and $EVCTL (meson sets
# them); by default the ones in /work/main/build.

: "${EVD:=/work/main/build/daemon/evd}"
: "${EVCTL:=/work/main/build/tools/evctl}"
export EVD EVCTL

TEST_NAME=$(basename "${BASH_SOURCE[1]:-$0}" .sh)
# Deadlines, in seconds.  They only catch hangs: nothing here measures how
# fast anything is, so that the suite passes on a machine whose cores are
# saturated by other work.  T_CALL bounds a single command that is not
# supposed to block; T_WAIT bounds waiting for something that must happen
# soon (a daemon ready, a waiter blocked or released, a process gone).
: "${T_CALL:=60}"
: "${T_WAIT:=60}"

_MAIN_PID=$$
_PIDS=()        # plain background processes (daemons, redis, ...)
_GROUPS=()      # timeout(1) processes: each leads its own process group
_DIRS=()        # runtime directories made by evd_mkdir
_SHM=()         # segment files (/dev/shm/evd-*) to remove at exit
_BGN=0
declare -A _BGFILE=()

_SCRATCH=$(mktemp -d "/tmp/evd-it-${TEST_NAME}-scratch.XXXXXX")
LAST_OUT_F=$_SCRATCH/last.out
LAST_ERR_F=$_SCRATCH/last.err
LAST_RC=0
LAST_OUT=
LAST_ERR=
LAST_CMD=

PY=$(command -v python3 || true)
if [[ -n $PY ]]; then
        PY=$("$PY" -c 'import sys; print(sys.executable)' 2>/dev/null || echo "$PY")
fi
# PY_EVD: a python3 that can load this build's libevd (the Python package's
# tests run through it): a sanitized libevd needs the sanitizers' runtimes
# loaded before anything else, so it is a wrapper that preloads them (and
# leaves Python's own allocations, which it frees at no exit, unreported:
# the last detect_leaks in ASAN_OPTIONS wins).
PY_EVD=$PY
if [[ -n $PY && -n ${EVCTL:-} && $(ldd "$EVCTL" 2>/dev/null) == *libasan* ]]; then
        PY_EVD=$_SCRATCH/python3-sanitized
        printf '#!/bin/sh\nLD_PRELOAD="%s %s" ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 exec "%s" "$@"\n' \
                "$(gcc -print-file-name=libasan.so)" "$(gcc -print-file-name=libubsan.so)" "$PY" >"$PY_EVD"
        chmod +x "$PY_EVD"
fi

# ---- reporting --------------------------------------------------------------

say() { printf '%s: %s\n' "$TEST_NAME" "$*"; }
check() { printf '%s: check: %s\n' "$TEST_NAME" "$*"; }

# fail MSG: print MSG and fail the test (works from subshells too).
fail() {
        printf '%s: FAIL: %s\n' "$TEST_NAME" "$*" >&2
        _bg_errors >&2
        if [[ $BASHPID != "$_MAIN_PID" ]]; then
                : >"$_SCRATCH/failed"
                kill -TERM "$_MAIN_PID" 2>/dev/null
        fi
        exit 1
}

# _bg_errors: background commands that ended with something on stderr
# (often the reason a later check failed).
_bg_errors() {
        local p n
        for p in "${_GROUPS[@]}"; do
                alive "$p" && continue
                n=${_BGFILE[$p]:-}
                [[ -n $n && -s $_SCRATCH/bg.$n.err ]] || continue
                printf '%s: (background command %s ended with stderr: %s)\n' "$TEST_NAME" \
                        "$(cat "$_SCRATCH/bg.$n.cmd")" "$(head -c 300 "$_SCRATCH/bg.$n.err")"
        done
}

skip() {
        printf '%s: SKIP: %s\n' "$TEST_NAME" "$*"
        exit 77
}

# Quote a command line for messages.
_q() {
        local out="" a
        for a in "$@"; do
                if ((${#a} > 80)); then
                        a="${a:0:40}...(${#a} bytes)"
                fi
                out+=" $(printf '%q' "$a")"
        done
        printf '%s' "${out# }"
}

_show_last() {
        printf -- '--- command: %s\n--- exit: %s\n--- stdout:\n%s\n--- stderr:\n%s\n---' \
                "$LAST_CMD" "$LAST_RC" "$(head -c 2000 "$LAST_OUT_F")" \
                "$(head -c 2000 "$LAST_ERR_F")"
}

# ---- cleanup ------------------------------------------------------------------

# State of process PID ("" if gone), e.g. R, S, Z.
_pstate() {
        local s
        s=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
        s=${s##*) }
        printf '%s' "${s%% *}"
}

# alive PID: the process exists and is not a zombie.
alive() {
        local s
        s=$(_pstate "$1")
        [[ -n $s && $s != Z ]]
}

# n_ended PIDS...: how many of these background commands have ended.
n_ended() {
        local p n=0
        for p in "$@"; do
                alive "$p" || n=$((n + 1))
        done
        echo "$n"
}

# Every evd process serving DIR (by argv, environment or evd.pid), one pid
# per line, each once.
daemon_pids_for() {
        local dir=$1 p
        local -A seen=()
        for p in $(pgrep -x evd 2>/dev/null); do
                alive "$p" || continue
                if { tr '\0' '\n' <"/proc/$p/cmdline"; } 2>/dev/null |
                        grep -qxF -e "$dir" -e "--runtime-dir=$dir"; then
                        seen[$p]=1
                elif { tr '\0' '\n' <"/proc/$p/environ"; } 2>/dev/null |
                        grep -qxF -e "EVD_RUNTIME_DIR=$dir"; then
                        seen[$p]=1
                fi
        done
        if [[ -f $dir/evd.pid ]]; then
                p=$(tr -dc '0-9' <"$dir/evd.pid" 2>/dev/null) || true
                if [[ -n $p ]] && alive "$p" && [[ $(cat "/proc/$p/comm" 2>/dev/null) == evd ]]; then
                        seen[$p]=1
                fi
        fi
        ((${#seen[@]} == 0)) || printf '%s\n' "${!seen[@]}"
}

# first_daemon_pid DIR: one evd serving DIR ("" if none).
first_daemon_pid() {
        local p
        p=$(daemon_pids_for "$1")
        printf '%s' "${p%%$'\n'*}"
}

# Remember (for removal at exit) every evd segment process PID has mapped,
# and print them.
note_segment_of() {
        local p=$1 f
        for f in $(grep -o '/dev/shm/evd-[^ ]*' "/proc/$p/maps" 2>/dev/null | sort -u); do
                _SHM+=("$f")
                printf '%s\n' "$f"
        done
}

# _signal_all SIG: send SIG to every process group and process remembered.
_signal_all() {
        local p
        for p in "${_GROUPS[@]}"; do
                kill "-$1" -- "-$p" 2>/dev/null
        done
        for p in "${_PIDS[@]}"; do
                kill "-$1" "$p" 2>/dev/null
        done
}

_kill_all() {
        local p d i
        for d in "${_DIRS[@]}"; do
                for p in $(daemon_pids_for "$d"); do
                        note_segment_of "$p" >/dev/null
                        _PIDS+=("$p")
                done
                # a daemon that names its segment in the log
                if [[ -f $d/evd.log ]]; then
                        for p in $(grep -oE '/evd-[0-9]+-[0-9a-f]{16}' "$d/evd.log" | sort -u); do
                                _SHM+=("/dev/shm$p")
                        done
                fi
        done
        _signal_all TERM
        for ((i = 0; i < 40; i++)); do
                local any=0
                for p in "${_PIDS[@]}" "${_GROUPS[@]}"; do
                        alive "$p" && any=1
                done
                ((any)) || break
                sleep 0.05
        done
        _signal_all KILL
}

_cleanup() {
        local rc=$?
        set +e
        trap - EXIT INT TERM HUP
        trap '' PIPE # a closed stdout must not stop the cleanup
        [[ -e $_SCRATCH/failed ]] && rc=1
        _kill_all
        if ((rc != 0 && rc != 77)); then
                local d
                for d in "${_DIRS[@]}"; do
                        if [[ -s $d/evd.log ]]; then
                                printf '%s: --- %s/evd.log (last 30 lines):\n' "$TEST_NAME" "$d" >&2
                                tail -n 30 "$d/evd.log" >&2
                        fi
                done
        fi
        local f
        for f in "${_SHM[@]}"; do
                [[ $f == /dev/shm/evd-* ]] && rm -f -- "$f"
        done
        rm -rf -- "${_DIRS[@]}" "$_SCRATCH"
        if ((rc == 0)); then
                say "PASS"
        elif ((rc != 77)); then
                say "FAILED (exit $rc)"
        fi
        exit "$rc"
}
trap _cleanup EXIT
trap 'exit 1' INT TERM HUP PIPE

# ---- running commands -----------------------------------------------------------

# run CMD...: run CMD under timeout (T_CALL seconds), stdin /dev/null, keep
# its exit code in LAST_RC and its output in LAST_OUT_F/LAST_ERR_F (and,
# trailing newlines stripped, LAST_OUT/LAST_ERR).  Never fails by itself.
run() {
        LAST_CMD=$(_q "$@")
        LAST_RC=0
        timeout -k 2 "$T_CALL" "$@" >"$LAST_OUT_F" 2>"$LAST_ERR_F" </dev/null || LAST_RC=$?
        LAST_OUT=$(tr -d '\0' <"$LAST_OUT_F")
        LAST_ERR=$(tr -d '\0' <"$LAST_ERR_F")
        return 0
}

# expect_exit CODE CMD...: run CMD; fail unless it exits with CODE.
expect_exit() {
        local want=$1
        shift
        run "$@"
        if [[ $LAST_RC != "$want" ]]; then
                local why=""
                ((LAST_RC == 124)) && why=" (timed out after ${T_CALL}s: hang?)"
                ((LAST_RC > 128 && LAST_RC != 124)) && why=" (killed by signal $((LAST_RC - 128))?)"
                fail "expected exit $want, got $LAST_RC$why
$(_show_last)"
        fi
}

# expect_stderr_match REGEX: the last command's stderr matches REGEX (ERE).
expect_stderr_match() {
        grep -Eq -- "$1" "$LAST_ERR_F" ||
                fail "stderr does not match /$1/
$(_show_last)"
}

# expect_stdout_match REGEX
expect_stdout_match() {
        grep -Eq -- "$1" "$LAST_OUT_F" ||
                fail "stdout does not match /$1/
$(_show_last)"
}

# expect_stdout STRING: stdout is exactly STRING followed by one newline.
expect_stdout() {
        printf '%s\n' "$1" | cmp -s - "$LAST_OUT_F" ||
                fail "stdout is not exactly $(_q "$1")+newline
$(_show_last)"
}

expect_no_stdout() {
        [[ ! -s $LAST_OUT_F ]] || fail "expected no stdout
$(_show_last)"
}

expect_no_stderr() {
        [[ ! -s $LAST_ERR_F ]] || fail "expected no stderr
$(_show_last)"
}

# Number of lines in FILE, counting a final line without newline.
nlines() { awk 'END { print NR }' "$1"; }

# expect_one_error_line: stderr is exactly one line, starting "evctl: ".
expect_one_error_line() {
        local n
        n=$(nlines "$LAST_ERR_F")
        [[ $n == 1 ]] || fail "expected exactly one line on stderr, got $n
$(_show_last)"
        head -n 1 "$LAST_ERR_F" | grep '^evctl: ' >/dev/null ||
                fail "error line does not start with 'evctl: '
$(_show_last)"
}

# expect_error CODE REGEX CMD...: CMD exits CODE with exactly one error line
# "evctl: ..." on stderr that matches REGEX (ERE; "" for any).
expect_error() {
        local code=$1 re=$2
        shift 2
        expect_exit "$code" "$@"
        expect_one_error_line
        [[ -z $re ]] || expect_stderr_match "$re"
}

# wait_until 'CONDITION' [TIMEOUT_S]: poll the shell CONDITION every 50 ms;
# returns 1 (with a note on stderr) if it is not true within TIMEOUT_S
# (fractions allowed; default T_WAIT).  TIMEOUT_S is a deadline for a hang:
# pass a generous one when the condition must become true.
wait_until() {
        local cond=$1 t=${2:-$T_WAIT} end now
        # %.0f, not %d: mawk's %d stops at 2^31 ns, about 2.1 s.
        end=$(($(date +%s%N) + $(awk -v t="$t" 'BEGIN { printf "%.0f", t * 1e9 }')))
        while ! eval "$cond"; do
                now=$(date +%s%N)
                if ((now >= end)); then
                        printf '%s: note: condition not met within %ss: %s\n' "$TEST_NAME" "$t" "$cond" >&2
                        return 1
                fi
                sleep 0.05
        done
}

# Milliseconds since the epoch.
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# ---- background commands ------------------------------------------------------------

# bg_start SECS CMD...: start CMD in the background under timeout SECS; the
# timeout process's pid is left in BG_PID.  Its output goes to
# "$(bg_out PID)" / "$(bg_err PID)".
bg_start() {
        local secs=$1
        shift
        _BGN=$((_BGN + 1))
        local n=$_BGN
        timeout -k 2 "$secs" "$@" >"$_SCRATCH/bg.$n.out" 2>"$_SCRATCH/bg.$n.err" </dev/null &
        BG_PID=$!
        _GROUPS+=("$BG_PID")
        _BGFILE[$BG_PID]=$n
        printf '%s\n' "$(_q "$@")" >"$_SCRATCH/bg.$n.cmd"
}

bg_out() { printf '%s' "$_SCRATCH/bg.${_BGFILE[$1]}.out"; }
bg_err() { printf '%s' "$_SCRATCH/bg.${_BGFILE[$1]}.err"; }

# bg_wait PID: wait for a bg_start'ed command (bounded by its own timeout);
# its exit code goes to BG_RC.
bg_wait() {
        BG_RC=0
        wait "$1" || BG_RC=$?
}

# bg_show PID: describe a background command for failure messages.
bg_show() {
        local n=${_BGFILE[$1]}
        printf -- '--- background command: %s--- exit: %s\n--- stdout:\n%s\n--- stderr:\n%s\n---' \
                "$(cat "$_SCRATCH/bg.$n.cmd")" "${BG_RC:-?}" \
                "$(head -c 2000 "$_SCRATCH/bg.$n.out")" "$(head -c 2000 "$_SCRATCH/bg.$n.err")"
}

# bg_expect PID CODE [EXACT_STDOUT]: wait for PID; it must exit CODE (and,
# when given, print exactly EXACT_STDOUT plus a newline).
bg_expect() {
        local pid=$1 code=$2
        bg_wait "$pid"
        if [[ $BG_RC != "$code" ]]; then
                local why=""
                ((BG_RC == 124)) && why=" (timed out: it hung)"
                fail "background command: expected exit $code, got $BG_RC$why
$(bg_show "$pid")"
        fi
        if (($# > 2)); then
                printf '%s\n' "$3" | cmp -s - "$(bg_out "$pid")" ||
                        fail "background command: stdout is not exactly $(_q "$3")+newline
$(bg_show "$pid")"
        fi
        return 0
}

# bg_child PID: the pid of the command that timeout PID runs.
bg_child() {
        local c=""
        wait_until "c=\$(pgrep -P $1 | head -n 1); [[ -n \$c ]]" "$T_WAIT" || return 1
        printf '%s' "$c"
}

# ---- the daemon ---------------------------------------------------------------------------

# evd_mkdir: make a fresh runtime dir, EVD_DIR, and point evctl at it.
evd_mkdir() {
        EVD_DIR=$(mktemp -d "/tmp/evd-it-${TEST_NAME}.XXXXXX")
        _DIRS+=("$EVD_DIR")
        export EVD_RUNTIME_DIR=$EVD_DIR
        export EVD_DAEMON=$EVD
        unset EVD_NO_AUTOSTART XDG_RUNTIME_DIR
}

# Inode of DIR/evd.sock, or "none".
_sock_ino() { stat -c %i "$1/evd.sock" 2>/dev/null || echo none; }

# evd_start [EVD ARGS...]: start evd on EVD_DIR in the background (log:
# EVD_DIR/evd.log, appended) and wait (T_WAIT) until it is ready: a new
# "ready" line in the log, or a new socket.  Sets EVD_PID and EVD_SEGMENT.
evd_start() {
        local dir=$EVD_DIR ino0 lines0
        ino0=$(_sock_ino "$dir")
        lines0=0
        [[ -f $dir/evd.log ]] && lines0=$(nlines "$dir/evd.log")
        "$EVD" --runtime-dir "$dir" "$@" >>"$dir/evd.log" 2>&1 </dev/null &
        EVD_PID=$!
        _PIDS+=("$EVD_PID")
        local cond="! alive $EVD_PID || awk -v n=$lines0 'NR > n && /(^|[^A-Za-z])ready/ { f = 1 } END { exit !f }' '$dir/evd.log' || { [[ -S '$dir/evd.sock' ]] && [[ \$(_sock_ino '$dir') != '$ino0' ]]; }"
        wait_until "$cond" "$T_WAIT" || fail "evd did not become ready within ${T_WAIT} s; log:
$(tail -n 20 "$dir/evd.log")"
        alive "$EVD_PID" || fail "evd exited at start; log:
$(tail -n 20 "$dir/evd.log")"
        [[ -S $dir/evd.sock ]] || wait_until "[[ -S '$dir/evd.sock' ]]" "$T_WAIT" ||
                fail "evd logged ready but $dir/evd.sock does not exist"
        EVD_SEGMENT=""
        wait_until "EVD_SEGMENT=\$(grep -om1 '/dev/shm/evd-[^ ]*' /proc/$EVD_PID/maps); [[ -n \$EVD_SEGMENT ]]" "$T_WAIT" ||
                say "note: could not find evd's segment in /proc/$EVD_PID/maps"
        [[ -z $EVD_SEGMENT ]] || _SHM+=("$EVD_SEGMENT")
}

# evd_setup [EVD ARGS...]: fresh runtime dir + daemon.
evd_setup() {
        evd_mkdir
        evd_start "$@"
}

# _reap PID SECS: wait for our child PID, at most SECS, then SIGKILL it;
# exit status in REAP_RC (124 if it had to be killed).
_reap() {
        local pid=$1 secs=$2
        if wait_until "! alive $pid" "$secs" 2>/dev/null; then
                REAP_RC=0
                wait "$pid" 2>/dev/null || REAP_RC=$?
        else
                kill -KILL "$pid" 2>/dev/null
                wait "$pid" 2>/dev/null
                REAP_RC=124
        fi
}

# evd_stop: SIGTERM the daemon and wait (T_WAIT) for it; its exit code -> EVD_EXIT.
evd_stop() {
        kill -TERM "$EVD_PID" 2>/dev/null || fail "evd (pid $EVD_PID) is not running"
        _reap "$EVD_PID" "$T_WAIT"
        EVD_EXIT=$REAP_RC
        ((EVD_EXIT != 124)) || fail "evd did not exit within ${T_WAIT} s of SIGTERM"
}

# evd_kill9: SIGKILL the daemon and reap it.
evd_kill9() {
        kill -KILL "$EVD_PID" 2>/dev/null || fail "evd (pid $EVD_PID) is not running"
        _reap "$EVD_PID" "$T_WAIT"
}

# ---- objects --------------------------------------------------------------------------------

# show_field NAME FIELD: one field of `evctl show NAME` ("" on error).
show_field() {
        timeout -k 1 "$T_CALL" "$EVCTL" show "$1" 2>/dev/null </dev/null |
                awk -v f="$2" '{ k = $0; sub(/:.*/, "", k) } k == f { v = $0; sub(/^[^:]*: ?/, "", v); print v; exit }' ||
                true
}

# waiters NAME: the waiter count `evctl show` reports.
waiters() { show_field "$1" waiters; }

need_python() { [[ -n $PY ]] || skip "python3 is needed"; }

need_binaries() {
        [[ -x $EVD ]] || fail "no evd binary at $EVD (set EVD)"
        [[ -x $EVCTL ]] || fail "no evctl binary at $EVCTL (set EVCTL)"
}
need_binaries

# A random alphanumeric string of N bytes.
rand_str() {
        local s
        s=$(tr -dc 'A-Za-z0-9' </dev/urandom 2>/dev/null | head -c "$1") || true
        printf '%s' "$s"
}

# ---- handshakes ------------------------------------------------------------------------------

# in_futex PID: PID (any of its threads) sleeps in a futex wait now, e.g. an
# evctl that has taken its snapshot and waits for a change.  A handshake for
# commands that show no waiter count: poll it with wait_until.
in_futex() {
        local t
        for t in /proc/"$1"/task/*; do
                grep -q futex "$t/wchan" 2>/dev/null && return 0
        done
        return 1
}

# group_with_binaries NAME: a temporary system group NAME (its gid in GID)
# and a directory PBIN with copies of evctl and the libevd it uses that any
# uid can run (the build tree may sit under a 0700 home); both are removed
# at exit, before lib.sh's own cleanup.  For tests that run as other uids.
group_with_binaries() {
        G=$1
        groupadd --system "$G" || fail "groupadd --system $G failed"
        GID=$(getent group "$G" | cut -d: -f3)
        [[ -n $GID ]] || fail "group $G has no gid"
        PBIN=$(mktemp -d "/tmp/evd-it-$TEST_NAME-bin.XXXXXX")
        chmod 0755 "$PBIN"
        cp "$EVCTL" "$PBIN/evctl"
        local lib
        lib=$(ldd "$EVCTL" | awk '$1 == "libevd.so.1" { print $3 }')
        [[ -f $lib ]] || fail "cannot find the libevd.so.1 evctl uses: $(ldd "$EVCTL")"
        cp "$lib" "$PBIN/"
        chmod -R a+rX "$PBIN"
        # Then lib.sh's cleanup, with the test's status; set +e first, or
        # errexit would end the trap at "(exit 1)" and leave daemons running.
        trap '_rc=$?; set +e; groupdel "$G" 2>/dev/null; rm -rf "$PBIN"; (exit $_rc); _cleanup' EXIT
}
