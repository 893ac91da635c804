#!/usr/bin/env bash
# thin_repair by thinmeta and tpt 1.1.0 on the same metadata, read from a
# loop block device and written to another (every tool O_DIRECT on both):
#   sound  the superblock intact (the fast path: walk the trees, write them)
#   lostsb block 0 zeroed, --transaction-id/--data-block-size/--nr-data-blocks
#          given (the scan for roots and committed space maps, issue 10)
# Prints, per case and tool, the median wall time (the tool, then `sync`),
# CPU time and peak RSS (GNU time), the speed-up against 1.1.0, and whether
# the repaired metadata dumps like the input (ours' thin_dump of both).
#
#   bench/repair.sh [META.bin]    default: WORK/large.bin, gen_pool --scale large --binary
#
# Environment: WORK=/tmp/bench-repair RUNS=3 CASES="sound lostsb" BUILD=build.
# Needs root (losetup).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
BUILD=${BUILD:-$TOP/build}
WORK=${WORK:-/tmp/bench-repair}
RUNS=${RUNS:-3}
CASES=${CASES:-"sound lostsb"}
REF1=${REF1:-$BUILD/ref-1.x/usr/sbin}
mkdir -p "$WORK"
META=${1:-$WORK/large.bin}
[ -s "$META" ] || "$BUILD/devbin/gen_pool" --scale large --binary -o "$META" > /dev/null
"$REF1/thin_repair" -V > /dev/null 2>&1 || { echo "no tpt 1.x in $REF1 (make deps)" >&2; exit 1; }
declare -A TOOL=([ours]=$BUILD/bin/thin_repair [ref1]=$REF1/thin_repair)

cp --sparse=always "$META" "$WORK/lost.bin"
dd if=/dev/zero of="$WORK/lost.bin" bs=4096 count=1 conv=notrunc status=none
rm -f "$WORK/out.img"; truncate -s "$(stat -c %s "$META")" "$WORK/out.img"
IN_SOUND=$(losetup --find --show --read-only "$META")
IN_LOST=$(losetup --find --show --read-only "$WORK/lost.bin")
OUT=$(losetup --find --show "$WORK/out.img")
trap 'losetup -d "$IN_SOUND" "$IN_LOST" "$OUT"' EXIT

"$BUILD/bin/thin_dump" "$META" > "$WORK/truth.xml"
head1=$(head -1 "$WORK/truth.xml")
field() { sed -n "s/.* $1=\"\\([0-9]*\\)\".*/\\1/p" <<< "$head1"; }
VALUES=(--transaction-id "$(field transaction)" --data-block-size "$(field data_block_size)"
	--nr-data-blocks "$(field nr_data_blocks)")
strip() { sed '1s/ time="[0-9]*"//; 1s/ flags="[0-9]*"//' "$1"; }
strip "$WORK/truth.xml" | md5sum | cut -d' ' -f1 > "$WORK/truth.md5"

echo "input: $META ($(grep -c mapping "$WORK/truth.xml") mapping lines), loop device to loop device, median of $RUNS"
echo
echo "| case | tool | wall+sync s | CPU s | peak RSS MiB | vs 1.1.0 | output dumps like the input |"
echo "|---|---|---:|---:|---:|---:|---|"
for c in $CASES; do
	if [ "$c" = sound ]; then in=$IN_SOUND; extra=(); else in=$IN_LOST; extra=("${VALUES[@]}"); fi
	declare -A W=() C=() M=() OK=()
	for ((i = 0; i < RUNS; i++)); do
		for t in ours ref1; do
			dd if=/dev/zero of="$OUT" bs=1M count=8 oflag=direct status=none
			sync
			t0=$(now_ns)
			rc=0
			/usr/bin/time -f '%U %S %M' -o "$WORK/t" "${TOOL[$t]}" -i "$in" -o "$OUT" "${extra[@]}" \
				> /dev/null 2> "$WORK/err.$t" || rc=$?
			sync
			t1=$(now_ns)
			read -r u s m < <(tail -1 "$WORK/t")
			W[$t]+="$(secs "$t0" "$t1") "
			C[$t]+="$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }') "
			M[$t]+="$((m / 1024)) "
			if [ "$i" = 0 ]; then
				if [ "$rc" != 0 ]; then
					OK[$t]="no: exit $rc: $(head -1 "$WORK/err.$t" | cut -c1-80)"
				elif "$BUILD/bin/thin_dump" "$OUT" > "$WORK/out.xml" 2> /dev/null &&
				     [ "$(strip "$WORK/out.xml" | md5sum | cut -d' ' -f1)" = "$(cat "$WORK/truth.md5")" ]; then
					OK[$t]=yes
				else
					OK[$t]=no
				fi
			fi
		done
	done
	w1=$(tr ' ' '\n' <<< "${W[ref1]}" | med)
	for t in ours ref1; do
		w=$(tr ' ' '\n' <<< "${W[$t]}" | med)
		printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$c" "$t" "$w" \
			"$(tr ' ' '\n' <<< "${C[$t]}" | med)" "$(tr ' ' '\n' <<< "${M[$t]}" | med)" \
			"$(awk -v a="$w1" -v b="$w" 'BEGIN { printf "%.1f×", a / b }')" "${OK[$t]}"
	done
done
