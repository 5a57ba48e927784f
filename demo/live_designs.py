"""One live stream followed by every design at once: the publisher (`demo.live.Publisher`) writes it into
the before's source bucket, and the before (its live starter), the after (its tasks, fed by the
playlist's events) and the event-driven serverless design (its segment route) each follow it as it is
written. A live board shows the publisher's edge and, for each design, the second it is on — read from
what it writes: the before's execution histories, the after's checkpoint, the serverless state object —
and its current lag. `python -m demo --live` and `python -m demo.bench` use it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from demo.after import follow_live
from demo.deploy import Stack
from demo.live import LiveBoard, LiveRun, Publisher, after_position, live_stream_id, run_live_before
from demo.report import progress
from demo.run import Aws, DesignRun, Observer, stream_total
from demo.serverless import follow_serverless, stream_state

DESIGNS = ("before", "after", "serverless")
BOARD_POLL_S = 0.5
PER_STREAM_SECOND_S = 30.0  # the longest any design may take per stream-second before it is given up


@dataclass
class LiveDesigns:
    """What each design made of the one live stream; `errors` holds those that could not follow it."""

    before: LiveRun | None = None
    others: dict[str, DesignRun] = field(default_factory=dict)  # "after", "serverless"
    errors: dict[str, BaseException] = field(default_factory=dict)


def follow_live_designs(aws: Aws, stack: Stack, path: Path, *, log_dir: Path, speed: float,
                        designs: tuple[str, ...] = DESIGNS, segment_seconds: float = 2.0,
                        display: bool = True) -> LiveDesigns:
    """Publish `path` live at `speed` times real time while `designs` (the before always among them)
    follow it, each in a thread of its own; the board is drawn on stderr when `display`."""
    stream_id = live_stream_id(path)
    publisher = Publisher(aws, stack.source_bucket, path, stream_id, segment_seconds=segment_seconds,
                          speed=speed, faults=None)
    found = LiveDesigns()
    positions = dict.fromkeys(designs, 0)
    observer = Observer(aws, stack.topic_arn)  # subscribed before anything is published
    since_ms, started = int(time.time() * 1000), time.monotonic()
    # LocalStack's before falls behind a live stream: it took up to 10.6 s of wall per stream-second on a
    # busy 2-core host (README, "Live streams"); about three times that, and 300 s to start.
    timeout_s = 300 + PER_STREAM_SECOND_S * (stream_total(path) or 600)

    def before() -> None:
        found.before = run_live_before(aws, stack, path, publisher=publisher, observer=observer,
                                       progress=lambda done, _: positions.__setitem__("before", done))

    def after() -> None:  # starts the shared publisher once its tasks are ready
        found.others["after"] = follow_live(aws, stack, path, log_dir=log_dir, publisher=publisher,
                                            observer=observer, timeout_s=timeout_s)

    def serverless() -> None:
        found.others["serverless"] = follow_serverless(
            aws, stack, publisher.finish(timeout_s), observer=observer, since_ms=since_ms, started=started,
            timeout_s=timeout_s)

    jobs = {"before": before, "after": after, "serverless": serverless}
    threads = [_guarded(name, jobs[name], found.errors) for name in designs]
    for thread in threads:
        thread.start()
    if "after" not in designs:
        publisher.start()
    try:
        with progress(disable=not display) as bars:
            board = LiveBoard(bars, publisher, designs)
            while any(t.is_alive() for t in threads):
                positions.update(_positions(aws, stack, stream_id, designs, found))
                board.update(positions, done=_finished(found))
                time.sleep(BOARD_POLL_S)
            positions.update(_positions(aws, stack, stream_id, designs, found))
            board.update(positions, done=_finished(found))
    finally:
        observer.close()
    return found


def _finished(found: LiveDesigns) -> set[str]:
    """The designs done with the stream: their thread returned a run (their last second is recorded)."""
    return set(found.others) | ({"before"} if found.before is not None else set())


def _positions(aws: Aws, stack: Stack, stream_id: str, designs: tuple[str, ...],
               found: LiveDesigns) -> dict[str, int]:
    """The after's and the serverless design's next second, from their checkpoint and state objects."""
    out = {}
    if "after" in designs:
        out["after"] = len(found.others["after"].records) if "after" in found.others \
            else after_position(aws, stack, stream_id)
    if "serverless" in designs and stack.serverless is not None:
        if "serverless" in found.others:
            out["serverless"] = len(found.others["serverless"].records)
        else:
            state = stream_state(aws, stack.serverless, stream_id)
            out["serverless"] = int(state["next_second"]) if state else 0
    if found.before is not None:
        out["before"] = found.before.run.stream_seconds
    return out


def _guarded(name: str, job: Callable[[], None], errors: dict[str, BaseException]) -> threading.Thread:
    def run() -> None:
        try:
            job()
        except Exception as error:  # reported by the caller, with the design's name
            errors[name] = error

    return threading.Thread(target=run, name=f"live-{name}", daemon=True)
