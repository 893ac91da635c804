#!/usr/bin/env python3
"""Independent oracle: list the metadata blocks the metadata space map marks
as used (FORMAT.md §7), one block number per line.  Written from FORMAT.md,
not from our C code, so that tests compare two implementations."""
import struct
import sys

BS = 4096
with open(sys.argv[1], 'rb') as f:
    data = f.read()
sb = data[:BS]
nr_blocks, nr_alloc, index_root, rc_root = struct.unpack_from('<QQQQ', sb, 192)
idx = data[index_root * BS:(index_root + 1) * BS]
used = []
nr_bitmaps = (nr_blocks + 16319) // 16320
for i in range(nr_bitmaps):
    bm, = struct.unpack_from('<Q', idx, 16 + 16 * i)
    blk = data[bm * BS:(bm + 1) * BS]
    for j in range(min(16320, nr_blocks - i * 16320)):
        word, = struct.unpack_from('<Q', blk, 16 + (j // 32) * 8)
        s = 2 * (j % 32)
        v = (((word >> s) & 1) << 1) | ((word >> (s + 1)) & 1)
        if v:
            used.append(i * 16320 + j)
print('\n'.join(map(str, used)))
