# The XML reader decodes canonical mapping lines itself and gives every
# other byte to expat: mixed forms, comments and errors after thousands of
# fast-path lines must behave exactly as with expat alone (same events,
# right line numbers).
source "$TOP/tests/lib.sh"

"$DEVBIN/gen_pool" --origins 2 --snapshots 2 --mappings 20000 --seed 11 -o "$WORK/g.xml"
truncate -s 32M "$WORK/a.bin" "$WORK/b.bin"

note "rewrite every third mapping into a form the fast path does not take"
python3 - "$WORK/g.xml" "$WORK/mixed.xml" <<'PY'
import re, sys
out = []
for i, l in enumerate(open(sys.argv[1])):
    if '_mapping' in l and i % 3 == 0:
        m = re.match(r'(\s*)<(\w+) (.*)/>', l)
        attrs = re.findall(r'(\w+)="(\d+)"', m[3])
        attrs.reverse()                                 # attribute order
        l = m[1] + '<' + m[2] + ' ' + ' '.join(f"{k}='{v}'" for k, v in attrs) + ' />\n'
    elif '_mapping' in l and i % 3 == 1:
        l = l.rstrip('\n') + ' <!-- c -->\n'            # trailing comment
    elif '_mapping' in l and i % 7 == 2:
        l = l.replace('/>', '></' + re.search(r'<(\w+)', l)[1] + '>')  # explicit end tag
    out.append(l)
    if i % 50 == 5:
        out.append('  <!-- a comment line -->\n')
open(sys.argv[2], 'w').write(''.join(out))
PY
expect_rc 0 "$BIN/thin_restore" -i "$WORK/g.xml" -o "$WORK/a.bin"
expect_rc 0 "$BIN/thin_restore" -i "$WORK/mixed.xml" -o "$WORK/b.bin"
"$BIN/thin_dump" "$WORK/a.bin" > "$WORK/a.xml"
"$BIN/thin_dump" "$WORK/b.bin" > "$WORK/b.xml"
assert_same "$WORK/g.xml" "$WORK/a.xml"
assert_same "$WORK/g.xml" "$WORK/b.xml"

note "windows line ends and tabs are accepted"
sed 's/$/\r/; s/^  /\t/' "$WORK/g.xml" > "$WORK/crlf.xml"
expect_rc 0 "$BIN/thin_restore" -i "$WORK/crlf.xml" -o "$WORK/b.bin"
"$BIN/thin_dump" "$WORK/b.bin" > "$WORK/b.xml"
assert_same "$WORK/g.xml" "$WORK/b.xml"

note "errors after many fast-path lines carry the right line number"
n=$(wc -l < "$WORK/g.xml")
line=$((n - 5))
# a mapping out of order (fast-path line), a bad number and a too-large time
# (expat lines), an unknown tag
python3 - "$WORK/g.xml" "$line" <<'PY'
import sys
path, line = sys.argv[1], int(sys.argv[2])
lines = open(path).readlines()
def write(name, idx, text):
    l = list(lines); l[idx - 1] = text
    open(f"{path[:-5]}{name}.xml", 'w').write(''.join(l))
write('e1', line, '    <single_mapping origin_block="0" data_block="1" time="0"/>\n')
write('e2', line, '    <single_mapping origin_block="x" data_block="1" time="0"/>\n')
write('e3', line, '    <single_mapping origin_block="1" data_block="1" time="99999999999"/>\n')
write('e4', line, '    <bogus/>\n')
PY
cp "$WORK/a.bin" "$WORK/keep.bin"
for e in e1 e2 e3 e4; do
	expect_rc 1 "$BIN/thin_restore" -i "$WORK/$e.xml" -o "$WORK/a.bin"
	assert_contains "$WORK/err" "$e.xml:$line: "
	[ "$(wc -l < "$WORK/err")" -eq 1 ] || die "not one line"
	cmp -s "$WORK/a.bin" "$WORK/keep.bin" || die "output modified after a bad XML ($e)"
done
note "a mapping line outside <device> is an error, not silently taken"
printf '<superblock uuid="" time="0" transaction="1" flags="0" version="2" data_block_size="128" nr_data_blocks="100">\n  <single_mapping origin_block="1" data_block="1" time="0"/>\n</superblock>\n' > "$WORK/out.xml"
expect_rc 1 "$BIN/thin_restore" -i "$WORK/out.xml" -o "$WORK/a.bin"
assert_contains "$WORK/err" "out.xml:2: "
echo "fast path tests passed"
