#!/usr/bin/env bash
# Side-by-side benchmark: our tools vs the reference thin-provisioning-tools
# 0.9.0 on the same metadata file, warm cache.  Prints, per tool and scale,
# the median wall time and peak RSS of each and the speed-up ratio.
# repair-nosb: thin_repair with the superblock zeroed (the block scan and
# the choice of the live pool state), given the transaction id, data block
# size and number of data blocks, against 1.1.0 (REF1), on our restore of
# the XML (kernel-style space maps; 0.9.0's restore leaves an orphan leaf
# in its lowest free block, which takes the proof away).
#
#   bench/run.sh [SCALE ...]          default: small medium
#   bench/run.sh --blockdev [META.bin]  where users run the tools: the same
#                         comparison on a loop block device, every tool
#                         O_DIRECT, warm and cold, against 1.1.0 and 0.9.0
#                         and the device floor (bench/blockdev.sh; root)
#
# Environment:
#   WORK=/tmp/bench       scratch: WORK/SCALE/{SCALE.xml,SCALE.json,meta.bin}
#                         (meta.bin = the reference's restore of the XML)
#   RUNS=3 WARMUP=1       timed runs (median) after untimed warm-up runs
#   TOOLS="check dump ..." subset of: check check-skip dump restore repair repair-nosb
#                         ls-excl rmap delta
#   REF1=BUILD/ref-1.x/usr/sbin   1.1.0 binaries (repair-nosb)
#   BUILD=build           where our binaries are
# Needs python3, GNU time, the reference tools (make deps installs them) and
# the pool generator build/devbin/gen_pool (make builds it; see bench/README.md).
set -euo pipefail
if [ "${1:-}" = --blockdev ]; then
	shift
	exec "$(dirname "$0")/blockdev.sh" "$@"
