# LVM's exit-status contract (LVM.md): lvm reads exit 2 from thin_check as
# "binary missing" and activates the pool unchecked, so no runtime failure
# of any tool may exit 2; only a command-line usage error does (1.x: 64 for
# every runtime error).  Every tool is fed its error paths; thin_check takes
# every option 0.9.0 and 1.x have, the way lvm passes them (also the empty
# argument lvm2 2.03.16 makes of an empty thin_check_options entry).
# thin_names and thin_reconcile report findings in their exit status (their
# man pages): their operational errors are checked against those codes.
source "$TOP/tests/lib.sh"
need_ref0
need_ref1

B=$(fixture_copy basic)
H=$(fixture_copy held_root)
gzip -dc "$FIXTURES/basic/metadata.bin.gz" > "$WORK/dmg.bin"
printf '\x55' | dd of="$WORK/dmg.bin" bs=1 seek=100 conv=notrunc 2>/dev/null   # superblock checksum
L=$("$DEVBIN/thin_damage" --dev-root 1 "$B")
cp "$B" "$WORK/leaf.bin"; "$DEVBIN/thin_damage" --flip-byte "$L:100" "$WORK/leaf.bin" >/dev/null
truncate -s 1M "$WORK/zero.bin"
head -c 1M /dev/urandom > "$WORK/random.bin"
printf abc > "$WORK/tiny.bin"
XML=$FIXTURES/basic/ref-thin_dump.xml
printf '<superblock uuid="" time="0"' > "$WORK/bad.xml"
MISSING=$WORK/missing
BAD_INPUTS=("$MISSING" "$WORK" "$XML" "$WORK/zero.bin" "$WORK/random.bin" "$WORK/tiny.bin" "$WORK/dmg.bin")
n=0

st() {  # WANT CMD... : exit status WANT; a failure (1) also prints something
	expect_rc "$@"
	case " $* " in *" -q "*) ;; *) [ "$1" != 1 ] || [ -s "$WORK/err" ] || die "exit 1 without a message: ${*:2}" ;; esac
	n=$((n + 1))
}

note "runtime failures of the metadata readers: exit 1, never 2"
for i in "${BAD_INPUTS[@]}"; do
	st 1 "$BIN/thin_check" "$i"
	st 1 "$BIN/thin_check" -q --clear-needs-check-flag "$i"
	st 1 "$BIN/thin_dump" "$i"
	st 1 "$BIN/thin_dump" -o "$WORK/o.xml" "$i"
	st 1 "$BIN/thin_ls" "$i"
	st 1 "$BIN/thin_delta" --thin1 1 --thin2 2 "$i"
	st 1 "$BIN/thin_rmap" --region 0..10 "$i"
	st 1 "$BIN/thin_repair" -i "$i" -o "$WORK/out.bin"
	st 1 "$BIN/thin_metadata_pack" -i "$i" -o "$WORK/o.pack"
	rm -f "$WORK/o.pack"
done
truncate -s 8M "$WORK/out.bin"
for i in "$WORK/leaf.bin"; do
	st 1 "$BIN/thin_check" "$i"
	st 1 "$BIN/thin_dump" "$i"
	st 1 "$BIN/thin_ls" -o DEV,EXCLUSIVE_BLOCKS "$i"
	st 1 "$BIN/thin_delta" --thin1 1 --thin2 2 "$i"
	st 1 "$BIN/thin_rmap" --region 0..4096 "$i"
done
st 1 "$BIN/thin_check" -m "$B"                   # no metadata snapshot
st 1 "$BIN/thin_dump" -m "$B"
st 1 "$BIN/thin_delta" --thin1 1 --thin2 77 "$B"   # no such device
st 1 "$BIN/thin_dump" -o "$WORK/no/dir/x.xml" "$B"
st 1 "$BIN/thin_dump" -o /dev/full "$B"
for t in "thin_dump" "thin_ls" "thin_rmap --region 0..4096" "thin_delta --thin1 1 --thin2 2" \
	 "thin_dump -f human_readable"; do
	# shellcheck disable=SC2086
	st 1 bash -c "exec '$BIN/'$t '$B' > /dev/full"
done

