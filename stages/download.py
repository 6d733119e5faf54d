"""DVC stage `download`: fill data/raw with the competition CSVs from params.yaml's `data.source`."""

from digit_recognizer.stage import run_stage  # first: an interrupt while torch imports is one line

# isort: split
from digit_recognizer import paths
from digit_recognizer.data.download import download
from digit_recognizer.params import load_params


def main() -> None:
    data = load_params().data
    used = download(
        data.source,
        dest=paths.RAW,
        competition=data.competition,
        sample_test_rows=data.sample_test_rows,
        seed=data.sample_seed,
    )
    print(f"download: wrote {paths.RAW}/ from {used}", flush=True)


if __name__ == "__main__":
    run_stage(main)
