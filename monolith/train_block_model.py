"""`python -m monolith train` (`make train`): the block-damage model learned from the damage corpus's
tuning sources only (issue 22), written to lambdas/detectors/block_model.json with what it was trained on.

Every damaged stream of a tuning source and its clean twin are decoded as the monolith decodes them, and
each picture's features (`block_corruption.picture_features`) are labelled from the corpus's own labels:
- new damage (1): the pictures of a labelled event of 3 pictures or more, from its first damaged picture
  to `ONSET_S` after it: where an event must open to be found in time;
- no damage (0): every picture of the clean twins, and the pictures of damaged streams that lie neither
  in an event nor where damage could show (`corpus_evaluate.damage_windows`);
- left out: the rest of each event (the damage carried on, not new), optional events, damage under the
  labelling rule, keyframes (the detector never asks the model about one).

A logistic regression (L2-penalised, fitted by Newton's method: deterministic, no random start; both
classes weighted to equal total weight) on standardised features. Its threshold is set without looking
at any held-out source: leave-one-source-out over the tuning sources (each source's pictures scored by
the model fitted on the other sources), the threshold is `MARGIN_LOGIT` above the highest out-of-fold
log-odds of any "no damage" picture: none of them would have fired, with room to spare. The JSON records
the sources, codecs, picture and event counts, the corpus seed, the date, the command, and the
out-of-fold event recall per source.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av.error
import numpy as np

from lambdas.converter.decode import UnreadableStreamError, iter_seconds
from lambdas.detectors import block_corruption
from lambdas.detectors.block_model import FEATURES, MODEL_PATH, LogisticModel
from monolith.corpus_evaluate import START_TOLERANCE_S, damage_windows
from sample_streams.corpus import REPO, build_corpus, corpus_dir
from sample_streams.corpus_sources import SOURCES, CorpusSource

ONSET_S = 0.2  # new damage: the first pictures of an event, as far as an onset may be late
L2 = 0.01  # penalty on the squared weights (standardised features); the pictures weigh 1 in all
MARGIN_LOGIT = 1.0  # the threshold's distance above the highest out-of-fold "no damage" log-odds
NEWTON_STEPS = 50
# A model that reads every feature and never fires: the state advances as the detector's does when every
# feature is measured, without the learned decision (the features do not depend on it; training never
# reads the model it is replacing). With it the detector decides by its rules alone.
NEVER = LogisticModel(FEATURES, np.zeros(len(FEATURES)), np.ones(len(FEATURES)), np.ones(len(FEATURES)),
                      -500.0, 1.0)


def stream_features(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times, keyframe flags, features) of every picture of a stream, as the monolith's detector sees it."""
    times: list[float] = []
    keys: list[bool] = []
    rows: list[np.ndarray] = []
    state: dict[str, Any] | None = None
    for second in iter_seconds(path):
        rows.append(block_corruption.picture_features(second, state))
        times += [frame.pts_s for frame in second.frames]
        keys += [frame.key_frame for frame in second.frames]
        _, state = block_corruption.detect(second, state, model=NEVER)
    features = np.concatenate(rows) if rows else np.zeros((0, len(FEATURES)))
    return np.asarray(times), np.asarray(keys, dtype=bool), features


def picture_labels(
    times: np.ndarray, keys: np.ndarray, events: list[dict[str, Any]], windows: list[tuple[float, float]]
) -> np.ndarray:
    """Per picture 1 (new damage), 0 (none) or -1 (left out): see the module's doc."""
    labels = np.zeros(len(times), dtype=np.int8)
    for start, end in windows:
        labels[(times >= start - 1e-6) & (times < end - 1e-6)] = -1
    for event in events:
        inside = (times >= event["start_s"] - 1e-6) & (times < event["end_s"] - 1e-6)
        labels[inside] = -1
        if not event["optional"]:
            labels[inside & (times <= event["start_s"] + ONSET_S + 1e-6)] = 1
    labels[keys] = -1
    return labels


