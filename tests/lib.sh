# Helpers for tests/scripts/*.sh (sourced).  Every helper fails loudly.
set -euo pipefail
: "${TOP:?run through tests/run-tests.sh}"
WORK=$(mktemp -d "$TMPROOT/$(basename "${BASH_SOURCE[1]}" .sh).XXXXXX")

die() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "-- $*"; }

# fixture_copy NAME -> path of a fresh writable copy of the kernel fixture
fixture_copy() {
	local out=$WORK/$1.bin
	gzip -dc "$FIXTURES/$1/metadata.bin.gz" > "$out"
	echo "$out"
}

fixtures() { (cd "$FIXTURES" && for d in */; do [ -f "$d/metadata.bin.gz" ] && echo "${d%/}"; done); }

# expect_rc WANT CMD... : run, capture stdout/stderr in $WORK/out,$WORK/err
expect_rc() {
	local want=$1; shift
	local rc=0
	"$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
	if [ "$rc" != "$want" ]; then
		echo "command: $*"; echo "stdout:"; cat "$WORK/out"; echo "stderr:"; cat "$WORK/err"
		die "exit status $rc, expected $want"
	fi
}

# assert_contains FILE STRING
assert_contains() { grep -qF -- "$2" "$1" || { cat "$1"; die "'$2' not found in $1"; }; }
assert_not_contains() { ! grep -qF -- "$2" "$1" || { cat "$1"; die "'$2' unexpectedly in $1"; }; }
assert_same() { cmp -s "$1" "$2" || { diff -u "$1" "$2" | head -40; die "$1 and $2 differ"; }; }
