"""A/V sync: audio and video drift apart by more than a perceptible offset.

Two kinds of evidence, both cheap and numpy-only:
- Events: sharp visual onsets are paired with sharp audio onsets. A visual onset is a flash (the mean luma
  jumps), a cut (the picture changes at once) or a local change: a flash of part of the picture, a sudden
  appearance, seen as blocks of the thumbnail jumping the same way beyond the recent activity of their
  neighbourhood, so that a moving background or object raises none. An audio onset is any sharp rise of
  the 1 ms energy envelope (a tone burst of any pitch, a clap, a plosive). Every loud audio onset within
  the window of a visual onset is a candidate lag; the offset is the lag that recurs across visual onsets
  (no period assumed): the median of the agreeing lags, once enough of the recent visual onsets agree
  (`_consensus`). Pairs are one to one. The lag is > 0 when audio lags video. Video onsets are placed at
  the frame's pts (a flash starts on a frame boundary), audio onsets to the millisecond.
- Timestamps: the audio clock (each decoded chunk's start against the end of the previous one) jumps or
  drifts while the video clock does not: a packaging fault, measured exactly. How the audio starts
  (later than the video, after a lone first packet, with encoder priming or an edit list) is authored:
  the clock is anchored once the audio runs, so only a jump inside the stream counts.

A new offset needs two closely agreeing visual onsets if it changes one measured before, three from
nothing (one more if they agree only loosely), and most of the visual onsets since its first: a single
mismatch (a cut that happens to fall near a beep) or a chance agreement between unrelated sounds and
pictures changes nothing. A timestamp step is accepted when events confirm it, or on its own when there
are no events to judge by. With nothing to measure (no audio, no events, silence, a frozen picture hiding
the flashes) the status is "unknown" and nothing is reported: no false alarms.
Audio gaps (lost packets, `filled_samples`) are neither onsets nor clock jumps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from lambdas.detectors import av_sync_relative
from lambdas.detectors.pictures import block_means, pack_array, pack_levels, unpack_array, unpack_levels
from lambdas.shared.media import AudioSecond, StreamSecond, make_defect

GRID = (18, 32)  # rows, columns of the block-mean thumbnail compared between frames


@dataclass(frozen=True)
class AvSyncConfig:
    # ITU-R BT.1359 / J.248: detectable at about +45/-125 ms; 80 ms keeps clean streams (measured within
    # ±1 ms) far from the threshold and reports every offset of 100 ms or more.
    threshold_ms: float = 80.0
    # Pairing window (± s): every loud audio onset this close to a visual onset is a candidate lag; the
    # lag that recurs across visual onsets is the offset, so events need no period.
    window_s: float = 0.5
    loud_db: float = 10.0  # candidates: onsets at most this much quieter than the loudest in the window
    max_candidates: int = 3  # nearest first
    # Visual onsets that must back a new offset: two when it changes an offset measured before, three when
    # there was none (unrelated sounds and pictures agree by chance too often to set one from nothing), and
    # one more when their lags spread over more than `close_ms` (designed events start on a frame, their
    # sounds with them, and agree within a few ms; chance agreements spread over the whole `agree_ms`).
    min_measurements: int = 2
    close_ms: float = 15.0
    # ... with this much weight: a strong visual onset with one candidate weighs 1, one with several
    # candidates `ambiguous_weight`, so an ambiguous offset needs three visual onsets
    min_weight: float = 1.6
    ambiguous_weight: float = 0.67
    # ... and at least this share of the visual onsets (with candidates) since the first that backs it,
    # those that measured the current offset included: chance agreements between unrelated onsets (real
    # content), or a sound that happens to follow an object's exit, are a minority among them.
    support_ratio: float = 0.65
    pool_size: int = 10  # recent visual onsets (with their candidates) the new offset is sought among,
    pool_s: float = 12.0  # within this many seconds of the newest
    agree_ms: float = 20.0  # lags this close measure the same offset (half a frame at 25 fps)
    stale_s: float = 3.0  # no measurement for this long: the status is unknown
    # Audio onsets on a 1 ms energy envelope.
    hop_s: float = 0.001
    background_s: float = 0.06  # level before the onset
    lookahead_s: float = 0.012  # level after it
    rise_db: float = 12.0
    min_level_db: float = -40.0  # onsets quieter than this (dBFS RMS) are noise
    audio_refractory_s: float = 0.15
    # ... unless a new onset is this much louder and this much later: a burst right after a quiet onset
    # (background resuming after a moment of silence) is the event, not the tail of that onset.
    louder_db: float = 10.0
    louder_after_s: float = 0.02
    # Visual onsets.
    flash_rise: float = 25.0  # mean luma rise (levels) from one frame to the next
    cut_change: float = 35.0  # mean |difference| of block means (levels) from one frame to the next
    visual_refractory_s: float = 0.25  # the end of a flash or a cut is not a new onset
    # Local onsets (a flash of part of the picture, a sudden appearance): blocks of the thumbnail whose
    # mean jumps, all the same way, by more than `local_k` times the recent activity around them (the
    # largest recent change of the block and its 8 neighbours, decaying by `local_decay` per frame) plus
    # `local_margin` levels. A moving background or object keeps its blocks and their neighbours active,
    # so it raises no onset; `local_blocks` such blocks make a local onset of strength 1.
    local_k: float = 2.0
    local_margin: float = 12.0
    local_decay: float = 0.8
    local_blocks: int = 6
    # Timestamps.
    jump_ms: float = 5.0  # audio clock discontinuity that counts as a step
    # The audio's start is authored, not a desync: a lone first packet then the track proper 155 ms later
    # (silence not coded), encoder priming, edit lists. Discontinuities before this much audio has been
    # decoded re-anchor the audio clock instead of counting as a step.
    settle_s: float = 0.5
    mirror_s: float = 1.0  # a video step this close with the same size mirrors an audio step
    ts_wait_s: float = 3.0  # how long events get to confirm or refute a timestamp step
    # Periodic audio markers (a test signal's tick) where no picture pairs with them: the tick's rhythm
    # on the stream clock is the reference, so a shifted audio track shows as one stretched or shortened
    # interval between otherwise regular ticks.
    marker_regular: int = 4  # regular intervals needed before a break in the rhythm counts
    marker_jitter_ms: float = 3.0  # intervals this close to the period are regular
    marker_confirm: int = 2  # regular intervals after the break that confirm it
    marker_confidence: float = 0.7


DEFAULT = AvSyncConfig()


def detect(
    second: StreamSecond, state: dict[str, Any] | None, config: AvSyncConfig = DEFAULT
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    state = _copy_state(state)
    defects: list[dict[str, Any]] = []
    thumbs = _visual_onsets(second, state, config)
    audio_done_s = -math.inf
    if second.audio is not None:
        known = len(state["onsets"])
        audio_done_s = _audio_onsets(second.index, second.audio, state, config)
        _audio_clock(second.index, second.audio, state, config)
        defects += _marker_rhythm(state, [o[0] for o in state["onsets"][known:]], config)
    if second.is_last:
        audio_done_s = math.inf
    for t, heard_s, weight in _pair(state, audio_done_s, config):
        defects += _observe(state, t, heard_s, weight, config)
    now = float(second.index + 1) if not second.is_last else math.inf
    defects += _judge_steps(state, now, config)
    if second.is_last:
        end_s = state["v"]["last_s"] + state["v"]["frame_s"] if state["v"]["last_s"] is not None else 0.0
        defects += _close(state, max(end_s, float(second.index)), config)
        defects += _close_markers(state, max(end_s, float(second.index)), config)
    _status(state, float(second.index + 1), config)
    # Real content without designed events: a change of lag between sound and motion, where the methods
    # above are blind (their status is unknown) and report nothing overlapping.
    relative, state["rel"] = av_sync_relative.detect(
        second, state.get("rel"), others=(state["status"], defects), thumbs=thumbs
    )
    defects += relative
    return defects, state


# --- visual onsets ---------------------------------------------------------------------------


def thumbnail(luma: np.ndarray) -> np.ndarray:
    return block_means(luma, GRID)


def _visual_onsets(second: StreamSecond, state: dict[str, Any], config: AvSyncConfig) -> list[np.ndarray]:
    """Find the second's visual onsets; return each frame's thumbnail (the relative method reads them)."""
    thumbs = []
    v = state["v"]
    prev = unpack_array(v["thumb"])
    activity = unpack_levels(v["act"])
    for frame in second.frames:
        if v["last_s"] is not None and frame.pts_s > v["last_s"]:
            _video_clock(state, frame.pts_s - v["last_s"], v["last_s"], config)
        thumb = thumbnail(frame.luma)
        thumbs.append(thumb)
        if prev is None or prev.shape != thumb.shape:
            activity = None
        else:
            diff = thumb.astype(np.float32) - prev.astype(np.float32)
            if not frame.corrupt and frame.decode_errors == 0:
                rise = float(diff.mean())
                change = float(np.abs(diff).mean())
                local = local_strength(diff, activity, config)
                strength = max(rise / config.flash_rise, change / config.cut_change, local)
                recent = v["onset_s"] is not None and frame.pts_s - v["onset_s"] < config.visual_refractory_s
                if strength >= 1.0 and not recent:
                    state["pending"].append([round(frame.pts_s, 6), round(strength, 3)])
                if strength >= 1.0:
                    v["onset_s"] = round(frame.pts_s, 6)
                if max(rise / config.flash_rise, change / config.cut_change) >= 1.0:
                    v["global_s"] = round(frame.pts_s, 6)  # a flash or a cut of the whole picture
            # Damaged frames still count as activity: their blocks' next change is no onset either.
            activity = _decayed_activity(diff, activity, config)
        prev = thumb
        v["last_s"] = round(frame.pts_s, 6)
    v["thumb"] = pack_array(prev)
    v["act"] = pack_levels(activity)  # whole levels: the state must stay small
    return thumbs


def local_strength(diff: np.ndarray, activity: np.ndarray | None, config: AvSyncConfig = DEFAULT) -> float:
    """How strongly a part of the picture changed at once: blocks that jumped the same way beyond their
    neighbourhood's recent activity, in units of `local_blocks` (0 before any activity is known)."""
    if activity is None or activity.shape != diff.shape:
        return 0.0
    limit = config.local_k * _neighbourhood_max(activity) + config.local_margin
    brighter = int(np.count_nonzero(diff > limit))
    darker = int(np.count_nonzero(diff < -limit))
    return max(brighter, darker) / config.local_blocks


