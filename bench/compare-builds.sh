#!/usr/bin/env bash
# Before/after figures for a refactor: two builds of thinmeta (e.g. one of
# an older commit: git worktree add /tmp/base COMMIT && make -C /tmp/base)
# run the same tools on the same generated metadata file, alternating, and
# the median wall time and peak RSS of each are printed with the ratio
# (after / before; within noise is the goal of a move).
#
#   bench/compare-builds.sh OLD_BUILD NEW_BUILD [SCALE]    (SCALE: gen_pool preset, default medium)
#
# Environment: RUNS=5 WORK=/tmp/bench-cmp.  Page cache warm (regular file):
# this compares two of our builds on CPU, not us against a reference.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[ $# -ge 2 ] || { echo "usage: $0 OLD_BUILD NEW_BUILD [SCALE]" >&2; exit 2; }
OLD=$(cd "$1" && pwd) NEW=$(cd "$2" && pwd) SCALE=${3:-medium}
RUNS=${RUNS:-5}
WORK=${WORK:-/tmp/bench-cmp}
mkdir -p "$WORK"
META=$WORK/$SCALE.bin
[ -s "$META" ] || "$NEW/devbin/gen_pool" --scale "$SCALE" --binary -o "$META" > /dev/null
nr_data=$(python3 -c 'import struct,sys; print(struct.unpack_from("<Q", open(sys.argv[1],"rb").read(4096), 64)[0])' "$META")
tenth=$((nr_data / 10))

declare -A CMD=(
	[check]="thin_check -q META"
	[check-skip]="thin_check -q --skip-mappings META"
	[dump]="thin_dump META"
	[ls]="thin_ls -o DEV,MAPPED_BLOCKS,EXCLUSIVE_BLOCKS,SHARED_BLOCKS META"
	[rmap]="thin_rmap --region 0..$tenth META"
	[repair]="thin_repair -i META -o OUT"
)
TOOLS=${TOOLS:-"check check-skip dump ls rmap repair"}
one() {  # build tool -> "seconds rss_kib"
	local c=${CMD[$2]}
	c=${c//META/$META}; c=${c//OUT/$WORK/out.bin}
	rm -f "$WORK/out.bin"; truncate -s "$(stat -c %s "$META")" "$WORK/out.bin"
	# shellcheck disable=SC2086
	local t0 t1
	t0=$(date +%s%N)
	/usr/bin/time -f '%M' -o "$WORK/t" "$1/bin/"$c > /dev/null 2>&1 || echo "  (failed: $1/bin/$c)" >&2
	t1=$(date +%s%N)
	echo "$(secs "$t0" "$t1") $(tail -1 "$WORK/t")"
}
echo "$SCALE: $META, median of $RUNS, alternating; before $OLD, after $NEW"
echo
echo "| tool | before s | after s | after/before | before MiB | after MiB |"
echo "|---|---:|---:|---:|---:|---:|"
for t in $TOOLS; do
	one "$NEW" "$t" > /dev/null   # warm the page cache
	bo= ao= bm= am=
	for ((i = 0; i < RUNS; i++)); do
		read -r s m <<< "$(one "$OLD" "$t")"; bo+="$s "; bm+="$m "
		read -r s m <<< "$(one "$NEW" "$t")"; ao+="$s "; am+="$m "
	done
	b=$(tr ' ' '\n' <<< "$bo" | med); a=$(tr ' ' '\n' <<< "$ao" | med)
	b2=$(tr ' ' '\n' <<< "$bm" | med); a2=$(tr ' ' '\n' <<< "$am" | med)
	echo "| $t | $b | $a | $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }') | $((b2 / 1024)) | $((a2 / 1024)) |"
done
rm -f "$WORK/out.bin"
