#!/usr/bin/env bash
# The damaged-input companion of compare-outputs.sh: every fixture in
# fixtures/kernel, damaged one way at a time by thin_damage (superblock,
# node checksum, location, type and structure, the device details tree,
# the space-map index and bitmaps, reference counts, leaks), then the read
# tools, thin_check --auto-repair and thin_repair run on it; all outputs,
# exit statuses and written images (md5) go into one directory.  Clean
# fixtures never reach the findings, so a refactor of the checking code is
# compared with both:
#   tests/compare-damage.sh build-before /tmp/before; ...; tests/compare-damage.sh build /tmp/after
#   diff -r /tmp/before /tmp/after
# The damage is always made by BUILD's devbin/thin_damage, so use the same
# tool for both runs if thin_damage itself changed.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}; OUT=${2:?usage: compare-damage.sh BUILD OUTDIR}
case $BUILD in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
B=$BUILD/bin
DMG=${DMG:-$BUILD/devbin/thin_damage}
[ -x "$DMG" ] || { echo "compare-damage: $DMG not built" >&2; exit 1; }
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
W=$(mktemp -d /tmp/cmpdmg.XXXXXX); trap 'rm -rf "$W"' EXIT
info() { sed -n "s/^$1=//p" "$W/info"; }
run() {  # cmd...: stdout+stderr+status appended to the case's file
	local c="$*"
	c=${c//"$DMG"/thin_damage}
	{ echo "\$ ${c//"$BUILD/"/}"; "$@" 2>&1; echo "exit $?"; } | sed "s|$W|W|g" >> "$f"
}
nr=0
for d in "$TOP"/fixtures/kernel/*/; do
	fx=$(basename "$d")
	gzip -dc "$d/metadata.bin.gz" > "$W/clean.bin"
	"$DMG" --info "$W/clean.bin" > "$W/info" 2>/dev/null || continue
	droot=$(info device_details_root); mroot=$(info data_mapping_root)
	dindex=$(info data_bitmap_root); mindex=$(info metadata_bitmap_root)
	mb=$(info metadata_sm_nr_blocks)
	dev=$("$DMG" --get-node-key "$droot:0" "$W/clean.bin" 2>/dev/null || echo 0)
	leaf=$("$DMG" --leaf-of "$dev" "$W/clean.bin" 2>/dev/null || echo 0)
	dbitmap=$("$DMG" --get-node-value "$dindex:0" "$W/clean.bin" 2>/dev/null || echo 0)
	cases=(
		"--flip-byte 0:100"
		"--set-sb-field held_root=$leaf"
		"--set-sb-field held_root=$((mb - 1))"
		"--set-sb-field data_mapping_root=$((mb + 5))"
		"--flip-byte $leaf:100"
		"--set-node-field $leaf:blocknr=7"
		"--set-node-value $mroot:0=$dbitmap"
		"--set-node-field $leaf:max_entries=250"
		"--set-node-key $leaf:3=1"
		"--zero-block $droot"
		"--set-details $dev:mapped_blocks=12345"
		"--flip-byte $mindex:100"
		"--set-node-key $dindex:0=5"
		"--flip-byte $dbitmap:100"
		"--set-bitmap-entry data:0=3"
		"--set-count data:0=0"
		"--set-count metadata:$leaf=0"
		"--leak data 3"
		"--leak metadata 2"
		"--set-index-field data:0:nr_free=5"
		"--set-sb-field data_nr_allocated=5"
	)
	for i in "${!cases[@]}"; do
		f=$OUT/$fx.$i
		: > "$f"
		cp "$W/clean.bin" "$W/m.bin"
		# shellcheck disable=SC2086
		run "$DMG" ${cases[$i]} "$W/m.bin"
		cd "$W" || exit 1
		run "$B/thin_check" m.bin
		run "$B/thin_check" --ignore-non-fatal-errors m.bin
		run "$B/thin_check" --skip-mappings m.bin
		run "$B/thin_dump" m.bin
		run "$B/thin_dump" --repair m.bin
		run "$B/thin_ls" m.bin
		run "$B/thin_rmap" --region 0..100000 m.bin
		cp m.bin a.bin; run "$B/thin_check" --auto-repair a.bin; run md5sum a.bin
		truncate -s 0 p.bin; truncate -s "$(stat -c %s m.bin)" p.bin
		run "$B/thin_repair" -i m.bin -o p.bin; run md5sum p.bin
		nr=$((nr + 1))
	done
done
echo "outputs of $nr damaged cases in $OUT"