fi
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
WORK=${WORK:-/tmp/bench}
RUNS=${RUNS:-3}
WARMUP=${WARMUP:-1}
BUILD=${BUILD:-$TOP/build}
OURS=$BUILD/bin
GEN=$BUILD/devbin/gen_pool
[ -x "$GEN" ] || { echo "bench: $GEN not built (run make)" >&2; exit 1; }
TOOLS=${TOOLS:-"check check-skip dump restore repair repair-nosb ls-excl rmap delta"}
REF1=${REF1:-$BUILD/ref-1.x/usr/sbin}
SCALES=("$@")
[ ${#SCALES[@]} -eq 0 ] && SCALES=(small medium)
RES=$WORK/results.tsv
mkdir -p "$WORK"
[ -f "$RES" ] || printf 'scale\ttool\tref_s\tref_rss_kib\tours_s\tours_rss_kib\tspeedup\trss_ratio\n' > "$RES"

json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

# measure CMD... -> "wall rss" (medians)
measure() {
	local tf i
	tf=$(mktemp)
	for ((i = 0; i < WARMUP; i++)); do "$@" >/dev/null 2>&1 || true; done
	for ((i = 0; i < RUNS; i++)); do
		local t0 t1 rss
		t0=$(date +%s%N)
		/usr/bin/time -f '%M' -o "$tf.rss" "$@" >/dev/null 2>&1 ||
			echo "  (command failed: $*)" >&2
		t1=$(date +%s%N)
		rss=$(tail -1 "$tf.rss")
		# wall time in ms resolution (GNU time's %e has only 10 ms)
		echo "$(secs "$t0" "$t1") $rss" >> "$tf"
	done
	rm -f "$tf.rss"
	echo "$(cut -d' ' -f1 "$tf" | med) $(cut -d' ' -f2 "$tf" | med)"
	rm -f "$tf"
}

prepare() {
	local s=$1 d=$WORK/$1 maps size
	mkdir -p "$d"
	[ -s "$d/$s.xml" ] || "$GEN" --scale "$s" -o "$d/$s.xml" --stats "$d/$s.json"
	maps=$(json "$d/$s.json" "d['mappings']")
	size=$((16 << 20))
	while [ $size -lt $((maps * 100)) ]; do size=$((size * 2)); done
	echo "$size" > "$d/meta.size"
	if [ ! -s "$d/meta.ok" ]; then
		rm -f "$d/meta.bin"; truncate -s "$size" "$d/meta.bin"
		thin_restore -q -i "$d/$s.xml" -o "$d/meta.bin"
		echo ok > "$d/meta.ok"
	fi
	if [ ! -s "$d/nosb.ok" ]; then
		# written the kernel's way (our restore), as a kernel pool's space maps are
		rm -f "$d/meta-nosb.bin"; truncate -s "$size" "$d/meta-nosb.bin"
		"$OURS/thin_restore" -q -i "$d/$s.xml" -o "$d/meta-nosb.bin"
		dd if=/dev/zero of="$d/meta-nosb.bin" bs=4096 count=1 conv=notrunc status=none
		head -1 "$d/$s.xml" | sed 's/.* transaction="\([0-9]*\)".* data_block_size="\([0-9]*\)".*/\1 \2/' > "$d/nosb.args"
		echo ok > "$d/nosb.ok"
	fi
}

# cmd TOOL SCALE WHICH(ref|ours) -> CMD array
cmd() {
	local t=$1 s=$2 w=$3 d=$WORK/$2 p
	local M=$d/meta.bin size nr pair
	[ "$w" = ref ] && p=/usr/sbin || p=$OURS
	[ "$w" = ref ] && [ "$t" = repair-nosb ] && p=$REF1
	size=$(cat "$d/meta.size")
	nr=$(json "$d/$s.json" "d['nr_data_blocks']")
	pair=$(json "$d/$s.json" "' '.join(map(str, d['delta_pair']))")
	set -- $pair
	case $t in
	check)      CMD=("$p/thin_check" "$M") ;;
	check-skip) CMD=("$p/thin_check" --skip-mappings "$M") ;;
	dump)       CMD=(sh -c "exec '$p/thin_dump' '$M' >/dev/null") ;;
	restore)    CMD=(sh -c "rm -f '$d/restore-$w.bin' && truncate -s $size '$d/restore-$w.bin' && exec '$p/thin_restore' -q -i '$d/$s.xml' -o '$d/restore-$w.bin'") ;;
	repair)     CMD=(sh -c "rm -f '$d/repair-$w.bin' && truncate -s $size '$d/repair-$w.bin' && exec '$p/thin_repair' -i '$M' -o '$d/repair-$w.bin'") ;;
	repair-nosb)
		read -r tid dbs < "$d/nosb.args"
		CMD=(sh -c "rm -f '$d/repair-$w.bin' && truncate -s $size '$d/repair-$w.bin' && exec '$p/thin_repair' -i '$d/meta-nosb.bin' -o '$d/repair-$w.bin' --transaction-id $tid --data-block-size $dbs --nr-data-blocks $nr") ;;
	ls-excl)    CMD=(sh -c "exec '$p/thin_ls' -o DEV,MAPPED_BLOCKS,EXCLUSIVE_BLOCKS,SHARED_BLOCKS '$M' >/dev/null") ;;
	rmap)       CMD=(sh -c "exec '$p/thin_rmap' --region 0..$((nr / 10)) '$M' >/dev/null") ;;
	delta)      CMD=(sh -c "exec '$p/thin_delta' --thin1 $1 --thin2 $2 '$M' >/dev/null") ;;
	*) echo "unknown tool $t" >&2; return 1 ;;
	esac
}

