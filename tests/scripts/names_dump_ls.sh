#!/usr/bin/env bash
# Per-thin names in thin_ls and in the XML dump (NAMES.md §5.4, §7.1):
# default outputs stay byte-identical to 0.9.0; thin_ls --names adds only
# the NAME column; thin_dump --names carries the names as comments that
# 0.9.0's restore ignores and our thin_restore --names-table reads back;
# stale, unbound, corrupt and malformed cases.
source "$TOP/tests/lib.sh"
N=$BIN/thin_names
uuid() { dd if="$1" bs=1 skip=16 count=16 status=none; }

note "default thin_ls is 0.9.0's on every kernel fixture"
for f in $(fixtures); do
	[ "$f" = many ] && continue   # large; covered by ls_oracle/dump_oracle
	m=$(fixture_copy "$f")
	/usr/sbin/thin_check -q "$m" 2> /dev/null || continue
	"$BIN/thin_ls" "$m" > "$WORK/ours" || die "$f: thin_ls failed"
	/usr/sbin/thin_ls "$m" > "$WORK/ref"
	assert_same "$WORK/ref" "$WORK/ours"
	rm -f "$m"
done

M=$(fixture_copy snapshots)
expect_rc 0 "$N" "$M" tag
tag=$(uuid "$M")
T=$WORK/t.tmn
# dev 0: a stale entry (an earlier incarnation of id 0); 1: a name with a
# space; 2: binary; 3: backslash and quote
printf '0\tstale-name\t5\t9\n' > "$WORK/rec.tsv"
expect_rc 0 "$N" --table "$T" "$M" import "$WORK/rec.tsv"
expect_rc 0 "$N" --table "$T" "$M" set 1 --name "vm alpha"
expect_rc 0 "$N" --table "$T" "$M" set 2 --blob-hex 00ff10
expect_rc 0 "$N" --table "$T" "$M" set 3 --name 'a\b"c'

note "thin_ls: default output unchanged by the tag and the table"
"$BIN/thin_ls" "$M" > "$WORK/plain"
/usr/sbin/thin_ls "$M" > "$WORK/ref"
assert_same "$WORK/ref" "$WORK/plain"

note "thin_ls --names-table: exactly one more column, NAME"
expect_rc 0 "$BIN/thin_ls" --names-table "$T" "$M"
cp "$WORK/out" "$WORK/named"
[ "$(head -n1 "$WORK/named" | awk '{print $NF}')" = NAME ] || die "no NAME header"
# the other columns are the default output, unchanged
awk '{ $NF = ""; print }' "$WORK/named" > "$WORK/a"
awk '{ print $0 "" }' "$WORK/plain" | awk '{ $1 = $1; print $0 " " }' > "$WORK/b"
assert_same "$WORK/b" "$WORK/a"
awk 'NR > 1 { print $1, $NF }' "$WORK/named" > "$WORK/names"
printf '%s\n' '0 -' '1 vm\x20alpha' '2 hex:00ff10' '3 a\x5cb"c' > "$WORK/want"
assert_same "$WORK/want" "$WORK/names"

note "-o with NAME implies --names and places the column"
expect_rc 0 "$BIN/thin_ls" --names-table "$T" -o NAME,DEV "$M"
awk 'NR > 1 { print $2, $1 }' "$WORK/out" > "$WORK/names2"
assert_same "$WORK/want" "$WORK/names2"
[ "$(head -n1 "$WORK/out" | awk '{print $1}')" = NAME ] || die "NAME not first"

note "--json: a NAME string or null"
expect_rc 0 "$BIN/thin_ls" --names-table "$T" --json "$M"
python3 - "$WORK/out" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
got = {r["DEV"]: r["NAME"] for r in rows}
assert got == {0: None, 1: "vm alpha", 2: "hex:00ff10", 3: 'a\\b"c'}, got
assert all(list(r)[-1] == "NAME" for r in rows)
PY

