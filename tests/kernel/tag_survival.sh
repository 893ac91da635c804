#!/usr/bin/env bash
# On-demand kernel test (NOT run by `make check`: it needs QEMU and a Debian
# kernel, see fixtures-kit/README.md).  Shows that the pool tag
# written by thinmeta into the superblock uuid field survives a real
# dm-thin-pool kernel doing create, snapshot, delete, set_transaction_id and
# a metadata snapshot reserve/release cycle (NAMES.md §1, §7.7).
#
# Usage: tests/kernel/tag_survival.sh [BUILD_DIR]   (default: build)
# Writes its verdict to stdout and to tests/kernel/tag_survival.result
# when TAG_SURVIVAL_RECORD=1.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-build}
BIN=$TOP/$BUILD/bin
KIT=${FIXKIT:-$TOP/fixtures-kit}
# the kit records 1.1.0 outputs too unless told not to; these runs need only their own checks
export TPT1_DIR=${TPT1_DIR:-none}
command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: qemu-system-x86_64 not installed"; exit 77; }
ls /boot/vmlinuz-* >/dev/null 2>&1 || { echo "SKIP: no /boot/vmlinuz-*"; exit 77; }
WORK=$(mktemp -d /tmp/thinmeta-kernel.XXXXXX)
# kept on failure for inspection (KEEP=1 keeps it always)
trap 'rc=$?; if [ $rc = 0 ] && [ "${KEEP:-0}" != 1 ]; then rm -rf "$WORK"; else echo "work dir kept: $WORK" >&2; fi' EXIT

# A private copy of the kit with our scenario added (the shared kit stays untouched).
cp -a "$KIT" "$WORK/kit"
cat > "$WORK/kit/scenarios/tag_survival.sh" <<'SCEN'
# thinmeta pool tag survival: a seeded pool (thins 1 and 7, transaction 7,
# tagged by thinmeta) goes through create, snapshot, delete,
# set_transaction_id, data-device growth and a metadata snapshot cycle.
# @meta_mib 8
# @data_mib 128
pool_create 128 64
thin_act 1 131072
wr 1 4 4 1 65536
msg "create_thin 9"
snap_new 10 1 131072
msg "delete 7"
msg "set_transaction_id 7 8"
msg "reserve_metadata_snap"
msg "release_metadata_snap"
final_status
teardown
SCEN

# The seed: our restore of a small pool, then our tag.
cat > "$WORK/seed.xml" <<'XML'
<superblock uuid="" time="0" transaction="7" flags="0" version="2" data_block_size="128" nr_data_blocks="1024">
  <device dev_id="1" mapped_blocks="4" transaction="0" creation_time="0" snap_time="0">
    <range_mapping origin_begin="0" data_begin="0" length="4" time="0"/>
  </device>
  <device dev_id="7" mapped_blocks="2" transaction="3" creation_time="0" snap_time="0">
    <range_mapping origin_begin="0" data_begin="4" length="2" time="0"/>
  </device>
</superblock>
XML
truncate -s 8M "$WORK/seed.bin"
"$BIN/thin_restore" -i "$WORK/seed.xml" -o "$WORK/seed.bin"
tag=$("$BIN/thin_names" "$WORK/seed.bin" tag)
/usr/sbin/thin_check "$WORK/seed.bin"

SEED_META="$WORK/seed.bin" FIXKIT_WORK="$WORK/kitwork" \
	"$WORK/kit/run-scenario.sh" tag_survival "$WORK/out"
OUT=$WORK/out/tag_survival   # run-scenario.sh writes OUT_DIR/<scenario>/
gzip -dc "$OUT/metadata.bin.gz" > "$WORK/after.bin"

after=$(dd if="$WORK/after.bin" bs=1 skip=16 count=16 status=none)
# superblock: csum 0, flags 4, blocknr 8, uuid 16, magic 32, version 40, time 44, trans_id 48
trans=$(od -An -tu8 -j48 -N8 "$WORK/after.bin" | tr -d ' ')
/usr/sbin/thin_check "$WORK/after.bin"
"$BIN/thin_check" "$WORK/after.bin"
"$BIN/thin_ls" -o DEV,TRANSACTION,CREATE_TIME "$WORK/after.bin" > "$WORK/ls.txt"
fail=0
[ "$after" = "$tag" ] || { echo "FAIL: tag '$tag' became '$after'"; fail=1; }
[ "$trans" = 8 ] || { echo "FAIL: transaction $trans, expected 8"; fail=1; }
grep -qE '^ *9 ' "$WORK/ls.txt" && grep -qE '^ *10 ' "$WORK/ls.txt" && ! grep -qE '^ *7 ' "$WORK/ls.txt" ||
	{ echo "FAIL: devices after the workload:"; cat "$WORK/ls.txt"; fail=1; }
{
	echo "tag_survival: $( [ $fail = 0 ] && echo PASS || echo FAIL )"
	echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "workload: seed = our thin_restore (thins 1, 7; transaction 7) + thin_names tag;"
	echo "  guest: pool_create, write thin 1, create_thin 9, snapshot 10 of 1, delete 7,"
	echo "  set_transaction_id 7 8, reserve_metadata_snap, release_metadata_snap, teardown"
	echo "verified: tag bytes unchanged, transaction 8, devices 1 9 10 present and 7 gone,"
	echo "  0.9.0 thin_check and our thin_check clean on the kernel-written result"
	echo "kernel: $(cat "$OUT/guest-kernel-version.txt" 2>/dev/null || echo '?')"
	echo "tag before: $tag"
	echo "tag after:  $after"
	echo "transaction after: $trans"
	cat "$WORK/ls.txt"
} | tee "$WORK/result"
[ "${TAG_SURVIVAL_RECORD:-0}" = 1 ] && cp "$WORK/result" "$TOP/tests/kernel/tag_survival.result"
exit $fail
