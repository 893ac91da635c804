# Step helpers of the LVM suite, sourced by every tests/lvm scenario inside
# the guest (after the fixtures kit's fixture-lib.sh).  A scenario is a list
# of steps:
#
#   step ID "description"
#   run CMD...          # runs CMD, records it, its output and the tool calls
#   ok / nok            # expect exit status 0 / non-zero of the last run
#   out_has TEXT / out_lacks TEXT
#   lvm_ran TOOL [RC]   # LVM itself ran our (the selected) TOOL in the last run
#   lvm_ran_not TOOL
#   fail REASON / note TEXT
#   endstep             # appends "ID<TAB>PASS|FAIL<TAB>description<TAB>note" to steps.txt
#
# /results/transcript.txt keeps every command with its output (what an
# admin sees) and the tool calls it caused; /results/tool-calls.log is
# written by the wrappers (guest/wrapper.sh).
export LVM_SUPPRESS_FD_WARNINGS=1
# the wrappers first: "thin_dump" in a scenario is the selected implementation, logged
export PATH=/opt/wrap:$PATH
IMPL=$(cat /etc/thin-impl)
VG=vg
CH=65536                  # pool chunk size of every pool in the suite (64 KiB)
R=/results
T=$R/transcript.txt
STEPS=$R/steps.txt
CALLS=$R/tool-calls.log
MF=$R/manifest
mkdir -p $MF
: > $CALLS
: > $STEPS

# the transcript also goes to the console (the host keeps it in console.log,
# which shows where a guest that never finished was)
say() { printf '%s\n' "$*" >> $T; [ "${LVM_CONSOLE:-1}" = 0 ] || printf '%s\n' "$*" > /dev/console 2> /dev/null; }

ncalls() { wc -l < $CALLS; }

# run CMD...: run it; RC = exit status, /tmp/run.out = stdout+stderr,
# /tmp/run.calls = the wrapper lines of the tool calls it caused
run() {
	local m
	m=$(ncalls)
	say "# $(showargs "$@")"
	"$@" > /tmp/run.out 2>&1
	RC=$?
	tail -n +$((m + 1)) $CALLS > /tmp/run.calls
	{ sed 's/^/    /' /tmp/run.out; sed 's/^/    >> /' /tmp/run.calls; } > /tmp/run.show
	cat /tmp/run.show >> $T
	[ "${LVM_CONSOLE:-1}" = 0 ] || cat /tmp/run.show > /dev/console 2> /dev/null
	[ $RC = 0 ] || say "    (exit status $RC)"
	if [ "${ALLOW_SKIP:-0}" != 1 ] && grep -q "please install recommended missing binary" /tmp/run.out; then
		fail "LVM skipped a tool as missing: $(grep -m1 'missing binary' /tmp/run.out | sed 's/^ *//')"
	fi
	return $RC
}

# showargs ARG...: the arguments as a shell would need them typed
showargs() {
	local a out=
	for a in "$@"; do
		case "$a" in
		'' | *[!A-Za-z0-9_./:=+,@%-]*) a="'$a'" ;;
		esac
		out="${out:+$out }$a"
	done
	printf '%s' "$out"
}

# runc CMD ARG...: run with --config "$CONF" after CMD when CONF is set
runc() {
	local c=$1
	shift
	if [ -n "${CONF:-}" ]; then run "$c" --config "$CONF" "$@"; else run "$c" "$@"; fi
}

step() {
	SID=$1
	SDESC=$2
	SFAIL=
	SNOTE=
	SMARK=$(ncalls)
	say ""
	say "## step $SID: $SDESC"
	echo "lvm-suite: $(cut -d' ' -f1 /proc/uptime)s step $SID" > /dev/console 2> /dev/null
}

fail() {
	[ -n "$SFAIL" ] || SFAIL=$*
	say "    FAIL: $*"
}

note() { SNOTE="${SNOTE:+$SNOTE; }$*"; }

endstep() {
	local r=PASS
	[ -z "$SFAIL" ] || r=FAIL
	printf '%s\t%s\t%s\t%s\n' "$SID" "$r" "$SDESC" "${SFAIL:-$SNOTE}" | tr -d '\r' >> $STEPS
	say "    => $r${SFAIL:+ ($SFAIL)}${SNOTE:+ [$SNOTE]}"
}

passed() { grep -q "^$1	PASS	" $STEPS; }

# need ID...: fail the current step unless every step ID passed
need() {
	local s
	for s in "$@"; do
		passed "$s" || { fail "not reached: step $s failed"; return 1; }
	done
}

