# The same-file guard (cli_same_file): a tool that reads one path and
# writes another refuses when both are the same data, spelled the same,
# through a symlink, a hard link, or a loop device over the file, and
# leaves the file untouched (exit 1, one clear line).  Different files
# still work.
source "$TOP/tests/lib.sh"

M=$(fixture_copy basic)
"$BIN/thin_dump" "$M" > "$WORK/s.xml"
cp "$M" "$WORK/m.keep"
cp "$WORK/s.xml" "$WORK/s.keep"
ln -s "$M" "$WORK/m.sym"
ln "$M" "$WORK/m.hard"
ln -s "$WORK/s.xml" "$WORK/s.sym"
ln "$WORK/s.xml" "$WORK/s.hard"
tries=0

# refused WHAT MESSAGE CMD... : exit 1 (thin_names: 2, its "precondition
# failed"), MESSAGE on stderr, no file changed
refused() {
	local what=$1 msg=$2 rc=1
	shift 2
	case $1 in */thin_names) rc=2 ;; esac
	tries=$((tries + 1))
	note "$what"
	expect_rc $rc "$@"
	assert_contains "$WORK/err" "$msg"
	[ "$(wc -l < "$WORK/err")" -eq 1 ] || { cat "$WORK/err"; die "$what: not one line"; }
	cmp -s "$M" "$WORK/m.keep" || die "$what: the metadata was modified"
	cmp -s "$WORK/s.xml" "$WORK/s.keep" || die "$what: the XML was modified"
}

for o in "$WORK/s.xml" "$WORK/s.sym" "$WORK/s.hard" "$WORK/./s.xml"; do
	refused "restore -i s.xml -o $(basename "$o")" "is the input" \
		"$BIN/thin_restore" -i "$WORK/s.xml" -o "$o"
done
for o in "$M" "$WORK/m.sym" "$WORK/m.hard"; do
	refused "repair -i m -o $(basename "$o")" "is the input" \
		"$BIN/thin_repair" -i "$M" -o "$o"
	refused "dump -o $(basename "$o") m" "is the input" "$BIN/thin_dump" -o "$o" "$M"
	refused "trim --metadata-dev m --data-dev $(basename "$o")" "is the metadata device" \
		"$BIN/thin_trim" --metadata-dev "$M" --data-dev "$o"
done
refused "dump -r -o m m" "is the input" "$BIN/thin_dump" -r -o "$WORK/m.sym" "$M"

note "names tables: never the metadata, the output or the input"
T=$WORK/names.tmn
refused "names --table m" "is the metadata" "$BIN/thin_names" --table "$WORK/m.hard" "$M" list
tries=$((tries + 1)); expect_rc 2 "$BIN/thin_names" --table "$WORK/m.sym" "$M" set 1 --name x
cmp -s "$M" "$WORK/m.keep" || die "thin_names set --table m: the metadata was modified"
cp "$M" "$WORK/out.bin"
cp "$WORK/out.bin" "$WORK/out.keep"
for t in "$WORK/out.bin" "$WORK/s.sym"; do
	tries=$((tries + 1))
	expect_rc 1 "$BIN/thin_restore" -i "$WORK/s.xml" -o "$WORK/out.bin" --names-table "$t"
	assert_contains "$WORK/err" "names table"
	cmp -s "$WORK/out.bin" "$WORK/out.keep" || die "restore --names-table $t: output modified"
	cmp -s "$WORK/s.xml" "$WORK/s.keep" || die "restore --names-table $t: input modified"
done
echo keep > "$T"
tries=$((tries + 1))
expect_rc 1 "$BIN/thin_dump" --names-table "$T" -o "$T" "$M"
assert_contains "$WORK/err" "is the names table"
[ "$(cat "$T")" = keep ] || die "dump -o TABLE --names-table TABLE: the table was modified"

note "different files still work"
truncate -s 8M "$WORK/new.bin"
expect_rc 0 "$BIN/thin_restore" -i "$WORK/s.sym" -o "$WORK/new.bin"
expect_rc 0 "$BIN/thin_repair" -i "$WORK/m.sym" -o "$WORK/new.bin"
expect_rc 0 "$BIN/thin_dump" -o "$WORK/d.xml" "$WORK/m.hard"
assert_same "$WORK/s.xml" "$WORK/d.xml"

if losetup -f >/dev/null 2>&1; then
	note "loop devices: the device over the file is the file"
	L=$(losetup -f --show "$M")
	trap 'losetup -d "$L"' EXIT
	refused "repair -i m -o loop(m)" "is the input" "$BIN/thin_repair" -i "$M" -o "$L"
	refused "repair -i loop(m) -o m" "is the input" "$BIN/thin_repair" -i "$L" -o "$WORK/m.sym"
	refused "dump -o m loop(m)" "is the input" "$BIN/thin_dump" -o "$M" "$L"
	refused "trim --metadata-dev loop(m) --data-dev m" "is the metadata device" \
		"$BIN/thin_trim" --metadata-dev "$L" --data-dev "$WORK/m.hard"
	L2=$(losetup -f --show "$M")
	trap 'losetup -d "$L" "$L2"' EXIT
	refused "repair -i loop1(m) -o loop2(m)" "is the input" "$BIN/thin_repair" -i "$L" -o "$L2"
	Ls=$WORK/loop.sym
	ln -s "$L" "$Ls"
	refused "repair -i loop -o symlink to loop" "is the input" "$BIN/thin_repair" -i "$L" -o "$Ls"
	expect_rc 0 "$BIN/thin_repair" -i "$L" -o "$WORK/new.bin"
else
	echo "## loop devices unavailable: the loop cases did not run ##"
fi
echo "same-file guard: $tries mistakes tried, all refused"
