#!/usr/bin/env bash
# thin_edit against dump + restore: the time to delete one thin device (the
# largest origin, and a snapshot) from a generated pool with thin_edit, and
# the time to do the same by dumping the pool to XML and restoring it
# without that device (our own thin_dump and thin_restore, the fastest way
# there is without thin_edit; REF=1 adds the reference 0.9.0 tools).
# Prints the medians and the ratio.
#
#   bench/edit.sh [SCALE ...]          default: medium   (large = 20 M mappings)
#
# Environment: WORK=/tmp/bench-edit (scratch), RUNS=3, BUILD=build, REF=1,
# GEN (the pool generator, default build/devbin/gen_pool).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
WORK=${WORK:-/tmp/bench-edit}
RUNS=${RUNS:-3}
BUILD=${BUILD:-$TOP/build}
GEN=${GEN:-$BUILD/devbin/gen_pool}
B=$BUILD/bin
SCALES=("$@")
[ ${#SCALES[@]} -eq 0 ] && SCALES=(medium)
mkdir -p "$WORK"


# time_fresh SETUP-CMD CMD... : "wall cpu" medians (seconds) of CMD over RUNS, SETUP
# untimed before each.  CPU (user + system) is what to compare on a busy machine.
time_fresh() {
	local setup=$1; shift
	local i tf
	tf=$(mktemp)
	for ((i = 0; i < RUNS; i++)); do
		eval "$setup"
		/usr/bin/time -f '%e %U %S' -o "$tf.1" "$@" > /dev/null
		awk '{ printf "%s %.2f\n", $1, $2 + $3 }' "$tf.1" >> "$tf"
	done
	echo "$(cut -d' ' -f1 "$tf" | med) $(cut -d' ' -f2 "$tf" | med)"
	rm -f "$tf" "$tf.1"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "inf" }'; }

for s in "${SCALES[@]}"; do
	d=$WORK/$s
	mkdir -p "$d"
	if [ ! -s "$d/ok" ]; then
		[ -s "$d/pool.xml" ] || $GEN --scale "$s" -o "$d/pool.xml" --stats "$d/pool.json" > /dev/null
		maps=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["mappings"])' "$d/pool.json")
		size=$((16 << 20))
		while [ $size -lt $((maps * 100)) ]; do size=$((size * 2)); done
		rm -f "$d/meta.bin"; truncate -s "$size" "$d/meta.bin"
		"$B/thin_restore" -q -i "$d/pool.xml" -o "$d/meta.bin"
		echo ok > "$d/ok"
	fi
	size=$(stat -c %s "$d/meta.bin")
	# the origin with the most mappings, and the last snapshot
	read -r big nbig snap nsnap < <("$B/thin_ls" --no-headers -o DEV,MAPPED_BLOCKS,CREATE_TIME "$d/meta.bin" |
		awk '{ if ($2 > m) { m = $2; b = $1 } if ($3 >= t) { t = $3; s = $1; ns = $2 } }
		     END { print b, m, s, ns }')
	maps=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["mappings"])' "$d/pool.json")
	echo "== $s: $maps mappings; delete device $big ($nbig mapped blocks) or snapshot $snap ($nsnap)"
	fresh="cp --sparse=always '$d/meta.bin' '$d/work.bin'"
	read -r e_big c_big < <(time_fresh "$fresh" "$B/thin_edit" "$d/work.bin" delete "$big")
	read -r e_snap c_snap < <(time_fresh "$fresh" "$B/thin_edit" "$d/work.bin" delete "$snap")
	# the same result the long way: dump, drop the device from the XML, restore
	"$B/thin_dump" "$d/meta.bin" | python3 -c '
import re, sys
dev = sys.argv[1]
skip = False
for line in sys.stdin:
    if re.match(r"\s*<device dev_id=\"%s\"" % dev, line): skip = True
    if not skip: sys.stdout.write(line)
    if skip and line.strip() == "</device>": skip = False
' "$big" > "$d/without.xml"
	read -r dr cdr < <(time_fresh "rm -f '$d/dr.bin'; truncate -s $size '$d/dr.bin'" \
		sh -c "'$B/thin_dump' '$d/meta.bin' > '$d/dump.xml' && '$B/thin_restore' -q -i '$d/without.xml' -o '$d/dr.bin'")
	# both ways give the same pool
	eval "$fresh"; "$B/thin_edit" "$d/work.bin" delete "$big"
	"$B/thin_dump" "$d/work.bin" > "$d/edit.xml"; "$B/thin_dump" "$d/dr.bin" > "$d/dr.xml"
	cmp -s "$d/edit.xml" "$d/dr.xml" || { echo "edit and dump+restore differ" >&2; exit 1; }
	"$B/thin_check" -q "$d/work.bin" || { echo "thin_check failed after the edit" >&2; exit 1; }
	printf '%-7s %-34s %8s %8s\n' "$s" "" "wall s" "cpu s"
	printf '%-7s %-34s %8s %8s\n' "$s" "thin_edit delete (origin)" "$e_big" "$c_big"
	printf '%-7s %-34s %8s %8s\n' "$s" "thin_edit delete (snapshot)" "$e_snap" "$c_snap"
	printf '%-7s %-34s %8s %8s   ratio to thin_edit: wall %sx, cpu %sx\n' "$s" \
		"thin_dump + thin_restore (ours)" "$dr" "$cdr" "$(ratio "$dr" "$e_big")" "$(ratio "$cdr" "$c_big")"
	if [ "${REF:-0}" = 1 ]; then
		read -r rr crr < <(time_fresh "rm -f '$d/rr.bin'; truncate -s $size '$d/rr.bin'" \
			sh -c "/usr/sbin/thin_dump '$d/meta.bin' > '$d/dump0.xml' && /usr/sbin/thin_restore -q -i '$d/without.xml' -o '$d/rr.bin'")
		printf '%-7s %-34s %8s %8s   ratio to thin_edit: wall %sx, cpu %sx\n' "$s" \
			"thin_dump + thin_restore (0.9.0)" "$rr" "$crr" "$(ratio "$rr" "$e_big")" "$(ratio "$crr" "$c_big")"
	fi
	rm -f "$d/work.bin" "$d/dr.bin" "$d/rr.bin" "$d/dump.xml" "$d/dump0.xml"
done
