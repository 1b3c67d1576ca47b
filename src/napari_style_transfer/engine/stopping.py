"""When one call of the optimisation loop ends: after a fixed number of steps, or once the image stops improving.

``iterations="auto"`` gives each scale a :class:`Budget` with a stopping rule: the loop stops
when the loss has fallen by less than ``tolerance`` (relative) over the last ``window`` steps.
Each end of the window is the mean of a few steps' losses, so that a loss that jitters from
step to step (the sliced Wasserstein loss draws new projections every step) does not look flat
by chance.
The coarse scales, which are cheap, get most of the work and a tight tolerance; the output
size only polishes. The numbers come from measurements on four pairs (docs/quality.md).
A number of iterations still means exactly that many steps at every scale.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

#: The value of ``StyleConfig.iterations`` that turns the stopping rule on.
AUTO = "auto"


@dataclass(frozen=True)
class Budget:
    """How many steps one call of the loop may take, and when it may end sooner.

    ``window == 0``: exactly ``max_steps`` steps. Otherwise the call ends after the first
    step, from ``min_steps`` on, at which the loss fell by less than ``tolerance`` of its
    value over the last ``window`` steps (each end averaged over :attr:`smoothing` steps). ``expected`` is the step count to assume before the
    loss says more (for the progress bar's total).
    """

    max_steps: int
    window: int = 0
    tolerance: float = 0.0
    min_steps: int = 0
    expected: int = 0

    @property
    def adaptive(self) -> bool:
        return self.window > 0

    @property
    def smoothing(self) -> int:
        """How many steps' losses are averaged at each end of the window."""
        return max(1, self.window // 4)

    @property
    def prior(self) -> int:
        """Steps to expect before the call starts."""
        return self.expected if self.adaptive and self.expected else self.max_steps


#: The auto budgets: coarse scales (all but the last) and the output size (also each tile).
#: Chosen on four pairs at 512 px (benchmarks/tune_auto.py, docs/quality.md): the coarse scale's
#: steps set the large structures (too few and the style distance at the end rises by up to 20 %),
#: so it runs until the loss falls by less than 0.5 % over 20 steps (205–363 steps there); the
#: output size then stops at 3 % (90–111 steps), where the style distance has bottomed out.
AUTO_COARSE = Budget(max_steps=500, window=20, tolerance=0.005, min_steps=60, expected=280)
AUTO_FINAL = Budget(max_steps=300, window=20, tolerance=0.03, min_steps=30, expected=100)


def scale_budgets(iterations: int | str, n_scales: int) -> list[Budget]:
    """The budget of each scale, coarse to fine (a tiled run's tiles take the last one)."""
    if iterations == AUTO:
        return [AUTO_COARSE] * (n_scales - 1) + [AUTO_FINAL]
    return [Budget(int(iterations))] * n_scales


@dataclass
class Numbering:
    """How a driver numbers its events: one budget per call of the loop (scales, then tiles).

    ``expected`` holds each call's step count as best known now: its budget's prior before it
    runs, the loop's estimate while it runs, the steps it took once it ended. Their sum is the
    run's total, refined as the run goes and equal to the steps taken at the end.
    """

    budgets: list[Budget]
    n_scales: int
    fields: dict[str, Any] = field(default_factory=dict)  # extra ProgressEvent fields (tiles)
    message: str | None = None  # a one-off notice carried by the first event
    expected: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.expected:
            self.expected = [b.prior for b in self.budgets]

    @property
    def total_steps(self) -> int:
        return sum(self.expected)

    @property
    def estimated(self) -> bool:
        """True while the total is an estimate (some call may stop on its own)."""
        return any(b.adaptive for b in self.budgets)


def expected_steps(iterations: int | str, n_scales: int) -> list[int]:
    """Steps to expect at each scale before a run starts (exact for a number of iterations)."""
    return [budget.prior for budget in scale_budgets(iterations, n_scales)]


class Plateau:
    """Follows one call's losses: says when to stop, and how many steps the call will likely take."""

    def __init__(self, budget: Budget):
        self.budget = budget
        self.history: deque[float] = deque(maxlen=budget.window + budget.smoothing)
        self.steps = 0
        self.expected = budget.prior
        self._last_drop: tuple[int, float] | None = None  # (step, relative drop) a window ago

    def relative_drop(self) -> float | None:
        """How much the loss fell over the last window, relative to its value now (None: too early).

        "Then" and "now" are the means of the oldest and of the newest :attr:`Budget.smoothing`
        losses kept, whose middles are ``window`` steps apart.
        """
        k = self.budget.smoothing
        if len(self.history) < self.budget.window + k:
            return None
        kept = list(self.history)
        old, new = sum(kept[:k]) / k, sum(kept[-k:]) / k
        if not (math.isfinite(old) and math.isfinite(new)) or new <= 0:
            return None
        return (old - new) / new

    def update(self, loss: float) -> bool:
        """Record one step's loss; True when this step is the call's last."""
        self.steps += 1
        budget = self.budget
        if self.steps >= budget.max_steps:
            self.expected = self.steps
            return True
        if not budget.adaptive:
            return False
        self.history.append(loss)
        drop = self.relative_drop()
        if drop is not None and self.steps >= budget.min_steps and drop < budget.tolerance:
            self.expected = self.steps
            return True
        if drop is not None:
            self._refine_expected(drop)
        self.expected = max(self.expected, self.steps + 1)  # it goes on: at least one more step
        return False

    def _refine_expected(self, drop: float) -> None:
        """Extrapolate when the drop will reach the tolerance: drop ∝ step^-k, from two windows apart."""
        budget = self.budget
        previous, self._last_drop = self._last_drop, (self.steps, drop)
        if previous is None or previous[0] > self.steps - budget.window:
            if previous is not None:
                self._last_drop = previous
            return
        (t0, d0), t1 = previous, self.steps
        if d0 <= drop or drop <= 0:
            return  # not decaying (yet): keep the last estimate
        k = math.log(d0 / drop) / math.log(t1 / t0)
        # drop/tolerance ** (1/k), in logs: a slowly decaying drop (k near 0) means "not soon"
        at = t1 * math.exp(min(math.log(drop / budget.tolerance) / k, 20.0))
        self.expected = int(min(budget.max_steps, max(t1 + 1, budget.min_steps, math.ceil(at))))


__all__ = [
    "AUTO",
    "AUTO_COARSE",
    "AUTO_FINAL",
    "Budget",
    "Numbering",
    "Plateau",
    "expected_steps",
    "scale_budgets",
]
