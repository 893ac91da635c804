# thin_metadata_pack / unpack never destroy an input or a target by
# mistake: the same file as input and output (also through a symlink or a
# hard link), metadata or other data on the output without -f, a target
# that would be resized; a bad or incomplete pack is refused before the
# target is touched (also 1.1.0's packs of odd-sized inputs, which can miss
# blocks); killed at any write, unpack leaves the old metadata, the new, or
# (only when the new blocks overlap the old ones) no superblock at all;
# FIFOs without a peer time out; scans are bounded and skip holes; error
# messages name the file at fault.
source "$TOP/tests/lib.sh"
need_ref1
PV3="python3 $TOP/tests/pack_v3.py"
GEN=${GEN:-$DEVBIN/gen_pool}
PACK=$BIN/thin_metadata_pack
UNPACK=$BIN/thin_metadata_unpack
command -v strace >/dev/null || die "strace not installed (make deps)"
# LeakSanitizer cannot run under ptrace (make asan)
STRACE="env ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 strace"

m=$(fixture_copy snapshots)
expect_rc 0 "$PACK" -i "$m" -o "$WORK/s.pack"
cp "$m" "$WORK/orig.bin"
cp "$WORK/s.pack" "$WORK/orig.pack"
unchanged() { assert_same "$WORK/orig.bin" "$m"; assert_same "$WORK/orig.pack" "$WORK/s.pack"; }

note "input and output the same file: refused, nothing changed"
ln -s "$m" "$WORK/link.bin"
ln "$m" "$WORK/hard.bin"
ln -s "$WORK/s.pack" "$WORK/link.pack"
for o in "$m" "$WORK/link.bin" "$WORK/hard.bin"; do
	for f in "" -f; do
		expect_rc 1 "$PACK" $f -i "$m" -o "$o"
		assert_contains "$WORK/err" "the same file"
		expect_rc 1 "$PACK" $f -i "$o" -o "$m"
		assert_contains "$WORK/err" "the same file"
	done
done
for o in "$WORK/s.pack" "$WORK/link.pack"; do
	expect_rc 1 "$UNPACK" -f -i "$WORK/s.pack" -o "$o"
	assert_contains "$WORK/err" "the same file"
done
unchanged

note "pack: an output holding metadata needs -f (as in 1.1.0)"
cp "$m" "$WORK/other.bin"
expect_rc 1 "$PACK" -i "$m" -o "$WORK/other.bin"
assert_contains "$WORK/err" "'$WORK/other.bin' appears to hold thin metadata; use -f"
assert_same "$WORK/orig.bin" "$WORK/other.bin"
expect_rc 0 "$PACK" -f -i "$m" -o "$WORK/other.bin"
assert_same "$WORK/s.pack" "$WORK/other.bin"
# an existing pack (or other file) is simply replaced
expect_rc 0 "$PACK" -i "$m" -o "$WORK/other.bin"

note "unpack: metadata, other data and resizing need -f"
cp "$m" "$WORK/t.bin"
expect_rc 1 "$UNPACK" -i "$WORK/s.pack" -o "$WORK/t.bin"
assert_contains "$WORK/err" "already holds thin metadata; use -f"
printf x > "$WORK/one"
expect_rc 1 "$UNPACK" -i "$WORK/s.pack" -o "$WORK/one"
assert_contains "$WORK/err" "not empty and holds no thin metadata (unpacking would resize it)"
[ "$(cat "$WORK/one")" = x ] || die "1-byte target changed"
truncate -s 1T "$WORK/tera"
expect_rc 1 "$UNPACK" -i "$WORK/s.pack" -o "$WORK/tera"
assert_contains "$WORK/err" "would resize it"
[ "$(stat -c %s "$WORK/tera")" = $((1 << 40)) ] || die "1 TiB target resized"
expect_rc 0 "$UNPACK" -f -i "$WORK/s.pack" -o "$WORK/tera"
[ "$(stat -c %s "$WORK/tera")" = "$(stat -c %s "$m")" ] || die "-f did not size the target"
expect_rc 0 "$UNPACK" -f -i "$WORK/s.pack" -o "$WORK/one"
"$BIN/thin_dump" "$m" > "$WORK/want.xml"
for t in tera one; do
	"$BIN/thin_dump" "$WORK/$t" > "$WORK/got.xml"; assert_same "$WORK/want.xml" "$WORK/got.xml"
