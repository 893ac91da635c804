#!/usr/bin/env bash
# Runs every test script in tests/scripts/*.sh and every e2fsprogs-style
# image case in tests/image/*/ (see tests/image/README).  Each test prints
# its own diagnostics into $LOGDIR/<name>.log.  Ends with the line
# "N passed, N failed" that CI reads.
#
# Environment: BUILD (default build) selects the binaries; T=glob runs a
# subset; THINMETA_SLOW_TESTS=0 skips the slow oracle cases (said loudly);
# TEST_JOBS=N runs N tests at once (default: twice the CPUs: many wait on
# sleeps, kills and fsync); TEST_TIMEOUT=S
# fails a test still running after S seconds (default 1500).
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
export TOP
export BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
export BIN=$BUILD/bin DEVBIN=$BUILD/devbin
export FIXTURES=${FIXTURES:-$TOP/fixtures/kernel}
export LOGDIR=$BUILD/test-logs
export TMPROOT=${TMPROOT:-$(mktemp -d /tmp/thinmeta-tests.XXXXXX)}
mkdir -p "$LOGDIR"
pass=0 fail=0 failed=()
if [ "${THINMETA_SLOW_TESTS:-1}" = 0 ]; then
	echo "*** THINMETA_SLOW_TESTS=0: the slow reference comparisons are trimmed (repair_matrix's"
	echo "*** 0.9.0 column, the larger dump_oracle/restore_compact shapes); every assertion on"
	echo "*** our own tools still runs.  The full run is plain 'make check'."
fi

# Tests run JOBS at a time (default: twice the CPUs, TEST_JOBS=1 for
# one by one); each writes only under its own $WORK and log.  The slowest
# known tests start first so the run ends with the short ones.
JOBS=${TEST_JOBS:-$((2 * $(nproc 2>/dev/null || echo 1)))}
[ "$JOBS" -ge 1 ] 2>/dev/null || JOBS=1
TMO=${TEST_TIMEOUT:-1500}
SLOW_FIRST="repair_matrix adversarial_fast pack_roundtrip repair_lost_sb check_override restore_compact check_damage"

run_one() {  # name script-or-image-dir  (in the background: records rc and seconds)
	local name=$1 what=$2
	local log=$LOGDIR/$name.log
	local t0=$SECONDS rc=0
	if [ -d "$what" ]; then
		timeout -k 10 "$TMO" bash "$TOP/tests/image/run-case.sh" "$what" >"$log" 2>&1 || rc=$?
	else
		timeout -k 10 "$TMO" bash "$what" >"$log" 2>&1 || rc=$?
	fi
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		echo "run-tests: TIMEOUT: still running after ${TMO}s, killed" >> "$log"
	fi
	echo "$rc $((SECONDS - t0))" > "$LOGDIR/$name.result"
}

report_one() {  # name: prints the line for a finished test
	local name=$1 rc secs log=$LOGDIR/$1.log
	read -r rc secs < "$LOGDIR/$name.result"
	rm -f "$LOGDIR/$name.result"
	if [ "$rc" = 0 ]; then
		pass=$((pass + 1)); printf '  ok    %-50s %3ss\n' "$name" "$secs"
		rm -f "$LOGDIR/$name.failed"
	else
		fail=$((fail + 1)); failed+=("$name")
		printf '  FAIL  %-50s (log: %s, %ss)\n' "$name" "$log" "$secs"
		cp "$log" "$LOGDIR/$name.failed"
		tail -n 15 "$log" | sed 's/^/        | /'
	fi
}

if [ ! -d "$FIXTURES" ]; then
	echo "run-tests: fixtures not found at $FIXTURES" >&2
	exit 1
fi

names=() cmds=()
add() {  # name script-or-image-dir
	[ -n "${T:-}" ] && [[ $1 != $T ]] && return
	names+=("$1"); cmds+=("$2")
}
for n in $SLOW_FIRST; do
	[ -e "$TOP/tests/scripts/$n.sh" ] && add "$n" "$TOP/tests/scripts/$n.sh"
done
for s in "$TOP"/tests/scripts/*.sh; do
	[ -e "$s" ] || continue
	n=$(basename "$s" .sh)
	[[ " $SLOW_FIRST " == *" $n "* ]] && continue
	add "$n" "$s"
done
for d in "$TOP"/tests/image/*/; do
	[ -d "$d" ] || continue
	add "image_$(basename "$d")" "$d"
done

declare -A running=()   # pid -> name
reap() {  # waits for one job, reports every finished one
	local pid
	wait -n 2>/dev/null || true
	for pid in "${!running[@]}"; do
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid" 2>/dev/null
			report_one "${running[$pid]}"
			unset "running[$pid]"
		fi
	done
}
for i in "${!names[@]}"; do
	while [ ${#running[@]} -ge "$JOBS" ]; do reap; done
	run_one "${names[$i]}" "${cmds[$i]}" &
	running[$!]=${names[$i]}
done
while [ ${#running[@]} -gt 0 ]; do reap; done

rm -rf "$TMPROOT"
echo
[ ${#failed[@]} -gt 0 ] && echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
