"""FGSM / PGD wrappers around captum.robust: bounds, success accounting, hand-checked steps."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from csg_interp.applications.attacks import (
    AttackResult,
    attack,
    check_epsilon,
    default_step_size,
    margin_loss,
)


class TwoClassLinear(nn.Module):
    """logits = [0, w·x]: the CE gradient w.r.t. x for label 0 has the sign of w."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.flatten().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x.flatten(1) @ self.weight
        return torch.stack([torch.zeros_like(z), z], dim=1)


@pytest.fixture(scope="module")
def trained_tiny(tiny_digits_pair):
    """The STD smallcnn of the shared tiny digits pair (8×8 images) and 200 of its test images."""
    from csg_interp.training import load_run

    run = load_run(tiny_digits_pair["std"])
    images, labels = run.load_data().test.tensors()
    return run.net.eval(), images[:200], labels[:200]


@pytest.mark.parametrize("eps", [-0.01, 1.5, 8, "x", None])
def test_epsilon_outside_unit_interval_is_refused(eps):
    with pytest.raises(ValueError, match=r"\[0, 1\] pixel units"):
        check_epsilon(eps)


def test_epsilon_in_255_units_gets_a_hint():
    with pytest.raises(ValueError, match=r"8/255"):
        attack(nn.Flatten(), torch.rand(1, 1, 2, 2), torch.tensor([0]), eps=8)


def test_unknown_method_and_loss_are_refused():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    x, y = torch.rand(2, 1, 2, 2), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="unknown attack 'cw'"):
        attack(model, x, y, method="cw", eps=0.1)
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        attack(model, x, y, eps=0.1, loss="hinge")


def test_images_outside_pixel_range_are_refused():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        attack(model, torch.full((1, 1, 2, 2), 2.0), torch.tensor([0]), eps=0.1)


def test_targets_without_targeted_flag_are_refused():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match="targeted=True"):
        attack(model, torch.rand(1, 1, 2, 2), torch.tensor([0]), eps=0.1, targets=torch.tensor([1]))


def test_fgsm_step_is_eps_times_sign_of_weight_then_clipped():
    weight = torch.tensor([1.0, -2.0, 0.5, -0.1])
    model = TwoClassLinear(weight)
    x = torch.tensor([0.5, 0.5, 0.95, 0.02]).view(1, 1, 2, 2)
    result = attack(model, x, torch.tensor([0]), method="fgsm", eps=0.1)
    expected = torch.tensor([0.6, 0.4, 1.0, 0.0]).view(1, 1, 2, 2)  # x + 0.1·sign(w), clip [0, 1]
    torch.testing.assert_close(result.adversarial, expected)


def test_targeted_fgsm_steps_towards_the_target():
    # Targeted at class 1 means descending CE(·, 1), i.e. raising w·x: again +eps·sign(w).
    model = TwoClassLinear(torch.tensor([1.0, -1.0, 1.0, -1.0]))
    x = torch.full((1, 1, 2, 2), 0.5)
    result = attack(model, x, torch.tensor([0]), method="fgsm", eps=0.2, targeted=True,
                    targets=torch.tensor([1]))
    torch.testing.assert_close(result.adversarial.flatten(), torch.tensor([0.7, 0.3, 0.7, 0.3]))
    assert result.targets.tolist() == [1]


def test_pgd_step_size_default():
    assert default_step_size(0.1, 10) == pytest.approx(0.025)


def test_margin_loss_hand_values():
    logits = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 5.0]])
    torch.testing.assert_close(margin_loss(logits, torch.tensor([0, 1])), torch.tensor([-2.0, 3.0]))


def test_success_counts_only_correctly_classified_images():
    result = AttackResult(
        adversarial=torch.zeros(4, 1, 1, 1), labels=torch.tensor([0, 1, 2, 3]), targets=None,
        clean_pred=torch.tensor([0, 1, 0, 3]), adv_pred=torch.tensor([1, 1, 1, 0]),
        eps=0.1, method="pgd",
    )
    assert result.correct.tolist() == [True, True, False, True]
    assert result.success.tolist() == [True, False, False, True]  # image 2 was already wrong
    assert result.success_rate == pytest.approx(2 / 3)


def test_targeted_success_needs_the_target_class():
    result = AttackResult(
        adversarial=torch.zeros(2, 1, 1, 1), labels=torch.tensor([0, 0]),
        targets=torch.tensor([1, 2]), clean_pred=torch.tensor([0, 0]),
        adv_pred=torch.tensor([1, 1]), eps=0.1, method="pgd",
    )
    assert result.success.tolist() == [True, False]


@pytest.mark.parametrize("method", ["fgsm", "pgd"])
def test_perturbation_stays_in_the_ball_and_in_pixel_range(trained_tiny, method):
    net, images, labels = trained_tiny
    result = attack(net, images, labels, method=method, eps=0.1)
    assert float((result.adversarial - images).abs().max()) <= 0.1 + 1e-6
    assert float(result.adversarial.min()) >= 0.0 and float(result.adversarial.max()) <= 1.0


def test_pgd_flips_trained_model_at_largest_eps_and_never_at_zero(trained_tiny):
    net, images, labels = trained_tiny
    none = attack(net, images, labels, method="pgd", eps=0.0)
    assert int(none.correct.sum()) >= 120  # the fixture is a reasonable classifier (157/200 here)
    assert int(none.success.sum()) == 0
    torch.testing.assert_close(none.adversarial, images)
    strong = attack(net, images, labels, method="pgd", eps=0.3)
    assert strong.success_rate >= 0.9


def test_targeted_pgd_reaches_random_targets(trained_tiny):
    net, images, labels = trained_tiny
    result = attack(net, images, labels, method="pgd", eps=0.3, targeted=True, seed=3, steps=20)
    assert bool((result.targets != labels).all())
    assert result.success_rate >= 0.75  # 0.88 here
    hit = result.success
    assert bool((result.adv_pred[hit] == result.targets[hit]).all())


@pytest.mark.parametrize("method", ["fgsm", "pgd"])
def test_batched_attack_equals_one_batch(trained_tiny, method):
    net, images, labels = trained_tiny
    images, labels = images[:40], labels[:40]
    whole = attack(net, images, labels, method=method, eps=0.1, random_start=False, batch_size=40)
    chunked = attack(net, images, labels, method=method, eps=0.1, random_start=False, batch_size=7)
    torch.testing.assert_close(whole.adversarial, chunked.adversarial, atol=1e-6, rtol=0)
    assert torch.equal(whole.adv_pred, chunked.adv_pred)


def test_random_start_is_seeded_and_leaves_global_rng_alone(trained_tiny):
    net, images, labels = trained_tiny
    torch.manual_seed(7)
    expected_next = torch.rand(1)
    torch.manual_seed(7)
    first = attack(net, images[:20], labels[:20], eps=0.1, seed=5)
    assert torch.equal(torch.rand(1), expected_next)
    second = attack(net, images[:20], labels[:20], eps=0.1, seed=5)
    assert torch.equal(first.adversarial, second.adversarial)


def test_attack_restores_training_mode(trained_tiny):
    net, images, labels = trained_tiny
    net.train()
    try:
        attack(net, images[:4], labels[:4], eps=0.05, steps=2)
        assert net.training
    finally:
        net.eval()
