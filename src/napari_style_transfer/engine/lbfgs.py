"""L-BFGS with one function evaluation and one host transfer per step.

``torch.optim.LBFGS`` computes its direction with the two-loop recursion: two dot products
and two vector updates per stored pair, about 4 × history small operations per step (200 for
50 pairs), each a separate kernel launch on a GPU and a Python-level call on any device.
Here the history lives in one (2, history, n) tensor and the direction comes from the compact
representation of the inverse Hessian (Byrd, Nocedal & Schnabel, *Representations of
quasi-Newton matrices and their use in limited memory methods*, Math. Prog. 63, 1994):

    H g = γ g + Sᵀ p − γ Yᵀ w,   w = R⁻¹ (S g),   p = R⁻ᵀ ((D + γ Y Yᵀ) w − γ Y g)

with R the upper triangle of S Yᵀ (pairs in chronological order), D its diagonal and
γ = sᵀy / yᵀy of the newest pair. Every dot product a step needs (the history against the
new gradient g, the new difference y and the last step s; g, y and s against each other;
‖g‖₁) comes from one matrix product over the history, and goes to the host in **one**
transfer together with the caller's loss terms; the (history × history) algebra, the
curvature test and the descent test (gᵀHg from the same products) run in float64 numpy on
the host, and the direction is two matrix–vector products with coefficients uploaded in the
parameter's dtype (MPS has no float64). The iterates are those of the two-loop recursion
(``tests/engine/test_lbfgs.py`` checks both).

Step rule as in ``torch.optim.LBFGS(max_iter=1)`` without line search: the first step is
scaled to ``min(1, 1/‖g‖₁)·lr``, later ones take ``lr``; a pair enters the history only when
sᵀy > 1e-10. Where torch's version would stop for good (a direction that is not a descent
direction), this one drops the history and takes a steepest-descent step instead. A gradient
that is not finite (an fp16 overflow) changes nothing: the step is skipped (:attr:`skipped`)
so that the caller can evaluate it again with a smaller loss scale.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch

from .runtime import LossScaler, loss_values, to_host, upload

#: A pair is kept only when its curvature sᵀy exceeds this (as in torch.optim.LBFGS).
CURVATURE_EPS = 1e-10

#: What a closure may return: the loss, or the loss and named scalar terms to fetch with the step.
ClosureResult = torch.Tensor | tuple[torch.Tensor, Mapping[str, torch.Tensor]]


def lbfgs_settings(lr: float, history_size: int) -> dict:
    """The param-group defaults of an L-BFGS here, checked (one message per bad value)."""
    if not lr > 0:
        raise ValueError(f"lr: must be > 0, got {lr!r}")
    if int(history_size) < 1:
        raise ValueError(f"history_size: must be >= 1, got {history_size!r}")
    return {"lr": float(lr), "history_size": int(history_size)}


def the_one_tensor(optimizer: torch.optim.Optimizer) -> torch.Tensor:
    """The single tensor an L-BFGS here optimises (its history is one flat vector per pair)."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if len(params) != 1:
        raise ValueError(f"{type(optimizer).__name__} optimises exactly one tensor")
    return params[0]


class WithoutDynamoImport:
    """An optimiser mixin: building it does not import ``torch._dynamo``.

    ``torch.optim.Optimizer.add_param_group`` is wrapped to import ``torch._dynamo`` on its
    first call (1.3 s of imports, sympy among them, that hold the GIL for up to 200 ms at a
    time: a viewer's event loop stalls while a run's first optimiser is built in its worker
    thread; docs/benchmarks.md, issue 26). Nothing here runs under ``torch.compile`` (only the
    network is compiled), so the plain function (``functools.wraps``' ``__wrapped__``) is called.
    """

    def add_param_group(self, param_group: dict) -> None:
        plain = getattr(torch.optim.Optimizer.add_param_group, "__wrapped__", None)
        if plain is None:  # another torch: its own way
            super().add_param_group(param_group)  # type: ignore[misc]
        else:
            plain(self, param_group)


def clear_gradients(optimizer: torch.optim.Optimizer) -> None:
    """``optimizer.zero_grad(set_to_none=True)`` without its first-call ``torch._dynamo`` import."""
    for group in optimizer.param_groups:
        for param in group["params"]:
            param.grad = None


