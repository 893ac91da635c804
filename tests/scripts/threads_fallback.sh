# Every tool gives the same output and exit status when its helper threads
# cannot start (pthread_create fails, as in a process out of threads): each
# thread the tool starts is refused in turn, then all of them
# (tests/tools/shim/nothreads.so).  Sound, shared and damaged metadata, on
# the file and, where loop devices exist, on a block device (read-ahead).
source "$TOP/tests/lib.sh"
SHIM=$DEVBIN/nothreads.so
[ -f "$SHIM" ] || die "$SHIM not built"
# under ASan (make asan) the shim comes before the sanitizer's runtime
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0

"$DEVBIN/gen_pool" --origins 3 --snapshots 9 --mappings 120000 --seed 7 --binary \
	-o "$WORK/pool.bin" > /dev/null
cp "$WORK/pool.bin" "$WORK/bad.bin"
# a mapping leaf of device 1 with a bad checksum: the damaged paths
leaf=$("$DEVBIN/thin_damage" --leaf-of 1:3 "$WORK/bad.bin" | grep -Eo '[0-9]+' | head -1)
"$DEVBIN/thin_damage" --flip-byte "$leaf:100" "$WORK/bad.bin" > /dev/null
imgs=("$WORK/pool.bin" "$WORK/bad.bin" "$(fixture_copy snap_churn)" "$(fixture_copy held_root)")

loops=()
cleanup() { for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null; done; true; }
trap cleanup EXIT
if losetup -f > /dev/null 2>&1; then
	for i in 0 1; do
		l=$(losetup -f --show --read-only "${imgs[$i]}")
		loops+=("$l")
		imgs+=("$l")
	done
else
	echo "####################################################################"
	echo "## NOTE: no loop devices here: block-device cases (read-ahead) not run ##"
	echo "####################################################################"
fi

# run NAME IMG CMD...: output, error and status of CMD into $WORK/NAME
run() {
	local name=$1 img=$2 rc=0; shift 2
	"$@" > "$WORK/$name.out" 2> "$WORK/$name.err" || rc=$?
	echo "rc $rc" >> "$WORK/$name.out"
	case $1 in
	*thin_repair|*thin_restore)
		if [ "$rc" = 0 ]; then "$BIN/thin_dump" "$WORK/o.bin" >> "$WORK/$name.out"; fi ;;
	esac
	sed -i "s|$img|IMG|g" "$WORK/$name.out" "$WORK/$name.err"
}

truncate -s 64M "$WORK/o.bin"
"$BIN/thin_dump" "$WORK/pool.bin" > "$WORK/pool.xml"
threaded=0 cases=0
for img in "${imgs[@]}"; do
	while read -r t; do
		# shellcheck disable=SC2206
		cmd=($t)
		cmd[0]=$BIN/${cmd[0]}
		for i in "${!cmd[@]}"; do
			cmd[$i]=${cmd[$i]/IMG/$img}
			cmd[$i]=${cmd[$i]/OUT/$WORK/o.bin}
			cmd[$i]=${cmd[$i]/XML/$WORK/pool.xml}
		done
		run want "$img" "${cmd[@]}"
		rm -f "$WORK/count"
		THINMETA_NOTHREAD_AT=1000000 THINMETA_NOTHREAD_COUNT=$WORK/count LD_PRELOAD=$SHIM \
			run count "$img" "${cmd[@]}"
		n=$(cat "$WORK/count" 2>/dev/null || echo 0)
		# the shim itself, refusing nothing, changes nothing
		assert_same "$WORK/want.out" "$WORK/count.out"
		assert_same "$WORK/want.err" "$WORK/count.err"
		[ "$n" -gt 0 ] && threaded=$((threaded + 1))
		for at in $(seq 0 $((n - 1))) -1; do
			THINMETA_NOTHREAD_AT=$at LD_PRELOAD=$SHIM run got "$img" "${cmd[@]}"
			cmp -s "$WORK/want.out" "$WORK/got.out" && cmp -s "$WORK/want.err" "$WORK/got.err" || {
				diff -u "$WORK/want.out" "$WORK/got.out" | head -20
				diff -u "$WORK/want.err" "$WORK/got.err" | head -20
				die "$t on $img: thread $at refused changes the result"
			}
			cases=$((cases + 1))
		done
	done <<-'LIST'
		thin_check IMG
		thin_check --skip-mappings IMG
		thin_ls -o DEV,MAPPED_BLOCKS,EXCLUSIVE_BLOCKS,SHARED_BLOCKS,HIGHEST_BLOCK IMG
		thin_dump IMG
		thin_dump --repair IMG
		thin_rmap --region 0..5000 IMG
		thin_repair -i IMG -o OUT
		thin_restore -i XML -o OUT
	LIST
done
note "$cases runs with threads refused, $threaded tool runs that start threads"
[ "$threaded" -ge 10 ] || die "only $threaded tool runs started a thread: the test would prove nothing"
