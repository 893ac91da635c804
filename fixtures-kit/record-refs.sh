#!/bin/bash
# Run the reference thin-provisioning-tools on one fixture's metadata and
# store their outputs beside it.  run-scenario.sh calls this for every new
# fixture; run it by hand to add a tool version to an existing fixture.
#
# Usage: record-refs.sh FIXTURE_DIR [SET...]
#   SET  ref   0.9.0 from $TPT0_DIR (default /usr/sbin)  -> ref-*
#        ref1  1.1.0 from $TPT1_DIR (default: the project's
#              build/ref-1.x/usr/sbin, which `make deps` fills) -> ref1-*
#   default: both.
# The fixture directory must hold metadata.bin (or metadata.bin.gz) and
# scenario.sh (its "# @delta A:B" lines choose the thin_delta pairs);
# dmsetup-status.txt, when it shows a held metadata root, adds the -m outputs.
# Every output starts with (or its .rc holds) "$ TOOL ARGS", the tool named
# without its directory and the image as the relative name metadata.bin, and
# ends with "exit code: N".  Outputs over 1 MiB are stored gzip -9'ed.
set -euo pipefail
KIT=$(cd "$(dirname "$0")" && pwd)
FX=${1:?usage: record-refs.sh FIXTURE_DIR [ref|ref1...]}
shift
[ $# -gt 0 ] || set -- ref ref1
TPT0_DIR=${TPT0_DIR:-/usr/sbin}
TPT1_DIR=${TPT1_DIR:-$KIT/../build/ref-1.x/usr/sbin}
cd "$FX"
tmpimg=no
if [ ! -f metadata.bin ]; then
	[ -f metadata.bin.gz ] || { echo "record-refs: no metadata.bin(.gz) in $FX" >&2; exit 1; }
	gzip -dc metadata.bin.gz > metadata.bin; tmpimg=yes
fi
DELTAS=$(sed -n 's/^# @delta //p' scenario.sh 2>/dev/null || true)
NRDATA=$(od -An -tu8 -j64 -N8 metadata.bin | tr -d ' ')   # data space map nr_blocks

# refs PREFIX DIR
refs() {
	local P=$1 D=$2 rc f
	[ -x "$D/thin_check" ] || { echo "record-refs: no thin_check in $D (set TPT0_DIR / TPT1_DIR)" >&2; exit 1; }
	rm -f "$P"-*
	# ref OUT TOOL ARGS..: stdout+stderr and exit code in OUT
	ref() {
		local out=$1 tool=$2; shift 2
		{ echo "\$ $tool $*"; "$D/$tool" "$@" 2>&1; echo "exit code: $?"; } > "$out" || true
	}
	# refraw OUT TOOL ARGS..: stdout only in OUT, stderr and exit code in OUT.rc
	refraw() {
		local out=$1 tool=$2 r=0; shift 2
		"$D/$tool" "$@" > "$out" 2> "$out.stderr" || r=$?
		{ echo "\$ $tool $*"; cat "$out.stderr"; echo "exit code: $r"; } > "$out.rc"; rm -f "$out.stderr"
	}
	echo "thin-provisioning-tools $("$D/thin_check" -V 2>&1 | head -1)" > "$P-tools-version.txt"
	ref "$P-thin_check.txt" thin_check metadata.bin
	ref "$P-thin_check-skip-mappings.txt" thin_check --skip-mappings metadata.bin
	refraw "$P-thin_dump.xml" thin_dump --format xml metadata.bin
	refraw "$P-thin_dump-human.txt" thin_dump --format human_readable metadata.bin
	local LSF=DEV,MAPPED_BLOCKS,EXCLUSIVE_BLOCKS,SHARED_BLOCKS,MAPPED_SECTORS,EXCLUSIVE_SECTORS,SHARED_SECTORS,TRANSACTION,CREATE_TIME,SNAP_TIME
	ref "$P-thin_ls.txt" thin_ls -o "$LSF" metadata.bin
	# held metadata snapshot (if the status says one is held)
	if awk '$4=="thin-pool" && $8 ~ /^[0-9]+$/ {f=1} END {exit !f}' dmsetup-status.txt 2>/dev/null; then
		refraw "$P-thin_dump-metadata-snap.xml" thin_dump --format xml -m metadata.bin
		ref "$P-thin_ls-metadata-snap.txt" thin_ls -m -o DEV,MAPPED_BLOCKS,EXCLUSIVE_BLOCKS,SHARED_BLOCKS metadata.bin
	fi
	if [ -n "$NRDATA" ] && [ "$NRDATA" != 0 ]; then
		ref "$P-thin_rmap.txt" thin_rmap --region "0..$NRDATA" metadata.bin
	fi
	for d in $DELTAS; do
		ref "$P-thin_delta-${d%%:*}-${d##*:}.txt" thin_delta --snap1 "${d%%:*}" --snap2 "${d##*:}" --verbose metadata.bin
	done
	rc=$(sed -n 's/^exit code: //p' "$P-thin_check.txt")
	# damaged metadata: also record what the reference repair path produces
	if [ "$rc" != 0 ]; then
		refraw "$P-thin_dump-repair.xml" thin_dump --repair --format xml metadata.bin
		truncate -s "$(stat -c %s metadata.bin)" repaired.bin
		ref "$P-thin_repair.txt" thin_repair -i metadata.bin -o repaired.bin
		ref "$P-thin_repair-then-check.txt" thin_check repaired.bin
		refraw "$P-thin_repair-then-dump.xml" thin_dump --format xml repaired.bin
		rm -f repaired.bin
	fi
	# keep big reference outputs compressed
	for f in "$P"-*; do
		case $f in *.gz) continue ;; esac
		if [ "$(stat -c %s "$f")" -gt 1048576 ]; then gzip -9 -n -f "$f"; fi
	done
	echo "record-refs: $FX: $P-* from $("$D/thin_check" -V 2>&1 | head -1) (thin_check exit $rc)"
}
for s in "$@"; do
	case $s in
	ref)  refs ref "$TPT0_DIR" ;;
	ref1) refs ref1 "$TPT1_DIR" ;;
	*) echo "record-refs: unknown set '$s' (ref or ref1)" >&2; exit 2 ;;
	esac
done
[ $tmpimg = no ] || rm -f metadata.bin
