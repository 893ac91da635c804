# thin_metadata_pack / unpack: every used block survives byte for byte, on
# every kernel fixture and a generated pool; corruption is detected.
source "$TOP/tests/lib.sh"

blocks_equal() {  # A B : every block the space map of A uses is identical in B
	local n=0
	while read -r b; do
		cmp -s <(dd if="$1" bs=4096 skip="$b" count=1 2>/dev/null) \
			<(dd if="$2" bs=4096 skip="$b" count=1 2>/dev/null) || die "block $b differs"
		n=$((n + 1))
	done < <(python3 "$TOP/tests/used_blocks.py" "$1")
	[ "$n" -gt 0 ] || die "no used blocks listed"
	echo "$n used blocks identical"
}

for f in $(fixtures); do
	note "fixture $f"
	m=$(fixture_copy "$f")
	expect_rc 0 "$BIN/thin_metadata_pack" -i "$m" -o "$WORK/$f.pack"
	expect_rc 0 "$BIN/thin_metadata_unpack" -i "$WORK/$f.pack" -o "$WORK/$f.out"
	[ "$(stat -c %s "$m")" = "$(stat -c %s "$WORK/$f.out")" ] || die "size differs"
	blocks_equal "$m" "$WORK/$f.out"
	# every block we wrote is one the space map uses; the rest read as zeros
	thin_check -q "$WORK/$f.out" || die "reference thin_check fails on unpacked $f"
	size_used=$(( $(python3 "$TOP/tests/used_blocks.py" "$m" | wc -l) * 4096 ))
	size_pack=$(stat -c %s "$WORK/$f.pack")
	echo "$f: $size_used bytes used -> $size_pack bytes packed"
	[ "$size_pack" -lt "$size_used" ] || die "pack not smaller than the used metadata"
done

note "generated pool with snapshots: pack is >= 10x smaller than the used metadata"
"$DEVBIN/gen_pool" --origins 4 --snapshots 6 --mappings 60000 --seed 3 -o "$WORK/g.xml"
truncate -s 64M "$WORK/g.bin"
thin_restore -q -i "$WORK/g.xml" -o "$WORK/g.bin"
expect_rc 0 "$BIN/thin_metadata_pack" -q -i "$WORK/g.bin" -o "$WORK/g.pack"
[ ! -s "$WORK/err" ] || die "-q printed something"
expect_rc 0 "$BIN/thin_metadata_unpack" -q -i "$WORK/g.pack" -o "$WORK/g.out"
blocks_equal "$WORK/g.bin" "$WORK/g.out"
thin_dump "$WORK/g.out" > "$WORK/g.out.xml"
assert_same "$WORK/g.xml" "$WORK/g.out.xml"
used=$(( $(python3 "$TOP/tests/used_blocks.py" "$WORK/g.bin" | wc -l) * 4096 ))
packed=$(stat -c %s "$WORK/g.pack")
echo "generated: $used bytes used -> $packed packed ($((used / packed))x)"
[ $((used / packed)) -ge 10 ] || die "pack is less than 10x smaller"

note "refuses to overwrite metadata without -f"
expect_rc 1 "$BIN/thin_metadata_unpack" -i "$WORK/g.pack" -o "$WORK/g.out"
assert_contains "$WORK/err" "already contain metadata"
expect_rc 0 "$BIN/thin_metadata_unpack" -f -i "$WORK/g.pack" -o "$WORK/g.out"

note "corruption anywhere in the pack file is detected"
sz=$(stat -c %s "$WORK/g.pack")
for off in 3 20 45 60 $((sz / 2)) $((sz - 20)) $((sz - 3)); do
	cp "$WORK/g.pack" "$WORK/bad.pack"
	printf '\xa5' | dd of="$WORK/bad.pack" bs=1 seek="$off" conv=notrunc 2>/dev/null
	cmp -s "$WORK/g.pack" "$WORK/bad.pack" && continue
	rm -f "$WORK/bad.out"
	expect_rc 1 "$BIN/thin_metadata_unpack" -i "$WORK/bad.pack" -o "$WORK/bad.out"
	[ "$(wc -l < "$WORK/err")" -eq 1 ] || die "error is not one line"
done
head -c $((sz / 3)) "$WORK/g.pack" > "$WORK/trunc.pack"
rm -f "$WORK/bad.out"
expect_rc 1 "$BIN/thin_metadata_unpack" -i "$WORK/trunc.pack" -o "$WORK/bad.out"
assert_contains "$WORK/err" "truncated"

note "bad input and usage"
expect_rc 1 "$BIN/thin_metadata_unpack" -i "$WORK/g.xml" -o "$WORK/x.out"
assert_contains "$WORK/err" "Not a pack file"
expect_rc 1 "$BIN/thin_metadata_pack" -i "$WORK/nonexistent" -o "$WORK/x.pack"
assert_contains "$WORK/err" "Couldn't find input file"
expect_rc 1 "$BIN/thin_metadata_pack" -i "$WORK/g.xml" -o "$WORK/x.pack"
assert_contains "$WORK/err" "looks like XML"
expect_rc 2 "$BIN/thin_metadata_pack" -i "$WORK/g.bin"
expect_rc 2 "$BIN/thin_metadata_unpack" --bogus
expect_rc 0 "$BIN/thin_metadata_pack" -V
expect_rc 0 "$BIN/thin_metadata_unpack" --help
assert_contains "$WORK/out" "Usage"

note "a pool whose space map is damaged is packed whole (every non-zero block)"
m=$(fixture_copy basic)
idx=$(python3 -c "import struct,sys; print(struct.unpack_from('<Q', open(sys.argv[1],'rb').read(4096), 208)[0])" "$m")
dd if=/dev/zero of="$m" bs=4096 seek="$idx" count=1 conv=notrunc 2>/dev/null
expect_rc 0 "$BIN/thin_metadata_pack" -i "$m" -o "$WORK/d.pack"
assert_contains "$WORK/err" "unusable"
expect_rc 0 "$BIN/thin_metadata_unpack" -i "$WORK/d.pack" -o "$WORK/d.out"
cmp -s "$m" "$WORK/d.out" || die "whole-device pack is not byte-identical"
echo "pack tests passed"
