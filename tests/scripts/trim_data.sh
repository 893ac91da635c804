# thin_trim: free runs become holes (read zeros); allocated blocks keep
# their pattern; refuses damaged metadata and a too-small data device.
source "$TOP/tests/lib.sh"

"$DEVBIN/gen_pool" --origins 2 --snapshots 3 --mappings 3000 --seed 5 \
	--hole-prob 0.05 --free-frac 0.3 -o "$WORK/p.xml"
truncate -s 16M "$WORK/meta"
thin_restore -q -i "$WORK/p.xml" -o "$WORK/meta"
read -r bs nr < <(python3 - "$WORK/p.xml" <<'PY'
import re, sys
h = open(sys.argv[1]).readline()
print(re.search(r'data_block_size="(\d+)"', h)[1], re.search(r'nr_data_blocks="(\d+)"', h)[1])
PY
)
bbytes=$((bs * 512))
note "pool: $nr data blocks of $bbytes bytes"
# data file: every 4 KiB stamped with its offset (never zero)
python3 - "$WORK/data" "$((nr * bbytes))" <<'PY'
import sys, struct
path, size = sys.argv[1], int(sys.argv[2])
with open(path, 'wb') as f:
    chunk = 1 << 20
    for off in range(0, size, chunk):
        f.write(b''.join(struct.pack('<Q', o) * 512 for o in range(off, off + chunk, 4096)))
PY
used=$(python3 - "$WORK/p.xml" <<'PY'
import re, sys
s = set()
for l in open(sys.argv[1]):
    m = re.search(r'data_block="(\d+)"', l)
    if m: s.add(int(m[1]))
    m = re.search(r'data_begin="(\d+)" length="(\d+)"', l)
    if m: s.update(range(int(m[1]), int(m[1]) + int(m[2])))
print(','.join(map(str, sorted(s))))
PY
)
cp "$WORK/meta" "$WORK/meta.before"
expect_rc 0 "$BIN/thin_trim" --metadata-dev "$WORK/meta" --data-dev "$WORK/data"
assert_contains "$WORK/err" "punched holes"
cmp -s "$WORK/meta" "$WORK/meta.before" || die "thin_trim modified the metadata"
python3 - "$WORK/data" "$bbytes" "$nr" "$used" <<'PY'
import sys, struct
path, bb, nr, used = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), set(map(int, sys.argv[4].split(',')))
zero = bytes(bb)
kept = freed = 0
with open(path, 'rb') as f:
    for b in range(nr):
        data = f.read(bb)
        if b in used:
            want = b''.join(struct.pack('<Q', o) * 512 for o in range(b * bb, (b + 1) * bb, 4096))
            assert data == want, f"allocated block {b} lost its pattern"
            kept += 1
        else:
            assert data == zero, f"free block {b} was not discarded"
            freed += 1
assert freed > 0 and kept > 0
print(f"kept {kept} allocated blocks, discarded {freed} free blocks")
PY
alloc_kib=$(du -k "$WORK/data" | cut -f1)
note "data file now occupies ${alloc_kib} KiB"

note "-q prints nothing"
expect_rc 0 "$BIN/thin_trim" -q --metadata-dev "$WORK/meta" --data-dev "$WORK/data"
[ ! -s "$WORK/err" ] && [ ! -s "$WORK/out" ] || die "-q printed something"

note "data device smaller than the pool is refused"
truncate -s $(((nr - 1) * bbytes)) "$WORK/small"
expect_rc 1 "$BIN/thin_trim" --metadata-dev "$WORK/meta" --data-dev "$WORK/small"
assert_contains "$WORK/err" "smaller than the pool"

note "metadata that does not check clean is refused, nothing discarded"
python3 - "$WORK/data2" "$((nr * bbytes))" <<'PY'
import sys
with open(sys.argv[1], 'wb') as f:
    f.write(b'\x5a' * int(sys.argv[2]))
PY
# zero the metadata space-map index block: fatal
cp "$WORK/meta" "$WORK/meta.bad"
dd if=/dev/zero of="$WORK/meta.bad" bs=4096 seek=1 count=1 conv=notrunc 2>/dev/null
expect_rc 1 "$BIN/thin_trim" --metadata-dev "$WORK/meta.bad" --data-dev "$WORK/data2"
assert_contains "$WORK/err" "does not check clean"
[ "$(tr -d '\132' < "$WORK/data2" | wc -c)" = 0 ] || die "data touched although metadata is bad"

note "bad input and usage"
expect_rc 1 "$BIN/thin_trim" --metadata-dev "$WORK/nonexistent" --data-dev "$WORK/data"
expect_rc 1 "$BIN/thin_trim" --metadata-dev "$WORK/meta" --data-dev "$WORK/nonexistent"
expect_rc 1 "$BIN/thin_trim" --metadata-dev "$WORK/p.xml" --data-dev "$WORK/data"
expect_rc 2 "$BIN/thin_trim" --metadata-dev "$WORK/meta"
expect_rc 2 "$BIN/thin_trim" --bogus
echo "trim tests passed"
