#!/usr/bin/env bash
# A fuzzing campaign over every harness (not part of make check; results go
# into docs/fuzzing.md by hand).  Build first: make fuzz-build CC=clang.
#
#   tests/fuzz/campaign.sh [RUNS [SECONDS]]    default 10000000 runs, 3000 s
#
# Each harness runs as one niced libFuzzer job (-jobs=1) until RUNS
# executions or SECONDS have passed, whichever comes first, all harnesses
# at the same time, in build-fuzz/campaign/<harness>/ (corpus, log,
# crash artifacts).  The summary line per harness: executions, corpus
# size, coverage (cov = edges, ft = features) and artifacts found.
set -u
cd "$(dirname "$0")/../.."
RUNS=${1:-10000000}
SECS=${2:-3000}
OUT=build-fuzz/campaign
[ -x build-fuzz/fuzz/fuzz_metadata ] || { echo "run make fuzz-build CC=clang first" >&2; exit 1; }
mkdir -p "$OUT"
pids=()
for h in metadata xml xml_fastpath; do
	d=$OUT/$h
	mkdir -p "$d/corpus"
	cp -n build-fuzz/corpus-$h/* "$d/corpus/" 2>/dev/null || true
	case $h in
	metadata) args=(-max_len=200) ;;
	*) args=(-max_len=4096 -dict="$PWD/tests/fuzz/xml.dict") ;;
	esac
	(
		cd "$d" || exit 1
		ASAN_OPTIONS=allocator_may_return_null=1 THINMETA_FUZZ_IMAGE=$PWD/../../image.bin \
			nice -n 19 "../../fuzz/fuzz_$h" -jobs=1 -workers=1 -runs="$RUNS" \
			-max_total_time="$SECS" -print_final_stats=1 -artifact_prefix="$PWD/" \
			"${args[@]}" corpus > run.log 2>&1
		echo "exit $?" >> run.log
	) &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
for h in metadata xml xml_fastpath; do
	d=$OUT/$h
	log=$d/fuzz-0.log
	[ -f "$log" ] || log=$d/run.log
	last=$(grep -E '^#[0-9]+' "$log" | tail -1)
	runs=$(grep -E 'stat::number_of_executed_units' "$log" | tail -1 | awk '{print $2}')
	arts=$(find "$d" -maxdepth 1 -name 'crash-*' -o -maxdepth 1 -name 'leak-*' -o -maxdepth 1 -name 'timeout-*' -o -maxdepth 1 -name 'oom-*' | wc -l)
	echo "$h: executions ${runs:-?}; corpus $(ls "$d/corpus" | wc -l) files, $(du -sk "$d/corpus" | cut -f1) KiB; last: $last; artifacts: $arts"
done
