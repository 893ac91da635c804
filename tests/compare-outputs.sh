#!/usr/bin/env bash
# Runs every read-side tool (and the writers, through their outputs) over every
# fixture in fixtures/kernel and writes all outputs, with exit statuses, into
# one directory.  Two runs (before and after a refactor) must be identical:
#   tests/compare-outputs.sh build /tmp/before; ...; tests/compare-outputs.sh build /tmp/after
#   diff -r /tmp/before /tmp/after
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}; OUT=${2:?usage: compare-outputs.sh BUILD OUTDIR}
case $BUILD in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
B=$BUILD/bin
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
W=$(mktemp -d /tmp/cmpout.XXXXXX); trap 'rm -rf "$W"' EXIT
run() {  # name cmd...   (stdout+stderr+status into $OUT/$fx.name)
	local n=$1; shift
	{ "$@" 2>&1; echo "exit $?"; } | sed "s|$W|W|g" > "$OUT/$fx.$n"
}
for d in "$TOP"/fixtures/kernel/*/; do
	fx=$(basename "$d")
	gzip -dc "$d/metadata.bin.gz" > "$W/m.bin"
	cd "$W" || exit 1
	run check "$B/thin_check" m.bin
	run check-skip "$B/thin_check" --skip-mappings m.bin
	run dump "$B/thin_dump" m.bin
	run dump-human "$B/thin_dump" -f human_readable m.bin
	run dump-m "$B/thin_dump" -m m.bin
	run dump-repair "$B/thin_dump" --repair m.bin
	run ls "$B/thin_ls" m.bin
	run ls-all "$B/thin_ls" -o DEV,MAPPED_BLOCKS,EXCLUSIVE_BLOCKS,SHARED_BLOCKS,TRANSACTION,CREATE_TIME,SNAP_TIME,HIGHEST_MAPPED m.bin
	run ls-json "$B/thin_ls" --json m.bin
	run rmap "$B/thin_rmap" --region 0..100000 m.bin
	run delta01 "$B/thin_delta" --thin1 0 --thin2 1 m.bin
	run reconcile "$B/thin_reconcile" --no-space --records /dev/null m.bin
	"$B/thin_dump" m.bin > x.xml 2>/dev/null
	cp m.bin r.bin; run restore "$B/thin_restore" -i x.xml -o r.bin
	run restore-dump "$B/thin_dump" r.bin
	run restore-check "$B/thin_check" r.bin
	run restore-bytes md5sum r.bin
	truncate -s 0 p.bin; truncate -s "$(stat -c %s m.bin)" p.bin
	run repair "$B/thin_repair" -i m.bin -o p.bin
	run repair-bytes md5sum p.bin
	run pack "$B/thin_metadata_pack" -i m.bin -o m.pack
	rm -f u.bin; truncate -s "$(stat -c %s m.bin)" u.bin
	run unpack "$B/thin_metadata_unpack" -i m.pack -o u.bin
	run unpack-cmp cmp m.bin u.bin
	cd "$TOP" || exit 1
done
echo "outputs in $OUT: $(ls "$OUT" | wc -l) files"
