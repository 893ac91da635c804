#!/usr/bin/env bash
# Metadata blocks in use (metadata space map nr_allocated) after restoring
# the same XML into the same device: thinmeta's thin_restore, the kernel's
# own image (for a kernel fixture), tpt 1.1.0's and 0.9.0's thin_restore;
# and, where a fixture has its 1.1.0 dump (<def>/<ref>, ref1-thin_dump.xml),
# that XML restored by thinmeta and by 1.1.0.
# Every kernel fixture (fixtures/kernel/*/, its 0.9.0 dump, into a device
# as large as the kernel's metadata device) and generated pools of 2 M and
# 20 M mappings (24 and 48 devices, into 1 GiB and 4 GiB).  Prints a
# markdown table, then the restore times of the 20 M pool (regular file).
#
#   bench/metadata_usage.sh            (LARGE=0: without the 20 M pool;
#                                       REF0_LARGE=0: 0.9.0 not on it, ~4 min)
# Needs: build/bin (make), build/ref-1.x (make deps), 0.9.0 in /usr/sbin.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
BIN=$BUILD/bin
REF0=${REF0:-/usr/sbin}
REF1=${REF1:-$BUILD/ref-1.x/usr/sbin}
FIXTURES=${FIXTURES:-$TOP/fixtures/kernel}
GEN=${GEN:-$BUILD/devbin/gen_pool}
W=$(mktemp -d /tmp/thinmeta-usage.XXXXXX)
trap 'rm -rf "$W"' EXIT
"$REF1/thin_restore" -V >/dev/null 2>&1 || { echo "no tpt 1.x in $REF1 (make deps)" >&2; exit 1; }

used() { od -An -tu8 -j200 -N8 "$1" | tr -d ' '; }
# one TOOL XML SIZE -> blocks used, or "fails"
one() {
	rm -f "$W/o.bin"; truncate -s "$3" "$W/o.bin"
	if "$1" -q -i "$2" -o "$W/o.bin" >/dev/null 2>&1; then used "$W/o.bin"; else echo fails; fi
	rm -f "$W/o.bin"
}
row() { # name kernel xml size no-ref0 [1.x-xml]
	local ref0=– x1a=– x1b=–
	[ -n "$5" ] || ref0=$(one "$REF0/thin_restore" "$3" "$4")
	if [ -n "${6:-}" ]; then
		x1a=$(one "$BIN/thin_restore" "$6" "$4")
		x1b=$(one "$REF1/thin_restore" "$6" "$4")
	fi
	echo "| $1 | $(one "$BIN/thin_restore" "$3" "$4") | $2 | $(one "$REF1/thin_restore" "$3" "$4") | $ref0 | $x1a | $x1b |"
}

echo "| pool | thinmeta | kernel-written | tpt 1.1.0 | tpt 0.9.0 | 1.x dump: thinmeta | 1.x dump: tpt 1.1.0 |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for d in "$FIXTURES"/*/; do
	[ -f "$d/metadata.bin.gz" ] || continue
	gzip -dc "$d/metadata.bin.gz" > "$W/k.bin"
	x=$d/ref-thin_dump.xml
	[ -f "$x" ] || { gzip -dc "$x.gz" > "$W/k.xml"; x=$W/k.xml; }
	x1=$d/ref1-thin_dump.xml
	[ -f "$x1" ] || { [ -f "$x1.gz" ] && gzip -dc "$x1.gz" > "$W/k1.xml" && x1=$W/k1.xml; } || x1=
	[ -f "$x1" ] || x1=
	row "$(basename "$d")" "$(used "$W/k.bin")" "$x" "$(stat -c %s "$W/k.bin")" "" "$x1"
done
rm -f "$W/k.bin"
$GEN --scale medium -o "$W/g.xml" >/dev/null 2>&1
row "generated, 2 M mappings, 24 devices" – "$W/g.xml" 1G ""
if [ "${LARGE:-1}" != 0 ]; then
	$GEN --scale large -o "$W/g.xml" >/dev/null 2>&1
	noref0=
	[ "${REF0_LARGE:-1}" != 0 ] || noref0=1
	row "generated, 20 M mappings, 48 devices" – "$W/g.xml" 4G "$noref0"
	echo
	echo "Restore of the 20 M pool into a 4 GiB regular file (best of 3, alternating):"
	echo
	echo "| thin_restore | wall s | user+sys s | peak RSS MiB |"
	echo "|---|---:|---:|---:|"
	declare -A best cpu rss
	for i in 1 2 3; do
		for t in "$BIN/thin_restore" "$REF1/thin_restore"; do
			rm -f "$W/o.bin"; truncate -s 4G "$W/o.bin"
			/usr/bin/time -f '%e %U %S %M' -o "$W/t" "$t" -q -i "$W/g.xml" -o "$W/o.bin"
			read -r e u s m < "$W/t"
			c=$(echo "$u + $s" | bc)
			if [ -z "${best[$t]:-}" ] || [ "$(echo "$e < ${best[$t]}" | bc)" = 1 ]; then
				best[$t]=$e cpu[$t]=$c rss[$t]=$((m / 1024))
			fi
		done
	done
	echo "| thinmeta | ${best[$BIN/thin_restore]} | ${cpu[$BIN/thin_restore]} | ${rss[$BIN/thin_restore]} |"
	echo "| tpt 1.1.0 | ${best[$REF1/thin_restore]} | ${cpu[$REF1/thin_restore]} | ${rss[$REF1/thin_restore]} |"
fi
