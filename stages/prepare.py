"""DVC stage `prepare`: validate data/raw's CSVs, write compact arrays and stratified folds to data/prepared."""

from digit_recognizer import paths
from digit_recognizer.errors import UserError
from digit_recognizer.prepare import prepare
from digit_recognizer.stage import load_params, run_stage


def main() -> None:
    cv = load_params()["cv"]
    if list(cv["fold_ids"]) != list(range(cv["folds"])):
        raise UserError(f"params.yaml: cv.fold_ids must be {list(range(cv['folds']))} for cv.folds={cv['folds']}")
    summary = prepare(paths.RAW, paths.PREPARED, n_folds=cv["folds"], seed=cv["seed"])
    print(f"prepare: {summary}", flush=True)


if __name__ == "__main__":
    run_stage(main)
