"""The Lambda path in one process, without AWS: what the workflow computes for a stream, to compare with
the monolith's report.

The workflow's loop (statemachine/stream_quality.asl.json) is run here with the functions' own code:
`Convert` is the converter's `convert` (download the stream, decode second n alone by random access, PUT
each frame and the audio as objects), `Detect` calls each detector function's `analyze_second` (GET what
it reads, run the detector with the state it is handed), and `Evaluate` gathers every branch's defects and
carried state. Everything that travels between those steps goes through JSON, as a Step Functions payload
does, and the loop ends on the converter's `is_last`, as the `Last?` choice does. S3 is a dictionary
(`LocalS3`); Powertools and the request counting around the handlers are left out: they do not touch the
defects.
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
from pathlib import Path
from typing import Any

from lambdas.converter.live_source import LiveSegmentCache
from lambdas.converter.service import ConvertRequest, StreamCache, convert
from lambdas.detectors.handlers import analyze_second
from monolith.pipeline import select_detectors, sort_defects

SOURCE_BUCKET = "streams"
FRAMES_BUCKET = "frames"
STREAM_ID = "local"
EXECUTION = "local"
STARTED_AT = "2026-01-01T00:00:00+00:00"


class LocalS3:
    """The S3 calls the converter and the detector functions make (HEAD, GET, PUT), on a dictionary."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.etags: dict[tuple[str, str], str] = {}

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:
        self.objects[Bucket, Key] = bytes(Body)
        # The converter keys its stream cache by ETag: the content's MD5, as S3's is for a simple upload.
        self.etags[Bucket, Key] = f'"{hashlib.md5(Body, usedforsecurity=False).hexdigest()}"'
        return {}

    def head_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        return {"ETag": self.etags[Bucket, Key]}

    def get_object(self, *, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        return {"Body": io.BytesIO(self.objects[Bucket, Key])}

    def delete_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        self.objects.pop((Bucket, Key), None)
        self.etags.pop((Bucket, Key), None)
        return {}


def _through_json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def analyze_lambda_path(path: str | Path, *, detectors: list[str] | None = None) -> list[dict[str, Any]]:
    """The defects the workflow would record for the stream at `path`, sorted as the monolith sorts them.
    Raises what the converter raises for a stream it refuses (StreamUnreadable, InvalidRequest)."""
    path = Path(path)
    s3 = LocalS3()
    key = f"streams/{path.name}"
    s3.put_object(Bucket=SOURCE_BUCKET, Key=key, Body=path.read_bytes())
    return lambda_path_defects(s3, SOURCE_BUCKET, key, detectors=detectors)


def lambda_path_defects(
    s3: Any, bucket: str, key: str, *, detectors: list[str] | None = None
) -> list[dict[str, Any]]:
    """The workflow's loop on the stream at s3://bucket/key (a file, or a live stream's playlist that has
    ended) through `s3` (LocalS3, or a boto3 client)."""
    names = list(select_detectors(detectors))
    found: list[dict[str, Any]] = []
    states: list[dict[str, Any]] = []  # the Evaluate state's `states`: every detector's carried state
    with tempfile.TemporaryDirectory(prefix="lambda-path-") as cache_dir:
        live = LiveSegmentCache(Path(cache_dir, "live"))
        cache = StreamCache(Path(cache_dir, "files"))
        second = 0
        while True:
            request = ConvertRequest.from_event({
                "bucket": bucket, "key": key, "stream_id": STREAM_ID, "second": second,
                "execution": EXECUTION, "started_at": STARTED_AT,
            })
            converted = _through_json(convert(request, s3=s3, temp_bucket=FRAMES_BUCKET, cache=cache,
                                              live=live))
            event = {"frames": converted["frames"], "audio": converted["audio"], "second": second,
                     "is_last": converted["is_last"], "states": states}
            branches = [
                _through_json(analyze_second(name, _through_json(event), s3=s3, bucket=FRAMES_BUCKET))
                for name in names
            ]
            found += [defect for branch in branches for defect in branch["defects"]]
            states = [carried for branch in branches for carried in branch["carry"]]
            # The frames bucket's lifecycle rule removes a second's objects later; here, at once.
            for done in [*converted["frames"], converted["audio"]]:
                if done:
                    s3.delete_object(Bucket=FRAMES_BUCKET, Key=done)
            if converted["is_last"]:
                return sort_defects(found)
            second += 1


def compare_defects(monolith: list[dict[str, Any]], lambda_path: list[dict[str, Any]]) -> dict[str, Any]:
    """Exact comparison of two defect lists (after JSON, as both are reported): what only one path found."""
    ours = [json.dumps(d, sort_keys=True) for d in _through_json(monolith)]
    theirs = [json.dumps(d, sort_keys=True) for d in _through_json(lambda_path)]
    only_monolith, rest = [], list(theirs)
    for text in ours:
        if text in rest:
            rest.remove(text)
        else:
            only_monolith.append(json.loads(text))
    return {
        "equal": not only_monolith and not rest,
        "only_monolith": only_monolith,
        "only_lambda_path": [json.loads(text) for text in rest],
    }
