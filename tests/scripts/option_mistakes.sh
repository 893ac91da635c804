# Option mistakes that used to pass or mislead (issue 16, point 9): a value
# given to an option that takes none, and output formats that exclude each
# other.  Also thin_names export --json, which opened the table twice.
source "$TOP/tests/lib.sh"
MD=$(fixture_copy snapshots)

note "thin_check --metadata-snap=5: the option named, usage error"
for a in --metadata-snap=5 --meta=5 --super-block-only=1 --quiet=x; do
	expect_rc 2 "$BIN/thin_check" "$a" "$MD"
	assert_contains "$WORK/err" "takes no value ('$a')"
	assert_not_contains "$WORK/err" "'-m'"
done
expect_rc 2 "$BIN/thin_check" --quiet -Zq "$MD"
assert_contains "$WORK/err" "unrecognised option '-Z'"
expect_rc 2 "$BIN/thin_check" --no-such "$MD"
assert_contains "$WORK/err" "unrecognised option '--no-such'"

note "thin_names: --json with --tsv is a usage error (its usage status, 64)"
expect_rc 0 "$BIN/thin_names" "$MD" tag
T=$WORK/t.tmn
expect_rc 0 "$BIN/thin_names" --table "$T" "$MD" set 1 --name alpha
expect_rc 0 "$BIN/thin_names" --table "$T" "$MD" set 2 --name beta
expect_rc 64 "$BIN/thin_names" --table "$T" --json --tsv "$MD" export
assert_contains "$WORK/err" "--json and --tsv cannot be combined"
note "thin_names export --json = list --json (the table opened once)"
expect_rc 0 "$BIN/thin_names" --table "$T" --json "$MD" export
cp "$WORK/out" "$WORK/export.json"
expect_rc 0 "$BIN/thin_names" --table "$T" --json "$MD" list
assert_same "$WORK/out" "$WORK/export.json"
assert_contains "$WORK/export.json" '"name":"beta"'

note "thin_reconcile --json --tsv: usage error (its usage status, 64), either order"
printf '1\talpha\n2\tbeta\n' > "$WORK/rec.tsv"
expect_rc 64 "$BIN/thin_reconcile" --records "$WORK/rec.tsv" --json --tsv "$MD"
assert_contains "$WORK/err" "--json and --tsv cannot be combined"
expect_rc 64 "$BIN/thin_reconcile" --records "$WORK/rec.tsv" --tsv --json "$MD"
rc=0; "$BIN/thin_reconcile" --records "$WORK/rec.tsv" --json --json "$MD" > "$WORK/j" || rc=$?
[ "$rc" -lt 32 ] || die "--json twice: exit $rc"
head -c1 "$WORK/j" | grep -q '{' || die "--json twice: not JSON"
echo "option mistakes: ok"
