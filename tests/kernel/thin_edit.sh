#!/usr/bin/env bash
# On-demand kernel test (NOT run by `make check`: it needs QEMU and a Debian
# kernel, see fixtures-kit/README.md).  For each case, the same message
# sequence is applied to the same starting metadata twice: by the kernel
# (dmsetup message in a guest, SEED_META) and by thin_edit.  Both results
# must give the same thin_dump (devices, details, mappings, time,
# transaction, flags, nr_data_blocks) and the same thin_dump -m, and the
# same space-map sizes; both check clean with our thin_check, 0.9.0's and
# 1.1.0's.  Then the kernel opens thin_edit's output, activates and reads
# every thin, writes, snapshots, deletes and commits, and the result checks
# clean again; and a needs_check flag set by thin_edit is seen by the kernel.
#
# Usage: tests/kernel/thin_edit.sh [BUILD_DIR]   (default: build)
# THIN_EDIT_RECORD=1 writes the verdict to tests/kernel/thin_edit.result.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-build}
case $BUILD in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
BIN=$BUILD/bin
REF0=${REF0:-/usr/sbin}
REF1=${REF1:-$TOP/build/ref-1.x/usr/sbin}
KIT=${FIXKIT:-$TOP/fixtures-kit}
FIX=$TOP/fixtures/kernel
GEN=${GEN_POOL:-$BUILD/devbin/gen_pool}
command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: qemu-system-x86_64 not installed"; exit 77; }
ls /boot/vmlinuz-* >/dev/null 2>&1 || { echo "SKIP: no /boot/vmlinuz-*"; exit 77; }
"$REF1/thin_check" -V | grep -q '^1\.' || { echo "FAIL: no 1.x reference tools in $REF1"; exit 1; }
WORK=$(mktemp -d /tmp/thinmeta-kernel-edit.XXXXXX)
trap 'rc=$?; if [ $rc = 0 ] && [ "${KEEP:-0}" != 1 ]; then rm -rf "$WORK"; else echo "work dir kept: $WORK" >&2; fi' EXIT
cp -a "$KIT" "$WORK/kit"
export FIXKIT_WORK=$WORK/kitwork
# QEMU under a name of its own: on a shared machine others pkill qemu-system-x86_64
ln -s "$(command -v qemu-system-x86_64)" "$WORK/thin-edit-guest"
sed -i "s|^QEMU=(qemu-system-x86_64 |QEMU=($WORK/thin-edit-guest |" "$WORK/kit/run-scenario.sh"
grep -q "QEMU=($WORK/thin-edit-guest " "$WORK/kit/run-scenario.sh" || { echo "FAIL: cannot rename QEMU in the kit copy"; exit 1; }

fail=0
: > "$WORK/report.txt"
bad() { echo "FAIL: $*" | tee -a "$WORK/report.txt"; fail=1; }
ok() { echo "ok: $*" | tee -a "$WORK/report.txt"; }

sb_field() { od -An -tu8 -j"$2" -N8 "$1" | tr -d ' '; }   # metadata byte-offset
# a checker killed by a signal (others pkill on this machine) is run again
again() { local rc=0 i; for i in 1 2 3 4 5; do rc=0; "$@" || rc=$?; [ $rc -lt 128 ] && return $rc; done; return $rc; }
clean3() { # metadata what
	again "$BIN/thin_check" "$1" > "$WORK/chk.out" 2> "$WORK/chk.err" || { bad "$2: our thin_check"; return; }
	if grep -v '^examining\|^checking\|needs_check flag is set' "$WORK/chk.err" > "$WORK/findings"; then
		bad "$2: our thin_check findings: $(head -3 "$WORK/chk.err" | tr '\n' ' ')"
	fi
	again "$REF0/thin_check" "$1" > /dev/null 2>&1 || bad "$2: 0.9.0 thin_check"
	again "$REF1/thin_check" "$1" > /dev/null 2>&1 || bad "$2: 1.1.0 thin_check"
}

