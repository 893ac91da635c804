# The fast subset of the standing adversarial suite (tests/adversarial/run.sh;
# the long one: tests/adversarial/run.sh --long, under the sanitizers with
# BUILD=build-asan).  Fixed seed, so a failure reproduces; SEED=N varies it.
source "$TOP/tests/lib.sh"
need_ref1
rc=0
REF1=$REF1 BUILD=$BUILD "$TOP/tests/adversarial/run.sh" --seed "${SEED:-1}" --out "$WORK/adv" \
	> "$WORK/adv.log" 2>&1 || rc=$?
grep -E '^(stage|adversarial|FAIL|XFAIL|XPASS)' "$WORK/adv.log" || true
[ -s "$WORK/adv/disagreements.txt" ] && { echo "disagreements with 1.1.0 (recorded):"; sed 's/^/  /' "$WORK/adv/disagreements.txt"; }
[ $rc = 0 ] || die "the adversarial suite failed (exit $rc)"
summary=$(grep '^adversarial' "$WORK/adv.log")
tried=$(sed -n 's/.*tried \([0-9]*\), failures.*/\1/p' <<< "$summary")
[ "${tried:-0}" -ge 500 ] || die "too few cases tried ($tried)"
for s in corrupt files xml kill faults; do
	grep -q "^stage $s: tried [1-9]" "$WORK/adv.log" || die "stage $s tried nothing"
done
