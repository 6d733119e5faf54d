"""DVC stage `prepare`: validate data/raw's CSVs, write compact arrays and stratified folds to data/prepared."""

from digit_recognizer.stage import run_stage  # first: an interrupt while torch imports is one line

# isort: split
from digit_recognizer import paths
from digit_recognizer.data.prepare import prepare
from digit_recognizer.params import load_params


def main() -> None:
    cv = load_params().cv
    summary = prepare(paths.RAW, paths.PREPARED, n_folds=cv.folds, seed=cv.seed)
    print(f"prepare: {summary}", flush=True)


if __name__ == "__main__":
    run_stage(main)
