"""DVC stage `ensemble`: combine every architecture's OOF predictions, write submission.csv and metrics."""

from digit_recognizer.stage import run_stage  # first: an interrupt while torch imports is one line

# isort: split
from digit_recognizer.ensemble.combine import run_ensemble
from digit_recognizer.params import load_params


def main() -> None:
    params = load_params()
    metrics = run_ensemble(params.ensemble_members, params.ensemble.method, params.ensemble.stacking_c)
    for name, scores in metrics.items():
        weight = f", weight {scores['weight']:.3f}" if scores.get("weight") is not None else ""
        print(f"ensemble: {name:9s} CV accuracy {scores['cv_accuracy']:.4%}{weight}")
    gain = metrics["ensemble"]["gain_over_best_single"]
    if gain < 0:
        print(
            f"ensemble: {-gain:.2%} below the best single architecture. Its weights are fitted on other folds' rows "
            "and scored on these; with few training rows (the embedded sample has 3,000) they carry over poorly and "
            "one model alone can do better. On more data the ensemble gains (BENCHMARKS.md)."
        )


if __name__ == "__main__":
    run_stage(main)
