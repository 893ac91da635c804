# make install puts tools, man pages, libthinmeta.a, headers and thinmeta.pc
# where the issue says; a program built with pkg-config against the
# installed copy reads a kernel fixture.
source "$TOP/tests/lib.sh"
dest=$WORK/dest
make -s -C "$TOP" install BUILD="$BUILD" PREFIX=/opt/tm DESTDIR="$dest" >/dev/null
for f in sbin/thin_check sbin/thin_dump sbin/thin_restore lib/libthinmeta.a \
	lib/pkgconfig/thinmeta.pc include/thinmeta/check/check.h include/thinmeta/thin/metadata.h \
	share/man/man8/thin_check.8 share/man/man8/thin_dump.8; do
	[ -e "$dest/opt/tm/$f" ] || die "missing $f after install"
done
[ -x "$dest/opt/tm/sbin/thin_check" ] || die "thin_check not executable"
ls "$dest/opt/tm/include/thinmeta/"*/*-internal.h 2>/dev/null && die "internal headers installed"
# every installed header together, after <time.h> and <pthread.h> (libc's
# struct tm, for one, must not collide with anything of ours)
{
	echo '#include <time.h>'; echo '#include <pthread.h>'
	(cd "$dest/opt/tm/include/thinmeta" && ls */*.h) | sed 's/.*/#include <&>/'
	echo 'int main(void) { struct tm t = { 0 }; return t.tm_sec; }'
} > "$WORK/all.c"
n=$(grep -c '#include <.*/' "$WORK/all.c")
[ "$n" -ge 20 ] || die "only $n headers installed"
cc -std=gnu11 -Wall -Werror -I"$dest/opt/tm/include/thinmeta" $(pkg-config --cflags expat) -c "$WORK/all.c" -o "$WORK/all.o" ||
	die "the installed headers do not compile together with <time.h> and <pthread.h>"
grep -q '^prefix=/opt/tm$' "$dest/opt/tm/lib/pkgconfig/thinmeta.pc" || die "pc prefix"
# point pkg-config at the staged tree
sed "s|^prefix=.*|prefix=$dest/opt/tm|" "$dest/opt/tm/lib/pkgconfig/thinmeta.pc" > "$WORK/thinmeta.pc"
cat > "$WORK/prog.c" <<'C'
#include <stdio.h>
#include <thin/metadata.h>
int main(int argc, char **argv)
{
	struct thin_md *md;
	struct thin_dev_list l;
	char msg[256];
	(void)argc;
	if (thin_md_open(argv[1], 0, &md, msg, sizeof(msg)) < 0) { puts(msg); return 1; }
	if (md->sb_err || thin_read_devices(md->bc, md->sb.device_details_root,
					   md->sb.data_mapping_root, &l, NULL, NULL) < 0)
		return 1;
	printf("transaction %llu devices %zu\n", (unsigned long long)md->sb.trans_id, l.nr);
	thin_dev_list_release(&l);
	thin_md_close(md);
	return 0;
}
C
san=
case $BUILD in *asan*) san="-fsanitize=address,undefined" ;; esac
# shellcheck disable=SC2046
cc $san -o "$WORK/prog" "$WORK/prog.c" $(PKG_CONFIG_PATH=$WORK pkg-config --cflags --libs thinmeta)
m=$(fixture_copy snapshots)
"$WORK/prog" "$m" > "$WORK/prog.out"
assert_contains "$WORK/prog.out" "transaction 7 devices 4"
echo "install test passed"
