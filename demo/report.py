"""Tables for a run, drawn with rich: defects, notifications, corrective actions, the two bills and their
prices. Plain text when the output is not a terminal, so logs and README excerpts stay readable."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from text_tables import MAIN_FIELDS, text_table

console = Console(highlight=False, soft_wrap=False, width=140)


def disagreement(found_by_path: list[dict[str, Any]], monolith: list[dict[str, Any]],
                 path: str = "the Lambda path") -> str | None:
    """None when `path` (the before's Lambda path, or the after) found what `monolith analyze` found on
    the same file; otherwise the error to report. All run the same converter and detectors, so a
    difference is a bug (a seek artefact, lost state), never a finding."""
    if found_by_path == monolith:
        return None
    lines = [f"{path} and `monolith analyze` disagree on the same file; both run the same converter "
             "and detectors, so this is a bug in the pipeline, not a finding about the stream"]
    for where, found, other in ((f"only on {path}", found_by_path, monolith),
                                ("only in `monolith analyze`", monolith, found_by_path)):
        only = [d for d in found if d not in other]
        if only:
            lines.append(f"{where}:")
            lines += [f"  {d['type']} {d['start_s']:.2f}-{d['end_s']:.2f} s, confidence {d['confidence']:.2f}"
                      + "".join(f", {k}={v}" for k, v in d.items() if k not in MAIN_FIELDS) for d in only]
    return "\n".join(lines)


def notifications_table(notifications: list[dict[str, Any]]) -> Table | str:
    if not notifications:
        return "  none"
    table = text_table("kind", "second", "what")
    for n in notifications:
        message = n["message"]
        if isinstance(message, dict) and "defect" in message:
            d = message["defect"]
            table.add_row(n["attributes"].get("kind", "?"), str(message["second"]),
                          f"{d['type']} {d['start_s']:.2f}-{d['end_s']:.2f} s")
        else:
            table.add_row(n["attributes"].get("kind", "?"), "", f"{n.get('subject') or ''}: {message}")
    return table


def actions_table(actions: list[dict[str, Any]]) -> Table | str:
    if not actions:
        return "  none"
    table = text_table("action", "for", "at s", "record", right=("at s",))
    for a in actions:
        table.add_row(a["action"], a["defect"]["type"], f"{a['defect']['start_s']:.2f}", a["key"])
    return table


def _count(value: float | int | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.3f}" if isinstance(value, float) else f"{value:,}"


BILL_ROWS: tuple[tuple[str, Any], ...] = (
    ("state transitions", lambda b: b["state_transitions"]),
    ("S3 PUT", lambda b: b["s3_requests"]["put"]),
    ("S3 GET", lambda b: b["s3_requests"]["get"]),
    ("S3 HEAD", lambda b: b["s3_requests"]["head"]),
    ("S3 LIST", lambda b: b["s3_requests"]["list"]),
    ("SQS requests", lambda b: b["sqs_requests"]["total"]),
    ("EventBridge events", lambda b: b.get("eventbridge_events", 0)),
    ("SNS publishes", lambda b: b["sns_publishes"]),
    ("Lambda invocations", lambda b: b["lambda_invocations"]),
    ("Lambda GB-seconds", lambda b: b["lambda_gb_seconds"]),
    ("CPU seconds", lambda b: b["cpu_s"]),
    ("wall seconds", lambda b: b["wall_s"]),
)


def bills_table(bills: dict[str, dict[str, Any]]) -> Table:
    """The bills side by side: totals and per stream-second, one pair of columns per architecture."""
    names = list(bills)
    columns = ["quantity"] + [f"{n} {part}" for n in names for part in ("total", "per stream-s")]
    table = text_table(*columns, right=tuple(columns[1:]))
    for label, get in BILL_ROWS:
        cells = []
        for name in names:
            bill = bills[name]
            value = get(bill)
            per = None if value is None else value / max(1, bill["stream_seconds"])
            cells += [_count(value), "-" if per is None else f"{per:,.3f}"]
        table.add_row(label, *cells)
    return table


def functions_table(bill: dict[str, Any]) -> Table:
    numbers = ("invocations", "memory MB", "max used MB", "busy s", "CPU s", "init s", "GB-s")
    table = text_table("function", *numbers, right=numbers)
    for role, f in bill["lambda_functions"].items():
        table.add_row(role, str(f["invocations"]), str(f["memory_mb"] or "-"),
                      str(f.get("max_memory_used_mb") or "-"), f"{f['duration_s']:.2f}",
                      "-" if f["cpu_s"] is None else f"{f['cpu_s']:.2f}", f"{f['init_s']:.2f}",
                      f"{f['gb_seconds']:.3f}")
    return table


def prices_table(prices: dict[str, dict[str, Any]]) -> Table:
    """What each run cost, per stream-hour, and scaled to the scenario: one column per architecture (the
    ratio is printed under the table)."""
    names = list(prices)
    table = text_table("", *names, right=tuple(names))
    for label, get in (("this run", lambda p: f"${p['run_usd']:.6f}"),
                       ("per stream-hour", lambda p: f"${p['per_stream_hour_usd']:.4f}"),
                       ("scenario per month", lambda p: f"${p['scenario']['monthly_usd']:,.0f}")):
        table.add_row(label, *(get(prices[n]) for n in names))
    return table


def progress(*, disable: bool = False) -> Progress:
    """A progress display in stream-seconds (total unknown until the stream is probed), on stderr."""
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("stream-s"), TimeElapsedColumn(), console=Console(stderr=True),
                    disable=disable)
