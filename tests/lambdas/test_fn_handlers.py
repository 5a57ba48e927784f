"""The Lambda handlers under moto: frames through S3, detectors on what they read back, same answers as the
monolith, corrective actions recorded, S3 requests counted."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fn_helpers import SOURCE_BUCKET
from lambda_context import LambdaContext

from infra.config import DETECTORS
from lambdas.converter.handler import handler as converter_handler
from lambdas.converter.service import StreamUnreadable
from lambdas.corrective_action.handler import handler as corrective_handler
from lambdas.detectors import handlers as detector_handlers
from lambdas.shared.keys import InvalidRequest
from lambdas.shared.results import action_key
from monolith.pipeline import analyze, sort_defects

MEDIA = Path(__file__).resolve().parents[2] / "media"
DETECTOR_HANDLERS = {
    "freeze": detector_handlers.freeze_handler,
    "block_corruption": detector_handlers.block_corruption_handler,
    "av_sync": detector_handlers.av_sync_handler,
}


def convert_event(second: int, key: str = "streams/frozen.mp4") -> dict[str, Any]:
    return {"bucket": SOURCE_BUCKET, "key": key, "stream_id": "cam-1", "second": second,
            "execution": "exec-1", "execution_id": "arn:aws:states:::execution:sm:exec-1",
            "started_at": "2026-11-26T12:00:00.000Z"}


def upload(s3: Any, path: Path, key: str = "streams/frozen.mp4") -> None:
    s3.upload_file(str(path), SOURCE_BUCKET, key)


def list_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))


def test_converter_writes_one_object_per_frame_plus_the_audio(
    s3: Any, frozen_stream: Path, context: LambdaContext
) -> None:
    # Given a stream in the source bucket
    upload(s3, frozen_stream)
    # When the converter handles second 1
    result = converter_handler(convert_event(1), context)
    # Then the temporary bucket holds one object per frame of that second plus one audio object
    keys = list_keys(s3, "frames-bucket", "frames/cam-1/exec-1/000001/")
    assert result["frame_count"] == 25
    assert keys == sorted([*result["frames"], result["audio"]])
    assert len(keys) == 25 + 1
    assert result["audio"].endswith("/000001/audio.bin")
    # And only keys and small metadata come back (far below the 256 KiB payload limit)
    assert len(json.dumps(result)) < 8 * 1024
    assert result["is_last"] is False
    assert result["result_key"] == "results/date=2026-11-26/stream=cam-1/second=000001.json"
    # And its S3 requests are counted: one HEAD, one GET of the stream, one PUT per object
    assert result["s3_requests"] == {"GetObject": 1, "HeadObject": 1, "PutObject": 26}


def test_converter_reuses_the_downloaded_stream_while_warm(
    s3: Any, frozen_stream: Path, context: LambdaContext
) -> None:
    upload(s3, frozen_stream)
    converter_handler(convert_event(0), context)
    # When the same environment converts the next second
    result = converter_handler(convert_event(4), context)
    # Then it only checks the ETag (HEAD), without downloading again; the last second says so
    assert result["s3_requests"] == {"HeadObject": 1, "PutObject": result["frame_count"] + 1}
    assert result["is_last"] is True


@pytest.mark.parametrize("body", [b"", b"this is not a video" * 100])
def test_unreadable_stream_raises_the_error_the_workflow_catches(
    s3: Any, context: LambdaContext, body: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    s3.put_object(Bucket=SOURCE_BUCKET, Key="streams/bad.mp4", Body=body)
    with pytest.raises(StreamUnreadable, match=re.escape("s3://source-bucket/streams/bad.mp4")):
        converter_handler(convert_event(0, key="streams/bad.mp4"), context)
    # And the rejection is counted in the function's metrics (CloudWatch embedded metric format on stdout)
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [m.get("StreamsRejected") for m in emitted] == [[1.0]]
    # And a missing object is unreadable too
    with pytest.raises(StreamUnreadable, match="cannot be read from S3"):
        converter_handler(convert_event(0, key="streams/missing.mp4"), context)


def run_lambda_path(
    s3: Any, path: Path, context: LambdaContext, detectors: list[str], key: str = "streams/frozen.mp4"
) -> list[dict[str, Any]]:
    """What the state machine does, second by second: convert, run each detector with the carried
    states (the list of {"detector", "state"} entries), gather the defects."""
    upload(s3, path, key)
    defects: list[dict[str, Any]] = []
    states: list[dict[str, Any]] = []
    second, is_last = 0, False
    while not is_last:
        assert second < 100, "the converter never said which second was the last"
        converted = converter_handler(convert_event(second, key), context)
        carry = []
        for name in detectors:
            event = {"frames": converted["frames"], "audio": converted["audio"], "second": second,
                     "is_last": converted["is_last"], "states": states, "stream_id": "cam-1"}
            out = DETECTOR_HANDLERS[name](json.loads(json.dumps(event)), context)
            out = json.loads(json.dumps(out))  # what Step Functions would carry: JSON only
            defects += out["defects"]
            carry += out["carry"]
            assert out["usage"][0]["s3_requests"]["GetObject"] >= 1
        states, is_last, second = carry, converted["is_last"], second + 1
    return sort_defects(defects)


def test_lambda_path_finds_the_same_defects_as_the_monolith(
    s3: Any, frozen_stream: Path, context: LambdaContext
) -> None:
    # Every detector the stack deploys runs here: a detector that does not import fails the test
    assert set(DETECTOR_HANDLERS) == set(DETECTORS)
    detectors = list(DETECTORS)
    # Given the monolith's report on the stream
    expected = analyze(frozen_stream, detectors=detectors)["defects"]
    assert any(d["type"] == "freeze" for d in expected)
    # When the Lambda path runs it second by second through S3
    found = run_lambda_path(s3, frozen_stream, context, detectors)
    # Then the defects are the same
    assert found == expected


def test_lambda_path_reads_a_live_webm_to_its_end_with_the_monolith_defects(
    s3: Any, frozen_stream: Path, context: LambdaContext, tmp_path: Path
) -> None:
    from sample_streams.live import write_live

    # Given the stream remuxed as a live encoder writes WebM/Matroska: no duration, no seek index
    live = write_live(frozen_stream, tmp_path / "frozen-live.mkv")
    key = "streams/frozen-live.mkv"
    detectors = list(DETECTORS)
    expected = analyze(live, detectors=detectors)["defects"]
    assert any(d["type"] == "freeze" for d in expected)
    # When the Lambda path runs it until the converter says a second is the last
    found = run_lambda_path(s3, live, context, detectors, key=key)
    # Then it finds the monolith's defects, and the converter does not claim a length it cannot know
    assert found == expected
    tail = converter_handler(convert_event(4, key), context)
    assert tail["is_last"] is True and tail["seconds"] is None
    # And a second after the last is refused as a bad request (the workflow's InvalidRequest), not a crash
    with pytest.raises(InvalidRequest, match="past the end"):
        converter_handler(convert_event(5, key), context)


def test_detectors_read_only_what_they_need(s3: Any, frozen_stream: Path, context: LambdaContext) -> None:
    upload(s3, frozen_stream)
    converted = converter_handler(convert_event(0), context)
    event = {"frames": converted["frames"], "audio": converted["audio"], "second": 0, "is_last": False,
             "states": []}
    frames_only = detector_handlers.freeze_handler(dict(event), context)
    assert frames_only["usage"] == [{"function": "freeze", "s3_requests": {"GetObject": 25}}]
    assert frames_only["carry"][0]["detector"] == "freeze"


def sns_event(message: dict[str, Any], message_id: str = "m-1") -> dict[str, Any]:
    return {"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": "arn:sub",
                         "Sns": {"Type": "Notification", "MessageId": message_id, "TopicArn": "arn:topic",
                                 "Subject": None, "Message": json.dumps(message),
                                 "Timestamp": "2026-11-26T12:00:00.000Z", "SignatureVersion": "1",
                                 "Signature": "", "SigningCertUrl": "", "UnsubscribeUrl": "",
                                 "MessageAttributes": {}}}]}


@pytest.mark.parametrize("defect_type, action", [
    ("freeze", "restart encoder"), ("block_corruption", "switch to backup"), ("av_sync", "resync audio")])
def test_corrective_action_is_recorded_once_per_defect_event(
    s3: Any, context: LambdaContext, defect_type: str, action: str
) -> None:
    defect = {"type": defect_type, "start_s": 1.2, "end_s": 3.7, "confidence": 0.9}
    message = {"stream_id": "cam-1", "source": "s3://b/k", "second": 3, "execution_id": "e", "defect": defect}
    # When the same defect event is delivered twice (SNS delivers at least once)
    corrective_handler(sns_event(message, "m-1"), context)
    out = corrective_handler(sns_event(message, "m-2"), context)
    # Then one record exists, under a key fixed by stream, type and start, naming the action
    keys = list_keys(s3, "results-bucket", "actions/")
    assert keys == [action_key("cam-1", defect)] == [f"actions/cam-1/{defect_type}-0000001200.json"]
    record = json.loads(s3.get_object(Bucket="results-bucket", Key=keys[0])["Body"].read())
    assert record["action"] == action and record["defect"] == defect
    assert out["s3_requests"] == {"PutObject": 1}


@pytest.mark.parametrize("converter_mb, detector_mb, refused_by", [
    ("128", "1024", "converter"), ("2048", "128", "detector"), ("256", "1024", None)])
def test_converter_refuses_a_stream_whose_second_cannot_fit_in_memory(
    s3: Any, context: LambdaContext, monkeypatch: pytest.MonkeyPatch,
    converter_mb: str, detector_mb: str, refused_by: str | None,
) -> None:
    # Given a real 1920x1080 25 fps clip: a second holds 1920 x 1080 x 25 pixels x 1.5 bytes = 77,760,000 B
    # = 74.2 MiB of pictures, about 174 MB with the 100 MB runtime
    upload(s3, MEDIA / "smpte-2997.mp4", "streams/smpte.mp4")
    # And functions with the given memory sizes (Lambda sets the first, the stack the second)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", converter_mb)
    monkeypatch.setenv("DETECTOR_MEMORY_MB", detector_mb)
    event = convert_event(0, key="streams/smpte.mp4")
    if refused_by:
        # Then a function too small for it refuses the stream before decoding, saying why
        with pytest.raises(StreamUnreadable) as refused:
            converter_handler(event, context)
        assert "1920x1080 at 25 fps needs about 174 MB" in str(refused.value)
        assert f"more than the {refused_by}'s 128 MB of memory" in str(refused.value)
        assert not list_keys(s3, "frames-bucket", "frames/")
    else:
        # Then a large enough one converts it
        assert converter_handler(event, context)["frame_count"] == 25
