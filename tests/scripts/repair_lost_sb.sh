#!/bin/bash
# thin_repair after a lost superblock, on every kernel fixture (fixtures/kernel/*/)
# x {superblock zeroed; + one leaf zeroed; + the details root zeroed; + a newer-looking
# orphan tree planted above the highest written block}, with the right
# --transaction-id/--data-block-size/--nr-data-blocks, for ours, 0.9.0 and 1.1.0 on the
# same images.  exact = the repaired pool dumps like the undamaged one (the superblock's
# time and flags aside); wrong = exit 0 with anything else; refused = non-zero exit.
# Ours: never wrong; a refusal lists the live state (its mapping root) with the command
# line that picks it; thin_dump --repair takes the same decision; exact wherever 1.1.0
# is.  REPAIR_LOST_SB_MD=FILE writes the matrix as markdown.
source "$TOP/tests/lib.sh"
need_ref0
need_ref1

DMG=$DEVBIN/thin_damage
DAMAGES="sb leaf details orphan"
declare -A N   # N[tool.damage.outcome]
rows=()
missed=0 unlisted=0 listed=1

strip() { sed '1s/ time="[0-9]*"//; 1s/ flags="[0-9]*"//' "$1"; }

# classify TOOLDIR IMG OUT -> exact|wrong|refused (stderr in $WORK/err.$tool)
run_repair() {
	local bin=$1 img=$2 tag=$3 rc=0
	truncate -s 0 "$WORK/out.bin"
	truncate -s "$(stat -c %s "$img")" "$WORK/out.bin"
	timeout 300 "$bin/thin_repair" -i "$img" -o "$WORK/out.bin" --transaction-id "$tid" \
		--data-block-size "$dbs" --nr-data-blocks "$nr" >"$WORK/out.$tag" 2>"$WORK/err.$tag" || rc=$?
	if [ "$rc" != 0 ]; then
		echo refused
		return
	fi
	"$BIN/thin_dump" "$WORK/out.bin" > "$WORK/dump.$tag" 2>/dev/null || { echo wrong; return; }
	strip "$WORK/dump.$tag" > "$WORK/dump.$tag.s"
	if cmp -s "$WORK/dump.$tag.s" "$WORK/truth.s"; then echo exact; return; fi
	# A fixture whose disk holds a newer pool state written in full but for its
	# superblock (a crash between the commit's flush and its superblock write,
	# fixtures/kernel/*/lost-sb-uncommitted-root): without the superblock that
	# state is indistinguishable from a committed one.  Taking it is counted
	# apart ("uncommitted"), never as exact.
	if [ -f "$FIXTURES/$fx/lost-sb-uncommitted-root" ] &&
	   grep -q "using mapping root $(cat "$FIXTURES/$fx/lost-sb-uncommitted-root") " "$WORK/err.$tag"; then
		echo uncommitted
		return
	fi
	echo wrong
}

damage() {  # kind src dst
	cp "$2" "$3"
	case $1 in
	sb) ;;
	leaf)
		if [ -n "$dev" ]; then "$DMG" --zero-block "$("$DMG" --leaf-of "$dev" "$3")" "$3"
		else "$DMG" --zero-block "$mroot" "$3"; fi ;;
	details) "$DMG" --zero-block "$droot" "$3" ;;
	orphan) "$DMG" --plant-newer-tree "$3" > /dev/null ;;
	esac
	"$DMG" --zero-block 0 "$3"
}

