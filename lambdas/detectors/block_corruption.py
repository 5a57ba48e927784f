"""Block corruption: damaged bits in coded video, concealed by the decoder until the next keyframe.

The decoder is the only witness that never lies about *whether* a picture was damaged: FFmpeg flags
the frames it had to conceal (`VideoFrame.corrupt`, H.264 with frame threading, MPEG-4 Part 2),
fails whole packets (`VideoFrame.decode_errors`, e.g. VP9), or takes packets and never gives out their
pictures (`VideoFrame.dropped_after`: HEVC drops every picture that refers to a damaged one, up to the
next keyframe, without an error). So decoder evidence opens an event. The
damage then lives on in every picture predicted from a damaged one, unflagged, until a keyframe that
decodes cleanly resets the references: that keyframe ends the event.

Decoders conceal much damage without a flag (VP8, VP9 and HEVC nearly always, H.264 sometimes), so
a second witness can open an event on its own: concealment (`concealment_score`). Between two
consecutive pictures, each 32-px block's row and column profiles are matched against the previous
picture's over +-8 px of motion; a block whose best match is still far worse than the picture's
typical block AND that gained steps on the 8-px transform grid shows content that came from nowhere
and no longer fits together: wrongly predicted or concealed blocks. One picture in which at least 10%
of the blocks look like that opens an event (evidence "concealment"), dated back to where the run of
pictures with many blocks that follow no motion began (at most 1 s); it ends at the next clean
keyframe as above. Moving objects fail the motion test but bring no new grid steps; grid-aligned
texture has steps in every picture, so it gains none. Two kinds of legitimate content look like that
and are set aside (they raised every false alarm on the evaluation sets of seeds 1-3): a block that
was flat in the previous picture (a flashed rectangle or a white frame ending, an uncovered area) gains
steps from whatever replaces it, so it does not count; and the first picture that moves after a repeated
one (a freeze ending) jumped in time and was coded afresh, so it opens no event.

Some content keeps its grid steps only every other picture (the synthetic checkerboard): damage there
that grows over frames (VP9 smears rather than adds steps) can show as too few gained steps against the
previous picture. So a picture that passed the gates below but stayed under the threshold is also
compared with the picture two back (same phase): the same blocks that follow no motion, with steps
gained since then (`conceal_fraction_two_back`). Not where a quarter of the blocks follow no motion
(a partial flash starting moved 0.35 of them and passed).

The full comparison costs about three times decoding (~1.5 ms a picture pair at 360p), so it runs only
on pictures that pass two cheap gates (`gate_seam_blocks`, `gate_unexplained`): at least 8 blocks
gained seams on the 16-px grid (read in the same pass as the seam score below), and the same motion
test on every 4th pixel with 4-px shifts finds at least 9% of blocks that follow no motion. Where the
run began is found by walking back from a hit, and from a second's last picture for the state, with
the coarse test. All of a second's pictures are measured together: at these sizes numpy's cost per
call, not the arithmetic, dominates. Concealment then adds ~0.05 ms a frame at 360p.

A learned decision can open an event too (evidence "learned"): a logistic regression over each picture's
features (`picture_features`: the decoder's evidence, pictures missing by the timestamps, the concealment
score, gained grid seams, and, for a model that weighs them, the coarse motion test, the luma change and
the 8-px grid energy against the clip's own levels), learned from the damage corpus's tuning sources by
`make train` (block_model.py, weights in block_model.json). It judges pictures predicted from others and,
if it reads the pictures' content, not the first to move after a repeated one (a picture missing by the
timestamps is missing there too); an event only it saw is reported once it lasts 3 pictures. Its
features never depend on the events, so training reads exactly what detection computes.

A third, weaker score: concealed macroblocks leave luma steps along the 16-px macroblock grid that
are much stronger than the steps right beside them. It is measured relative to the clip's own
baseline (learnt on frames outside events), reported as evidence ("seams") and peak score, and it
closes an event when no keyframe comes for a long time but the seams have gone. It never opens an
event: grid-aligned content (the synthetic checkerboard, low-bitrate MPEG-4 blocking) scores as high
as real damage or higher, and damage smeared by motion soon stops lining up with the grid (chaplin:
seams back at baseline 1.5 s after the hit while 0.8% of pixels stay wrong for 6 s).

Limits: concealment needs the damage to be visible in one picture in about a tenth of the blocks:
small or slowly growing damage, and damage that shows first in the first picture of a second (it is
compared only with pictures of its own second, so that no picture travels in the state), are seen
only through the decoder, and so is damage over flat areas and damage in a still scene (its first
damaged picture is the first to move after repeated ones). On the synthetic evaluation content (a
scrolling checkerboard on the grid, with moving shapes) clean pictures reach 0.09, just under the 0.10
threshold; real clips, heavily compressed ones included, stay under 0.05. An event opened by
concealment in a stream with no later keyframe lasts to the stream's end. Under frame threading
FFmpeg's concealment is not bit-exact from run to run, so "seams" and peak_score may differ slightly
between two decodes of the same stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

import numpy as np

from lambdas.detectors.block_model import (
    CONTENT_FEATURES,
    FEATURES,
    MOTION_FEATURES,
    LogisticModel,
    committed_model,
)
from lambdas.shared.media import StreamSecond, VideoFrame, make_defect

MB = 16  # macroblock size: H.264 and MPEG-2/4 conceal whole macroblocks
LEVEL_ALPHA = 0.1  # weight of each picture in the clip's recent levels of motion, change and grid energy
COARSE = 4  # the coarse motion test (`coarse_unexplained`) reads every 4th pixel and shifts by 4 px
SEGMENT = 64  # boundary length judged as one unit: long enough to average texture, short enough for a band


@dataclass(frozen=True)
class BlockCorruptionConfig:
    # A boundary segment is a seam when the step across it is this many times the steps beside it ...
    seam_ratio: float = 3.0
    # ... and at least this many luma levels larger (flat areas have tiny steps whose ratios mean nothing).
    seam_min_step: float = 6.0
    # Every `step`-th pixel along a boundary is read: keeps 720p well under 1 ms a frame.
    step: int = 2
    # Seams are "visible" when the seam fraction exceeds the clip's baseline mean + k deviations + margin.
    baseline_k: float = 4.0
    seam_margin: float = 0.02
    baseline_alpha: float = 0.05  # EMA weight of each clean frame in the baseline (~20 frames memory)
    baseline_frames: int = 5  # clean frames needed before the visual score is trusted
    # With no clean keyframe, an event whose seams were seen closes once they have been gone this long.
    # Longer than the usual 2 s GOP so that, wherever keyframes come regularly, the keyframe decides.
    clean_close_s: float = 10.0
    # Concealment evidence (see `concealment_score`), on pictures scaled down to at most ~`conceal_width`.
    conceal_width: int = 640
    conceal_block: int = 32  # the block whose motion is judged: 2x2 macroblocks, half a 64-px CTU/superblock
    conceal_search: int = 8  # +- pixels of motion searched between two frames (after scaling down)
    # A block "does not follow": its best-shift residual exceeds this many times the picture's median ...
    conceal_residual_k: float = 4.0
    conceal_residual_min: float = 6.0  # ... and this many luma levels (still pictures have medians near 0)
    # ... and it gained this fraction of seams on the 8-px grid (two boundaries per block at 32 px) ...
    conceal_seam_gain: float = 0.1
    conceal_seam_step: float = 8.0
    # ... in at least this fraction of the picture's blocks, and at least this many blocks.
    conceal_fraction: float = 0.10
    # An event opened by concealment starts where the run of pictures with at least this fraction of
    # blocks that follow no motion began, if that is at most `conceal_backdate_s` before.
    conceal_run_fraction: float = 0.12
    conceal_backdate_s: float = 1.0
    conceal_min_blocks: int = 8  # small pictures have few blocks: a handful of moving-edge blocks is not 10%
    # The full comparison costs ~1.5 ms a picture pair at 360p, three times decoding: it runs only where
    # at least this many blocks gained seams on the 16-px grid (read with `seam_fractions`, for free) ...
    gate_seam_blocks: int = 8
    # ... and the same motion test on every 4th pixel with 4-px shifts (`coarse_unexplained`) finds at
    # least this fraction of blocks that follow no motion. On the 72 evaluation streams (seeds 1-9) every
    # picture the full comparison flags passes both, the least by margins of 4 blocks and 0.01.
    gate_unexplained: float = 0.09
    # A block that was flat (at least this share of its 8x8 cells within `conceal_flat_std` luma levels
    # of their mean) gains grid steps from anything that replaces it: a flash ending, an uncovered area.
    conceal_flat_share: float = 0.75
    conceal_flat_std: float = 2.0
    # Two pictures are the same (a freeze) when their column profiles differ by less than this on average:
    # frozen synthetic pictures re-encoded differ by at most 0.48 luma levels, moving content by 1.3 or more.
    conceal_still_level: float = 0.5
    # An event only the learned model saw (block_model.py) is reported when it lasted at least this many
    # pictures: a picture missing at a clip's cut end (a broadcast clip's last B-picture) is not damage.
    learned_min_frames: int = 3
    # The second comparison, with the picture two back, on gated pictures under `conceal_fraction`: a hit
    # where at least this fraction of blocks follow no motion and gained steps since the picture two back.
    # Clean concealment cases of seeds 0-9: gated pictures reach 0.032; the damage in the others 0.077-0.109.
    # The damage corpus's tuning sources (seed 0): a clean MPEG-4 stream of fast cyclists reaches 0.080 on
    # two pictures; the one event only this rule finds there (VP8 flipped bytes), 0.109. Damage between
    # (seed 1's VP9 case under FFmpeg's decoder) is left to the decoders (libvpx rejects that one).
    conceal_fraction_two_back: float = 0.095
    # ... only where at most this fraction of blocks follow no motion: a partial flash starting (seed 3's
    # 360p HEVC events stream) moves 0.35 of the blocks and reaches 0.082; the damage found so 0.13-0.20.
    conceal_two_back_max_moving: float = 0.25


DEFAULT = BlockCorruptionConfig()


def seam_fractions(luma: np.ndarray, config: BlockCorruptionConfig = DEFAULT) -> tuple[float, float]:
    """Fractions of 64-px macroblock-boundary segments that are seams: (horizontal, vertical) boundaries.

    A seam is a luma step across the boundary far larger than the steps one pixel before and after
    it, so smooth gradients and texture (steps everywhere) do not count; only edges that sit exactly
    on the grid do, which is what a concealed or displaced macroblock leaves.
    """
    return grid_seams(luma, config).fractions


@dataclass(frozen=True)
class GridSeams:
    """Seams on the 16-px grid of one picture, read once for both uses of it."""

    fractions: tuple[float, float]  # of 64-px segments, (horizontal, vertical): see `seam_fractions`
    per_block: np.ndarray  # seams among the 32-px segments of each concealment block (`concealment_blocks`)


def grid_seams(luma: np.ndarray, config: BlockCorruptionConfig = DEFAULT) -> GridSeams:
    return grid_seams_of([luma], config)[0]


def grid_seams_of(lumas: list[np.ndarray], config: BlockCorruptionConfig = DEFAULT) -> list[GridSeams]:
    """`grid_seams` of many pictures at once: numpy's per-call cost is shared by a second's pictures."""
    out: list[GridSeams | None] = [None] * len(lumas)
    for shape in {luma.shape for luma in lumas}:  # one size, nearly always
        indices = [i for i, luma in enumerate(lumas) if luma.shape == shape]
        for i, seams in zip(indices, _grid_seams_batch([lumas[i] for i in indices], config), strict=True):
            out[i] = seams
    return [seams for seams in out if seams is not None]


def _grid_seams_batch(lumas: list[np.ndarray], config: BlockCorruptionConfig) -> list[GridSeams]:
    blocks = concealment_blocks(lumas[0].shape, config)
    n, cells = len(lumas), blocks[0] * blocks[1] + 1  # the last cell: segments outside whole blocks
    per_block = np.zeros((n, cells), np.int64)
    fractions = np.zeros((n, 2))
    for direction, transposed in enumerate((False, True)):
        layout = _seam_layout(lumas[0].shape, transposed, config)
        if layout is None:
            continue
        seams64, seams32 = _segment_seams(lumas, layout, transposed, config)
        fractions[:, direction] = seams64.mean(axis=(1, 2))
        index = (np.arange(n)[:, None, None] * cells + layout.block_index[None])[seams32]
        per_block += np.bincount(index, minlength=n * cells).reshape(n, cells)
    return [
        GridSeams((float(f[0]), float(f[1])), counts[:-1].reshape(blocks))
        for f, counts in zip(fractions, per_block, strict=True)
    ]


@dataclass(frozen=True)
class _SeamLayout:
    """Where `_segment_seams` reads one direction of a picture of one size (computed once per size)."""

    lines: np.ndarray  # the four lines around the 16-px boundaries (2 and 1 before, at, 1 after)
    length: int  # pixels along each boundary that are read (whole 64-px segments)
    counts: np.ndarray  # samples in each 32-px, then each 64-px segment
    block_index: np.ndarray  # (boundaries, 32-px segments): concealment block, or the block count outside


@lru_cache(maxsize=16)
def _seam_layout(
    shape: tuple[int, int], transposed: bool, config: BlockCorruptionConfig
) -> _SeamLayout | None:
    height, width = shape
    across_len, along_len = (width, height) if transposed else (height, width)
    if across_len < MB + 2 or along_len < SEGMENT:
        return None
    boundaries = np.arange(MB, across_len - 1, MB)
    n_seg = along_len // SEGMENT
    half = SEGMENT // 2 // config.step
    counts = np.array([half] * (2 * n_seg) + [2 * half] * n_seg, np.float32)
    blocks = concealment_blocks(shape, config)
    size = config.conceal_block * _conceal_factor(width, config)
    # Boundary `b` lies in block row b // size (a block's top edge belongs to it, as in `_block_seams`).
    across = boundaries[:, None] // size
    segment = np.arange(2 * n_seg)[None, :] * (SEGMENT // 2) // size
    block_rows, block_cols = (segment, across) if transposed else (across, segment)
    outside = (block_rows >= blocks[0]) | (block_cols >= blocks[1])
    block_index = np.where(outside, blocks[0] * blocks[1], block_rows * blocks[1] + block_cols)
    lines = (np.arange(-2, 2)[:, None] + boundaries[None, :]).ravel()  # by line, then by boundary
    return _SeamLayout(lines, n_seg * SEGMENT, counts, block_index)


def _segment_seams(
    lumas: list[np.ndarray], layout: _SeamLayout, transposed: bool, config: BlockCorruptionConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Seams over the boundaries of `layout` (rows, or columns if `transposed`) of pictures of one size:
    (pictures, boundaries, segments) per 64-px segment, and per 32-px half segment. Every number below
    is a small integer or one over a power of two, exact in float32, so the result does not depend on
    how the steps are added up."""
    n, boundaries, half = len(lumas), len(layout.lines) // 4, SEGMENT // 2 // config.step
    # Row by row (columns gathered within each row): a column at a time is cache-hostile.
    if transposed:
        samples = np.stack([luma[0 : layout.length : config.step][:, layout.lines] for luma in lumas])
        lines = samples.reshape(n, -1, half, 4, boundaries)  # segments, samples, lines
        steps = _abs_steps(lines[:, :, :, 1:], lines[:, :, :, :-1])
        # einsum: numpy's sums over short axes are several times slower (int16 holds 32 * 255).
        sums32 = np.einsum("fnksb->fbsn", steps)
    else:
        samples = np.stack([luma[layout.lines, 0 : layout.length : config.step] for luma in lumas])
        lines = samples.reshape(n, 4, boundaries, -1, half)  # lines, segments, samples
        steps = _abs_steps(lines[:, 1:], lines[:, :-1])
        sums32 = np.einsum("fsbnk->fbsn", steps)
    sums64 = np.einsum("fbsnk->fbsn", sums32.reshape(n, boundaries, 3, -1, 2))
    means = np.concatenate([sums32, sums64], axis=3).astype(np.float32) / layout.counts
    across, beside = means[:, :, 1], (means[:, :, 0] + means[:, :, 2]) / 2
    seams = (across + 1.0 > config.seam_ratio * (beside + 1.0)) & (across - beside > config.seam_min_step)
    halves = layout.block_index.shape[1]
    return seams[:, :, halves:], seams[:, :, :halves]


