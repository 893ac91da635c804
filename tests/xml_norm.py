#!/usr/bin/env python3
"""Canonical form of thin_dump XML in either dialect, for comparing dumps of
0.9.0, 1.x and ours by content: 1.x's <def>/<ref> expanded, a missing flags
attribute read as 0, runs contiguous in both origin and data space with one
time merged (a run of one block is a single_mapping), 0.9.0's layout with a
final newline.  Usage: xml_norm.py FILE (or - for stdin) > canonical.xml"""
import sys
import xml.etree.ElementTree as ET

src = sys.stdin if sys.argv[1] == '-' else open(sys.argv[1])
root = ET.fromstring(src.read())
assert root.tag == 'superblock', root.tag
defs = {}


def blocks(elems):
    for m in elems:
        if m.tag == 'single_mapping':
            yield int(m.get('origin_block')), int(m.get('data_block')), 1, int(m.get('time'))
        elif m.tag == 'range_mapping':
            yield (int(m.get('origin_begin')), int(m.get('data_begin')), int(m.get('length')),
                   int(m.get('time')))
        elif m.tag == 'ref':
            yield from defs[m.get('name')]
        else:
            raise SystemExit('unexpected element <%s>' % m.tag)


out = []
a = root.attrib
out.append('<superblock uuid="%s" time="%s" transaction="%s" flags="%s" version="%s" '
           'data_block_size="%s" nr_data_blocks="%s">' % (
               a.get('uuid', ''), a['time'], a['transaction'], a.get('flags', '0'),
               a.get('version', '2'), a['data_block_size'], a['nr_data_blocks']))
for e in root:
    if e.tag == 'def':
        defs[e.get('name')] = list(blocks(e))
        continue
    assert e.tag == 'device', e.tag
    d = e.attrib
    out.append('  <device dev_id="%s" mapped_blocks="%s" transaction="%s" creation_time="%s" '
               'snap_time="%s">' % (d['dev_id'], d['mapped_blocks'], d['transaction'],
                                    d['creation_time'], d['snap_time']))
    runs = []
    for o, b, n, t in sorted(blocks(e)):
        if runs and runs[-1][0] + runs[-1][2] == o and runs[-1][1] + runs[-1][2] == b and runs[-1][3] == t:
            runs[-1][2] += n
        else:
            runs.append([o, b, n, t])
    for o, b, n, t in runs:
        if n == 1:
            out.append('    <single_mapping origin_block="%d" data_block="%d" time="%d"/>' % (o, b, t))
        else:
            out.append('    <range_mapping origin_begin="%d" data_begin="%d" length="%d" time="%d"/>'
                       % (o, b, n, t))
    out.append('  </device>')
out.append('</superblock>')
sys.stdout.write('\n'.join(out) + '\n')
