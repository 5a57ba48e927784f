"""generate_stream: containers, timing, synthetic events, freezes, determinism."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from ss_helpers import SMALL, beep_onsets, decode_audio, decode_luma, demux, mean_abs_diff

from sample_streams import BlockCorruption, Freeze, generate_stream, load_truth


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    path = tmp_path_factory.mktemp("plain") / "plain.mp4"
    truth = generate_stream(path, duration_s=4.0, gop_s=1.0, seed=3, **SMALL)
    return path, truth


@pytest.fixture(scope="module")
def frozen(tmp_path_factory):
    # Two freezes in one stream: exact repeats, and repeats with added noise.
    path = tmp_path_factory.mktemp("frozen") / "frozen.mp4"
    truth = generate_stream(
        path, duration_s=5.0, seed=1, defects=[Freeze(0.8, 1.0), Freeze(2.6, 1.2, noise=4)], **SMALL
    )
    return path, truth


def test_mp4_has_expected_frames_audio_keyframes_and_truth(plain):
    # Given a 4 s, 25 fps stream with a 1 s GOP
    path, truth = plain
    # When it is decoded
    times, lumas = decode_luma(path)
    audio, sr, _ = decode_audio(path)
    keys = [p.time_s for p in demux(path) if p.keyframe]
    # Then it has 100 frames at 40 ms steps, 4 s of 48 kHz audio and a keyframe every second
    assert len(lumas) == 100
    assert np.allclose(np.diff(times), 0.04)
    assert lumas[0].shape == (180, 320)
    assert sr == 48000 and abs(len(audio) / sr - 4.0) < 0.03
    assert keys == pytest.approx([0.0, 1.0, 2.0, 3.0])
    # And the truth JSON beside it says the same and round-trips
    data = json.loads(path.with_name(path.name + ".truth.json").read_text())
    assert data["duration_s"] == 4.0
    assert data["video"] == {"width": 320, "height": 180, "fps": 25.0, "codec": "h264", "gop_s": 1.0}
    assert data["audio"]["sample_rate"] == 48000 and data["audio"]["channels"] == 1
    assert data["defects"] == [] and data["event_period_s"] == 1.0
    assert load_truth(path) == truth


def test_flashes_and_beeps_coincide_at_event_times(plain):
    # Given the clean stream's event times (one per second from ~0.5 s)
    path, truth = plain
    assert truth.events_s == pytest.approx([0.52, 1.52, 2.52, 3.52])
    # When video and audio are decoded
    _, lumas = decode_luma(path)
    audio, sr, t0 = decode_audio(path)
    brightness = np.array([y.mean() for y in lumas])
    # Then each event starts a 2-frame white flash, with a sharp onset
    for t in truth.events_s:
        i = round(t * 25)
        assert brightness[i] > 220 and brightness[i + 1] > 220
        assert brightness[i - 1] < 150 and brightness[i + 2] < 150
    assert (brightness > 220).sum() == 2 * len(truth.events_s)
    # And a beep starts at the same time (±5 ms)
    onsets = beep_onsets(audio, sr, [t - t0 for t in truth.events_s])
    assert all(o is not None for o in onsets)
    assert np.allclose(np.array(onsets) + t0, truth.events_s, atol=0.005)


def test_picture_keeps_changing_without_defects(plain):
    # Given a clean stream; when consecutive frames are compared
    _, lumas = decode_luma(plain[0])
    pairs = itertools.pairwise(lumas)
    # (the two frames of a flash are the same white picture on purpose)
    diffs = [mean_abs_diff(a, b) for a, b in pairs if not (a.mean() > 220 and b.mean() > 220)]
    # Then no two consecutive frames are (near-)identical
    assert len(diffs) == 99 - 4
    assert min(diffs) > 2.0


def test_freeze_repeats_the_picture_and_truth_brackets_it(frozen):
    # Given a stream with a 1 s freeze at 0.8 s (no noise)
    path, truth = frozen
    f = truth.defects_of("freeze")[0]
    assert (f["start_s"], f["end_s"], f["noise"]) == pytest.approx((0.8, 1.8, 0.0))
    _, lumas = decode_luma(path)
    first, resume = round(f["start_s"] * 25), round(f["end_s"] * 25)
    # When the frames inside the freeze are compared with the frozen frame
    inside = [mean_abs_diff(lumas[first], lumas[i]) for i in range(first + 1, resume)]
    # Then they are near-identical (the flash at 1.52 s is not shown), ...
    assert max(inside) < 0.5
    # ... the picture changes right up to the freeze and right at its end
    assert mean_abs_diff(lumas[first - 1], lumas[first]) > 2.0
    assert mean_abs_diff(lumas[resume - 1], lumas[resume]) > 2.0
    # And the audio keeps its beep at 1.52 s although the flash is frozen away
    audio, sr, t0 = decode_audio(path)
    assert beep_onsets(audio, sr, [1.52 - t0])[0] is not None


def test_noisy_freeze_is_close_but_not_bit_identical(frozen):
    # Given the second freeze, with ±4 levels of noise per frame
    path, truth = frozen
    f = truth.defects_of("freeze")[1]
    assert f["noise"] == 4.0
    first, resume = round(f["start_s"] * 25), round(f["end_s"] * 25)
    _, lumas = decode_luma(path)
    # When consecutive frozen frames are compared
    pairs = [(lumas[i], lumas[i + 1]) for i in range(first, resume - 1)]
    # Then they differ a little (the encoder re-codes the noise) but far less than moving content
    assert any(not np.array_equal(a, b) for a, b in pairs)
    assert max(mean_abs_diff(a, b) for a, b in pairs) < 1.5
    assert mean_abs_diff(lumas[resume - 1], lumas[resume]) > 2.0


@pytest.mark.parametrize("ext", ["mp4", "webm"])
def test_same_seed_gives_same_bytes_and_other_seed_differs(tmp_path, ext):
    # Given two encodes with the same seed and defects, and one with another seed
    kw = dict(duration_s=1.5, defects=[Freeze(0.3, 0.4, 2), BlockCorruption(1.0)], **SMALL)
    a, b, c = (tmp_path / f"{name}.{ext}" for name in "abc")
    ta = generate_stream(a, seed=7, **kw)
    tb = generate_stream(b, seed=7, **kw)
    generate_stream(c, seed=8, **kw)
    # Then the same seed reproduces stream bytes and truth; another seed changes the noise
    assert a.read_bytes() == b.read_bytes()
    assert ta == tb
    assert a.read_bytes() != c.read_bytes()


@pytest.mark.parametrize(
    ("name", "codec", "audio_codec"),
    [
        ("s.ts", "h264", "aac"),
        ("s.webm", "vp8", "opus"),
        ("s9.webm", "vp9", "opus"),
        ("m.mp4", "mpeg4", "aac"),
        ("h.mp4", "hevc", "aac"),
    ],
)
def test_other_containers_and_codecs_decode(tmp_path, name, codec, audio_codec):
    # Given a short stream in another container/codec
    path = tmp_path / name
    truth = generate_stream(path, duration_s=2.0, video_codec=codec, gop_s=1.0, **SMALL)
    # When decoded
    times, lumas = decode_luma(path)
    audio, sr, _ = decode_audio(path)
    # Then all frames and the audio are there, keyframes follow the fixed GOP (flashes are no
    # scene cuts), and the truth names the codecs
    packets = demux(path)
    assert [p.time_s - packets[0].time_s for p in packets if p.keyframe] == pytest.approx([0.0, 1.0])
    assert len(lumas) == 50
    assert times[-1] == pytest.approx(1.96, abs=1e-3)
    assert abs(len(audio) / sr - 2.0) < 0.05
    assert (truth.video.codec, truth.audio.codec) == (codec, audio_codec)
    assert np.array([y.mean() for y in lumas]).max() > 220  # flash survives the codec


def test_no_audio_stream(tmp_path):
    # Given audio=False; then the file has only video and the truth says audio is null
    path = tmp_path / "v.mp4"
    truth = generate_stream(path, duration_s=1.0, audio=False, **SMALL)
    assert truth.audio is None and load_truth(path).audio is None
    with pytest.raises(IndexError):
        decode_audio(path)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"defects": [Freeze(9.0, 1.0)]}, "not before the end"),
        ({"defects": [Freeze(0.5, 0.02)]}, "repeats no frame"),
        ({"defects": [Freeze(0.2, 1.0), Freeze(0.6, 0.5)]}, "overlaps"),
        ({"video_codec": "vp8"}, "not supported in .mp4"),
        ({"width": 321}, "even"),
    ],
)
def test_bad_parameters_raise_value_error(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_stream(tmp_path / "x.mp4", duration_s=2.0, **{**SMALL, **kwargs})
