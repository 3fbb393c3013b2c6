"""Vectorised batch augmentation: per-sample flips and shifts, reproducible from a generator."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from csg_interp.training import augment_batch
from csg_interp.training.augment import random_flip, random_shift


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_flip_gives_each_sample_either_itself_or_its_mirror():
    images = torch.rand(64, 2, 5, 7)
    out = random_flip(images, _generator())
    same = (out == images).flatten(1).all(1)
    mirrored = (out == images.flip(-1)).flatten(1).all(1)
    assert bool((same | mirrored).all())
    assert 10 < int(mirrored.sum()) < 54  # about half, per sample (not one draw per batch)


def test_shift_is_a_zero_filled_translation_within_pad():
    images = torch.rand(32, 3, 6, 6) + 1.0  # strictly positive, so the zero fill is visible
    out = random_shift(images, pad=2, generator=_generator(1))
    padded = F.pad(images, (2, 2, 2, 2))
    offsets = set()
    for i in range(images.shape[0]):  # loop only in the test: find this sample's window
        matches = [(dy, dx) for dy in range(5) for dx in range(5)
                   if torch.equal(out[i], padded[i, :, dy:dy + 6, dx:dx + 6])]  # fmt: skip
        assert matches, i
        offsets.add(matches[0])
    assert len(offsets) > 5  # each sample draws its own offset


def test_the_same_generator_seed_replays_the_same_batch():
    images = torch.rand(16, 1, 8, 8)
    a = augment_batch(images, "flip_shift", _generator(5))
    b = augment_batch(images, "flip_shift", _generator(5))
    c = augment_batch(images, "flip_shift", _generator(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_none_returns_the_batch_and_bad_input_is_rejected():
    images = torch.rand(4, 1, 8, 8)
    assert augment_batch(images, "none") is images
    assert torch.equal(random_shift(images, pad=0), images)
    with pytest.raises(ValueError, match="unknown augmentation 'rotate'"):
        augment_batch(images, "rotate")
    with pytest.raises(ValueError, match="pad must be ≥ 0"):
        random_shift(images, pad=-1)
