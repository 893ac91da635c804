# Block devices (loop): O_DIRECT reads work, a device held open exclusively
# (as by a live pool) is refused with a clear message, and -m reads of a
# metadata snapshot still work on a busy device.
source "$TOP/tests/lib.sh"
if ! losetup -f >/dev/null 2>&1; then
	echo "##########################################################"
	echo "## SKIPPED: no loop devices here (needs root + /dev/loop*) ##"
	echo "##########################################################"
	exit 0
fi
m=$(fixture_copy held_root)
L=$(losetup -f --show "$m")
hold_pid=
W=
cleanup() { [ -n "$hold_pid" ] && kill "$hold_pid" 2>/dev/null; wait 2>/dev/null; losetup -d "$L"; [ -n "$W" ] && losetup -d "$W" 2>/dev/null; true; }
trap cleanup EXIT

expect_rc 0 "$BIN/thin_check" "$L"
assert_contains "$WORK/out" "TRANSACTION_ID=2"
expect_rc 0 "$BIN/thin_dump" "$L"
gzip -dc "$FIXTURES/held_root/metadata.bin.gz" > "$WORK/file.bin"
"$BIN/thin_dump" "$WORK/file.bin" > "$WORK/file.xml"
assert_same "$WORK/file.xml" "$WORK/out"

note "hold the device exclusively, as the kernel does for a live pool"
python3 -c 'import os,sys,time; os.open(sys.argv[1], os.O_RDONLY | os.O_EXCL); print("held", flush=True); time.sleep(60)' "$L" > "$WORK/hold" &
hold_pid=$!
for _ in $(seq 50); do grep -q held "$WORK/hold" && break; sleep 0.1; done
for t in "thin_check" "thin_dump" "thin_ls" "thin_rmap --region 0..10"; do
	# shellcheck disable=SC2086
	expect_rc 1 "$BIN/"$t "$L"
	assert_contains "$WORK/err" "busy"
done
expect_rc 1 "$BIN/thin_restore" -i "$FIXTURES/basic/ref-thin_dump.xml" -o "$L"
assert_contains "$WORK/err" "busy"
for mode in "" -n; do
	# shellcheck disable=SC2086
	expect_rc 1 "$BIN/thin_edit" $mode "$L" delete 0
	assert_contains "$WORK/err" "busy"
done
note "-m on the busy device reads the metadata snapshot (no O_EXCL)"
expect_rc 0 "$BIN/thin_dump" -m "$L"
assert_same "$FIXTURES/held_root/ref-thin_dump-metadata-snap.xml" "$WORK/out"
kill "$hold_pid" 2>/dev/null; wait 2>/dev/null; hold_pid=

note "writers on a block device (O_DIRECT, aligned buffers): restore, check --auto-repair, format, repair"
truncate -s 64M "$WORK/w.img"
W=$(losetup -f --show "$WORK/w.img")
"$DEVBIN/gen_pool" --origins 2 --snapshots 3 --mappings 20000 --seed 4 -o "$WORK/g.xml"
expect_rc 0 "$BIN/thin_restore" -i "$WORK/g.xml" -o "$W"
expect_rc 0 "$BIN/thin_dump" "$W"
assert_same "$WORK/g.xml" "$WORK/out"
expect_rc 0 "$BIN/thin_check" "$W"
losetup -d "$W"   # damage the backing file (the damage tool does plain buffered I/O)
expect_rc 0 "$DEVBIN/thin_damage" --leak metadata 3 "$WORK/w.img"
W=$(losetup -f --show "$WORK/w.img")
expect_rc 1 "$BIN/thin_check" "$W"
expect_rc 0 "$BIN/thin_check" --auto-repair "$W"
expect_rc 0 "$BIN/thin_check" "$W"
ids=$("$BIN/thin_dump" "$W" | sed -n 's/.*<device dev_id="\([0-9]*\)".*/\1/p' | head -2 | tr '\n' ' ')
set -- $ids
expect_rc 0 "$BIN/thin_edit" "$W" create_snap 900 "$1" delete "$2" reserve_metadata_snap grow_data 300000
expect_rc 0 "$BIN/thin_check" "$W"
expect_rc 0 "$BIN/thin_dump" -m "$W"
assert_contains "$WORK/out" 'dev_id="900"' 
expect_rc 1 "$BIN/thin_format" --data-block-size 128 --nr-data-blocks 1000 "$W"
expect_rc 0 "$BIN/thin_format" --force --data-block-size 128 --nr-data-blocks 1000 "$W"
expect_rc 0 "$BIN/thin_check" "$W"
expect_rc 0 "$BIN/thin_repair" -i "$m" -o "$W"
expect_rc 0 "$BIN/thin_dump" "$W"
assert_same "$WORK/file.xml" "$WORK/out"
losetup -d "$W"; W=

