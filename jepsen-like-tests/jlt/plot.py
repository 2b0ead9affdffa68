"""Latency and throughput over time, fault windows shaded.

With matplotlib installed: ``latency.png`` and ``throughput.png``. Without it
(it is not a dependency of raftkv), the same two plots as dependency-free SVG
files (``latency.svg``, ``throughput.svg``) that any browser shows.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from typing import Any

from jlt.history import pair

COLORS = {"ok": "#2a9d2a", "fail": "#d62728", "info": "#ff9f0e"}


def series(history: list[dict]) -> tuple[list[tuple[float, float, str, str]], dict]:
    """(time s, latency ms, type, workload) per completed op; throughput per second."""
    owner = {op["process"]: op.get("w", "") for op in history if op["type"] == "invoke"}
    points = []
    tput: dict[tuple[str, str], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for o in pair(history):
        if o.completion is None:
            continue
        t_end = o.completion["time"] / 1e9
        lat = (o.completion["time"] - o.call_time) / 1e6
        w = owner.get(o.process, "")
        points.append((o.call_time / 1e9, lat, o.type, w))
        tput[(w, o.type)][int(t_end)] += 1
    return points, tput


def plot(history: list[dict], windows: list[tuple[int, int, str]], out_dir: str,
         title: str) -> list[str]:
    points, tput = series(history)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: F401
    except ImportError:
        return [_svg_latency(points, windows, out_dir, title),
                _svg_throughput(tput, windows, out_dir, title)]
    return _mpl(points, tput, windows, out_dir, title)


def _mpl(points: list, tput: dict, windows: list, out_dir: str, title: str) -> list[str]:
    import matplotlib.pyplot as plt

    files = []
    fig, ax = plt.subplots(figsize=(12, 5))
    for typ, color in COLORS.items():
        xs = [p[0] for p in points if p[2] == typ]
        ys = [max(p[1], 0.01) for p in points if p[2] == typ]
        ax.scatter(xs, ys, s=3, c=color, label=typ, alpha=0.6, linewidths=0)
    _shade_mpl(ax, windows)
    ax.set_yscale("log")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("latency (ms)")
    ax.set_title(f"{title}: latency")
    ax.legend(loc="upper right", markerscale=4)
    path = os.path.join(out_dir, "latency.png")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    files.append(path)
    fig, ax = plt.subplots(figsize=(12, 5))
    for (w, typ), per_s in sorted(tput.items()):
        if not per_s:
            continue
        end = max(per_s) + 1
        ax.plot(range(end), [per_s.get(s, 0) for s in range(end)], color=COLORS[typ],
                label=f"{w} {typ}", linestyle={"ok": "-", "fail": "--", "info": ":"}[typ])
    _shade_mpl(ax, windows)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("ops/s")
    ax.set_title(f"{title}: throughput")
    ax.legend(loc="upper right")
    path = os.path.join(out_dir, "throughput.png")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    files.append(path)
    return files


def _shade_mpl(ax: Any, windows: list) -> None:
    for i, (a, b, label) in enumerate(windows):
        ax.axvspan(a / 1e9, b / 1e9, color="#888888", alpha=0.15)
        ax.text(a / 1e9, 1.0 - 0.04 * (i % 3), label, transform=ax.get_xaxis_transform(),
                fontsize=7, va="top")


# --- SVG, without dependencies --------------------------------------------------------------------
W, H, L, R, T, B = 1250, 420, 70, 170, 40, 40


def _frame(title: str, xmax: float, ylabels: list[tuple[float, str]], windows: list,
           ylabel: str) -> list[str]:
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="14">{_esc(title)}</text>']
    for i, (a, b, label) in enumerate(windows):
        x0, x1 = _x(a / 1e9, xmax), _x(b / 1e9, xmax)
        out.append(f'<rect x="{x0:.1f}" y="{T}" width="{max(x1 - x0, 1):.1f}" '
                   f'height="{H - T - B}" fill="#888" fill-opacity="0.15"/>')
        out.append(f'<text x="{x0 + 2:.1f}" y="{T + 10 + 11 * (i % 3)}" font-size="9" '
                   f'fill="#444">{_esc(label)}</text>')
    out.append(f'<line x1="{L}" y1="{H - B}" x2="{W - R}" y2="{H - B}" stroke="black"/>')
    out.append(f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H - B}" stroke="black"/>')
    step = max(1, int(xmax / 12) or 1)
    for s in range(0, int(xmax) + 1, step):
        out.append(f'<text x="{_x(s, xmax):.1f}" y="{H - B + 14}" text-anchor="middle">{s}</text>')
    for y, text in ylabels:
        out.append(f'<text x="{L - 4}" y="{y + 4:.1f}" text-anchor="end">{text}</text>')
        out.append(f'<line x1="{L}" y1="{y:.1f}" x2="{W - R}" y2="{y:.1f}" stroke="#eee"/>')
    out.append(f'<text x="{W / 2}" y="{H - 6}" text-anchor="middle">time (s)</text>')
    out.append(f'<text x="14" y="{H / 2}" transform="rotate(-90 14 {H / 2})" '
               f'text-anchor="middle">{ylabel}</text>')
    return out


def _x(t: float, xmax: float) -> float:
    return L + (W - L - R) * (t / xmax if xmax else 0)


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _legend(out: list[str], items: list[tuple[str, str]]) -> None:
    for i, (label, color) in enumerate(items):
        y = T + 12 + 14 * i
        out.append(f'<rect x="{W - R + 12}" y="{y - 8}" width="10" height="10" fill="{color}"/>')
        out.append(f'<text x="{W - R + 27}" y="{y + 1}">{_esc(label)}</text>')


def _svg_latency(points: list, windows: list, out_dir: str, title: str) -> str:
    xmax = max([p[0] for p in points] + [w[1] / 1e9 for w in windows] + [1.0])
    lo, hi = 0.1, max([p[1] for p in points] + [10.0])
    lhi = math.log10(hi) + 0.1
    llo = math.log10(lo)

    def y(ms: float) -> float:
        v = (math.log10(max(ms, lo)) - llo) / (lhi - llo)
        return H - B - v * (H - T - B)

    ylabels = [(y(10 ** e), f"{10 ** e:g}") for e in range(-1, int(lhi) + 1)]
    out = _frame(f"{title}: latency (ms, log)", xmax, ylabels, windows, "latency (ms)")
    step = max(1, len(points) // 20000)  # keep the file small
    for i, (t, lat, typ, _w) in enumerate(points):
        if typ == "ok" and i % step:
            continue
        out.append(f'<circle cx="{_x(t, xmax):.1f}" cy="{y(lat):.1f}" r="1.2" '
                   f'fill="{COLORS[typ]}" fill-opacity="0.6"/>')
    _legend(out, [(k, c) for k, c in COLORS.items()])
    out.append("</svg>")
    path = os.path.join(out_dir, "latency.svg")
    with open(path, "w") as f:
        f.write("\n".join(out))
    return path


def _svg_throughput(tput: dict, windows: list, out_dir: str, title: str) -> str:
    ends = [max(v) + 1 for v in tput.values() if v]
    xmax = max(ends + [w[1] / 1e9 for w in windows] + [1.0])
    ymax = max([max(v.values()) for v in tput.values() if v] + [10])

    def y(v: float) -> float:
        return H - B - (v / ymax) * (H - T - B)

    ylabels = [(y(ymax * i / 5), f"{ymax * i / 5:.0f}") for i in range(6)]
    out = _frame(f"{title}: throughput (ops/s)", xmax, ylabels, windows, "ops/s")
    palette = ["#1f77b4", "#9467bd", "#8c564b", "#17becf", "#bcbd22", "#e377c2"]
    wcolor = {w: palette[i % len(palette)] for i, w in enumerate(sorted({w for w, _t in tput}))}
    legend = []
    for (w, typ), per_s in sorted(tput.items()):
        if not per_s:
            continue
        end = max(per_s) + 1
        color = wcolor[w]
        pts = " ".join(f"{_x(s + 0.5, xmax):.1f},{y(per_s.get(s, 0)):.1f}" for s in range(end))
        dash = {"ok": "", "fail": ' stroke-dasharray="5 3"', "info": ' stroke-dasharray="1 3"'}[typ]
        out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="1.5"{dash}/>')
        if (w, color) not in legend:
            legend.append((w, color))
    _legend(out, legend)
    y0 = T + 14 * len(legend) + 20
    for i, (typ, dash) in enumerate((("ok", ""), ("fail", "5 3"), ("info", "1 3"))):
        y = y0 + 14 * i
        out.append(f'<line x1="{W - R + 12}" y1="{y - 3}" x2="{W - R + 32}" y2="{y - 3}" '
                   f'stroke="black" stroke-dasharray="{dash}"/>')
        out.append(f'<text x="{W - R + 37}" y="{y + 1}">{typ}</text>')
    out.append("</svg>")
    path = os.path.join(out_dir, "throughput.svg")
    with open(path, "w") as f:
        f.write("\n".join(out))
    return path
