#!/usr/bin/env bash
# Our thin_repair keeps the input's pool tag (NAMES.md §7.4), also when the
# input is damaged, and overwrites whatever tag the output carried; an
# untagged input gives an untagged output.  The reference's repair drops
# the tag (the case `thin_names rebind` exists for).
source "$TOP/tests/lib.sh"
N=$BIN/thin_names
uuid() { dd if="$1" bs=1 skip=16 count=16 status=none; }
zero_uuid() { [ "$(od -An -tx1 -j16 -N16 "$1" | tr -d ' \n')" = 00000000000000000000000000000000 ]; }

I=$WORK/in.bin
O=$WORK/out.bin
gzip -dc "$FIXTURES/snapshots/metadata.bin.gz" > "$I"
expect_rc 0 "$N" "$I" tag
tag=$(uuid "$I")
[[ $tag =~ ^TM[0-9A-HJKMNP-TV-Z]{14}$ ]] || die "no tag on the input: '$tag'"
expect_rc 0 "$N" --table "$WORK/t.tmn" "$I" set 1 --name origin

note "healthy input: the repaired pool carries the same tag"
truncate -s 8M "$O"
expect_rc 0 "$BIN/thin_repair" -i "$I" -o "$O"
[ "$(uuid "$O")" = "$tag" ] || die "repair dropped the tag: '$(uuid "$O")'"
expect_rc 0 /usr/sbin/thin_check "$O"
/usr/sbin/thin_dump "$I" > "$WORK/in.xml"
/usr/sbin/thin_dump "$O" > "$WORK/out.xml"
assert_same "$WORK/in.xml" "$WORK/out.xml"
# the side table stays bound by tag: no rebind needed
expect_rc 0 "$N" --table "$WORK/t.tmn" "$O" get 1
assert_contains "$WORK/out" origin

note "an output that carried another pool's tag gets the input's"
rm -f "$O"; truncate -s 8M "$O"
expect_rc 0 "$BIN/thin_format" --nr-data-blocks 100 --tag "$O"
other=$(uuid "$O")
[ "$other" != "$tag" ] || die "two fresh tags are equal"
expect_rc 0 "$BIN/thin_repair" -i "$I" -o "$O"
[ "$(uuid "$O")" = "$tag" ] || die "output kept its old tag '$(uuid "$O")'"

note "damaged input (a mapping leaf zeroed): the tag still survives"
D=$WORK/damaged.bin
cp "$I" "$D"
leaf=$("$DEVBIN/thin_damage" --leaf-of 1 "$D" | awk '{print $NF}' | head -n1)
[[ $leaf =~ ^[0-9]+$ ]] || die "no leaf of device 1: '$leaf'"
"$DEVBIN/thin_damage" --zero-block "$leaf" "$D" > /dev/null
expect_rc 1 /usr/sbin/thin_check -q "$D"
rm -f "$O"; truncate -s 8M "$O"
"$BIN/thin_repair" -i "$D" -o "$O" 2> /dev/null || die "repair of the damaged input failed"
[ "$(uuid "$O")" = "$tag" ] || die "repair of damaged input dropped the tag"
expect_rc 0 "$BIN/thin_check" "$O"

note "untagged input: untagged output, even over a tagged output"
U=$WORK/untagged.bin
gzip -dc "$FIXTURES/snapshots/metadata.bin.gz" > "$U"
rm -f "$O"; truncate -s 8M "$O"
expect_rc 0 "$BIN/thin_format" --nr-data-blocks 100 --tag "$O"
expect_rc 0 "$BIN/thin_repair" -i "$U" -o "$O"
zero_uuid "$O" || die "untagged input gave uuid '$(uuid "$O")'"

note "the reference's repair drops the tag (rebind territory)"
rm -f "$O"; truncate -s 8M "$O"
/usr/sbin/thin_repair -i "$I" -o "$O" > /dev/null 2>&1 || die "0.9.0 thin_repair failed"
zero_uuid "$O" || die "0.9.0 repair kept the tag?"
echo "names repair tag: ok"