for fx in $(fixtures); do
	img=$(fixture_copy "$fx")
	if ! "$BIN/thin_check" -q --ignore-non-fatal-errors "$img"; then
		note "$fx: not a consistent pool, not counted"
		continue
	fi
	"$BIN/thin_dump" "$img" > "$WORK/truth"
	strip "$WORK/truth" > "$WORK/truth.s"
	hdr=$(head -1 "$WORK/truth")
	tid=$(sed 's/.* transaction="\([0-9]*\)".*/\1/' <<< "$hdr")
	dbs=$(sed 's/.* data_block_size="\([0-9]*\)".*/\1/' <<< "$hdr")
	nr=$(sed 's/.* nr_data_blocks="\([0-9]*\)".*/\1/' <<< "$hdr")
	mroot=$("$DMG" --info "$img" | sed -n 's/^data_mapping_root=//p')
	droot=$("$DMG" --info "$img" | sed -n 's/^device_details_root=//p')
	dev=$(sed -n 's/.*<device dev_id="\([0-9]*\)" mapped_blocks="[1-9].*/\1/p' "$WORK/truth" | head -1)
	for dmg in $DAMAGES; do
		damage "$dmg" "$img" "$WORK/d.bin" || { note "$fx $dmg: this damage cannot be made on this image (no room), not counted"; continue; }
		row="| $fx | $dmg"
		for tool in ours ref0 ref1; do
			case $tool in ours) bin=$BIN ;; ref0) bin=$REF0 ;; ref1) bin=$REF1 ;; esac
			res=$(run_repair "$bin" "$WORK/d.bin" "$tool")
			N[$tool.$dmg.$res]=$(( ${N[$tool.$dmg.$res]:-0} + 1 ))
			row="$row | $res"
			eval "res_$tool=\$res"
		done
		rows+=("$row |")
		note "$fx $dmg: ours $res_ours, 0.9.0 $res_ref0, 1.1.0 $res_ref1"
		[ "$res_ours" != uncommitted ] ||
			echo "*** $fx $dmg: ours took the newer state written in full but for its superblock (see $fx/lost-sb-uncommitted-root)"
		# ours: never a wrong pool
		[ "$res_ours" != wrong ] || { diff "$WORK/dump.ours.s" "$WORK/truth.s" | head; die "$fx $dmg: exit 0 with a pool that is not the live one"; }
		listed=1
		if [ "$res_ours" = refused ]; then
			# the live state among the candidates, with the command line that picks it
			# (a goal, counted loudly: a refusal is safe, but should name the live state)
			if ! grep -q "^candidate [0-9]*: mapping root $mroot " "$WORK/err.ours" ||
			   ! grep -q -- "--override-mapping-root $mroot\( \|$\)" "$WORK/err.ours"; then
				echo "*** GOAL MISSED: $fx $dmg: refused without listing the live state (mapping root $mroot) and its command line"
				unlisted=$((unlisted + 1))
				listed=0
			else
				listed=1
			fi
		fi
		# thin_dump --repair decides the same
		rc=0
		"$BIN/thin_dump" --repair --transaction-id "$tid" --data-block-size "$dbs" \
			--nr-data-blocks "$nr" "$WORK/d.bin" > "$WORK/rdump" 2> "$WORK/rdump.err" || rc=$?
		if [ "$res_ours" = exact ]; then
			[ "$rc" = 0 ] || { cat "$WORK/rdump.err"; die "$fx $dmg: thin_dump --repair refuses what thin_repair recovers"; }
			strip "$WORK/rdump" > "$WORK/rdump.s"
			assert_same "$WORK/rdump.s" "$WORK/truth.s"
		elif [ "$res_ours" = uncommitted ]; then
			[ "$rc" = 0 ] || { cat "$WORK/rdump.err"; die "$fx $dmg: thin_dump --repair refuses what thin_repair takes"; }
			strip "$WORK/rdump" > "$WORK/rdump.s"
			assert_same "$WORK/rdump.s" "$WORK/dump.ours.s"
		else
			[ "$rc" = 1 ] || die "$fx $dmg: thin_dump --repair exit $rc where thin_repair refuses"
			if [ "$listed" = 1 ]; then
				grep -q "^candidate [0-9]*: mapping root $mroot " "$WORK/rdump.err" || die "$fx $dmg: thin_dump --repair lists other candidates"
				grep -q -- "thin_dump --repair .*--override-mapping-root $mroot" "$WORK/rdump.err" || die "$fx $dmg: no thin_dump command line"
			fi
		fi
		# a lost superblock alone: exact at least everywhere 1.1.0 is
		# (issue 10's goal, not a safety property: counted and said loudly; the
		# safety checks above fail the test)
		if [ "$dmg" = sb ] && [ "$res_ref1" = exact ] && [ "$res_ours" != exact ]; then
			echo "*** GOAL MISSED: $fx: 1.1.0 recovers it exactly, we $res_ours"
			missed=$((missed + 1))
		fi
	done
done

total() { echo "$(( ${N[$1.$2.exact]:-0} ))/$(( ${N[$1.$2.refused]:-0} ))/$(( ${N[$1.$2.wrong]:-0} ))$([ "${N[$1.$2.uncommitted]:-0}" = 0 ] || echo " (+${N[$1.$2.uncommitted]} uncommitted)")"; }
{
	echo "| damage (superblock zeroed, and ...) | thinmeta | 0.9.0 | 1.1.0 |"
	echo "|---|---|---|---|"
	for dmg in $DAMAGES; do
		case $dmg in
		sb) what="nothing else" ;; leaf) what="one leaf of the live pool zeroed" ;;
		details) what="the live details root zeroed" ;; orphan) what="a newer-looking orphan tree planted" ;;
		esac
		echo "| $what | $(total ours $dmg) | $(total ref0 $dmg) | $(total ref1 $dmg) |"
	done
} > "$WORK/summary.md"
cat "$WORK/summary.md"
if [ -n "${REPAIR_LOST_SB_MD:-}" ]; then
	{
		echo "Counts are exact/refused/wrong over the consistent pools of fixtures/kernel."
		echo
		cat "$WORK/summary.md"
		echo
		echo "| fixture | damage | thinmeta | 0.9.0 | 1.1.0 |"
		echo "|---|---|---|---|---|"
		printf '%s\n' "${rows[@]}"
	} > "$REPAIR_LOST_SB_MD"
fi
echo "*** superblock lost, nothing else: $missed pools that 1.1.0 recovers exactly and we do not (issue 10's goal: 0)"
echo "*** refusals that do not list the live state: $unlisted (goal: 0)"
