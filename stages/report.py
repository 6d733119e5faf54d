"""DVC stage `report`: plots data and pictures for `dvc plots show`, written to data/report/."""

from digit_recognizer.stage import run_stage  # first: an interrupt while torch imports is one line

# isort: split
from digit_recognizer import paths
from digit_recognizer.params import load_params
from digit_recognizer.report.plots import write_report


def main() -> None:
    params = load_params()
    write_report(params.ensemble_members, params.report.images, params.report.seed)
    print(f"report: wrote {paths.REPORT}/; see it with `dvc plots show`", flush=True)


if __name__ == "__main__":
    run_stage(main)
