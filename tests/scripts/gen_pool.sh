#!/usr/bin/env bash
# The pool generator (tests/tools/gen_pool.c) that the other tests and the
# benchmarks build their pools with: usage errors; the same seed gives the
# same bytes (XML and --binary), another seed other bytes; over a range of
# shapes the XML is canonical and consistent with the model (sorted devices,
# exact mapped_blocks, maximal runs, a shared data block at one origin
# block and time in every device, sharing by >= 3 devices, snapshots of
# snapshots, --stats agreeing), our thin_restore + thin_dump give it back
# byte for byte, our and 0.9.0's thin_check find nothing; --binary output
# dumps to the same XML and checks clean; memory stays small at 20 M
# mappings.
source "$TOP/tests/lib.sh"
GEN=$DEVBIN/gen_pool
[ -x "$GEN" ] || die "generator not built at $GEN"
[ -x /usr/sbin/thin_check ] || die "reference thin_check not installed"

note "usage errors exit 2, an impossible pool 1"
expect_rc 2 "$GEN" --scale huge -o "$WORK/x.xml"
assert_contains "$WORK/err" "bad --scale: 'huge'"
expect_rc 2 "$GEN" --fill 0 -o "$WORK/x.xml"
expect_rc 2 "$GEN" --discard-prob 1.5 -o "$WORK/x.xml"
expect_rc 2 "$GEN" --mappings 12x -o "$WORK/x.xml"
expect_rc 2 "$GEN" --binary
assert_contains "$WORK/err" "--binary needs -o FILE"
expect_rc 2 "$GEN" --scale tiny stray
expect_rc 1 "$GEN" --scale tiny --nr-data-blocks 10 -o "$WORK/x.xml"
assert_contains "$WORK/err" "--nr-data-blocks 10 <"
expect_rc 0 "$GEN" --help
assert_contains "$WORK/out" "Usage: gen_pool"

note "determinism"
"$GEN" --scale tiny --seed 5 -o "$WORK/a.xml" 2>/dev/null
"$GEN" --scale tiny --seed 5 > "$WORK/b.xml" 2>/dev/null       # stdout by default
assert_same "$WORK/a.xml" "$WORK/b.xml"
"$GEN" --scale tiny --seed 6 -o "$WORK/c.xml" 2>/dev/null
! cmp -s "$WORK/a.xml" "$WORK/c.xml" || die "seeds 5 and 6 give the same pool"
"$GEN" --scale tiny --seed 5 --binary -o "$WORK/a.bin" 2>/dev/null
"$GEN" --scale tiny --seed 5 --binary -o "$WORK/b.bin" 2>/dev/null
assert_same "$WORK/a.bin" "$WORK/b.bin"
"$GEN" --scale tiny --seed 6 --binary -o "$WORK/c.bin" 2>/dev/null
! cmp -s "$WORK/a.bin" "$WORK/c.bin" || die "--binary: seeds 5 and 6 give the same metadata"
# explicit counts override the preset in any order
"$GEN" --origins 3 --scale tiny --seed 5 -o "$WORK/d.xml" 2>/dev/null
[ "$(grep -c '<device ' "$WORK/d.xml")" = 6 ] || die "--origins 3 before --scale tiny: not 3 + 3 devices"