note "writers: exit 1 on every runtime failure"
st 1 "$BIN/thin_restore" -i "$MISSING" -o "$WORK/out.bin"
st 1 "$BIN/thin_restore" -i "$WORK/bad.xml" -o "$WORK/out.bin"
st 1 "$BIN/thin_restore" -i "$B" -o "$WORK/out.bin"
st 1 "$BIN/thin_restore" -i "$XML" -o "$MISSING"
st 1 "$BIN/thin_restore" -i "$XML" -o "$WORK/tiny.bin"
st 1 "$BIN/thin_restore" -i "$XML" -o /dev/full
st 1 "$BIN/thin_restore" -i "$XML" -o "$WORK"
st 1 "$BIN/thin_repair" -i "$B" -o "$MISSING"
st 1 "$BIN/thin_repair" -i "$B" -o "$WORK/tiny.bin"
st 1 "$BIN/thin_repair" -i "$B" -o "$B"
st 1 "$BIN/thin_format" -o "$MISSING" --data-block-size 128 --nr-data-blocks 100
st 1 "$BIN/thin_format" -o "$WORK/tiny.bin" --data-block-size 128 --nr-data-blocks 100
st 1 "$BIN/thin_format" -o "$(fixture_copy snapshots)" --data-block-size 128 --nr-data-blocks 100
st 1 "$BIN/thin_trim" --metadata-dev "$MISSING" --data-dev "$WORK/zero.bin"
st 1 "$BIN/thin_trim" --metadata-dev "$B" --data-dev "$MISSING"
st 1 "$BIN/thin_trim" --metadata-dev "$WORK/zero.bin" --data-dev "$WORK/random.bin"
st 1 "$BIN/thin_metadata_unpack" -i "$MISSING" -o "$WORK/u.bin"
st 1 "$BIN/thin_metadata_unpack" -i "$XML" -o "$WORK/u.bin"
"$BIN/thin_metadata_pack" -q -i "$B" -o "$WORK/b.pack"
st 1 "$BIN/thin_metadata_unpack" -i "$WORK/b.pack" -o "$H"
st 1 "$BIN/thin_metadata_unpack" -i "$WORK/b.pack" -o /dev/full
st 1 "$BIN/thin_metadata_pack" -i "$B" -o /dev/full
st 1 bash -c "exec '$BIN/thin_metadata_size' -b 64k -s 1t -m 100 > /dev/full"

note "tools with findings in their exit status (man pages): operational errors"
st 5 "$BIN/thin_names" "$WORK/zero.bin" list
st 5 "$BIN/thin_names" "$MISSING" list
st 64 "$BIN/thin_names" "$B" no-such-command
printf '1\tvm\n' > "$WORK/rec.tsv"
st 32 "$BIN/thin_reconcile" --records "$WORK/rec.tsv" "$WORK/zero.bin"
st 32 "$BIN/thin_reconcile" --records "$MISSING" "$B"
st 64 "$BIN/thin_reconcile" --bogus "$B"

note "usage errors: exit 2 (and only those)"
for t in thin_check thin_dump thin_ls thin_delta thin_rmap thin_restore thin_repair thin_format \
	 thin_trim thin_metadata_size thin_metadata_pack thin_metadata_unpack; do
	st 2 "$BIN/$t" --no-such-option "$B"
	st 0 "$BIN/$t" --help
	st 0 "$BIN/$t" -V
done
st 2 "$BIN/thin_check"
st 2 "$BIN/thin_check" "$B" "$B"
st 2 "$BIN/thin_check" --override-mapping-root abc "$B"

note "thin_check: every option of 0.9.0 and 1.x, as lvm passes them"
R=$("$DEVBIN/thin_damage" --info "$B" | sed -n 's/^data_mapping_root=//p')
D=$("$DEVBIN/thin_damage" --info "$B" | sed -n 's/^device_details_root=//p')
for o in "" "-q" "--quiet" "-q --clear-needs-check-flag" "--clear-needs-check-flag" \
	 "--auto-repair" "--ignore-non-fatal-errors" "--skip-mappings" "--super-block-only" \
	 "-q --skip-mappings" "--override-mapping-root $R" "--override-details-root $D" \
	 "--override-mapping-root $R --override-details-root $D" \
	 "--clear-needs-check-flag --skip-mappings" "--clear-needs-check-flag --super-block-only"; do
	cp "$B" "$WORK/c.bin"
	# shellcheck disable=SC2086
	st 0 "$BIN/thin_check" $o "$WORK/c.bin"
	# shellcheck disable=SC2086
	expect_rc 0 "$REF1/thin_check" $o "$WORK/c.bin"
done
for o in "-m" "--metadata-snap" "-q -m" "-m --skip-mappings" "-m --super-block-only"; do
	# shellcheck disable=SC2086
	st 0 "$BIN/thin_check" $o "$H"
	# shellcheck disable=SC2086
	expect_rc 0 "$REF0/thin_check" $o "$H"
done
# lvm2 2.03.16: an empty thin_check_options entry is an empty argument
st 0 "$BIN/thin_check" "" "$B"
st 0 "$BIN/thin_check" "" -q --clear-needs-check-flag "$B"
st 0 "$BIN/thin_check" -q "" "$B" ""
st 1 "$BIN/thin_check" "" "$WORK/dmg.bin"
# 1.1.0 exits 2 here, which lvm reads as "binary missing" (docs/reference-1x.md)
expect_rc 2 "$REF1/thin_check" "" "$B"
# thin_repair as lvconvert --repair runs it (a stray empty argument)
truncate -s 8M "$WORK/spare.bin"
st 0 "$BIN/thin_repair" "" -i "$B" -o "$WORK/spare.bin"
echo "exit statuses: $n cases"
