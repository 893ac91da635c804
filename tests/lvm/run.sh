#!/bin/bash
# On-demand LVM suite (never run by `make check`): real LVM2 (Debian 12's
# lvm2, in a QEMU/TCG guest booting the Debian kernel) drives our tools
# through lvm.conf.  See tests/lvm/README.md.
#
# Usage: tests/lvm/run.sh [SCENARIO...]     (default: every scenario)
#   SCENARIO: a number or name of tests/lvm/scenarios/N-name.sh (3, repair, 3-repair)
# Environment:
#   IMPL="ours ref"   implementations to run (default both; ref = 0.9.0)
#   BUILD=build       where our tools are (BUILD/bin, BUILD/devbin)
#   LVM_WORK=/tmp/thinmeta-lvm-work   scratch (kernel, initramfs, disks)
#   KEEP=1            keep the disk images of each run
# Writes tests/lvm/log/<scenario>.<impl>.{steps,transcript,calls} and
# tests/lvm/<scenario>.result (both implementations side by side, from the
# latest log of each).  Exit status 0 when every step of ours passed.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# QEMU TCG by default (nested KVM, on a host that offers /dev/kvm, has been
# seen to hang before the guest kernel's first line); ACCEL=kvm to try it.
ACCEL=${ACCEL:-tcg}
CPU=max; [ "$ACCEL" = kvm ] && CPU=host
TOP=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-build}
IMPL=${IMPL:-ours ref}
export LVM_WORK=${LVM_WORK:-/tmp/thinmeta-lvm-work}
WORK=$LVM_WORK

die() { echo "lvm suite: $*" >&2; exit 1; }
command -v qemu-system-x86_64 > /dev/null || die "qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
ls /boot/vmlinuz-* > /dev/null 2>&1 || die "no /boot/vmlinuz-* (apt-get install linux-image-amd64)"

