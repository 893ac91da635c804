# The XML fast path takes a canonical mapping line only when the parser
# state proves it is element content of a <device> or <def> (issue 16,
# point 5).  A line in exact thin_dump form inside a CDATA section, a
# processing instruction, a comment, or another element's open tag is
# left to expat; so are their neighbours, one variant at a time.  For
# every case the fast path's events and result equal expat's alone
# (tests/tools/xml_events), the restore outcome is the expected one, and
# the neighbours that are plain content still take the fast path.
source "$TOP/tests/lib.sh"
EV=$DEVBIN/xml_events
[ -x "$EV" ] || die "xml_events not built"
truncate -s 8M "$WORK/out.bin"

# case NAME FAST RC MAPPINGS BODY : BODY goes inside <device>; FAST = the
# lines the fast path must take, RC/MAPPINGS = thin_restore's status and the
# number of mappings in its output (- when it fails)
n=0
case_() {
	local name=$1 fast=$2 rc=$3 maps=$4 body=$5 f=$WORK/$1.xml
	n=$((n + 1))
	{
		echo '<superblock uuid="" time="1" transaction="1" flags="0" version="2" data_block_size="128" nr_data_blocks="100">'
		echo '  <device dev_id="1" mapped_blocks="3" transaction="0" creation_time="0" snap_time="0">'
		printf '%b\n' "$body"
		echo '  </device>'
		echo '</superblock>'
	} > "$f"
	"$EV" "$f" > "$WORK/ev" 2> "$WORK/everr" || { cat "$WORK/everr"; die "$name: the fast path and expat disagree"; }
	grep -qx "fast: $fast" "$WORK/ev" || { cat "$WORK/ev"; die "$name: expected $fast fast-path lines"; }
	expect_rc "$rc" "$BIN/thin_restore" -i "$f" -o "$WORK/out.bin"
	if [ "$rc" = 0 ]; then
		got=$("$BIN/thin_dump" "$WORK/out.bin" | grep -c '_mapping' || true)
		[ "$got" = "$maps" ] || die "$name: $got mapping lines in the dump, expected $maps"
	fi
	note "$name: ok (fast $fast, exit $rc)"
}
M='    <single_mapping origin_block="5" data_block="7" time="0"/>'
R='    <range_mapping origin_begin="10" data_begin="20" length="3" time="0"/>'

# the three holes, and their neighbours
case_ cdata            0 1 - "<![CDATA[\n$M\n]]>"
case_ cdata_range      0 1 - "<![CDATA[\n$R\n]]>"
case_ cdata_same_line  0 1 - "<![CDATA[ x\n$M\n]]>"
case_ cdata_closed     1 0 1 "<![CDATA[ ]]>\n$M"
case_ cdata_between    2 0 2 "$M\n<![CDATA[\n]]>\n$R"
case_ pi               0 0 0 "<?pi\n$M\n?>"
case_ pi_range         0 0 0 "<?pi\n$R\n?>"
case_ pi_closed        1 0 1 "<?pi x?>\n$M"
case_ pi_two_lines     1 0 1 "<?pi\n?>\n$M"
case_ ref_open_tag     0 1 - "<ref name=\"x\"\n$M\n/>"
case_ range_open_tag   0 1 - "<range_mapping origin_begin=\"0\" data_begin=\"0\" length=\"1\"\n$M\ntime=\"0\"/>"
case_ single_open_tag  0 1 - "<single_mapping origin_block=\"0\"\n$M\ndata_block=\"0\" time=\"0\"/>"
case_ open_tag_then    1 0 2 "<single_mapping origin_block=\"0\"\n data_block=\"0\" time=\"0\"/>\n$M"
case_ inside_element   0 1 - "<single_mapping origin_block=\"0\" data_block=\"0\" time=\"0\">\n$M\n</single_mapping>"
case_ comment          0 0 0 "<!--\n$M\n-->"
case_ comment_closed   1 0 1 "<!-- x -->\n$M"
case_ comment_cdata    0 1 - "<!-- <![CDATA[ -->\n<![CDATA[\n$M\n]]>"
case_ plain            2 0 2 "$M\n$R"
case_ crlf             1 0 1 "$M\r"
case_ extra_space      0 0 1 "    <single_mapping  origin_block=\"5\" data_block=\"7\" time=\"0\"/>"
case_ after_text       0 1 - "x\n$M"
case_ after_entity     1 0 1 "&#32;\n$M"

note "a mapping line in an attribute value, the DOCTYPE, or after </superblock>"
f=$WORK/doctype.xml
{ echo '<!DOCTYPE superblock ['; echo "$M"; echo ']>'; cat "$WORK/plain.xml"; } > "$f"
"$EV" "$f" > "$WORK/ev" || die "doctype: disagree"
expect_rc 1 "$BIN/thin_restore" -i "$f" -o "$WORK/out.bin"
f=$WORK/attr.xml
sed 's|<device dev_id="1"|<device dev_id="1\n'"$M"'\n"|' "$WORK/plain.xml" > "$f"
"$EV" "$f" > "$WORK/ev" || die "attribute value: disagree"
grep -qx "fast: 0" "$WORK/ev" || die "attribute value: taken by the fast path"
expect_rc 1 "$BIN/thin_restore" -i "$f" -o "$WORK/out.bin"
f=$WORK/after.xml
{ cat "$WORK/plain.xml"; echo "$M"; } > "$f"
"$EV" "$f" > "$WORK/ev" || die "after </superblock>: disagree"
expect_rc 1 "$BIN/thin_restore" -i "$f" -o "$WORK/out.bin"

note "1.1.0 rejects the three holes too"
need_ref1
for c in cdata pi ref_open_tag; do
	rc=0; "$REF1/thin_restore" -i "$WORK/$c.xml" -o "$WORK/out.bin" >/dev/null 2>&1 || rc=$?
	[ "$rc" != 0 ] || die "1.1.0 accepts $c"
done

note "a whole dump still goes through the fast path"
"$EV" "$FIXTURES/snapshots/ref-thin_dump.xml" > "$WORK/ev" || die "snapshots dump: disagree"
lines=$(grep -c '_mapping' "$FIXTURES/snapshots/ref-thin_dump.xml")
grep -qx "fast: $lines" "$WORK/ev" || { cat "$WORK/ev"; die "not every mapping line took the fast path ($lines)"; }
echo "fast-path state: $n cases and 3 documents, fast path == expat"