# run_guest NAME SEED META_MIB DATA_MIB SCENARIO-BODY -> $WORK/NAME.bin (the metadata afterwards)
run_guest() {
	local name=$1 seed=$2 meta_mib=$3 data_mib=$4 body=$5
	{
		echo "# thinmeta thin_edit comparison: $name"
		echo "# @meta_mib $meta_mib"
		echo "# @data_mib $data_mib"
		echo "$body"
	} > "$WORK/kit/scenarios/$name.sh"
	# a shared machine: a QEMU killed by someone else's signal is run again (up to 3 times)
	local try
	for try in 1 2 3; do
		if SEED_META="$seed" "$WORK/kit/run-scenario.sh" "$name" "$WORK/out" > "$WORK/$name.run.log" 2>&1; then
			break
		fi
		grep -q 'terminating on signal' "$FIXKIT_WORK/run-$name/console.log" 2>/dev/null && [ $try -lt 3 ] &&
			{ echo "($name: QEMU was killed from outside, run again)" >&2; continue; }
		bad "$name: guest run failed: $(tail -5 "$WORK/$name.run.log" | tr '\n' ' ')"
		return 1
	done
	gzip -dc "$WORK/out/$name/metadata.bin.gz" > "$WORK/$name.bin"
	{ grep -E 'device-mapper|dm-thin|thin' "$WORK/out/$name/guest-dmesg.txt" |
		grep -iE 'error|fail|corrupt|abort' || true; } > "$WORK/$name.dmesg-errors"
	[ ! -s "$WORK/$name.dmesg-errors" ] ||
		bad "$name: kernel complaints: $(head -3 "$WORK/$name.dmesg-errors" | tr '\n' ' ')"
}

# compare CASE SEED META_MIB RELOAD_BLOCKS MESSAGES...: kernel vs thin_edit
compare() {
	local name=$1 seed=$2 meta_mib=$3 reload=$4; shift 4
	local bs nr len body m
	bs=$("$BIN/thin_dump" "$seed" | sed -n 's/.*data_block_size="\([0-9]*\)".*/\1/p')
	nr=$("$BIN/thin_dump" "$seed" | sed -n 's/.*nr_data_blocks="\([0-9]*\)".*/\1/p')
	len=$((nr * bs))
	body="pool_create $bs 64 $len"
	for m in "$@"; do body="$body
msg \"$m\""; done
	if [ "$reload" != 0 ]; then
		body="$body
dmsetup suspend pool
pool_reload $((reload * bs))
dmsetup resume pool"
	fi
	body="$body
final_status
teardown"
	local data_mib=$(( (len > reload * bs ? len : reload * bs) / 2048 + 1 ))
	run_guest "$name" "$seed" "$meta_mib" "$data_mib" "$body" || return 0
	cp "$seed" "$WORK/$name.edit.bin"
	truncate -s "${meta_mib}M" "$WORK/$name.edit.bin"
	local extra=()
	[ "$reload" != 0 ] && extra=(grow_data "$reload")
	# the kernel extends a metadata space map smaller than its device when it opens it
	[ "$(sb_field "$seed" 192)" -lt $((meta_mib * 256)) ] && extra+=(grow_metadata)
	"$BIN/thin_edit" "$WORK/$name.edit.bin" "$@" "${extra[@]}" 2> "$WORK/$name.edit.err" ||
		{ bad "$name: thin_edit: $(cat "$WORK/$name.edit.err")"; return 0; }
	"$BIN/thin_dump" "$WORK/$name.bin" > "$WORK/$name.kernel.xml"
	"$BIN/thin_dump" "$WORK/$name.edit.bin" > "$WORK/$name.edit.xml"
	if cmp -s "$WORK/$name.kernel.xml" "$WORK/$name.edit.xml"; then
		ok "$name: thin_dump of the kernel's result == thin_edit's ($(grep -c '<device' "$WORK/$name.edit.xml") devices)"
	else
		bad "$name: thin_dump differs: $(diff "$WORK/$name.kernel.xml" "$WORK/$name.edit.xml" | head -6 | tr '\n' ' ')"
	fi
	if [ "$(sb_field "$WORK/$name.bin" 56)" != 0 ] || [ "$(sb_field "$WORK/$name.edit.bin" 56)" != 0 ]; then
		"$BIN/thin_dump" -m "$WORK/$name.bin" > "$WORK/$name.kernel-m.xml" 2>&1 || true
		"$BIN/thin_dump" -m "$WORK/$name.edit.bin" > "$WORK/$name.edit-m.xml" 2>&1 || true
		if cmp -s "$WORK/$name.kernel-m.xml" "$WORK/$name.edit-m.xml"; then
			ok "$name: thin_dump -m (metadata snapshot) equal too"
		else
			bad "$name: thin_dump -m differs: $(diff "$WORK/$name.kernel-m.xml" "$WORK/$name.edit-m.xml" | head -4 | tr '\n' ' ')"
		fi
	fi
	for off in 64 192; do   # data and metadata space map nr_blocks
		[ "$(sb_field "$WORK/$name.bin" $off)" = "$(sb_field "$WORK/$name.edit.bin" $off)" ] ||
			bad "$name: space map size at byte $off: kernel $(sb_field "$WORK/$name.bin" $off), thin_edit $(sb_field "$WORK/$name.edit.bin" $off)"
	done
	clean3 "$WORK/$name.bin" "$name (kernel)"
	clean3 "$WORK/$name.edit.bin" "$name (thin_edit)"
	echo "$name: $*${extra[*]:+ + ${extra[*]}}" >> "$WORK/cases.txt"
}