scen=()
if [ $# = 0 ]; then
	for f in "$HERE"/scenarios/*.sh; do scen+=("$f"); done
else
	for a in "$@"; do
		f=$(ls "$HERE"/scenarios/"$a"-*.sh "$HERE"/scenarios/*-"$a".sh "$HERE"/scenarios/"$a".sh 2> /dev/null | head -1 || true)
		[ -n "$f" ] || die "no scenario '$a' in $HERE/scenarios"
		scen+=("$f")
	done
fi

mkdir -p "$WORK" "$HERE/log"
# QEMU under its own name: a broad "pkill -f qemu" elsewhere on a shared
# machine must not end these runs
ln -sf "$(command -v qemu-system-x86_64)" "$WORK/lvm-suite-guest"
"$HERE/build-initramfs.sh" "$BUILD"

# boot NAME IMPL: one guest run of scenario NAME with implementation IMPL
boot() {
	local f=$1 impl=$2 name run opt disk timeout t0 t1 rc=0
	name=$(basename "$f" .sh)
	run=$WORK/run-$name-$impl
	opt() { sed -n "s/^# @$1 //p" "$f" | head -1; }
	disk=$(opt disk_mib); disk=${disk:-512}
	timeout=$(opt timeout); timeout=${timeout:-900}
	rm -rf "$run"; mkdir -p "$run/cpio/etc" "$run/results"
	echo "$impl" > "$run/cpio/etc/thin-impl"
	cp "$f" "$run/cpio/lvm-scenario.sh"
	printf 'set +e\n. /lib/lvm-lib.sh\n. /lvm-scenario.sh\nlvm_finish\n' > "$run/cpio/scenario.sh"
	(cd "$run/cpio" && find . | cpio -o -H newc --quiet) | gzip -1 > "$run/scen.cpio.gz"
	cat "$WORK/initramfs.cpio.gz" "$run/scen.cpio.gz" > "$run/initrd.gz"
	local try
	for try in 1 2 3; do
		echo "[$name/$impl] booting (disks 2 x ${disk} MiB)"
		truncate -s 0 "$run/pv1.img" "$run/pv2.img" "$run/results.img"
		truncate -s "${disk}M" "$run/pv1.img" "$run/pv2.img"
		truncate -s 64M "$run/results.img"
		rc=0
		t0=$(date +%s)
		timeout -s KILL "$timeout" "$WORK/lvm-suite-guest" -accel "$ACCEL" -cpu "$CPU" -smp 2 -m 1024 -nographic -no-reboot \
			-kernel "$WORK/vmlinuz" -initrd "$run/initrd.gz" \
			-append "console=ttyS0 panic=-1 loglevel=4 rdinit=/init" \
			-drive "file=$run/pv1.img,format=raw,if=virtio,cache=unsafe,discard=unmap" \
			-drive "file=$run/pv2.img,format=raw,if=virtio,cache=unsafe,discard=unmap" \
			-drive "file=$run/results.img,format=raw,if=virtio,cache=writeback" \
			< /dev/null > "$run/console.log" 2>&1 || rc=$?
		t1=$(date +%s)
		echo "[$name/$impl] guest run took $((t1 - t0)) s (qemu exit $rc)"
		# QEMU terminated by a signal from outside (not our timeout): again
		grep -q "terminating on signal" "$run/console.log" || break
		echo "[$name/$impl] QEMU was terminated from outside; booting again from blank disks"
		sleep 10
	done
	if ! tar -xf "$run/results.img" -C "$run/results" 2> /dev/null || [ ! -f "$run/results/steps.txt" ]; then
		echo "[$name/$impl] no results archive; console tail:" >&2
		tr -d '\r' < "$run/console.log" > "$HERE/log/$name.$impl.console"
		tail -20 "$HERE/log/$name.$impl.console" >&2
		printf '0\tFAIL\tguest run\tno results after %s s (guest hung, crashed or timed out; see log/%s.%s.console)\n' \
			"$((t1 - t0))" "$name" "$impl" > "$HERE/log/$name.$impl.steps"
		{
			echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
			echo "guest_seconds=$((t1 - t0))"
			echo "kernel=$(cat "$WORK/kernel-version")"
			cat "$WORK/overlay/etc/thin-versions"
		} > "$HERE/log/$name.$impl.env"
		return 0
	fi
	grep -q "FIXTURE-SCENARIO-DONE" "$run/console.log" ||
		printf '0\tFAIL\tguest run\tthe scenario did not finish\n' >> "$run/results/steps.txt"
	cp "$run/results/steps.txt" "$HERE/log/$name.$impl.steps"
	cp "$run/results/transcript.txt" "$HERE/log/$name.$impl.transcript"
	cp "$run/results/tool-calls.log" "$HERE/log/$name.$impl.calls"
	{
		echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
		echo "guest_seconds=$((t1 - t0))"
		cat "$run/results/env.txt" 2> /dev/null
	} > "$HERE/log/$name.$impl.env"
	[ "${KEEP:-0}" = 1 ] || rm -f "$run/pv1.img" "$run/pv2.img"
	sed 's/^/    /' "$HERE/log/$name.$impl.steps" | cut -c1-160
}

# result NAME: tests/lvm/NAME.result from the latest logs of both implementations
result() {
	local name=$1 out=$HERE/$1.result i
	{
		echo "# tests/lvm scenario $name: $(sed -n '2s/^# *//p' "$HERE/scenarios/$name.sh")"
		for i in ours ref; do
			[ -f "$HERE/log/$name.$i.env" ] || { echo "$i: not run"; continue; }
			echo "$i: $(sed -n "s/^$i=//p" "$HERE/log/$name.$i.env"); run $(sed -n 's/^date=//p' "$HERE/log/$name.$i.env"), kernel $(sed -n 's/^kernel=//p' "$HERE/log/$name.$i.env"), lvm2 $(sed -n 's/^lvm2=//p' "$HERE/log/$name.$i.env"), guest $(sed -n 's/^guest_seconds=//p' "$HERE/log/$name.$i.env") s"
		done
		echo "(in a step's description, \"our\" tool means the implementation of that column)"
		echo
		python3 - "$HERE/log/$name.ours.steps" "$HERE/log/$name.ref.steps" <<'PY'
import os, sys
def load(p):
    d = {}
    order = []
    if os.path.exists(p):
        for line in open(p, errors='replace'):
            f = line.rstrip('\n').split('\t')
            if len(f) < 3:
                continue
            while len(f) < 4:
                f.append('')
            d[f[0]] = f
            order.append(f[0])
    return d, order
ours, oo = load(sys.argv[1])
ref, ro = load(sys.argv[2])
ids = oo + [i for i in ro if i not in ours]
print("%-6s %-5s %-6s %s" % ("step", "ours", "0.9.0", "description"))
for i in ids:
    o = ours.get(i); r = ref.get(i)
    desc = (o or r)[2]
    print("%-6s %-5s %-6s %s" % (i, o[1] if o else "-", r[1] if r else "-", desc))
    if o and o[3]:
        print("%-19s ours: %s" % ("", o[3]))
    if r and r[3]:
        print("%-19s 0.9.0: %s" % ("", r[3]))
PY
	} > "$out"
	echo "wrote $out"
}

for f in "${scen[@]}"; do
	for i in $IMPL; do boot "$f" "$i"; done
	result "$(basename "$f" .sh)"
done
fails=0
for f in "${scen[@]}"; do
	n=$(basename "$f" .sh)
	[ -f "$HERE/log/$n.ours.steps" ] || continue
	c=$(grep -c '	FAIL	' "$HERE/log/$n.ours.steps" || true)
	fails=$((fails + c))
done
echo "ours: $fails failing step(s) in ${#scen[@]} scenario(s)"
[ "$fails" = 0 ]
