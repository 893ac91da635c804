# Restoring Rust-dialect XML with <def>/<ref> onto an output that already
# holds other metadata, at every size from "far too small" to "room for
# both": the restore either succeeds (and the result checks clean and
# dumps the expanded mappings) or fails with the old metadata untouched.
# It must never invalidate the old superblock and then fail (the dry run
# that sizes the new metadata cannot read back <def> leaves).
source "$TOP/tests/lib.sh"

python3 - "$WORK/defs.xml" "$WORK/expanded.xml" <<'PY'
import sys
defs, exp = open(sys.argv[1], 'w'), open(sys.argv[2], 'w')
sb = '<superblock uuid="" time="3" transaction="9" flags="0" version="2" data_block_size="128" nr_data_blocks="200000">\n'
defs.write(sb); exp.write(sb)
shared = [(i, 1000 + 3 * i) for i in range(0, 4000)]        # 4000 single mappings
defs.write('  <def name="s">\n')
for o, d in shared:
    defs.write(f'    <single_mapping origin_block="{o}" data_block="{d}" time="1"/>\n')
defs.write('  </def>\n')
for dev in range(6):
    own = [(100000 + i, 50000 + dev * 3000 + 2 * i) for i in range(300)]
    hdr = f'  <device dev_id="{dev}" mapped_blocks="{len(shared) + len(own)}" transaction="{dev}" creation_time="1" snap_time="2">\n'
    defs.write(hdr); exp.write(hdr)
    defs.write('    <ref name="s"/>\n')
    for o, d in shared + own:
        line = f'    <single_mapping origin_block="{o}" data_block="{d}" time="1"/>\n'
        if o >= 100000:
            defs.write(line)
        exp.write(line)
    defs.write('  </device>\n'); exp.write('  </device>\n')
defs.write('</superblock>\n'); exp.write('</superblock>\n')
PY
"$DEVBIN/gen_pool" --origins 2 --snapshots 2 --mappings 15000 --seed 9 -o "$WORK/old.xml"

used() { python3 -c 'import struct,sys; print(struct.unpack_from("<Q", open(sys.argv[1],"rb").read(4096), 200)[0])' "$1"; }
truncate -s 64M "$WORK/fresh"
"$BIN/thin_restore" -q -i "$WORK/defs.xml" -o "$WORK/fresh"
new_used=$(used "$WORK/fresh")
ok=0 refused=0 invalidated=0
for kib in 192 256 320 384 448 512 544 576 608 640 672 704 768 1024 2048; do
	rm -f "$WORK/out"; truncate -s "${kib}K" "$WORK/out"
	if ! "$BIN/thin_restore" -q -i "$WORK/old.xml" -o "$WORK/out" 2>/dev/null; then
		continue   # too small even for the old pool
	fi
	cp "$WORK/out" "$WORK/before"
	old_used=$(used "$WORK/out")
	rc=0
	"$BIN/thin_restore" -q -i "$WORK/defs.xml" -o "$WORK/out" 2>"$WORK/err" || rc=$?
	if [ "$rc" = 0 ]; then
		"$BIN/thin_check" -q "$WORK/out" || die "$kib KiB: restored metadata does not check clean"
		"$BIN/thin_dump" "$WORK/out" > "$WORK/got.xml"
		assert_same "$WORK/expanded.xml" "$WORK/got.xml"
		ok=$((ok + 1))
		# both did not fit: the old superblock was invalidated first
		[ $((old_used + new_used)) -gt $((kib / 4)) ] && invalidated=$((invalidated + 1))
	else
		[ "$rc" = 1 ] || die "$kib KiB: exit $rc"
		assert_contains "$WORK/err" "too small"
		cmp -s "$WORK/before" "$WORK/out" || die "$kib KiB: restore failed after touching the old metadata"
		refused=$((refused + 1))
	fi
	echo "$kib KiB: exit $rc"
done
echo "ok=$ok (of which $invalidated replaced old metadata that left no room) refused=$refused"
[ "$ok" -gt 0 ] && [ "$refused" -gt 0 ] && [ "$invalidated" -gt 0 ] ||
	die "expected every outcome (ok=$ok invalidated=$invalidated refused=$refused)"
echo "def/ref room tests passed"
