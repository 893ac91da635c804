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

# The reference thin-provisioning-tools: 0.9.0 (Debian 12's package, /usr/sbin)
# and 1.1.0 (Debian 13's, fetched by `make deps` into $BUILD/ref-1.x).  A test
# that needs one calls need_ref0 / need_ref1: missing means FAIL, never skip.
REF0=${REF0:-/usr/sbin}
# (make deps fetches into build/ref-1.x; make asan's BUILD=build-asan uses that copy)
REF1=${REF1:-$TOP/build/ref-1.x/usr/sbin}
[ -x "$REF1/thin_check" ] || REF1=$BUILD/ref-1.x/usr/sbin
need_ref0() { "$REF0/thin_check" -V 2>/dev/null | grep -q '^0\.9' || die "thin-provisioning-tools 0.9.0 not found in $REF0 (run make deps)"; }
need_ref1() { "$REF1/thin_check" -V 2>/dev/null | grep -q '^1\.' || die "thin-provisioning-tools 1.x not found in $REF1 (run make deps)"; }

# same_dump_1x IMG [ARGS...]: 1.1.0's thin_dump of IMG (its dialect: no
# flags unless set, <def>/<ref>, no final newline) has the content of ours,
# compared in canonical form (tests/xml_norm.py).
same_dump_1x() {
	local img=$1; shift
	"$REF1/thin_dump" "$@" "$img" > "$WORK/dump1x.xml" 2> "$WORK/dump1x.err" ||
		{ cat "$WORK/dump1x.err"; die "1.1.0 thin_dump $* failed on $img"; }
	python3 "$TOP/tests/xml_norm.py" "$WORK/dump1x.xml" > "$WORK/dump1x.norm" ||
		die "1.1.0's dump of $img does not parse"
	"$BIN/thin_dump" "$@" "$img" > "$WORK/dump0x.xml" || die "our thin_dump $* failed on $img"
	assert_same "$WORK/dump0x.xml" "$WORK/dump1x.norm"
}

# check_clean_refs IMG: 0.9.0's and 1.1.0's thin_check pass IMG
check_clean_refs() {
	"$REF0/thin_check" -q "$1" || die "0.9.0 thin_check rejects $1"
	"$REF1/thin_check" -q "$1" || die "1.1.0 thin_check rejects $1"
}