done
# data of the right size that is not metadata: -f too
head -c "$(stat -c %s "$m")" /dev/urandom > "$WORK/junk"
expect_rc 1 "$UNPACK" -i "$WORK/s.pack" -o "$WORK/junk"
assert_contains "$WORK/err" "not empty and holds no thin metadata; use -f"
# a blank file of the right size (sparse or written zeros) is fine
truncate -s "$(stat -c %s "$m")" "$WORK/blank1"
head -c "$(stat -c %s "$m")" /dev/zero > "$WORK/blank2"
for t in blank1 blank2; do
	expect_rc 0 "$UNPACK" -i "$WORK/s.pack" -o "$WORK/$t"
	"$BIN/thin_dump" "$WORK/$t" > "$WORK/got.xml"; assert_same "$WORK/want.xml" "$WORK/got.xml"
done
# with -f over metadata: the result is exactly a fresh unpack (stale blocks dropped)
rm -f "$WORK/fresh"
expect_rc 0 "$UNPACK" -i "$WORK/s.pack" -o "$WORK/fresh"
cp "$(fixture_copy basic)" "$WORK/over"
expect_rc 0 "$UNPACK" -f -i "$WORK/s.pack" -o "$WORK/over"
assert_same "$WORK/fresh" "$WORK/over"

note "a bad pack never touches the target (even with -f)"
cp "$(fixture_copy basic)" "$WORK/target"
cp "$WORK/target" "$WORK/target.orig"
bad() {  # pack expected-message
	expect_rc 1 "$UNPACK" -f -i "$1" -o "$WORK/target"
	assert_contains "$WORK/err" "$2"
	[ "$(wc -l < "$WORK/err")" = 1 ] || die "error is not one line"
	assert_same "$WORK/target.orig" "$WORK/target"
	rm -f "$WORK/new"
	expect_rc 1 "$UNPACK" -i "$1" -o "$WORK/new"
	[ ! -e "$WORK/new" ] || die "a bad pack created its output"
}
sz=$(stat -c %s "$WORK/s.pack")
head -c $((sz - 7)) "$WORK/s.pack" > "$WORK/trunc.pack"
bad "$WORK/trunc.pack" "truncated pack file"
head -c 31 "$WORK/s.pack" > "$WORK/short.pack"
bad "$WORK/short.pack" "Not a pack file"
cp "$WORK/s.pack" "$WORK/flip.pack"
printf '\xa5' | dd of="$WORK/flip.pack" bs=1 seek=$((sz / 2)) conv=notrunc 2>/dev/null
bad "$WORK/flip.pack" "corrupt"
{ cat "$WORK/s.pack"; printf 'garbage!'; } > "$WORK/tail.pack"
bad "$WORK/tail.pack" "truncated pack file"
$PV3 build "$m" "$WORK/csum.pack" --bad-csum 0
bad "$WORK/csum.pack" "block 0 fails its checksum"
$PV3 build "$m" "$WORK/dup.pack" --dup 3
bad "$WORK/dup.pack" "block 3 is in the pack twice"
$PV3 build "$m" "$WORK/beyond.pack" --beyond
bad "$WORK/beyond.pack" "block 2048 is beyond the packed device (2048 blocks)"
bad "$m" "Not a pack file"
bad "$FIXTURES/snapshots/ref-thin_dump.xml" "Not a pack file"
# a pack made by the python writer (literal blocks, 7 per chunk) is fine
$PV3 build "$m" "$WORK/lit.pack" --per-chunk 7
rm -f "$WORK/lit.out"
expect_rc 0 "$UNPACK" -i "$WORK/lit.pack" -o "$WORK/lit.out"
"$BIN/thin_dump" "$WORK/lit.out" > "$WORK/got.xml"; assert_same "$WORK/want.xml" "$WORK/got.xml"

