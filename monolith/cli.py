"""`python -m monolith …`: analyse streams in one process, evaluate the detectors, benchmark them.

`analyze` and `serve` run wherever the package is installed, the service's container image included.
`evaluate`, `bench`, `calibrate` and `demo` are development commands: they generate their streams with
sample_streams (and read media/), which the image does not carry (.dockerignore), so they run from a checkout.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from lambdas.converter.decode import UnreadableStreamError
from monolith.pipeline import analyze, select_detectors
from settings import ENV_PREFIX, SERVICE_NAME, ServiceSettings
from text_tables import defects_table, render_text, text_table

EXIT_BAD_INPUT = 2
# The commands that need a checkout of the repository (see the module's docstring).
DEV_COMMANDS = ("evaluate", "evaluate-av", "bench", "demo")
DEV_NOTE = " (development: run from a checkout)"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["calibrate"]:  # options of its own: `python -m monolith calibrate --help`
        from monolith.calibrate import main as calibrate

        return calibrate(argv[1:])
    if argv[:1] == ["train"]:  # options of its own: `python -m monolith train --help`
        from monolith.train_block_model import main as train

        return train(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m monolith", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    analyze_cmd = commands.add_parser(
        "analyze", help="find freezes, block corruption and A/V desync in streams"
    )
    analyze_cmd.add_argument("paths", nargs="+", metavar="PATH", help="video files (MP4, MPEG-TS, WebM, …)")
    analyze_cmd.add_argument("--json", action="store_true", help="print the JSON report instead of a table")
    analyze_cmd.add_argument("--workers", type=_positive_int, default=1, help="files analysed in parallel")

    bench_cmd = commands.add_parser(
        "bench", help="CPU per stream-second at 360p, 720p, 1080p: median and spread of repeated runs"
        + DEV_NOTE
    )
    bench_cmd.add_argument("--json", type=Path, metavar="OUT", help="also write the results to this file")
    bench_cmd.add_argument("--duration", type=_positive_int, default=10, help="stream length in seconds")
    bench_cmd.add_argument("--repeats", type=_positive_int, default=5, help="runs per measurement")
    bench_cmd.add_argument("--sizes", default="360p,720p,1080p", help="comma-separated resolutions")

    commands.add_parser(
        "calibrate", help="`make calibrate`: CPU per stream-second and whole-task memory, written to "
        "calibration/calibration.json (see `calibrate --help`)" + DEV_NOTE
    )

    commands.add_parser(
        "train", help="`make train`: the block-damage model learned from the damage corpus's tuning sources, "
        "written to lambdas/detectors/block_model.json (see `train --help`)" + DEV_NOTE
    )

    evaluate_cmd = commands.add_parser(
        "evaluate", help="precision/recall on generated streams with known defects" + DEV_NOTE
    )
    evaluate_cmd.add_argument("--seed", type=int, default=0, help="0 = development set; others = unseen sets")
    evaluate_cmd.add_argument("--quick", action="store_true", help="a smaller set (4 streams)")
    evaluate_cmd.add_argument("--json", type=Path, metavar="OUT", help="also write the full results here")
    evaluate_cmd.add_argument("--no-lambda-path", action="store_true",
                              help="skip running the Lambda path on every case (faster)")
    evaluate_cmd.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    evaluate_cmd.add_argument("--combine", type=Path, nargs="+", metavar="RESULT",
                              help="no new run: report results saved with --json as one, a row per case "
                                   "summed over their seeds")
    evaluate_cmd.add_argument("--only", metavar="TEXT",
                              help="only the cases whose name holds TEXT, e.g. vp9 or events (same draws)")

    corpus_cmd = commands.add_parser(
        "evaluate-corpus", help="block-damage recall on the damage corpus's held-out sources, FFmpeg beside")
    corpus_cmd.add_argument("--seed", type=int, default=0, help="the corpus's seed (where damage falls)")
    corpus_cmd.add_argument("--split", choices=("held-out", "tune"), default="held-out",
                            help="which sources to report on (default: the held-out ones)")
    corpus_cmd.add_argument("--corpus", type=Path, metavar="DIR",
                            help="the corpus folder (default: $CORPUS_DIR or ~/.cache/…/corpus, /seed<N>)")
    corpus_cmd.add_argument("--json", type=Path, metavar="OUT", help="also write the full results here")
    corpus_cmd.add_argument("--no-lambda-path", action="store_true", help="skip the Lambda path (faster)")
    corpus_cmd.add_argument("--no-media", action="store_true", help="skip the clips of media/")
    corpus_cmd.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    corpus_cmd.add_argument("--generated", type=Path, metavar="RESULT",
                            help="a result of `evaluate --json`: its generated cases as one more row")
    av_cmd = commands.add_parser(
        "evaluate-av", help="mid-stream A/V shifts in real clips, judged on held-out sources" + DEV_NOTE)
    av_cmd.add_argument("--seed", type=int, default=0, help="where and how large the shifts are")
    av_cmd.add_argument("--split", choices=("held-out", "tune", "all"), default="all",
                        help="the sources to run (default all: held out, and tuning ones beside)")
    av_cmd.add_argument("--shifts", type=_positive_int, default=4, help="shifted copies per source")
    av_cmd.add_argument("--json", type=Path, metavar="OUT", help="also write the full results here")
    av_cmd.add_argument("--no-lambda-path", action="store_true", help="skip the Lambda path (faster)")
    av_cmd.add_argument("--markdown", action="store_true", help="print the tables as Markdown")

    serve_cmd = commands.add_parser(
        "serve", help="the after as a service: analyse stream jobs from SQS (settings: MONITOR_* variables)"
    )
    serve_cmd.add_argument("--concurrency", type=_positive_int, help="streams at once (worker processes); "
                           "default $MONITOR_CONCURRENCY or 1")
    serve_cmd.add_argument("--detectors", help="comma-separated subset, e.g. freeze,av_sync; "
                           "default $MONITOR_DETECTORS or all")

    demo_cmd = commands.add_parser(
        "demo", help="generate a stream with defects and analyse it in one process" + DEV_NOTE
    )
    demo_cmd.add_argument("--out", type=Path, default=Path("demo-output"), help="where the stream is written")

    args = parser.parse_args(argv)
    if args.command in DEV_COMMANDS and (missing := _missing_dev_tools(args.command)):
        print(f"error: {missing}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.command == "analyze":
        return _analyze(args.paths, as_json=args.json, workers=args.workers)
    if args.command == "evaluate":
        return _evaluate(args.seed, quick=args.quick, out=args.json, lambda_path=not args.no_lambda_path,
                         markdown=args.markdown, only=args.only,
                         combine=args.combine)
    if args.command == "evaluate-corpus":
        return _evaluate_corpus(args)
    if args.command == "evaluate-av":
        return _evaluate_av(args)
    if args.command == "serve":
        return _serve(concurrency=args.concurrency, detectors=args.detectors)
    if args.command == "demo":
        return _demo(args.out)
    if args.command == "bench":
        return _bench(args.json, duration_s=args.duration, repeats=args.repeats,
                      sizes=[name.strip() for name in args.sizes.split(",") if name.strip()])
    parser.error(f"unknown command {args.command}")
    return EXIT_BAD_INPUT


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _missing_dev_tools(command: str) -> str | None:
    """Why `command` cannot run here (no sample_streams: e.g. inside the service's image), or None."""
    try:
        import sample_streams  # noqa: F401  (only asked whether it is there)
    except ModuleNotFoundError as error:
        if error.name != "sample_streams":
            raise
        return (f"`monolith {command}` is a development command: it generates its test streams with "
                "sample_streams, which this installation does not carry (the service's container image "
                "holds only what `monolith analyze` and `serve` need); run it from a checkout of the "
                "repository (make evaluate, make bench, make demo-monolith)")
    return None


def analyze_one(path: str) -> dict[str, Any]:
    """Analyse one file; an unreadable one becomes {"source", "error"} instead of an exception."""
    try:
        return analyze(path)
    except UnreadableStreamError as error:
        return {"source": path, "error": error.reason}


def _analyze(paths: list[str], *, as_json: bool, workers: int) -> int:
    if workers > 1 and len(paths) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            reports = list(pool.map(analyze_one, paths))
    else:
        reports = [analyze_one(path) for path in paths]
    failed = [r for r in reports if "error" in r]
    for report in failed:
        print(f"error: {report['source']}: {report['error']}", file=sys.stderr)
    if as_json:
        print(json.dumps(reports[0] if len(paths) == 1 and not failed else reports, indent=2))
    else:
        for report in reports:
            if "error" not in report:
                print(format_report(report))
    return EXIT_BAD_INPUT if failed else 0


def _serve(*, concurrency: int | None, detectors: str | None) -> int:
    import dataclasses
    import os

    # Before the Powertools logger is created (the stack sets it on the container; this is for local runs).
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", SERVICE_NAME)
    try:
        settings = ServiceSettings.from_env()
        overrides: dict[str, Any] = {}
        if concurrency is not None:
            overrides["concurrency"] = concurrency
        if detectors is not None:
            overrides["detectors"] = tuple(name.strip() for name in detectors.split(",") if name.strip())
        settings = dataclasses.replace(settings, **overrides)
        if not settings.detectors:
            raise ValueError("no detector chosen (--detectors or MONITOR_DETECTORS)")
        select_detectors(settings.detectors)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    missing = [ENV_PREFIX + name.upper() for name in ("job_queue_url", "results_bucket", "topic_arn")
               if not getattr(settings, name)]
    if missing:
        print(f"error: set {', '.join(missing)} (the job queue, results bucket and defects topic)",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    from monolith.serve import serve

    return serve(settings)


def _bench(out: Path | None, *, duration_s: int, repeats: int, sizes: list[str]) -> int:
    from calibration import HostReferenceError
    from monolith.bench import SIZES, NotQuiet, format_bench, run_bench, write_json

    unknown = [name for name in sizes if name not in SIZES]
    if unknown or not sizes:
        print(f"error: --sizes: unknown {', '.join(unknown) or 'nothing given'}; known: {', '.join(SIZES)}",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        report = run_bench(duration_s=float(duration_s), repeats=repeats, sizes=sizes, log=_log)
    except (NotQuiet, HostReferenceError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(format_bench(report))
    if out:
        write_json(report, out)
        print(f"wrote {out}")
    return 0


def _evaluate(
    seed: int, *, quick: bool, out: Path | None, lambda_path: bool, markdown: bool, only: str | None,
    combine: list[Path] | None,
) -> int:
    from monolith.evaluate import combine_results, evaluate, format_evaluation

    try:
        if combine:
            result = combine_results([_load_result(path) for path in combine])
        else:
            result = evaluate(seed, quick=quick, lambda_path=lambda_path, only=only, log=_log)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(format_evaluation(result, markdown=markdown))
    _save(result, out)
    return _lambda_path_exit(result["lambda_path"], "cases")


def _evaluate_corpus(args: argparse.Namespace) -> int:
    import av.error

    from monolith.corpus_evaluate import evaluate_corpus, format_corpus_evaluation, generated_row

    try:
        generated = generated_row(_load_result(args.generated)) if args.generated else None
        result = evaluate_corpus(args.seed, split=args.split, lambda_path=not args.no_lambda_path,
                                 media=not args.no_media, corpus=args.corpus, log=_log)
        result["generated"] = generated
    except (OSError, ValueError, av.error.FFmpegError) as error:
        print(f"error: the corpus could not be built or read: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(format_corpus_evaluation(result, markdown=args.markdown))
    _save(result, args.json)
    return _lambda_path_exit(result["summary"]["lambda_path"], "checked")


def _evaluate_av(args: argparse.Namespace) -> int:
    import av.error

    from monolith.av_evaluate import evaluate_av, format_av_evaluation

    try:
        result = evaluate_av(args.seed, split=args.split, shifts=args.shifts,
                             lambda_path=not args.no_lambda_path, log=_log)
    except (OSError, ValueError, UnreadableStreamError, av.error.FFmpegError) as error:
        print(f"error: a source clip could not be read: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(format_av_evaluation(result, markdown=args.markdown))
    _save(result, args.json)
    return _lambda_path_exit(result["summary"]["lambda_path"], "checked")


def _save(result: dict[str, Any], out: Path | None) -> None:
    """An evaluation's result as JSON, when asked for (--json)."""
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {out}")


def _lambda_path_exit(check: dict[str, Any] | None, total: str) -> int:
    """1 when the Lambda path did not give exactly the monolith's defects on every stream it checked
    (`total` names the count: "cases" or "checked"), else 0."""
    return 1 if check is not None and check["equal"] < check[total] else 0


def _load_result(path: Path) -> dict[str, Any]:
    """A result saved by `evaluate --json`, or a ValueError that says what is wrong with the file."""
    try:
        result = json.loads(path.read_text())
    except OSError as error:
        raise ValueError(f"{path}: cannot read it ({error.strerror})") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not JSON ({error.msg}, line {error.lineno})") from None
    if not isinstance(result, dict) or not {"seed", "cases", "lambda_path"} <= result.keys():
        raise ValueError(f"{path}: not a result of `monolith evaluate --json`")
    return result


def _demo(out: Path) -> int:
    from sample_streams import AvOffset, BlockCorruption, Freeze, generate_stream

    out.mkdir(parents=True, exist_ok=True)
    path = out / "sample.mp4"
    _log(f"generating {path}: 20 s, 640x360, a freeze, block damage and an A/V offset …")
    truth = generate_stream(
        path,
        duration_s=20,
        defects=(Freeze(3.0, 3.0), BlockCorruption(9.3), AvOffset(14.0, 240.0)),
        seed=7,
    )
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(TextColumn("analysing"), BarColumn(), MofNCompleteColumn(), TextColumn("stream-s"),
                  console=Console(stderr=True), transient=True) as bars:
        task = bars.add_task("analysing", total=None)
        report = analyze(path, progress=lambda done, total: bars.update(task, completed=done, total=total))
    print(format_report(report))
    truth_table = text_table("type", "start s", "end s", "offset", right=("start s", "end s", "offset"))
    for event in truth.defects:
        offset = f"{event['offset_ms']:+g} ms" if "offset_ms" in event else ""
        truth_table.add_row(event["type"], f"{event['start_s']:.2f}", f"{event['end_s']:.2f}", offset)
    print(render_text("ground truth:", truth_table))
    return 0


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def format_report(report: dict[str, Any]) -> str:
    """A readable table of one report's defects."""
    video, audio = report["video"], report["audio"]
    audio_text = f"{audio['sample_rate']} Hz x{audio['channels']}" if audio else "no audio"
    header = (
        f"{report['source']}: {report['duration_s']:.2f} s, {video['width']}x{video['height']} "
        f"@ {video['fps']:g} fps, {audio_text}"
    )
    return render_text(header, defects_table(report["defects"]))