# Properties of one generated XML against its --stats; prints "max_sharing snap_of_snap"
props() {  # xml json origins snapshots
	python3 - "$@" <<'PY'
import json, re, sys
xml, js, norig, nsnap = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
st = json.load(open(js))
lines = open(xml).read().splitlines()
sb = re.match(r'<superblock uuid="" time="(\d+)" transaction="(\d+)" flags="0" version="2" '
              r'data_block_size="(\d+)" nr_data_blocks="(\d+)">$', lines[0])
assert sb, lines[0]
time, trans, nr = int(sb[1]), int(sb[2]), int(sb[4])
assert lines[-1] == '</superblock>'
assert time == (nsnap if norig else 0) and trans == (norig + nsnap if norig else 0), (time, trans)
assert nr == st['nr_data_blocks'] and st['data_blocks_top'] <= nr
devs, owner, cur = [], {}, None
for l in lines[1:-1]:
    m = re.match(r'  <device dev_id="(\d+)" mapped_blocks="(\d+)" transaction="(\d+)" '
                 r'creation_time="(\d+)" snap_time="(\d+)">$', l)
    if m:
        cur = dict(id=int(m[1]), mapped=int(m[2]), ctime=int(m[4]), stime=int(m[5]), n=0, ext=[])
        devs.append(cur)
        continue
    if l == '  </device>':
        cur = None
        continue
    m = re.match(r'    <single_mapping origin_block="(\d+)" data_block="(\d+)" time="(\d+)"/>$', l)
    if m:
        e = (int(m[1]), int(m[2]), 1, int(m[3]))
    else:
        m = re.match(r'    <range_mapping origin_begin="(\d+)" data_begin="(\d+)" length="(\d+)" time="(\d+)"/>$', l)
        assert m and int(m[3]) >= 2, l
        e = (int(m[1]), int(m[2]), int(m[3]), int(m[4]))
    assert cur is not None, l
    if cur['ext']:
        p = cur['ext'][-1]
        assert e[0] >= p[0] + p[2], ('overlap or disorder', cur['id'], p, e)
        assert not (e[0] == p[0] + p[2] and e[1] == p[1] + p[2] and e[3] == p[3]), ('not merged', p, e)
    assert e[1] + e[2] <= nr and e[3] <= time
    cur['ext'].append(e)
    cur['n'] += e[2]
    for k in range(e[2]):
        ob, t = owner.setdefault(e[1] + k, (e[0] + k, e[3]))
        assert (ob, t) == (e[0] + k, e[3]), ('data block shared at two places', e[1] + k)
ids = [d['id'] for d in devs]
assert ids == list(range(norig + nsnap)) if norig else ids == [], ids
for d in devs:
    assert d['n'] == d['mapped'], (d['id'], d['n'], d['mapped'])
    assert d['ctime'] <= d['stime'] <= time
count = {}
for d in devs:
    for e in d['ext']:
        for k in range(e[2]):
            count[e[1] + k] = count.get(e[1] + k, 0) + 1
assert st['mappings'] == sum(d['n'] for d in devs)
assert st['lines'] == sum(len(d['ext']) for d in devs)
assert [(x['dev_id'], x['mapped_blocks'], x['lines']) for x in st['devices']] == \
       [(d['id'], d['n'], len(d['ext'])) for d in devs]
origin_of = {x['dev_id']: x['origin'] for x in st['devices']}
sos = sum(1 for x in st['devices'] if x['origin'] is not None and origin_of[x['origin']] is not None)
print(max(count.values()) if count else 0, sos)
PY
}

no_findings() {  # err file of the reference thin_check
	if grep -vE '^(examining superblock|examining devices tree|examining mapping tree|checking space map counts)$' "$1" | grep -q .; then
		cat "$1"; die "reference thin_check reported findings"
	fi
}

