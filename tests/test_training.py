"""The trainer and the five architectures on real digits: shapes, falling loss, determinism, augmentation."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from digit_recognizer.errors import UserError
from digit_recognizer.models import ARCHITECTURES, build_model
from digit_recognizer.params import FitConfig
from digit_recognizer.training.augment import (
    ELASTIC_POINTS,
    affine_grid,
    affine_noise,
    elastic_displacement,
    random_affine,
)
from digit_recognizer.training.device import choose_precision
from digit_recognizer.training.fold_run import load_fold_model, train_fold
from digit_recognizer.training.loop import fit, seed_everything, stratified_holdout
from digit_recognizer.training.predict import predict

from .conftest import AVX2_ONLY, TINY_NETS, subset


def tensors(data, rows):
    return torch.from_numpy(data.train_images[rows]), torch.from_numpy(data.train_labels[rows])


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_each_architecture_learns_real_digits(arch, sample_prepared):
    """A few hundred steps on 1,600 real digits: loss falls well below chance and outputs are (N, 10)."""
    data = sample_prepared
    train_x, train_y = tensors(data, np.flatnonzero(data.folds >= 3))
    val_x, val_y = tensors(data, np.flatnonzero(data.folds == 0))
    epochs = 8 if arch == "lstm" else 3  # an LSTM reading rows needs more steps before it leaves chance
    config = FitConfig(epochs=epochs, batch_size=64, optimizer="adam", lr=1e-2 if arch == "lstm" else 3e-3, rotate=5)
    generator = seed_everything(0)
    model = build_model(arch, TINY_NETS[arch])
    result = fit(model, train_x, train_y, config, generator, torch.device("cpu"), held_out=(val_x, val_y))
    losses = [r["train_loss"] for r in result.history]
    assert losses[-1] < losses[0] and losses[-1] < 1.5  # chance is ln(10) = 2.30
    assert result.history[-1]["held_out_accuracy"] > 0.6
    assert result.kept_epoch == epochs  # no recipe key asks for anything else: the last epoch stays
    probabilities = predict(model, data.test_images[:37])
    assert probabilities.shape == (37, 10) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(1), 1, rtol=1e-5)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_training_is_deterministic_on_cpu(sample_prepared, tmp_path, precision):
    """Same params and seed -> bit-identical predictions, in float32 and in bfloat16 autocast alike."""
    data = subset(sample_prepared, np.arange(1200))
    config = FitConfig(epochs=2, batch_size=64, lr=3e-3, rotate=10, zoom=0.1, shift=0.1, label_smoothing=0.1)
    cpu = torch.device("cpu")
    kwargs = {"seed": 7, "device": cpu, "precision": choose_precision(precision, cpu)}
    runs = []
    for name in ("a", "b"):
        train_fold("cnn", 1, TINY_NETS["cnn"], config, data, tmp_path / name, **kwargs)
        runs.append(np.load(tmp_path / name / "predictions.npz"))
    np.testing.assert_array_equal(runs[0]["oof"], runs[1]["oof"])
    np.testing.assert_array_equal(runs[0]["test"], runs[1]["test"])
    assert torch.load(tmp_path / "a" / "model.pt")["precision"] == precision  # the fold's provenance
    other, _ = train_fold("cnn", 1, TINY_NETS["cnn"], config, data, tmp_path / "c", **{**kwargs, "seed": 8})
    assert other["fold"] == 1
    assert not np.array_equal(np.load(tmp_path / "c" / "predictions.npz")["test"], runs[0]["test"])


def test_train_fold_writes_a_self_describing_run(sample_prepared, tmp_path):
    data = subset(sample_prepared, np.arange(1000))
    config = FitConfig(epochs=2, batch_size=50, lr=3e-3, val_fraction=0.1, patience=1, restore_best=True)
    metrics, timing = train_fold("lenet", 2, TINY_NETS["lenet"], config, data, tmp_path / "run", 0, torch.device("cpu"))
    run = tmp_path / "run"
    assert sorted(p.name for p in run.iterdir()) == ["live", "metrics.json", "model.pt", "predictions.npz"]
    saved = np.load(run / "predictions.npz")
    np.testing.assert_array_equal(saved["oof_index"], np.flatnonzero(data.folds == 2))
    assert saved["oof"].shape == (len(saved["oof_index"]), 10) and saved["test"].shape == (1000, 10)
    assert json.loads((run / "metrics.json").read_text()) == metrics
    assert 0 <= metrics["accuracy"] <= 1 and metrics["parameters"] > 0
    # the inner validation split comes out of the training folds, a tenth of every digit's rows
    assert metrics["train_rows"] + metrics["inner_val_rows"] == np.sum(data.folds != 2)
    assert metrics["inner_val_rows"] == pytest.approx(0.1 * np.sum(data.folds != 2), abs=10)
    # timings stay out of the folder, whose hash must not change when the predictions do not
    assert "train_seconds" not in metrics and timing["train_seconds"] > 0 and timing["images_per_second"] > 0
    # the checkpoint rebuilds the model by itself and reproduces the OOF predictions
    model = load_fold_model(run / "model.pt")
    held_out = data.train_images[saved["oof_index"]]
    np.testing.assert_allclose(predict(model, held_out), saved["oof"], atol=1e-6)
    # per-epoch curves in dvclive's layout: the inner validation split, and the held-out fold for drawing only
    for split in ("val", "held_out"):
        curve = (run / "live" / "plots" / "metrics" / f"{split}_accuracy.tsv").read_text().splitlines()
        assert curve[0].split("\t") == ["step", f"{split}_accuracy"] and len(curve) == 1 + metrics["epochs_run"]


HONEST_RECIPES = {
    "last epoch": FitConfig(epochs=3, batch_size=64, lr=3e-3, rotate=10),
    "early stop, restore, plateau": FitConfig(
        epochs=4, batch_size=64, lr=3e-3, schedule="plateau", plateau_patience=0, val_fraction=0.2, patience=1,
        restore_best=True,
    ),
}  # fmt: skip


@pytest.mark.parametrize("recipe", list(HONEST_RECIPES))
def test_held_out_labels_never_reach_the_model(recipe, sample_prepared, tmp_path):
    """Shuffling the held-out fold's labels changes its score and nothing else: weights, test predictions."""
    data = subset(sample_prepared, np.arange(1500))
    shuffled_labels = data.train_labels.copy()
    held_out = np.flatnonzero(data.folds == 0)
    shuffled_labels[held_out] = np.random.default_rng(0).permutation(shuffled_labels[held_out])
    shuffled = dataclasses.replace(data, train_labels=shuffled_labels)
    config = HONEST_RECIPES[recipe]
    runs = {}
    for name, prepared in (("true", data), ("shuffled", shuffled)):
        runs[name] = train_fold("cnn", 0, TINY_NETS["cnn"], config, prepared, tmp_path / name, 3, torch.device("cpu"))
    weights = {name: torch.load(tmp_path / name / "model.pt")["state_dict"] for name in runs}
    assert weights["true"].keys() == weights["shuffled"].keys()
    assert all(torch.equal(weights["true"][k], weights["shuffled"][k]) for k in weights["true"])
    predictions = {name: np.load(tmp_path / name / "predictions.npz") for name in runs}
    np.testing.assert_array_equal(predictions["true"]["test"], predictions["shuffled"]["test"])
    np.testing.assert_array_equal(predictions["true"]["oof"], predictions["shuffled"]["oof"])
    (true_metrics, _), (shuffled_metrics, _) = runs["true"], runs["shuffled"]
    assert true_metrics["kept_epoch"] == shuffled_metrics["kept_epoch"]
    assert true_metrics["accuracy"] > shuffled_metrics["accuracy"] + 0.3  # the labels did differ


