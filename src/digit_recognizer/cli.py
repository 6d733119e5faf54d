"""The `digit-recognizer` command: submit, predict, serve."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from digit_recognizer import paths
from digit_recognizer.errors import UserError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="digit-recognizer", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    submit = commands.add_parser("submit", help="validate a submission file and send it to Kaggle")
    submit.add_argument("file", nargs="?", type=Path, default=paths.SUBMISSION)
    submit.add_argument("-m", "--message", help="submission message (default: git commit + ensemble CV accuracy)")
    submit.add_argument("-c", "--competition", default="digit-recognizer")

    args = parser.parse_args(argv)
    try:
        if args.command == "submit":
            from digit_recognizer.submit import submit as submit_file

            print(submit_file(args.file, args.message, args.competition))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
