#!/usr/bin/env bash
# How thinmeta's time and memory grow with the pool, up to the format's
# limit (issue 15): gen_pool writes binary metadata directly (no XML) for
# 2 M and 20 M mapped blocks and for a pool filling the largest metadata
# device the format allows (4161600 blocks, ~15.9 GiB); each tool then runs
# cold (page cache dropped before every run) with the metadata on a loop
# block device (O_DIRECT, as LVM hands it over):
#   check   thin_check
#   ls      thin_ls -o DEV,MAPPED_BLOCKS,EXCLUSIVE_BLOCKS,SHARED_BLOCKS
#   dump    thin_dump > /dev/null
#   repair  thin_repair onto a second loop device of the same size
#   floor   the device's own time: one O_DIRECT read (4 MiB requests) of the
#           metadata blocks in use (gen_pool writes them from block 0 on)
#   floor-after  the same read again after the tools: inside a VM the host
#           caches the disk image, so a "cold" run (the guest's cache
#           dropped) after the first may be served from the host's memory;
#           the two floors bound what the tools' cold figures mean
#   restore thin_restore of thin_dump's XML onto that device (not at the
#           limit: its XML alone would take ~25 GB)
# SCALES may also name "maxdata": the most data blocks the format allows
# (their space map's bitmaps fill the largest metadata device: 4,135,000
# bitmaps of 16320 blocks, 99.96 % of the bound, see docs/scale.md) with
# 65536 single-block mappings evenly spread over the whole data device, so
# that every 2^20-block count region is touched (gen_pool --hole-fixed
# --compact-counts); only floor and check run there.
# Prints a markdown table (wall s, peak RSS MiB, and per million mappings)
# and, with PLOT=FILE, writes an SVG plot of time and memory against the
# number of mappings (bench/scale_plot.py).
#
#   bench/scale.sh        Environment: WORK=/tmp/scale SCALES="2000000 20000000 limit"
#                         TOOLS="check ls dump repair restore" RUNS=1 BUILD=build PLOT=
# The limit pool takes ~17 GB in WORK and the repair output as much again:
# about 36 GB free space.  Needs root.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
BUILD=${BUILD:-$TOP/build}
WORK=${WORK:-/tmp/scale}
SCALES=${SCALES:-"2000000 20000000 200000000 limit"}
TOOLS=${TOOLS:-"check ls dump repair restore"}
RUNS=${RUNS:-1}
BIN=$BUILD/bin
mkdir -p "$WORK"
LIMIT_BLOCKS=4161600
LIMIT_MAPPINGS=820000000   # fills ~96 % of LIMIT_BLOCKS in this shape
MAXDATA_BLOCKS=$((4135000 * 16320))   # 67,483,200,000 data blocks (2^35.97)
MAXDATA_MAPPINGS=65536

drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
sbq() { python3 -c 'import struct,sys; print(struct.unpack_from("<Q", open(sys.argv[1],"rb").read(4096), int(sys.argv[2]))[0])' "$1" "$2"; }

# run CMD...: cold, median of RUNS -> "wall rss_mib"
run() {
	local i t0 t1 w=() m=()
	for ((i = 0; i < RUNS; i++)); do
		drop
		t0=$(now_ns)
		/usr/bin/time -f '%M' -o "$WORK/rss" "$@" > /dev/null 2> "$WORK/err" ||
			{ echo "  (failed: $* : $(head -1 "$WORK/err"))" >&2; }
		t1=$(now_ns)
		w+=("$(secs "$t0" "$t1")")
		m+=("$(( $(tail -1 "$WORK/rss") / 1024 ))")
	done
	echo "$(printf '%s\n' "${w[@]}" | med) $(printf '%s\n' "${m[@]}" | med)"
}

rows=$WORK/rows.tsv
: > "$rows"
echo "| mappings | metadata blocks | tool | cold wall s | peak RSS MiB | s per M mappings | MiB per M mappings |"
echo "|---:|---:|---|---:|---:|---:|---:|"
for sc in $SCALES; do
	shape=(--origins 16 --snapshots 32)
	if [ "$sc" = limit ]; then
		maps=$LIMIT_MAPPINGS; extra=(--metadata-blocks $LIMIT_BLOCKS)
	elif [ "$sc" = maxdata ]; then
		# one mapping every MAXDATA_BLOCKS / 65536 (< 2^20) blocks, the last in the last region
		maps=$MAXDATA_MAPPINGS
		shape=(--origins 1 --snapshots 0 --run-frac 0 --alloc-chunk 0 --hole-prob 1 --hole-fixed
		       --hole-mean $((MAXDATA_BLOCKS / MAXDATA_MAPPINGS - 2)) --free-frac 0
		       --nr-data-blocks $MAXDATA_BLOCKS --compact-counts)
		extra=(--metadata-blocks $LIMIT_BLOCKS)
	else
		maps=$sc; extra=()
	fi
	meta=$WORK/m$maps.bin
	[ "$sc" != maxdata ] || meta=$WORK/maxdata.bin
	[ -s "$meta" ] || "$BUILD/devbin/gen_pool" "${shape[@]}" --mappings "$maps" \
		--binary "${extra[@]}" -o "$meta" > /dev/null
	used=$(sbq "$meta" 200)
	IN=$(losetup --find --show --read-only "$meta")
	rm -f "$WORK/out.img"; truncate -s "$(stat -c %s "$meta")" "$WORK/out.img"
	OUT=$(losetup --find --show "$WORK/out.img")
	# the mapping count, from thin_ls's MAPPED_BLOCKS (also warms nothing: caches dropped per run)
	nmap=$("$BIN/thin_ls" -o MAPPED_BLOCKS --no-headers "$IN" | awk '{s += $1} END {print s}')
	for t in floor $TOOLS floor-after; do
		[ "$sc" != limit ] || [ "$t" != restore ] || continue
		[ "$sc" != maxdata ] || [ "$t" = check ] || [ "${t%-after}" = floor ] || continue
		case $t in
		floor|floor-after) r=$(run dd if="$IN" of=/dev/null bs=4M iflag=direct count=$(( (used * 4096 + (4 << 20) - 1) / (4 << 20) ))) ;;
		check)  r=$(run "$BIN/thin_check" -q "$IN") ;;
		ls)     r=$(run "$BIN/thin_ls" -o DEV,MAPPED_BLOCKS,EXCLUSIVE_BLOCKS,SHARED_BLOCKS "$IN") ;;
		dump)   r=$(run "$BIN/thin_dump" "$IN") ;;
		repair) r=$(run "$BIN/thin_repair" -q -i "$IN" -o "$OUT") ;;
		restore)
			[ -s "$WORK/m$maps.xml" ] || "$BIN/thin_dump" -o "$WORK/m$maps.xml" "$IN"
			r=$(run "$BIN/thin_restore" -q -i "$WORK/m$maps.xml" -o "$OUT") ;;
		esac
		read -r w m <<< "$r"
		printf '%s\t%s\t%s\t%s\t%s\n' "$nmap" "$used" "$t" "$w" "$m" >> "$rows"
		awk -v n="$nmap" -v u="$used" -v t="$t" -v w="$w" -v m="$m" 'BEGIN {
			printf "| %d | %d | %s | %.2f | %d | %.4f | %.3f |\n", n, u, t, w, m, w / (n / 1e6), m / (n / 1e6) }'
	done
	losetup -d "$IN" "$OUT"
	rm -f "$WORK/out.img"
	rm -f "$WORK/m$maps.xml"
done
[ -z "${PLOT:-}" ] || python3 "$HERE/scale_plot.py" "$rows" "$PLOT"
