#!/usr/bin/env bash
# Block-device benchmark (issue 15): the metadata on a loop device, every
# tool opening it O_DIRECT (ours, 1.1.0 and 0.9.0 all do on block devices),
# warm (page cache irrelevant under O_DIRECT; loop backing file cached) and
# cold (echo 3 > /proc/sys/vm/drop_caches before every run, so the loop
# device's backing file is read from disk).  Prints the median wall time and
# peak RSS (GNU time) of each tool, the ratios against 1.1.0 and 0.9.0, and
# the device floor: one O_DIRECT read (4 MiB requests) of the used metadata
# blocks [0, nr_allocated) — gen_pool writes them contiguously from block 0.
#
#   bench/blockdev.sh [META.bin]      default: WORK/large.bin from gen_pool --scale large
#
# Environment: WORK=/tmp/bench-bdev RUNS=3 MODES="warm cold" TOOLS="check ls rmap dump"
#   REFS="ref1 ref0 ours" BUILD=build.  Needs root (losetup, drop_caches).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
WORK=${WORK:-/tmp/bench-bdev}
RUNS=${RUNS:-3}
MODES=${MODES:-"warm cold"}
TOOLS=${TOOLS:-"check ls rmap dump"}
REFS=${REFS:-"ref1 ref0 ours"}
BUILD=${BUILD:-$TOP/build}
GEN=$BUILD/devbin/gen_pool
mkdir -p "$WORK"
META=${1:-$WORK/large.bin}
if [ ! -s "$META" ]; then
	"$GEN" --scale large --binary -o "$META"
fi
DEV=$(losetup --find --show --read-only "$META")
trap 'losetup -d "$DEV"' EXIT
# superblock: data sm root at 64, metadata sm root at 192 (nr_blocks, nr_allocated)
sbq() { python3 -c 'import struct,sys; print(struct.unpack_from("<Q", open(sys.argv[1],"rb").read(4096), int(sys.argv[2]))[0])' "$META" "$1"; }
nr_alloc=$(sbq 200)
nr_data=$(sbq 64)

drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }

# measure MODE CMD... -> "wall rss_kib" (medians of RUNS)
measure() {
	local mode=$1 tf i t0 t1; shift
	tf=$(mktemp)
	[ "$mode" = warm ] && "$@" >/dev/null 2>&1 || true
	for ((i = 0; i < RUNS; i++)); do
		[ "$mode" = cold ] && drop
		# warm: the backing file back in the page cache (DAMON reclaim may have evicted it)
		[ "$mode" = warm ] && cat "$META" > /dev/null
		t0=$(date +%s%N)
		/usr/bin/time -f '%M' -o "$tf.rss" "$@" >/dev/null 2>&1 || echo "  (failed: $*)" >&2
		t1=$(date +%s%N)
		echo "$(secs "$t0" "$t1") $(tail -1 "$tf.rss")" >> "$tf"
	done
	echo "$(cut -d' ' -f1 "$tf" | med) $(cut -d' ' -f2 "$tf" | med)"
	rm -f "$tf" "$tf.rss"
}

bindir() {
	case $1 in
	ref0) echo /usr/sbin ;;
	ref1) echo "$BUILD/ref-1.x/usr/sbin" ;;
	ours) echo "$BUILD/bin" ;;
	esac
}

cmd() {   # TOOL BINDIR -> CMD
	local p=$2
	case $1 in
	check) CMD=("$p/thin_check" -q "$DEV") ;;   # -q: as LVM runs it (1.1.0 without -q waits ~0.5 s on its progress output)
	ls)    CMD=(sh -c "exec '$p/thin_ls' -o DEV,MAPPED_BLOCKS,EXCLUSIVE_BLOCKS,SHARED_BLOCKS '$DEV' >/dev/null") ;;
	rmap)  CMD=(sh -c "exec '$p/thin_rmap' --region 0..$((nr_data / 10)) '$DEV' >/dev/null") ;;
	dump)  CMD=(sh -c "exec '$p/thin_dump' '$DEV' >/dev/null") ;;
	*) echo "unknown tool $1" >&2; return 1 ;;
	esac
}

echo "metadata: $META on $DEV, $nr_alloc used blocks, $nr_data data blocks; median of $RUNS"
for mode in $MODES; do
	read -r fs _ < <(measure "$mode" dd if="$DEV" of=/dev/null bs=4M iflag=direct count=$(( (nr_alloc * 4096 + (4 << 20) - 1) / (4 << 20) )))
	echo "== $mode: device floor (O_DIRECT read of the used blocks, 4 MiB requests): $fs s"
	printf '%-6s %-5s' mode tool
	for r in $REFS; do printf ' %9s %8s' "${r}_s" "${r}_MiB"; done
	printf ' %8s %8s %8s\n' vs_ref1 vs_ref0 vs_floor
	for t in $TOOLS; do
		declare -A S=() M=()
		for r in $REFS; do
			cmd "$t" "$(bindir "$r")"
			read -r S[$r] M[$r] < <(measure "$mode" "${CMD[@]}")
		done
		printf '%-6s %-5s' "$mode" "$t"
		for r in $REFS; do printf ' %9s %8.1f' "${S[$r]}" "$(awk -v k="${M[$r]}" 'BEGIN{print k/1024}')"; done
		ratio() { awk -v a="${S[$1]:-0}" -v b="${S[ours]}" 'BEGIN { if (a > 0 && b > 0) printf "%.1fx", a / b; else printf "-" }'; }
		printf ' %8s %8s %8s\n' "$(ratio ref1)" "$(ratio ref0)" \
			"$(awk -v a="${S[ours]}" -v b="$fs" 'BEGIN { printf "%.2fx", a / b }')"
		unset S M
	done
done
