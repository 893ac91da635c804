#!/usr/bin/env bash
# thin_dump on the kernel-written fixtures: byte-identical to the reference
# outputs stored beside them, option behaviour compared live with 0.9.0's
# thin_dump, and the CLI/bad-input battery.
source "$TOP/tests/lib.sh"
need_ref0
need_ref1
TD=$BIN/thin_dump
REF=/usr/sbin/thin_dump

# ref_body FILE: the stored reference output (plain or .gz)
ref_body() {
	if [ -f "$1" ]; then cat "$1"; elif [ -f "$1.gz" ]; then gzip -dc "$1.gz"; else return 1; fi
}
# ref_rc FILE.rc: the exit code recorded on its "exit code: N" line
ref_rc() { sed -n 's/^exit code: \([0-9]*\)$/\1/p' "$1"; }

# same_as_ref ARGS...: our stdout/exit status equal 0.9.0's on the same input
same_as_ref() {
	local rc_ref=0 rc_our=0
	"$REF" "$@" >"$WORK/ref.out" 2>"$WORK/ref.err" || rc_ref=$?
	"$TD" "$@" >"$WORK/our.out" 2>"$WORK/our.err" || rc_our=$?
	[ "$rc_ref" = "$rc_our" ] || { cat "$WORK/our.err"; die "thin_dump $*: exit $rc_our, reference $rc_ref"; }
	assert_same "$WORK/ref.out" "$WORK/our.out"
}

n=0
for f in $(fixtures); do
	d=$FIXTURES/$f
	img=$(fixture_copy "$f")
	note "$f"
	# XML
	ref_body "$d/ref-thin_dump.xml" > "$WORK/want.xml"
	expect_rc "$(ref_rc "$d/ref-thin_dump.xml.rc")" "$TD" "$img"
	assert_same "$WORK/want.xml" "$WORK/out"
	[ -s "$WORK/out" ] || die "$f: empty dump"
	same_dump_1x "$img"   # the second oracle, 1.1.0 (its dialect)
	held=$("$DEVBIN/thin_damage" --info "$img" | sed -n 's/^held_root=//p')
	if [ "$held" != 0 ]; then   # 1.x's -m[=BLOCKNR] forms
		same_dump_1x "$img" -m
		same_dump_1x "$img" "-m=$held"
		same_dump_1x "$img" "--metadata-snap=$held"
		same_dump_1x "$img" -m --dev-id 1 --dev-id 0
	fi
	# human readable (stored without the command line and exit code)
	if ref_body "$d/ref-thin_dump-human.txt" > "$WORK/want.txt"; then
		sed -i -e '1{/^\$ /d}' -e '${/^exit code: /d}' "$WORK/want.txt"
		expect_rc "$(ref_rc "$d/ref-thin_dump-human.txt.rc")" "$TD" --format human_readable "$img"
		assert_same "$WORK/want.txt" "$WORK/out"
		expect_rc 0 "$TD" -f human_readable --skip-mappings "$img"
		same_as_ref -f human_readable --skip-mappings "$img"
	fi
	# metadata snapshot
	if ref_body "$d/ref-thin_dump-metadata-snap.xml" > "$WORK/want.xml"; then
		expect_rc "$(ref_rc "$d/ref-thin_dump-metadata-snap.xml.rc")" "$TD" -m "$img"
		assert_same "$WORK/want.xml" "$WORK/out"
		assert_contains "$WORK/out" 'nr_data_blocks="0"'
		same_as_ref --metadata-snap "$img"
		same_as_ref -m --dev-id 1 "$img"
		held=$(python3 -c 'import struct,sys; f=open(sys.argv[1],"rb"); f.seek(56); print(struct.unpack("<Q", f.read(8))[0])' "$img")
		same_as_ref --metadata-snap="$held" "$img"
		same_as_ref -m"$held" "$img"
		expect_rc 0 "$TD" -m="$held" "$img"
		assert_same "$WORK/want.xml" "$WORK/out"
		expect_rc 1 "$TD" --metadata-snap=$((held + 1)) "$img"
		assert_contains "$WORK/err" "metadata snapshot does not match that in superblock"
	else
		expect_rc 1 "$TD" -m "$img"
		assert_contains "$WORK/err" "no current metadata snap"
		[ ! -s "$WORK/out" ] || die "-m without a snapshot wrote output"
	fi
	# options, compared with 0.9.0 on the same file
	same_as_ref "$img"
	same_as_ref --skip-mappings "$img"
	same_as_ref --dev-id 1 "$img"
	same_as_ref --dev-id 3 --dev-id 0 "$img"
	same_as_ref --dev-id 4242 "$img"
	same_as_ref --transaction-id 77 --data-block-size 256 --nr-data-blocks 99 "$img"
	same_as_ref --nr-data-blocks 18446744073709551615 --skip-mappings "$img"
	same_as_ref -f human_readable --dev-id 1 "$img"
	# -o writes the same bytes to a file, nothing to stdout
	rm -f "$WORK/o.xml"
	expect_rc 0 "$TD" -o "$WORK/o.xml" "$img"
	[ ! -s "$WORK/out" ] || die "-o also wrote to stdout"
	"$REF" "$img" > "$WORK/ref.xml"
	assert_same "$WORK/ref.xml" "$WORK/o.xml"
	expect_rc 0 "$TD" --output="$WORK/o.xml" --format=human_readable "$img"
	"$REF" -f human_readable "$img" > "$WORK/ref.txt"
	assert_same "$WORK/ref.txt" "$WORK/o.xml"
	n=$((n + 1))
done
[ "$n" -ge 5 ] || die "only $n fixtures found"

