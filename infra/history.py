"""The worst-case execution history of the workflow, counted from its definition (no AWS, no jsii).

Step Functions fails an execution at 25,000 history events. The workflow continues in a new execution
every `seconds_per_execution` stream-seconds, so that number is bounded by what one stream-second can
cost in the worst case: every Task retried up to each of its Retry blocks' MaxAttempts, the notifications
of a second at their cap, every state on the longest path of the loop. The events per state follow the
GetExecutionHistory shapes (e.g. LocalStack's AWS-recorded snapshots, tests/aws/services/stepfunctions/):

- Pass, Choice, Succeed: <Type>StateEntered, <Type>StateExited (2); Fail: FailStateEntered (1)
- Task: TaskStateEntered, TaskScheduled, TaskStarted, TaskSucceeded, TaskStateExited (5), and per failed
  attempt that a Retry covers TaskScheduled, TaskStarted, TaskFailed|TaskTimedOut (3)
- Parallel: ParallelStateEntered, ParallelStateStarted, ParallelStateSucceeded, ParallelStateExited (4)
  plus its branches; Map: the same 4 plus MapIterationStarted/Succeeded (2) and the body per item
- the execution: ExecutionStarted and ExecutionSucceeded|Failed (2)

Side-effect free (json only, plus statemachine.asl's graph helpers), so the stack's configuration can
check the bound at synth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from statemachine.asl import find_loop, successors

HISTORY_LIMIT = 25_000  # events per execution, a hard limit of Standard workflows
EXECUTION_EVENTS = 2
STATE_EVENTS = 2
FAIL_EVENTS = 1
TASK_EVENTS = 5
RETRY_EVENTS = 3
PARALLEL_EVENTS = 4
MAP_EVENTS = 4
ITERATION_EVENTS = 2
DEFAULT_MAX_ATTEMPTS = 3  # the States Language default when a Retrier omits MaxAttempts

State = dict[str, Any]


def retries(state: State) -> int:
    """The most retries a Task can make: each Retrier counts its own attempts, so a Task whose errors
    alternate between Retriers can use all of them."""
    return sum(int(r.get("MaxAttempts", DEFAULT_MAX_ATTEMPTS)) for r in state.get("Retry", []))


@dataclass(frozen=True)
class HistoryBound:
    """Worst-case history events: `prefix` before the loop (ExecutionStarted included), `per_second` one
    loop iteration, `tail` the longest way out of the loop to the end of the execution."""

    prefix: int
    per_second: int
    tail: int

    def events(self, seconds: int) -> int:
        return self.prefix + seconds * self.per_second + self.tail

    def max_seconds(self, limit: int = HISTORY_LIMIT) -> int:
        return (limit - self.prefix - self.tail) // self.per_second


class _Counter:
    def __init__(self, map_items: int) -> None:
        self.map_items = map_items

    def own(self, state: State) -> int:
        """A state's events, nested branches and Map iterations included (not what follows it)."""
        kind = state["Type"]
        if kind == "Task":
            return TASK_EVENTS + RETRY_EVENTS * retries(state)
        if kind == "Parallel":
            return PARALLEL_EVENTS + sum(self.block(b) for b in state["Branches"])
        if kind == "Map":
            body = state.get("ItemProcessor") or state["Iterator"]
            return MAP_EVENTS + self.map_items * (ITERATION_EVENTS + self.block(body))
        if kind == "Fail":
            return FAIL_EVENTS
        return STATE_EVENTS

    def block(self, machine: dict[str, Any]) -> int:
        """The longest path through a branch or Map body, from StartAt to its end."""
        return self.longest(machine["States"], machine["StartAt"], stop=None, allowed=None, catches=False)

    def longest(self, states: dict[str, State], start: str, *, stop: str | None,
                allowed: frozenset[str] | None, catches: bool) -> int:
        memo: dict[str, int] = {}

        def go(name: str, path: frozenset[str]) -> int:
            if name == stop and path:  # back at the loop's entry: one iteration done
                return 0
            if name in path:
                raise ValueError(f"state {name!r} is on a cycle other than the stream-second loop")
            if name not in memo:
                state = states[name]
                following = [t for t in successors(state, catches=catches)
                             if allowed is None or t in allowed or t == stop]
                memo[name] = self.own(state) + max((go(t, path | {name}) for t in following), default=0)
            return memo[name]

        return go(start, frozenset())


def history_bound(definition: dict[str, Any], *, map_items: int) -> HistoryBound:
    """The worst case for `definition` (substituted or not: only its structure is read) with at most
    `map_items` items per Map state."""
    counter = _Counter(map_items)
    states: dict[str, State] = definition["States"]
    loop = find_loop(definition)
    members = frozenset(loop.members)
    # Before the loop: only the ways that reach it (a rejected input ends long before any second).
    reaching = frozenset(n for n in states if n != loop.entry and _reaches(states, n, loop.entry))
    prefix = 1 + (0 if definition["StartAt"] == loop.entry else counter.longest(
        states, definition["StartAt"], stop=loop.entry, allowed=reaching, catches=False))
    per_second = counter.longest(states, loop.entry, stop=loop.entry, allowed=members, catches=False)
    # Ways out: a loop state's exits (the last second, continue-as-new) and Catch targets (a failure
    # after retries); the longest of them to the end of the execution, ExecutionSucceeded|Failed included.
    exits = {t for name in members for t in successors(states[name]) if t not in members}
    tail = 1 + max(counter.longest(states, t, stop=None, allowed=None, catches=True) for t in exits)
    return HistoryBound(prefix=prefix, per_second=per_second, tail=tail)


def _reaches(states: dict[str, State], start: str, target: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name == target:
            return True
        if name in seen or name not in states:
            continue
        seen.add(name)
        todo += successors(states[name], catches=False)
    return False
