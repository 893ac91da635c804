#!/usr/bin/env bash
# thin_names under contention and crashes: 16 writers x 200 sets lose no
# update; CAS on one id has one winner per generation, the losers exit 2;
# readers never see a torn table; a held lock times out with exit 2;
# SIGKILL at every crash point of the table writer and of the tag write
# leaves the old or the new generation, and the next writer cleans up.
source "$TOP/tests/lib.sh"
N=$BIN/thin_names
MD=$(fixture_copy empty)
T=$WORK/t.tmn
expect_rc 0 "$N" "$MD" tag

WRITERS=${NAMES_WRITERS:-16}
SETS=${NAMES_SETS:-200}
note "$WRITERS writers x $SETS sets on distinct ids, with a reader loop"
(
	while [ ! -f "$WORK/stop" ]; do
		if [ -f "$T" ]; then
			"$N" --table "$T" --json "$MD" list > "$WORK/rd.out" 2> "$WORK/rd.err" ||
				{ echo "reader failed: $(cat "$WORK/rd.err")" > "$WORK/reader-failed"; break; }
			python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$WORK/rd.out" ||
				{ echo "torn JSON" > "$WORK/reader-failed"; break; }
		fi
	done
) &
reader=$!
pids=()
for w in $(seq 0 $((WRITERS - 1))); do
	(
		for i in $(seq 0 $((SETS - 1))); do
			id=$((w * SETS + i))
			"$N" --table "$T" --wait 60 "$MD" set $id --name "w$w-$i" --allow-absent ||
				exit 1
		done
	) &
	pids+=($!)
done
fails=0
for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
touch "$WORK/stop"
wait $reader || true
[ $fails -eq 0 ] || die "$fails writers failed"
[ ! -f "$WORK/reader-failed" ] || die "$(cat "$WORK/reader-failed")"
expect_rc 0 "$N" --table "$T" --json "$MD" list
python3 - "$WORK/out" "$WRITERS" "$SETS" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
w, s = int(sys.argv[2]), int(sys.argv[3])
assert d["generation"] == w * s, d["generation"]
names = {e["dev_id"]: e["name"] for e in d["entries"]}
assert len(names) == w * s, len(names)
for k in range(w):
    for i in range(s):
        assert names[k * s + i] == "w%d-%d" % (k, i)
EOF

note "CAS on one id: exactly one winner per generation"
gen=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["generation"])' "$WORK/out")
pids=()
for w in $(seq 1 8); do
	( rc=0; "$N" --table "$T" --wait 60 "$MD" set 0 --name "cas$w" --allow-absent \
		--if-generation "$gen" > /dev/null 2> "$WORK/cas$w.err" || rc=$?
	  echo $rc > "$WORK/cas$w.rc" ) &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
winners=$(cat "$WORK"/cas*.rc | grep -c '^0$' || true)
losers=$(cat "$WORK"/cas*.rc | grep -c '^2$' || true)
[ "$winners" = 1 ] && [ "$losers" = 7 ] || die "CAS: $winners winners, $losers losers"
grep -l "generation is" "$WORK"/cas*.err > /dev/null || die "CAS losers' message"

note "lock held elsewhere: exit 2 within --wait"
flock "$T.lock" sleep 5 &
holder=$!
sleep 0.3
start=$(date +%s%N)
expect_rc 2 "$N" --table "$T" --wait 1 "$MD" set 1 --name x --allow-absent
assert_contains "$WORK/err" "timed out"
elapsed=$((($(date +%s%N) - start) / 1000000))
[ $elapsed -lt 3000 ] || die "lock wait took $elapsed ms"
kill $holder 2>/dev/null || true
wait $holder 2>/dev/null || true

note "SIGKILL at each crash point of the writer: old or new survives"
for point in after-write after-fsync after-prev after-rename before-dirsync; do
	cp "$T" "$WORK/old.tmn"
	"$N" --table "$T" "$MD" export > "$WORK/old.tsv"
	rc=0
	THINMETA_TMN_CRASH=$point "$N" --table "$T" "$MD" set 5000 --name "crash-$point" \
		--allow-absent > /dev/null 2>&1 || rc=$?
	[ $rc -eq 137 ] || die "$point: writer not killed (rc $rc)"
	expect_rc 0 "$N" --table "$T" "$MD" export
	if cmp -s "$WORK/out" "$WORK/old.tsv"; then
		state=old
	else
		grep -qF "crash-$point" "$WORK/out" || die "$point: neither old nor new"
		state=new
	fi
	expect_rc 0 "$N" --table "$T.prev" "$MD" list
	# the next writer removes a stale .tmp and succeeds
	expect_rc 0 "$N" --table "$T" "$MD" set 5001 --name "after-$point" --allow-absent
	[ ! -e "$T.tmp" ] || die "$point: stale .tmp left behind"
	expect_rc 0 "$N" --table "$T" "$MD" get 5001
	note "$point: $state generation survived"
done

note "SIGKILL between the tag pwrite and fsync: the superblock is valid"
for i in 1 2; do
	rc=0
	THINMETA_TAG_CRASH=after-pwrite "$N" "$MD" tag --new > /dev/null 2>&1 || rc=$?
	[ $rc -eq 137 ] || die "tag writer not killed (rc $rc)"
	expect_rc 0 /usr/sbin/thin_check "$MD"
	expect_rc 0 "$N" "$MD" tag
done
echo "names concurrency: ok"
