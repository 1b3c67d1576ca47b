"""iterations="auto": the stopping rule of the one loop, and progress totals that stay honest."""

from __future__ import annotations

import pytest
import torch

from napari_style_transfer.engine import StyleConfig, stylize_iter
from napari_style_transfer.engine.optimise import LoopSettings, Steps, optimise
from napari_style_transfer.engine.stopping import AUTO_FINAL, Budget, Plateau, expected_steps, scale_budgets

RULE = Budget(max_steps=400, window=10, tolerance=0.01, min_steps=20, expected=100)


def steps_until_stop(budget: Budget, losses) -> int:
    plateau = Plateau(budget)
    for step, loss in enumerate(losses, start=1):
        if plateau.update(loss):
            return step
    return -1


def test_a_converged_loss_stops_at_the_minimum_and_an_improving_one_runs_on():
    assert steps_until_stop(RULE, [5.0] * 1000) == RULE.min_steps  # flat: stops as soon as allowed
    # 2 % less every step (18 % per window of 10): still improving, so it runs to the budget
    assert steps_until_stop(RULE, [100 * 0.98**i for i in range(1000)]) == RULE.max_steps
    # falls fast, then flattens: stops after the fall, well before the budget
    curve = [1 + 50 / (1 + i) ** 2 for i in range(1000)]
    stop = steps_until_stop(RULE, curve)
    assert RULE.min_steps < stop < RULE.max_steps
    assert (curve[stop - 1 - RULE.window] - curve[stop - 1]) / curve[stop - 1] < RULE.tolerance


def test_a_jittering_loss_that_still_improves_is_not_taken_for_flat():
    """The sliced loss draws new projections every step: its value jitters by a few per cent."""
    import random

    budget = Budget(max_steps=1000, window=20, tolerance=0.03, min_steps=30)
    # improves by ~10/t per window of 20: the rule should stop near step 330 without noise
    clean = [100 / (1 + i) ** 0.5 for i in range(1000)]
    assert 300 <= steps_until_stop(budget, clean) <= 360
    for seed in range(20):
        rng = random.Random(seed)
        noisy = [v * (1 + rng.gauss(0, 0.02)) for v in clean]
        assert steps_until_stop(budget, noisy) > 150  # single steps' losses stopped at 125-164


def test_a_number_of_iterations_means_exactly_that_many_steps():
    assert steps_until_stop(Budget(37), [5.0] * 100) == 37
    assert scale_budgets(37, 3) == [Budget(37)] * 3 and expected_steps(37, 2) == [37, 37]
    assert scale_budgets("auto", 2)[-1] == AUTO_FINAL


def test_the_estimate_tracks_the_stop_and_is_exact_when_it_comes():
    plateau = Plateau(RULE)
    curve = [1 + 50 / (1 + i) ** 1.5 for i in range(1000)]
    estimates = []
    for loss in curve:
        if plateau.update(loss):
            break
        estimates.append(plateau.expected)
    assert plateau.expected == plateau.steps  # exact at the end
    assert all(RULE.min_steps <= e <= RULE.max_steps for e in estimates)
    late = estimates[len(estimates) // 2 :]
    assert max(abs(e - plateau.steps) for e in late) <= 0.5 * plateau.steps  # refined as it goes


def test_non_finite_losses_never_stop_the_rule_early():
    assert steps_until_stop(RULE, [float("nan")] * 500) == RULE.max_steps


class Quadratic:
    """A converging objective with the Objective's interface: ‖x − target‖² (L-BFGS solves it fast)."""

    def __init__(self, target: torch.Tensor):
        self.target = target
        self.extract = self

    def compiled(self):
        return None

    def loss(self, image):
        total = (image - self.target).pow(2).sum() + 1.0  # + 1: the loss converges to 1, not 0
        return total, {"total": total}


def test_the_loop_stops_on_a_converged_problem():
    target = torch.rand(1, 3, 8, 8)
    steps = Steps(optimise(torch.zeros_like(target), Quadratic(target), RULE, LoopSettings()))
    taken = list(steps)
    assert len(taken) == RULE.min_steps and taken[-1].last and not any(s.last for s in taken[:-1])
    assert steps.outcome is not None and steps.outcome.iterations == RULE.min_steps
    assert torch.allclose(steps.outcome.image, target, atol=1e-3)


@pytest.mark.usefixtures("one_torch_thread")
def test_auto_runs_end_with_an_exact_total_that_no_earlier_event_reached(content_image, style_image):
    config = StyleConfig(size=48, iterations="auto", device="cpu", preview_every=0, seed=0)
    events = list(stylize_iter(content_image, style_image, config))
    final = events[-1]
    assert final.done and not final.estimated and final.step == final.total_steps == len(events)
    assert all(e.estimated for e in events[:-1])
    fractions = [e.step / e.total_steps for e in events]
    assert fractions[-1] == 1.0 and max(fractions[:-1]) < 1.0
    assert final.step < AUTO_FINAL.max_steps  # the rule ended it, not the budget
