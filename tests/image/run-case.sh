#!/usr/bin/env bash
# One e2fsprogs-style image case (STYLE.md §3).  A case directory holds:
#   name       one-line description
#   image.gz   binary metadata, or
#   fixture    the name of a kernel fixture in $FIXTURES (its metadata.bin.gz), or
#   input.xml  XML restored with our thin_restore into a 16 MiB file first
#   args       extra options for the tool (optional)
#   expect.1   stdout+stderr of the run, then "exit status is N"
#   expect.2   (optional) output of `thin_check` on the image after the run
#   script     (optional) replaces the default runner tests/defaults/<tool>_script
# The tool is the case name's prefix: check_* -> thin_check, dump_* -> thin_dump ...
set -u
case_dir=${1%/}
name=$(basename "$case_dir")
tool=thin_${name%%_*}
work=$(mktemp -d "$TMPROOT/img.$name.XXXXXX")
img=$work/image
if [ -f "$case_dir/image.gz" ]; then
	gzip -dc "$case_dir/image.gz" > "$img"
elif [ -f "$case_dir/fixture" ]; then
	gzip -dc "$FIXTURES/$(cat "$case_dir/fixture")/metadata.bin.gz" > "$img"
elif [ -f "$case_dir/input.xml" ]; then
	truncate -s 16M "$img"
	"$BIN/thin_restore" -q -i "$case_dir/input.xml" -o "$img" || { echo "restore failed"; exit 1; }
else
	echo "case $name has no image"; exit 1
fi
export case_dir name tool img work
if [ -f "$case_dir/script" ]; then
	bash "$case_dir/script"
	exit $?
fi
script=$TOP/tests/defaults/${name%%_*}_script
[ -f "$script" ] || script=$TOP/tests/defaults/default_script
bash "$script"