def _decayed_activity(diff: np.ndarray, activity: np.ndarray | None, config: AvSyncConfig) -> np.ndarray:
    change = np.abs(diff)
    if activity is None or activity.shape != diff.shape:
        return change
    return np.maximum(change, activity * config.local_decay)


def _neighbourhood_max(values: np.ndarray) -> np.ndarray:
    """Each block's maximum over itself and its neighbours (3x3, fewer at the edges): separable, so four
    shifted maxima instead of nine."""
    if values.ndim != 2:
        return values
    out = values.copy()
    np.maximum(out[1:], values[:-1], out=out[1:])
    np.maximum(out[:-1], values[1:], out=out[:-1])
    columns = out.copy()
    np.maximum(out[:, 1:], columns[:, :-1], out=out[:, 1:])
    np.maximum(out[:, :-1], columns[:, 1:], out=out[:, :-1])
    return out


def _video_clock(state: dict[str, Any], interval: float, at_s: float, config: AvSyncConfig) -> None:
    """Record pts discontinuities of the video (they can mirror an audio step: no desync then)."""
    v = state["v"]
    frame_s = v["frame_s"]
    if v["intervals"] < 3:  # learn the frame duration from the first intervals
        v["frame_s"] = round(interval if v["intervals"] == 0 else min(frame_s, interval), 6)
        v["intervals"] += 1
        return
    step = interval - frame_s
    if abs(step) > max(config.jump_ms / 1000.0, 0.5 * frame_s):
        state["ts"]["v_steps"].append([round(at_s, 6), round(step, 6)])
    horizon = at_s - config.mirror_s - config.ts_wait_s
    state["ts"]["v_steps"] = [s for s in state["ts"]["v_steps"] if s[0] >= horizon][-8:]


