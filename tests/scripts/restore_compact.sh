#!/usr/bin/env bash
# Our thin_restore and thin_repair (which writes through the restorer) write
# metadata as compact as the best writer.  For every kernel fixture
# (fixtures/kernel/*/), restored into a fresh device exactly as large as the
# kernel's metadata device: it fits, round-trips byte for byte, checks clean
# with our thin_check, 0.9.0's and 1.1.0's, and uses no more metadata blocks
# (metadata space map nr_allocated) than the kernel did nor than tpt 1.1.0's
# thin_restore of the same XML (run here); the same for the fixture's 1.x
# dump (<def>/<ref>) when it has one, and for thin_repair of the kernel's
# image (whose dump has the same mappings).  A restore over the kernel's own
# metadata (same device) also succeeds.  Generated pools and a snapshot
# chain: no more blocks than 1.1.0 at the same device size, the chain keeps
# its sharing, and every pool fits into the smallest device 1.1.0's restore
# fits into.
source "$TOP/tests/lib.sh"
need_ref0
need_ref1
GEN=${GEN:-$DEVBIN/gen_pool}

nalloc() { od -An -tu8 -j200 -N8 "$1" | tr -d ' '; }

# clean FILE WHAT: every checker passes with no finding
clean() {
	expect_rc 0 "$BIN/thin_check" "$1"
	expect_rc 0 "$REF0/thin_check" "$1"
	if grep -vE '^(examining superblock|examining devices tree|examining mapping tree|checking space map counts)$' "$WORK/err" | grep -q .; then
		cat "$WORK/err"; die "$2: 0.9.0 thin_check reported findings"
	fi
	expect_rc 0 "$REF1/thin_check" "$1"
	if grep -vE '^(Checking thin metadata|device details tree|mapping tree|data space map|metadata space map)$' "$WORK/err" | grep -q .; then
		cat "$WORK/err"; die "$2: 1.1.0 thin_check reported findings"
	fi
}

# restore_both XML SIZE TAG: ours into $WORK/TAG.ours (must fit), 1.1.0's
# into $WORK/TAG.ref1 (may not); sets OURS and REF (- when 1.1.0 failed)
restore_both() {
	local xml=$1 size=$2 tag=$3
	rm -f "$WORK/$tag.ours" "$WORK/$tag.ref1"
	truncate -s "$size" "$WORK/$tag.ours" "$WORK/$tag.ref1"
	expect_rc 0 "$BIN/thin_restore" -q -i "$xml" -o "$WORK/$tag.ours"
	OURS=$(nalloc "$WORK/$tag.ours")
	if "$REF1/thin_restore" -q -i "$xml" -o "$WORK/$tag.ref1" >/dev/null 2>&1; then
		REF=$(nalloc "$WORK/$tag.ref1")
	else
		REF=-
	fi
}

# at_most WHAT OURS BOUND...: OURS <= every numeric BOUND
at_most() {
	local what=$1 ours=$2 b; shift 2
	for b in "$@"; do
		[ "$b" = - ] && continue
		[ "$ours" -le "$b" ] || die "$what: $ours metadata blocks, more than $b"
	done
}

