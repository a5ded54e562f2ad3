"""The shipped digit classifiers: accuracy on the held-out test split, size, reproducible training."""

from __future__ import annotations

import json

import pytest
import torch

from genmodels.errors import CheckpointError, DataError
from genmodels.metrics.classifier import DigitClassifier, asset_path, load_classifier
from genmodels.metrics.train_classifier import ClassifierTrainConfig, accuracy, train


def _load_or_skip(name: str, split: str):
    from genmodels import data
    from genmodels.errors import DataError as DE

    try:
        return data.load(name, split=split)
    except DE as e:  # the data set's source package is not installed
        pytest.skip(str(e))


@pytest.mark.parametrize("dataset, floor", [("mnist", 0.99), ("fashion-mnist", 0.90)])
def test_shipped_classifier_accuracy_on_the_test_split(dataset, floor):
    if not asset_path(dataset, ".safetensors").is_file():
        pytest.fail(f"no shipped classifier for {dataset}")
    test = _load_or_skip(dataset, "test")
    model, card = load_classifier(dataset)
    with torch.no_grad():
        acc = accuracy(model, test.x, test.y)
    assert acc >= floor
    assert acc == pytest.approx(card.test_accuracy, abs=2e-4)  # the card states what the weights do
    assert card.dataset == dataset and "train_classifier" in card.command
    assert asset_path(dataset, ".safetensors").stat().st_size < 1_000_000
    json.loads(asset_path(dataset, ".json").read_text())


def test_features_and_logits_shapes():
    model, _ = load_classifier("mnist")
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    assert model.features(x).shape == (3, 128)
    assert model(x).shape == (3, 10)
    with pytest.raises(DataError, match="28, 28"):
        model(torch.zeros(2, 1, 32, 32))


def test_training_is_reproducible_from_the_seed():
    g = torch.Generator().manual_seed(5)
    x, y = torch.rand(64, 1, 28, 28, generator=g) * 2 - 1, torch.randint(0, 10, (64,), generator=g)
    cfg = ClassifierTrainConfig(epochs=1, batch_size=32)
    a = train(x, y, cfg, torch.Generator().manual_seed(0))
    b = train(x, y, cfg, torch.Generator().manual_seed(0))
    c = train(x, y, cfg, torch.Generator().manual_seed(1))
    for (ka, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(va, vb), ka
    assert any(not torch.equal(va, vc) for va, vc in zip(a.state_dict().values(), c.state_dict().values(), strict=True))


def test_bad_weights_file_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="no classifier weights"):
        load_classifier("mnist", tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError):
        load_classifier("mnist", bad)
    from safetensors.torch import save_file

    wrong = tmp_path / "wrong.safetensors"
    save_file({"head.weight": torch.zeros(10, 7)}, str(wrong))
    with pytest.raises(CheckpointError, match="do not fit"):
        load_classifier("mnist", wrong)
    assert isinstance(DigitClassifier(), torch.nn.Module)
