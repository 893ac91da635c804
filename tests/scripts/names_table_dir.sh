# thin_names creates the directories of a new table (0700), so the first
# 'set' works on a fresh host (the default is /var/lib/thinmeta/names/).
source "$TOP/tests/lib.sh"
m=$(fixture_copy basic)
expect_rc 0 "$BIN/thin_names" "$m" tag --new
t=$WORK/var/lib/thinmeta/names/pool.tmn
expect_rc 0 "$BIN/thin_names" --table "$t" "$m" set 1 --name vm-web-root
[ -f "$t" ] || die "table not created"
[ "$(stat -c %a "$(dirname "$t")")" = 700 ] || die "directory mode is not 0700"
expect_rc 0 "$BIN/thin_ls" --names-table "$t" "$m"
assert_contains "$WORK/out" "vm-web-root"
# a path whose parent cannot be created is a clear one-line failure
expect_rc 2 "$BIN/thin_names" --table /proc/nonexistent/dir/t.tmn "$m" set 1 --name x
[ "$(wc -l < "$WORK/err")" -eq 1 ] || die "not one line"
assert_contains "$WORK/err" "cannot create its directory"
echo "names table directory tests passed"