nfx=0
for f in $(fixtures); do
	d=$FIXTURES/$f
	gzip -dc "$d/metadata.bin.gz" > "$WORK/kernel.bin"
	size=$(stat -c %s "$WORK/kernel.bin")
	kernel=$(nalloc "$WORK/kernel.bin")
	xml=$d/ref-thin_dump.xml
	[ -f "$xml" ] || { gzip -dc "$xml.gz" > "$WORK/fx.xml"; xml=$WORK/fx.xml; }

	restore_both "$xml" "$size" fx
	"$BIN/thin_dump" "$WORK/fx.ours" > "$WORK/fx.dump"
	assert_same "$xml" "$WORK/fx.dump"
	clean "$WORK/fx.ours" "$f"
	note "$f: $size bytes; kernel $kernel, ours $OURS, 1.1.0 $REF"
	at_most "$f" "$OURS" "$kernel" "$REF"
	ref_restore=$REF

	# the 1.x dialect (shared subtrees as <def>/<ref>), when recorded
	x1=$d/ref1-thin_dump.xml
	[ -f "$x1" ] || { [ -f "$x1.gz" ] && gzip -dc "$x1.gz" > "$WORK/fx1.xml" && x1=$WORK/fx1.xml; }
	if [ -f "$x1" ]; then
		restore_both "$x1" "$size" fx1
		"$BIN/thin_dump" "$WORK/fx1.ours" > "$WORK/fx1.dump"
		assert_same "$xml" "$WORK/fx1.dump"
		clean "$WORK/fx1.ours" "$f (1.x XML)"
		note "$f (1.x XML): ours $OURS, 1.1.0 $REF"
		at_most "$f (1.x XML)" "$OURS" "$kernel" "$REF"
	fi

	# thin_repair writes through the restorer: the same bound (1.1.0's own
	# thin_repair, which keeps the kernel's shared subtrees as they are,
	# is shown for comparison)
	rm -f "$WORK/rp.ours" "$WORK/rp.ref1"
	truncate -s "$size" "$WORK/rp.ours" "$WORK/rp.ref1"
	expect_rc 0 "$BIN/thin_repair" -i "$WORK/kernel.bin" -o "$WORK/rp.ours"
	# the same mappings (repair clears needs_check)
	"$BIN/thin_dump" "$WORK/rp.ours" | sed '1s/ flags="[0-9]*"//' > "$WORK/rp.dump"
	sed '1s/ flags="[0-9]*"//' "$xml" > "$WORK/fx.noflags"
	assert_same "$WORK/fx.noflags" "$WORK/rp.dump"
	clean "$WORK/rp.ours" "$f (repaired)"
	ours=$(nalloc "$WORK/rp.ours") ref=-
	"$REF1/thin_repair" -i "$WORK/kernel.bin" -o "$WORK/rp.ref1" >/dev/null 2>&1 &&
		ref=$(nalloc "$WORK/rp.ref1")
	note "$f repaired: ours $ours (1.1.0's thin_repair $ref)"
	at_most "$f (repaired)" "$ours" "$kernel" "$ref_restore"

	# over the kernel's own metadata, on its own device: fits as well
	expect_rc 0 "$BIN/thin_restore" -q -i "$xml" -o "$WORK/kernel.bin"
	"$BIN/thin_dump" "$WORK/kernel.bin" > "$WORK/fx.dump"
	assert_same "$xml" "$WORK/fx.dump"
	expect_rc 0 "$BIN/thin_check" "$WORK/kernel.bin"
	nfx=$((nfx + 1))
done
[ "$nfx" -gt 0 ] || die "no kernel fixtures"

# the smallest output (in 4 KiB blocks) 1.1.0's restore of XML fits into
ref1_min_blocks() {
	local lo=8 hi=$2 mid
	truncate -s 0 "$WORK/min.bin"; truncate -s $((hi * 4096)) "$WORK/min.bin"
	"$REF1/thin_restore" -q -i "$1" -o "$WORK/min.bin" >/dev/null 2>&1 || die "1.1.0 fails in $hi blocks"
	while [ $((hi - lo)) -gt 1 ]; do
		mid=$(((lo + hi) / 2))
		rm -f "$WORK/min.bin"; truncate -s $((mid * 4096)) "$WORK/min.bin"
		if "$REF1/thin_restore" -q -i "$1" -o "$WORK/min.bin" >/dev/null 2>&1; then
			hi=$mid
		else
			lo=$mid
		fi
	done
	echo "$hi"
}

# generated(NAME XML SIZE): ours <= 1.1.0 at SIZE, round trip, clean; and
# ours fits where 1.1.0 just fits
generated() {
	local name=$1 xml=$2 size=$3 min
	restore_both "$xml" "$size" g
	"$BIN/thin_dump" "$WORK/g.ours" > "$WORK/g.dump"
	assert_same "$xml" "$WORK/g.dump"
	clean "$WORK/g.ours" "$name"
	note "$name: ours $OURS, 1.1.0 $REF"
	[ "$REF" != - ] || die "$name: 1.1.0 fails"
	at_most "$name" "$OURS" "$REF"
	min=$(ref1_min_blocks "$xml" $((REF * 2 + 64)))
	rm -f "$WORK/g.ours"; truncate -s $((min * 4096)) "$WORK/g.ours"
	expect_rc 0 "$BIN/thin_restore" -q -i "$xml" -o "$WORK/g.ours"
	"$BIN/thin_dump" "$WORK/g.ours" > "$WORK/g.dump"
	assert_same "$xml" "$WORK/g.dump"
	note "$name: fits into $min blocks as 1.1.0's does (ours uses $(nalloc "$WORK/g.ours"))"
}