# --- audio onsets ----------------------------------------------------------------------------


def _audio_onsets(index: int, audio: AudioSecond, state: dict[str, Any], config: AvSyncConfig) -> float:
    """Find energy onsets; return the time up to which this second's audio onsets are final."""
    a = state["a"]
    rate = audio.sample_rate
    hop = max(1, round(config.hop_s * rate))
    n_hops = len(audio.samples) // hop
    frames = audio.samples[: n_hops * hop].astype(np.float32).reshape(n_hops, hop)
    power = (frames * frames).mean(axis=1)
    covered = _coverage(index, audio, n_hops * hop).reshape(n_hops, hop).all(axis=1)
    # The tail of the previous second gives the background (and the lookahead it lacked).
    back = round(config.background_s / config.hop_s)
    ahead = round(config.lookahead_s / config.hop_s)
    tail_p = np.array(a["tail_p"], dtype=np.float64) if a["tail_idx"] == index - 1 else np.zeros(0)
    tail_c = np.array(a["tail_c"], dtype=bool) if a["tail_idx"] == index - 1 else np.zeros(0, bool)
    p = np.concatenate([tail_p, power.astype(np.float64)])
    c = np.concatenate([tail_c, covered])
    t0 = index - len(tail_p) * hop / rate  # time of hop 0 of the joined envelope
    step_s = hop / rate
    # Evaluate the hops whose lookahead is complete and that the previous call did not evaluate.
    first = max(back + 2, len(tail_p) - ahead)
    last = len(p) - ahead
    if first < last:
        csum_p = np.concatenate([[0.0], np.cumsum(np.where(c, p, 0.0))])
        csum_c = np.concatenate([[0], np.cumsum(c)])
        idx = np.arange(first, last)
        lo, hi = idx - back, idx - 2  # background window, two hops clear of the onset
        n_bg = csum_c[hi] - csum_c[lo]
        bg = (csum_p[hi] - csum_p[lo]) / np.maximum(n_bg, 1)
        fw_p = csum_p[idx + ahead] - csum_p[idx]
        fw_c = csum_c[idx + ahead] - csum_c[idx]
        level = fw_p / ahead
        level_db = 10 * np.log10(level + 1e-12)
        rise_db = level_db - 10 * np.log10(bg + 1e-12)
        ok = (rise_db >= config.rise_db) & (level_db >= config.min_level_db)
        ok &= (n_bg >= (hi - lo) // 2) & (fw_c == ahead) & c[idx - 1]  # no onset out of a gap
        for k in idx[ok]:
            start = _refine(p, int(k), ahead)
            t = t0 + start * step_s
            # Loudness: the loudest hop of the lookahead (the level where the rise first crossed the threshold
            # says more about the background than about the sound).
            strength = float(10 * np.log10(p[k : k + ahead].max() + 1e-12))
            if a["onset_s"] is not None and t - a["onset_s"] < config.audio_refractory_s:
                louder = a["onset_db"] is not None and strength >= a["onset_db"] + config.louder_db
                if not louder or t - a["onset_s"] < config.louder_after_s:
                    continue
            a["onset_s"], a["onset_db"] = round(t, 6), round(strength, 2)
            state["onsets"].append([round(t, 6), round(strength, 2)])
    keep = back + ahead + 2
    a["tail_p"] = [float(f"{x:.4g}") for x in p[-keep:]]  # 4 digits: the background needs no more
    a["tail_c"] = [bool(x) for x in c[-keep:]]
    a["tail_idx"] = index
    return t0 + last * step_s


def _refine(p: np.ndarray, k: int, ahead: int) -> float:
    """Onset position (in hops, fractional) near hop k: where the level first reaches a quarter of its peak.

    The hop holding the onset is only partly filled; its share of the peak energy says how much.
    """
    seg = np.sqrt(p[max(k - 3, 0) : k + ahead])
    peak = float(seg.max())
    base = max(k - 3, 0)
    j = int(np.argmax(seg >= 0.25 * peak))
    fill = float(min(1.0, (seg[j] / peak) ** 2)) if peak > 0 else 1.0
    return base + j + (1.0 - fill)


def _coverage(index: int, audio: AudioSecond, n: int) -> np.ndarray:
    """Which samples hold decoded audio (the rest was filled with silence)."""
    if audio.filled_samples == 0:
        return np.ones(n, dtype=bool)
    covered = np.zeros(n, dtype=bool)
    rate = audio.sample_rate
    for start_s, count in audio.chunks:
        first = round((start_s - index) * rate)
        covered[max(first, 0) : max(min(first + count, n), 0)] = True
    return covered


# --- audio clock -----------------------------------------------------------------------------


def _audio_clock(index: int, audio: AudioSecond, state: dict[str, Any], config: AvSyncConfig) -> None:
    """Track how far the audio timestamps have moved from the audio's own sample count.

    offset = chunk start - (first chunk start + all earlier chunks' durations + gaps explained by lost
    packets); it only changes when the timestamps jump or drift, and a step of it is a candidate desync.
    """
    ts = state["ts"]
    rate = audio.sample_rate
    ts["errors"] = ts["errors_prev"] + audio.decode_errors
    seen = {round(s, 6) for s in ts["straddle"]}
    straddle: list[float] = []
    for start_s, count in audio.chunks:
        dur = count / rate
        if start_s + dur > index + 1 + 1e-9:
            straddle.append(start_s)
        if round(start_s, 6) in seen:
            continue
        if ts["end"] is None:
            ts["origin"], ts["end"], ts["chunk_s"], ts["count_s"] = start_s, start_s + dur, dur, dur
            ts["offset"] = ts["ref"] = 0.0
            continue
        gap = start_s - ts["end"]
        lost = round(gap / ts["chunk_s"]) if ts["chunk_s"] else 0
        if (
            gap > config.jump_ms / 1000.0
            and 1 <= lost <= ts["errors"]
            and abs(gap - lost * ts["chunk_s"]) < 1e-3
        ):
            ts["explained"] += gap  # packets the decoder rejected: a gap, not a jump
            ts["errors"] -= lost
        ts["offset"] = start_s - ts["origin"] - ts["count_s"] - ts["explained"]
        if ts["count_s"] < config.settle_s and ts["offset"] != ts["ref"]:
            ts["origin"] += ts["offset"] - ts["ref"]  # the audio starts here
            ts["offset"] = ts["ref"]
        ts["count_s"] += dur
        at_s = ts["end"]
        ts["end"] = max(ts["end"], start_s + dur)
        if abs(ts["offset"] - ts["ref"]) * 1000 > config.jump_ms:
            step = _open_step(ts, at_s)
            step["size"] = round(ts["offset"] - ts["ref"], 6)
    ts["straddle"] = [round(s, 6) for s in straddle]
    ts["errors_prev"] = audio.decode_errors
    ts["offset"] = round(ts["offset"], 6) if ts["offset"] is not None else None


def _open_step(ts: dict[str, Any], at_s: float) -> dict[str, Any]:
    """The open (unjudged) audio step, or a new one starting at `at_s`."""
    for step in ts["steps"]:
        if not step["judged"]:
            return step
    step = {"t": round(at_s, 6), "size": 0.0, "judged": False, "claimed": False}
    ts["steps"].append(step)
    return step


# --- periodic audio markers ------------------------------------------------------------------


def _marker_rhythm(
    state: dict[str, Any], new_onsets: list[float], config: AvSyncConfig
) -> list[dict[str, Any]]:
    """Follow the rhythm of strictly periodic audio onsets; a confirmed break is a change of A/V offset.

    Only strictly regular ticks qualify (jitter of a few ms over several periods): a test signal, not
    music. A break counts when the rhythm then resumes with the same period and the odd interval is not
    two periods (a lost tick); it is left to the other methods where pictures or timestamps already
    measure the stream.
    """
    m = state["m"]
    defects: list[dict[str, Any]] = []
    jitter = config.marker_jitter_ms / 1000.0
    for t in new_onsets:
        times = m["times"]
        interval = t - times[-1] if times else None
        times.append(round(t, 6))
        del times[: -(config.marker_regular + 2)]
        period = m["period"]
        if interval is None:
            continue
        if period is not None and abs(interval - period) <= jitter:
            pending = m["pending"]
            if pending is not None:
                pending["after"] += 1
                if pending["after"] >= config.marker_confirm:
                    m["pending"] = None
                    defects += _marker_break(state, pending["at_s"], pending["delta_ms"], config)
            continue
        if period is not None and m["pending"] is None:
            delta_ms = (interval - period) * 1000.0
            # An interval of two periods is a lost tick, not a shift; anything else this far off is.
            if (
                abs(delta_ms) >= config.threshold_ms
                and abs(interval - 2 * period) * 1000.0 > config.threshold_ms
            ):
                m["pending"] = {
                    "at_s": round(times[-2] + period, 6),
                    "delta_ms": round(delta_ms, 1),
                    "after": 0,
                }
                continue
        # No rhythm (yet), or it broke in a way that is not a shift: start over from this onset.
        m["pending"] = None
        m["period"] = _regular_period(times, config)
    return defects


def _regular_period(times: list[float], config: AvSyncConfig) -> float | None:
    """The period of the last `marker_regular` intervals if they are all equal within the jitter."""
    if len(times) < config.marker_regular + 1:
        return None
    intervals = np.diff(np.array(times[-(config.marker_regular + 1) :]))
    period = float(np.median(intervals))
    if period <= 0 or np.abs(intervals - period).max() > config.marker_jitter_ms / 1000.0:
        return None
    return round(period, 6)


def _marker_break(
    state: dict[str, Any], at_s: float, delta_ms: float, config: AvSyncConfig
) -> list[dict[str, Any]]:
    ev, ts, v, m = state["ev"], state["ts"], state["v"], state["m"]
    if ev["episode"] is not None or (
        ev["last_meas_s"] is not None and at_s - ev["last_meas_s"] < config.stale_s
    ):
        return []  # the audio-visual events measure this stream
    # Whole-picture flashes or cuts near the break: the events will judge it. (Local changes are too common
    # in such content - a counter's digits rolling over - to say as much.)
    if v["global_s"] is not None and abs(at_s - v["global_s"]) < config.stale_s:
        return []
    if any(
        abs(step["t"] - at_s) <= config.mirror_s and abs(step["size"]) * 1000 > config.jump_ms
        for step in ts["steps"]
    ):
        return []  # the timestamps explain it (and report it)
    m["cum_ms"] = round(m["cum_ms"] + delta_ms, 1)
    defects: list[dict[str, Any]] = []
    if m["episode"] is not None:
        defects += _close_markers(state, at_s, config)
    if abs(m["cum_ms"]) >= config.threshold_ms:
        m["episode"] = {"start_s": at_s, "offset_ms": m["cum_ms"]}
    return defects


def _close_markers(state: dict[str, Any], end_s: float, config: AvSyncConfig) -> list[dict[str, Any]]:
    m = state["m"]
    episode, m["episode"] = m["episode"], None
    if episode is None:
        return []
    return [
        make_defect(
            "av_sync",
            episode["start_s"],
            max(end_s, episode["start_s"]),
            config.marker_confidence,
            offset_ms=episode["offset_ms"],
            method="audio_markers",
            measurements=1,
        )
    ]


# --- pairing and the offset state machine ----------------------------------------------------


def _pair(
    state: dict[str, Any], audio_done_s: float, config: AvSyncConfig
) -> list[tuple[float, list[float], float]]:
    """Observations (visual onset time, candidate audio onset times nearest first, weight) for the visual
    onsets whose window of audio is complete.

    Every loud audio onset in the window is a candidate: which one belongs to the visual onset is left to
    `_observe`, which looks for the lag that recurs. A quiet onset (noise resuming, a rustle) is not one.
    """
    out: list[tuple[float, list[float], float]] = []
    waiting = []
    onsets = state["onsets"]
    for t, strength in state["pending"]:
        if t + config.window_s > audio_done_s:
            waiting.append([t, strength])
            continue
        near = [(ta, level) for ta, level in onsets if abs(ta - t) <= config.window_s]
        if not near:
            continue
        loudest = max(level for _, level in near)
        heard = sorted((ta for ta, lv in near if lv >= loudest - config.loud_db), key=lambda ta: abs(ta - t))
        weight = min(1.0, strength / 2.0) * (1.0 if len(heard) == 1 else config.ambiguous_weight)
        out.append((t, heard[: config.max_candidates], weight))
    state["pending"] = waiting[-16:]
    horizon = min([t for t, _ in waiting], default=audio_done_s if math.isfinite(audio_done_s) else 0.0)
    state["onsets"] = [o for o in onsets if o[0] >= horizon - config.window_s - 0.05][-32:]
    return out


def _observe(
    state: dict[str, Any], t: float, heard_s: list[float], weight: float, config: AvSyncConfig
) -> list[dict[str, Any]]:
    """One visual onset and the audio onsets near it: it measures the current offset, or it may, with the
    recent onsets that the current offset does not explain, establish a new one."""
    ev = state["ev"]
    # Pairs are one to one: a sound that measured the offset with one visual onset is no candidate for the
    # next (the end of a flash, an object vanishing again).
    used = {round(ta, 6) for ta in ev["used"]}
    lags_ms = [round((ta - t) * 1000.0, 3) for ta in heard_s if round(ta, 6) not in used]
    if not lags_ms:
        return []
    pool = ev["cand"]
    if ev["level"] is not None:
        reference = _median(ev["recent"])
        agreeing = [lag for lag in lags_ms if abs(lag - reference) <= config.agree_ms]
        if agreeing:
            offset_ms = min(agreeing, key=lambda lag: abs(lag - reference))
            ev["last_meas_s"], ev["last_ms"] = round(t, 6), offset_ms
            ev["recent"] = [*ev["recent"], offset_ms][-5:]
            ev["level_last_s"] = round(t, 6)
            ev["used"] = [*ev["used"], round(t + offset_ms / 1000.0, 6)][-4:]
            pool.append([round(t, 6), [], 0.0])  # it counts against any other offset's share
            pool[:] = [o for o in pool[-config.pool_size :] if o[0] >= t - config.pool_s]
            _add(ev, offset_ms, weight)
            return []
    pool.append([round(t, 6), lags_ms, round(weight, 3)])
    pool[:] = [o for o in pool[-config.pool_size :] if o[0] >= t - config.pool_s]
    support = _consensus(pool, ev["level"] is not None, config)
    if support is None:
        return []
    # A new offset: the median of the lags that back it. It began between the last measurement of the old
    # offset and the first of the new one (the midpoint halves the worst error), or at the timestamp step
    # that caused it. Back in sync, the episode ends where sync is first seen again.
    first_s = support[0][0]
    level_ms = _median([lag for _, lag, _ in support])
    # The old offset's last measurement before that (a later one was a chance agreement, outvoted); with
    # no offset set yet, the last of two earlier onsets that agreed on another lag (too few to set it).
    old_s = [o[0] for o in pool if not o[1] and o[0] < first_s]
    if ev["level_last_s"] is not None and ev["level_last_s"] < first_s:
        old_s.append(ev["level_last_s"])
    if ev["level"] is None:
        old_s += _tentative(pool, first_s, level_ms, config)
    last_old_s = max(old_s, default=None)
    step = _claim_step(state, last_old_s, first_s, config)
    start_s = first_s
    if last_old_s is not None and abs(level_ms) > config.threshold_ms:
        start_s = round(first_s - min(first_s - last_old_s, config.stale_s) / 2.0, 6)
    defects = _close(state, step["t"] if step else start_s, config)
    ev["level"], ev["recent"], ev["cand"] = round(level_ms, 3), [lag for _, lag, _ in support][-5:], []
    ev["used"] = [round(ts + lag / 1000.0, 6) for ts, lag, _ in support][-4:]
    ev["by_clock"] = False
    ev["level_last_s"] = ev["last_meas_s"] = support[-1][0]
    ev["last_ms"] = support[-1][1]
    if abs(level_ms) > config.threshold_ms:
        method = "timestamps" if step else "events"
        ev["episode"] = {
            "start_s": step["t"] if step else start_s,
            "method": method,
            "sum": 0.0,
            "n": 0,
            "conf": 0.0,
        }
        if step:
            ev["episode"]["jump_ms"] = round(step["size"] * 1000.0, 1)
        for _, lag, w in support:
            _add(ev, lag, w)
    return defects


def _tentative(pool: list[list[Any]], before_s: float, level_ms: float, config: AvSyncConfig) -> list[float]:
    """Times of earlier observations that agree closely with another earlier one on a lag other than
    `level_ms`: an offset seen, though not yet often enough to be set."""
    earlier = [(t, lags) for t, lags, _ in pool if t < before_s and lags]
    return [
        t
        for t, lags in earlier
        for other_t, other_lags in earlier
        if other_t != t
        and any(
            abs(x - y) <= config.close_ms and abs(x - level_ms) > config.agree_ms
            for x in lags
            for y in other_lags
        )
    ]


def _consensus(
    pool: list[list[Any]], change: bool, config: AvSyncConfig
) -> list[tuple[float, float, float]] | None:
    """The lag the newest observation shares with enough others: [(t, lag ms, weight)] oldest first.

    For each of the newest observation's candidates: the observations with a candidate within `agree_ms`
    of it, re-centred once on their median. It counts when they are enough (`min_measurements` for a
    `change` of an offset measured before, one more from nothing, one more again if they spread beyond
    `close_ms`), weigh `min_weight`, and make up `support_ratio` of the observations since the first
    (the run may leave out its earliest supporters to qualify).
    """
    newest = pool[-1]
    best: tuple[float, list[tuple[float, float, float]]] | None = None
    for lag in newest[1]:
        center = lag
        for _ in range(2):
            support = []
            for t, lags, weight in pool:
                near = [x for x in lags if abs(x - center) <= config.agree_ms]
                if near:
                    support.append((t, min(near, key=lambda x: abs(x - center)), weight))
            center = _median([x for _, x, _ in support])
        if not support or support[-1][0] != newest[0]:
            continue
        # Pairs are one to one: an onset whose every candidate is a supporter's sound (the end of a flash,
        # an object vanishing) neither backs the lag nor counts against it.
        backers = {t for t, _, _ in support}
        taken = {round(t + x / 1000.0, 3) for t, x, _ in support}
        # The longest run of supporters up to the newest that qualifies: an early chance agreement (the
        # picture jumping as a freeze ends, 280 ms before a beep) must not stretch the share's window
        # back over onsets that measured the old offset.
        for first in range(len(support)):
            run = support[first:]
            since = sum(
                1
                for t, lags, _ in pool
                if t >= run[0][0]
                and (t in backers or not (lags and all(round(t + x / 1000.0, 3) in taken for x in lags)))
            )
            total = sum(w for _, _, w in run)
            lags = [x for _, x, _ in run]
            loose = max(lags) - min(lags) > config.close_ms
            if (
                len(run) >= config.min_measurements + (0 if change else 1) + (1 if loose else 0)
                and total >= config.min_weight - 1e-9
                and len(run) >= config.support_ratio * since
            ):
                if best is None or total > best[0]:
                    best = (total, run)
                break
    return best[1] if best else None


def _claim_step(
    state: dict[str, Any], after_s: float | None, until_s: float, config: AvSyncConfig
) -> dict[str, Any] | None:
    """A timestamp step between the last measurement of the old offset and the first of the new one."""
    lo = (after_s if after_s is not None else -math.inf) - 0.1
    for step in state["ts"]["steps"]:
        if step["claimed"] or not lo <= step["t"] <= until_s + 0.1:
            continue
        if abs(step["size"]) * 1000 <= config.jump_ms or _mirrored(state, step, config):
            continue
        step["claimed"] = step["judged"] = True
        state["ts"]["ref"] = state["ts"]["offset"]
        return step
    return None


def _judge_steps(state: dict[str, Any], now: float, config: AvSyncConfig) -> list[dict[str, Any]]:
    """Decide the timestamp steps that events had time to confirm: refuted, mirrored, or a desync alone."""
    ts, ev = state["ts"], state["ev"]
    defects: list[dict[str, Any]] = []
    for step in ts["steps"]:
        if step["judged"] or step["t"] + config.ts_wait_s > now:
            continue
        step["judged"] = True
        ts["ref"] = ts["offset"]
        if abs(step["size"]) * 1000 <= config.jump_ms or _mirrored(state, step, config):
            continue
        if ev["last_meas_s"] is not None and ev["last_meas_s"] > step["t"]:
            continue  # events were measured after the step and did not see a change: not a desync
        # No events to judge by: the timestamps alone say the audio moved against the video. A step too
        # small to matter sets no level (a packager that drops overlapping audio leaves only a sub-frame gap).
        size_ms = step["size"] * 1000.0
        if abs(size_ms) <= config.threshold_ms and ev["level"] is None:
            continue
        old_ms = ev["level"] if ev["level"] is not None else 0.0
        defects += _close(state, step["t"], config)
        ev["level"], ev["recent"], ev["cand"] = round(old_ms + size_ms, 3), [round(old_ms + size_ms, 3)], []
        ev["level_last_s"], ev["by_clock"] = step["t"], True
        if abs(ev["level"]) > config.threshold_ms:
            ev["episode"] = {
                "start_s": step["t"],
                "method": "timestamps",
                "sum": 0.0,
                "n": 0,
                "conf": 0.0,
                "jump_ms": round(size_ms, 1),
            }
            _add(ev, ev["level"], 0.7)
    ts["steps"] = [s for s in ts["steps"] if not s["judged"] or s["t"] >= now - 2 * config.ts_wait_s][-8:]
    return defects


def _mirrored(state: dict[str, Any], step: dict[str, Any], config: AvSyncConfig) -> bool:
    """The video timestamps jumped by the same amount nearby (a splice): the two clocks still agree."""
    near = [s for t, s in state["ts"]["v_steps"] if abs(t - step["t"]) <= config.mirror_s]
    tolerance = max(0.010, 0.6 * state["v"]["frame_s"])
    return bool(near) and abs(sum(near) - step["size"]) <= tolerance


def _add(ev: dict[str, Any], offset_ms: float, confidence: float) -> None:
    episode = ev["episode"]
    if episode is not None:
        episode["sum"] = round(episode["sum"] + offset_ms, 3)
        episode["n"] += 1
        episode["conf"] = round(episode["conf"] + confidence, 3)


def _close(state: dict[str, Any], end_s: float, config: AvSyncConfig) -> list[dict[str, Any]]:
    ev = state["ev"]
    episode, ev["episode"] = ev["episode"], None
    if episode is None or episode["n"] == 0:
        return []
    n = episode["n"]
    offset_ms = episode["sum"] / n
    confidence = episode["conf"] / n * (1.0 - 0.5**n)
    details: dict[str, Any] = {
        "offset_ms": round(offset_ms, 1),
        "method": episode["method"],
        "measurements": n,
    }
    if episode["method"] == "timestamps":
        confidence = max(confidence, 0.7)
        details["jump_ms"] = episode["jump_ms"]
    del config
    return [make_defect("av_sync", episode["start_s"], max(end_s, episode["start_s"]), confidence, **details)]


def _status(state: dict[str, Any], now: float, config: AvSyncConfig) -> None:
    ev = state["ev"]
    # A level set by the audio clock stays true until the clock moves again; one set by events goes stale.
    fresh = ev["level_last_s"] is not None and now - ev["level_last_s"] <= config.stale_s + 1.0
    fresh = fresh or bool(ev.get("by_clock"))
    if ev["level"] is None or not fresh:
        state["status"], state["offset_ms"] = "unknown", None
    else:
        out = abs(ev["level"]) > config.threshold_ms
        state["status"], state["offset_ms"] = ("out_of_sync" if out else "in_sync"), ev["level"]


# --- state -----------------------------------------------------------------------------------


def _copy_state(state: dict[str, Any] | None) -> dict[str, Any]:
    if state is None:
        return {
            "status": "unknown",
            "offset_ms": None,
            "v": {
                "thumb": None,
                "act": None,  # recent activity of each thumbnail block (local onsets)
                "last_s": None,
                "frame_s": 0.04,
                "intervals": 0,
                "onset_s": None,
                "global_s": None,
            },
            "a": {"tail_p": [], "tail_c": [], "tail_idx": None, "onset_s": None, "onset_db": None},
            "pending": [],  # visual onsets waiting for the audio after them: [t, strength]
            "onsets": [],  # recent audio onsets: [t, level dB]
            # periodic audio markers: recent onset times, their period, a break waiting for confirmation,
            # the offset accumulated over confirmed breaks, and the open episode
            "m": {"times": [], "period": None, "pending": None, "cum_ms": 0.0, "episode": None},
            "ev": {
                "level": None,
                "recent": [],  # the last lags that measured the level, ms
                "used": [],  # the audio onsets of those measurements, s
                "level_last_s": None,
                "cand": [],
                "episode": None,
                "last_meas_s": None,
                "last_ms": None,
                "by_clock": False,
            },
            "ts": {
                "origin": None,
                "end": None,
                "chunk_s": None,
                "count_s": 0.0,
                "explained": 0.0,
                "offset": None,
                "ref": None,
                "straddle": [],
                "errors": 0,
                "errors_prev": 0,
                "steps": [],
                "v_steps": [],
            },
        }
    # A deep copy through plain containers: the caller's state must not change under it.
    return _deep_copy(state)


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def _median(values: list[float]) -> float:
    return round(float(np.median(values)), 3) if values else 0.0