note "thin_ls: no table, corrupt table, a table of another pool"
expect_rc 1 "$BIN/thin_ls" --names-table "$WORK/none.tmn" "$M"
assert_contains "$WORK/err" "no such names table"
cp "$T" "$WORK/bad.tmn"
printf 'X' | dd of="$WORK/bad.tmn" bs=1 seek=70 conv=notrunc status=none
expect_rc 1 "$BIN/thin_ls" --names-table "$WORK/bad.tmn" "$M"
assert_contains "$WORK/err" "corrupt"
O=$(fixture_copy basic)
expect_rc 0 "$N" "$O" tag
expect_rc 0 "$N" --table "$WORK/other.tmn" "$O" set 1 --name other
expect_rc 1 "$BIN/thin_ls" --names-table "$WORK/other.tmn" "$M"
assert_contains "$WORK/err" "belongs to another pool"
# default table path (no table there for this tag)
expect_rc 1 "$BIN/thin_ls" --names "$M"
assert_contains "$WORK/err" "$tag"
expect_rc 2 "$BIN/thin_ls" -o DEV,NAMEX "$M"

note "after the reference's dump/restore drops the tag: bound by fingerprint, warned"
F=$WORK/fp.bin
truncate -s 8M "$F"
/usr/sbin/thin_dump "$M" > "$WORK/m.xml"
/usr/sbin/thin_restore -i "$WORK/m.xml" -o "$F" > /dev/null
# the stale entry would break the fingerprint: a table with settled entries only
T2=$WORK/t2.tmn
expect_rc 0 "$N" --table "$T2" "$M" set 1 --name "vm alpha"
expect_rc 0 "$BIN/thin_ls" --names-table "$T2" "$F"
assert_contains "$WORK/err" "fingerprint"
assert_contains "$WORK/out" 'vm\x20alpha'

note "thin_dump: default output unchanged; --names adds only comments"
"$BIN/thin_dump" "$M" > "$WORK/plain.xml"
assert_same "$WORK/m.xml" "$WORK/plain.xml"
expect_rc 0 "$BIN/thin_dump" --names-table "$T" "$M"
cp "$WORK/out" "$WORK/named.xml"
grep -v '<!--' "$WORK/named.xml" > "$WORK/stripped.xml"
assert_same "$WORK/m.xml" "$WORK/stripped.xml"
assert_contains "$WORK/named.xml" "  <!-- thinmeta:names v1 tag=\"$tag\" blob_max=\"256\" -->"
assert_contains "$WORK/named.xml" '    <!-- thinmeta:blob dev_id="1" flags="1" hex="766d20616c706861" -->'
assert_contains "$WORK/named.xml" '    <!-- thinmeta:blob dev_id="2" flags="0" hex="00ff10" -->'
assert_not_contains "$WORK/named.xml" 'dev_id="0" flags'   # stale entry left out
[ "$(grep -c 'thinmeta:blob' "$WORK/named.xml")" = 3 ] || die "expected 3 blob comments"
expect_rc 2 "$BIN/thin_dump" --names-table "$T" -f human_readable "$M"
expect_rc 2 "$BIN/thin_dump" --names-table "$T" --repair "$M"
expect_rc 1 "$BIN/thin_dump" --names-table "$WORK/other.tmn" "$M"

note "0.9.0's restore ignores the comments"
R=$WORK/r.bin
truncate -s 8M "$R"
/usr/sbin/thin_restore -i "$WORK/named.xml" -o "$R" > /dev/null || die "0.9.0 restore of --names dump"
/usr/sbin/thin_dump "$R" > "$WORK/r.xml"
assert_same "$WORK/m.xml" "$WORK/r.xml"
# and so does ours without --names-table
rm -f "$R"; truncate -s 8M "$R"
expect_rc 0 "$BIN/thin_restore" -i "$WORK/named.xml" -o "$R"
"$BIN/thin_dump" "$R" > "$WORK/r.xml"
assert_same "$WORK/m.xml" "$WORK/r.xml"

note "thin_restore --names-table: names back, pool tagged with the dump's tag"
rm -f "$R"; truncate -s 8M "$R"
RT=$WORK/r.tmn
expect_rc 0 "$BIN/thin_restore" -i "$WORK/named.xml" -o "$R" --names-table "$RT"
[ "$(uuid "$R")" = "$tag" ] || die "restored pool tag '$(uuid "$R")', want $tag"
expect_rc 0 /usr/sbin/thin_check "$R"
expect_rc 0 "$N" --table "$RT" "$R" list
printf '1\tpresent\tsettled\tok\tvm alpha\n2\tpresent\tsettled\tok\t00ff10\n3\tpresent\tsettled\tok\ta\\\\b"c\n' > "$WORK/want"
assert_same "$WORK/want" "$WORK/out"
expect_rc 0 "$BIN/thin_dump" --names-table "$RT" "$R"
assert_same "$WORK/named.xml" "$WORK/out"
expect_rc 0 "$N" --table "$RT" "$R" list --json
assert_contains "$WORK/out" '"generation":1'

