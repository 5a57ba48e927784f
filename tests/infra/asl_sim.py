"""A small Amazon States Language interpreter for tests: JSONPath flavour, the states this workflow uses.

It follows Step Functions' rules where the workflow depends on them (Parameters/ResultSelector/ResultPath,
`[*]` and `[a:b]` paths returning lists even when they match nothing — Jayway JsonPath, which AWS uses;
Retry with each Retrier's own MaxAttempts, Catch, Choice, Parallel, Map with ItemSelector, the intrinsics
used here) and counts history events as GetExecutionHistory lists them, so tests can walk the real
definition file with Python stand-ins for the Lambda functions and AWS services. `aws_sdk_blob` is what
an aws-sdk integration sends for a blob parameter (s3:putObject's Body).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

TaskFn = Callable[[str, dict[str, Any]], Any]  # (resource, parameters) -> result


class TaskError(Exception):
    """Raised by a task stand-in: `error` is the Step Functions error name."""

    def __init__(self, error: str, cause: str) -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


class ExecutionFailed(Exception):
    def __init__(self, error: str, cause: str) -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


@dataclass
class Execution:
    definition: dict[str, Any]
    task: TaskFn
    name: str = "exec-1"
    machine_arn: str = "arn:aws:states:us-east-1:123456789012:stateMachine:sim"
    start_time: str = "2026-11-26T12:00:00.000Z"
    entered: list[str] = field(default_factory=list)
    events: int = 0

    def run(self, payload: dict[str, Any]) -> Any:
        self.events += 2  # ExecutionStarted, ExecutionSucceeded/Failed
        context = {"Execution": {"Id": f"{self.machine_arn.replace('stateMachine', 'execution')}:{self.name}",
                                 "Name": self.name, "StartTime": self.start_time},
                   "StateMachine": {"Id": self.machine_arn},
                   "State": {"RetryCount": 0}}
        return self._run_states(self.definition, payload, context)

    def _run_states(self, machine: dict[str, Any], data: Any, context: dict[str, Any]) -> Any:
        name = machine["StartAt"]
        while True:
            state = machine["States"][name]
            self.entered.append(name)
            kind = state["Type"]
            self.events += 2  # StateEntered, StateExited
            if kind == "Succeed":
                return data
            if kind == "Fail":
                cause = state.get("Cause", "")
                if "CausePath" in state:
                    cause = evaluate(state["CausePath"], data, context)
                error = get(data, state["ErrorPath"], context) if "ErrorPath" in state else state.get("Error")
                raise ExecutionFailed(error or "States.Fail", cause)
            if kind == "Choice":
                name = next((rule["Next"] for rule in state["Choices"] if matches(rule, data, context)),
                            state.get("Default"))
                if name is None:
                    raise ExecutionFailed("States.NoChoiceMatched", json.dumps(data))
                continue
            effective = get(data, state["InputPath"], context) if "InputPath" in state else data
            try:
                result = self._execute(state, effective, context)
            except TaskError as error:
                catcher = next((c for c in state.get("Catch", [])
                                if error.error in c["ErrorEquals"] or "States.ALL" in c["ErrorEquals"]), None)
                if catcher is None:
                    raise ExecutionFailed(error.error, error.cause) from None
                data = put(data, catcher.get("ResultPath", "$"), {"Error": error.error, "Cause": error.cause})
                name = catcher["Next"]
                continue
            data = put(data, state.get("ResultPath", "$"), result)
            if state.get("End"):
                return data
            name = state["Next"]

    def _execute(self, state: dict[str, Any], data: Any, context: dict[str, Any]) -> Any:
        kind = state["Type"]
        if kind == "Pass":
            return resolve(state["Parameters"], data, context) if "Parameters" in state else data
        if kind == "Task":
            used = [0] * len(state.get("Retry", []))  # each Retrier counts its own attempts
            while True:
                attempt = {**context, "State": {"RetryCount": sum(used)}}
                self.events += 2  # Scheduled, Started
                try:
                    result = self.task(state["Resource"], resolve(state.get("Parameters", {}), data, attempt))
                except TaskError as error:
                    self.events += 1  # TaskFailed
                    index = next((i for i, r in enumerate(state.get("Retry", []))
                                  if {error.error, "States.ALL"} & set(r["ErrorEquals"])), None)
                    if index is None or used[index] >= state["Retry"][index].get("MaxAttempts", 3):
                        raise
                    used[index] += 1
                    continue
                self.events += 1  # TaskSucceeded
                if "ResultSelector" in state:
                    return resolve(state["ResultSelector"], result, context)
                return result
        if kind == "Parallel":
            self.events += 2
            try:
                return [self._run_states(branch, data, context) for branch in state["Branches"]]
            except ExecutionFailed as failed:  # a failed branch fails the Parallel state (its Catch applies)
                raise TaskError(failed.error, failed.cause) from None
        if kind == "Map":
            self.events += 2
            items = get(data, state.get("ItemsPath", "$"), context)
            out = []
            for index, item in enumerate(items):
                self.events += 2  # MapIterationStarted, MapIterationSucceeded
                item_context = {**context, "Map": {"Item": {"Index": index, "Value": item}}}
                selected = item
                if "ItemSelector" in state:
                    selected = resolve(state["ItemSelector"], data, item_context)
                out.append(self._run_states(state["ItemProcessor"], selected, item_context))
            return out
        raise NotImplementedError(kind)


# --- JSONPath ---------------------------------------------------------------------------------

_TOKEN = re.compile(r"\.([A-Za-z0-9_-]+)|\[(\d+|\*)\]|\[(\d*):(\d*)\]")


class PathNotFound(KeyError):
    pass


def _walk(value: Any, path: str) -> tuple[list[Any], bool]:
    rest = path[1:]
    matches, wildcard = [value], False
    for m in _TOKEN.finditer(rest):
        step_field, step_index = m.group(1), m.group(2)
        nxt = []
        for v in matches:
            if m.group(2) is None and m.group(1) is None:  # a slice [a:b]: indefinite, like a wildcard
                wildcard = True
                if isinstance(v, list):
                    start, end = (int(g) if g else None for g in (m.group(3), m.group(4)))
                    nxt.extend(v[start:end])
            elif step_field is not None:
                if isinstance(v, dict) and step_field in v:
                    nxt.append(v[step_field])
            elif step_index == "*":
                wildcard = True
                if isinstance(v, list):
                    nxt.extend(v)
            elif isinstance(v, list) and int(step_index) < len(v):
                nxt.append(v[int(step_index)])
        matches = nxt
    if "".join(m.group(0) for m in _TOKEN.finditer(rest)) != rest:
        raise ValueError(f"unsupported path {path}")
    return matches, wildcard


def get(data: Any, path: str, context: dict[str, Any]) -> Any:
    if path.startswith("$$"):
        data, path = context, path[1:]
    matches, wildcard = _walk(data, path)
    if wildcard:
        return matches
    if not matches:
        raise PathNotFound(path)
    return matches[0]


def present(data: Any, path: str, context: dict[str, Any]) -> bool:
    try:
        get(data, path, context)
        return True
    except PathNotFound:
        return False


def put(data: Any, path: str | None, value: Any) -> Any:
    if path is None:
        return data
    if path == "$":
        return value
    out = json.loads(json.dumps(data))
    keys = path[2:].split(".")
    target = out
    for key in keys[:-1]:
        target = target.setdefault(key, {})
    target[keys[-1]] = value
    return out


def matches(rule: dict[str, Any], data: Any, context: dict[str, Any]) -> bool:
    if "And" in rule:
        return all(matches(r, data, context) for r in rule["And"])
    if "Or" in rule:
        return any(matches(r, data, context) for r in rule["Or"])
    if "Not" in rule:
        return not matches(rule["Not"], data, context)
    variable = rule["Variable"]
    if "IsPresent" in rule:
        return present(data, variable, context) == rule["IsPresent"]
    value = get(data, variable, context)
    if "IsString" in rule:
        return isinstance(value, str) == rule["IsString"]
    if "StringEquals" in rule:
        return isinstance(value, str) and value == rule["StringEquals"]
    if "StringMatches" in rule:  # only the * wildcard
        pattern = ".*".join(map(re.escape, rule["StringMatches"].split("*")))
        return isinstance(value, str) and re.fullmatch(pattern, value) is not None
    if "BooleanEquals" in rule:
        return value is rule["BooleanEquals"]
    if "NumericLessThanEquals" in rule:
        return value <= rule["NumericLessThanEquals"]
    raise NotImplementedError(rule)


# --- Parameters and intrinsics ----------------------------------------------------------------


def resolve(template: Any, data: Any, context: dict[str, Any]) -> Any:
    if isinstance(template, dict):
        out = {}
        for key, value in template.items():
            if key.endswith(".$"):
                out[key[:-2]] = evaluate(value, data, context)
            else:
                out[key] = resolve(value, data, context)
        return out
    if isinstance(template, list):
        return [resolve(v, data, context) for v in template]
    return template


def evaluate(expression: str, data: Any, context: dict[str, Any]) -> Any:
    if expression.startswith("States."):
        value, rest = _call(expression, data, context)
        assert not rest.strip(), expression
        return value
    return get(data, expression, context)


def _call(text: str, data: Any, context: dict[str, Any]) -> tuple[Any, str]:
    name, rest = text.split("(", 1)
    args: list[Any] = []
    rest = rest.lstrip()
    while not rest.startswith(")"):
        if rest.startswith("'"):
            m = re.match(r"'((?:\\.|[^'\\])*)'", rest)
            args.append(re.sub(r"\\(.)", r"\1", m.group(1)))
            rest = rest[m.end():]
        elif rest.startswith("States."):
            value, rest = _call(rest, data, context)
            args.append(value)
        elif rest.startswith("$"):
            m = re.match(r"\$\$?[A-Za-z0-9_.\[\]*-]*", rest)
            args.append(get(data, m.group(0), context))
            rest = rest[m.end():]
        else:
            m = re.match(r"-?\d+(\.\d+)?", rest)
            args.append(json.loads(m.group(0)))
            rest = rest[m.end():]
        rest = rest.lstrip()
        if rest.startswith(","):
            rest = rest[1:].lstrip()
    return _INTRINSICS[name](*args), rest[1:]


def _format(template: str, *args: Any) -> str:
    parts = template.split("{}")
    assert len(parts) == len(args) + 1, template
    out = parts[0]
    for arg, part in zip(args, parts[1:], strict=True):
        out += (arg if isinstance(arg, str) else json.dumps(arg)) + part
    return out


def aws_sdk_blob(value: Any) -> bytes:
    """The bytes an aws-sdk integration sends for a blob parameter: JSON text for any JSON value — a
    string too, which arrives quoted (LocalStack since localstack#12035, its tests recorded on AWS)."""
    return json.dumps(value, separators=(",", ":")).encode()


def _hash(value: str, algorithm: str) -> str:
    names = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}
    return hashlib.new(names[algorithm], value.encode()).hexdigest()


_INTRINSICS: dict[str, Callable[..., Any]] = {
    "States.Hash": _hash,
    "States.Format": _format,
    "States.MathAdd": lambda a, b: a + b,
    "States.JsonToString": lambda v: json.dumps(v, separators=(",", ":")),
    "States.StringToJson": json.loads,
}
