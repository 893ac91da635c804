#!/usr/bin/env bash
# The pool tag through our writers: thin_format --tag writes one and a
# reformat keeps it; our thin_restore keeps the tag of the pool it
# replaces; a uuid="TM..." attribute is restored as raw bytes by both 0.9.0
# and us; 0.9.0's check accepts the tag and its dump output is unchanged;
# 1.1.0 accepts it but its dump and restore drop it.
source "$TOP/tests/lib.sh"
need_ref0
need_ref1
need_ref0
need_ref1
N=$BIN/thin_names
uuid() { dd if="$1" bs=1 skip=16 count=16 status=none; }
M=$WORK/m.bin
truncate -s 4M "$M"

note "thin_format --tag, then a reformat keeps it"
expect_rc 0 "$BIN/thin_format" --nr-data-blocks 100 --tag "$M"
tag=$(uuid "$M")
[[ $tag =~ ^TM[0-9A-HJKMNP-TV-Z]{14}$ ]] || die "no tag after --tag: '$tag'"
expect_rc 0 "$BIN/thin_format" --nr-data-blocks 200 --force "$M"
[ "$(uuid "$M")" = "$tag" ] || die "reformat dropped the tag"
expect_rc 0 /usr/sbin/thin_check "$M"
expect_rc 2 "$BIN/thin_format" --nr-data-blocks 100 --tag=TMbad "$M"

note "thin_format without --tag on a fresh file: no tag"
F=$WORK/fresh.bin
truncate -s 4M "$F"
expect_rc 0 "$BIN/thin_format" --nr-data-blocks 100 "$F"
[ "$(od -An -tx1 -j16 -N16 "$F" | tr -d ' \n')" = 00000000000000000000000000000000 ] || die "untagged format"

note "our thin_restore keeps the tag of the pool it replaces"
gzip -dc "$FIXTURES/snapshots/metadata.bin.gz" > "$WORK/s.bin"
/usr/sbin/thin_dump "$WORK/s.bin" > "$WORK/s.xml"
expect_rc 0 "$BIN/thin_restore" -i "$WORK/s.xml" -o "$M"
[ "$(uuid "$M")" = "$tag" ] || die "restore dropped the tag"
/usr/sbin/thin_dump "$M" > "$WORK/back.xml"
assert_same "$WORK/s.xml" "$WORK/back.xml"
expect_rc 0 /usr/sbin/thin_check "$M"
# the reference's restore drops it
/usr/sbin/thin_restore -i "$WORK/s.xml" -o "$M" > /dev/null
[ "$(od -An -tx1 -j16 -N16 "$M" | tr -d ' \n')" = 00000000000000000000000000000000 ] ||
	die "0.9.0 restore kept the uuid?"

note "uuid=\"TM...\" in the XML: both restores keep the bytes"
sed "s/uuid=\"\"/uuid=\"$tag\"/" "$WORK/s.xml" > "$WORK/tagged.xml"
/usr/sbin/thin_restore -i "$WORK/tagged.xml" -o "$M" > /dev/null
[ "$(uuid "$M")" = "$tag" ] || die "0.9.0 restore of uuid attribute"
truncate -s 0 "$M"; truncate -s 4M "$M"
expect_rc 0 "$BIN/thin_restore" -i "$WORK/tagged.xml" -o "$M"
[ "$(uuid "$M")" = "$tag" ] || die "our restore of uuid attribute"
# 1.1.0 accepts the tag but carries it nowhere: its dump says uuid="",
# its restore writes zeros (docs/reference-1x.md; thin_names rebind)
expect_rc 0 "$REF1/thin_check" "$M"
expect_rc 0 "$REF1/thin_dump" "$M"
assert_contains "$WORK/out" '<superblock uuid="" '
cp "$M" "$WORK/tagged.bin"
truncate -s 0 "$M"; truncate -s 4M "$M"
expect_rc 0 "$REF1/thin_restore" -i "$WORK/tagged.xml" -o "$M"
[ "$(od -An -tx1 -j16 -N16 "$M" | tr -d ' \n')" = 00000000000000000000000000000000 ] ||
	die "1.1.0 restore kept the uuid?"
cp "$WORK/tagged.bin" "$M"
expect_rc 0 "$N" "$M" tag
[ "$(cat "$WORK/out")" = "$tag" ] || die "thin_names tag"
echo "names tag: ok"