note "an incomplete pack is refused, naming what is missing"
used=$(python3 "$TOP/tests/used_blocks.py" "$m" | tr '\n' ' ')
set -- $used
RC=$("$DEVBIN/thin_damage" --info "$m" | sed -n 's/^data_ref_count_root=//p')
DR=$("$DEVBIN/thin_damage" --info "$m" | sed -n 's/^device_details_root=//p')
[ $((RC + 1)) = "$DR" ] && [ "$4" -lt "$RC" ] || die "unexpected fixture layout"
$PV3 build "$m" "$WORK/miss.pack" --drop "$3,$4,$RC,$DR"
bad "$WORK/miss.pack" "incomplete pack: 4 blocks the metadata uses are not in it ($3, $4, $RC-$DR)"
MB=$("$DEVBIN/thin_damage" --info "$m" | sed -n 's/^metadata_bitmap_root=//p')
$PV3 build "$m" "$WORK/miss2.pack" --drop "$MB"
bad "$WORK/miss2.pack" "1 block the metadata uses is not in it ($MB; the metadata space map index is not in the pack, so others may be missing too)"
$PV3 build "$m" "$WORK/nosb.pack" --drop 0
bad "$WORK/nosb.pack" "the superblock (block 0) is not in it"
head -c 32 "$WORK/s.pack" > "$WORK/empty.pack"   # what 1.1.0 sometimes writes
bad "$WORK/empty.pack" "empty pack: it holds no block at all"
rm -f "$WORK/new"
expect_rc 0 "$UNPACK" --allow-missing -i "$WORK/miss.pack" -o "$WORK/new"
assert_contains "$WORK/err" "warning: incomplete pack: 4 blocks the metadata uses ($3, $4, $RC-$DR) read as zeros"
expect_rc 1 "$BIN/thin_check" "$WORK/new"

note "1.1.0's packs of odd-sized inputs: complete ones unpack, incomplete ones are refused"
cp "$m" "$WORK/odd.bin"
truncate -s $((2049 * 4096)) "$WORK/odd.bin"
"$BIN/thin_dump" "$WORK/odd.bin" > "$WORK/odd.xml"
complete=0 refused=0
for i in $(seq 40); do
	"$REF1/thin_metadata_pack" -f -i "$WORK/odd.bin" -o "$WORK/odd.pack" 2>/dev/null || die "1.1.0 pack failed"
	rm -f "$WORK/odd.out"
	rc=0; "$UNPACK" -i "$WORK/odd.pack" -o "$WORK/odd.out" 2>"$WORK/err" || rc=$?
	if [ $rc = 0 ]; then
		"$BIN/thin_dump" "$WORK/odd.out" > "$WORK/got.xml"; assert_same "$WORK/odd.xml" "$WORK/got.xml"
		complete=$((complete + 1))
	else
		grep -qE "empty pack|incomplete pack" "$WORK/err" || { cat "$WORK/err"; die "unexpected error"; }
		[ ! -e "$WORK/odd.out" ] || die "incomplete pack written"
		refused=$((refused + 1))
	fi
done
note "1.1.0 on a 2049-block input: $complete complete packs, $refused incomplete (refused)"
[ $complete -gt 0 ] || die "no complete pack from 1.1.0"

