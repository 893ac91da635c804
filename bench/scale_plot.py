#!/usr/bin/env python3
"""SVG plot of bench/scale.sh's rows: cold wall time and peak RSS of each
tool against the number of mappings, log-log, no dependencies.

usage: scale_plot.py ROWS.tsv OUT.svg
ROWS.tsv lines: mappings  metadata_blocks  tool  wall_s  rss_mib
"""
import math
import sys

COLORS = {"floor": "#7f7f7f", "floor-after": "#c7c7c7", "check": "#1f77b4", "ls": "#ff7f0e", "dump": "#2ca02c",
          "repair": "#d62728", "restore": "#9467bd"}


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) == 5:
                rows.append((int(p[0]), p[2], float(p[3]), float(p[4])))
    return rows


def panel(x0, y0, w, h, rows, col, title, unit):
    xs = [r[0] for r in rows]
    ys = [max(r[col], 1e-3) for r in rows if not (r[1].startswith("floor") and col == 3)]
    lx0, lx1 = math.floor(math.log10(min(xs))), math.ceil(math.log10(max(xs)))
    ly0, ly1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
    if ly1 == ly0:
        ly1 += 1

    def px(v):
        return x0 + (math.log10(v) - lx0) / (lx1 - lx0) * w

    def py(v):
        return y0 + h - (math.log10(max(v, 1e-3)) - ly0) / (ly1 - ly0) * h

    out = ['<rect x="%g" y="%g" width="%g" height="%g" fill="none" stroke="#888"/>' % (x0, y0, w, h),
           '<text x="%g" y="%g" font-size="14" text-anchor="middle">%s</text>' % (x0 + w / 2, y0 - 10, title)]
    for e in range(lx0, lx1 + 1):
        out.append('<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="#eee"/>' % (px(10 ** e), y0, px(10 ** e), y0 + h))
        out.append('<text x="%g" y="%g" font-size="11" text-anchor="middle">1e%d</text>' % (px(10 ** e), y0 + h + 16, e))
    for e in range(ly0, ly1 + 1):
        out.append('<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="#eee"/>' % (x0, py(10 ** e), x0 + w, py(10 ** e)))
        out.append('<text x="%g" y="%g" font-size="11" text-anchor="end">%g %s</text>' % (x0 - 4, py(10 ** e) + 4, 10 ** e, unit))
    out.append('<text x="%g" y="%g" font-size="12" text-anchor="middle">mappings</text>' % (x0 + w / 2, y0 + h + 34))
    for tool in COLORS:
        if tool.startswith("floor") and col == 3:
            continue   # dd's memory says nothing
        pts = sorted((r[0], r[col]) for r in rows if r[1] == tool)
        if not pts:
            continue
        c = COLORS[tool]
        out.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>' %
                   (c, " ".join("%g,%g" % (px(a), py(b)) for a, b in pts)))
        for a, b in pts:
            out.append('<circle cx="%g" cy="%g" r="3" fill="%s"/>' % (px(a), py(b), c))
    return out


def main():
    rows = load(sys.argv[1])
    W, H = 960, 420
    svg = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif">' % (W, H),
           '<rect width="100%" height="100%" fill="white"/>']
    svg += panel(80, 40, 360, 300, rows, 2, "cold wall time (loop device, O_DIRECT)", "s")
    svg += panel(560, 40, 360, 300, rows, 3, "peak RSS", "MiB")
    x = 80
    for tool, c in COLORS.items():
        svg.append('<rect x="%d" y="392" width="14" height="4" fill="%s"/>' % (x, c))
        svg.append('<text x="%d" y="398" font-size="12">%s</text>' % (x + 18, tool))
        x += 110
    svg.append('</svg>')
    with open(sys.argv[2], "w") as f:
        f.write("\n".join(svg) + "\n")


if __name__ == "__main__":
    main()
