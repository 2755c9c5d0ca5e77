#!/usr/bin/env python3
"""Draws bench/run.sh's results as an SVG chart (standard library only).

    bench/chart.py bench/results.tsv bench/results.svg

One row per scenario: requests/s as a ratio to nginx as a reverse proxy in the same run (the
bar, with a line at 1.0), and p50 / p99 in milliseconds written beside it. Bars of the proxy,
the decision fronts and nginx have their own colours.
"""

import csv
import html
import sys

ROW = 22
LABEL_WIDTH = 520
BAR_WIDTH = 420
FIGURES_WIDTH = 190
TOP = 56


def colour(name):
    if name.startswith("nginx"):
        return "#8c8c8c"
    if "proxy" in name:
        return "#d9822b"
    return "#2b7bb9"


def main(source, target):
    with open(source, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    ratios = [float(r["ratio to nginx proxy"]) for r in rows]
    scale_max = max([1.0] + ratios) * 1.05
    width = LABEL_WIDTH + BAR_WIDTH + FIGURES_WIDTH
    height = TOP + ROW * len(rows) + 40
    x0 = LABEL_WIDTH

    def x(ratio):
        return x0 + BAR_WIDTH * ratio / scale_max

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        '<text x="10" y="20" font-size="15" font-weight="bold">'
        "Requests/s as a ratio to nginx as a reverse proxy, same run, same machine</text>",
        '<text x="10" y="40" fill="#555">bars: ratio (orange: proxy, blue: decision, grey: '
        "nginx); right: p50 / p99 ms at peak load</text>",
    ]
    for i, (row, ratio) in enumerate(zip(rows, ratios)):
        y = TOP + i * ROW
        name = html.escape(row["scenario"])
        out.append(f'<text x="{x0 - 8}" y="{y + 15}" text-anchor="end">{name}</text>')
        out.append(
            f'<rect x="{x0}" y="{y + 4}" width="{x(ratio) - x0:.1f}" height="{ROW - 8}" '
            f'fill="{colour(row["scenario"])}"/>'
        )
        out.append(f'<text x="{x(ratio) + 4:.1f}" y="{y + 15}">{ratio:.2f}×</text>')
        if row["p50 ms"] != "-":  # h2load's runs report no percentiles
            out.append(
                f'<text x="{x0 + BAR_WIDTH + 50}" y="{y + 15}" fill="#333">'
                f'{html.escape(row["p50 ms"])} / {html.escape(row["p99 ms"])} ms</text>'
            )
    bottom = TOP + ROW * len(rows)
    out.append(
        f'<line x1="{x(1.0):.1f}" y1="{TOP - 4}" x2="{x(1.0):.1f}" y2="{bottom + 4}" '
        'stroke="black" stroke-dasharray="4 3"/>'
    )
    out.append(f'<text x="{x(1.0):.1f}" y="{bottom + 20}" text-anchor="middle">1.0× nginx</text>')
    out.append("</svg>")
    with open(target, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