def test_held_out_curve_is_scored_every_nth_epoch_and_changes_nothing(sample_prepared):
    """held_out_curve_every only thins the learning curve: the same weights, the same scores where it scores."""
    data = sample_prepared
    train_x, train_y = tensors(data, np.flatnonzero(data.folds >= 3)[:512])
    held_out = tensors(data, np.flatnonzero(data.folds == 0))
    config = FitConfig(epochs=5, batch_size=64, lr=3e-3, rotate=10)
    models, histories = {}, {}
    for every in (1, 2, 0):
        generator = seed_everything(0)
        models[every] = build_model("lenet", TINY_NETS["lenet"])
        result = fit(
            models[every], train_x, train_y, config, generator, torch.device("cpu"), held_out=held_out,
            held_out_curve_every=every, bfloat16=True,
        )  # fmt: skip
        histories[every] = result.history
    scored = {every: [r["epoch"] for r in h if "held_out_accuracy" in r] for every, h in histories.items()}
    assert scored == {1: [1, 2, 3, 4, 5], 2: [2, 4, 5], 0: []}
    for epoch in scored[2]:
        assert histories[2][epoch - 1] == histories[1][epoch - 1]
    weights = {every: model.state_dict() for every, model in models.items()}
    for every in (2, 0):
        assert all(torch.equal(weights[1][key], weights[every][key]) for key in weights[1])


