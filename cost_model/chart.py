"""Monthly cost against concurrent streams for both architectures, the quota ceiling marked.

`.html` and `.svg` are written by hand (no dependency); `.png` needs matplotlib (optional)."""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cost_model.inputs import InputError


@dataclass(frozen=True)
class Series:
    streams: list[int]
    serverless: list[float]
    monolith: list[float]
    ceiling: int
    scenario_streams: int
    title: str


def sample(
    streams: int, ceiling: int, cost: Callable[[int], tuple[float, float]], title: str, points: int = 40
) -> Series:
    top = max(streams, ceiling) * 1.15
    xs = sorted({max(1, round(top * i / points)) for i in range(points + 1)} | {streams, max(1, ceiling)})
    pairs = [cost(x) for x in xs]
    return Series(xs, [p[0] for p in pairs], [p[1] for p in pairs], ceiling, streams, title)


def write(series: Series, path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix == ".png":
        _png(series, path)
    elif suffix in (".svg", ".html", ".htm"):
        svg = svg_text(series)
        text = (
            svg
            if suffix == ".svg"
            else (
                f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(series.title)}</title>"
                f"</head><body style='font-family:sans-serif'>{svg}</body></html>\n"
            )
        )
        path.write_text(text)
    else:
        raise InputError(f"--chart: unsupported file type {path.suffix!r}; use .png, .svg or .html")


def _nice_step(top: float, ticks: int = 5) -> float:
    raw = top / ticks
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)


def _money(value: float) -> str:
    for div, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= div:
            return f"${value / div:g}{suffix}"
    return f"${value:g}"


def svg_text(s: Series, width: int = 860, height: int = 500) -> str:
    left, right, top, bottom = 90, 30, 50, 60
    pw, ph = width - left - right, height - top - bottom
    xmax = s.streams[-1]
    ymax_raw = max(s.serverless + s.monolith) or 1.0
    ystep = _nice_step(ymax_raw)
    ymax = ystep * math.ceil(ymax_raw / ystep)

    def x(v: float) -> float:
        return left + pw * v / xmax

    def y(v: float) -> float:
        return top + ph * (1 - v / ymax)

    def points(xs: list[int], ys: list[float]) -> str:
        return " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in zip(xs, ys, strict=True))

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="15">{html.escape(s.title)}</text>',
    ]
    for i in range(round(ymax / ystep) + 1):
        v = i * ystep
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 8}" y="{y(v) + 4:.1f}" text-anchor="end">{_money(v)}</text>')
    xstep = _nice_step(xmax)
    for i in range(int(xmax // xstep) + 1):
        v = i * xstep
        out.append(f'<text x="{x(v):.1f}" y="{top + ph + 18}" text-anchor="middle">{v:g}</text>')
    out.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + ph}" stroke="#000"/>')
    out.append(f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" stroke="#000"/>')
    out.append(f'<text x="{left + pw / 2}" y="{height - 15}" text-anchor="middle">concurrent streams</text>')
    out.append(
        f'<text x="18" y="{top + ph / 2}" transform="rotate(-90 18 {top + ph / 2})" '
        'text-anchor="middle">monthly cost (USD)</text>'
    )
    below = [(a, b) for a, b in zip(s.streams, s.serverless, strict=True) if a <= s.ceiling]
    above = [(a, b) for a, b in zip(s.streams, s.serverless, strict=True) if a >= s.ceiling]
    if below:
        out.append(
            f'<polyline fill="none" stroke="#c0392b" stroke-width="2.5" '
            f'points="{points([a for a, _ in below], [b for _, b in below])}"/>'
        )
    if len(above) > 1:
        out.append(
            f'<polyline fill="none" stroke="#c0392b" stroke-width="2" stroke-dasharray="6,5" '
            f'points="{points([a for a, _ in above], [b for _, b in above])}"/>'
        )
    out.append(
        f'<polyline fill="none" stroke="#2471a3" stroke-width="2.5" '
        f'points="{points(s.streams, s.monolith)}"/>'
    )
    cx = x(s.ceiling)
    out.append(
        f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{top}" y2="{top + ph}" stroke="#7d3c98" '
        'stroke-width="2" stroke-dasharray="3,3"/>'
    )
    out.append(
        f'<text x="{cx + 5:.1f}" y="{top + 14}" fill="#7d3c98">account quota ceiling: '
        f"{s.ceiling:,} streams</text>"
    )
    sx = x(s.scenario_streams)
    out.append(
        f'<line x1="{sx:.1f}" x2="{sx:.1f}" y1="{top}" y2="{top + ph}" stroke="#555" stroke-width="1"/>'
    )
    out.append(
        f'<text x="{sx - 5:.1f}" y="{top + 30}" text-anchor="end" fill="#555">scenario: '
        f"{s.scenario_streams:,} streams</text>"
    )
    lx, ly = left + 15, top + 50
    legend = [
        ("#c0392b", "", "serverless (Step Functions + Lambda + S3)"),
        ("#c0392b", "6,5", "serverless beyond the ceiling (not runnable in one account)"),
        ("#2471a3", "", "monolith (EC2)"),
    ]
    for i, (color, dash, label) in enumerate(legend):
        yy = ly + 18 * i
        out.append(
            f'<line x1="{lx}" x2="{lx + 30}" y1="{yy}" y2="{yy}" stroke="{color}" stroke-width="2.5" '
            f'stroke-dasharray="{dash or "none"}"/>'
        )
        out.append(f'<text x="{lx + 38}" y="{yy + 4}">{html.escape(label)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _png(s: Series, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError(
            "--chart out.png needs matplotlib (pip install matplotlib); "
            "or write .html/.svg, which need nothing"
        ) from None
    fig, ax = plt.subplots(figsize=(9, 5.2))
    below = [(a, b) for a, b in zip(s.streams, s.serverless, strict=True) if a <= s.ceiling]
    above = [(a, b) for a, b in zip(s.streams, s.serverless, strict=True) if a >= s.ceiling]
    ax.plot(*zip(*below, strict=True), color="#c0392b", lw=2.5, label="serverless")
    if len(above) > 1:
        ax.plot(
            *zip(*above, strict=True), color="#c0392b", lw=2, ls="--", label="serverless beyond the ceiling"
        )
    ax.plot(s.streams, s.monolith, color="#2471a3", lw=2.5, label="monolith (EC2)")
    ax.axvline(s.ceiling, color="#7d3c98", ls=":", lw=2, label=f"quota ceiling: {s.ceiling:,} streams")
    ax.axvline(s.scenario_streams, color="#555", lw=1, label=f"scenario: {s.scenario_streams:,} streams")
    ax.set_xlabel("concurrent streams")
    ax.set_ylabel("monthly cost (USD)")
    ax.set_title(s.title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
