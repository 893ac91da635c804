#!/usr/bin/env bash
# thin_restore of the same XML by thinmeta and tpt 1.1.0 (0.9.0 with
# REF0=1: minutes at 20 M mappings), onto a loop block device (both write it
# O_DIRECT) and into a regular file, runs alternating.  Prints, per output
# kind and tool, the median wall time of the tool alone and of the tool
# followed by `sync` (we fsync before exiting, 1.1.0 does not: on a loop
# device its writes may still sit in the backing file's page cache), the
# CPU time and peak RSS (GNU time), and the speed-up against 1.1.0.
#
#   bench/restore.sh [XML]      default: gen_pool --scale large (20 M mappings)
#
# Environment: WORK=/tmp/bench-restore RUNS=3 SIZE=4G KINDS="loop file"
#   BUILD=build.  Needs root for the loop device.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
BUILD=${BUILD:-$TOP/build}
WORK=${WORK:-/tmp/bench-restore}
RUNS=${RUNS:-3}
SIZE=${SIZE:-4G}
KINDS=${KINDS:-"loop file"}
REF1=${REF1:-$BUILD/ref-1.x/usr/sbin}
mkdir -p "$WORK"
XML=${1:-$WORK/large.xml}
[ -s "$XML" ] || "$BUILD/devbin/gen_pool" --scale large -o "$XML" > /dev/null
"$REF1/thin_restore" -V > /dev/null 2>&1 || { echo "no tpt 1.x in $REF1 (make deps)" >&2; exit 1; }
declare -A TOOL=([ours]=$BUILD/bin/thin_restore [ref1]=$REF1/thin_restore)
ORDER="ours ref1"
if [ "${REF0:-0}" = 1 ]; then TOOL[ref0]=/usr/sbin/thin_restore; ORDER="$ORDER ref0"; fi
LOOP=
trap '[ -n "$LOOP" ] && losetup -d "$LOOP"; rm -f "$WORK/out.img"' EXIT

echo "input: $XML ($(grep -c '_mapping' "$XML") mapping lines), output $SIZE, median of $RUNS"
echo
echo "| output | tool | wall s | wall+sync s | CPU s | peak RSS MiB | vs 1.1.0 (wall+sync) |"
echo "|---|---|---:|---:|---:|---:|---:|"
for kind in $KINDS; do
	rm -f "$WORK/out.img"; truncate -s "$SIZE" "$WORK/out.img"
	out=$WORK/out.img
	if [ "$kind" = loop ]; then
		LOOP=$(losetup --find --show "$WORK/out.img"); out=$LOOP
	fi
	declare -A W=() WS=() C=() M=()
	for ((i = 0; i < RUNS; i++)); do
		for t in $ORDER; do
			# a blank output each time (a restore over old metadata is not the case measured)
			if [ "$kind" = loop ]; then
				blkdiscard "$LOOP" 2> /dev/null || dd if=/dev/zero of="$LOOP" bs=1M count=8 oflag=direct status=none
			else
				rm -f "$out"; truncate -s "$SIZE" "$out"
			fi
			sync
			t0=$(date +%s%N)
			/usr/bin/time -f '%U %S %M' -o "$WORK/t" "${TOOL[$t]}" -q -i "$XML" -o "$out" > /dev/null 2>&1 ||
				echo "  ($t failed on $kind)" >&2
			t1=$(date +%s%N)
			sync
			t2=$(date +%s%N)
			read -r u s m < "$WORK/t"
			W[$t]+="$(secs "$t0" "$t1") "
			WS[$t]+="$(secs "$t0" "$t2") "
			C[$t]+="$(echo "$u + $s" | bc) "
			M[$t]+="$((m / 1024)) "
		done
	done
	ref=$(tr ' ' '\n' <<< "${WS[ref1]}" | med)
	for t in $ORDER; do
		w=$(tr ' ' '\n' <<< "${W[$t]}" | med)
		ws=$(tr ' ' '\n' <<< "${WS[$t]}" | med)
		c=$(tr ' ' '\n' <<< "${C[$t]}" | med)
		m=$(tr ' ' '\n' <<< "${M[$t]}" | med)
		name=$t; [ $t = ours ] && name=thinmeta; [ $t = ref1 ] && name="tpt 1.1.0"; [ $t = ref0 ] && name="tpt 0.9.0"
		echo "| $kind | $name | $w | $ws | $c | $m | $(awk -v r="$ref" -v x="$ws" 'BEGIN { printf "%.1fx", r / x }') |"
	done
	if [ -n "$LOOP" ]; then losetup -d "$LOOP"; LOOP=; fi
	unset W WS C M
done
