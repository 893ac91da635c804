#!/usr/bin/env bash
# Metadata blocks in use (metadata space map nr_allocated): the kernel's
# own image, the reference thin_restore of its dump, and ours; plus
# generated pools with snapshots.  Prints a markdown table.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BUILD:-$TOP/build}/bin
GEN=${BUILD:-$TOP/build}/devbin/gen_pool
[ -x "$GEN" ] || { echo "metadata_usage: $GEN not built (run make)" >&2; exit 1; }
W=$(mktemp -d /tmp/thinmeta-usage.XXXXXX)
trap 'rm -rf "$W"' EXIT
used() { python3 -c 'import struct,sys; print(struct.unpack_from("<Q", open(sys.argv[1],"rb").read(4096), 200)[0])' "$1"; }
restore_both() {  # xml size -> "ref ours"
	truncate -s "$2" "$W/r.bin" "$W/o.bin"
	thin_restore -q -i "$1" -o "$W/r.bin" 2>/dev/null || { echo "fail"; return; }
	"$BIN/thin_restore" -q -i "$1" -o "$W/o.bin"
	echo "$(used "$W/r.bin") $(used "$W/o.bin")"
	rm -f "$W/r.bin" "$W/o.bin"
}
echo "| pool | kernel-written | reference restore | thinmeta restore |"
echo "|---|---:|---:|---:|"
for d in "$TOP"/fixtures/kernel/*/; do
	n=$(basename "$d")
	gzip -dc "$d/metadata.bin.gz" > "$W/k.bin"
	x=$d/ref-thin_dump.xml
	[ -f "$x" ] || { gzip -dc "$x.gz" > "$W/k.xml"; x=$W/k.xml; }
	read -r ref ours < <(restore_both "$x" 16M)
	echo "| $n | $(used "$W/k.bin") | $ref | $ours |"
done
for spec in "2 3 20000" "4 12 100000" "8 16 400000"; do
	set -- $spec
	"$GEN" --origins "$1" --snapshots "$2" --mappings "$3" --seed 7 -o "$W/g.xml" 2>/dev/null
	read -r ref ours < <(restore_both "$W/g.xml" 256M)
	echo "| generated: $1 origins, $2 snapshots, $3 mappings | – | $ref | $ours |"
done