def test_early_stopping_restores_the_best_epoch(sample_prepared):
    data = sample_prepared
    train_x, train_y = tensors(data, np.flatnonzero(data.folds == 4)[:400])
    val_x, val_y = tensors(data, np.flatnonzero(data.folds == 0))
    # a learning rate this high makes validation accuracy wander, so patience triggers
    config = FitConfig(
        epochs=12, batch_size=32, optimizer="sgd", lr=0.5, schedule="constant", patience=2, restore_best=True
    )
    model = build_model("mlp", TINY_NETS["mlp"])
    result = fit(
        model, train_x, train_y, config, seed_everything(0), torch.device("cpu"), val=(val_x, val_y),
        held_out=(val_x, val_y), held_out_curve_every=100,
    )  # fmt: skip
    assert "held_out_accuracy" in result.history[-1]  # the curve ends where training stopped early
    best = min(result.history, key=lambda r: r["val_loss"])
    assert result.kept_epoch == best["epoch"] < len(result.history)
    assert len(result.history) - result.kept_epoch == 2  # stopped after `patience` epochs without a lower loss
    restored = (predict(model, val_x.numpy()).argmax(1) == val_y.numpy()).mean()
    assert restored == pytest.approx(best["val_accuracy"], abs=1e-6)


def test_weight_averaging_keeps_the_mean_of_the_last_epochs_steps(sample_prepared):
    """With `average_epochs`, training is unchanged and the model left is the mean of the weights after each
    step of the last epochs."""
    data = sample_prepared
    train_x, train_y = tensors(data, np.flatnonzero(data.folds == 4)[:320])  # 5 steps an epoch
    models, steps = {}, []

    def record(optimizer, args, kwargs):
        model = models["off"]
        steps.append([t.detach().clone() for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()])

    for name, average_epochs in (("off", 0), ("on", 2)):
        config = FitConfig(epochs=3, batch_size=64, lr=3e-3, rotate=10, average_epochs=average_epochs)
        generator = seed_everything(0)
        models[name] = build_model("cnn", TINY_NETS["cnn"])  # BatchNorm: its statistics are averaged too
        hook = register_optimizer_step_post_hook(record) if name == "off" else None
        fit(models[name], train_x, train_y, config, generator, torch.device("cpu"))
        if hook:
            hook.remove()
    assert len(steps) == 15
    averaged = steps[5:]  # epochs 2 and 3
    expected = [torch.stack(tensors).mean(0) for tensors in zip(*averaged, strict=True)]
    on = models["on"]
    kept = [t for t in (*on.parameters(), *on.buffers()) if t.is_floating_point()]
    for got, want in zip(kept, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert not all(torch.equal(got, last) for got, last in zip(kept, steps[-1], strict=True))


@pytest.mark.parametrize("schedule", ["exponential", "plateau", "constant", "onecycle"])
def test_schedules_change_the_learning_rate_as_documented(schedule, sample_prepared):
    data = sample_prepared
    train_x, train_y = tensors(data, np.arange(256))
    config = FitConfig(epochs=3, batch_size=64, lr=0.01, schedule=schedule, gamma=0.5)
    result = fit(
        build_model("mlp", TINY_NETS["mlp"]), train_x, train_y, config, seed_everything(0), torch.device("cpu"),
        val=(train_x, train_y),
    )  # fmt: skip
    lrs = [r["lr"] for r in result.history]
    if schedule == "exponential":
        assert lrs == pytest.approx([0.01, 0.005, 0.0025])  # the lr each epoch trained with
    elif schedule == "constant":
        assert lrs == [0.01] * 3


def test_inner_validation_split_is_stratified_and_seeded(sample_prepared):
    labels = sample_prepared.train_labels
    mask = stratified_holdout(labels, 0.1, seed=5)
    per_digit = np.bincount(labels[mask], minlength=10) / np.bincount(labels, minlength=10)
    np.testing.assert_allclose(per_digit, 0.1, atol=0.01)
    np.testing.assert_array_equal(mask, stratified_holdout(labels, 0.1, seed=5))
    assert not np.array_equal(mask, stratified_holdout(labels, 0.1, seed=6))


def test_augmentation_moves_ink_but_keeps_the_digit(sample_prepared):
    images = torch.from_numpy(sample_prepared.train_images[:256]).unsqueeze(1).float() / 255
    generator = torch.Generator().manual_seed(0)
    warped = random_affine(images, rotate=10, zoom=0.1, shift=0.1, generator=generator)
    assert warped.shape == images.shape
    assert not torch.allclose(warped, images)
    ink_ratio = warped.sum((1, 2, 3)) / images.sum((1, 2, 3))
    assert 0.7 < ink_ratio.median() < 1.3  # zoom changes the ink a little, shifting keeps the digit in frame
    unchanged = random_affine(images, 0, 0, 0, generator)
    assert torch.equal(unchanged, images)


def test_elastic_distortion_bends_strokes_smoothly_by_at_most_its_pixels(sample_prepared):
    images = torch.from_numpy(sample_prepared.train_images[:256]).unsqueeze(1).float() / 255
    warped = random_affine(images, 0, 0, 0, torch.Generator().manual_seed(0), elastic=2)
    assert not torch.allclose(warped, images)
    assert torch.equal(warped, random_affine(images, 0, 0, 0, torch.Generator().manual_seed(0), elastic=2))
    ink_ratio = warped.sum((1, 2, 3)) / images.sum((1, 2, 3))
    assert 0.9 < ink_ratio.median() < 1.1  # bent, not shrunk or cropped

    u = torch.rand(64, 2 * ELASTIC_POINTS**2, generator=torch.Generator().manual_seed(1)) * 2 - 1
    pixels = elastic_displacement(u, 2.0, 28, 28) * 14  # normalised grid units -> pixels (28 px span 2 units)
    assert pixels.shape == (64, 28, 28, 2)
    assert 1.0 < pixels.abs().amax() <= 2.0 * 1.4  # bicubic overshoots its control points by up to a third
    steps = (pixels[:, 1:] - pixels[:, :-1]).abs()
    assert steps.amax() < 1.0  # smooth: neighbours move nearly together (noise per pixel: up to 4 px apart)
    # without elastic the noise is the affine's 4 numbers a row, so the other recipes draw what they drew before
    assert affine_noise(3, torch.Generator(), torch.device("cpu")).shape == (3, 4)
    assert affine_noise(3, torch.Generator(), torch.device("cpu"), steps=2, elastic=1).shape == (2, 3, 54)


def test_affine_grid_matches_torchs():
    theta = torch.randn(5, 2, 3, generator=torch.Generator().manual_seed(0))
    expected = torch.nn.functional.affine_grid(theta, [5, 1, 28, 20], align_corners=False)
    torch.testing.assert_close(affine_grid(theta, 28, 20), expected)


def test_unknown_params_fail_loudly():
    with pytest.raises(UserError, match=r"models\.cnn\.epoch: unknown key"):
        FitConfig.from_params("cnn", {"epoch": 3})
    with pytest.raises(UserError, match="optimizer"):
        FitConfig.from_params("cnn", {"optimizer": "adagrad"})
    for decision in ({"patience": 3}, {"restore_best": True}, {"schedule": "plateau"}):
        with pytest.raises(UserError, match="held-out CV fold never chooses"):
            FitConfig.from_params("cnn", decision)  # needs an inner validation split
        assert FitConfig.from_params("cnn", {**decision, "val_fraction": 0.1}).needs_validation
    with pytest.raises(UserError, match=r"models\.cnn\.net"):
        build_model("cnn", {"width": 3})
    with pytest.raises(UserError, match="unknown architecture"):
        build_model("resnet", {})


def test_cnn_follows_the_recipes_shapes():
    """[C3-C3-C5S2] blocks with unpadded 3x3 convs: 28 -> 12 -> 4, so the dense layer sees 64 x 4 x 4."""
    model = build_model("cnn", {"channels": [32, 64], "dense": 128, "dropout": 0.4})
    assert model.classifier[1].in_features == 64 * 4 * 4
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    with pytest.raises(UserError, match=r"models\.cnn\.net .* at most 2"):
        build_model("cnn", {"channels": [8, 8, 8]})


@pytest.mark.parametrize("channels_last", [False, True])
def test_byte_dropout_drops_at_its_rate_and_keeps_the_mean(channels_last):
    from digit_recognizer.models.dropout import ByteDropout

    x = torch.rand(64, 32, 12, 12) + 0.5
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    dropout = ByteDropout(0.25)
    torch.manual_seed(0)
    y = dropout(x)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.75) < 0.005
    torch.testing.assert_close(y[kept], x[kept] / 0.75)
    assert abs(y.mean().item() / x.mean().item() - 1) < 0.01
    # neighbours in memory (channels, for channels-last) are dropped independently
    assert abs(kept[:, 0].float().mean().item() - 0.75) < 0.03 and (kept[:, 0] != kept[:, 1]).any()
    torch.manual_seed(0)
    assert torch.equal(dropout(x), y)  # seeded: the same mask
    assert torch.equal(dropout.eval()(x), x)


