#!/usr/bin/env bash
# thin_edit on the kernel-written fixtures: message sequences (chosen and
# random) applied in one call give exactly the thin_dump (and thin_dump -m)
# that the kernel's semantics give (tests/edit_model.py on the reference
# dump), and our thin_check (no finding at all: every count, nr_allocated,
# nr_free and hint exact), 0.9.0's and 1.1.0's report the pool clean.
source "$TOP/tests/lib.sh"
need_ref0
need_ref1
E=$BIN/thin_edit
MODEL="python3 $TOP/tests/edit_model.py"
n=0

clean() { # metadata what
	expect_rc 0 "$BIN/thin_check" "$1"
	if grep -v '^examining\|^checking\|needs_check flag is set' "$WORK/err" > "$WORK/findings"; then
		cat "$WORK/err"; die "$2: our thin_check has findings"
	fi
	expect_rc 0 "$REF0/thin_check" "$1"
	expect_rc 0 "$REF1/thin_check" "$1"
}

run() { # fixture message...
	local fx=$1; shift
	local m=$WORK/$fx.$n.bin snapin=() snapout=()
	n=$((n + 1))
	gzip -dc "$FIXTURES/$fx/metadata.bin.gz" > "$m"
	[ -n "${GROW:-}" ] && truncate -s "$GROW" "$m"
	if [ -f "$FIXTURES/$fx/ref-thin_dump-metadata-snap.xml" ]; then
		snapin=(--snap "$FIXTURES/$fx/ref-thin_dump-metadata-snap.xml")
	fi
	$MODEL apply "$FIXTURES/$fx/ref-thin_dump.xml" "${snapin[@]}" --out "$WORK/want.xml" \
		--snap-out "$WORK/want-snap.xml" "$@"
	expect_rc 0 "$E" "$m" "$@"
	expect_rc 0 "$BIN/thin_dump" "$m"
	assert_same "$WORK/want.xml" "$WORK/out"
	if [ -s "$WORK/want-snap.xml" ]; then
		expect_rc 0 "$BIN/thin_dump" -m "$m"
		assert_same "$WORK/want-snap.xml" "$WORK/out"
		expect_rc 0 "$REF0/thin_dump" -m "$m"
		assert_same "$WORK/want-snap.xml" "$WORK/out"
	else
		expect_rc 1 "$BIN/thin_dump" -m "$m"
	fi
	expect_rc 0 "$REF0/thin_dump" "$m"
	assert_same "$WORK/want.xml" "$WORK/out"
	clean "$m" "$fx: $*"
}

note "every message on its own"
run snapshots create_thin 9
run snapshots create_snap 9 0
run snapshots create_snap 9 3
run snapshots delete 0
run snapshots delete 1
run snapshots delete 3
run snapshots set_transaction_id 7 1000
run snapshots reserve_metadata_snap
run held_root release_metadata_snap
run snapshots set_needs_check
run needs_check clear_needs_check
run snapshots rename 1 100
run snapshots grow_data 100000
GROW=16M run snapshots grow_metadata
GROW=64M run snapshots grow_metadata 10000
note "sequences"
run snapshots delete 0 delete 1 delete 2 delete 3
run snapshots create_snap 4 0 create_snap 5 4 create_snap 6 5 delete 4 delete 5 create_thin 4
run snapshots reserve_metadata_snap delete 0 delete 1 create_snap 7 2 set_transaction_id 7 8
run held_root delete 0 create_snap 9 1 release_metadata_snap reserve_metadata_snap delete 1
run basic create_snap 2 0 reserve_metadata_snap delete 0 release_metadata_snap rename 2 0
run deleted delete 4 create_thin 4 create_snap 5 4 rename 6 1
run empty create_thin 0 create_snap 1 0 set_transaction_id 1 2 grow_data 16384
run resized create_snap 1 0 delete 0 rename 1 0
run blocksize_1m delete 0 create_snap 0 1
run needs_check clear_needs_check create_snap 1 0 set_needs_check

note "random sequences, one call each"
for fx in snapshots held_root deleted basic blocksize_1m; do
	for seed in 1 2; do
		snapin=()
		[ -f "$FIXTURES/$fx/ref-thin_dump-metadata-snap.xml" ] &&
			snapin=(--snap "$FIXTURES/$fx/ref-thin_dump-metadata-snap.xml")
		mapfile -t msgs < <($MODEL random "$FIXTURES/$fx/ref-thin_dump.xml" "${snapin[@]}" \
			--seed "$seed" --count 25)
		run "$fx" "${msgs[@]}"
	done
done
echo "$n edits on kernel fixtures match the model and check clean"
