#!/usr/bin/env bash
# Every tool has a man page that groff accepts without warnings and that
# mentions every long option the tool's --help prints.
set -u
BUILD=${1:-build}
cd "$(dirname "$0")/.."
bad=0
for t in tools/*.c; do
	n=$(basename "$t" .c)
	m=$BUILD/man/$n.8
	[ -f "$m" ] || { echo "missing man page man/$n.8"; bad=1; continue; }
	w=$(groff -man -ww -z "$m" 2>&1)
	[ -z "$w" ] || { echo "groff warnings in $m: $w"; bad=1; }
	for o in $("$BUILD/bin/$n" --help 2>/dev/null | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u); do
		grep -qF -- "$(echo "$o" | sed 's/-/\\-/g')" "$m" || grep -qF -- "$o" "$m" ||
			{ echo "man/$n.8 does not document $o"; bad=1; }
	done
done
[ $bad -eq 0 ] && echo "man pages: ok"
exit $bad
