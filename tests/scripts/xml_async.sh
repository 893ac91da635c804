# thin_restore parses its XML in a second thread (xml_read_file_async):
# the caller must see the events, result and message of the one-thread
# reader, also when a callback fails or stops part-way (the parser has
# read ahead by then), and when the document is malformed after or
# before that point (tests/tools/xml_events compares the readers).
source "$TOP/tests/lib.sh"
EV=$DEVBIN/xml_events
[ -x "$EV" ] || die "xml_events not built"

"$DEVBIN/gen_pool" --origins 2 --snapshots 3 --mappings 30000 --seed 5 -o "$WORK/g.xml" > /dev/null
"$EV" "$WORK/g.xml" > "$WORK/ev" 2> "$WORK/everr" || { cat "$WORK/everr"; die "readers disagree on g.xml"; }
n=$(sed -n 's/^same: \([0-9]*\) events$/\1/p' "$WORK/ev")
n=$((n - 1))   # the count includes the result line
[ "$n" -gt 5000 ] || die "expected more than two batches of events, got '$n'"
note "$n events, the same from both readers"

# a callback failing or stopping at the first event, around the batch
# boundaries (2048 events a batch), in the middle, at the end and past it
for at in 1 2 2047 2048 2049 4096 4097 $((n / 2)) $((n - 1)) $n $((n + 1)); do
	"$EV" --fail-at "$at" "$WORK/g.xml" > "$WORK/ev" 2> "$WORK/everr" ||
		{ cat "$WORK/everr"; die "fail at $at: readers disagree"; }
	if [ "$at" -le "$n" ]; then
		assert_contains "$WORK/ev" ": callback $at fails"
	else
		assert_contains "$WORK/ev" "result: 0"
	fi
	"$EV" --stop-at "$at" "$WORK/g.xml" > "$WORK/ev" 2> "$WORK/everr" ||
		{ cat "$WORK/everr"; die "stop at $at: readers disagree"; }
	assert_contains "$WORK/ev" "result: 0"
done
note "failing and stopping callbacks: same events and messages"

# malformed at line 4500: a callback failing before it wins, after it the
# parser's error is the result
lines=$(wc -l < "$WORK/g.xml")
[ "$lines" -gt 5000 ] || die "g.xml has only $lines lines"
sed '4500s|/>|>|' "$WORK/g.xml" > "$WORK/bad.xml"
"$EV" "$WORK/bad.xml" > "$WORK/ev" 2> "$WORK/everr" || { cat "$WORK/everr"; die "readers disagree on bad.xml"; }
"$EV" --print "$WORK/bad.xml" > "$WORK/ev"
assert_contains "$WORK/ev" "result: -22 $WORK/bad.xml:4501:"
for at in 100 2049 4000; do
	"$EV" --fail-at "$at" "$WORK/bad.xml" > "$WORK/ev" 2> "$WORK/everr" ||
		{ cat "$WORK/everr"; die "bad.xml, fail at $at: readers disagree"; }
	assert_contains "$WORK/ev" ": callback $at fails"
done
"$EV" --fail-at 5000 "$WORK/bad.xml" > "$WORK/ev" 2> "$WORK/everr" ||
	{ cat "$WORK/everr"; die "bad.xml, late failure: readers disagree"; }
assert_not_contains "$WORK/ev" "callback"
assert_contains "$WORK/ev" "result: -22 $WORK/bad.xml:4501:"
note "a malformed document: the earlier of the two errors"

# the other events: a uuid, defs, refs, comments (one longer than a
# batch's first string buffer), mapping lines expat decodes
long=$(head -c 20000 /dev/zero | tr '\0' 'x')
{
	echo '<superblock uuid="0123456789abcdef" time="1" transaction="1" data_block_size="128" nr_data_blocks="100">'
	echo "  <!-- $long -->"
	echo '  <def name="a">'
	echo '    <single_mapping origin_block="5" data_block="7" time="0"/>'
	echo "    <range_mapping time='0' origin_begin='10' data_begin='20' length='3'/>"
	echo '  </def>'
	echo '  <device dev_id="1" mapped_blocks="4" transaction="2" creation_time="3" snap_time="4">'
	echo '    <ref name="a"/> <!-- c -->'
	echo '  </device>'
	echo '</superblock>'
} > "$WORK/def.xml"
"$EV" "$WORK/def.xml" > "$WORK/ev" 2> "$WORK/everr" || { cat "$WORK/everr"; die "readers disagree on def.xml"; }
for at in 1 2 3 4 5 6 7 8 9 10 11; do
	"$EV" --fail-at "$at" "$WORK/def.xml" > "$WORK/ev" 2> "$WORK/everr" ||
		{ cat "$WORK/everr"; die "def.xml, fail at $at: readers disagree"; }
done
"$EV" --print "$WORK/def.xml" > "$WORK/ev"
assert_contains "$WORK/ev" "superblock uuid=0123456789abcdef time=1"
assert_contains "$WORK/ev" "comment 20002"
assert_contains "$WORK/ev" "ref a"

# and thin_restore through it: a consumer's error carries its line
truncate -s 16M "$WORK/out.bin"
at=$(awk 'NR > 3000 && /<single_mapping/ { print NR; exit }' "$WORK/g.xml")
[ -n "$at" ] || die "no single mapping after line 3000"
sed "${at}s|origin_block=\"[0-9]*\"|origin_block=\"0\"|" "$WORK/g.xml" > "$WORK/order.xml"
expect_rc 1 "$BIN/thin_restore" -i "$WORK/order.xml" -o "$WORK/out.bin"
assert_contains "$WORK/err" "order.xml:$at: mappings out of order"
echo "two-thread reader tests passed"
