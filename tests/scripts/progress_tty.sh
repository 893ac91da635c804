#!/usr/bin/env bash
# Progress line (issue 15): on a terminal (stderr a TTY, no -q) thin_check,
# thin_dump -o FILE, thin_restore, thin_repair and thin_ls draw a progress
# line once a run passes the delay (1 s; THINMETA_PROGRESS_DELAY_MS=0 here so
# that a short run shows it); never when stderr is not a terminal, with -q,
# or for thin_dump to stdout.  Outputs are the same either way.
source "$TOP/tests/lib.sh"
command -v script >/dev/null || die "script(1) (util-linux) not found"
export THINMETA_PROGRESS_DELAY_MS=0
"$DEVBIN/gen_pool" --scale medium --binary -o "$WORK/m.bin" 2>/dev/null || die "gen_pool failed"
"$DEVBIN/gen_pool" --scale small -o "$WORK/s.xml" 2>/dev/null || die "gen_pool failed"

# tty NAME CMD: runs CMD under a pseudo-terminal, its terminal output in $WORK/NAME.tty
tty() {
	local n=$1; shift
	script -qec "$*" /dev/null > "$WORK/$n.tty" 2>&1 < /dev/null || die "$n: failed under script: $*"
}
has_line() { grep -qaF "$2: " "$WORK/$1.tty" && grep -qa "blocks/s" "$WORK/$1.tty" ||
	{ od -c "$WORK/$1.tty" | head -20; die "$1: no progress line on the terminal"; }; }
no_line() { ! grep -qa "blocks/s" "$1" || { od -c "$1" | head; die "$1: progress line where none belongs"; }; }

B=$BIN
# thin_check: line on a tty; none with -q, none when stderr is a file
tty check "$B/thin_check $WORK/m.bin"; has_line check "thin_check: checking metadata"
grep -qa "blocks, .* s left" "$WORK/check.tty" || die "thin_check: no total/time left"
tty checkq "$B/thin_check -q $WORK/m.bin"; no_line "$WORK/checkq.tty"
expect_rc 0 "$B/thin_check" "$WORK/m.bin"; no_line "$WORK/err"; cp "$WORK/out" "$WORK/check.out"
tty check2 "$B/thin_check $WORK/m.bin 2>$WORK/check2.err >$WORK/check2.out"
no_line "$WORK/check2.err"; assert_same "$WORK/check.out" "$WORK/check2.out"

# thin_dump -o FILE: line, same file; to stdout: no line
expect_rc 0 "$B/thin_dump" "$WORK/m.bin"; cp "$WORK/out" "$WORK/dump.ref"
tty dump "$B/thin_dump -o $WORK/d.xml $WORK/m.bin"; has_line dump "thin_dump: dumping"
assert_same "$WORK/dump.ref" "$WORK/d.xml"
tty dumpq "$B/thin_dump -q -o $WORK/dq.xml $WORK/m.bin"; no_line "$WORK/dumpq.tty"
tty dumpout "$B/thin_dump $WORK/m.bin >$WORK/d2.xml"; no_line "$WORK/dumpout.tty"
assert_same "$WORK/dump.ref" "$WORK/d2.xml"

# thin_ls: line on a tty, same table
expect_rc 0 "$B/thin_ls" "$WORK/m.bin"; cp "$WORK/out" "$WORK/ls.ref"; no_line "$WORK/err"
tty ls "$B/thin_ls $WORK/m.bin 2>$WORK/ls.err >$WORK/ls.out"; no_line "$WORK/ls.err"
assert_same "$WORK/ls.ref" "$WORK/ls.out"
tty ls2 "$B/thin_ls $WORK/m.bin >$WORK/ls2.out"; has_line ls2 "thin_ls: reading metadata"
assert_same "$WORK/ls.ref" "$WORK/ls2.out"

# thin_restore and thin_repair: line on a tty; none with -q or off a tty
truncate -s 64M "$WORK/r.bin"
tty restore "$B/thin_restore -i $WORK/s.xml -o $WORK/r.bin"; has_line restore "thin_restore: restoring"
tty restoreq "$B/thin_restore -q -i $WORK/s.xml -o $WORK/r.bin"; no_line "$WORK/restoreq.tty"
expect_rc 0 "$B/thin_restore" -i "$WORK/s.xml" -o "$WORK/r.bin"; no_line "$WORK/err"
truncate -s 0 "$WORK/p.bin"; truncate -s 64M "$WORK/p.bin"
tty repair "$B/thin_repair -i $WORK/m.bin -o $WORK/p.bin"; has_line repair "thin_repair: repairing"
expect_rc 0 "$B/thin_repair" -i "$WORK/m.bin" -o "$WORK/p.bin"; no_line "$WORK/err"
expect_rc 0 "$B/thin_check" "$WORK/p.bin"
echo ok
