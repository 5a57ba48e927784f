"""CLI: python -m sample_streams generate|inject."""

from __future__ import annotations

import subprocess
import sys

import av
import pytest
from ss_helpers import CHAPLIN, REPO, decode_luma

from sample_streams import load_truth
from sample_streams.cli import main
from sample_streams.live import CUES_ID


def test_generate_writes_stream_truth_and_one_line_summary(tmp_path, capsys):
    # Given a generate command with one defect of each kind
    out = tmp_path / "cli.mp4"
    argv = ["generate", str(out), "--duration", "2", "--size", "320x180", "--seed", "4"]
    argv += ["--freeze", "0.4:0.4:2", "--corrupt", "1.2:2", "--av-offset", "1.0:40:pts"]
    # When run
    rc = main(argv)
    # Then it succeeds, prints one summary line and writes stream + truth
    assert rc == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and str(out) in printed[0]
    truth = load_truth(out)
    assert [d["type"] for d in truth.defects] == ["freeze", "av_sync", "block_corruption"]
    assert truth.defects[0]["noise"] == 2.0 and truth.defects[1]["mode"] == "pts"
    assert truth.defects[2]["packets"] == 2
    assert len(decode_luma(out)[1]) == 50


def test_generate_live_writes_webm_without_duration_or_cues(tmp_path, capsys):
    # Given a generate command for a WebM written live
    out = tmp_path / "live.webm"
    rc = main(["generate", str(out), "--duration", "2", "--size", "160x96", "--freeze", "0.4:1", "--live"])
    # Then the stream has the truth beside it, every picture, and neither a duration nor a seek index
    assert rc == 0 and str(out) in capsys.readouterr().out
    assert load_truth(out).defects[0]["type"] == "freeze"
    assert len(decode_luma(out)[1]) == 50
    with av.open(str(out)) as container:
        assert container.duration is None
    assert CUES_ID not in out.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["live.webm", "live.webm.truth.json"]
    # And --live on a container that cannot be written live is refused with a reason
    assert main(["generate", str(tmp_path / "x.mp4"), "--duration", "1", "--live"]) == 2
    assert "--live writes WebM or Matroska" in capsys.readouterr().err


def test_inject_subcommand(tmp_path, capsys):
    # Given an inject command on the first second of chaplin.mp4
    out = tmp_path / "c.ts"
    rc = main(["inject", str(CHAPLIN), str(out), "--duration", "1", "--freeze", "0.2:0.3"])
    # Then a decodable TS with the freeze in its truth is written
    assert rc == 0 and "c.ts" in capsys.readouterr().out
    assert load_truth(out).defects[0]["type"] == "freeze"
    assert len(decode_luma(out)[1]) == 25


@pytest.mark.parametrize(
    "argv",
    [
        ["generate", "x.mp4", "--freeze", "1"],
        ["generate", "x.mp4", "--freeze", "a:1"],
        ["generate", "x.mp4", "--corrupt", "1:two"],
        ["generate", "x.mp4", "--av-offset", "1:20:later"],
        ["generate", "x.mp4", "--size", "640"],
        ["generate", "x.mp4", "--codec", "av1"],
        ["generate", "x.avi"],
        ["generate", "x.webm", "--codec", "h264"],
        ["generate", "x.mp4", "--duration", "1", "--freeze", "3:1"],
        ["generate", "x.mp4", "--no-audio", "--av-offset", "0.5:40"],
        ["inject", "missing.mp4", "x.mp4"],
        [],
    ],
)
def test_bad_arguments_exit_2_with_one_error_line(tmp_path, capsys, monkeypatch, argv):
    # Given a bad command line (run in a scratch directory so nothing lands in the repo)
    monkeypatch.chdir(tmp_path)
    # When parsed/run
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse's own errors
        rc = e.code
    # Then the exit code is 2 and stderr has exactly one "error:" line
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error:" in err[0]


def test_module_entry_point_error_has_no_traceback(tmp_path):
    # Given the real `python -m sample_streams` process with an unknown container
    proc = subprocess.run(
        [sys.executable, "-m", "sample_streams", "generate", str(tmp_path / "x.avi")],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    # Then it exits 2 with a single clear line and no traceback
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == "sample_streams: error: unsupported output extension '.avi'; use one of .mp4, .ts, .mkv, .webm"
    )
    assert "Traceback" not in proc.stderr