note "again into the same table: the next generation, previous kept"
expect_rc 0 "$BIN/thin_restore" -i "$WORK/named.xml" -o "$R" --names-table "$RT"
expect_rc 0 "$N" --table "$RT" "$R" list --json
assert_contains "$WORK/out" '"generation":2'
[ -f "$RT.prev" ] || die "no .prev generation"

note "a dump without a tag: the restored pool gets a fresh one"
sed "s/tag=\"$tag\"/tag=\"\"/" "$WORK/named.xml" > "$WORK/notag.xml"
R2=$WORK/r2.bin
truncate -s 8M "$R2"
expect_rc 0 "$BIN/thin_restore" -i "$WORK/notag.xml" -o "$R2" --names-table "$WORK/r2.tmn"
t2=$(uuid "$R2")
[[ $t2 =~ ^TM[0-9A-HJKMNP-TV-Z]{14}$ ]] && [ "$t2" != "$tag" ] || die "fresh tag '$t2'"
expect_rc 0 "$N" --table "$WORK/r2.tmn" "$R2" get 1
assert_contains "$WORK/out" "vm alpha"
# an input without names: empty table, warning
R3=$WORK/r3.bin
truncate -s 8M "$R3"
expect_rc 0 "$BIN/thin_restore" -i "$WORK/m.xml" -o "$R3" --names-table "$WORK/r3.tmn"
assert_contains "$WORK/err" "no thinmeta names"
expect_rc 0 "$N" --table "$WORK/r3.tmn" "$R3" list
[ ! -s "$WORK/out" ] || die "names from nowhere"

note "malformed thinmeta comments fail the restore with a line number"
bad() {  # SED-SCRIPT EXPECTED-MESSAGE
	sed "$1" "$WORK/named.xml" > "$WORK/bad.xml"
	rm -f "$R3"; truncate -s 8M "$R3"
	expect_rc 1 "$BIN/thin_restore" -i "$WORK/bad.xml" -o "$R3" --names-table "$WORK/bad2.tmn"
	assert_contains "$WORK/err" "$2"
	grep -qE 'bad.xml:[0-9]+:' "$WORK/err" || die "no line number: $(cat "$WORK/err")"
	[ ! -e "$WORK/bad2.tmn" ] || die "a table was written from bad input"
	# without --names-table the same input restores (comments ignored)
	rm -f "$R3"; truncate -s 8M "$R3"
	expect_rc 0 "$BIN/thin_restore" -i "$WORK/bad.xml" -o "$R3"
}
bad 's/hex="00ff10"/hex="00ff1"/' "odd number of hex digits"
bad 's/hex="00ff10"/hex="00fg10"/' "bad hex digit"
bad 's/dev_id="2" flags="0"/dev_id="3" flags="0"/' "inside device 2"
bad 's/dev_id="2" flags="0"/dev_id="2" flags="8"/' "malformed thinmeta:blob"
bad 's/blob_max="256"/blob_max="2"/' "longer than blob_max"
bad 's/names v1/names v2/' "version"
bad 's/thinmeta:names v1/thinmeta:other v1/' "unknown thinmeta comment"
bad '0,/<device/s//<!-- thinmeta:blob dev_id="0" flags="0" hex="00" -->\n&/' "outside a <device>"

note "a multi-line comment holding mapping lines is a comment"
awk '/<device dev_id="1"/ { print; print "    <!-- commented out:"; print "    <range_mapping origin_begin=\"900\" data_begin=\"900\" length=\"4\" time=\"0\"/>"; print "    <single_mapping origin_block=\"950\" data_block=\"950\" time=\"0\"/>"; print "    -->"; next } { print }' "$WORK/m.xml" > "$WORK/mc.xml"
rm -f "$R3"; truncate -s 8M "$R3"
expect_rc 0 "$BIN/thin_restore" -i "$WORK/mc.xml" -o "$R3"
"$BIN/thin_dump" "$R3" > "$WORK/mc-back.xml"
assert_same "$WORK/m.xml" "$WORK/mc-back.xml"
echo "names dump/ls: ok"