firstline() { head -1 /tmp/run.out | sed 's/^ *//' | cut -c1-150; }
ok() { [ "$RC" = 0 ] || fail "exit status $RC: $(grep -v '^ *WARNING' /tmp/run.out | head -1 | sed 's/^ *//' | cut -c1-150)"; }
nok() { [ "$RC" != 0 ] || fail "exit status 0, expected a failure"; }
out_has() { grep -qF -- "$1" /tmp/run.out || fail "output lacks \"$1\""; }
out_lacks() { ! grep -qF -- "$1" /tmp/run.out || fail "output has \"$1\""; }

# lvm_ran TOOL [RC]: the last run made LVM itself run TOOL of the selected
# implementation (with exit status RC)
lvm_ran() {
	local l
	l=$(grep " tool=$1 impl=$IMPL " /tmp/run.calls | grep ' caller=lvm ' | tail -1)
	if [ -z "$l" ]; then
		fail "LVM did not run $IMPL $1"
		return 1
	fi
	if [ -n "${2:-}" ] && ! echo "$l" | grep -q " rc=$2 "; then
		fail "LVM ran $1 but it exited $(echo "$l" | sed 's/.* rc=\([0-9]*\) .*/\1/'), expected $2"
		return 1
	fi
	return 0
}
lvm_ran_not() { ! grep -q " tool=$1 " /tmp/run.calls || fail "LVM ran $1"; }
# called TOOL: how often the last run called TOOL (any caller)
called() { grep -c " tool=$1 " /tmp/run.calls; }
# lastcall TOOL: the wrapper line of the last call of TOOL in the last run
lastcall() { grep " tool=$1 " /tmp/run.calls | tail -1; }
# callerr N: stderr of call N
callnum() { echo "$1" | sed 's/^call=\([0-9]*\) .*/\1/'; }

dev() { echo "/dev/mapper/$VG-$1"; }
lv_active() { dmsetup info "$VG-$1" > /dev/null 2>&1; }
# pool_active POOL: some thin-pool target of POOL is loaded
pool_active() { dmsetup table 2>/dev/null | grep -q "^$VG-$1\(-tpool\)\?: .* thin-pool "; }
# any dm device of POOL (pool, tpool, tdata, tmeta)
pool_devs() { dmsetup ls 2>/dev/null | cut -f1 | grep "^$VG-$1\(-tpool\|_tdata\|_tmeta\)\?\b" | tr '\n' ' '; }
thin_id() { lvs --noheadings -o thin_id "$VG/$1" 2>/dev/null | tr -d ' '; }
transaction_id() { lvs --noheadings -o transaction_id "$VG/$1" 2>/dev/null | tr -d ' '; }
# pool kernel status field (see dm-thin): e.g. pool_status POOL 8 = ro|rw|out_of_data_space
pool_status() { dmsetup status "$VG-$1-tpool" 2>/dev/null || dmsetup status "$VG-$1"; }

# wrl LV FIRST COUNT STEP TAG: write COUNT 4 KiB patterns at chunks FIRST,
# FIRST+STEP, ... (O_DIRECT), flush (dm-thin commits), record in the
# manifest only when both succeeded
wrl() {
	patwrite "$(dev "$1")" $CH 4096 "$2" "$3" "$4" "$5" direct >> $T 2>&1 &&
		patcheck -s "$(dev "$1")" >> $T 2>&1 &&
		echo "$2 $3 $4 4096 $5" >> "$MF/$1"
}
# snapmf ORIGIN SNAP: a snapshot starts with its origin's content
snapmf() { cp "$MF/$1" "$MF/$2" 2>/dev/null || : > "$MF/$2"; }
# verify LV: its data equals its manifest (VOUT = patcheck's output)
verify() {
	[ -f "$MF/$1" ] || : > "$MF/$1"
	VOUT=$(patcheck -w "$(dev "$1")" $CH "$MF/$1" 2>&1)
	local rc=$?
	say "    verify $1: $(echo "$VOUT" | grep -v '^written' | tr '\n' ' ')"
	return $rc
}
# verify_all LV...: one step-failure per LV that does not verify
verify_all() {
	local lv
	for lv in "$@"; do
		verify "$lv" || fail "$lv: $(echo "$VOUT" | grep -v '^written' | head -1 | cut -c1-120)"
	done
}

