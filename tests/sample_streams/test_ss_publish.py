"""`sample_streams publish`: a stream cut into MPEG-TS segments on keyframes, PUT into S3 (moto) with a
rewritten media playlist, paced, with a packager's faults on request."""

from __future__ import annotations

import io
from pathlib import Path

import av
import boto3
import m3u8
import pytest
from moto import mock_aws

from sample_streams import BlockCorruption, Freeze, generate_stream
from sample_streams.cli import main
from sample_streams.publish import PublishError, PublishFaults, cut_segments, publish, write_published

BUCKET = "streams"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 7 s, a keyframe every 1.6 s: segments of >= 2 s start at 0, 3.2, 6.4 (first keyframe 2 s on or later).
    path = tmp_path_factory.mktemp("publish") / "sample.mp4"
    generate_stream(path, duration_s=7, width=320, height=180,
                    defects=(Freeze(1.0, 2.5), BlockCorruption(5.0)), gop_s=1.6, seed=3)
    return path


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


class FakeClock:
    """Pacing without waiting: sleep() moves the clock."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_segments_start_on_keyframes_and_decode_alone(sample: Path) -> None:
    segments = cut_segments(sample, 2.0)
    assert [s.start_s for s in segments] == pytest.approx([0.0, 3.2, 6.4])
    # The last lasts until its last sound ends, as a TS reader decodes it: within one AAC frame (21.3 ms)
    assert [s.duration_s for s in segments] == pytest.approx([3.2, 3.2, 0.6], abs=0.0214)
    for segment in segments:
        assert segment.data[0] == 0x47 and len(segment.data) % 188 == 0  # MPEG-TS packets
        with av.open(io.BytesIO(segment.data)) as ts:
            first = next(ts.decode(video=0))
            assert first.key_frame
            assert float(first.time) - ts.start_time / av.time_base < 0.05


def test_publish_writes_segments_then_playlist_paced_in_real_time(sample: Path, s3) -> None:
    clock = FakeClock()
    playlists: list[m3u8.M3U8] = []

    def seen(_segment) -> None:
        text = s3.get_object(Bucket=BUCKET, Key="live/cam1/index.m3u8")["Body"].read().decode()
        playlists.append(m3u8.loads(text))

    report = publish(sample, s3=s3, bucket=BUCKET, stream_id="cam1", segment_seconds=2.0, on_segment=seen,
                     sleep=clock.sleep, clock=clock.time)
    # Segment k lands when its last picture is produced: 3.2 s, 6.4 s and 7 s after the start.
    assert [s.landed_at - 1000.0 for s in report.segments] == pytest.approx([3.2, 6.4, 7.0], abs=0.0214)
    assert [len(p.segments) for p in playlists] == [1, 2, 3]
    assert [p.is_endlist for p in playlists] == [False, False, True]
    final = playlists[-1]
    assert [s.uri for s in final.segments] == ["segment-00000.ts", "segment-00001.ts", "segment-00002.ts"]
    assert [s.duration for s in final.segments] == pytest.approx([3.2, 3.2, 0.6], abs=0.0214)
    starts = [s.program_date_time.timestamp() - 1000.0 for s in final.segments]
    assert starts == pytest.approx([0.0, 3.2, 6.4], abs=1e-3)
    assert report.landed_at(4) == pytest.approx(1006.4)  # second 4 lies in the second segment
    assert report.landed_at(6) == pytest.approx(1007.0, abs=0.0214)


def test_faults(sample: Path, s3) -> None:
    clock = FakeClock()
    faults = PublishFaults(die_after=2, stall_s={1: 10.0}, late_s={0: 4.5}, damaged=frozenset({1}))
    report = publish(sample, s3=s3, bucket=BUCKET, stream_id="cam2", speed=2.0, faults=faults,
                     sleep=clock.sleep, clock=clock.time)
    playlist = m3u8.loads(s3.get_object(Bucket=BUCKET, Key="live/cam2/index.m3u8")["Body"].read().decode())
    assert not playlist.is_endlist and len(playlist.segments) == 2  # died after 2 segments, no ENDLIST
    first, second = report.segments
    # At twice real time segment 0 is listed at 1.6 s, its object lands 4.5 s later; segment 1 after a
    # 10 s stall at 10 + 6.4 / 2 = 13.2 s.
    assert first.listed_at - 1000.0 == pytest.approx(1.6) and first.landed_at - 1000.0 == pytest.approx(6.1)
    assert second.landed_at - 1000.0 == pytest.approx(13.2)
    clean = cut_segments(sample, 2.0)[1].data
    stored = s3.get_object(Bucket=BUCKET, Key=second.key)["Body"].read()
    assert len(stored) == len(clean) and stored != clean
    assert all(stored[i:i + 4] == clean[i:i + 4] for i in range(0, len(clean), 188))  # headers intact


def test_missing_segment_is_listed_but_absent(sample: Path, s3, tmp_path: Path) -> None:
    report = publish(sample, s3=s3, bucket=BUCKET, stream_id="cam3", speed=float("inf"),
                     faults=PublishFaults(missing=frozenset({1})))
    playlist = m3u8.loads(s3.get_object(Bucket=BUCKET, Key="live/cam3/index.m3u8")["Body"].read().decode())
    assert playlist.is_endlist and len(playlist.segments) == 3
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=BUCKET, Key="live/cam3/segment-00001.ts")
    published = write_published(report, s3, tmp_path / "published.ts")
    segments = cut_segments(sample, 2.0)
    assert published.read_bytes() == segments[0].data + segments[2].data


def test_codecs_ts_cannot_carry_are_refused(tmp_path: Path) -> None:
    webm = tmp_path / "s.webm"
    generate_stream(webm, duration_s=1, width=160, height=90, defects=(), seed=1)
    with pytest.raises(PublishError, match="MPEG-TS cannot carry vp"):
        cut_segments(webm, 2.0)


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "not-media.mp4"
    bad.write_text("hello")
    assert main(["publish", str(bad), "--bucket", BUCKET, "--stream-id", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sample_streams: error: ") and "not a readable media file" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["publish", str(bad), "--bucket", BUCKET, "--stream-id", "x", "--stall", "1"])
    assert exit_info.value.code == 2


def test_published_stream_keeps_the_defects(sample: Path, s3, tmp_path: Path) -> None:
    """Given a stream with a freeze, when it is published, the concatenated segments decode to the same
    pictures: monolith analyze finds the same freeze on both."""
    from monolith.pipeline import analyze

    report = publish(sample, s3=s3, bucket=BUCKET, stream_id="cam4", speed=float("inf"),
                     faults=PublishFaults())
    published = write_published(report, s3, tmp_path / "published.ts")
    original = [(d["type"], d["start_s"]) for d in analyze(sample)["defects"]]
    live = [(d["type"], d["start_s"]) for d in analyze(published)["defects"]]
    assert original == live and ("freeze", 1.0) in original
