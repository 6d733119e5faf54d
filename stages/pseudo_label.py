"""DVC stage `pseudo_label`: label the test digits for each fold's second round, from that fold's models only."""

from digit_recognizer.stage import run_stage  # first: an interrupt while torch imports is one line

# isort: split
from digit_recognizer.params import load_params
from digit_recognizer.prepare import load_prepared
from digit_recognizer.pseudo_label import make_pseudo_labels, save_pseudo_labels, summarize, write_summary


def main() -> None:
    params = load_params()
    settings = params["pseudo_label"]
    data = load_prepared()
    per_fold = make_pseudo_labels(settings["teachers"], data.n_folds, settings["threshold"])
    n_test = len(data.test_images)
    summary = summarize(per_fold, n_test, data.test_labels)
    save_pseudo_labels(per_fold)
    write_summary(summary)
    state = "on for " + ", ".join(settings["architectures"]) if settings["architectures"] else "off"
    for fold, entry in summary["folds"].items():
        right = f", {entry['accuracy']:.2%} right (the sample's answer key)" if "accuracy" in entry else ""
        print(f"pseudo_label: fold {fold}: {entry['rows']:,} of {n_test:,} test digits{right}")
    print(f"pseudo_label: the second round is {state} (params.yaml: pseudo_label.architectures)")


if __name__ == "__main__":
    run_stage(main)
