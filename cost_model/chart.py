"""The two figures: monthly cost against concurrent streams (log axes, quota ceilings marked) and what a
stream-hour pays for, stacked by service.

`.png` needs matplotlib (a dev dependency); `.svg` and `.html` are written by hand and need nothing.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cost_model.inputs import InputError

COLOURS = [
    "#c0392b",
    "#e67e22",
    "#2471a3",
    "#27ae60",
    "#7d3c98",
    "#7f8c8d",
    "#16a085",
    "#f1c40f",
    "#34495e",
    "#e84393",
    "#8e5a2b",
    "#00cec9",
]


@dataclass(frozen=True)
class Series:
    label: str
    streams: list[int]
    monthly_usd: list[float]
    ceiling: int | None  # the most concurrent streams one account runs, None = no such quota
    ceiling_reason: str


@dataclass(frozen=True)
class Curves:
    title: str
    series: list[Series]
    scenario_streams: int


@dataclass(frozen=True)
class Bars:
    title: str
    stacks: dict[str, dict[str, float]]  # architecture -> service -> USD per stream-hour

    @property
    def services(self) -> list[str]:
        totals: dict[str, float] = {}
        for stack in self.stacks.values():
            for service, usd in stack.items():
                totals[service] = totals.get(service, 0.0) + usd
        return sorted(totals, key=lambda s: -totals[s])


def money(value: float) -> str:
    """$1.2M, $35k, $120, $0.05: axis labels."""
    for div, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= div:
            return f"${value / div:.3g}{suffix}"
    if abs(value) >= 100:
        return f"${value:,.0f}"
    return f"${value:.2f}" if abs(value) >= 1 else f"${value:.3g}"


def write_cost_chart(curves: Curves, path: Path) -> None:
    _write(path, lambda: _cost_png(curves, path), lambda: cost_svg(curves), curves.title)


def write_bars(bars: Bars, path: Path) -> None:
    _write(path, lambda: _bars_png(bars, path), lambda: bars_svg(bars), bars.title)


def _write(path: Path, png: Callable[[], None], svg: Callable[[], str], title: str) -> None:
    suffix = path.suffix.lower()
    if suffix not in (".png", ".svg", ".html", ".htm"):
        raise InputError(f"unsupported chart file type {path.suffix!r}; use .png, .svg or .html")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".png":
        png()
        return
    text = svg()
    if suffix != ".svg":
        text = (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"</head><body style='font-family:sans-serif'>{text}</body></html>\n"
        )
    path.write_text(text)


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError(
            "a .png chart needs matplotlib (pip install matplotlib); or write .svg/.html, which need nothing"
        ) from None
    return plt


# --- SVG, by hand ----------------------------------------------------------------------------------------
def _log_ticks(low: float, high: float) -> list[float]:
    return [10.0**e for e in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)]


def cost_svg(c: Curves, width: int = 900, height: int = 540) -> str:
    left, right, top, bottom = 80, 30, 50, 60
    pw, ph = width - left - right, height - top - bottom
    xs = [x for s in c.series for x in s.streams]
    ys = [y for s in c.series for y in s.monthly_usd if y > 0]
    xticks, yticks = _log_ticks(min(xs), max(xs)), _log_ticks(min(ys), max(ys))
    x0, x1, y0, y1 = (math.log10(v) for v in (xticks[0], xticks[-1], yticks[0], yticks[-1]))

    def x(v: float) -> float:
        return left + pw * (math.log10(v) - x0) / (x1 - x0)

    def y(v: float) -> float:
        return top + ph * (1 - (math.log10(max(v, 10**y0)) - y0) / (y1 - y0))

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="15">{html.escape(c.title)}</text>',
    ]
    for v in yticks:
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{money(v)}</text>')
    for v in xticks:
        out.append(f'<line x1="{x(v):.1f}" x2="{x(v):.1f}" y1="{top}" y2="{top + ph}" stroke="#eee"/>')
        out.append(f'<text x="{x(v):.1f}" y="{top + ph + 18}" text-anchor="middle">{v:,.0f}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#000"/>')
    out.append(
        f'<text x="{left + pw / 2}" y="{height - 15}" text-anchor="middle">concurrent streams (log)</text>'
    )
    out.append(
        f'<text x="18" y="{top + ph / 2}" transform="rotate(-90 18 {top + ph / 2})" '
        'text-anchor="middle">monthly cost, USD (log)</text>'
    )
    for i, s in enumerate(c.series):
        colour = COLOURS[i % len(COLOURS)]
        pts = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in zip(s.streams, s.monthly_usd, strict=True))
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2.5" points="{pts}"/>')
        yy = top + 16 + 18 * i
        out.append(
            f'<line x1="{left + 12}" x2="{left + 40}" y1="{yy}" y2="{yy}" stroke="{colour}" '
            'stroke-width="2.5"/>'
        )
        label = s.label + (f" — quota ceiling {s.ceiling:,} streams" if s.ceiling else "")
        out.append(f'<text x="{left + 46}" y="{yy + 4}">{html.escape(label)}</text>')
        if s.ceiling and xticks[0] <= s.ceiling <= xticks[-1]:
            out.append(
                f'<line x1="{x(s.ceiling):.1f}" x2="{x(s.ceiling):.1f}" y1="{top}" y2="{top + ph}" '
                f'stroke="{colour}" stroke-dasharray="4,4"/>'
            )
    sx = x(c.scenario_streams)
    out.append(f'<line x1="{sx:.1f}" x2="{sx:.1f}" y1="{top}" y2="{top + ph}" stroke="#555"/>')
    out.append(
        f'<text x="{sx - 4:.1f}" y="{top + ph - 8}" text-anchor="end" fill="#555">scenario: '
        f"{c.scenario_streams:,} streams</text>"
    )
    out.append("</svg>")
    return "\n".join(out)


def bars_svg(b: Bars, width: int = 900, height: int = 520) -> str:
    left, right, top, bottom = 80, 220, 50, 60
    pw, ph = width - left - right, height - top - bottom
    services = b.services
    ymax = max(sum(stack.values()) for stack in b.stacks.values()) or 1.0
    bar = pw / len(b.stacks)

    def y(v: float) -> float:
        return top + ph * (1 - v / ymax)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="15">{html.escape(b.title)}</text>',
        f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + ph}" stroke="#000"/>',
        f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" stroke="#000"/>',
        f'<text x="18" y="{top + ph / 2}" transform="rotate(-90 18 {top + ph / 2})" '
        'text-anchor="middle">USD per stream-hour</text>',
    ]
    for i in range(6):
        v = ymax * i / 5
        out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{money(v)}</text>')
    for i, (name, stack) in enumerate(b.stacks.items()):
        base = 0.0
        bx = left + bar * i + bar * 0.15
        for j, service in enumerate(services):
            usd = stack.get(service, 0.0)
            if usd <= 0:
                continue
            out.append(
                f'<rect x="{bx:.1f}" y="{y(base + usd):.1f}" width="{bar * 0.7:.1f}" '
                f'height="{y(base) - y(base + usd):.2f}" fill="{COLOURS[j % len(COLOURS)]}"/>'
            )
            base += usd
        out.append(
            f'<text x="{bx + bar * 0.35:.1f}" y="{y(base) - 5:.1f}" text-anchor="middle">{money(base)}</text>'
        )
        out.append(
            f'<text x="{bx + bar * 0.35:.1f}" y="{top + ph + 18}" text-anchor="middle">'
            f"{html.escape(name)}</text>"
        )
    for j, service in enumerate(services):
        yy = top + 10 + 18 * j
        out.append(
            f'<rect x="{left + pw + 20}" y="{yy - 9}" width="12" height="12" '
            f'fill="{COLOURS[j % len(COLOURS)]}"/>'
        )
        out.append(f'<text x="{left + pw + 38}" y="{yy + 2}">{html.escape(service)}</text>')
    out.append("</svg>")
    return "\n".join(out)


# --- PNG, with matplotlib --------------------------------------------------------------------------------
def _cost_png(c: Curves, path: Path) -> None:
    plt = _pyplot()
    from matplotlib.ticker import FuncFormatter

    fig, ax = plt.subplots(figsize=(10, 5.8))
    for i, s in enumerate(c.series):
        colour = COLOURS[i % len(COLOURS)]
        within = [
            (x, y) for x, y in zip(s.streams, s.monthly_usd, strict=True) if not s.ceiling or x <= s.ceiling
        ]
        beyond = [
            (x, y) for x, y in zip(s.streams, s.monthly_usd, strict=True) if s.ceiling and x >= s.ceiling
        ]
        ax.plot(*zip(*within, strict=True), color=colour, lw=2.5, label=s.label)
        if len(beyond) > 1:  # past one account's quota: a price, not something one account can run
            ax.plot(
                *zip(*beyond, strict=True),
                color=colour,
                lw=1.8,
                ls="--",
                label=f"{s.label}: past the ceiling (more than one account)",
            )
        if s.ceiling:
            ax.axvline(
                s.ceiling,
                color=colour,
                ls=":",
                lw=1.8,
                label=f"{s.label}: quota ceiling {s.ceiling:,} streams",
            )
    ax.axvline(c.scenario_streams, color="#555", lw=1, label=f"scenario: {c.scenario_streams:,} streams")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: money(v)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_xlabel("concurrent streams (log)")
    ax.set_ylabel("monthly cost, USD (log)")
    ax.set_title(c.title, fontsize=11)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _bars_png(b: Bars, path: Path) -> None:
    plt = _pyplot()
    from matplotlib.ticker import FuncFormatter

    fig, (full, zoom) = plt.subplots(1, 2, figsize=(12, 5.4), gridspec_kw={"width_ratios": [1, 1]})
    names = list(b.stacks)
    # Two panels: every architecture on one scale, and the cheap ones on their own so they are not flat.
    cheap = [
        n for n in names if sum(b.stacks[n].values()) < 0.1 * max(sum(s.values()) for s in b.stacks.values())
    ]
    for ax, shown in ((full, names), (zoom, cheap or names)):
        bottoms = [0.0] * len(shown)
        for j, service in enumerate(b.services):
            values = [b.stacks[n].get(service, 0.0) for n in shown]
            if not any(values):
                continue
            ax.bar(shown, values, bottom=bottoms, color=COLOURS[j % len(COLOURS)], label=service)
            bottoms = [a + v for a, v in zip(bottoms, values, strict=True)]
        for k, total in enumerate(bottoms):
            ax.text(k, total, money(total), ha="center", va="bottom", fontsize=9)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: money(v)))
        ax.set_ylim(0, max(bottoms) * 1.12)
        ax.set_ylabel("USD per stream-hour")
        ax.tick_params(axis="x", labelsize=8)
        plt.setp(ax.get_xticklabels(), rotation=20, ha="right")  # five names side by side
    full.set_title("all", fontsize=10)
    zoom.set_title("the cheap ones, own scale", fontsize=10)
    handles, labels = full.get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", fontsize=8)
    fig.suptitle(b.title, fontsize=11)
    fig.tight_layout(rect=(0, 0, 0.86, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)
