"""Text tables for a run: defects, notifications, corrective actions and the bill of materials."""

from __future__ import annotations

import sys
import time
from typing import Any

MAIN_FIELDS = {"type", "start_s", "end_s", "confidence"}


def defects_table(defects: list[dict[str, Any]]) -> str:
    if not defects:
        return "  no defects found"
    lines = [f"  {'type':<17}{'start s':>9}{'end s':>9}{'conf':>7}  details"]
    for d in defects:
        details = ", ".join(f"{k}={v}" for k, v in d.items() if k not in MAIN_FIELDS)
        lines.append(f"  {d['type']:<17}{d['start_s']:>9.2f}{d['end_s']:>9.2f}{d['confidence']:>7.2f}"
                     f"  {details}")
    return "\n".join(lines)


def notifications_table(notifications: list[dict[str, Any]]) -> str:
    if not notifications:
        return "  none"
    lines = []
    for n in notifications:
        message = n["message"]
        if isinstance(message, dict) and "defect" in message:
            d = message["defect"]
            lines.append(f"  {n['attributes'].get('kind', '?'):<17} second {message['second']:>4}: "
                         f"{d['type']} {d['start_s']:.2f}-{d['end_s']:.2f} s")
        else:
            lines.append(f"  {n['attributes'].get('kind', '?'):<17} {n.get('subject') or ''}: {message}")
    return "\n".join(lines)


def actions_table(actions: list[dict[str, Any]]) -> str:
    if not actions:
        return "  none"
    return "\n".join(f"  {a['action']:<17} for {a['defect']['type']} at {a['defect']['start_s']:.2f} s  "
                     f"({a['key']})" for a in actions)


def bill_table(summary: dict[str, Any]) -> str:
    seconds = max(1, summary["stream_seconds"])
    s3 = summary["s3_requests"]
    rows: list[tuple[str, float, str]] = [
        ("state transitions", summary["state_transitions"], ""),
        ("S3 PUT", s3["put"], ""),
        ("S3 GET", s3["get"], ""),
        ("S3 HEAD", s3["head"], ""),
        ("S3 LIST", s3["list"], ""),
        ("Lambda invocations", summary["lambda_invocations"], ""),
        ("Lambda GB-seconds", summary["lambda_gb_seconds"], "incl. init"),
        ("SNS publishes", summary["sns_publishes"], ""),
    ]
    lines = [f"  {'':<22}{'total':>12}{'per stream-s':>14}"]
    for name, total, note in rows:
        fmt = ".3f" if isinstance(total, float) else "d"
        lines.append(f"  {name:<22}{total:>12{fmt}}{total / seconds:>14.3f}  {note}".rstrip())
    lines.append("")
    lines.append(f"  {'function':<26}{'invocations':>12}{'memory MB':>11}{'busy s':>9}{'CPU s':>8}"
                 f"{'init s':>8}{'GB-s':>9}")
    for role, f in summary["lambda_functions"].items():
        cpu = f"{f['cpu_s']:>8.2f}" if f.get("cpu_s") is not None else f"{'-':>8}"
        lines.append(f"  {role:<26}{f['invocations']:>12}{f['memory_mb'] or 0:>11}{f['duration_s']:>9.2f}"
                     f"{cpu}{f['init_s']:>8.2f}{f['gb_seconds']:>9.3f}")
    lines.append("")
    lines.append("  S3 requests by source: " + "; ".join(
        f"{src} " + ", ".join(f"{op} {n}" for op, n in ops.items()) for src, ops in s3["by_source"].items()))
    return "\n".join(lines)


class ProgressBar:
    """`stream-seconds done / total` on stderr; a line per quarter when stderr is not a terminal."""

    def __init__(self, label: str = "running", width: int = 30) -> None:
        self.label, self.width = label, width
        self.started = time.monotonic()
        self.tty = sys.stderr.isatty()
        self._last_quarter = -1
        self._last = (-1, None)

    def __call__(self, done: int, total: int | None) -> None:
        if (done, total) == self._last:
            return
        self._last = (done, total)
        elapsed = time.monotonic() - self.started
        if total:
            bar = "#" * (self.width * min(done, total) // total)
            text = f"{self.label} [{bar:<{self.width}}] {done}/{total} stream-s  {elapsed:5.1f} s"
        else:
            text = f"{self.label} {done} stream-s  {elapsed:5.1f} s"
        if self.tty:
            print(f"\r{text}", end="", file=sys.stderr, flush=True)
        else:
            quarter = 4 * done // total if total else done
            if quarter != self._last_quarter:
                self._last_quarter = quarter
                print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.tty:
            print(file=sys.stderr)
