s/thinmeta [0-9][0-9.]*/thinmeta VERSION/g
s|/tmp/thinmeta-tests\.[A-Za-z0-9]*/[^ ]*|TMPFILE|g