# the overrides really land in the header
img=$(fixture_copy basic)
expect_rc 0 "$TD" --transaction-id 5 --data-block-size 1024 --nr-data-blocks 7 "$img"
assert_contains "$WORK/out" 'transaction="5" flags="0" version="2" data_block_size="1024" nr_data_blocks="7">'
expect_rc 0 "$TD" --skip-mappings "$img"
assert_not_contains "$WORK/out" "mapping"
expect_rc 0 "$TD" --dev-id 1 "$img"
assert_not_contains "$WORK/out" 'dev_id="0"'
assert_contains "$WORK/out" 'dev_id="1"'

note "CLI"
expect_rc 0 "$TD" -h
assert_contains "$WORK/out" "Usage: thin_dump"
expect_rc 0 "$TD" --help
for o in --format --output --metadata-snap --dev-id --skip-mappings --transaction-id \
	--data-block-size --nr-data-blocks --quiet --repair --version; do
	assert_contains "$WORK/out" "$o"
done
expect_rc 0 "$TD" -V
[ "$(cat "$WORK/out")" = "$(sed -n 's/^#define THINMETA_VERSION "\(.*\)"$/\1/p' "$TOP/lib/util/cli.h")" ] ||
	die "-V printed '$(cat "$WORK/out")'"
expect_rc 0 "$TD" --version
expect_rc 2 "$TD" --bogus "$img"
assert_contains "$WORK/err" "Usage:"
expect_rc 2 "$TD"
assert_contains "$WORK/err" "No input file provided."
expect_rc 2 "$TD" "$img" "$img"
expect_rc 2 "$TD" -f bogus "$img"
assert_contains "$WORK/err" "unknown format 'bogus'"
expect_rc 2 "$TD" --dev-id x "$img"
assert_contains "$WORK/err" "couldn't parse <dev-id>"
expect_rc 2 "$TD" --dev-id -1 "$img"
expect_rc 2 "$TD" --transaction-id 12ab "$img"
expect_rc 2 "$TD" --data-block-size 0 "$img"
expect_rc 2 "$TD" --nr-data-blocks "" "$img"
expect_rc 2 "$TD" -m=x "$img"
expect_rc 2 "$TD" -o
expect_rc 1 "$TD" -f custom=/nonexistent.so "$img"
assert_contains "$WORK/err" "not supported"
# --repair on a healthy input: the plain dump (repair cases: repair_matrix.sh)
expect_rc 0 "$TD" --repair "$img"
"$TD" "$img" > "$WORK/plain.xml"
assert_same "$WORK/plain.xml" "$WORK/out"
expect_rc 2 "$TD" --repair --skip-mappings "$img"
expect_rc 1 "$TD" -o "$WORK/no/such/dir/out.xml" "$img"
assert_contains "$WORK/err" "cannot open output file"
if [ -w /dev/full ]; then
	expect_rc 1 "$TD" -o /dev/full "$img"
	assert_contains "$WORK/err" "No space left on device"
fi

note "a reader that closes the pipe early (lvconvert --repair reads one line, SIGPIPE ignored)"
{
	echo '<superblock uuid="" time="1" transaction="1" flags="0" version="2" data_block_size="128" nr_data_blocks="60000">'
	echo '  <device dev_id="0" mapped_blocks="20000" transaction="0" creation_time="0" snap_time="0">'
	awk 'BEGIN { for (i = 0; i < 20000; i++) printf "    <single_mapping origin_block=\"%d\" data_block=\"%d\" time=\"0\"/>\n", i, 3 * i }'
	echo '  </device>'
	echo '</superblock>'
} > "$WORK/big.xml"
truncate -s 8M "$WORK/big.bin"
"$BIN/thin_restore" -i "$WORK/big.xml" -o "$WORK/big.bin" > /dev/null
(
	trap '' PIPE
	set +o pipefail
	"$TD" "$WORK/big.bin" 2> "$WORK/pipe.err" | head -1 > "$WORK/pipe.out"
	echo "${PIPESTATUS[0]}" > "$WORK/pipe.rc"
)
[ "$(cat "$WORK/pipe.rc")" = 1 ] || die "thin_dump into a closed pipe: exit $(cat "$WORK/pipe.rc"), expected 1"
[ ! -s "$WORK/pipe.err" ] || { cat "$WORK/pipe.err"; die "thin_dump into a closed pipe printed an error"; }
assert_contains "$WORK/pipe.out" '<superblock uuid="" time="1" transaction="1"'

note "bad input: one line on stderr, exit 1"
one_line_error() {  # file message
	expect_rc 1 "$TD" "$1"
	[ ! -s "$WORK/out" ] || die "output for bad input $1"
	[ "$(wc -l < "$WORK/err")" = 1 ] || { cat "$WORK/err"; die "not one line for $1"; }
	assert_contains "$WORK/err" "$2"
}
one_line_error "$WORK/missing" "Couldn't find input file '$WORK/missing'"
one_line_error "$WORK" "Not a block device or regular file"
head -c 1000 /dev/zero > "$WORK/tiny"
one_line_error "$WORK/tiny" "Metadata device/file too small"
for i in 1 2 3 4; do "$REF" "$img"; done > "$WORK/x.xml"   # >= 4 KiB
one_line_error "$WORK/x.xml" "This looks like XML"
truncate -s 4M "$WORK/zero"
one_line_error "$WORK/zero" "bad checksum in superblock, wanted"
"$REF" "$WORK/zero" 2> "$WORK/ref.err" >/dev/null || true
assert_same "$WORK/ref.err" "$WORK/err"
# -q: silence, status only
expect_rc 1 "$TD" -q "$WORK/zero"
[ ! -s "$WORK/err" ] || die "-q printed an error"
expect_rc 0 "$TD" -q "$img"
assert_contains "$WORK/out" "<superblock"
echo "dump_fixtures: ok ($n fixtures)"
