#!/usr/bin/env bash
# thin_edit killed (SIGKILL) at random points of a big transaction: the
# metadata afterwards is the old state or the new one, never anything else,
# and checks clean.  The transaction deletes devices, snapshots others and
# grows the data space map by thousands of bitmaps, so that its commit
# writes tens of MiB and the kills land before, during and after it.
source "$TOP/tests/lib.sh"
GEN=${GEN:-$DEVBIN/gen_pool}
E=$BIN/thin_edit
TRIALS=${EDIT_KILL_TRIALS:-24}

$GEN --origins 3 --snapshots 6 --mappings 200000 --seed 5 --nr-data-blocks 400000 \
	-o "$WORK/pool.xml" > /dev/null
truncate -s 256M "$WORK/old.bin"
expect_rc 0 "$BIN/thin_restore" -i "$WORK/pool.xml" -o "$WORK/old.bin"
mapfile -t ids < <("$BIN/thin_dump" "$WORK/old.bin" | sed -n 's/.*<device dev_id="\([0-9]*\)".*/\1/p')
[ ${#ids[@]} -ge 6 ] || die "the pool has ${#ids[@]} devices"
msgs=(delete "${ids[0]}" create_snap 5000 "${ids[1]}" delete "${ids[2]}" create_snap 5001 5000
      reserve_metadata_snap delete "${ids[3]}" grow_data 200000000)
"$BIN/thin_dump" "$WORK/old.bin" > "$WORK/old.xml"

# the uninterrupted run and a dry run (all but the writes), timed
cp "$WORK/old.bin" "$WORK/new.bin"
t0=$(date +%s%N)
expect_rc 0 "$E" -n "$WORK/new.bin" "${msgs[@]}"
t1=$(date +%s%N)
expect_rc 0 "$E" "$WORK/new.bin" "${msgs[@]}"
t2=$(date +%s%N)
dry_us=$(( (t1 - t0) / 1000 ))
us=$(( (t2 - t1) / 1000 ))
ms=$((us / 1000))
"$BIN/thin_dump" "$WORK/new.bin" > "$WORK/new.xml"
expect_rc 0 "$BIN/thin_check" "$WORK/new.bin"
! cmp -s "$WORK/old.xml" "$WORK/new.xml" || die "the edit changed nothing"
note "a full run takes ${ms} ms, a dry run $((dry_us / 1000)) ms; $TRIALS kills, half of them after the dry run's time"

old=0 new=0 torn=0
# at least TRIALS kills; more (up to 4 x) until one has landed inside the writes
for ((k = 0; k < TRIALS || (torn == 0 && k < 4 * TRIALS); k++)); do
	cp "$WORK/old.bin" "$WORK/k.bin"
	# half the kills at any time, half in the commit (after what a dry run takes)
	if ((k % 2)); then
		lo=$((dry_us * 9 / 10)); span=$((us - lo + us / 4))
		[ "$span" -gt 0 ] || span=1
		delay_us=$((lo + (RANDOM * 32768 + RANDOM) % span))
	else
		delay_us=$(( (RANDOM * 32768 + RANDOM) % (us * 5 / 4 + 1) ))
	fi
	"$E" "$WORK/k.bin" "${msgs[@]}" &
	pid=$!
	sleep "$(printf '%d.%06d' $((delay_us / 1000000)) $((delay_us % 1000000)))"
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	"$BIN/thin_dump" "$WORK/k.bin" > "$WORK/k.xml" || die "kill $k: thin_dump failed"
	if cmp -s "$WORK/k.xml" "$WORK/old.xml"; then
		old=$((old + 1))
		cmp -s "$WORK/k.bin" "$WORK/old.bin" || torn=$((torn + 1))
	elif cmp -s "$WORK/k.xml" "$WORK/new.xml"; then
		new=$((new + 1))
	else
		diff "$WORK/old.xml" "$WORK/k.xml" | head -20
		die "kill $k after ${delay_us} us: neither the old nor the new metadata"
	fi
	expect_rc 0 "$BIN/thin_check" "$WORK/k.bin"
	if grep -v '^examining\|^checking' "$WORK/err" > "$WORK/findings"; then
		cat "$WORK/err"; die "kill $k: findings"
	fi
done
note "$k kills: old $old (of which written-to but not committed: $torn), new $new"
[ $((old + new)) -eq "$k" ] || die "unexpected outcomes"
[ "$torn" -gt 0 ] || die "no kill landed inside the transaction's writes: the test proves little"
need_ref0
expect_rc 0 "$REF0/thin_check" "$WORK/k.bin"
echo "thin_edit kills: ok"