note "killed at any write: old, new, or (blocks overlapping) no superblock"
$GEN --scale tiny --seed 5 --origins 2 --snapshots 3 -o "$WORK/a.xml" >/dev/null 2>&1
$GEN --scale tiny --seed 6 --origins 3 --snapshots 2 -o "$WORK/b.xml" >/dev/null 2>&1
truncate -s 32M "$WORK/A.bin"
"$BIN/thin_restore" -i "$WORK/a.xml" -o "$WORK/A.bin" >/dev/null
cp "$WORK/A.bin" "$WORK/B.bin"
# restored next to A's blocks: B's never overlap A's
"$BIN/thin_restore" -i "$WORK/b.xml" -o "$WORK/B.bin" >/dev/null
expect_rc 0 "$PACK" -i "$WORK/B.bin" -o "$WORK/B.pack"
"$BIN/thin_dump" "$WORK/A.bin" > "$WORK/A.xml"
"$BIN/thin_dump" "$WORK/B.bin" > "$WORK/B.xml"
state() {  # target -> old|new|blank|MIXED
	if "$BIN/thin_dump" "$1" > "$WORK/st.xml" 2>/dev/null; then
		if cmp -s "$WORK/st.xml" "$WORK/A.xml"; then echo old; return; fi
		if cmp -s "$WORK/st.xml" "$WORK/B.xml"; then echo new; return; fi
	elif ! python3 -c 'import sys; d = open(sys.argv[1], "rb").read(4096); sys.exit(0 if d == bytes(4096) else 1)' "$1"; then
		echo MIXED; return
	else
		echo blank; return
	fi
	echo MIXED
}
cp "$WORK/A.bin" "$WORK/k.bin"
expect_rc 0 "$UNPACK" -f -i "$WORK/B.pack" -o "$WORK/k.bin"
assert_not_contains "$WORK/err" "invalidated"
[ "$(state "$WORK/k.bin")" = new ] || die "unpack did not give the new metadata"
$STRACE -f -qq -c -U calls,name -e trace=pwrite64 -o "$WORK/calls" \
	"$UNPACK" -f -q -i "$WORK/B.pack" -o "$WORK/k.bin" || die "strace failed"
nw=$(awk '$2 == "pwrite64" { print $1 }' "$WORK/calls")
[ -n "$nw" ] && [ "$nw" -gt 2 ] || die "cannot count the writes ($nw)"
for overlap in 0 1; do
	if [ $overlap = 0 ]; then base=$WORK/A.bin; else base=$WORK/B.bin; fi
	seen=
	for k in $(seq 1 $((nw + 1))) fsync1 fsync2; do
		cp "$base" "$WORK/k.bin"
		case $k in
		fsync*) inj="-e inject=fsync:signal=KILL:when=${k#fsync}" ;;
		*) inj="-e inject=pwrite64:signal=KILL:when=$k" ;;
		esac
		# shellcheck disable=SC2086
		$STRACE -f -qq -o /dev/null $inj "$UNPACK" -f -q -i "$WORK/B.pack" -o "$WORK/k.bin" 2>/dev/null || true
		s=$(state "$WORK/k.bin")
		[ $overlap = 1 ] && [ "$base" = "$WORK/B.bin" ] && [ "$s" = old ] && s=new   # old == new here
		case $s in
		old|new) ;;
		blank) [ $overlap = 1 ] || die "killed at $k: no superblock although nothing overlapped" ;;
		*) die "killed at $k (overlap $overlap): neither old nor new metadata" ;;
		esac
		seen="$seen $s"
		# an interrupted unpack can always be run again
		expect_rc 0 "$UNPACK" -f -q -i "$WORK/B.pack" -o "$WORK/k.bin"
		[ "$(state "$WORK/k.bin")" = new ] || die "rerun after a kill at $k failed"
	done
	note "overlap $overlap: states after kills:$seen"
	case $overlap$seen in 0*old*new*) ;; 1*blank*new*) ;; *) die "kills never hit the middle" ;; esac
done