def gather(
    seed: int,
    corpus: Path | None = None,
    *,
    sources: tuple[CorpusSource, ...] = SOURCES,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """The tuning sources' pictures: features, labels, and for each picture its stream and time."""
    where = corpus or corpus_dir(seed)
    manifest = build_corpus(where, seed, sources=sources, log=log)
    gop_s = manifest["rule"]["gop_frames"] / manifest["rule"]["fps"]
    streams = [s for s in manifest["streams"] if not s["held_out"]]
    parts: dict[str, list[Any]] = {"features": [], "labels": [], "stream": [], "times": []}
    names: list[str] = []
    sources: list[str] = []  # of each name
    for number, stream in enumerate(streams, 1):
        log(f"[{number}/{len(streams)}] {stream['name']}")
        for which in ("damaged", "clean"):
            times, keys, features = stream_features(where / stream[which])
            damaged = which == "damaged"
            events = stream["events"] if damaged else []
            windows = damage_windows(stream["damage_sites"], gop_s) if damaged else []
            parts["features"].append(features)
            parts["labels"].append(picture_labels(times, keys, events, windows))
            parts["stream"].append(np.full(len(times), len(names)))
            parts["times"].append(times)
            names.append(f"{stream['name']}.{which}")
            sources.append(stream["source"])
    # The tuning sources' own files, as published (their frame rates, timestamps and sizes): no damage.
    for source in manifest["sources"]:
        if source["held_out"] or source["path"] is None:
            continue
        log(f"[clip] {source['path']}")
        times, keys, features = stream_features(REPO / source["path"])
        parts["features"].append(features)
        parts["labels"].append(np.where(keys, -1, 0).astype(np.int8))
        parts["stream"].append(np.full(len(times), len(names)))
        parts["times"].append(times)
        names.append(f"{source['path']}")
        sources.append(source["name"])
    return {
        "manifest": manifest, "streams": streams, "names": names, "sources": sources,
        **{key: np.concatenate(value) for key, value in parts.items()},
    }


def fit(
    features: np.ndarray, labels: np.ndarray, chosen: tuple[str, ...] = FEATURES, l2: float | None = None
) -> LogisticModel:
    """Logistic regression over the `chosen` features (the others weigh 0) on the pictures labelled 0 or 1,
    both classes weighted to equal total weight; threshold 0.5 (`choose_threshold` sets the real one)."""
    used = labels >= 0
    mask = np.asarray([name in chosen for name in FEATURES])
    x, y = np.where(mask, features[used], 0.0), labels[used].astype(np.float64)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0  # a feature constant over the training set gets weight 0 below anyway
    z = np.column_stack([(x - mean) / scale, np.ones(len(x))])
    positives = max(1.0, y.sum())
    negatives = max(1.0, len(y) - y.sum())
    weight = np.where(y > 0, 0.5 / positives, 0.5 / negatives)
    penalty = np.full(z.shape[1], L2 if l2 is None else l2)
    penalty[-1] = 0.0  # the bias is not penalised
    beta = np.zeros(z.shape[1])
    for _ in range(NEWTON_STEPS):
        p = 1.0 / (1.0 + np.exp(-(z @ beta)))
        gradient = z.T @ (weight * (p - y)) + penalty * beta
        hessian = (z * (weight * p * (1 - p))[:, None]).T @ z + np.diag(penalty + 1e-12)
        delta = np.linalg.solve(hessian, gradient)
        beta -= delta
        if np.max(np.abs(delta)) < 1e-10:
            break
    constant = x.std(axis=0) < 1e-9
    beta[:-1][constant] = 0.0
    return LogisticModel(FEATURES, mean, scale, beta[:-1], float(beta[-1]), 0.5)


def out_of_fold_logits(data: dict[str, Any], chosen: tuple[str, ...] = FEATURES) -> np.ndarray:
    """Each tuning source's pictures scored by the model fitted on the other tuning sources."""
    sources = np.asarray(data["sources"])[data["stream"]]
    logits = np.zeros(len(data["labels"]))
    for source in sorted(set(sources)):
        held = sources == source
        labels = np.where(held, -1, data["labels"])
        logits[held] = fit(data["features"], labels, chosen).logits(data["features"][held])
    return logits


def out_of_fold_found(data: dict[str, Any], chosen: tuple[str, ...]) -> tuple[int, np.ndarray]:
    """Events found out of fold with the threshold `choose_threshold` sets on the out-of-fold scores."""
    logits = out_of_fold_logits(data, chosen)
    fired = (logits >= _logit(choose_threshold(logits, data["labels"]))) & (data["labels"] >= 0)
    return sum(counts["found"] for counts in event_recall(data, fired).values()), logits


def select_features(
    data: dict[str, Any], *, log: Callable[[str], None] = lambda _: None
) -> tuple[tuple[str, ...], np.ndarray, list[dict[str, Any]]]:
    """Greedy forward selection: add the feature that finds the most events out of fold (at the threshold
    that lets no out-of-fold "no damage" picture fire), while that number grows; ties go to the feature
    listed first. Returns the chosen features, their out-of-fold log-odds and the steps taken."""
    chosen: tuple[str, ...] = ()
    best, best_logits = -1, np.zeros(len(data["labels"]))
    steps = []
    while len(chosen) < len(FEATURES):
        trials = [(name, *out_of_fold_found(data, (*chosen, name)))
                  for name in FEATURES if name not in chosen]
        name, found, logits = max(trials, key=lambda trial: trial[1])  # max keeps the first of equals
        steps.append({"tried": {trial[0]: trial[1] for trial in trials},
                      "added": name if found > best else None})
        log(f"features {', '.join(chosen) or '-'} + {name}: {found} events out of fold")
        if found <= best:
            break
        chosen, best, best_logits = (*chosen, name), found, logits
    return chosen, best_logits, steps


def _logit(probability: float) -> float:
    return float(np.log(probability / (1.0 - probability))) if probability < 1.0 else float("inf")


def choose_threshold(logits: np.ndarray, labels: np.ndarray) -> float:
    """The probability `MARGIN_LOGIT` above the highest log-odds of a "no damage" picture."""
    highest = float(logits[labels == 0].max())
    return float(1.0 / (1.0 + np.exp(-(highest + MARGIN_LOGIT))))


def event_recall(data: dict[str, Any], fired: np.ndarray) -> dict[str, dict[str, int]]:
    """Per tuning source: required events, and how many a fired picture overlaps (from START_TOLERANCE_S
    before the event to its end): what the model alone would find, without the decoder's own evidence."""
    out: dict[str, dict[str, int]] = {}
    for index, name in enumerate(data["names"]):
        if not name.endswith(".damaged"):
            continue
        stream = data["streams"][index // 2]
        at = data["stream"] == index
        times = data["times"][at][fired[at]]
        counts = out.setdefault(stream["source"], {"events": 0, "found": 0})
        for event in (e for e in stream["events"] if not e["optional"]):
            counts["events"] += 1
            counts["found"] += bool(np.any((times >= event["start_s"] - START_TOLERANCE_S - 1e-6)
                                           & (times < event["end_s"] - 1e-6)))
    return out


def train(
    seed: int = 0,
    corpus: Path | None = None,
    *,
    sources: tuple[CorpusSource, ...] = SOURCES,
    log: Callable[[str], None] = lambda _: None,
    command: str = "make train",
) -> dict[str, Any]:
    """Gather the tuning pictures, choose the features, fit, set the threshold out of fold, and describe
    it all (the document `main` writes)."""
    data = gather(seed, corpus, sources=sources, log=log)
    labels = data["labels"]
    chosen, oof, steps = select_features(data, log=log)
    model = fit(data["features"], labels, chosen)
    threshold = choose_threshold(oof, labels)
    model = LogisticModel(model.features, model.mean, model.scale, model.weights, model.bias, threshold)
    fired_oof = (1.0 / (1.0 + np.exp(-oof)) >= threshold) & (labels >= 0)
    fired_all = (model.scores(data["features"]) >= threshold) & (labels >= 0)
    streams = data["streams"]
    return {
        "model": model.to_dict(),
        "trained_on": {
            "command": command,
            "date": datetime.date.today().isoformat(),
            "corpus_seed": seed,
            "corpus_builder_version": data["manifest"]["builder_version"],
            "labelling_rule": data["manifest"]["rule"],
            "sources": sorted({s["source"] for s in streams}),
            "kinds": sorted({s["kind"] for s in streams}),
            "codecs": sorted({s["codec"] for s in streams}),
            "damaged_streams": len(streams),
            "clean_streams": len(streams),
            "original_clips": sorted(s["path"] for s in data["manifest"]["sources"]
                                     if not s["held_out"] and s["path"] is not None),
            "required_events": sum(not e["optional"] for s in streams for e in s["events"]),
            "pictures": {"new_damage": int((labels == 1).sum()), "no_damage": int((labels == 0).sum()),
                         "left_out": int((labels < 0).sum())},
            "held_out_sources_never_read": sorted(
                s["name"] for s in data["manifest"]["sources"] if s["held_out"]),
        },
        "selection": {"chosen": list(chosen), "steps": steps},
        "fit": {"l2": L2, "newton_steps": NEWTON_STEPS, "onset_s": ONSET_S, "margin_logit": MARGIN_LOGIT,
                "highest_no_damage_logit_out_of_fold": round(float(oof[labels == 0].max()), 4)},
        "tuning_sources_model_alone": {
            "out_of_fold": event_recall(data, fired_oof),
            "fitted": event_recall(data, fired_all),
            "no_damage_pictures_fired_fitted": int(((labels == 0) & fired_all).sum()),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monolith train",
                                     description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="the corpus's seed (where damage falls)")
    parser.add_argument("--corpus", type=Path, metavar="DIR",
                        help="the corpus folder (default: as make corpus)")
    parser.add_argument("--out", type=Path, default=MODEL_PATH,
                        help="where the model goes (default: lambdas/detectors/block_model.json)")
    args = parser.parse_args(argv)
    log: Callable[[str], None] = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    try:
        result = train(args.seed, args.corpus, log=log)
    except (OSError, ValueError, av.error.FFmpegError, UnreadableStreamError) as error:
        print(f"error: the model could not be trained: {error}", file=sys.stderr)
        return 1
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({"tuning_sources_model_alone": result["tuning_sources_model_alone"],
                      "threshold": result["model"]["threshold"]}, indent=1))
    print(f"wrote {args.out}")
    return 0
