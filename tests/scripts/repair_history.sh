#!/bin/bash
# thin_repair, top-level mapping tree lost on kernel/snapshots: devices 0
# and 2 (64 mappings each) and 1 and 3 (74 each) have equal counts.  The
# newest older pool state on the disk tells 0 from 2 (each holds time-2
# mappings the other's past tree lacks); 1 and 3 differ only by mappings
# stamped with the last snapshot's time, which no state orders: they keep
# the mappings both candidate trees share and report the rest lost.
# Without usable history, 0 and 2 fall back to their shared mappings too;
# with a damaged candidate the references do not add up and both are lost.
source "$TOP/tests/lib.sh"
need_ref0
need_ref1

DMG=$DEVBIN/thin_damage

# check ORIG OUT NOTES EXPECTED_TOTAL DEV:LO-HI...  (ranges each device must report lost
# and be missing; every other mapping of the device must be there, nothing else)
cat > "$WORK/check.py" <<'EOF'
import re, sys
def load(path):
    m, dev = {}, None
    for line in open(path):
        g = re.search(r'<device dev_id="(\d+)"', line)
        if g:
            dev = int(g.group(1)); m.setdefault(dev, set()); continue
        g = re.search(r'single_mapping origin_block="(\d+)" data_block="(\d+)" time="(\d+)"', line)
        if g:
            m[dev].add(tuple(map(int, g.groups()))); continue
        g = re.search(r'range_mapping origin_begin="(\d+)" data_begin="(\d+)" length="(\d+)" time="(\d+)"', line)
        if g:
            o, d, n, t = map(int, g.groups())
            m[dev] |= {(o + i, d + i, t) for i in range(n)}
    return m
orig, out = load(sys.argv[1]), load(sys.argv[2])
notes = open(sys.argv[3]).read()
want_total = int(sys.argv[4])
gaps = {}
for a in sys.argv[5:]:
    d, r = a.split(':'); lo, his = r.split('-')
    hi = 1 << 64 if his == 'end' else int(his)
    gaps.setdefault(int(d), []).append((int(lo), hi))
    if 'device %s: mappings lost in virtual blocks [%s, %s)' % (d, lo, his) not in notes:
        sys.exit('loss of device %s [%s, %s) not reported' % (d, lo, his))
total = 0
for d, s in orig.items():
    got = out.get(d, set())
    if got - s:
        sys.exit('device %d: invented %s' % (d, sorted(got - s)[:3]))
    want = {x for x in s if not any(lo <= x[0] < hi for lo, hi in gaps.get(d, []))}
    if got != want:
        sys.exit('device %d: %d mappings, expected %d' % (d, len(got), len(want)))
    total += len(got)
if total != want_total:
    sys.exit('%d mappings recovered, expected %d' % (total, want_total))
print('%d/%d' % (total, sum(len(s) for s in orig.values())))
EOF

img=$(fixture_copy snapshots)
"$BIN/thin_dump" "$img" > "$WORK/orig.xml"
top=$("$DMG" --info "$img" | sed -n 's/^data_mapping_root=//p')
truncate -s "$(stat -c %s "$img")" "$WORK/out.bin"

# repair D.BIN EXPECTED_TOTAL GAPS...: repair, both thin_checks, mapping check
repair() {
	local d=$1; shift
	expect_rc 0 "$BIN/thin_repair" -i "$d" -o "$WORK/out.bin"
	"$BIN/thin_check" -q "$WORK/out.bin" || die "our thin_check rejects the output"
	/usr/sbin/thin_check -q "$WORK/out.bin" || die "0.9.0 thin_check rejects the output"
	"$REF1/thin_check" -q "$WORK/out.bin" || die "1.1.0 thin_check rejects the output"
	same_dump_1x "$WORK/out.bin"
	"$BIN/thin_dump" "$WORK/out.bin" > "$WORK/out.xml"
	python3 "$WORK/check.py" "$WORK/orig.xml" "$WORK/out.xml" "$WORK/err" "$@" ||
		{ cat "$WORK/err"; die "mapping check"; }
}

# 1. the live top-level root zeroed: history decides 0 and 2
cp "$img" "$WORK/d.bin"
"$DMG" --zero-block "$top" "$WORK/d.bin"
repair "$WORK/d.bin" 272 1:60-62 3:60-62
assert_contains "$WORK/err" "rules out 2 candidate trees"
assert_contains "$WORK/err" "device 1: 2 mapping trees fit"
assert_not_contains "$WORK/err" "device 0: 2 mapping trees fit"

# 2. no older state left (older top-level trees zeroed): 0 and 2 keep what they share
cp "$WORK/d.bin" "$WORK/d2.bin"
for b in $("$DMG" --find-nodes top "$img"); do "$DMG" --zero-block "$b" "$WORK/d2.bin"; done
repair "$WORK/d2.bin" 256 0:32-36 0:40-44 2:32-36 2:40-44 1:60-62 3:60-62
assert_not_contains "$WORK/err" "rules out"

# 3. older states that disagree with the live devices (creation time of
#    device 0 changed in every older details tree) are not used
cp "$WORK/d.bin" "$WORK/d3.bin"
for b in $("$DMG" --find-nodes details "$img"); do
	[ "$("$DMG" --get-node-key "$b:0" "$img")" = 0 ] &&
		"$DMG" --set-details "$b:0:creation_time=1" "$WORK/d3.bin"
done
repair "$WORK/d3.bin" 256 0:32-36 0:40-44 2:32-36 2:40-44 1:60-62 3:60-62
assert_contains "$WORK/err" "does not fit the live devices: not used"

# 4. device 2's tree damaged too: 64's one reference cannot serve 0 and 2
cp "$WORK/d.bin" "$WORK/d4.bin"
"$DMG" --zero-block "$("$DMG" --dev-root 2 "$img")" "$WORK/d4.bin"
repair "$WORK/d4.bin" 144 0:0-end 2:0-end 1:60-62 3:60-62
assert_contains "$WORK/err" "device 0: no unique mapping tree with 64 mappings: lost"
assert_contains "$WORK/err" "device 2: no unique mapping tree with 64 mappings: lost"