# opens NAME METADATA: the kernel activates thin_edit's output and works on it
opens() {
	local name=$1 meta=$2 bs nr ids first last body
	bs=$("$BIN/thin_dump" "$meta" | sed -n 's/.*data_block_size="\([0-9]*\)".*/\1/p')
	nr=$("$BIN/thin_dump" "$meta" | sed -n 's/.*nr_data_blocks="\([0-9]*\)".*/\1/p')
	trans=$("$BIN/thin_dump" "$meta" | sed -n 's/.*<superblock.* transaction="\([0-9]*\)".*/\1/p')
	ids=$("$BIN/thin_dump" "$meta" | sed -n 's/.*<device dev_id="\([0-9]*\)".*/\1/p' | tr '\n' ' ')
	first=${ids%% *}
	last=$(echo $ids | awk '{print $NF}')
	"$BIN/thin_ls" --no-headers -o DEV,MAPPED_BLOCKS "$meta" |
		awk -v bs="$bs" '{ print $1, $2 * bs }' > "$WORK/$name.expect"
	body="pool_create $bs 64 $((nr * bs))
for id in $ids; do thin_act \$id 4194304; done
checkpoint opened
for id in $ids; do dd if=/dev/mapper/thin\$id of=/dev/null bs=1M count=64 iflag=direct 2>&1 | tail -n 1; done
wr $first 0 8 1 65536
snap_new 7000 $first 4194304
wr 7000 8 4 1 65536
thin_deact $last
msg \"delete $last\"
msg \"set_transaction_id $trans $((trans + 1))\"
final_status
teardown"
	local size
	size=$(( $(stat -c %s "$meta") / 1048576 ))
	run_guest "$name" "$meta" "$size" $(( nr * bs / 2048 + 16 )) "$body" || return 0
	awk '/^### checkpoint opened/ { on = 1; next } /^### / { on = 0 }
	     /^## dmsetup status/ { st = 1; next } /^## / { st = 0 }
	     on && st && $4 == "thin" { sub(":", "", $1); sub("thin", "", $1); print $1, $5 }' \
		"$WORK/out/$name/guest-checkpoints.txt" | sort -n > "$WORK/$name.kernel"
	if cmp -s <(sort -n "$WORK/$name.expect") "$WORK/$name.kernel"; then
		ok "$name: the kernel activated thin_edit's output: every thin's mapped sectors as thin_edit wrote them"
	else
		bad "$name: kernel status differs: $(diff <(sort -n "$WORK/$name.expect") "$WORK/$name.kernel" | head -4 | tr '\n' ' ')"
	fi
	grep -qi 'error' "$WORK/out/$name/guest-scenario.log" &&
		bad "$name: errors in the guest: $(grep -i error "$WORK/out/$name/guest-scenario.log" | head -2 | tr '\n' ' ')"
	clean3 "$WORK/$name.bin" "$name (after the kernel's writes, snapshot, delete)"
	[ "$(sb_field "$WORK/$name.bin" 48)" = $((trans + 1)) ] || bad "$name: transaction id not $((trans + 1))"
	# (into a file first: grep -q closing a pipe early would fail the dump under pipefail)
	"$BIN/thin_dump" "$WORK/$name.bin" > "$WORK/$name.after.xml"
	grep -q '<device dev_id="7000"' "$WORK/$name.after.xml" || bad "$name: snapshot 7000 missing"
	grep -q "<device dev_id=\"$last\"" "$WORK/$name.after.xml" && bad "$name: device $last not deleted"
	echo "$name: opened thin_edit's output of $3" >> "$WORK/cases.txt"
}

