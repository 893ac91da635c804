#!/usr/bin/env python3
"""The kernel's semantics of the pool messages on thin_dump XML.

Reads a pool as thin_dump writes it (0.9.0 dialect), applies messages the
way drivers/md/dm-thin-metadata.c does, and writes the XML thin_dump must
print afterwards (and that of the metadata snapshot, thin_dump -m).

  edit_model.py apply IN.xml [--snap IN-SNAP.xml] --out OUT.xml [--snap-out SNAP.xml] MSG...
  edit_model.py random IN.xml --seed N --count K     # K valid messages, one a line

Semantics (dm-thin-metadata.c):
  create_thin ID           details {0, pool transaction, time, time}, no mappings
  create_snap ID ORIGIN    time + 1; the snapshot has the origin's mappings and
                           mapped_blocks, transaction = the pool's, both times
                           the new time; the origin's snap_time is the new time
  delete ID                the device goes
  set_transaction_id A B   the pool's transaction id A becomes B
  reserve_metadata_snap    the snapshot is the pool as it is now
  release_metadata_snap    no snapshot any more
  set_needs_check / clear_needs_check    flags 1 / 0
  rename ID NEW            the device keeps everything under its new id
  grow_data N              nr_data_blocks = N
  grow_metadata [N]        nothing thin_dump shows
"""
import random
import re
import sys

SB_RE = re.compile(r'<superblock (.*)>')
ATTR_RE = re.compile(r'(\w+)="([^"]*)"')


class Pool:
    def __init__(self, text):
        lines = text.splitlines(keepends=True)
        m = SB_RE.search(lines[0])
        self.sb = dict(ATTR_RE.findall(m.group(1)))
        self.devs = {}
        cur = None
        for line in lines[1:]:
            s = line.strip()
            if s.startswith('<device '):
                attrs = dict(ATTR_RE.findall(s))
                cur = [attrs, []]
                self.devs[int(attrs['dev_id'])] = cur
            elif s == '</device>':
                cur = None
            elif s == '</superblock>':
                break
            elif cur is not None:
                cur[1].append(line)

    def copy(self):
        p = Pool.__new__(Pool)
        p.sb = dict(self.sb)
        p.devs = {k: [dict(v[0]), list(v[1])] for k, v in self.devs.items()}
        return p

    def text(self):
        sb = self.sb
        out = ['<superblock uuid="%s" time="%s" transaction="%s" flags="%s" version="%s" '
               'data_block_size="%s" nr_data_blocks="%s">\n' %
               (sb['uuid'], sb['time'], sb['transaction'], sb['flags'], sb['version'],
                sb['data_block_size'], sb['nr_data_blocks'])]
        for dev in sorted(self.devs):
            a, body = self.devs[dev]
            out.append('  <device dev_id="%d" mapped_blocks="%s" transaction="%s" '
                       'creation_time="%s" snap_time="%s">\n' %
                       (dev, a['mapped_blocks'], a['transaction'], a['creation_time'],
                        a['snap_time']))
            out.extend(body)
            out.append('  </device>\n')
        out.append('</superblock>\n')
        return ''.join(out)


class Model:
    def __init__(self, pool, snap=None):
        self.pool = pool
        self.snap = snap

    def apply(self, msg):
        w = msg.split()
        name, args = w[0].lower(), [int(x) for x in w[1:]]
        p = self.pool
        sb = p.sb
        if name == 'create_thin':
            t = sb['time']
            p.devs[args[0]] = [{'dev_id': str(args[0]), 'mapped_blocks': '0',
                                'transaction': sb['transaction'], 'creation_time': t,
                                'snap_time': t}, []]
        elif name == 'create_snap':
            dev, origin = args
            sb['time'] = str(int(sb['time']) + 1)
            t = sb['time']
            o = p.devs[origin]
            o[0]['snap_time'] = t
            p.devs[dev] = [{'dev_id': str(dev), 'mapped_blocks': o[0]['mapped_blocks'],
                            'transaction': sb['transaction'], 'creation_time': t,
                            'snap_time': t}, list(o[1])]
        elif name == 'delete':
            del p.devs[args[0]]
        elif name == 'set_transaction_id':
            assert int(sb['transaction']) == args[0]
            sb['transaction'] = str(args[1])
        elif name == 'reserve_metadata_snap':
            assert self.snap is None
            self.snap = p.copy()
            self.snap.sb['nr_data_blocks'] = '0'   # a snapshot copy has no space maps
        elif name == 'release_metadata_snap':
            assert self.snap is not None
            self.snap = None
        elif name == 'set_needs_check':
            sb['flags'] = '1'
        elif name == 'clear_needs_check':
            sb['flags'] = '0'
        elif name == 'rename':
            d = p.devs.pop(args[0])
            d[0]['dev_id'] = str(args[1])
            p.devs[args[1]] = d
        elif name == 'grow_data':
            sb['nr_data_blocks'] = str(args[0])
        elif name == 'grow_metadata':
            pass
        else:
            raise SystemExit('unknown message ' + msg)


def random_messages(model, rng, count):
    out = []
    free = lambda: next(i for i in iter(lambda: rng.randrange(0, 200), None)
                        if i not in model.pool.devs)
    for _ in range(count):
        p = model.pool
        ids = sorted(p.devs)
        choices = ['create_thin', 'set_transaction_id']
        if ids:
            choices += ['create_snap'] * 3 + ['delete'] * 2 + ['rename']
        choices.append('release_metadata_snap' if model.snap else 'reserve_metadata_snap')
        c = rng.choice(choices)
        if c == 'create_thin':
            m = 'create_thin %d' % free()
        elif c == 'create_snap':
            m = 'create_snap %d %d' % (free(), rng.choice(ids))
        elif c == 'delete':
            m = 'delete %d' % rng.choice(ids)
        elif c == 'rename':
            m = 'rename %d %d' % (rng.choice(ids), free())
        elif c == 'set_transaction_id':
            t = int(p.sb['transaction'])
            m = 'set_transaction_id %d %d' % (t, t + rng.randrange(1, 5))
        else:
            m = c
        model.apply(m)
        out.append(m)
    return out


def main(argv):
    if len(argv) < 3:
        raise SystemExit(__doc__)
    mode, src = argv[1], argv[2]
    rest = argv[3:]
    opts = {}
    while rest and rest[0].startswith('--'):
        opts[rest[0]] = rest[1]
        rest = rest[2:]
    pool = Pool(open(src).read())
    snap = Pool(open(opts['--snap']).read()) if '--snap' in opts else None
    model = Model(pool, snap)
    if mode == 'random':
        rng = random.Random(int(opts['--seed']))
        for m in random_messages(model, rng, int(opts['--count'])):
            print(m)
        return
    # the tool's grammar: a word that is not a number starts the next message
    msgs = []
    for word in ' '.join(rest).split():
        if word.isdigit():
            msgs[-1] += ' ' + word
        else:
            msgs.append(word)
    for m in msgs:
        model.apply(m)
    with open(opts['--out'], 'w') as f:
        f.write(model.pool.text())
    if '--snap-out' in opts:
        with open(opts['--snap-out'], 'w') as f:
            f.write(model.snap.text() if model.snap else '')


if __name__ == '__main__':
    main(sys.argv)