note "a restore writing more than 16 MiB to a block device flushes on the way (early flushes), same image as into a file"
"$DEVBIN/gen_pool" --origins 4 --snapshots 4 --mappings 4000000 --seed 7 -o "$WORK/big.xml" > /dev/null
truncate -s 256M "$WORK/big.img" "$WORK/big.file"
W=$(losetup -f --show "$WORK/big.img")
stat=/sys/block/${W#/dev/}/stat
[ "$(wc -w < "$stat")" -ge 17 ] || die "$stat has no flush count"
f0=$(awk '{ print $16 }' "$stat")
expect_rc 0 "$BIN/thin_restore" -i "$WORK/big.xml" -o "$W"
f1=$(awk '{ print $16 }' "$stat")
# the commit flushes twice; every 16 MiB written adds one (>= 48 MiB here)
used=$("$BIN/thin_check" "$W" 2>&1 | sed -n 's/^METADATA_FREE_BLOCKS=//p')
[ $((65536 - used)) -gt 12288 ] || die "only $((65536 - used)) metadata blocks used: too few for 3 early flushes"
[ $((f1 - f0)) -ge 5 ] || die "$((f1 - f0)) flushes, expected the commit's 2 and 3 early ones"
expect_rc 0 "$BIN/thin_restore" -i "$WORK/big.xml" -o "$WORK/big.file"
losetup -d "$W"; W=
cmp "$WORK/big.img" "$WORK/big.file" || die "the image on the loop device differs from the file's"
note "damaged inner nodes: the same findings on the loop device (read-ahead) as from the file"
"$DEVBIN/gen_pool" --origins 4 --snapshots 4 --mappings 2000000 --seed 11 --binary \
	-o "$WORK/ra.bin" > /dev/null
D=$DEVBIN/thin_damage
n=0
for dev in 0 3 6; do
	root=$("$D" --dev-root $dev "$WORK/ra.bin")
	kid=$("$D" --get-node-value "$root:1" "$WORK/ra.bin")   # read ahead while child 0 is walked
	[ "$("$D" --node-info "$kid" "$WORK/ra.bin" | sed -n 's/^flags=//p')" = 1 ] ||
		die "device $dev: block $kid is not an inner node (the pool's shape changed?)"
	for op in "--set-node-value $kid:2=1" "--flip-byte $kid:300" "--set-node-key $kid:3=7"; do
		n=$((n + 1))
		cp "$WORK/ra.bin" "$WORK/ra$n.bin"
		# shellcheck disable=SC2086
		"$D" $op "$WORK/ra$n.bin" > /dev/null
		"$BIN/thin_check" "$WORK/ra$n.bin" > "$WORK/ra.file" 2>&1 && die "case $n ($op) passed"
		W=$(losetup -f --show -r "$WORK/ra$n.bin")
		"$BIN/thin_check" "$W" > "$WORK/ra.dev" 2>&1 && die "case $n ($op) passed on $W"
		losetup -d "$W"; W=
		assert_same "$WORK/ra.file" "$WORK/ra.dev"
	done
done
echo "block device tests passed"