i=0
for args in "--scale tiny --seed 1" "--scale tiny --seed 6 --snapshots 30 --snap-of-snap-prob 0.5" \
	    "--seed 3 --mappings 40000 --origins 3" "--seed 4 --origins 300 --mappings 6000 --snapshots 10" \
	    "--seed 9 --mappings 60000 --origins 1 --snapshots 12 --snap-diverge 0.01 --origin-diverge 0.01" \
	    "--seed 5 --mappings 200000 --origins 4 --snapshots 12"; do
	i=$((i + 1))
	# shellcheck disable=SC2086
	$GEN $args -o "$WORK/gen$i.xml" >/dev/null 2>&1
	generated "gen$i ($args)" "$WORK/gen$i.xml" 64M
done
if [ "${THINMETA_SLOW_TESTS:-1}" = 0 ]; then
	echo "THINMETA_SLOW_TESTS=0: the 2 M-mapping pool is not compared"
else
	$GEN --scale medium -o "$WORK/medium.xml" >/dev/null 2>&1
	restore_both "$WORK/medium.xml" 1G g
	note "2 M mappings, 24 devices: ours $OURS, 1.1.0 $REF"
	at_most "2 M mappings" "$OURS" "$REF"
	"$BIN/thin_dump" "$WORK/g.ours" | cmp -s - "$WORK/medium.xml" || die "2 M mappings: round trip"
	expect_rc 0 "$BIN/thin_check" "$WORK/g.ours"
	rm -f "$WORK/medium.xml" "$WORK"/g.*
fi

# A chain of 24 snapshots, each of the one before, each rewriting 4 blocks
# of one leaf (the kit's snap_chain24): every snapshot may cost its root
# and one leaf, and a few overflow ref-count nodes; not a copy of the pool.
chain() { # NSNAPS > xml
	python3 - "$1" <<'PY'
import sys
n = int(sys.argv[1]); devs = [{b: (b, 0) for b in range(1024)}]; nxt = 1024
for i in range(1, n + 1):
    m = dict(devs[-1])
    for b in range(40 * i, 40 * i + 4):
        m[b] = (nxt, i); nxt += 1
    devs.append(m)
print('<superblock uuid="" time="%d" transaction="1" flags="0" version="2" data_block_size="128" nr_data_blocks="4096">' % n)
for d, m in enumerate(devs):
    print('  <device dev_id="%d" mapped_blocks="%d" transaction="0" creation_time="%d" snap_time="%d">' % (d, len(m), d, n if d < n else d))
    ks = sorted(m); i = 0
    while i < len(ks):
        j = i
        while j + 1 < len(ks) and ks[j + 1] == ks[j] + 1 and m[ks[j + 1]] == (m[ks[j]][0] + 1, m[ks[i]][1]):
            j += 1
        if j == i:
            print('    <single_mapping origin_block="%d" data_block="%d" time="%d"/>' % (ks[i], m[ks[i]][0], m[ks[i]][1]))
        else:
            print('    <range_mapping origin_begin="%d" data_begin="%d" length="%d" time="%d"/>' % (ks[i], m[ks[i]][0], j - i + 1, m[ks[i]][1]))
        i = j + 1
    print('  </device>')
print('</superblock>')
PY
}
chain 0 > "$WORK/chain0.xml"
chain 24 > "$WORK/chain.xml"
restore_both "$WORK/chain0.xml" 4M c0
origin_only=$OURS
generated "snapshot chain" "$WORK/chain.xml" 4M
restore_both "$WORK/chain.xml" 4M chain
bound=$((origin_only + 2 * 24 + 6))
note "snapshot chain: origin alone $origin_only, chain $OURS (sharing bound $bound), 1.1.0 $REF"
at_most "snapshot chain (sharing)" "$OURS" "$bound"
# the chain dumped by 1.1.0 (<def>/<ref> for what is shared) restores as compactly
"$REF1/thin_dump" "$WORK/chain.ours" > "$WORK/chain1.xml"
grep -q '<def ' "$WORK/chain1.xml" || die "1.1.0 dumps no shared subtree of the chain"
restore_both "$WORK/chain1.xml" 4M chain1
"$BIN/thin_dump" "$WORK/chain1.ours" > "$WORK/chain1.dump"
assert_same "$WORK/chain.xml" "$WORK/chain1.dump"
clean "$WORK/chain1.ours" "snapshot chain (1.x XML)"
note "snapshot chain (1.x XML): ours $OURS, 1.1.0 $REF"
at_most "snapshot chain (1.x XML)" "$OURS" "$REF" "$bound"
echo "compact restore: ok ($nfx kernel fixtures)"