note "FIFOs: no writer / no reader is an error after a bounded wait"
mkfifo "$WORK/fifo"
export THINMETA_FIFO_WAIT_MS=300
rm -f "$WORK/f.out"
expect_rc 1 timeout 20 "$UNPACK" -i "$WORK/fifo" -o "$WORK/f.out"
assert_contains "$WORK/err" "'$WORK/fifo': no writer on the FIFO after"
expect_rc 1 timeout 20 "$PACK" -i "$m" -o "$WORK/fifo"
assert_contains "$WORK/err" "'$WORK/fifo': no reader on the FIFO after"
unset THINMETA_FIFO_WAIT_MS
cat "$WORK/s.pack" > "$WORK/fifo" &
expect_rc 0 timeout 20 "$UNPACK" -i "$WORK/fifo" -o "$WORK/f.out"
wait
"$BIN/thin_dump" "$WORK/f.out" > "$WORK/got.xml"; assert_same "$WORK/want.xml" "$WORK/got.xml"
cat "$WORK/fifo" > "$WORK/f.pack" &
expect_rc 0 timeout 20 "$PACK" -i "$m" -o "$WORK/fifo"
wait
assert_same "$WORK/s.pack" "$WORK/f.pack"
rm -f "$WORK/p.out"
expect_rc 0 bash -c "cat '$WORK/s.pack' | '$UNPACK' -i /dev/stdin -o '$WORK/p.out'"
"$BIN/thin_dump" "$WORK/p.out" > "$WORK/got.xml"; assert_same "$WORK/want.xml" "$WORK/got.xml"
expect_rc 0 bash -c "'$PACK' -q -i '$m' -o /dev/stdout > '$WORK/stdout.pack'"
assert_same "$WORK/s.pack" "$WORK/stdout.pack"

note "inputs with no superblock: exit 1; --scan is bounded and skips holes"
truncate -s 16G "$WORK/zero16g"
expect_rc 1 timeout 20 "$PACK" -i "$WORK/zero16g" -o "$WORK/z.pack"
assert_contains "$WORK/err" "'$WORK/zero16g' has no valid superblock"
[ ! -e "$WORK/z.pack" ] || die "pack written for an input with no superblock"
t0=$SECONDS
expect_rc 0 timeout 20 "$PACK" --scan -i "$WORK/zero16g" -o "$WORK/z.pack"
assert_contains "$WORK/err" "packed 0 of 4194304 blocks"
truncate -s 1T "$WORK/zero1t"
cp "$m" "$WORK/far.bin"; truncate -s 1T "$WORK/far.bin"
expect_rc 0 timeout 20 "$PACK" --scan -i "$WORK/far.bin" -o "$WORK/far.pack"
[ $((SECONDS - t0)) -lt 15 ] || die "scans of sparse files took $((SECONDS - t0)) s"
$PV3 blocks "$WORK/far.pack" > "$WORK/far.list"
"$REF1/thin_metadata_pack" -i "$m" -o "$WORK/m.v3" && $PV3 blocks "$WORK/m.v3" > "$WORK/m.list"
assert_same "$WORK/m.list" "$WORK/far.list"
rm -f "$WORK/zero16g" "$WORK/zero1t" "$WORK/far.bin"
head -c 1M /dev/urandom > "$WORK/random"
expect_rc 1 "$PACK" -i "$WORK/random" -o "$WORK/z.pack"
assert_contains "$WORK/err" "has no valid superblock"
note "a damaged space map: every block with a valid checksum, with a warning"
d=$(fixture_copy basic)
idx=$(python3 -c "import struct,sys; print(struct.unpack_from('<Q', open(sys.argv[1],'rb').read(4096), 208)[0])" "$d")
dd if=/dev/zero of="$d" bs=4096 seek="$idx" count=1 conv=notrunc 2>/dev/null
expect_rc 0 "$PACK" -i "$d" -o "$WORK/d.pack"
assert_contains "$WORK/err" "warning: the metadata space map is unusable"
# the zeroed index cannot be packed (no checksum): unpack says so
rm -f "$WORK/d.out"
expect_rc 1 "$UNPACK" -i "$WORK/d.pack" -o "$WORK/d.out"
assert_contains "$WORK/err" "($idx; the metadata space map index is not in the pack, so others may be missing too)"
expect_rc 0 "$UNPACK" --allow-missing -i "$WORK/d.pack" -o "$WORK/d.out"
# ... and the unpacked copy is damaged the same way as the original
"$BIN/thin_check" "$d" > "$WORK/c1" 2>&1 || true
"$BIN/thin_check" "$WORK/d.out" > "$WORK/c2" 2>&1 || true
assert_same "$WORK/c1" "$WORK/c2"
note "used blocks with a bad checksum are left out, with a warning"
d=$(fixture_copy basic)
leaf=$("$DEVBIN/thin_damage" --dev-root 1 "$d")
"$DEVBIN/thin_damage" --flip-byte "$leaf:100" "$d" >/dev/null
expect_rc 0 "$PACK" -i "$d" -o "$WORK/d.pack"
assert_contains "$WORK/err" "warning: 1 block in use fails the checksum and is not in the pack (the first: block $leaf)"
$PV3 blocks "$WORK/d.pack" | grep -qx "$leaf" && die "damaged block packed"