def _abs_steps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| of two uint8 arrays, as int16: taken in uint8 (max - min cannot wrap), a quarter of the
    memory traffic of subtracting in int16, which made this six times slower."""
    steps = np.maximum(a, b)
    steps -= np.minimum(a, b)
    return steps.astype(np.int16)


def _conceal_factor(width: int, config: BlockCorruptionConfig) -> int:
    """Concealment reads every `factor`-th pixel: pictures scaled down to about `conceal_width`."""
    return max(1, width // config.conceal_width)


def concealment_blocks(shape: tuple[int, int], config: BlockCorruptionConfig = DEFAULT) -> tuple[int, int]:
    """(rows, columns) of concealment blocks in a picture of this (height, width)."""
    factor = _conceal_factor(shape[1], config)
    return -(-shape[0] // factor) // config.conceal_block, -(-shape[1] // factor) // config.conceal_block


@dataclass(frozen=True)
class ConcealmentFeatures:
    """What `concealment_score` compares between two consecutive pictures (never kept in the state)."""

    columns: np.ndarray  # (block rows, width): the mean of each column inside each band of block rows
    rows: np.ndarray  # (block columns, height): the mean of each row inside each band of block columns
    picture: np.ndarray  # the scaled-down picture, cropped to whole blocks
    config: BlockCorruptionConfig

    @cached_property
    def seams(self) -> np.ndarray:
        """(block rows, block columns): fraction of 8-px grid boundary segments that are seams.

        Computed only when asked: most pictures have too few blocks that follow no motion to need it.
        """
        return _block_seams(self.picture, self.config.conceal_block, self.config)

    @cached_property
    def flat(self) -> np.ndarray:
        """(block rows, block columns): True where most of the block's 8x8 cells are flat."""
        cell, block = 8, self.config.conceal_block
        height, width = self.picture.shape
        cells = self.picture.reshape(height // cell, cell, width // cell, cell)
        # std < s  <=>  n * sum(x^2) - sum(x)^2 < (n * s)^2, exact: the pixels are integers, and these
        # sums (at most 64 * 255^2) are exact in float32. numpy's std costs several times more here.
        n = cell * cell
        sums = np.einsum("akbl->ab", cells).astype(np.float64)
        squares = np.einsum("akbl,akbl->ab", cells, cells).astype(np.float64)
        flat_cells = n * squares - sums * sums < (n * self.config.conceal_flat_std) ** 2
        per = block // cell
        share = flat_cells.reshape(height // block, per, width // block, per)
        return share.mean(axis=(1, 3)) >= self.config.conceal_flat_share


def concealment_features(luma: np.ndarray, config: BlockCorruptionConfig = DEFAULT) -> ConcealmentFeatures:
    """Projections and grid seams of the picture, scaled down to about `conceal_width` by sampling."""
    factor = _conceal_factor(luma.shape[1], config)
    block = config.conceal_block
    small = luma[::factor, ::factor]
    bh, bw = small.shape[0] // block, small.shape[1] // block
    picture = small[: bh * block, : bw * block].astype(np.float32)
    # Sums of integers (exact in float32 in any order) by einsum: numpy's sum over a short innermost axis
    # is several times slower.
    columns = np.einsum("bkw->bw", picture.reshape(bh, block, bw * block)) / block
    rows = np.einsum("hbk->bh", picture.reshape(bh * block, bw, block)) / block
    return ConcealmentFeatures(columns, rows, picture, config)


def _block_seams(picture: np.ndarray, block: int, config: BlockCorruptionConfig) -> np.ndarray:
    """Per block, the fraction of its 8-px boundary segments (8 long) that are seams, both directions.

    Every second pixel along a boundary is read (4 per segment), as `seam_fractions` does: half the cost.
    """
    grid, step = 8, 2
    out = np.zeros((picture.shape[0] // block, picture.shape[1] // block))
    for plane, transposed in ((picture, False), (picture.T, True)):
        height, width = plane.shape
        boundaries = np.arange(grid, height - 1, grid)
        lines = (boundaries[:, None] + np.arange(-2, 2)[None, :]).ravel()
        # Row by row (columns gathered within each row): a column at a time is cache-hostile.
        samples = picture[::step, lines].T if transposed else picture[lines, ::step]
        a, b, c, d = samples.reshape(len(boundaries), 4, -1).transpose(1, 0, 2)
        segments = (len(boundaries), width // grid, grid // step)
        across = np.einsum("bsk->bs", np.abs(c - b).reshape(segments)) / segments[2]
        beside = np.einsum("bsk->bs", (np.abs(b - a) + np.abs(d - c)).reshape(segments)) / segments[2] / 2
        seams = (across + 1.0 > config.seam_ratio * (beside + 1.0)) & (
            across - beside > config.conceal_seam_step
        )
        per_row = np.zeros((height // grid, width // grid))
        per_row[boundaries // grid] = seams
        cells = (height // block, block // grid, width // block, block // grid)
        per_block = np.einsum("akbl->ab", per_row.reshape(cells)) / (cells[1] * cells[3])
        out += per_block.T if transposed else per_block
    return out / 2


def _best_residual(previous: np.ndarray, current: np.ndarray, block: int, search: int) -> np.ndarray:
    """Per block of each band: the smallest mean |difference| of its profile over shifts of +-search px."""
    bands, length = current.shape
    padded = np.concatenate(  # edge padding (np.pad costs more than the rest of this at this size)
        [np.repeat(previous[:, :1], search, axis=1), previous, np.repeat(previous[:, -1:], search, axis=1)],
        axis=1,
    )
    # Every shift at once: (bands, shifts, length) views of the padded previous profiles.
    shifted = np.lib.stride_tricks.sliding_window_view(padded, length, axis=1)
    error = np.abs(current[:, None, :] - shifted).reshape(bands, 2 * search + 1, length // block, block)
    return (np.einsum("bsnk->bsn", error) / block).min(axis=1)


def concealment_score(
    previous: ConcealmentFeatures, current: ConcealmentFeatures, config: BlockCorruptionConfig = DEFAULT
) -> float:
    return concealment(previous, current, config)[0]


def concealment(
    previous: ConcealmentFeatures,
    current: ConcealmentFeatures,
    config: BlockCorruptionConfig = DEFAULT,
    two_back: ConcealmentFeatures | None = None,
) -> tuple[float, float]:
    """Fraction of blocks that neither follow any motion from the previous picture nor keep its grid.

    Concealed or wrongly predicted blocks show content that is not in the previous picture near where
    it was (their row and column profiles match no shift of the previous ones, far worse than the
    picture's typical block), and they are built from coded blocks that no longer fit together (new
    steps on the 8-px transform grid). Moving objects fail the first test but not the second; texture
    on the grid passes the second in every frame, so it gains nothing. 0 when the layout differs.
    With `two_back` (the picture before `previous`), a score under the threshold is also judged by the
    steps gained since that picture; a hit there scores exactly `conceal_fraction`.
    """
    if previous.picture.shape != current.picture.shape:
        return 0.0, 0.0
    block, search = config.conceal_block, config.conceal_search
    residual = _best_residual(previous.columns, current.columns, block, search)
    residual = residual + _best_residual(previous.rows, current.rows, block, search).T
    threshold = max(config.conceal_residual_min, config.conceal_residual_k * float(np.median(residual)))
    unexplained = residual > threshold
    moving = round(float(unexplained.mean()), 4)
    if int(unexplained.sum()) < config.conceal_min_blocks:
        return 0.0, moving
    # A block that was flat had no grid steps to keep: what replaces it (a flash ending, an uncovered
    # background) always "gains" some, so only blocks that had texture before are judged.
    gained = current.seams - previous.seams > config.conceal_seam_gain
    suspect = unexplained & gained & ~previous.flat
    count = int(suspect.sum())
    score = round(count / suspect.size, 4) if count >= config.conceal_min_blocks else 0.0
    if (
        score < config.conceal_fraction
        and two_back is not None
        and moving <= config.conceal_two_back_max_moving
        and two_back.picture.shape == current.picture.shape
    ):
        gained = current.seams - two_back.seams > config.conceal_seam_gain
        count = int((unexplained & gained & ~two_back.flat).sum())
        if count >= config.conceal_min_blocks and count / suspect.size >= config.conceal_fraction_two_back:
            score = config.conceal_fraction
    return score, moving


@dataclass
class _SecondAnalysis:
    """What `detect` measures on one second's pictures before its event logic runs: the grid seams, the
    coarse motion test, the concealment score where the gates let it run, and the learned model's
    features (`picture_features`). Nothing here depends on the events, so training reads the same."""

    frames: list[VideoFrame]
    seams: list[GridSeams]
    unexplained: _Unexplained
    concealed: dict[int, float]  # by frame index: the concealment score of the gated pictures
    features: np.ndarray  # (pictures, len(FEATURES))
    cache: dict[int, ConcealmentFeatures]
    level: list[float] | None = None  # the state's "level" after this second (None: not measured)

    def features_of(self, index: int) -> ConcealmentFeatures:
        if index not in self.cache:
            self.cache[index] = concealment_features(self.frames[index].luma, self.unexplained.config)
        return self.cache[index]

    def after_still(self, index: int, state: dict[str, Any]) -> bool:
        """Did the picture before this one repeat its own predecessor? For the second picture of a
        second, that predecessor is in the previous second: its last pair stands in for it."""
        if index >= 2:
            before, previous = self.features_of(index - 2), self.features_of(index - 1)
            return _same_picture(before, previous, self.unexplained.config)
        return bool(state.get("still"))


def _analyse(
    frames: list[VideoFrame], state: dict[str, Any], config: BlockCorruptionConfig, motion: bool = True
) -> _SecondAnalysis:
    """`motion`: measure the features that follow the motion (`MOTION_FEATURES`, and their levels in the
    state); a model that gives them no weight leaves them at 0 and their cost unspent."""
    lumas = [frame.luma for frame in frames]
    seams = grid_seams_of(lumas, config)
    # Concealment compares consecutive pictures of this second only: the first picture of a second has
    # no predecessor here, so the result is the same however the seconds are fed, with a small state.
    # The full comparison runs only where two cheap tests pass (see `gate_unexplained`), in this order.
    gained = [0] + [_gained_blocks(seams[i - 1], seams[i]) for i in range(1, len(frames))]
    candidates = [
        index for index in range(1, len(frames))
        if not frames[index].key_frame and gained[index] >= config.gate_seam_blocks
    ]
    unexplained = _Unexplained(lumas, config)
    unexplained.compute(list(range(1, len(frames))) if motion else candidates)
    analysis = _SecondAnalysis(frames, seams, unexplained, {}, np.zeros((len(frames), len(FEATURES))), {})
    for index in candidates:
        if (unexplained.values[index] or 0.0) >= config.gate_unexplained:
            # The picture two back only from the same stretch of prediction (not across a keyframe).
            same_stretch = index >= 2 and not frames[index - 1].key_frame
            two_back = analysis.features_of(index - 2) if same_stretch else None
            analysis.concealed[index] = concealment(
                analysis.features_of(index - 1), analysis.features_of(index), config, two_back
            )[0]
    analysis.features, analysis.level = _picture_features(analysis, gained, state, config, motion)
    return analysis


def picture_features(
    second: StreamSecond, state: dict[str, Any] | None, config: BlockCorruptionConfig = DEFAULT
) -> np.ndarray:
    """(pictures, len(FEATURES)): what the learned model reads of each picture of the second, given the
    detector's state before it (what `make train` learns from; `detect` computes the same)."""
    return _analyse(second.frames, dict(state or _initial_state()), config).features


def _picture_features(
    analysis: _SecondAnalysis,
    gained: list[int],
    state: dict[str, Any],
    config: BlockCorruptionConfig,
    motion: bool,
) -> tuple[np.ndarray, list[float] | None]:
    """(pictures, len(FEATURES)) and the clip's levels after them (the state's "level")."""
    frames = analysis.frames
    out = np.zeros((len(frames), len(FEATURES)))
    if not frames:
        return out, state.get("level")
    out[:, 0] = [frame.corrupt for frame in frames]
    out[:, 1] = [frame.decode_errors > 0 for frame in frames]
    out[:, 2] = [frame.dropped_after > 0 for frame in frames]
    out[:, 3] = _missing_pictures(frames, state)
    out[:, 4] = [analysis.concealed.get(index, 0.0) for index in range(len(frames))]
    blocks = max(1, int(np.prod(concealment_blocks(frames[0].luma.shape, config))))
    out[:, 5] = np.asarray(gained) / blocks
    if not motion:
        return out, state.get("level")
    out[:, 6] = [analysis.unexplained.values.get(index) or 0.0 for index in range(len(frames))]
    changes, energies = _changes_and_grid_energy([frame.luma for frame in frames], config)
    # The clip's own recent level of each measure (exponential means over the pictures before, events or
    # not, so that the features never depend on the decision): damage is a rise above it.
    level = list(state.get("level") or [0.0, 0.0, 0.0, 0])
    for index in range(len(frames)):
        moved, change = out[index, 6], changes[index]
        if change is None:
            continue  # no predecessor in this second: nothing to compare, nothing learnt
        mean_moved, mean_change, mean_energy, count = level
        energy = energies[index]
        if count:
            out[index, 7] = moved - mean_moved
            out[index, 8] = np.log((change + 1.0) / (mean_change + 1.0))
            out[index, 9] = energy - energies[index - 1]
            out[index, 10] = energy - mean_energy
        alpha = max(LEVEL_ALPHA, 1.0 / (count + 1))
        level = [
            round(mean + alpha * (value - mean), 6)
            for mean, value in zip(level[:3], (moved, change, energy), strict=True)
        ] + [count + 1]
    return out, level


def _missing_pictures(frames: list[VideoFrame], state: dict[str, Any]) -> list[float]:
    """Pictures missing before each one by the timestamps (at most 3): the frame interval is the second's
    own median interval (the state's before a second of one picture)."""
    times = [frame.pts_s for frame in frames]
    intervals = np.diff(times)
    frame_s = float(np.median(intervals)) if len(intervals) >= 2 else float(state["frame_s"])
    previous = [state["last_s"], *times[:-1]]
    if frame_s <= 0:
        return [0.0] * len(frames)
    return [
        0.0 if before is None else float(np.clip(round((at - before) / frame_s) - 1, 0, 3))
        for before, at in zip(previous, times, strict=True)
    ]


def _changes_and_grid_energy(
    lumas: list[np.ndarray], config: BlockCorruptionConfig
) -> tuple[list[float | None], list[float]]:
    """Per picture: the mean |luma change| from the previous picture on every 4th pixel of the scaled-down
    picture (None for the first, or after a change of size), and the log ratio of luma steps across the
    8-px grid to the steps beside it, on every 4th line of the scaled-down picture at full resolution
    along it. Integer sums throughout: the same numbers however the pictures are grouped."""
    energies = [0.0] * len(lumas)
    changes: list[float | None] = [None] * len(lumas)
    for shape in {luma.shape for luma in lumas}:  # one size, nearly always
        indices = [i for i, luma in enumerate(lumas) if luma.shape == shape]
        factor = _conceal_factor(shape[1], config)
        step = COARSE * factor
        small = np.stack([lumas[i][::step, ::step] for i in indices]).astype(np.int16)
        rows = np.stack([lumas[i][::step] for i in indices])
        columns = np.stack([lumas[i][:, ::step] for i in indices]).transpose(0, 2, 1)
        energy = (_grid_energy(rows) + _grid_energy(columns)) / 2
        for k, index in enumerate(indices):
            energies[index] = float(energy[k])
            if k and indices[k - 1] == index - 1:
                changes[index] = int(np.abs(small[k] - small[k - 1]).sum()) / small[k].size
    return changes, energies


def _grid_energy(lines: np.ndarray) -> np.ndarray:
    """(pictures,) log((steps across the 8-px grid + 1) / (steps right beside it + 1)) along `lines`
    (pictures, lines, length) of uint8."""
    grid = 8
    length = (lines.shape[2] - 1) // grid * grid
    if length < grid:
        return np.zeros(lines.shape[0])
    steps = _abs_steps(lines[:, :, 1 : length + 1], lines[:, :, :length]).reshape(lines.shape[0], -1, grid)
    sums = steps.astype(np.int64).sum(axis=1)  # (pictures, phase): step from pixel 8k+phase to the next
    count = steps.shape[1]
    across = sums[:, grid - 1] / count
    beside = (sums[:, grid - 2] + sums[:, 0]) / (2 * count)
    return np.log((across + 1.0) / (beside + 1.0))


def detect(
    second: StreamSecond,
    state: dict[str, Any] | None,
    config: BlockCorruptionConfig = DEFAULT,
    model: LogisticModel | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    state = dict(state or _initial_state())
    model = model or committed_model()
    defects: list[dict[str, Any]] = []
    frames = second.frames
    analysis = _analyse(frames, state, config, motion=model.reads_any(MOTION_FEATURES))
    # The first picture that moves after a repeated one looks new to every measure of the pictures' content
    # (see `_step`): a model that reads one is not trusted there; the decoder and the timestamps still are.
    reads_content = model.reads_any(CONTENT_FEATURES)
    scores = model.scores(analysis.features) if frames else np.zeros(0)
    unexplained = analysis.unexplained
    run_s = state.get("run_s")  # where the run of pictures that follow no motion began, before this second
    for index, frame in enumerate(frames):
        concealed = analysis.concealed.get(index, 0.0)
        # A keyframe is decoded from itself: the model judges pictures predicted from others only.
        learned = bool(scores[index] >= model.threshold) and not frame.key_frame
        after_still = False
        if concealed >= config.conceal_fraction:
            state["run_s"] = _run_start(frames, index, unexplained, run_s, config)
        if concealed >= config.conceal_fraction or (learned and reads_content):
            after_still = analysis.after_still(index, state)
        learned = learned and not (after_still and reads_content)
        fractions = analysis.seams[index].fractions
        defects += _step(state, frame, concealed, fractions, config, after_still, learned)
        _pictures_dropped_after(state, frame)
        state["last_s"] = frame.pts_s
    if analysis.level is not None:
        state["level"] = analysis.level
    if frames:
        state["run_s"] = _run_start(frames, len(frames) - 1, unexplained, run_s, config)
        last = len(frames) - 1
        state["still"] = last >= 1 and _same_picture(
            analysis.features_of(last - 1), analysis.features_of(last), config
        )
    if second.is_last and state["event"] is not None and state["last_s"] is not None:
        # The stream ends after its last picture and the pictures dropped after it.
        end_s = state["last_s"] + state["frame_s"] * (1 + int(state.get("dropped") or 0))
        defects += _report(state["event"], round(end_s, 6), config)
        state["event"] = None
    return defects, state


def _same_picture(
    previous: ConcealmentFeatures, current: ConcealmentFeatures, config: BlockCorruptionConfig
) -> bool:
    """True when the two pictures are the same to within coding noise (a freeze, a still scene)."""
    if previous.columns.shape != current.columns.shape:
        return False
    return float(np.abs(current.columns - previous.columns).mean()) < config.conceal_still_level


def _gained_blocks(previous: GridSeams, current: GridSeams) -> int:
    if previous.per_block.shape != current.per_block.shape:
        return 0
    return int((current.per_block > previous.per_block).sum())


class _Unexplained:
    """The coarse fraction of blocks that follow no motion (`coarse_unexplained`) for the pictures of one
    second, computed only where asked, several at a time: numpy's per-call cost dominates at this size."""

    def __init__(self, lumas: list[np.ndarray], config: BlockCorruptionConfig) -> None:
        self.lumas, self.config = lumas, config
        self.values: dict[int, float | None] = {}

    def get(self, index: int) -> float | None:
        if index not in self.values:
            self.compute([index])
        return self.values[index]

    def compute(self, indices: list[int]) -> None:
        todo = [i for i in indices if i not in self.values]
        pairs = [i for i in todo if i > 0 and self.lumas[i].shape == self.lumas[i - 1].shape]
        self.values.update(dict.fromkeys(todo))  # None: no predecessor of the same size in this second
        for shape in {self.lumas[i].shape for i in pairs}:  # one size, nearly always
            same = [i for i in pairs if self.lumas[i].shape == shape]
            self.values.update(zip(same, _coarse_pairs(self.lumas, same, self.config), strict=True))


def coarse_unexplained(
    lumas: list[np.ndarray], config: BlockCorruptionConfig = DEFAULT
) -> list[float | None]:
    """Per picture, the fraction of blocks whose profiles follow no motion from the picture before it
    (None for the first, or after a change of size): `concealment`'s first test on every 4th pixel of the
    scaled-down picture, with 4-px shifts."""
    unexplained = _Unexplained(lumas, config)
    unexplained.compute(list(range(len(lumas))))
    return [unexplained.values[index] for index in range(len(lumas))]


def _run_start(
    frames: list[VideoFrame],
    upto: int,
    unexplained: _Unexplained,
    before: float | None,
    config: BlockCorruptionConfig,
) -> float | None:
    """Where the run of pictures with many blocks that follow no motion, up to picture `upto`, began
    (None if that picture is not in one); `before`: the run's start at the end of the previous second.

    Concealment usually crosses its threshold a few pictures after the damage: the damaged area first
    fails to follow the motion, and only then shows the grid steps. A picture with no predecessor in
    its second (None) neither starts nor ends a run; a keyframe ends it. Walked backwards from `upto`,
    so that only the pictures of the run and the one before it are measured.
    """
    first = None
    for index in range(upto, -1, -1):
        if frames[index].key_frame:
            return first
        if index not in unexplained.values and index < upto:
            unexplained.compute(list(range(max(1, index - 7), index + 1)))  # a run is often long
        value = unexplained.get(index)
        if value is not None:
            if value < config.conceal_run_fraction:
                return first
            first = frames[index].pts_s
    return before if before is not None else first


def _coarse_pairs(lumas: list[np.ndarray], pairs: list[int], config: BlockCorruptionConfig) -> list[float]:
    """`coarse_unexplained` of the pictures `pairs` (each with its predecessor; all of one size)."""
    shape = lumas[pairs[0]].shape
    step = COARSE * _conceal_factor(shape[1], config)
    block, search = config.conceal_block // COARSE, config.conceal_search // COARSE
    bh, bw = concealment_blocks(shape, config)
    if bh == 0 or bw == 0:
        return [0.0] * len(pairs)
    height, width = bh * block, bw * block
    needed = sorted({i for index in pairs for i in (index - 1, index)})
    position = {index: k for k, index in enumerate(needed)}
    # Whole rows first, then every 4th sample of them in cache: cheaper than one strided 2-D read.
    pictures = np.stack(
        [np.ascontiguousarray(lumas[i][: height * step : step])[:, : width * step : step] for i in needed]
    ).astype(np.float32)
    n = len(needed)
    # Sums by einsum: numpy's own sum over a short innermost axis is ten times slower.
    columns = (
        np.einsum("nbkw->nbw", pictures.reshape(n, bh, block, width)) / block
    )  # (pictures, bands, width)
    rows = np.einsum("nhbk->nbh", pictures.reshape(n, height, bw, block)) / block  # (pictures, bands, height)
    before = [position[index - 1] for index in pairs]
    after = [position[index] for index in pairs]
    residual = _coarse_residual(columns[before], columns[after], block, search)
    residual = residual + _coarse_residual(rows[before], rows[after], block, search).transpose(0, 2, 1)
    flat = residual.reshape(len(pairs), -1)
    median = np.partition(flat, flat.shape[1] // 2, axis=1)[:, flat.shape[1] // 2]  # the upper median
    threshold = np.maximum(config.conceal_residual_min, config.conceal_residual_k * median)
    fractions = (residual > threshold[:, None, None]).mean(axis=(1, 2))
    return [round(float(value), 4) for value in fractions]


def _coarse_residual(previous: np.ndarray, current: np.ndarray, block: int, search: int) -> np.ndarray:
    """(pairs, bands, blocks): per block of each band of each pair, the smallest mean |difference| of
    its profile from the previous picture's over shifts of +-search samples (edges repeated)."""
    pairs, bands, length = current.shape
    shifted = previous[:, :, _shifted_positions(length, search)]  # (pairs, bands, shifts, length)
    error = np.abs(current[:, :, None, :] - shifted)
    sums = np.einsum("pbsnk->pbsn", error.reshape(pairs, bands, 2 * search + 1, length // block, block))
    return sums.min(axis=2) / block


@lru_cache(maxsize=16)
def _shifted_positions(length: int, search: int) -> np.ndarray:
    """(shifts, length): where each sample of a profile comes from, shifted by -search..search."""
    positions = np.arange(length)[None, :] + np.arange(-search, search + 1)[:, None]
    return np.clip(positions, 0, length - 1)


def _initial_state() -> dict[str, Any]:
    # base: per direction [mean, mean |deviation|] of the seam fraction on clean frames; n: how many.
    return {"base": [[0.0, 0.0], [0.0, 0.0]], "n": 0, "event": None, "last_s": None, "frame_s": 0.04}


def _step(
    state: dict[str, Any],
    frame: VideoFrame,
    concealed: float,
    fractions: tuple[float, float],
    config: BlockCorruptionConfig,
    after_still: bool = False,
    learned: bool = False,
) -> list[dict[str, Any]]:
    # The frame interval, learnt only where no picture went missing (a lost packet leaves a double gap; the
    # learned decision fires where the timestamps say so).
    missing = frame.decode_errors or state.get("dropped") or learned
    if state["last_s"] is not None and frame.pts_s > state["last_s"] and not missing:
        state["frame_s"] = round(min(frame.pts_s - state["last_s"], 1.0), 6)
    excess = _excess(state, fractions, config)
    decoder_hit = frame.corrupt or frame.decode_errors > 0
    # A keyframe is decoded from itself alone: it cannot show concealment carried over from before. The
    # first picture that moves after a repeated one (a freeze ending) is compared with a picture from
    # another time: its content jumped and was coded afresh, so blocks that follow no motion and new grid
    # steps are expected there (the freeze ends of seeds 2 and 3's synthetic 720p H.264 and 480p MPEG-4).
    concealment_hit = concealed >= config.conceal_fraction and not frame.key_frame and not after_still
    # The learned model (block_model.py) judges pictures predicted from others (`detect` applies the same
    # exclusion to a model that reads the pictures' content).
    learned_hit = learned and not frame.key_frame
    defects: list[dict[str, Any]] = []
    event = state["event"]
    if event is not None and frame.key_frame and not decoder_hit:
        # A keyframe that decoded cleanly resets every reference: the damage ends here.
        defects += _report(event, frame.pts_s, config)
        event = state["event"] = None
    if event is None and (decoder_hit or concealment_hit or learned_hit):
        start_s = _start_s(state, frame, concealment_hit and not decoder_hit, config, learned_hit)
        event = state["event"] = _new_event(start_s)
    if event is None:
        _learn(state, fractions, config)
        return defects
    event["frames"] += 1
    visible = excess > config.seam_margin
    fired = {
        "decoder_flag": frame.corrupt,
        "decode_error": frame.decode_errors > 0,
        "concealment": concealment_hit,
        "learned": learned_hit,
        "seams": visible,
    }
    for name, hit in fired.items():
        if hit and name not in event["evidence"]:
            event["evidence"].append(name)
    event["peak"] = max(event["peak"], round(excess, 4))
    if decoder_hit or concealment_hit or learned_hit or visible:
        event["clean_s"], event["clean_frames"] = None, 0
        return defects
    if event["clean_s"] is None:
        event["clean_s"] = frame.pts_s
    event["clean_frames"] += 1
    # No keyframe for a long while, but the seams that were seen have been gone since `clean_s`. Only
    # seams seen and then gone say anything: damage smeared by motion stays invisible to the grid score
    # (measured on chaplin: 0.8% of pixels still wrong 6 s on, seam score back at baseline after 1.5 s).
    if "seams" in event["evidence"] and frame.pts_s - event["clean_s"] >= config.clean_close_s - 1e-6:
        event["frames"] -= event["clean_frames"]
        defects += _report(event, event["clean_s"], config)
        state["event"] = None
    return defects


def _new_event(start_s: float) -> dict[str, Any]:
    return {
        "start_s": start_s,
        "frames": 0,
        "evidence": [],
        "peak": 0.0,
        "clean_s": None,  # first frame of the current run that looks clean
        "clean_frames": 0,
    }


def _pictures_dropped_after(state: dict[str, Any], frame: VideoFrame) -> None:
    """The decoder dropped the pictures after this one (FFmpeg's HEVC decoder does so silently, up to
    the next keyframe, for every picture that refers to a damaged one): damage from the first of them."""
    state["dropped"] = frame.dropped_after  # how many: those after the stream's last picture extend its end
    if not frame.dropped_after:
        return
    if state["event"] is None:
        state["event"] = _new_event(round(frame.pts_s + state["frame_s"], 6))
    if "dropped_pictures" not in state["event"]["evidence"]:
        state["event"]["evidence"].append("dropped_pictures")
    state["event"]["clean_s"], state["event"]["clean_frames"] = None, 0


def _start_s(
    state: dict[str, Any],
    frame: VideoFrame,
    by_concealment: bool,
    config: BlockCorruptionConfig,
    by_model: bool = False,
) -> float:
    """When the damage began: this frame, or just after the previous one if packets before it were lost
    (or, for the learned model, pictures went missing); for concealment, the start of the run of pictures
    whose blocks stopped following the motion."""
    run_s = state.get("run_s")
    if by_concealment and run_s is not None and frame.pts_s - run_s <= config.conceal_backdate_s + 1e-6:
        return run_s
    lost = frame.decode_errors > 0 and not frame.corrupt
    if (lost or by_model) and state["last_s"] is not None:
        return min(frame.pts_s, state["last_s"] + state["frame_s"])
    return frame.pts_s


def _excess(state: dict[str, Any], fractions: tuple[float, float], config: BlockCorruptionConfig) -> float:
    """How far the seams stand above the clip's own baseline (0 until the baseline is learnt)."""
    if state["n"] < config.baseline_frames:
        return 0.0
    base = state["base"]
    margins = [f - (mean + config.baseline_k * dev) for f, (mean, dev) in zip(fractions, base, strict=True)]
    return max(0.0, *margins)


def _learn(state: dict[str, Any], fractions: tuple[float, float], config: BlockCorruptionConfig) -> None:
    # The first frame seeds the mean; early frames learn faster so a short clip still gets a baseline.
    alpha = max(config.baseline_alpha, 1.0 / (state["n"] + 1))
    for stats, value in zip(state["base"], fractions, strict=True):
        mean, dev = stats
        stats[1] = round(dev + alpha * (abs(value - mean) - dev), 6) if state["n"] else 0.0
        stats[0] = round(mean + alpha * (value - mean), 6)
    state["n"] += 1


def _report(event: dict[str, Any], end_s: float, config: BlockCorruptionConfig) -> list[dict[str, Any]]:
    """The event as a defect; none when only the learned decision saw it and it lasted fewer than
    `learned_min_frames` pictures (the corpus's labels leave such short damage optional)."""
    evidence = list(event["evidence"])
    if evidence == ["learned"] and event["frames"] < config.learned_min_frames:
        return []
    # Confidence rests on the decoder: it never flagged a clean stream in our measurements, while
    # concealed pixels (hence "seams" and peak_score) vary from run to run under frame threading; an
    # event seen through concealment alone keeps the base 0.8.
    decoder = ("decoder_flag", "decode_error", "dropped_pictures")
    confidence = min(1.0, 0.8 + 0.1 * sum(name in evidence for name in decoder))
    return [make_defect(
        "block_corruption",
        event["start_s"],
        max(end_s, event["start_s"]),
        confidence,
        frames=event["frames"],
        evidence=evidence,
        peak_score=round(event["peak"], 3),
    )]
