#!/usr/bin/env bash
# thin_ls on every kernel fixture: the output and exit status recorded
# from 0.9.0 beside it (ref-thin_ls*.txt, first line "$ command", last
# line "exit code: N") must be reproduced byte for byte.
source "$TOP/tests/lib.sh"
n=0
for ref in "$FIXTURES"/*/ref-thin_ls*.txt; do
	[ -f "$ref" ] || continue
	fx=$(basename "$(dirname "$ref")")
	cmd=$(head -n 1 "$ref")
	[[ $cmd == '$ thin_ls '* ]] || die "$ref: unexpected first line '$cmd'"
	read -r -a args <<< "${cmd#'$ thin_ls '}"
	md=$(fixture_copy "$fx")
	for i in "${!args[@]}"; do [ "${args[$i]}" = metadata.bin ] && args[$i]=$md; done
	want_rc=$(tail -n 1 "$ref" | sed -n 's/^exit code: \([0-9]*\)$/\1/p')
	[ -n "$want_rc" ] || die "$ref: no exit code line"
	sed '1d;$d' "$ref" > "$WORK/want"
	expect_rc "$want_rc" "$BIN/thin_ls" "${args[@]}"
	assert_same "$WORK/want" "$WORK/out"
	n=$((n + 1))
	note "$fx $(basename "$ref"): same"
done
[ $n -gt 0 ] || die "no ref-thin_ls outputs found under $FIXTURES"
echo "$n reference outputs reproduced"
