#!/usr/bin/env python3
"""Deterministic XML mutations of a thin_dump document (tests/adversarial).

    mutate_xml.py BASE.xml SEED OUT.xml

Writes one mutated document and prints the mutation on one line.  The
mutations are what a careless edit or a hostile input would do: lines
deleted, duplicated or swapped, numbers set to edge values (overflow,
sign, hex, empty), attributes dropped or doubled, elements renamed or
nested, the file truncated or a byte flipped, and a mapping line wrapped
in markup that must hide it (CDATA, processing instruction, comment,
another element's open tag).
"""
import random
import re
import sys

EDGE = ['0', '1', '4294967295', '4294967296', '16777215', '16777216',
        '18446744073709551615', '18446744073709551616', '-1', '', '0x10',
        '1e3', ' 1', '1 ', '007', '99999999999999999999999999']


def mapping_lines(lines):
    return [i for i, l in enumerate(lines) if '_mapping' in l]


def mutate(text, rnd):
    lines = text.splitlines(keepends=True)
    maps = mapping_lines(lines) or [len(lines) // 2]
    pick = rnd.randrange(len(lines))
    kind = rnd.randrange(17)
    desc = ''
    if kind == 0:
        desc = f'delete line {pick + 1}'
        del lines[pick]
    elif kind == 1:
        desc = f'duplicate line {pick + 1}'
        lines.insert(pick, lines[pick])
    elif kind == 2 and pick + 1 < len(lines):
        desc = f'swap lines {pick + 1} and {pick + 2}'
        lines[pick], lines[pick + 1] = lines[pick + 1], lines[pick]
    elif kind in (3, 4):
        cands = [i for i, l in enumerate(lines) if re.search(r'="[^"]*"', l)]
        i = rnd.choice(cands)
        attrs = list(re.finditer(r'(\w+)="([^"]*)"', lines[i]))
        a = rnd.choice(attrs)
        v = rnd.choice(EDGE)
        desc = f'line {i + 1}: {a[1]}="{v}"'
        lines[i] = lines[i][:a.start(2)] + v + lines[i][a.end(2):]
    elif kind == 5:
        cands = [i for i, l in enumerate(lines) if re.search(r' \w+="', l)]
        i = rnd.choice(cands)
        a = rnd.choice(list(re.finditer(r' (\w+)="[^"]*"', lines[i])))
        desc = f'line {i + 1}: drop {a[1]}'
        lines[i] = lines[i][:a.start()] + lines[i][a.end():]
    elif kind == 6:
        cands = [i for i, l in enumerate(lines) if re.search(r' \w+="', l)]
        i = rnd.choice(cands)
        a = rnd.choice(list(re.finditer(r' (\w+)="[^"]*"', lines[i])))
        desc = f'line {i + 1}: double {a[1]}'
        lines[i] = lines[i][:a.end()] + a[0] + lines[i][a.end():]
    elif kind == 7:
        i = rnd.choice(maps)
        new = rnd.choice(['single_mapping', 'range_mapping', 'device', 'ref', 'def', 'superblock',
                          'mapping', 'Single_mapping'])
        desc = f'line {i + 1}: element renamed {new}'
        lines[i] = re.sub(r'<\w+', '<' + new, lines[i], count=1)
    elif kind == 8:
        s = ''.join(lines)
        cut = rnd.randrange(len(s))
        return s[:cut], f'truncated at byte {cut}'
    elif kind == 9:
        s = bytearray(''.join(lines), 'utf-8')
        at = rnd.randrange(len(s))
        s[at] = rnd.randrange(256)
        return s.decode('latin-1'), f'byte {at} = {s[at]}'
    elif kind in (10, 11):
        i = rnd.choice(maps)
        w = rnd.randrange(5)
        open_, close = [('<![CDATA[\n', ']]>\n'), ('<?pi\n', '?>\n'), ('<!--\n', '-->\n'),
                        ('<ref name="x"\n', '/>\n'),
                        ('<single_mapping origin_block="0"\n', 'data_block="0" time="0"/>\n')][w]
        n = 1 + rnd.randrange(3)
        desc = f'lines {i + 1}-{i + n}: wrapped in {open_.strip()}'
        lines[i:i + n] = [open_] + lines[i:i + n] + [close]
    elif kind == 12:
        i = rnd.choice(maps)
        desc = f'line {i + 1}: text inserted'
        lines.insert(i, rnd.choice(['x\n', '&amp;\n', '&#32;\n', '&nope;\n', '\x00\n']))
    elif kind == 13:
        i = rnd.choice(maps)
        desc = f'line {i + 1}: nested device'
        lines.insert(i, '<device dev_id="99" mapped_blocks="0" transaction="0" creation_time="0" snap_time="0">\n')
        lines.insert(i + 2, '</device>\n')
    elif kind == 14:
        i = rnd.choice(maps)
        desc = f'line {i + 1}: single quotes / extra space'
        lines[i] = lines[i].replace('"', "'") if rnd.randrange(2) else lines[i].replace(' ', '  ', 2)
    elif kind == 15:
        desc = 'entity / doctype prologue'
        lines.insert(0, rnd.choice([
            '<?xml version="1.0" encoding="UTF-16"?>\n',
            '<!DOCTYPE superblock [<!ENTITY e "x">]>\n',
            '<!DOCTYPE superblock [<!ENTITY a "&b;&b;"><!ENTITY b "&a;&a;">]>\n',
            '\xef\xbb\xbf']))
    else:
        i = rnd.choice(maps)
        m = re.search(r'(\d+)"', lines[i])
        if m:
            desc = f'line {i + 1}: first number + {1 << rnd.randrange(40)}'
            v = int(m[1]) + (1 << rnd.randrange(40))
            lines[i] = lines[i][:m.start(1)] + str(v) + lines[i][m.end(1):]
        else:
            desc = 'no-op'
    return ''.join(lines), desc or 'no-op'


def main():
    base, seed, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    rnd = random.Random(seed)
    text = open(base, encoding='latin-1').read()
    n = 1 + (rnd.randrange(4) == 0)  # sometimes two mutations
    descs = []
    for _ in range(n):
        text, d = mutate(text, rnd)
        descs.append(d)
    open(out, 'w', encoding='latin-1').write(text)
    print('; '.join(descs))


main()
