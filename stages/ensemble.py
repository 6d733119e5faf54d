"""DVC stage `ensemble`: combine every architecture's OOF predictions, write submission.csv and metrics."""

from digit_recognizer.stage import run_stage  # first: an interrupt while torch imports is one line

# isort: split
from digit_recognizer.ensemble import run_ensemble
from digit_recognizer.params import load_params


def main() -> None:
    params = load_params()
    settings = params["ensemble"]
    metrics = run_ensemble(params["architectures"], settings["method"], settings["stacking_c"])
    for name, scores in metrics.items():
        weight = f", weight {scores['weight']:.3f}" if scores.get("weight") is not None else ""
        print(f"ensemble: {name:9s} CV accuracy {scores['cv_accuracy']:.4%}{weight}")


if __name__ == "__main__":
    run_stage(main)
