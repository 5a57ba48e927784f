"""inject_defects: the same defects in real clips (media/chaplin.mp4, media/bigbuckbunny.mp4)."""

from __future__ import annotations

import av
import numpy as np
import pytest
from ss_helpers import BIGBUCKBUNNY, CHAPLIN, decode_audio, decode_luma, demux, mean_abs_diff

from sample_streams import AvOffset, BlockCorruption, Freeze, inject_defects, load_truth

FREEZE = Freeze(1.0, 0.8)


@pytest.fixture(scope="module")
def chaplin_pair(tmp_path_factory):
    # Reference: only the freeze. Damaged: the same freeze plus corruption and an audio lag, so the
    # video encoder sees the same pictures in both and the audio can be compared sample by sample.
    d = tmp_path_factory.mktemp("inject")
    ref, bad = d / "ref.mp4", d / "bad.mp4"
    inject_defects(CHAPLIN, ref, [FREEZE], duration_s=4.0)
    truth = inject_defects(CHAPLIN, bad, [FREEZE, BlockCorruption(2.3), AvOffset(2.9, 70)], duration_s=4.0)
    return ref, bad, truth


def _lag_ms(ref: np.ndarray, x: np.ndarray, sr: int, at_s: float, max_ms: float = 150) -> float:
    """Delay of ``x`` against ``ref`` around ``at_s``, by cross-correlation (FFT, ~1 ms resolution)."""
    m = int(max_ms / 1000 * sr)
    a = ref[int(at_s * sr) : int((at_s + 0.8) * sr)]
    b = x[int(at_s * sr) : int((at_s + 0.8) * sr) + m]
    n = 1 << int(np.ceil(np.log2(len(a) + len(b))))
    corr = np.fft.irfft(np.fft.rfft(b, n) * np.conj(np.fft.rfft(a, n)), n)[: m + 1]
    return float(np.argmax(corr)) / sr * 1000


def test_injected_chaplin_keeps_format_and_truth(chaplin_pair):
    # Given 4 s of chaplin.mp4 re-encoded with defects
    _, bad, truth = chaplin_pair
    # Then the output keeps size and frame rate, audio becomes 44.1 kHz stereo AAC, and the truth matches
    _, lumas = decode_luma(bad)
    assert len(lumas) == 100 and lumas[0].shape == (360, 640)
    with av.open(str(bad)) as c:
        a = c.streams.audio[0].codec_context
        assert (a.name, a.sample_rate, a.channels) == ("aac", 44100, 2)
    assert truth.source.endswith("chaplin.mp4") and truth.events_s == [] and truth.event_period_s is None
    assert [d["type"] for d in truth.defects] == ["freeze", "block_corruption", "av_sync"]
    assert load_truth(bad) == truth


def test_injected_freeze_repeats_a_decoded_frame(chaplin_pair):
    # Given the freeze from 1.0 s to 1.8 s
    _, bad, truth = chaplin_pair
    f = truth.defects_of("freeze")[0]
    assert (f["start_s"], f["end_s"]) == pytest.approx((1.0, 1.8))
    _, lumas = decode_luma(bad)
    first, resume = 25, 45
    # Then every frame inside is near-identical to the frozen one, while the film moves around it
    # (chaplin.mp4 itself repeats every third frame, so "moving" is judged over three frames)
    assert max(mean_abs_diff(lumas[first], lumas[i]) for i in range(first + 1, resume)) < 0.5
    assert mean_abs_diff(lumas[first - 3], lumas[first]) > 1.0
    assert mean_abs_diff(lumas[resume - 1], lumas[resume]) > 1.0


def test_injected_corruption_damages_chosen_packets_until_keyframe(chaplin_pair):
    # Given the reference and damaged encodes
    ref, bad, truth = chaplin_pair
    c = truth.defects_of("block_corruption")[0]
    assert c["start_s"] == pytest.approx(2.32) and c["end_s"] == pytest.approx(4.0)
    a, b = demux(ref), demux(bad)
    # Then exactly the chosen packets differ
    changed = [pa.time_s for pa, pb in zip(a, b, strict=True) if pa.data != pb.data]
    assert changed == pytest.approx(c["packet_times_s"])
    # And decoding shows damage from the first damaged frame to the end (next keyframe would be 4 s)
    times, ya = decode_luma(ref)
    _, yb = decode_luma(bad)
    for t, x, y in zip(times, ya, yb, strict=True):
        if t < c["start_s"] - 1e-6:
            assert np.array_equal(x, y)
        else:
            assert np.abs(x - y).max() > 30 and mean_abs_diff(x, y) > 0.5


def test_injected_av_offset_delays_audio_content(chaplin_pair):
    # Given a 70 ms audio lag from 2.9 s
    ref, bad, _ = chaplin_pair
    x, sr, _ = decode_audio(ref)
    y, _, _ = decode_audio(bad)
    # Then the audio matches the reference before the shift and lags it by 70 ms (±5 ms) after
    assert _lag_ms(x, y, sr, 1.5) == pytest.approx(0, abs=5)
    assert _lag_ms(x, y, sr, 3.0) == pytest.approx(70, abs=5)


def test_inject_bigbuckbunny_downmixes_to_stereo(tmp_path):
    # Given 2 s of the 720p clip with 5.1 audio and a noisy freeze
    out = tmp_path / "bbb.mp4"
    truth = inject_defects(BIGBUCKBUNNY, out, [Freeze(0.5, 0.6, noise=2)], duration_s=2.0)
    # Then the output is 720p, 50 frames, with 48 kHz stereo audio
    _, lumas = decode_luma(out)
    assert len(lumas) == 50 and lumas[0].shape == (720, 1280)
    assert (truth.audio.sample_rate, truth.audio.channels) == (48000, 2)
    x, sr, _ = decode_audio(out)
    assert abs(len(x) / sr - 2.0) < 0.05


def test_inject_rejects_missing_source(tmp_path):
    with pytest.raises(FileNotFoundError):
        inject_defects(tmp_path / "nope.mp4", tmp_path / "out.mp4", [])


def test_inject_stereo_clip_into_webm_keeps_both_channels(tmp_path):
    # Given chaplin (44.1 kHz stereo AAC) re-encoded as WebM for 2.53 s: Opus at 48 kHz takes interleaved
    # stereo only (planar failed to open the encoder and then crashed the process on close)
    out = tmp_path / "chaplin.webm"
    truth = inject_defects(CHAPLIN, out, [], duration_s=2.53)
    # Then the audio is 48 kHz stereo Opus, as long as the video, and its channels are the source's
    # (chaplin's two channels are not identical, so swapped or interleaved-as-planar samples would differ)
    assert (truth.audio.sample_rate, truth.audio.channels, truth.audio.codec) == (48000, 2, "opus")
    with av.open(str(out)) as c:
        samples = np.concatenate([f.to_ndarray() for f in c.decode(audio=0)], axis=1)
    with av.open(str(CHAPLIN)) as c:
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=48000)
        chunks = [r.to_ndarray() for f in c.decode(audio=0) for r in resampler.resample(f)]
    source = np.concatenate(chunks, axis=1)
    assert samples.shape[0] == 2 and abs(samples.shape[1] / 48000 - 2.52) < 0.03
    n = 48000  # the first second, past the codec's priming
    for channel in (0, 1):
        a, b = samples[channel, 12000:n], source[channel, 12000:n]
        lag = int(np.argmax(np.correlate(a, b[400:-400], "valid"))) - 400
        corr = np.corrcoef(a[400 + lag : len(a) - 400 + lag], b[400:-400])[0, 1]
        assert corr > 0.9, (channel, lag, corr)
