#!/usr/bin/env bash
# thin_reconcile --thin-edit prints the thin_edit line that drops the
# orphans (the path quoted for the shell); running it leaves none, and
# nothing is printed then.
source "$TOP/tests/lib.sh"
M="$WORK/my pool's meta.bin"
gzip -dc "$FIXTURES/snapshots/metadata.bin.gz" > "$M"
printf '0\torigin\n2\tsnap2\n' > "$WORK/records.tsv"
expect_rc 1 "$BIN/thin_reconcile" --records "$WORK/records.tsv" --thin-edit "$M"   # bit 1: orphans
[ "$(cat "$WORK/out")" = "thin_edit '$WORK/my pool'\\''s meta.bin' delete 1 delete 3" ] ||
	{ cat "$WORK/out"; die "unexpected thin_edit line"; }
line=$(cat "$WORK/out")
PATH="$BIN:$PATH" eval "$line" || die "the printed line failed"
expect_rc 0 "$BIN/thin_reconcile" --records "$WORK/records.tsv" --thin-edit "$M"
[ ! -s "$WORK/out" ] || die "orphans left: $(cat "$WORK/out")"
"$BIN/thin_dump" "$M" | grep -o 'dev_id="[0-9]*"' | tr '\n' ' ' > "$WORK/ids"
[ "$(cat "$WORK/ids")" = 'dev_id="0" dev_id="2" ' ] || die "devices left: $(cat "$WORK/ids")"
expect_rc 0 "$BIN/thin_check" "$M"
echo "reconcile --thin-edit: ok"
