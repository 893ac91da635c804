#!/usr/bin/env bash
# thin_metadata_pack / thin_metadata_unpack against thin-provisioning-tools
# 1.1.0 on the same metadata (a pool from gen_pool restored by our
# thin_restore), warm cache: pack time (all CPUs and one thread) and size,
# unpack time of each tool's own pack and of the other's.  Median wall time
# of RUNS after WARMUP; pack sizes of every timed run (1.1.0's vary: its
# threads race to fill its chunks).
#
#   bench/pack.sh [SCALE ...]        default: medium large
#
# Environment: WORK=/tmp/bench-pack, RUNS=3, WARMUP=1, BUILD=build,
# REF1=$BUILD/ref-1.x/usr/sbin (make deps), GEN (the pool generator).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)

GEN=${GEN:-$TOP/build/devbin/gen_pool}
WORK=${WORK:-/tmp/bench-pack}
RUNS=${RUNS:-3}
WARMUP=${WARMUP:-1}
BUILD=${BUILD:-$TOP/build}
OURS=$BUILD/bin
REF1=${REF1:-$BUILD/ref-1.x/usr/sbin}
SCALES=("$@")
[ ${#SCALES[@]} -eq 0 ] && SCALES=(medium large)
"$REF1/thin_metadata_pack" -V >/dev/null || { echo "1.1.0 not found in $REF1 (make deps)" >&2; exit 1; }
mkdir -p "$WORK"
RES=$WORK/pack.tsv
[ -f "$RES" ] || printf 'scale\twhat\tours_s\tref1_s\tours_bytes\tref1_bytes\n' > "$RES"


# timed CMD... -> "wall cpu" (medians, seconds; cpu = user + system, which
# a busy machine inflates less than wall time); each run's size of
# $SIZE_OF (if set) in $WORK/sizes
timed() {
	local t0 i
	: > "$WORK/times"; : > "$WORK/cpus"; : > "$WORK/sizes"
	for ((i = 0; i < WARMUP; i++)); do "$@" >/dev/null 2>&1; done
	for ((i = 0; i < RUNS; i++)); do
		t0=$(now_ns)
		/usr/bin/time -f '%U %S' -o "$WORK/cpu1" "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }
		{ secs "$t0" "$(now_ns)"; echo; } >> "$WORK/times"
		awk '{ printf "%.2f\n", $1 + $2 }' "$WORK/cpu1" >> "$WORK/cpus"
		[ -z "${SIZE_OF:-}" ] || stat -c %s "$SIZE_OF" >> "$WORK/sizes"
	done
	echo "$(med < "$WORK/times") $(med < "$WORK/cpus")"
}
range() { sort -n "$WORK/sizes" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print (lo == hi ? lo : lo "-" hi) }'; }

printf '| scale | what | thinmeta | 1.1.0 | ratio (wall) |\n|---|---|---:|---:|---:|\n'
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for s in "${SCALES[@]}"; do
	d=$WORK/$s
	mkdir -p "$d"
	[ -s "$d/$s.xml" ] || $GEN --scale "$s" -o "$d/$s.xml" > /dev/null
	if [ ! -s "$d/meta.ok" ]; then
		maps=$(grep -c 'mapping' "$d/$s.xml")
		size=$((16 << 20))
		while [ $size -lt $((maps * 400)) ]; do size=$((size * 2)); done
		rm -f "$d/meta.bin"; truncate -s "$size" "$d/meta.bin"
		"$OURS/thin_restore" -q -i "$d/$s.xml" -o "$d/meta.bin"
		echo ok > "$d/meta.ok"
	fi
	M=$d/meta.bin
	used=$(( $(python3 -c 'import struct,sys; print(struct.unpack_from("<Q", open(sys.argv[1],"rb").read(4096), 200)[0])' "$M") * 4096 ))

	SIZE_OF=$d/ours.pack
	read -r po pco < <(timed "$OURS/thin_metadata_pack" -f -q -i "$M" -o "$d/ours.pack"); so=$(range)
	read -r p1 pc1 < <(timed "$OURS/thin_metadata_pack" -f -q --threads 1 -i "$M" -o "$d/ours.pack")
	SIZE_OF=$d/ref1.pack
	read -r pr pcr < <(timed "$REF1/thin_metadata_pack" -f -i "$M" -o "$d/ref1.pack"); sr=$(range)
	SIZE_OF=
	read -r uo uco < <(timed sh -c "rm -f '$d/u.ours' && exec '$OURS/thin_metadata_unpack' -q -i '$d/ours.pack' -o '$d/u.ours'")
	read -r ur ucr < <(timed sh -c "rm -f '$d/u.ref1' && exec '$REF1/thin_metadata_unpack' -i '$d/ref1.pack' -o '$d/u.ref1'")
	read -r ux ucx < <(timed sh -c "rm -f '$d/u.x' && exec '$OURS/thin_metadata_unpack' -q -i '$d/ref1.pack' -o '$d/u.x'")
	read -r uy ucy < <(timed sh -c "rm -f '$d/u.y' && exec '$REF1/thin_metadata_unpack' -i '$d/ours.pack' -o '$d/u.y'")
	# every unpack gives the same metadata (1.1.0's pack also holds stale blocks: compare dumps)
	for u in u.ours u.ref1 u.x u.y; do
		"$OURS/thin_dump" "$d/$u" | cmp -s - "$d/$s.xml" || { echo "$s: $u does not dump as the XML" >&2; exit 1; }
	done
	r() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
	printf '| %s | used metadata | %s bytes | | |\n' "$s" "$used"
	printf '| %s | pack size (bytes) | %s | %s | %s |\n' "$s" "$so" "$sr" "$(r "${so%%-*}" "${sr%%-*}")"
	printf '| %s | pack, all CPUs: wall (cpu) s | %s (%s) | %s (%s) | %s |\n' "$s" "$po" "$pco" "$pr" "$pcr" "$(r "$po" "$pr")"
	printf '| %s | pack, 1 thread: wall (cpu) s | %s (%s) | | |\n' "$s" "$p1" "$pc1"
	printf '| %s | unpack own pack: wall (cpu) s | %s (%s) | %s (%s) | %s |\n' "$s" "$uo" "$uco" "$ur" "$ucr" "$(r "$uo" "$ur")"
	printf '| %s | unpack the other'"'"'s pack: wall (cpu) s | %s (%s) | %s (%s) | %s |\n' "$s" "$ux" "$ucx" "$uy" "$ucy" "$(r "$ux" "$uy")"
	printf '%s\tpack\t%s\t%s\t%s\t%s\n%s\tpack1\t%s\t\t\t\n%s\tunpack\t%s\t%s\t\t\n%s\tunpack-other\t%s\t%s\t\t\n' \
		"$s" "$po" "$pr" "$so" "$sr" "$s" "$p1" "$s" "$uo" "$ur" "$s" "$ux" "$uy" >> "$RES"
	rm -f "$d"/u.*
done