# meta_get POOL: with POOL inactive, copy its metadata LV to /tmp/POOL.meta
# (through LVM's read-only component activation) for thin_damage, and keep
# its table for meta_put
meta_get() {
	lvchange -ay -y "$VG/$1_tmeta" >> $T 2>&1 || return 1
	dmsetup table "$VG-$1_tmeta" > "/tmp/$1.table"
	dd if="/dev/mapper/$VG-$1_tmeta" of="/tmp/$1.meta" bs=1M 2>> $T
	local rc=$?
	lvchange -an "$VG/$1_tmeta" >> $T 2>&1 || return 1
	[ $rc = 0 ] && [ -s "/tmp/$1.table" ]
}
# meta_put POOL: write /tmp/POOL.meta back over POOL's metadata LV (a
# read-write dm device with the same table), flushed, caches dropped
meta_put() {
	dmsetup create "dmg$1" --table "$(cat "/tmp/$1.table")" || return 1
	dd if="/tmp/$1.meta" of="/dev/mapper/dmg$1" bs=1M conv=fsync 2>> $T
	local rc=$?
	dmsetup remove "dmg$1" || rc=1
	sync
	echo 3 > /proc/sys/vm/drop_caches
	return $rc
}
# meta_get_live POOL: with POOL active, map its metadata LV read-write as
# /dev/mapper/dmgPOOL (same table) and copy it to /tmp/POOL.meta
meta_get_live() {
	dmsetup table "$VG-$1_tmeta" > "/tmp/$1.table" && [ -s "/tmp/$1.table" ] || return 1
	dmsetup create "dmg$1" --table "$(cat "/tmp/$1.table")" || return 1
	dd if="/dev/mapper/dmg$1" of="/tmp/$1.meta" bs=1M 2>> $T
}
# sb_flags DEV: the flags field of the superblock at DEV (1 = needs_check)
sb_flags() { dd if="$1" bs=4096 count=1 2> /dev/null | od -An -tu4 -j4 -N4 | tr -d ' '; }

# deact_pool POOL LV...: deactivate the thin LVs, then the pool itself (the
# order in which LVM 2.03.16 runs thin_check on deactivation)
deact_pool() {
	local p=$1
	shift
	[ $# = 0 ] || lvchange -an $(for l in "$@"; do echo "$VG/$l"; done) || return 1
	lvchange -an "$VG/$p"
}

lvm_finish() {
	{
		echo "kernel=$(uname -r)"
		cat /etc/thin-versions
		echo "impl=$IMPL"
	} > $R/env.txt
}

# setup_vg ID [vgcreate options]: pvcreate both disks and vgcreate $VG, as one step
setup_vg() {
	local id=$1
	shift
	step "$id" "pvcreate /dev/vda /dev/vdb; vgcreate${*:+ $*} $VG"
	run pvcreate /dev/vda /dev/vdb; ok
	run vgcreate "$@" $VG /dev/vda /dev/vdb; ok
	endstep
}

# mkpool POOL DATA_SIZE META_SIZE [lvcreate options]: a thin pool with
# 64 KiB chunks; fails the step unless LVM reports that chunk size
mkpool() {
	local p=$1 d=$2 m=$3
	shift 3
	run lvcreate --type thin-pool -L "$d" --chunksize 64k --poolmetadatasize "$m" "$@" -n "$p" $VG; ok
	[ "$(lvs --noheadings --units k -o chunk_size $VG/$p | tr -d ' ')" = 64.00k ] || fail "chunk size of $p is not 64 KiB"
}

# mkthin POOL LV SIZE / mksnap ORIGIN LV: thin LV / thin snapshot (activated, -kn)
mkthin() { run lvcreate -V "$3" -T "$VG/$1" -n "$2"; ok; : > "$MF/$2"; }
mksnap() { run lvcreate -s -kn "$VG/$1" -n "$2"; ok; snapmf "$1" "$2"; }

# wr_step LV FIRST COUNT STEP TAG: wrl, failing the step if it fails
wr_step() { wrl "$@" || fail "writing $5 to $1 failed"; }

# expect_deactivated POOL: no device of POOL is left
expect_deactivated() {
	local d
	d=$(pool_devs "$1")
	[ -z "$d" ] || fail "still active: $d"
}

# check_note [run]: a note saying whether LVM ran thin_check during this
# step (with "run": during the last run only), how often, and its last
# exit status
check_note() {
	local l n
	if [ "${1:-}" = run ]; then cp /tmp/run.calls /tmp/note.calls; else tail -n +$((SMARK + 1)) $CALLS > /tmp/note.calls; fi
	n=$(grep -c ' tool=thin_check .* caller=lvm ' /tmp/note.calls)
	l=$(grep ' tool=thin_check .* caller=lvm ' /tmp/note.calls | tail -1)
	if [ -n "$l" ]; then
		note "thin_check ran (${n}x, last exit $(echo "$l" | sed 's/.* rc=\([0-9]*\) .*/\1/'))"
	else
		note "no thin_check"
	fi
}

# check_argv: LVM's last thin_check call had exactly LVM's default options
# and the pool's _tmeta device
check_argv() {
	lastcall thin_check | grep -qF "argv='-q' '--clear-needs-check-flag' '/dev/mapper/$VG-$1_tmeta' " ||
		fail "unexpected thin_check argv: $(lastcall thin_check | sed 's/.*argv=//')"
}