printf '%-7s %-11s %10s %10s %10s %10s %8s %8s\n' scale tool ref_s ref_MiB ours_s ours_MiB speedup rss
for s in "${SCALES[@]}"; do
	prepare "$s"
	for t in $TOOLS; do
		bin=${t%%-*}; [ "$bin" = ls ] && bin=ls
		if [ "$t" = repair-nosb ] && [ ! -x "$REF1/thin_repair" ]; then
			printf '%-7s %-11s  (1.1.0 not found in %s: make deps)\n' "$s" "$t" "$REF1"; continue
		fi
		if [ ! -x "$OURS/thin_$bin" ]; then
			printf '%-7s %-11s  (our thin_%s is not built)\n' "$s" "$t" "$bin"; continue
		fi
		cmd "$t" "$s" ref;  read -r rs rm < <(measure "${CMD[@]}")
		cmd "$t" "$s" ours; read -r os om < <(measure "${CMD[@]}")
		ratio=$(awk -v a="$rs" -v b="$os" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }')
		rr=$(awk -v a="$om" -v b="$rm" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
		printf '%-7s %-11s %10s %10.1f %10s %10.1f %7sx %7sx\n' "$s" "$t" "$rs" \
			"$(awk -v k="$rm" 'BEGIN{print k/1024}')" "$os" "$(awk -v k="$om" 'BEGIN{print k/1024}')" "$ratio" "$rr"
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$t" "$rs" "$rm" "$os" "$om" "$ratio" "$rr" >> "$RES"
	done
	# thin_metadata_pack (no 0.9.0 counterpart): time and size against the used metadata
	if [ -x "$OURS/thin_metadata_pack" ]; then
		read -r ps pm < <(measure "$OURS/thin_metadata_pack" -q -i "$WORK/$s/meta.bin" -o "$WORK/$s/meta.pack")
		usedb=$(python3 -c 'import struct,sys; print(struct.unpack_from("<Q", open(sys.argv[1],"rb").read(4096), 200)[0] * 4096)' "$WORK/$s/meta.bin")
		packb=$(stat -c %s "$WORK/$s/meta.pack")
		echo "$s: thin_metadata_pack: ${ps} s, $((pm / 1024)) MiB; $usedb bytes of used metadata -> $packb bytes ($(awk -v a="$usedb" -v b="$packb" 'BEGIN { printf "%.1f", a / b }')x smaller)"
		rm -f "$WORK/$s/meta.pack"
	fi
	# thin_reconcile (new tool): with space figures against our own thin_ls
	# EXCLUSIVE/SHARED (target <= 1.5x), and --no-space (target < 50 ms)
	if [ -x "$OURS/thin_reconcile" ] && [ -x "$OURS/thin_ls" ]; then
		# records for every other device: the rest are orphans with space to count
		python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("\n".join("%d\tvol%d" % (v["dev_id"], v["dev_id"]) for v in d["devices"][::2]))' \
			"$WORK/$s/$s.json" > "$WORK/$s/records.tsv" 2>/dev/null ||
			"$OURS/thin_ls" --no-headers -o DEV "$WORK/$s/meta.bin" | awk 'NR % 2 { print $1 "\tvol" $1 }' > "$WORK/$s/records.tsv"
		read -r ls_s _ < <(measure sh -c "exec '$OURS/thin_ls' -o DEV,EXCLUSIVE_BLOCKS,SHARED_BLOCKS '$WORK/$s/meta.bin' >/dev/null")
		read -r rc_s rc_m < <(measure sh -c "'$OURS/thin_reconcile' --records '$WORK/$s/records.tsv' '$WORK/$s/meta.bin' >/dev/null; true")
		read -r ns_s _ < <(measure sh -c "'$OURS/thin_reconcile' --no-space --records '$WORK/$s/records.tsv' '$WORK/$s/meta.bin' >/dev/null; true")
		echo "$s: thin_reconcile with space ${rc_s} s ($((rc_m / 1024)) MiB) vs our thin_ls EXCLUSIVE/SHARED ${ls_s} s ($(awk -v a="$rc_s" -v b="$ls_s" 'BEGIN { printf "%.2f", a / b }')x); --no-space ${ns_s} s"
	fi
	# metadata blocks used: reference restore vs ours (sm root nr_allocated)
	if [ -s "$WORK/$s/restore-ours.bin" ] && [ -x "$OURS/thin_check" ]; then
		used() { python3 -c 'import struct,sys; print(struct.unpack_from("<Q", open(sys.argv[1],"rb").read(4096), 200)[0])' "$1"; }
		echo "$s: metadata blocks used: reference restore $(used "$WORK/$s/meta.bin"), ours $(used "$WORK/$s/restore-ours.bin")"
	fi
done
