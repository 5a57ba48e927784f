"""The live starter's execution name (moto S3): fixed by the stream and its event's first
EXT-X-PROGRAM-DATE-TIME, which it reads through the one playlist reader (lambdas/shared/live.py)."""

from __future__ import annotations

from typing import Any

from fn_helpers import SOURCE_BUCKET

from lambdas.live_starter.service import execution_name, first_programme_time

KEY = "live/cam-7/index.m3u8"


def _playlist(segments: int, *, start: str | None = "2026-12-07T15:00:00.000+00:00", ended: bool = False
              ) -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2", "#EXT-X-PLAYLIST-TYPE:EVENT"]
    for index in range(segments):
        if start is not None:  # every segment carries its own, two seconds apart
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:2026-12-07T15:00:{2 * index:02d}.000+00:00"
                         if index else f"#EXT-X-PROGRAM-DATE-TIME:{start}")
        lines += ["#EXTINF:2.000,", f"segment-{index:05d}.ts"]
    return "\n".join([*lines, *(["#EXT-X-ENDLIST"] if ended else [])]) + "\n"


def _name(first_programme_time: str) -> str:
    return execution_name("cam-7", SOURCE_BUCKET, KEY, first_programme_time)


def test_every_rewrite_of_one_event_names_the_same_execution(s3: Any) -> None:
    # Given an event's playlist with one segment, then rewritten with three and ended
    s3.put_object(Bucket=SOURCE_BUCKET, Key=KEY, Body=_playlist(1).encode())
    first = first_programme_time(s3, SOURCE_BUCKET, KEY)
    s3.put_object(Bucket=SOURCE_BUCKET, Key=KEY, Body=_playlist(3, ended=True).encode())
    later = first_programme_time(s3, SOURCE_BUCKET, KEY)
    # Then both read the first segment's stamp, so both name the same execution
    assert first == later == "2026-12-07T15:00:00+00:00"
    assert _name(first) == _name(later)
    # And a new event under the same name (a later first stamp) names another
    s3.put_object(Bucket=SOURCE_BUCKET, Key=KEY,
                  Body=_playlist(1, start="2026-12-08T09:30:00.000+00:00").encode())
    again = first_programme_time(s3, SOURCE_BUCKET, KEY)
    assert again == "2026-12-08T09:30:00+00:00"
    assert _name(again) != _name(first)


def test_no_stamp_or_no_playlist_gives_an_empty_start(s3: Any) -> None:
    # A playlist without EXT-X-PROGRAM-DATE-TIME, one that is not a playlist, and no object at all: ""
    # (the execution still starts, and the workflow fails on an unreadable playlist with the reason)
    s3.put_object(Bucket=SOURCE_BUCKET, Key=KEY, Body=_playlist(2, start=None).encode())
    assert first_programme_time(s3, SOURCE_BUCKET, KEY) == ""
    s3.put_object(Bucket=SOURCE_BUCKET, Key=KEY, Body=b"<html>not found</html>")
    assert first_programme_time(s3, SOURCE_BUCKET, KEY) == ""
    assert first_programme_time(s3, SOURCE_BUCKET, "live/none/index.m3u8") == ""