def test_deskew_layer_stands_digits_upright_and_centres_them(sample_prepared):
    from digit_recognizer.models.deskew import Deskew
    from digit_recognizer.training.predict import MNIST_MEAN, MNIST_STD, normalize, to_model_input

    def slant_and_centre(x):
        ink = (x * MNIST_STD + MNIST_MEAN).clamp(min=0).flatten(1)
        rows, cols = torch.arange(28.0).repeat_interleave(28), torch.arange(28.0).repeat(28)
        total = ink.sum(1)
        r, c = (ink * rows).sum(1) / total, (ink * cols).sum(1) / total
        dr, dc = rows - r[:, None], cols - c[:, None]
        return (ink * dr * dc).sum(1) / (ink * dr * dr).sum(1), r, c

    x = normalize(to_model_input(torch.from_numpy(sample_prepared.train_images[:200])))
    before, _, _ = slant_and_centre(x)
    after, r, c = slant_and_centre(Deskew()(x))
    assert before.abs().mean() > 0.1  # handwriting slants
    assert after.abs().mean() < before.abs().mean() / 4
    assert (r - 13.5).abs().max() < 0.5 and (c - 13.5).abs().max() < 0.5
    upright = Deskew()(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # training under autocast deskews as predict does
        torch.testing.assert_close(Deskew()(x), upright)
    model = build_model("cnn3", {**TINY_NETS["cnn3"], "deskew": True})
    assert model(x[:5]).shape == (5, 10)


NO_NATIVE_BFLOAT16 = """
import numpy as np, torch
from digit_recognizer.training.device import choose_precision
from digit_recognizer.errors import UserError
from digit_recognizer.training.fold_run import check_precision_runs
from digit_recognizer.models import build_model
from digit_recognizer.params import FitConfig
from digit_recognizer.training.loop import fit, seed_everything

cpu = torch.device("cpu")
auto = choose_precision("auto", cpu)
print("auto:", auto)
model = build_model("lstm", {"hidden": 16})
check_precision_runs(model, "lstm", auto, cpu)
x, y = torch.randint(0, 256, (128, 28, 28), dtype=torch.uint8), torch.randint(0, 10, (128,))
fit(model, x, y, FitConfig(epochs=1, batch_size=64), seed_everything(0), cpu, bfloat16=auto.bfloat16)
print("trained")
try:
    check_precision_runs(model, "lstm", choose_precision("bfloat16", cpu), cpu)
except UserError as error:
    print("error:", error)
"""


def test_without_native_bfloat16_auto_trains_in_float32_and_a_forced_bfloat16_lstm_stops_in_one_line():
    result = subprocess.run(
        [sys.executable, "-c", NO_NATIVE_BFLOAT16], capture_output=True, text=True, env={**os.environ, **AVX2_ONLY}
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if not line.startswith("train epoch")]
    assert lines[0] == "auto: float32, this CPU has no native bfloat16 (AVX2)"
    assert lines[1] == "trained"
    assert lines[2].startswith("error: lstm: no bfloat16 kernel for this network on this CPU (AVX2) (")
    assert lines[2].endswith("set train.precision to auto or float32") and len(lines) == 3


def test_a_log_gets_one_line_per_epoch_and_no_progress_bar(sample_prepared, capsys):
    """Not a terminal (a log file, `dvc exp run`'s output): no carriage-return fragments of a progress bar."""
    x, y = tensors(sample_prepared, slice(0, 256))
    fit(build_model("mlp", {}), x, y, FitConfig(epochs=2, batch_size=64), seed_everything(0), torch.device("cpu"))
    out, err = capsys.readouterr()
    assert "\r" not in out + err
    assert [line.split(":")[0] for line in out.splitlines()] == ["train epoch 1/2", "train epoch 2/2"]
