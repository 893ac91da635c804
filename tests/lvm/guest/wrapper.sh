#!/bin/sh
# tests/lvm wrapper, installed as /opt/wrap/<tool> (lvm.conf points LVM here).
# Runs /opt/<impl>/<tool> (impl from /etc/thin-impl: ours or ref) with the
# same argv, stdin and stdout, and appends one line per call to
# /results/tool-calls.log:
#   call=N tool=T impl=I rc=R caller=lvm|<exe> cmd="<caller's argv>" argv='a' 'b' ...
# caller=lvm means the parent process is /sbin/lvm itself.  The tool's
# stderr is kept in /results/calls/N.err and passed on to the caller.
tool=${0##*/}
impl=$(cat /etc/thin-impl 2>/dev/null || echo none)
real=/opt/$impl/$tool
mkdir -p /results/calls
n=$(($(cat /results/calls/seq 2>/dev/null || echo 0) + 1))
echo "$n" > /results/calls/seq
pexe=$(readlink "/proc/$PPID/exe" 2>/dev/null)
pcmd=$(tr '\0' ' ' < "/proc/$PPID/cmdline" 2>/dev/null | sed 's/ $//')
case "$pexe" in
*/lvm) caller=lvm ;;
*) caller=${pexe##*/} ;;
esac
"$real" "$@" 2> "/results/calls/$n.err"
rc=$?
cat "/results/calls/$n.err" >&2
{
	printf 'call=%s tool=%s impl=%s rc=%s caller=%s cmd="%s" argv=' "$n" "$tool" "$impl" "$rc" "$caller" "$pcmd"
	for a in "$@"; do printf "'%s' " "$a"; done
	echo
} >> /results/tool-calls.log
exit $rc
