#!/usr/bin/env bash
# On-demand kernel test (NOT run by `make check`: it needs QEMU and a Debian
# kernel, see fixtures-kit/README.md).  The strongest check that
# our writer is kernel-compatible: a real dm-thin-pool kernel opens metadata
# written by OUR thin_restore from a generated pool with snapshots
# (build/devbin/gen_pool, tests/tools/gen_pool.c), activates every thin, reports for each the
# mapped and highest sectors the XML implies (so it walked our details and
# mapping trees), reads every thin end to end without an I/O error, then
# writes, snapshots, deletes and commits; afterwards 0.9.0's and our
# thin_check pass on the kernel-written metadata and our thin_dump equals
# 0.9.0's.
#
# Usage: tests/kernel/our_restore.sh [BUILD_DIR]   (default: build)
# OUR_RESTORE_RECORD=1 writes the verdict to tests/kernel/our_restore.result.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-build}
BIN=$TOP/$BUILD/bin
KIT=${FIXKIT:-$TOP/fixtures-kit}
# the kit records 1.1.0 outputs too unless told not to; these runs need only their own checks
export TPT1_DIR=${TPT1_DIR:-none}
GEN=${GEN_POOL:-$TOP/$BUILD/devbin/gen_pool}
SEED=${SEED:-11}
command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: qemu-system-x86_64 not installed"; exit 77; }
ls /boot/vmlinuz-* >/dev/null 2>&1 || { echo "SKIP: no /boot/vmlinuz-*"; exit 77; }
WORK=$(mktemp -d /tmp/thinmeta-kernel.XXXXXX)
trap 'rc=$?; if [ $rc = 0 ] && [ "${KEEP:-0}" != 1 ]; then rm -rf "$WORK"; else echo "work dir kept: $WORK" >&2; fi' EXIT

# The seed: a generated pool (64 KiB blocks, 2048 of them = the 128 MiB data
# disk), restored by us.
"$GEN" --scale tiny --seed "$SEED" --origins 2 --snapshots 3 --data-block-size 128 \
	--nr-data-blocks 2048 -o "$WORK/seed.xml" > /dev/null
truncate -s 8M "$WORK/seed.bin"
"$BIN/thin_restore" -i "$WORK/seed.xml" -o "$WORK/seed.bin"
/usr/sbin/thin_check "$WORK/seed.bin"
"$BIN/thin_check" "$WORK/seed.bin"
/usr/sbin/thin_dump "$WORK/seed.bin" | cmp - "$WORK/seed.xml"

# Expected kernel status per thin: "<dev> <mapped sectors> <highest mapped sector>"
python3 - "$WORK/seed.xml" > "$WORK/expect.txt" <<'PY'
import re, sys
dev = None; hi = {}; mapped = {}; bs = None
for line in open(sys.argv[1]):
    m = re.search(r'data_block_size="(\d+)"', line)
    if m and '<superblock' in line: bs = int(m.group(1))
    m = re.search(r'<device dev_id="(\d+)" mapped_blocks="(\d+)"', line)
    if m: dev = int(m.group(1)); mapped[dev] = int(m.group(2)); hi[dev] = -1; continue
    m = re.search(r'origin_begin="(\d+)" data_begin="\d+" length="(\d+)"', line)
    if m: hi[dev] = max(hi[dev], int(m.group(1)) + int(m.group(2)) - 1); continue
    m = re.search(r'origin_block="(\d+)"', line)
    if m: hi[dev] = max(hi[dev], int(m.group(1)))
for d in sorted(mapped):
    print(d, mapped[d] * bs, (hi[d] + 1) * bs - 1 if hi[d] >= 0 else "-")
PY
ids=$(awk '{print $1}' "$WORK/expect.txt" | tr '\n' ' ')
first=$(echo $ids | awk '{print $1}')
last=$(echo $ids | awk '{print $NF}')
newsnap=$((last + 100))
trans=$(sed -n 's/.*<superblock[^>]* transaction="\([0-9]*\)".*/\1/p' "$WORK/seed.xml")

cp -a "$KIT" "$WORK/kit"
cat > "$WORK/kit/scenarios/our_restore.sh" <<SCEN
# thinmeta: the kernel opens metadata written by our thin_restore (a
# generated pool with snapshots), activates and reads every thin, then
# writes, snapshots, deletes and commits.
# @meta_mib 8
# @data_mib 128
pool_create 128 64
for id in $ids; do
	thin_act \$id 1048576
done
checkpoint restored
for id in $ids; do
	dd if=/dev/mapper/thin\$id of=/dev/null bs=1M iflag=direct 2>&1 | tail -n 1
