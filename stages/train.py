"""DVC stage `train@<arch>-<fold>`: train one architecture on one CV fold into data/train/<arch>-<fold>/."""

from digit_recognizer.stage import run_stage  # first: an interrupt while torch imports is one line

# isort: split
import argparse

from digit_recognizer import paths
from digit_recognizer.atomic import write_json
from digit_recognizer.device import configure_determinism, configure_threads, keep_freed_memory, select_device
from digit_recognizer.fold_run import train_fold
from digit_recognizer.params import load_params, recipe_from_params
from digit_recognizer.prepare import load_prepared


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--arch", required=True)
    parser.add_argument("--fold", type=int, required=True)
    args = parser.parse_args()

    params = load_params()
    shared = params["train"]
    net_kwargs, config = recipe_from_params(args.arch, params["models"][args.arch])
    keep_freed_memory()
    threads = configure_threads(shared["num_threads"])
    device = select_device(shared["device"])
    configure_determinism(shared["deterministic"], device)
    print(f"train {args.arch}-{args.fold}: device {device}, {threads} CPU threads", flush=True)
    metrics, timing = train_fold(
        args.arch,
        args.fold,
        net_kwargs=net_kwargs,
        config=config,
        data=load_prepared(paths.PREPARED),
        out_dir=paths.train_run_dir(args.arch, args.fold),
        seed=shared["seed"],
        device=device,
    )
    write_json(paths.timing_file(args.arch, args.fold), timing)
    print(
        f"train {args.arch}-{args.fold}: held-out accuracy {metrics['accuracy']:.4%}, "
        f"{timing['train_seconds']:.0f} s, {timing['images_per_second']:,.0f} img/s",
        flush=True,
    )


if __name__ == "__main__":
    run_stage(main)
