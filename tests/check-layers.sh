#!/usr/bin/env bash
# Enforces STYLE.md §1: a module includes only its own headers, lower layers
# and the leaves; third-party headers from exactly one module.
set -u
cd "$(dirname "$0")/.."
rank() {
	case $1 in
	util|crc) echo 0 ;; block-cache) echo 1 ;; tm) echo 2 ;;
	btree) echo 3 ;; spacemap) echo 4 ;; thin) echo 5 ;; xml) echo 6 ;; *) echo 9 ;;
	esac
}
bad=0
for f in lib/*/*.[ch]; do
	mod=$(basename "$(dirname "$f")")
	r=$(rank "$mod")
	while IFS= read -r inc; do
		imod=${inc%%/*}
		[ "$imod" = "$mod" ] && continue
		ir=$(rank "$imod")
		# tm sits above btree/spacemap in practice: the writer's tm uses the space map
		if [ "$mod" = tm ] && { [ "$imod" = btree ] || [ "$imod" = spacemap ]; }; then continue; fi
		# btree/spacemap writers allocate through tm
		if [ "$imod" = tm ] && { [ "$mod" = btree ] || [ "$mod" = spacemap ] || [ "$mod" = thin ]; }; then continue; fi
		if [ "$ir" -gt "$r" ] || { [ "$ir" -eq "$r" ] && [ "$ir" -ne 0 ]; }; then
			echo "layer violation: $f includes $inc"; bad=1
		fi
		# xml sees only thin/ir.h of lib/thin
		if [ "$mod" = xml ] && [ "$imod" = thin ] && [ "$inc" != thin/ir.h ]; then
			echo "layer violation: $f includes $inc (xml sees only thin/ir.h)"; bad=1
		fi
	done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
done
check_third() {  # header allowed-path-regex
	local hits
	hits=$(grep -l "#include <$1" lib/*/*.[ch] tools/*.c 2>/dev/null | grep -vE "$2" || true)
	[ -z "$hits" ] || { echo "third-party header <$1> included outside $2: $hits"; bad=1; }
}
check_third libaio.h '^lib/block-cache/io_aio.c$'
check_third expat.h '^lib/xml/'
check_third xxhash.h '^lib/util/hash.c$'
check_third zlib.h '^lib/(pack|thin/pack)'
check_third criterion/ '^$'
grep -l '#include "' tools/*.c 2>/dev/null | while read -r t; do
	sed -n 's/^#include "\([^"]*\)".*/\1/p' "$t" | grep -vE '^(thin|xml|util)/' | sed "s|^|layer violation: $t includes |"
done | grep . && bad=1
[ $bad -eq 0 ] && echo "layers: ok"
exit $bad