done
wr $first 0 8 1 65536
snap_new $newsnap $first 1048576
wr $newsnap 8 4 1 65536
thin_deact $last
msg "delete $last"
msg "set_transaction_id $trans $((trans + 1))"
checkpoint after
final_status
teardown
SCEN

SEED_META="$WORK/seed.bin" FIXKIT_WORK="$WORK/kitwork" \
	"$WORK/kit/run-scenario.sh" our_restore "$WORK/out"
OUT=$WORK/out/our_restore
gzip -dc "$OUT/metadata.bin.gz" > "$WORK/after.bin"

fail=0
: > "$WORK/checks.txt"   # FAIL lines, also written to the result
bad() { echo "FAIL: $*" | tee -a "$WORK/checks.txt"; fail=1; }
# the kernel's view of our metadata, before any write
awk '/^### checkpoint restored/ { on = 1; next } /^### / { on = 0 }
     /^## dmsetup status/ { st = 1; next } /^## / { st = 0 }
     on && st && $4 == "thin" { sub(":", "", $1); sub("thin", "", $1); print $1, $5, $6 }' \
	"$OUT/guest-checkpoints.txt" | sort -n > "$WORK/kernel.txt"
cmp -s "$WORK/expect.txt" "$WORK/kernel.txt" ||
	{ bad "kernel status differs from the XML: $(diff "$WORK/expect.txt" "$WORK/kernel.txt" | tr '\n' ' ')"; }
# I/O errors of the reads (dd) and any device-mapper complaint
{ grep -iE 'error' "$OUT/guest-scenario.log" || true
  grep -E 'device-mapper|dm-thin|thin' "$OUT/guest-dmesg.txt" | grep -iE 'error|fail|corrupt|abort' || true
} > "$WORK/guest-errors.txt"
[ ! -s "$WORK/guest-errors.txt" ] || bad "errors in the guest: $(head -n 5 "$WORK/guest-errors.txt" | tr '\n' ' ')"
/usr/sbin/thin_check "$WORK/after.bin" > /dev/null 2>&1 || bad "0.9.0 thin_check"
"$BIN/thin_check" "$WORK/after.bin" > /dev/null 2>&1 || bad "our thin_check"
/usr/sbin/thin_dump "$WORK/after.bin" > "$WORK/ref-after.xml"
"$BIN/thin_dump" "$WORK/after.bin" > "$WORK/our-after.xml"
cmp -s "$WORK/ref-after.xml" "$WORK/our-after.xml" || bad "our dump differs from 0.9.0's"
"$BIN/thin_ls" -o DEV,MAPPED_BLOCKS,EXCLUSIVE_BLOCKS,SHARED_BLOCKS "$WORK/after.bin" > "$WORK/ls.txt"
awk 'NR > 1 {print $1}' "$WORK/ls.txt" | tr '\n' ' ' > "$WORK/devs.txt"
want_devs="$(echo $ids $newsnap | tr ' ' '\n' | grep -vx "$last" | sort -n | tr '\n' ' ')"
[ "$(cat "$WORK/devs.txt")" = "$want_devs" ] || bad "devices '$(cat "$WORK/devs.txt")', want '$want_devs'"
after_trans=$(od -An -tu8 -j48 -N8 "$WORK/after.bin" | tr -d ' ')
[ "$after_trans" = $((trans + 1)) ] || bad "transaction $after_trans, want $((trans + 1))"
{
	echo "our_restore: $( [ $fail = 0 ] && echo PASS || echo FAIL )"
	cat "$WORK/checks.txt"
	echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "kernel: $(cat "$OUT/guest-kernel-version.txt" 2>/dev/null || echo '?')"
	echo "seed: gen_pool --scale tiny --seed $SEED --origins 2 --snapshots 3 (devices $ids),"
	echo "  restored by our thin_restore (0.9.0 dump of it == the XML)"
	echo "verified: the kernel activated the pool and every thin; its status (mapped and"
	echo "  highest mapped sector) equals the XML for every thin; every thin read end to"
	echo "  end (O_DIRECT) without error; after writes to $first, snapshot $newsnap of $first,"
	echo "  writes to $newsnap, delete $last and set_transaction_id $trans $((trans + 1)):"
	echo "  0.9.0 and our thin_check clean, our thin_dump == 0.9.0's, devices as expected"
	echo "kernel status of the restored thins (dev mapped_sectors highest_sector):"
	sed 's/^/  /' "$WORK/kernel.txt"
	echo "after the workload:"
	sed 's/^/  /' "$WORK/ls.txt"
} | tee "$WORK/result"
[ "${OUR_RESTORE_RECORD:-0}" = 1 ] && cp "$WORK/result" "$TOP/tests/kernel/our_restore.result"
exit $fail
