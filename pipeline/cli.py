"""The ``newstag`` command line: argument parsing and printing only.

Every command is a function in its own module that returns its result; heavy libraries (mlflow,
scikit-learn, datasets) are imported inside the commands, so ``newstag --help`` stays fast.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import gc
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from pipeline import DEFAULT_CONFIG, __version__

EXIT_OK, EXIT_REJECTS, EXIT_USAGE, EXIT_IO, EXIT_CRASH = 0, 1, 2, 3, 4
DEBUG_ENV = "NEWSTAG_DEBUG"  # set to 1 to see the traceback of an unexpected error
EXIT_CODES = (
    "Exit codes: 0 done; 1 predict rejected more rows than --max-reject-rate; 2 usage, config or model "
    "error; 3 I/O error (disk full, permission denied); 4 unexpected error, a bug: please report it "
    f"({DEBUG_ENV}=1 shows the traceback); 130 interrupted"
)
DEFAULT_MODEL = "models:/news-tagger@champion"

# Nothing this tool does may call out: telemetry off, Hugging Face offline unless the user says otherwise.
QUIET_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}

# predict's scoring is sparse and never calls BLAS, yet the OpenBLAS bundled with numpy starts a thread per
# core when numpy is imported, which spins for about 0.1 s of a core (measured: 100 ms of CPU) that the
# processes scoring a large input need. Set before numpy is imported, unless the user set it.
PREDICT_ENV = {"OPENBLAS_NUM_THREADS": "1"}


def _emit(result: Any, as_json: bool, lines: Callable[[Any], list[str]], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    if as_json:
        json.dump(result, out, indent=2, ensure_ascii=False, default=str)
        out.write("\n")
    else:
        for line in lines(result):
            print(line, file=out)


def _say(quiet: bool = False) -> Callable[[str], None]:
    def say(message: str) -> None:
        if not quiet:
            print(message, file=sys.stderr, flush=True)

    return say


# --------------------------------------------------------------------------- commands


def cmd_prepare(args: argparse.Namespace) -> int:
    from pipeline.config import load_config
    from pipeline.prepare import prepare, summary_lines

    cfg = load_config(args.config, args.set)
    result = prepare(cfg, force=args.force, say=_say(args.json))
    report = dict(result.report, path=str(result.path), reused=result.reused)
    _emit(
        report,
        args.json,
        lambda r: [
            f"prepared {cfg.name} -> {result.path}" + (" (reused)" if result.reused else ""),
            *summary_lines(r),
        ],
    )
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    from pipeline.config import load_config

    cfg = load_config(args.config, args.set)  # a bad config fails before the stage's slow imports
    from pipeline.train import summary_lines, train

    result = train(
        cfg,
        config_path=args.config,
        overrides=args.set,
        tracking_uri=args.tracking_uri,
        register=not args.no_register,
        say=_say(args.json),
    )
    _emit(result, args.json, summary_lines)
    return EXIT_OK


def cmd_tune(args: argparse.Namespace) -> int:
    from pipeline.config import load_config

    cfg = load_config(args.config, args.set)  # a bad config fails before the stage's slow imports
    from pipeline.tune import summary_lines, tune

    result = tune(
        cfg,
        config_path=args.config,
        overrides=args.set,
        tracking_uri=args.tracking_uri,
        n_trials=args.trials,
        n_jobs=args.jobs,
        output=args.output,
        say=_say(args.json),
    )
    _emit(result, args.json, summary_lines)
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    from pipeline.errors import UsageError
    from pipeline.evaluate import evaluate_command
    from pipeline.reports import summary_lines

    if bool(args.input) == bool(args.split):
        raise UsageError("evaluate: give either --input FILE or --config C --split S")
    result = evaluate_command(
        model_uri=args.model,
        input_path=args.input,
        config_path=args.config,
        overrides=args.set,
        split=args.split,
        tracking_uri=args.tracking_uri,
        id_field=args.id_field,
        title_field=args.title_field,
        text_field=args.text_field,
        say=_say(args.json),
    )
    _emit(result, args.json, summary_lines)
    return EXIT_OK


def _predict_paths(args: argparse.Namespace) -> None:
    """--input and --output are required, except with --stream, where they default to - (stdin, stdout)."""
    from pipeline.errors import UsageError

    for name in ("input", "output"):
        if getattr(args, name) is None:
            if not args.stream:
                raise UsageError(f"--{name} is required (or --stream, which reads stdin and writes stdout)")
            setattr(args, name, "-")


def cmd_predict(args: argparse.Namespace) -> int:
    _predict_paths(args)
    from pipeline.loading import drop_read_ahead, read_ahead

    read_ahead(args.model)  # the scorer file read and hashed while the imports below run
    collecting = gc.isenabled()
    gc.disable()  # importing numpy and the scoring code makes some 100k objects, none of them garbage
    try:
        from pipeline.predict import predict_command, summary_lines

        gc.freeze()  # those objects are never traversed by the collector again (12 ms a run when they were)
        if collecting:
            gc.enable()
        options = {k: v for k, v in vars(args).items() if k not in ("func", "command", "json")}
        summary = predict_command(**options, keep_model=_KEPT)
    finally:
        drop_read_ahead()  # a run that failed before its model was loaded
        if collecting:
            gc.enable()
        gc.unfreeze()
    if args.json or not args.quiet:  # the summary line on stderr; JSON on stdout unless the output is there
        out = sys.stdout if args.json and args.output != "-" else sys.stderr
        _emit(summary, args.json, summary_lines, out)
    return EXIT_REJECTS if summary["over_reject_limit"] else EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    from pipeline.registry import models_command, models_lines

    result = models_command(args.name, args.config, args.set, args.tracking_uri)
    _emit(result, args.json, models_lines)
    return EXIT_OK


def cmd_promote(args: argparse.Namespace) -> int:
    from pipeline.registry import promote_command, promote_lines

    result = promote_command(args.name, args.version, args.reason, args.export_dir, args.tracking_uri)
    _emit(result, args.json, promote_lines)
    return EXIT_OK


def cmd_trust(args: argparse.Namespace) -> int:
    from pipeline.signing import trust

    for line in trust(args.model_dir):
        print(line)
    return EXIT_OK


def cmd_init(args: argparse.Namespace) -> int:
    from pipeline.init import init_command, summary_lines

    result = init_command(args.file, out=args.out, force=args.force, name=args.name)
    _emit(result, args.json, summary_lines)
    return EXIT_OK


def cmd_ui(args: argparse.Namespace) -> int:
    from pipeline.ui import run_ui

    return run_ui(
        config_path=args.config,
        tracking_uri=args.tracking_uri,
        host=args.host,
        port=args.port,
        open_url=False,
        writable=args.writable,
    )


# --------------------------------------------------------------------------- parser


def _add_config(p: argparse.ArgumentParser, required: bool = False) -> None:
    p.add_argument(
        "--config",
        "-c",
        default=None if required else DEFAULT_CONFIG,
        metavar="PATH",
        help=f"experiment config (YAML){'' if required else f'; default {DEFAULT_CONFIG}'}",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set model.C=0.5 (repeatable; values are YAML)",
    )


def _add_tracking(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tracking-uri",
        metavar="URI",
        default=None,
        help="MLflow tracking store; default $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in the working directory",
    )


def _add_fields(p: argparse.ArgumentParser) -> None:
    p.add_argument("--id-field", default="id", help="input column with the document id (default: id)")
    p.add_argument("--title-field", default="title", help="input column with the title (default: title)")
    p.add_argument("--text-field", default="text", help="input column with the text (default: text)")


def _prepare_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare",
        help="read, map, split and store a corpus",
        description="Read the corpus of a config, map its labels onto the axes, split, validate and store it under data/processed/.",
    )
    _add_config(p)
    p.add_argument("--force", action="store_true", help="rebuild even when a stored dataset matches")
    p.add_argument("--json", action="store_true", help="print the data report as JSON")
    p.set_defaults(func=cmd_prepare)


def _train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="fit, tune thresholds, evaluate, log to MLflow, register",
        description="Prepare (or reuse) the data, fit the tagger, tune thresholds on validation, evaluate on test, log the run to MLflow, register the model and promote it when it beats the champion on validation by more than the noise, export it to models/.",
    )
    _add_config(p)
    _add_tracking(p)
    p.add_argument("--no-register", action="store_true", help="log the run but do not register or promote")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_train)


def _tune_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tune",
        help="search the config's tune.space, one nested MLflow run per trial",
        description="Search the space declared under tune: in the config (grid or random), each trial a nested MLflow run, and write the best trial's config.",
    )
    _add_config(p)
    _add_tracking(p)
    p.add_argument(
        "--trials", type=int, default=None, help="random search: number of trials (default: tune.n_trials)"
    )
    p.add_argument("--jobs", type=int, default=None, help="trials run in parallel (default: tune.n_jobs)")
    p.add_argument(
        "--output",
        default=None,
        metavar="PATH",
        help="where to write the best config (default: configs/<name>-best.yaml)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_tune)


def _evaluate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score a model on a labelled file or a prepared split",
        description="Score a model on labelled documents: a JSONL/CSV/parquet file whose gold label lists are named after the axes, or a split of a prepared config.",
    )
    p.add_argument(
        "--model",
        "-m",
        default=DEFAULT_MODEL,
        help=f"model URI or exported folder (default: {DEFAULT_MODEL})",
    )
    p.add_argument("--input", "-i", default=None, metavar="FILE", help="labelled JSONL/CSV/parquet file")
    p.add_argument(
        "--split",
        default=None,
        choices=["train", "validation", "test"],
        help="split of the prepared --config",
    )
    _add_config(p)
    _add_tracking(p)
    _add_fields(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_evaluate)


def _predict_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="tag a file of articles in batch (streams any size)",
        description="Tag every article of a JSONL/CSV/parquet file (or stdin), a chunk at a time, writing atomically; bad rows go to <output>.rejects.jsonl. With --stream, the process stays open and answers each stdin line at once.",
    )
    p.add_argument(
        "--model",
        "-m",
        default=DEFAULT_MODEL,
        help=f"model URI or exported folder (default: {DEFAULT_MODEL})",
    )
    p.add_argument(
        "--input",
        "-i",
        default=None,
        metavar="PATH",
        help="input .jsonl/.csv/.parquet (.gz for jsonl/csv), or - for stdin (required, except with --stream)",
    )
    p.add_argument(
        "--output",
        "-o",
        default=None,
        metavar="PATH",
        help="output .jsonl/.csv/.parquet, or - for stdout (required, except with --stream)",
    )
    p.add_argument(
        "--stream",
        action="store_true",
        help="stay open on stdin: tag each JSONL line and write its result to stdout (flushed) before reading "
        "the next; a bad line is a JSON reject on stderr and the stream goes on. Scores in this process "
        "(no --jobs, --engine dask or --resume); --batch-size does not apply",
    )
    p.add_argument(
        "--format", choices=["jsonl", "csv", "parquet"], default=None, help="force the input format"
    )
    p.add_argument(
        "--output-format", choices=["jsonl", "csv", "parquet"], default=None, help="force the output format"
    )
    p.add_argument(
        "--columns",
        default=None,
        metavar="A,B,...",
        help="a CSV/TSV input without a header line: its columns' names, in order (e.g. id,title,text)",
    )
    _add_fields(p)
    _add_predict_output(p)
    _add_predict_run(p)
    _add_tracking(p)
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar and no summary")
    p.add_argument(
        "--json",
        action="store_true",
        help="print the run summary as JSON: on stdout, or on stderr when --output is - (stdout holds the output)",
    )
    p.set_defaults(func=cmd_predict)


def _add_predict_output(p: argparse.ArgumentParser) -> None:
    """The predict options that shape each output row."""
    p.add_argument("--keep-fields", default="", metavar="A,B", help="input columns copied to the output")
    p.add_argument(
        "--top-k", type=int, default=None, metavar="K", help="keep only the K best scores per axis"
    )
    p.add_argument(
        "--explain",
        action="store_true",
        help="add the terms that pushed each predicted label; for regions, the place mentions behind them "
        "(place:Caracas (Venezuela)) and their weights",
    )
    p.add_argument(
        "--home",
        default=None,
        metavar="ISO",
        help="the publication's own country (e.g. US): its mentions alone make no region, a story naming "
        "a neighbour or another country of its region keeps it; 'none' turns off the model's own "
        "(default: the model's features.gazetteer.home)",
    )
    p.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="AXIS=V|LABEL=V",
        help="override tuned thresholds (repeatable)",
    )


def _add_predict_run(p: argparse.ArgumentParser) -> None:
    """The predict options that shape the run: chunks, workers, limits, resume."""
    p.add_argument(
        "--batch-size",
        type=int,
        default=2000,
        help="documents per chunk (default: 2000; split across the cores, the first chunk is at most 500 per core)",
    )
    p.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=None,
        help="worker processes scoring chunks (default: this process, a chunk of 1000 documents or more split "
        "across the CPU cores; 1: this process alone)",
    )
    p.add_argument(
        "--max-reject-rate",
        type=float,
        default=0.05,
        help="fail (exit 1) above this share of rejected rows (default: 0.05)",
    )
    p.add_argument(
        "--max-chars", type=int, default=100_000, help="truncate longer texts and flag them (default: 100000)"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue an interrupted run from its last complete chunk"
    )
    p.add_argument(
        "--engine",
        choices=["local", "dask"],
        default="local",
        help="where chunks are scored (default: local)",
    )
    p.add_argument(
        "--scheduler", default=None, metavar="ADDRESS", help="Dask scheduler address (engine dask)"
    )


def _models_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="list a registered model's versions, aliases and promotion decisions",
        description="List the versions of a registered model, newest first: aliases, creation date, the "
        "fingerprint of the data they were trained on, and the promotion decision with its numbers.",
    )
    p.add_argument(
        "name",
        metavar="NAME",
        nargs="?",
        default=None,
        help="registered model (default: the config's tracking.registered_model)",
    )
    _add_config(p)
    _add_tracking(p)
    p.add_argument("--json", action="store_true", help="print the versions as JSON")
    p.set_defaults(func=cmd_models)


def _promote_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "promote",
        help="make a version champion by hand (recorded as an override)",
        description="Move the champion alias of a registered model to VERSION, overriding the automatic "
        "decision: your user name, the time and the reason are recorded on the version, and "
        "models/NAME/champion is re-exported to follow the alias.",
    )
    p.add_argument("name", metavar="NAME", help="registered model, e.g. news-tagger")
    p.add_argument("version", metavar="VERSION", help="the version to make champion (3 or v3)")
    p.add_argument("--reason", required=True, help="why; recorded with the override")
    p.add_argument(
        "--export-dir",
        default="models",
        metavar="DIR",
        help="folder of exported models, as tracking.export_dir (default: models)",
    )
    _add_tracking(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_promote)


def _trust_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "trust",
        help="re-sign a model folder (e.g. from another machine) with this machine's key",
        description="Show what an exported model folder holds (its run, each file with its sha256, the code "
        "mlflow.pyfunc.load_model would execute) and sign all of it with this machine's signing key "
        "(~/.config/newstag/signing.key, or $NEWSTAG_SIGNING_KEY), so newstag and MLflow load it. Loaders "
        "refuse a model signed with another key, or changed since it was signed. Only trust a folder whose "
        "origin you know: its pickle and code run when it is loaded.",
    )
    p.add_argument("model_dir", metavar="MODEL_DIR", help="an exported model folder (holding MLmodel)")
    p.set_defaults(func=cmd_trust)


def _init_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "init",
        help="guess a corpus's columns and write a config that trains as is",
        description="Read the first rows of a JSONL/CSV/TSV/parquet file (.gz too) or a folder with one "
        "sub-folder per label, guess the id, title, text and label columns (and whether a CSV has a header, "
        "whether labels are class indices, whether each document has one label), show the guesses and write "
        "a commented config: then run newstag train --config it.",
    )
    p.add_argument("file", metavar="FILE", help="the labelled corpus: a file, or a folder of label folders")
    p.add_argument(
        "--out",
        default=None,
        metavar="PATH",
        help="config to write (default: configs/<name>.yaml, the name from the file)",
    )
    p.add_argument("--name", default=None, help="the config's name (default: from the file name)")
    p.add_argument("--force", action="store_true", help="overwrite --out when it exists")
    p.add_argument("--json", action="store_true", help="print the guesses as JSON")
    p.set_defaults(func=cmd_init)


def _ui_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ui",
        help="open the MLflow UI on the project's store",
        description="Start the MLflow UI on the project's tracking store and print the URL of the experiment's runs page.",
    )
    p.add_argument(
        "--config",
        "-c",
        default=None,
        metavar="PATH",
        help="config whose experiment page to print (default: configs/world.yaml)",
    )
    _add_tracking(p)
    p.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1, loopback only)"
    )
    p.add_argument("--port", type=int, default=5000, help="port (default: 5000)")
    p.add_argument(
        "--writable",
        action="store_true",
        help="let anyone who reaches the port change the store (aliases, versions, runs); "
        "default: inspect-only, changes need the owner's login",
    )
    p.set_defaults(func=cmd_ui)


PARSERS = {
    "init": _init_parser,
    "prepare": _prepare_parser,
    "train": _train_parser,
    "tune": _tune_parser,
    "evaluate": _evaluate_parser,
    "predict": _predict_parser,
    "models": _models_parser,
    "promote": _promote_parser,
    "trust": _trust_parser,
    "ui": _ui_parser,
}
"""Each command and the function that adds its parser, in the order ``newstag --help`` lists them."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of ``newstag``; with ``command``, one that knows that command only (what parsing
    its arguments needs: building all ten takes longer than the rest of a short ``predict``'s start-up)."""
    parser = argparse.ArgumentParser(
        prog="newstag",
        description="Tag news articles by region and by theme: prepare data, train, tune, evaluate, predict, inspect the registry.",
        epilog=f"Run 'newstag COMMAND --help' for a command's options. {EXIT_CODES}.",
    )
    parser.add_argument("--version", action="version", version=f"newstag {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, add in PARSERS.items():
        if command is None or name == command:
            add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``newstag``; returns the exit code."""
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    words = sys.argv[1:] if argv is None else list(argv)
    if words[:1] == ["predict"] and "numpy" not in sys.modules:
        for key, value in PREDICT_ENV.items():
            os.environ.setdefault(key, value)
    args = build_parser(words[0] if words and words[0] in PARSERS else None).parse_args(words)
    from pipeline.errors import USER_ERRORS

    try:
        return args.func(args)
    except USER_ERRORS as exc:
        print(f"newstag {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # output piped into head & co.
        sys.stderr.close()
        return EXIT_OK
    except OSError as exc:  # disk full, file too large, permission denied while the command runs
        where = f": {exc.filename}" if exc.filename else ""
        print(f"newstag {args.command}: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_IO
    except KeyboardInterrupt:
        print(f"newstag {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: one line, its own exit code, the traceback only when asked for
        return _crashed(args.command, exc)


def _crashed(command: str, exc: Exception) -> int:
    """Report an unexpected error in one line (the traceback too with $NEWSTAG_DEBUG); returns exit code 4."""
    if os.environ.get(DEBUG_ENV, "").strip() not in ("", "0"):
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    what = " ".join(str(exc).split())[:300] or "(no message)"
    print(
        f"newstag {command}: unexpected error: {type(exc).__name__}: {what} -- this is a bug in newstag, "
        f"please report it (run again with {DEBUG_ENV}=1 for the traceback)",
        file=sys.stderr,
    )
    return EXIT_CRASH


FAST_EXIT = frozenset({"predict"})
"""Commands whose process ends without the interpreter's final teardown (see ``console``)."""

_KEPT: list[Any] | None = None  # under ``console``: the loaded model, never freed object by object


def console() -> None:
    """The ``newstag`` command line: ``main`` on ``sys.argv``, then exit with its code.

    After ``predict`` the process runs the exit handlers, flushes stdout and stderr and ends, without the
    interpreter's teardown, which frees every object of the loaded model and its caches one by one (about
    40 ms, a tenth of tagging a few articles); the model is kept referenced to the end (``_KEPT``), so that
    it is not freed either when ``predict`` returns (about 10 ms). Every file ``predict`` writes is closed
    (and renamed into place) before ``main`` returns; other commands, and ``predict`` ending through argparse
    (``--help``, a usage error), exit as usual.
    """
    global _KEPT
    _KEPT = []
    code = main()
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)  # CPython's, as multiprocessing uses it
    if sys.argv[1:2] and sys.argv[1] in FAST_EXIT and run_exit_handlers is not None:
        run_exit_handlers()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):  # closed, or a reader that went away
                stream.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    console()