class CompactLBFGS(WithoutDynamoImport, torch.optim.Optimizer):
    """L-BFGS for one tensor, one closure evaluation and one device → host transfer per :meth:`step`.

    The closure may return ``(loss, terms)``: the scalar tensors in ``terms`` are fetched in
    the step's one transfer and left in :attr:`fetched` as floats.
    """

    def __init__(self, params, lr: float = 1.0, history_size: int = 50):
        super().__init__(params, lbfgs_settings(lr, history_size))
        self._param = the_one_tensor(self)
        #: The closure's terms after the last step, as floats.
        self.fetched: dict[str, float] = {}
        #: Whether the last step was skipped because the gradient was not finite.
        self.skipped = False

    def _history(self) -> dict:
        state = self.state[self._param]
        if "rows" not in state:
            param = self._param
            m, n = self.param_groups[0]["history_size"], param.numel()
            # fp32 algebra for fp32 (and lower) parameters, fp64 for fp64 ones.
            dtype = torch.float64 if param.dtype == torch.float64 else torch.float32
            # rows[0] = S (steps), rows[1] = Y (gradient changes); only filled rows are read.
            state["rows"] = torch.empty((2, m, n), dtype=dtype, device=param.device)
            # Vectors of the current step: g (new gradient), y = g − g_prev, s (last step), g_prev.
            state["vectors"] = torch.empty((4, n), dtype=dtype, device=param.device)
            # The small matrices live on the host in float64 (slot order).
            state["SY"] = np.zeros((m, m))  # SY[i, j] = s_i · y_j
            state["YY"] = np.zeros((m, m))  # YY[i, j] = y_i · y_j
            state["order"] = []  # slots, oldest first
            state["steps"] = 0
        return state

    def _products(self, state: dict, extras: Mapping[str, torch.Tensor]) -> tuple[np.ndarray, ...]:
        """All dot products of the step and the caller's terms, in one transfer.

        Returns (G, hist, l1, extra values): G[a, b] = v_a · v_b for v = (g, y, s) (only g on
        the first step), hist[r, i, a] = row i of S (r=0) or Y (r=1) · v_a, and ‖g‖₁.
        """
        order = state["order"]
        vectors = state["vectors"][: 1 if state["steps"] == 0 else 3]
        filled = max(order) + 1 if order else 0
        parts = [(vectors @ vectors.T).reshape(-1), vectors[0].abs().sum().reshape(1)]
        if filled:
            parts.append((state["rows"][:, :filled] @ vectors.T).reshape(-1))
        if extras:
            parts.append(torch.stack([v.detach().reshape(()).to(vectors.dtype) for v in extras.values()]))
        host = to_host(torch.cat(parts)).astype(np.float64)
        nv = vectors.shape[0]
        G = host[: nv * nv].reshape(nv, nv)
        l1 = host[nv * nv]
        end = nv * nv + 1 + 2 * filled * nv
        hist = host[nv * nv + 1 : end].reshape(2, filled, nv)
        return G, hist, l1, host[end:], bool(np.all(np.isfinite(host[:end])))

    def _remember(self, state: dict, G: np.ndarray, hist: np.ndarray) -> int:
        """Store the pair (s, y) in a slot and update the host matrices from the fetched products."""
        order: list[int] = state["order"]
        m = state["rows"].shape[1]
        slot = len(order) if len(order) < m else order.pop(0)
        vectors = state["vectors"]
        state["rows"][0, slot].copy_(vectors[2])
        state["rows"][1, slot].copy_(vectors[1])
        k = hist.shape[1]
        SY, YY = state["SY"], state["YY"]
        SY[:k, slot] = hist[0, :, 1]  # s_i · y
        SY[slot, :k] = hist[1, :, 2]  # s · y_i
        YY[:k, slot] = YY[slot, :k] = hist[1, :, 1]  # y_i · y
        SY[slot, slot], YY[slot, slot] = G[2, 1], G[1, 1]
        order.append(slot)
        return slot

    def _direction(self, state: dict, G: np.ndarray, hist: np.ndarray, new_slot: int | None):
        """Coefficients (γ, c_S, c_Y) of H g = γ g + Sᵀ c_S + Yᵀ c_Y, and gᵀHg, from the products."""
        order: list[int] = state["order"]
        m = state["rows"].shape[1]
        sg, yg = np.zeros(m), np.zeros(m)
        k = hist.shape[1]
        sg[:k], yg[:k] = hist[0, :, 0], hist[1, :, 0]
        if new_slot is not None:
            sg[new_slot], yg[new_slot] = G[2, 0], G[1, 0]
        newest = order[-1]
        gamma = state["SY"][newest, newest] / state["YY"][newest, newest]  # sᵀy / yᵀy of the newest pair
        idx = np.asarray(order)
        u, v = sg[idx], yg[idx]
        SY = state["SY"][np.ix_(idx, idx)]
        R = np.triu(SY)
        w = np.linalg.solve(R, u)
        p = np.linalg.solve(
            R.T, (np.diag(np.diag(SY)) + gamma * state["YY"][np.ix_(idx, idx)]) @ w - gamma * v
        )
        coeffs = np.zeros((2, max(order) + 1))
        coeffs[0, idx], coeffs[1, idx] = p, -gamma * w
        g_hg = gamma * G[0, 0] + u @ p - gamma * (v @ w)
        return gamma, coeffs, g_hg

    @torch.no_grad()
    def step(self, closure: Callable[[], ClosureResult]) -> torch.Tensor:  # type: ignore[override]
        """Evaluate ``closure`` once (loss and gradient) and move the tensor along the L-BFGS direction."""
        with torch.enable_grad():
            result = closure()
        loss, extras = result if isinstance(result, tuple) else (result, {})
        param, lr = self._param, self.param_groups[0]["lr"]
        self.skipped = False
        if param.grad is None:
            self.fetched = loss_values(extras)
            return loss
        state = self._history()
        vectors = state["vectors"]
        vectors[0].copy_(param.grad.detach().reshape(-1))
        first = state["steps"] == 0
        if not first:
            torch.sub(vectors[0], vectors[3], out=vectors[1])  # y = g − g_prev
        G, hist, l1, extra, finite = self._products(state, extras)
        self.fetched = dict(zip(extras, (float(x) for x in extra)))
        if not finite:
            self.skipped = True  # nothing changed: the caller may evaluate this step again
            return loss
        new_slot = None
        if not first and G[1, 2] > CURVATURE_EPS:  # yᵀs
            new_slot = self._remember(state, G, hist)
        g_hg, gamma, coeffs = G[0, 0], 1.0, np.zeros((2, 0))
        if state["order"]:
            gamma, coeffs, g_hg = self._direction(state, G, hist, new_slot)
        if not first and not -g_hg < 0:
            state["order"].clear()  # not a descent direction: restart from steepest descent
            first = True
        t = min(1.0, 1.0 / max(l1, 1e-300)) * lr if first else lr
        step = vectors[2]  # s of this step, overwritten once the pair is stored
        if state["order"]:
            k = coeffs.shape[1]
            cs, cy = upload(-t * coeffs, vectors)
            torch.addmv(vectors[0], state["rows"][0, :k].T, cs, beta=-t * gamma, out=step)
            step.addmv_(state["rows"][1, :k].T, cy)
        else:
            torch.mul(vectors[0], -t, out=step)
        param.add_(step.view_as(param).to(param.dtype))
        vectors[3].copy_(vectors[0])
        state["steps"] += 1
        return loss


