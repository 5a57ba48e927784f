"""Request counters → billing classes. S3 bills PUT/COPY/POST/LIST at one rate and GET/HEAD at another
(a HEAD is shown apart, billed as a GET); SQS bills every API action (per 64 KiB chunk of payload; our
messages are far smaller); SNS bills each publish."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

# S3 operation -> billing class (the cost model's measured counts use the same table).
S3_CLASSES = {"PutObject": "put", "CopyObject": "put", "PostObject": "put", "CreateMultipartUpload": "put",
              "UploadPart": "put", "CompleteMultipartUpload": "put",
              "GetObject": "get", "HeadObject": "head",
              "ListObjectsV2": "list", "ListObjects": "list", "ListBuckets": "list",
              "ListMultipartUploads": "list", "ListParts": "list", "DeleteObject": "delete"}


def s3_by_class(by_source: Mapping[str, Mapping[str, int]]) -> dict[str, object]:
    """{put, get, list, head, [others], total, by_source} from S3 operations counted per source."""
    by_class: Counter[str] = Counter()
    for counts in by_source.values():
        for operation, n in counts.items():
            by_class[S3_CLASSES.get(operation, operation.lower())] += n
    s3: dict[str, object] = {"put": by_class.pop("put", 0), "get": by_class.pop("get", 0),
                             "list": by_class.pop("list", 0), "head": by_class.pop("head", 0),
                             **dict(by_class)}
    s3["total"] = sum(v for v in s3.values() if isinstance(v, int))
    s3["by_source"] = {source: dict(sorted(c.items())) for source, c in sorted(by_source.items()) if c}
    return s3


def merged(counters: list[Mapping[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for counts in counters:
        total.update(counts)
    return dict(sorted(total.items()))
