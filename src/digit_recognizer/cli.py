"""The `digit-recognizer` command: scores, compare, submit, leaderboard, predict, serve, repro."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from digit_recognizer import __version__, paths
from digit_recognizer.errors import UserError

# The commands whose packages are an extra of their own, so that the pipeline installs without them
EXTRAS = {
    "serve": ("serve", ("fastapi", "uvicorn", "multipart", "swagger_ui_bundle")),
    "repro": ("parallel", ("dask", "distributed")),
}

PROJECT_HELP = "the project folder (default: the one around the current folder, found as git finds its own)"


def main(argv: list[str] | None = None) -> int:
    try:
        return run_command(argv)
    except BrokenPipeError:
        # The reader closed our output (`digit-recognizer scores | head -1`): stop quietly, as a Unix tool does.
        # stdout now points at /dev/null, so that the interpreter's last flush at exit cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def run_command(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="digit-recognizer", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    submit = commands.add_parser("submit", help="validate a submission file and send it to Kaggle")
    submit.add_argument(
        "file", nargs="?", type=Path, default=paths.SUBMISSION, help="the CSV to submit (default: %(default)s)"
    )
    submit.add_argument(
        "-m",
        "--message",
        help="submission message (default: the workspace's `dvc exp` experiment if it holds one, the git commit, "
        "and the ensemble's CV accuracy, e.g. 'exp lenet-2 @ 1a2b3c4: ensemble CV 99.612%%')",
    )
    submit.add_argument(
        "-c", "--competition", default="digit-recognizer", help="the Kaggle competition (default: %(default)s)"
    )
    submit.add_argument(
        "--wait",
        nargs="?",
        type=float,
        const=600.0,
        metavar="SECONDS",
        help="wait for Kaggle's public score and record it (default: up to 600 s); without --wait the "
        "submission is recorded as pending in submissions/submissions.json",
    )

    predict = commands.add_parser("predict", help="read handwritten digits from image files (PNG, JPEG, ...)")
    predict.add_argument(
        "images", nargs="+", type=Path, help="pictures of one digit each (PNG, JPEG, GIF, BMP or WebP)"
    )
    predict.add_argument(
        "--all",
        action="store_true",
        help="also show every architecture's reading, as the ensemble combines it (calibrated, with its weight)",
    )
    predict.add_argument("--project", type=Path, help=PROJECT_HELP)

    serve = commands.add_parser("serve", help="a local web page to draw a digit and see what the models read")
    serve.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: %(default)s)")
    serve.add_argument("--port", type=int, default=8000, help="the port to listen on (default: %(default)s)")
    serve.add_argument("--project", type=Path, help=PROJECT_HELP)

    compare = commands.add_parser(
        "compare",
        help="is experiment B better than A, row by row? (McNemar's exact test on the out-of-fold predictions)",
        description="Compare two runs' out-of-fold predictions row by row. A and B are git revisions, "
        "`dvc exp` experiment names or `workspace`; default: the experiment saved as `baseline` (else HEAD) "
        "against the workspace.",
    )
    compare.add_argument(
        "a",
        nargs="?",
        help="the baseline (default: the `dvc exp` experiment named baseline if there is one, else HEAD)",
    )
    compare.add_argument("b", nargs="?", default="workspace", help="the candidate (default: the workspace)")
    compare.add_argument(
        "--alpha", type=float, default=0.05, help="significance level of the verdict (default: %(default)s)"
    )
    compare.add_argument("--project", type=Path, help=PROJECT_HELP)

    scores = commands.add_parser(
        "scores",
        help="the last run's CV accuracy of each architecture and the ensemble, beside the sample leaderboard and "
        "Kaggle's public score where known",
    )
    scores.add_argument("--markdown", action="store_true", help="a Markdown table (as in BENCHMARKS.md)")
    scores.add_argument("--project", type=Path, help=PROJECT_HELP)

    leaderboard = commands.add_parser(
        "leaderboard",
        help="this competition's Kaggle submissions, each with its experiment, CV and public score",
        description="List this competition's submissions from Kaggle, fill their scores into "
        "submissions/submissions.json and match each to the experiment that made its file (docs/kaggle.md).",
    )
    leaderboard.add_argument(
        "-c", "--competition", default="digit-recognizer", help="the Kaggle competition (default: %(default)s)"
    )
    leaderboard.add_argument("--markdown", action="store_true", help="a Markdown table")
    leaderboard.add_argument("--project", type=Path, help=PROJECT_HELP)

    repro = commands.add_parser(
        "repro",
        help="dvc repro with independent stages at once, on Dask (docs/parallel.md)",
        description="Reproduce the pipeline with independent stages at once, each a Dask task running "
        "`dvc repro <stage>` in a checkout of its own, then a plain `dvc repro` in the workspace that restores "
        "them from DVC's run-cache. Uncommitted changes run as a snapshot of the working tree.",
    )
    repro.add_argument(
        "-j", "--jobs", type=int, help="stages at once on the local cluster (default: one per GPU, else per core)"
    )
    repro.add_argument(
        "--threads", type=int, help="CPU threads per stage, as DIGIT_RECOGNIZER_THREADS (default: cores // jobs)"
    )
    repro.add_argument(
        "--scheduler", metavar="ADDRESS", help="a running Dask scheduler (tcp://host:8786) whose workers run the stages"
    )
    repro.add_argument(
        "--pull",
        action="store_true",
        help="share results through the default DVC remote, not this machine's cache (workers on other machines)",
    )
    repro.add_argument("--project", type=Path, help=PROJECT_HELP)

    args = parser.parse_args(argv)
    try:
        require_extra(args.command)
        if args.command == "submit":
            from digit_recognizer.kaggle.submit import submit as submit_file

            print(submit_file(args.file, args.message, args.competition, wait=args.wait))
        elif args.command == "predict":
            from digit_recognizer.serving.read_files import predict_files

            if not predict_files(args.images, show_all=args.all, project=args.project):
                return 1
        elif args.command == "serve":
            from digit_recognizer.serving.server import serve

            serve(args.host, args.port, project=args.project)
        elif args.command == "scores":
            from digit_recognizer.report.scores import print_scores

            print_scores(args.project, args.markdown)
        elif args.command == "leaderboard":
            from digit_recognizer.kaggle.leaderboard import leaderboard as show_leaderboard

            print(show_leaderboard(args.project, args.competition, markdown=args.markdown))
        elif args.command == "compare":
            from dvc.exceptions import NotDvcRepoError

            from digit_recognizer.report.compare import run_compare

            try:
                print(run_compare(args.a, args.b, args.alpha, args.project))
            except NotDvcRepoError:
                raise UserError(
                    "compare runs inside the project (a DVC repository): cd into it or pass --project"
                ) from None
        elif args.command == "repro":
            from digit_recognizer.parallel.run import repro_in_parallel

            return repro_in_parallel(args.project, args.jobs, args.threads, args.scheduler, args.pull)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def require_extra(command: str) -> None:
    """A command whose extra is not installed stops with the pip command that adds it, not an ImportError."""
    if command not in EXTRAS:
        return
    import importlib.util

    extra, modules = EXTRAS[command]
    missing = [module for module in modules if importlib.util.find_spec(module) is None]
    if missing:
        raise UserError(
            f"{command} needs the [{extra}] extra (not installed: {', '.join(missing)}): "
            f'pip install -e ".[{extra}]" in the project\'s folder, or pip install "digit-recognizer[{extra}]"'
        )


if __name__ == "__main__":
    sys.exit(main())