shapes=(
	"--scale tiny --seed 1"
	"--origins 1 --snapshots 8 --mappings 20000 --snap-of-snap-prob 0.6 --seed 2"
	"--origins 3 --snapshots 0 --mappings 9000 --alloc-chunk 0 --seed 3"
	"--origins 0 --snapshots 4 --seed 4"
	"--origins 2 --snapshots 5 --mappings 30000 --data-block-size 2048 --hole-prob 0.05 --discard-prob 0.5 --grow-prob 1 --alloc-chunk 7 --seed 5"
	"--origins 40 --snapshots 60 --mappings 50000 --run-frac 0 --fill 1 --seed 6"
	"--origins 1 --snapshots 3 --mappings 5000 --snap-diverge 1 --origin-diverge 1 --seed 7"
	"--origins 2 --snapshots 4 --mappings 40000 --snap-diverge 0 --origin-diverge 0 --run-mean 200 --seed 8"
)
max_share=0 sos=0 i=0
for s in "${shapes[@]}"; do
	i=$((i + 1))
	# shellcheck disable=SC2086
	"$GEN" $s -o "$WORK/s$i.xml" --stats "$WORK/s$i.json" 2>"$WORK/gen.err" || { cat "$WORK/gen.err"; die "shape $i: $s"; }
	o=$(sed -n 's/.*"origins": \([0-9]*\).*/\1/p' "$WORK/s$i.json")
	n=$(sed -n 's/.*"snapshots": \([0-9]*\).*/\1/p' "$WORK/s$i.json")
	read -r share k < <(props "$WORK/s$i.xml" "$WORK/s$i.json" "$o" "$n") || die "shape $i: properties"
	[ "$share" -gt "$max_share" ] && max_share=$share
	sos=$((sos + k))
	rm -f "$WORK/s$i.bin"; truncate -s 64M "$WORK/s$i.bin"
	expect_rc 0 "$BIN/thin_restore" -i "$WORK/s$i.xml" -o "$WORK/s$i.bin"
	expect_rc 0 "$BIN/thin_dump" "$WORK/s$i.bin"
	assert_same "$WORK/s$i.xml" "$WORK/out"
	expect_rc 0 "$BIN/thin_check" "$WORK/s$i.bin"
	expect_rc 0 /usr/sbin/thin_check "$WORK/s$i.bin"
	no_findings "$WORK/err"
	# the same pool written directly
	"$GEN" $s --binary -o "$WORK/b$i.bin" 2>"$WORK/gen.err" || { cat "$WORK/gen.err"; die "shape $i --binary"; }
	expect_rc 0 "$BIN/thin_dump" "$WORK/b$i.bin"
	assert_same "$WORK/s$i.xml" "$WORK/out"
	expect_rc 0 "$BIN/thin_check" "$WORK/b$i.bin"
	expect_rc 0 /usr/sbin/thin_check "$WORK/b$i.bin"
	no_findings "$WORK/err"
	note "shape $i ($s): $(grep -c '_mapping' "$WORK/s$i.xml") lines, max sharing $share, ok"
done
[ "$max_share" -ge 3 ] || die "no data block shared by 3 devices (max $max_share)"
[ "$sos" -ge 1 ] || die "no snapshot of a snapshot among the shapes"
# --alloc-chunk: data of the origins interleaves in chunks (blocks of origin 1 below some of origin 0)
python3 - "$WORK/s1.xml" "$WORK/s5.xml" <<'PY' || die "devices do not interleave in data space"
import re, sys
for f in sys.argv[1:]:
    lo = {}
    hi = {}
    dev = None
    for l in open(f):
        m = re.search(r'dev_id="(\d+)"', l)
        if m: dev = int(m[1])
        m = re.search(r'(?:data_block|data_begin)="(\d+)"', l)
        if m and dev is not None and 'time="0"' in l:
            lo[dev] = min(lo.get(dev, 1 << 62), int(m[1])); hi[dev] = max(hi.get(dev, 0), int(m[1]))
    if len(lo) > 1 and 0 in lo and 1 in lo:
        assert lo[1] < hi[0] and lo[0] < hi[1], (f, lo, hi)
PY

note "--binary: too small a file is an error; the 16 GiB limit is the default's cap"
expect_rc 1 "$GEN" --scale small --binary -o "$WORK/small.bin" --metadata-blocks 64
assert_contains "$WORK/err" "too small"
expect_rc 0 "$GEN" --scale small --binary -o "$WORK/small.bin" --metadata-blocks 4161600
[ "$(stat -c %s "$WORK/small.bin")" = $((4161600 * 4096)) ] || die "--metadata-blocks ignored"
expect_rc 0 "$BIN/thin_check" "$WORK/small.bin"
rm -f "$WORK/small.bin"

note "20 M mappings: a few seconds, small memory"
[ -x /usr/bin/time ] || die "GNU time not installed"
/usr/bin/time -f '%M' -o "$WORK/rss" "$GEN" --scale large -o /dev/null --stats "$WORK/large.json" 2>"$WORK/gen.err"
rss=$(tail -n1 "$WORK/rss")
maps=$(sed -n 's/^ "mappings": \([0-9]*\),/\1/p' "$WORK/large.json")
note "large: $maps mappings, max RSS $rss KiB"
[ "$maps" -ge 19000000 ] || die "large: only $maps mappings"
[ "$rss" -lt 16384 ] || die "large: $rss KiB of memory"
echo "gen_pool: ${#shapes[@]} shapes, max sharing $max_share, $sos snapshots of snapshots"
