"""Count the state transitions an Amazon States Language definition costs, as Step Functions bills them.

Billing rule (aws.amazon.com/step-functions/pricing): "a state transition each time a step of your workflow
is executed ... including retries". So every state entered is one transition — Pass, Choice, Wait, Succeed
and Fail included —, a Parallel state is one plus the states of each branch, a Map state one plus its
iterator's states per item, and every retry of a Task one more.

`walk` follows one concrete path (decisions come from a callback), so a whole run can be replayed and
compared with an execution history event for event; `find_loop` finds the per-stream-second loop, and
`LoopModel` turns the definition into per-second counts without typing any of them in.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

State = dict[str, Any]
States = dict[str, State]
Decide = Callable[[str, State], str]
PerState = Callable[[str, State], int]

TERMINAL_TYPES = ("Succeed", "Fail")
KNOWN_TYPES = ("Pass", "Task", "Choice", "Parallel", "Map", "Wait", "Succeed", "Fail")


class AslError(ValueError):
    """The definition cannot be walked (unknown state, no loop, a path that never ends)."""


@dataclass
class Tally:
    """What a walk did: transitions billed, states entered by name, and service calls by integration."""

    transitions: int = 0
    entered: Counter[str] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)
    retries: int = 0

    def __add__(self, other: Tally) -> Tally:
        return self._combine(other, 1)

    def __sub__(self, other: Tally) -> Tally:
        # Signed: a continue-as-new iteration minus a quiet one loses a Pass and gains two states.
        return self._combine(other, -1)

    def _combine(self, other: Tally, sign: int) -> Tally:
        def merge(a: Counter[str], b: Counter[str]) -> Counter[str]:
            out = Counter(a)
            for key, value in b.items():
                out[key] += sign * value
            return Counter({k: v for k, v in out.items() if v != 0})

        return Tally(
            self.transitions + sign * other.transitions,
            merge(self.entered, other.entered),
            merge(self.calls, other.calls),
            self.retries + sign * other.retries,
        )

    def scaled(self, factor: float) -> dict[str, float]:
        return {"transitions": self.transitions * factor, **{k: v * factor for k, v in self.calls.items()}}

    def calls_matching(self, prefix: str) -> int:
        return sum(n for key, n in self.calls.items() if key.startswith(prefix))


def load(path: Path | str) -> dict[str, Any]:
    try:
        definition = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise AslError(f"{path}: cannot read the workflow definition ({error})") from None
    if not isinstance(definition, dict) or "States" not in definition or "StartAt" not in definition:
        raise AslError(f"{path}: not an Amazon States Language document (no StartAt/States)")
    return definition


def integration(state: State) -> str:
    """A name for what a Task calls: "lambda:invoke:<FunctionName>", "sns:publish", "aws-sdk:s3:putObject"."""
    resource = str(state.get("Resource", ""))
    name = resource.split(":::", 1)[1] if ":::" in resource else resource
    if name.startswith("lambda:invoke") or ":function:" in resource:
        function = (state.get("Parameters") or {}).get("FunctionName", resource)
        return f"lambda:invoke:{_placeholder(str(function))}"
    return name.removesuffix(".sync").removesuffix(".waitForTaskToken")


def _placeholder(text: str) -> str:
    return text[2:-1] if text.startswith("${") and text.endswith("}") else text


def walk(
    states: States,
    start: str,
    *,
    decide: Decide,
    map_items: PerState = lambda name, state: 0,
    retries: PerState = lambda name, state: 0,
    stop: Callable[[str], bool] = lambda name: False,
    tally: Tally | None = None,
    max_steps: int = 100_000,
) -> tuple[Tally, str | None]:
    """Enter states from `start` until a terminal state (returns None) or a state `stop` accepts (returned,
    not entered). Parallel branches and Map iterations are walked in full with the same callbacks."""
    tally = tally if tally is not None else Tally()

    def walk_inner(block: dict[str, Any]) -> None:
        # A branch or Map body is walked to its end with the same callbacks, into the same tally.
        walk(
            block["States"],
            block["StartAt"],
            decide=decide,
            map_items=map_items,
            retries=retries,
            tally=tally,
            max_steps=max_steps,
        )

    name = start
    for _ in range(max_steps):
        if name not in states:
            raise AslError(f"state {name!r} is not defined")
        state = states[name]
        kind = state.get("Type")
        if kind not in KNOWN_TYPES:
            raise AslError(f"state {name!r} has unknown type {kind!r}")
        extra = retries(name, state) if kind == "Task" else 0
        tally.transitions += 1 + extra
        tally.retries += extra
        tally.entered[name] += 1
        if kind == "Task":
            tally.calls[integration(state)] += 1 + extra
        elif kind == "Parallel":
            for branch in state.get("Branches", []):
                walk_inner(branch)
        elif kind == "Map":
            body = state.get("ItemProcessor") or state.get("Iterator")
            if body is None:
                raise AslError(f"Map state {name!r} has no ItemProcessor")
            for _ in range(map_items(name, state)):
                walk_inner(body)
        if kind in TERMINAL_TYPES or state.get("End"):
            return tally, None
        following = decide(name, state) if kind == "Choice" else state.get("Next")
        if not following:
            raise AslError(f"state {name!r} has neither Next nor End")
        if stop(following):
            return tally, following
        name = following
    raise AslError(f"no end after {max_steps} states: a loop without an exit")


def successors(state: State, *, catches: bool = True) -> list[str]:
    out = [state["Next"]] if "Next" in state else []
    if state.get("Type") == "Choice":
        out += [rule["Next"] for rule in state.get("Choices", [])]
        out += [state["Default"]] if "Default" in state else []
    if catches:
        out += [c["Next"] for c in state.get("Catch", [])]
    return out


def _reachable(states: States, start: str, *, avoid: str | None = None) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen or name == avoid or name not in states:
            continue
        seen.add(name)
        todo += successors(states[name])
    return seen


@dataclass(frozen=True)
class Loop:
    entry: str
    members: frozenset[str]


def find_loop(definition: dict[str, Any]) -> Loop:
    """The first state on a cycle in breadth-first order from StartAt, and every state on its cycles
    (reachable from the entry and able to reach it again)."""
    states: States = definition["States"]
    order: list[str] = []
    frontier = [definition["StartAt"]]
    while frontier:
        name = frontier.pop(0)
        if name in order or name not in states:
            continue
        order.append(name)
        frontier += successors(states[name])
    for name in order:
        after = set().union(*(_reachable(states, s) for s in successors(states[name])))
        if name in after:
            members = {m for m in _reachable(states, name) if name in _reachable(states, m) or m == name}
            return Loop(entry=name, members=frozenset(members))
    raise AslError("the workflow has no loop: nothing repeats per stream-second")


@dataclass(frozen=True)
class Iteration:
    """How one loop iteration ends: "next" (back to the entry), "continue" (continue-as-new: a Task that
    calls states:startExecution), "done" (the stream's last second: a Succeed state)."""

    mode: str = "next"
    defects: int = 0


class LoopModel:
    """Per-stream-second counts of the definition's loop, each derived by walking the definition.

    Choice states in the loop are decided by role, not by evaluating their rules (the data they test is
    produced by Lambdas): a target outside the loop is an exit, classified by what it reaches
    (states:startExecution → "continue", a Succeed → "done", else a failure path, never taken); among
    targets inside the loop, a second with defects takes the one leading to a Map state (the
    notifications), a quiet second the Default. Before the loop, a fresh execution takes each Choice's
    Default, a continued one its first rule that reaches the loop.
    """

    def __init__(self, definition: dict[str, Any]) -> None:
        self.definition = definition
        self.states: States = definition["States"]
        self.loop = find_loop(definition)
        self._exit_kind = {
            t: self._classify_exit(t)
            for name in self.loop.members
            for t in successors(self.states[name], catches=False)
            if t not in self.loop.members
        }
        self.quiet = self.iteration(Iteration())
        one, two = self.iteration(Iteration(defects=1)), self.iteration(Iteration(defects=2))
        self.per_defect = two - one  # one more Map item
        self.defect_second = one - self.quiet - self.per_defect  # the Map state and its Choice branch
        # What an execution's last iteration costs beyond a quiet one (continue-as-new instead of looping
        # back).
        self.continue_tail = self.iteration(Iteration("continue")) - self.quiet
        self.fresh_prefix = self.prefix(continued=False)
        self.continued_prefix = self.prefix(continued=True)

    # --- walks -------------------------------------------------------------------------------------
    def iteration(self, it: Iteration) -> Tally:
        tally, _ = walk(
            self.states,
            self.loop.entry,
            decide=self._decider(it),
            map_items=lambda name, state: it.defects,
            stop=lambda name: name == self.loop.entry,
        )
        return tally

    def prefix(self, *, continued: bool) -> Tally:
        def decide(name: str, state: State) -> str:
            rules = [r["Next"] for r in state.get("Choices", [])]
            reaching = [t for t in rules if self.loop.entry in _reachable(self.states, t)]
            if continued and reaching:
                return reaching[0]
            return state.get("Default") or rules[0]

        tally, reached = walk(
            self.states, self.definition["StartAt"], decide=decide, stop=lambda name: name == self.loop.entry
        )
        if reached != self.loop.entry and self.definition["StartAt"] != self.loop.entry:
            raise AslError("the loop cannot be reached from StartAt")
        return tally

    def run(
        self,
        seconds: int,
        *,
        seconds_per_execution: int,
        defect_items: list[int] | None = None,
        retries: int = 0,
    ) -> tuple[Tally, int]:
        """Replay a whole stream: `seconds` stream-seconds, continuing as new every
        `seconds_per_execution`, with `defect_items[i]` notifications on the i-th second that has defects.
        Returns the tally and the number of executions."""
        if seconds < 1 or seconds_per_execution < 1:
            raise AslError("a run needs at least one second and one second per execution")
        items = list(defect_items or [])
        total, executions, second = Tally(), 0, 0
        while second < seconds:
            total = total + (self.continued_prefix if executions else self.fresh_prefix)
            executions += 1
            for n in range(seconds_per_execution):
                last_of_stream = second == seconds - 1
                mode = "done" if last_of_stream else "continue" if n == seconds_per_execution - 1 else "next"
                defects = items[second] if second < len(items) else 0
                total = total + self.iteration(Iteration(mode, defects))
                second += 1
                if mode != "next":
                    break
        total.transitions += retries
        total.retries += retries
        return total, executions

    # --- per stream-second --------------------------------------------------------------------------
    def per_second(
        self,
        *,
        seconds_per_execution: int,
        defect_seconds_rate: float = 0.0,
        defects_rate: float = 0.0,
        retry_rate: float = 0.0,
    ) -> dict[str, float]:
        """Expected transitions and service calls per stream-second of a long (live) stream.

        defect_seconds_rate: fraction of seconds with at least one defect; defects_rate: defect
        notifications per second; retry_rate: extra attempts per Task entered. Each execution adds its
        continued prefix and its continue-as-new tail in place of one back-to-entry step."""
        boundary = self.continued_prefix + self.continue_tail
        parts = [
            (self.quiet, 1.0),
            (self.defect_second, defect_seconds_rate),
            (self.per_defect, defects_rate),
            (boundary, 1.0 / seconds_per_execution),
        ]
        out: Counter[str] = Counter()
        tasks = 0.0
        for tally, weight in parts:
            out.update(tally.scaled(weight))
            tasks += weight * sum(tally.calls.values())
        out["retries"] = retry_rate * tasks
        out["transitions"] += out["retries"]
        return dict(out)

    def _classify_exit(self, target: str) -> str:
        reach = _reachable(self.states, target)
        if any(
            self.states[n].get("Type") == "Task" and "states:startExecution" in integration(self.states[n])
            for n in reach
        ):
            return "continue"
        if any(self.states[n].get("Type") == "Succeed" for n in reach):
            return "done"
        return "fail"

    def _leads_to_map(self, target: str) -> bool:
        reach = _reachable(self.states, target, avoid=self.loop.entry)
        return any(self.states[n].get("Type") == "Map" for n in reach & self.loop.members)

    def _decider(self, it: Iteration) -> Decide:
        def decide(name: str, state: State) -> str:
            rules = [r["Next"] for r in state.get("Choices", [])]
            default = state.get("Default")
            targets = rules + ([default] if default else [])
            if it.mode != "next":
                exits = [t for t in targets if self._exit_kind.get(t) == it.mode]
                if exits:
                    return exits[0]
            inside = [t for t in targets if t in self.loop.members]
            if not inside:
                raise AslError(f"Choice {name!r} leaves the loop on every branch")
            if it.defects > 0:
                to_map = [t for t in inside if t != default and self._leads_to_map(t)]
                if to_map:
                    return to_map[0]
            if default in inside:
                return default
            quiet = [t for t in inside if not self._leads_to_map(t)]
            return (quiet or inside)[0]

        return decide


def drop_detector_branches(
    definition: dict[str, Any], placeholders: dict[str, str], enabled: tuple[str, ...]
) -> dict[str, Any]:
    """A copy of the definition whose Parallel states keep only the enabled detectors' branches (as the
    stack does); a branch that names no detector placeholder is kept."""
    copy = json.loads(json.dumps(definition))
    wanted = {placeholders[name] for name in enabled}
    every = set(placeholders.values())
    for state in _all_states(copy["States"]):
        if state.get("Type") == "Parallel":
            kept = []
            for branch in state["Branches"]:
                text = json.dumps(branch)
                named = {p for p in every if "${" + p + "}" in text}
                if not named or named & wanted:
                    kept.append(branch)
            state["Branches"] = kept
    return copy


def _all_states(states: States) -> list[State]:
    out: list[State] = []
    for state in states.values():
        out.append(state)
        for branch in state.get("Branches", []):
            out += _all_states(branch["States"])
        body = state.get("ItemProcessor") or state.get("Iterator")
        if body:
            out += _all_states(body["States"])
    return out


def combine_detector_branches(
    definition: dict[str, Any], placeholders: dict[str, str], combined: str
) -> dict[str, Any]:
    """A copy of the definition in which each Parallel state's detector branches become one branch that
    invokes the function `${combined}` (all detectors in one function); other branches are kept."""
    copy = json.loads(json.dumps(definition))
    every = set(placeholders.values())
    for state in _all_states(copy["States"]):
        if state.get("Type") != "Parallel":
            continue
        kept, merged = [], False
        for branch in state["Branches"]:
            text = json.dumps(branch)
            named = [p for p in every if "${" + p + "}" in text]
            if not named:
                kept.append(branch)
            elif not merged:
                kept.append(json.loads(text.replace("${" + named[0] + "}", "${" + combined + "}")))
                merged = True
        state["Branches"] = kept
    return copy


# The converter's error for a live stream's second not published yet (lambdas/converter/live_source.py).
LIVE_EDGE_ERROR = "SecondNotPublishedYet"


def live_edge_wait(definition: dict[str, Any]) -> tuple[float, int]:
    """(poll interval in seconds, most polls per second) of the workflow's wait at a live stream's edge:
    the Retry on the converter's SecondNotPublishedYet."""
    for state in _all_states(definition["States"]):
        for retry in state.get("Retry", []):
            if LIVE_EDGE_ERROR in retry.get("ErrorEquals", []):
                return float(retry.get("IntervalSeconds", 1)), int(retry.get("MaxAttempts", 3))
    raise AslError(f"the definition has no Retry on {LIVE_EDGE_ERROR}: it cannot wait at a live edge")