note "error messages name the file at fault"
expect_rc 1 "$PACK" -i "$m" -o /dev/full
assert_contains "$WORK/err" "'/dev/full': write failed: No space left on device"
assert_not_contains "$WORK/err" "$m"
expect_rc 1 "$PACK" -i "$WORK/nonexistent" -o "$WORK/x.pack"
assert_contains "$WORK/err" "Couldn't find input file '$WORK/nonexistent'"
expect_rc 1 "$PACK" -i "$m" -o "$WORK/no/such/dir/x.pack"
assert_contains "$WORK/err" "'$WORK/no/such/dir/x.pack': cannot create"
expect_rc 1 "$UNPACK" -i "$WORK/s.pack" -o "$WORK/no/such/dir/x.bin"
assert_contains "$WORK/err" "'$WORK/no/such/dir/x.bin'"
expect_rc 1 "$UNPACK" -i "$WORK/s.pack" -o /dev/full
assert_contains "$WORK/err" "Not a block device or regular file '/dev/full'"
expect_rc 1 "$UNPACK" -i "$WORK/nonexistent" -o "$WORK/x.bin"
assert_contains "$WORK/err" "Couldn't find input file '$WORK/nonexistent'"
expect_rc 1 "$UNPACK" -i "$WORK" -o "$WORK/x.bin"
assert_contains "$WORK/err" "'$WORK' is not a pack file (a directory)"

note "usage"
expect_rc 2 "$PACK" -i "$m"
expect_rc 2 "$UNPACK" --bogus
expect_rc 2 "$PACK" --threads 0 -i "$m" -o "$WORK/x.pack"
expect_rc 2 "$PACK" -i "$m" -o "$WORK/x.pack" extra
expect_rc 0 "$PACK" -V
expect_rc 0 "$UNPACK" --help
assert_contains "$WORK/out" "Usage"

if losetup -f >/dev/null 2>&1; then
	note "block devices (loop)"
	truncate -s 8M "$WORK/loop.img"
	L=$(losetup -f --show "$WORK/loop.img")
	trap 'losetup -d "$L"' EXIT
	expect_rc 0 "$UNPACK" -i "$WORK/s.pack" -o "$L"
	"$BIN/thin_dump" "$L" > "$WORK/got.xml"; assert_same "$WORK/want.xml" "$WORK/got.xml"
	expect_rc 1 "$UNPACK" -i "$WORK/s.pack" -o "$L"
	assert_contains "$WORK/err" "already holds thin metadata"
	expect_rc 0 "$UNPACK" -f -i "$WORK/s.pack" -o "$L"
	expect_rc 0 "$PACK" -i "$L" -o "$WORK/l.pack"
	assert_same "$WORK/s.pack" "$WORK/l.pack"
	losetup -d "$L"; trap - EXIT
	truncate -s 16K "$WORK/small.img"
	L=$(losetup -f --show "$WORK/small.img")
	trap 'losetup -d "$L"' EXIT
	expect_rc 1 "$UNPACK" -i "$WORK/s.pack" -o "$L"
	assert_contains "$WORK/err" "is too small"
	losetup -d "$L"; trap - EXIT
else
	echo "## no loop devices here: block device cases not run"
fi
echo "pack guards: ok"
