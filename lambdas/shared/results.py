"""The results record: one JSON line per analysed stream-second, and the corrective-action record.

The state machine writes the results record itself (Record state, S3 PutObject); this module holds the
key layout and the shape it writes, so that the stack, the tests and the readers agree. Defects inside
have the shape of `monolith analyze --json`.

    results/date=YYYY-MM-DD/stream=<stream_id>/second=<n:06d>.json
    {"stream_id": ..., "source": "s3://bucket/key", "second": n, "defects": [...],
     "s3_requests": {"converter": {"GetObject": 1, ...}, "detectors": [{"function": "freeze", ...}]}}

The key is fixed per (start date of the stream's first execution, stream, second), so a retried Record
overwrites instead of duplicating. The after (`monolith serve`) writes the same records, several seconds
per object: the key names the batch's first second and the object holds one line per second.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS_PREFIX = "results/"
ACTIONS_PREFIX = "actions/"


def result_key(started_at: str, stream_id: str, second: int, part: str = "") -> str:
    """`started_at` is an ISO timestamp (the execution's start); its date is the partition. `part` tells
    writers of the same second apart (the after's copies that run different detectors):
    `second=<n>.<part>.json`."""
    suffix = f".{part}" if part else ""
    return f"{RESULTS_PREFIX}date={started_at[:10]}/stream={stream_id}/second={second:06d}{suffix}.json"


def make_record(
    stream_id: str, source: str, second: int, defects: list[dict[str, Any]], s3_requests: dict[str, Any]
) -> dict[str, Any]:
    """The record as the Record state writes it (used by tests and local tools)."""
    return {"stream_id": stream_id, "source": source, "second": second, "defects": defects,
            "s3_requests": s3_requests}


def action_key(stream_id: str, defect: dict[str, Any]) -> str:
    """One object per defect event: stream, type and start identify it, so redelivery overwrites."""
    start_ms = round(float(defect["start_s"]) * 1000)
    return f"{ACTIONS_PREFIX}{stream_id}/{defect['type']}-{start_ms:010d}.json"


# DuckDB reads the partitioned JSON lines directly: the key's date= and stream= become columns.
DEFECTS_SQL = """
WITH seconds AS (
    SELECT stream_id, date, second, unnest(defects) AS defect
    FROM read_json('{glob}', format = 'newline_delimited', hive_partitioning = true,
                   columns = {{stream_id: 'VARCHAR', source: 'VARCHAR', second: 'INTEGER',
                              defects: 'JSON[]', s3_requests: 'JSON'}})
)
SELECT stream_id, CAST(date AS VARCHAR) AS date, second, defect ->> 'type' AS type,
       CAST(defect ->> 'start_s' AS DOUBLE) AS start_s, CAST(defect ->> 'end_s' AS DOUBLE) AS end_s,
       CAST(defect ->> 'confidence' AS DOUBLE) AS confidence, CAST(defect AS VARCHAR) AS defect_json
FROM seconds
ORDER BY stream_id, start_s, type, end_s
"""


def query_defects(root: str | Path) -> list[dict[str, Any]]:
    """Every defect recorded under `root` (a local copy of the results bucket, or an s3:// URL that
    DuckDB's httpfs can read), one row per defect with its stream and partition date."""
    import duckdb  # analysis-side dependency only; the Lambdas never import it

    glob = f"{str(root).rstrip('/')}/{RESULTS_PREFIX}date=*/stream=*/second=*.json"
    with duckdb.connect() as con:
        cursor = con.execute(DEFECTS_SQL.format(glob=glob))
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def read_records(root: str | Path) -> list[dict[str, Any]]:
    """All second records under a local results root, in (stream, second) order — no DuckDB needed."""
    records = [json.loads(line) for path in Path(root, RESULTS_PREFIX).rglob("second=*.json")
               for line in path.read_text().splitlines() if line.strip()]
    return sorted(records, key=lambda r: (r["stream_id"], r["second"]))
