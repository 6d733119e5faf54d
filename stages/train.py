"""DVC stages `train@<arch>-<fold>` (into data/train/<arch>-<fold>/) and, with --pseudo, its second round
`train_pseudo@<arch>-<fold>` (into data/pseudo/<arch>-<fold>/, also learning fold <fold>'s pseudo-labels)."""

from digit_recognizer.stage import run_stage  # first: an interrupt while torch imports is one line

# isort: split
import argparse

from digit_recognizer import paths
from digit_recognizer.data.prepared import load_prepared
from digit_recognizer.params import load_params
from digit_recognizer.training.device import (
    choose_precision,
    configure_determinism,
    configure_threads,
    keep_freed_memory,
    select_device,
)
from digit_recognizer.training.fold_run import train_fold
from digit_recognizer.training.pseudo_label import describe, fold_pseudo_labels
from digit_recognizer.training.timings import record_timing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--arch", required=True)
    parser.add_argument("--fold", type=int, required=True)
    parser.add_argument("--pseudo", action="store_true", help="the second round, with the teachers' pseudo-labels")
    args = parser.parse_args()
    name = args.arch + (paths.PSEUDO_SUFFIX if args.pseudo else "")

    params = load_params()
    shared = params.train
    recipe = params.recipe(args.arch)
    keep_freed_memory()
    threads = configure_threads(shared.num_threads)
    device = select_device(shared.device)
    configure_determinism(shared.deterministic, device)
    precision = choose_precision(shared.precision, device)
    data = load_prepared(paths.PREPARED)
    pseudo = None
    if args.pseudo:
        settings = params.pseudo_label
        picked = fold_pseudo_labels(settings.teachers, args.fold, settings.threshold)
        pseudo = picked.index, picked.label
        print(f"train {name}-{args.fold}: {describe(picked, len(data.test_images), data.test_labels)}", flush=True)
    print(f"train {name}-{args.fold}: device {device}, {threads} CPU threads, precision {precision}", flush=True)
    metrics, timing = train_fold(
        args.arch,
        args.fold,
        net_kwargs=recipe.net,
        config=recipe.fit,
        data=data,
        out_dir=paths.train_run_dir(name, args.fold),
        seed=shared.seed,
        device=device,
        pseudo=pseudo,
        held_out_curve_every=shared.held_out_curve_every,
        precision=precision,
    )
    record_timing(paths.timing_file(name, args.fold), timing, paths.train_run_dir(name, args.fold))
    print(
        f"train {name}-{args.fold}: held-out accuracy {metrics['accuracy']:.4%}, "
        f"{timing['train_seconds']:.0f} s, {timing['images_per_second']:,.0f} img/s",
        flush=True,
    )


if __name__ == "__main__":
    run_stage(main)