seed() { gzip -dc "$FIX/$1/metadata.bin.gz" > "$WORK/seed-$1.bin"; echo "$WORK/seed-$1.bin"; }

# a generated pool with snapshots, restored by us (64 KiB blocks, 8192 of them)
"$GEN" --scale tiny --seed 21 --origins 2 --snapshots 4 --data-block-size 128 \
	--nr-data-blocks 8192 -o "$WORK/gen.xml" > /dev/null
truncate -s 8M "$WORK/seed-gen.bin"
"$BIN/thin_restore" -i "$WORK/gen.xml" -o "$WORK/seed-gen.bin"
gids=($("$BIN/thin_dump" "$WORK/seed-gen.bin" | sed -n 's/.*<device dev_id="\([0-9]*\)".*/\1/p'))
gtrans=$("$BIN/thin_dump" "$WORK/seed-gen.bin" | sed -n 's/.*<superblock.* transaction="\([0-9]*\)".*/\1/p')

compare snapshots "$(seed snapshots)" 8 0 \
	"create_snap 9 0" "delete 1" "create_thin 12" "set_transaction_id 7 8" "create_snap 13 12" "create_snap 14 3"
compare held_root "$(seed held_root)" 8 0 \
	"release_metadata_snap" "create_snap 7 2" "delete 0" "reserve_metadata_snap" "create_thin 8" "delete 1"
compare deleted "$(seed deleted)" 8 0 "delete 4" "create_thin 4" "create_snap 9 4" "delete 6" "set_transaction_id 3 9"
compare generated "$WORK/seed-gen.bin" 8 0 \
	"delete ${gids[0]}" "create_snap 500 ${gids[1]}" "reserve_metadata_snap" "delete ${gids[2]}" \
	"create_snap 501 500" "delete ${gids[3]}" "set_transaction_id $gtrans $((gtrans + 1))"
compare grown "$(seed basic)" 16 8192 "create_snap 2 0" "delete 1"

# the kernel opens what thin_edit wrote
opens opened-snapshots "$WORK/snapshots.edit.bin" "the snapshots case"
opens opened-generated "$WORK/generated.edit.bin" "the generated case"
cp "$WORK/seed-gen.bin" "$WORK/renamed.bin"
"$BIN/thin_edit" "$WORK/renamed.bin" rename "${gids[1]}" 900 create_snap 901 900 delete "${gids[0]}"
clean3 "$WORK/renamed.bin" "rename"
opens opened-renamed "$WORK/renamed.bin" "rename ${gids[1]} 900, create_snap 901 900, delete ${gids[0]} (offline only)"

# a needs_check flag set offline: the kernel sees it
cp "$(seed basic)" "$WORK/nc.bin"
"$BIN/thin_edit" "$WORK/nc.bin" set_needs_check
run_guest needs_check_seen "$WORK/nc.bin" 8 300 "pool_create 128 64 $((4096 * 128))
final_status
teardown" && {
	st=$(cat "$WORK/out/needs_check_seen/dmsetup-status.txt")
	if echo "$st" | grep -q needs_check; then
		ok "needs_check: the kernel reports the flag thin_edit set ($(echo "$st" | grep thin-pool | head -1))"
	else
		bad "needs_check: not in the kernel's status: $st"
	fi
}

{
	echo "thin_edit kernel comparison: $( [ $fail = 0 ] && echo PASS || echo FAIL )"
	echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "kernel: $(cat "$FIXKIT_WORK/kernel-version" 2>/dev/null || echo '?')"
	echo "cases (the same messages, by dmsetup message in the guest and by thin_edit):"
	sed 's/^/  /' "$WORK/cases.txt"
	echo "results:"
	sed 's/^/  /' "$WORK/report.txt"
} | tee "$WORK/result"
[ "${THIN_EDIT_RECORD:-0}" = 1 ] && cp "$WORK/result" "$TOP/tests/kernel/thin_edit.result"
exit $fail
