"""L-BFGS with one function evaluation per step and a direction from a few big products.

``torch.optim.LBFGS`` computes its direction with the two-loop recursion: two dot products
and two vector updates per stored pair, about 4 × history small operations per step (200 for
50 pairs), each a separate kernel launch on a GPU and a Python-level call on any device.
Here the history lives in two (history, n) matrices and the direction comes from the compact
representation of the inverse Hessian (Byrd, Nocedal & Schnabel, *Representations of
quasi-Newton matrices and their use in limited memory methods*, Math. Prog. 63, 1994):

    H g = γ g + Sᵀ p − γ Yᵀ w,   w = R⁻¹ (S g),   p = R⁻ᵀ ((D + γ Y Yᵀ) w − γ Y g)

with R the upper triangle of S Yᵀ (pairs in chronological order), D its diagonal and
γ = sᵀy / yᵀy of the newest pair. That is four matrix–vector products over the history
and some (history × history) float64 algebra on the host (numpy) per step, whatever the history size, and
the same direction as the two-loop recursion (``tests/test_lbfgs.py`` checks both).

Step rule as in ``torch.optim.LBFGS(max_iter=1)`` without line search: the first step is
scaled to ``min(1, 1/‖g‖₁)·lr``, later ones take ``lr``; a pair enters the history only when
sᵀy > 1e-10. Where torch's version would stop for good (a direction that is not a descent
direction), this one drops the history and takes a steepest-descent step instead.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

#: A pair is kept only when its curvature sᵀy exceeds this (as in torch.optim.LBFGS).
CURVATURE_EPS = 1e-10


class CompactLBFGS(torch.optim.Optimizer):
    """L-BFGS for one tensor, one closure evaluation per :meth:`step`."""

    def __init__(self, params, lr: float = 1.0, history_size: int = 50):
        if not lr > 0:
            raise ValueError(f"lr: must be > 0, got {lr!r}")
        if int(history_size) < 1:
            raise ValueError(f"history_size: must be >= 1, got {history_size!r}")
        super().__init__(params, {"lr": float(lr), "history_size": int(history_size)})
        params = [p for group in self.param_groups for p in group["params"]]
        if len(params) != 1:
            raise ValueError("CompactLBFGS optimises exactly one tensor")
        self._param = params[0]

    def _history(self, flat: torch.Tensor) -> dict:
        state = self.state[self._param]
        if "S" not in state:
            m, n = self.param_groups[0]["history_size"], flat.numel()
            # Rows are filled in place and only the filled ones are ever read: no zero fill.
            state["S"] = torch.empty((m, n), dtype=flat.dtype, device=flat.device)
            state["Y"] = torch.empty((m, n), dtype=flat.dtype, device=flat.device)
            # The small matrices live on the host in float64 (slot order): a few microseconds of
            # numpy per step instead of a dozen tiny device kernels.
            state["SY"] = np.zeros((m, m))  # SY[i, j] = s_i · y_j
            state["YY"] = np.zeros((m, m))  # YY[i, j] = y_i · y_j
            state["order"] = []  # slots, oldest first
        return state

    def _remember(self, state: dict, s: torch.Tensor, y: torch.Tensor) -> None:
        order: list[int] = state["order"]
        m = state["S"].shape[0]
        slot = len(order) if len(order) < m else order.pop(0)
        state["S"][slot].copy_(s)
        state["Y"][slot].copy_(y)
        order.append(slot)
        k = max(order) + 1  # filled rows are 0 … k-1
        S, Y = state["S"][:k], state["Y"][:k]
        s_y, y_s, y_y = torch.stack((S @ y, Y @ s, Y @ y)).double().cpu().numpy()  # one transfer
        state["SY"][:k, slot] = s_y
        state["SY"][slot, :k] = y_s
        state["YY"][:k, slot] = y_y
        state["YY"][slot, :k] = y_y

    def _inverse_hessian_times(self, state: dict, g: torch.Tensor) -> torch.Tensor:
        order: list[int] = state["order"]
        newest = order[-1]
        gamma = state["SY"][newest, newest] / state["YY"][newest, newest]  # sᵀy / yᵀy of the newest pair
        k = max(order) + 1
        S, Y = state["S"][:k], state["Y"][:k]
        u_all, v_all = torch.stack((S @ g, Y @ g)).double().cpu().numpy()  # one transfer
        idx = np.asarray(order)
        u, v = u_all[idx], v_all[idx]
        SY = state["SY"][np.ix_(idx, idx)]
        R = np.triu(SY)
        w = np.linalg.solve(R, u)
        p = np.linalg.solve(R.T, (np.diag(np.diag(SY)) + gamma * state["YY"][np.ix_(idx, idx)]) @ w - gamma * v)
        coeffs = np.zeros((2, k))
        coeffs[0, idx], coeffs[1, idx] = p, -gamma * w
        cs, cy = torch.from_numpy(coeffs).to(device=g.device, dtype=g.dtype)
        out = torch.addmv(g, S.T, cs, beta=gamma)
        return out.addmv_(Y.T, cy)

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        """Evaluate ``closure`` once (loss and gradient) and move the tensor along the L-BFGS direction."""
        with torch.enable_grad():
            loss = closure()
        param, lr = self._param, self.param_groups[0]["lr"]
        if param.grad is None:
            return loss
        g = param.grad.detach().reshape(-1).to(torch.float32 if param.dtype != torch.float64 else torch.float64)
        state = self._history(g)
        if "prev_g" in state:
            y = g - state["prev_g"]
            s = state["prev_step"]
            ys = float(y @ s)
            if ys > CURVATURE_EPS:
                self._remember(state, s, y)
        first = "prev_g" not in state
        d = -self._inverse_hessian_times(state, g) if state["order"] else -g
        if not first and not float(g @ d) < 0:
            state["order"].clear()  # not a descent direction: restart from steepest descent
            d, first = -g, True
        t = min(1.0, 1.0 / max(float(g.abs().sum()), 1e-300)) * lr if first else lr
        step = d.mul_(t)
        param.add_(step.view_as(param).to(param.dtype))
        state["prev_g"], state["prev_step"] = g.clone(), step
        return loss
