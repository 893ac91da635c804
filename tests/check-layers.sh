#!/usr/bin/env bash
# Enforces STYLE.md §1 with no exceptions: a module includes only its own
# headers, headers of lower layers and the leaves; third-party headers come
# from exactly one module; tools include only public headers.
#
#   util crc ir findings (leaves, 0) -> io, xml (1) -> block-cache refcount (2) -> tm (3)
#   -> btree (4) -> spacemap (5) -> thin (6) -> check repair names (7) -> cmd (8)
# xml (rank 1) therefore sees only the leaves (ir, util, crc, findings).
set -u
cd "$(dirname "$0")/.."
rank() {
	case $1 in
	util|crc|ir|findings) echo 0 ;; io|xml) echo 1 ;; block-cache|refcount) echo 2 ;; tm) echo 3 ;;
	btree) echo 4 ;; spacemap) echo 5 ;; thin) echo 6 ;; check|repair|names) echo 7 ;;
	cmd) echo 8 ;; *) echo unknown ;;
	esac
}
bad=0
for d in lib/*/; do
	m=$(basename "$d")
	[ "$(rank "$m")" = unknown ] && { echo "layer violation: lib/$m has no rank in tests/check-layers.sh"; bad=1; }
done
for f in lib/*/*.[ch]; do
	mod=$(basename "$(dirname "$f")")
	r=$(rank "$mod")
	while IFS= read -r inc; do
		imod=${inc%%/*}
		[ "$imod" = "$mod" ] && continue
		ir=$(rank "$imod")
		if [ "$ir" = unknown ] || [ "$ir" -gt "$r" ] || { [ "$ir" -eq "$r" ] && [ "$ir" -ne 0 ]; }; then
			echo "layer violation: $f includes $inc"; bad=1
		fi
		case $inc in *-internal.h|*_internal.h)
			echo "layer violation: $f includes another module's internal header $inc"; bad=1 ;;
		esac
	done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
done
check_third() {  # header allowed-path-regex
	local hits
	hits=$(grep -l "#include <$1" lib/*/*.[ch] tools/*.c 2>/dev/null | grep -vE "$2" || true)
	[ -z "$hits" ] || { echo "third-party header <$1> included outside $2: $hits"; bad=1; }
}
check_third libaio.h '^lib/io/io_aio.c$'
check_third expat.h '^lib/xml/'
check_third xxhash.h '^lib/util/hash.c$'
check_third zlib.h '^lib/cmd/pack'
check_third criterion/ '^$'
for t in tools/*.c; do
	while IFS= read -r inc; do
		case $inc in
		cmd/*|check/*|repair/*|names/*|thin/*|xml/*|util/*) ;;
		*) echo "layer violation: $t includes $inc (tools see only public headers)"; bad=1 ;;
		esac
		case $inc in *-internal.h|*_internal.h)
			echo "layer violation: $t includes internal header $inc"; bad=1 ;;
		esac
	done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$t")
done
[ $bad -eq 0 ] && echo "layers: ok"
exit $bad