@dataclass
class StepResult:
    """One optimiser step: the closure's terms as floats, whether it was finite, evaluations made."""

    values: dict[str, float]
    finite: bool
    evaluations: int


def optimizer_step(
    optimizer: torch.optim.Optimizer,
    closure: Callable[[], tuple[torch.Tensor, Mapping[str, torch.Tensor]]],
    scaler: LossScaler | None = None,
) -> StepResult:
    """One step with one host transfer, fp16 overflows redone with a smaller loss scale.

    ``closure`` zeroes the gradient, evaluates the loss and its gradient (through
    ``scaler.backward`` when there is a scaler) and returns ``(loss, terms)``; ``terms``
    must include ``'total'``. :class:`CompactLBFGS` fetches the terms with its products; other
    optimisers (Adam) fetch them with a finiteness flag of the gradient before stepping.
    A step that is not finite is evaluated again while the scaler can halve its scale; the
    result says ``finite=False`` when it could not (the caller reports divergence).
    """
    evaluations = 0
    while True:
        evaluations += 1
        if isinstance(optimizer, CompactLBFGS):
            optimizer.step(closure)
            values = dict(optimizer.fetched)
            finite = not optimizer.skipped and bool(np.isfinite(values.get("total", 0.0)))
        else:
            with torch.enable_grad():
                _loss, terms = closure()
            params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
            flag = (
                {"_finite": torch.stack([torch.isfinite(p.grad).all() for p in params]).all()}
                if params
                else {}
            )
            values = loss_values({**terms, **flag})
            finite = bool(values.pop("_finite", 1.0)) and bool(np.isfinite(values.get("total", 0.0)))
            if finite:
                optimizer.step()
        if scaler is None or not scaler.update(finite):
            return StepResult(values, finite, evaluations)


__all__ = [
    "CURVATURE_EPS",
    "ClosureResult",
    "CompactLBFGS",
    "WithoutDynamoImport",
    "clear_gradients",
    "StepResult",
    "lbfgs_settings",
    "optimizer_step",
    "the_one_tensor",
]
