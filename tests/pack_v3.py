#!/usr/bin/env python3
"""Independent reader and writer of thin-provisioning-tools 1.x pack files
(version 3), for tests: decodes the block programs with its own interpreter
and builds packs (literal blocks only) with chosen defects.

  pack_v3.py decode PACK IMAGE     every packed block equals IMAGE's; prints
                                   "nr_blocks N packed M sorted S"
  pack_v3.py blocks PACK           the packed block numbers, one a line
  pack_v3.py build IMAGE OUT [--blocks LIST] [--drop LIST] [--bad-csum B]
                [--dup B] [--beyond] [--nr-blocks N] [--per-chunk K]
      LIST: comma-separated numbers and a-b ranges; default: the blocks
      whose checksum is of a known metadata type.
"""
import struct, sys, zlib

MAGIC = 0xa537a0aa6309ef77
SALTS = (160774, 121107, 240779, 160478)   # superblock, node, bitmap, index

T = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    T.append(c)


def crc32c(data):
    crc = 0xffffffff
    for b in data:
        crc = T[(crc ^ b) & 0xff] ^ (crc >> 8)
    return crc


def salt_of(block):
    return struct.unpack_from('<I', block, 0)[0] ^ crc32c(block[4:])


class Prog:
    def __init__(self, raw, pos):
        self.raw, self.pos = raw, pos

    def byte(self):
        v = self.raw[self.pos]
        self.pos += 1
        return v

    def le(self, width):
        if width not in (1, 2, 4, 8):
            raise ValueError('bad width %d' % width)
        v = int.from_bytes(self.raw[self.pos:self.pos + width], 'little')
        self.pos += width
        return v

    def insn(self):
        b = self.byte()
        tag, nib = b >> 4, b & 15
        arg = None
        if tag in (0, 2, 4):
            arg = self.le(nib)
        elif tag in (6, 8, 11):
            arg = nib << 8 | self.byte()
        elif tag == 9:
            arg = bytes(self.raw[self.pos:self.pos + nib])
            self.pos += nib
        elif tag == 10:
            n = self.le(nib)
            arg = bytes(self.raw[self.pos:self.pos + n])
            self.pos += n
        elif tag > 11:
            raise ValueError('bad tag %d' % tag)
        return tag, nib, arg

    def run(self, nbytes=None, nvals=None):
        out, vals, base = bytearray(), [], 0
        full = (lambda: len(vals) >= nvals) if nvals is not None else (lambda: len(out) >= nbytes)

        def emit(v):
            v &= (1 << 64) - 1
            if nvals is not None:
                vals.append(v)
            else:
                out.extend(struct.pack('<Q', v))

        def one(tag, nib, arg):
            nonlocal base
            if tag == 0:
                base = arg
            elif tag == 1:
                base += nib
            elif tag == 2:
                base += arg
            elif tag == 3:
                base -= nib
            elif tag == 4:
                base -= arg
            if tag <= 4:
                emit(base)
            elif tag in (5, 6):
                for _ in range(nib if tag == 5 else arg):
                    emit(base)
            elif tag in (9, 10):
                out.extend(arg)
            elif tag == 11:
                hi = self.run(nvals=arg)
                lo = self.run(nvals=arg)
                for h, l in zip(hi, lo):
                    emit(h << 24 | (l & 0xffffff))

        while not full():
            tag, nib, arg = self.insn()
            if tag in (7, 8):
                t2 = self.insn()
                for _ in range(nib if tag == 7 else arg):
                    one(*t2)
            else:
                one(tag, nib, arg)
        return vals if nvals is not None else bytes(out)


def read(path):
    d = open(path, 'rb').read()
    magic, ver, bs, nr = struct.unpack_from('<4Q', d, 0)
    assert magic == MAGIC and ver == 3 and bs == 4096, 'not a v3 pack'
    off, order, blocks = 32, [], {}
    while off < len(d):
        (clen,) = struct.unpack_from('<Q', d, off)
        raw = zlib.decompress(d[off + 8:off + 8 + clen])
        off += 8 + clen
        p = 0
        while p < len(raw):
            (b,) = struct.unpack_from('<Q', raw, p)
            prog = Prog(raw, p + 8)
            blk = prog.run(nbytes=4096)
            assert len(blk) == 4096, 'block %d: %d bytes' % (b, len(blk))
            p = prog.pos
            assert b not in blocks, 'block %d twice' % b
            blocks[b] = blk
            order.append(b)
    return nr, order, blocks


def parse_list(s):
    out = []
    for part in s.split(','):
        if '-' in part:
            a, b = part.split('-')
            out += range(int(a), int(b) + 1)
        elif part:
            out.append(int(part))
    return out


def main():
    cmd = sys.argv[1]
    if cmd == 'decode':
        nr, order, blocks = read(sys.argv[2])
        img = open(sys.argv[3], 'rb').read()
        for b, v in blocks.items():
            if img[b * 4096:(b + 1) * 4096] != v:
                sys.exit('block %d differs from the image' % b)
            if salt_of(v) not in SALTS:
                sys.exit('block %d has no valid checksum' % b)
        print('nr_blocks %d packed %d sorted %d' % (nr, len(order), int(order == sorted(order))))
    elif cmd == 'blocks':
        for b in sorted(read(sys.argv[2])[2]):
            print(b)
    elif cmd == 'build':
        img = open(sys.argv[2], 'rb').read()
        args = sys.argv[4:]
        opt = {}
        while args:
            k = args.pop(0)
            opt[k] = args.pop(0) if k != '--beyond' else '1'
        nr = len(img) // 4096
        if '--blocks' in opt:
            sel = parse_list(opt['--blocks'])
        else:
            sel = [b for b in range(nr) if salt_of(img[b * 4096:(b + 1) * 4096]) in SALTS]
        drop = set(parse_list(opt.get('--drop', '')))
        recs = [(b, bytearray(img[b * 4096:(b + 1) * 4096])) for b in sel if b not in drop]
        if '--bad-csum' in opt:
            b = int(opt['--bad-csum'])
            for r in recs:
                if r[0] == b:
                    r[1][100] ^= 0xff
        if '--dup' in opt:
            b = int(opt['--dup'])
            recs.append((b, bytearray(img[b * 4096:(b + 1) * 4096])))
        if '--beyond' in opt:
            recs.append((nr, bytearray(img[0:4096])))
        nr = int(opt.get('--nr-blocks', nr))
        k = int(opt.get('--per-chunk', 1024))
        out = [struct.pack('<4Q', MAGIC, 3, 4096, nr)]
        for i in range(0, len(recs), k):
            raw = b''.join(struct.pack('<QBH', b, 0xa2, 4096) + bytes(d) for b, d in recs[i:i + k])
            z = zlib.compress(raw)
            out.append(struct.pack('<Q', len(z)) + z)
        open(sys.argv[3], 'wb').write(b''.join(out))
    else:
        sys.exit(__doc__)


main()
