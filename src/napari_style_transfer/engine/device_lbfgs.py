"""L-BFGS whose step never waits for the host, so that a CUDA graph can capture it.

:class:`~.lbfgs.CompactLBFGS` fetches every dot product of a step to the host in one transfer
and does the (history × history) algebra there in float64: one synchronisation per step,
which keeps the GPU idle while the host decides, and which a CUDA graph cannot contain.
:class:`DeviceLBFGS` takes the same steps (the same compact representation, the same step rule,
the same restarts and skips; ``tests/engine/test_device_lbfgs.py`` checks the iterates) with
every decision made by tensor arithmetic on the device:

- the history is a ring buffer allocated once (zero-filled, so unused rows hold finite values),
  with two spare rows that absorb the write of a pair that is not kept;
- the counters (steps, pairs kept, next slot) are device tensors;
- the curvature test, the restart, the skip of a non-finite gradient and the first step's
  scaling are ``torch.where`` masks; the small matrices are gathered in chronological order
  and the triangular solves run on the device, unused slots masked to identity rows and zero
  right-hand sides so that they stay well-posed and contribute exactly nothing.

The closure's terms are not fetched: they stay on the device (:attr:`DeviceLBFGS.last_terms`,
:attr:`DeviceLBFGS.finite`), and :class:`LaggedReadout` copies them to pinned host memory
without waiting, to be read one step later, when the copy is long done.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

from .lbfgs import CURVATURE_EPS, ClosureResult, WithoutDynamoImport, lbfgs_settings, the_one_tensor
from .runtime import record_copy_done


def small_dtype(device: torch.device) -> torch.dtype:
    """The dtype of the (history × history) algebra: float64, but float32 on MPS (it has no float64)."""
    return torch.float32 if device.type == "mps" else torch.float64


class DeviceLBFGS(WithoutDynamoImport, torch.optim.Optimizer):
    """L-BFGS for one tensor: one closure evaluation and no host synchronisation per :meth:`step`.

    The same iterates as :class:`~.lbfgs.CompactLBFGS`. ``lr`` is read when a step is queued:
    a captured step keeps the value it was captured with.
    """

    def __init__(self, params, lr: float = 1.0, history_size: int = 50):
        super().__init__(params, lbfgs_settings(lr, history_size))
        self.param = the_one_tensor(self)
        #: The closure's terms of the last step, detached, on the device (never fetched here).
        self.last_terms: dict[str, torch.Tensor] = {}
        #: Whether the last step's gradient was finite (a 0-d bool tensor on the device).
        self.finite = torch.ones((), dtype=torch.bool, device=self.param.device)

    def buffers(self) -> dict:
        """The step's preallocated state (allocated at the first step, never resized)."""
        state = self.state[self.param]
        if "rows" not in state:
            param = self.param
            m, n, device = self.param_groups[0]["history_size"], param.numel(), param.device
            dtype = torch.float64 if param.dtype == torch.float64 else torch.float32
            small = small_dtype(device)
            # Rows 0..m-1: S (steps), m..2m-1: Y (gradient changes), 2m and 2m+1: where a pair
            # that is not kept is written (never read).
            state["rows"] = torch.zeros((2 * m + 2, n), dtype=dtype, device=device)
            # g (new gradient), y = g − g_prev, s (last step), g_prev.
            state["vectors"] = torch.zeros((4, n), dtype=dtype, device=device)
            state["SY"] = torch.zeros((m, m), dtype=small, device=device)  # s_i · y_j, slot order
            state["YY"] = torch.zeros((m, m), dtype=small, device=device)  # y_i · y_j, slot order
            state["positions"] = torch.arange(m, device=device)
            state["eye"] = torch.eye(m, dtype=small, device=device)
            for name in ("steps", "pairs", "head"):  # head: the slot the next pair goes to
                state[name] = torch.zeros((), dtype=torch.long, device=device)
        return state

    @property
    def pairs(self) -> torch.Tensor:
        """How many curvature pairs the history holds (a device tensor; 0 before the first step)."""
        state = self.state[self.param]
        return state["pairs"] if "pairs" in state else torch.zeros((), dtype=torch.long)

    def terms_with_flag(self) -> dict[str, torch.Tensor]:
        """The last step's terms and its finiteness flag (``'finite'``), for a :class:`LaggedReadout`."""
        return {**self.last_terms, "finite": self.finite}

    @staticmethod
    def _products(state: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """G[a, b] = v_a · v_b for v = (g, y, s), H[r, a] = history row r · v_a, ‖g‖₁, and finiteness."""
        vectors, rows = state["vectors"][:3], state["rows"]
        small = state["SY"].dtype
        m = state["SY"].shape[0]
        G = (vectors @ vectors.T).to(small)
        H = (rows[: 2 * m] @ vectors.T).to(small)
        l1 = vectors[0].abs().sum().to(small)
        finite = torch.isfinite(torch.cat([G.reshape(-1), H.reshape(-1), l1.reshape(1)])).all()
        return G, H, l1, finite

    @staticmethod
    def _remember(state: dict, G: torch.Tensor, H: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Write the pair (s, y) to the next slot where ``keep``; the one-hot mask of the slot written."""
        rows, vectors, head = state["rows"], state["vectors"], state["head"]
        m = state["SY"].shape[0]
        spare = torch.full_like(head, 2 * m)
        rows.index_copy_(0, torch.where(keep, head, spare).reshape(1), vectors[2:3])  # s
        rows.index_copy_(0, torch.where(keep, head + m, spare + 1).reshape(1), vectors[1:2])  # y
        slot = (state["positions"] == head) & keep
        col, row = slot[None, :], slot[:, None]
        hs, hy = H[:m], H[m:]
        SY = torch.where(col, hs[:, 1:2], state["SY"])  # s_i · y
        SY = torch.where(row, hy[:, 2][None, :], SY)  # s · y_i
        YY = torch.where(col, hy[:, 1:2], state["YY"])
        YY = torch.where(row, hy[:, 1][None, :], YY)
        both = col & row
        state["SY"].copy_(torch.where(both, G[2, 1], SY))
        state["YY"].copy_(torch.where(both, G[1, 1], YY))
        state["head"].copy_(torch.where(keep, (head + 1) % m, head))
        state["pairs"].copy_(torch.where(keep, (state["pairs"] + 1).clamp_max(m), state["pairs"]))
        return slot

    @staticmethod
    def _direction(state: dict, G: torch.Tensor, H: torch.Tensor, slot: torch.Tensor):
        """γ, the coefficients of H g = γ g + Sᵀ c_S + Yᵀ c_Y (slot order), and gᵀHg.

        Pairs are gathered oldest first (the newest is last); the rows and columns of unused
        positions are identity in R and zero elsewhere, so their coefficients are exactly 0.
        """
        m = state["SY"].shape[0]
        sg = torch.where(slot, G[2, 0], H[:m, 0])  # the new pair's products are those of s and y
        yg = torch.where(slot, G[1, 0], H[m:, 0])
        order = (state["head"] + state["positions"]) % m
        valid = state["positions"] >= m - state["pairs"]
        both = valid[:, None] & valid[None, :]
        SY = state["SY"].index_select(0, order).index_select(1, order)
        YY = torch.where(both, state["YY"].index_select(0, order).index_select(1, order), 0)
        # γ = sᵀy / yᵀy of the newest pair (last position); 1 without pairs (where() drops the 0/0).
        gamma = torch.where(state["pairs"] > 0, SY[m - 1, m - 1] / YY[m - 1, m - 1], 1.0)
        u = torch.where(valid, sg.index_select(0, order), 0)
        v = torch.where(valid, yg.index_select(0, order), 0)
        R = torch.where(both, torch.triu(SY), state["eye"])
        w = torch.linalg.solve_triangular(R, u[:, None], upper=True)[:, 0]
        D = torch.diag_embed(torch.where(valid, SY.diagonal(), 0))
        rhs = torch.where(valid, (D + gamma * YY) @ w - gamma * v, 0)
        p = torch.linalg.solve_triangular(R.T, rhs[:, None], upper=False)[:, 0]
        g_hg = gamma * G[0, 0] + u @ p - gamma * (v @ w)
        coeffs = torch.zeros((2, m), dtype=p.dtype, device=p.device)
        coeffs[0].index_copy_(0, order, p)
        coeffs[1].index_copy_(0, order, -gamma * w)
        return gamma, coeffs, g_hg

    @torch.no_grad()
    def step(self, closure: Callable[[], ClosureResult]) -> torch.Tensor:  # type: ignore[override]
        """Evaluate ``closure`` once and move the tensor along the L-BFGS direction, without a host wait."""
        with torch.enable_grad():
            result = closure()
        loss, extras = result if isinstance(result, tuple) else (result, {})
        self.last_terms = {k: v.detach() for k, v in extras.items()}
        param, lr = self.param, self.param_groups[0]["lr"]
        if param.grad is None:
            self.finite = torch.ones((), dtype=torch.bool, device=param.device)
            return loss
        state = self.buffers()
        vectors = state["vectors"]
        vectors[0].copy_(param.grad.detach().reshape(-1))
        torch.sub(vectors[0], vectors[3], out=vectors[1])  # y = g − g_prev (unused at the first step)
        first = state["steps"] == 0
        G, H, l1, finite = self._products(state)
        keep = finite & ~first & (G[1, 2] > CURVATURE_EPS)  # yᵀs
        slot = self._remember(state, G, H, keep)
        gamma, coeffs, g_hg = self._direction(state, G, H, slot)
        restart = ~first & ~(g_hg > 0)  # not a descent direction: restart from steepest descent
        steepest = first | restart
        state["pairs"].copy_(torch.where(finite & restart, 0, state["pairs"]))
        tiny = torch.finfo(l1.dtype).tiny
        t = torch.where(steepest, (1.0 / l1.clamp_min(tiny)).clamp_max(1.0) * lr, lr)
        gamma = torch.where(steepest, 1.0, gamma)
        coeffs = torch.where(steepest, 0.0, -t * coeffs).to(vectors.dtype)
        step = torch.mul(vectors[0], (-t * gamma).to(vectors.dtype))
        m = coeffs.shape[1]
        step.addmv_(state["rows"][: 2 * m].T, coeffs.reshape(-1))
        param.add_(torch.where(finite, step, 0).view_as(param).to(param.dtype))
        vectors[2].copy_(torch.where(finite, step, vectors[2]))
        vectors[3].copy_(torch.where(finite, vectors[0], vectors[3]))
        state["steps"].add_(finite.long())
        self.finite = finite
        return loss


class LaggedReadout:
    """Scalar device values read on the host one step late, so that reading them never waits.

    :meth:`post` stacks the values and queues their copy into pinned host memory
    (``non_blocking``) behind the step that made them; :meth:`read` returns the values posted
    *before* the last :meth:`post`, whose copy finished while the last step ran; :meth:`flush`
    returns the last ones (it waits for their copy: call it once, after the last step).
    """

    def __init__(self) -> None:
        self.slots: list[tuple[tuple[str, ...], torch.Tensor, object] | None] = [None, None]
        self.posted = 0

    def post(self, values: Mapping[str, torch.Tensor]) -> None:
        """Queue the copy of ``values`` (0-d tensors on one device) to the host."""
        names = tuple(values)
        tensors = [v.detach().reshape(()) for v in values.values()]
        device = tensors[0].device if tensors else torch.device("cpu")
        wide = any(t.dtype == torch.float64 for t in tensors) and device.type != "mps"
        stacked = (
            torch.stack([t.to(torch.float64 if wide else torch.float32) for t in tensors])
            if tensors
            else None
        )
        index = self.posted % 2
        slot = self.slots[index]
        buffer = slot[1] if slot is not None else None
        if stacked is not None:
            if buffer is None or buffer.shape != stacked.shape or buffer.dtype != stacked.dtype:
                buffer = torch.empty(stacked.shape, dtype=stacked.dtype, pin_memory=device.type == "cuda")
            buffer.copy_(stacked, non_blocking=device.type == "cuda")  # elsewhere: a plain copy
        else:
            buffer = torch.zeros(0)
        self.slots[index] = (names, buffer, record_copy_done(stacked) if stacked is not None else None)
        self.posted += 1

    def _values(self, index: int) -> dict[str, float] | None:
        slot = self.slots[index]
        if slot is None:
            return None
        names, buffer, done = slot
        if done is not None:
            done.synchronize()  # type: ignore[attr-defined]
        return dict(zip(names, (float(x) for x in buffer.tolist())))

    def read(self) -> dict[str, float] | None:
        """The values posted one step before the last post (None until two posts were made)."""
        return self._values((self.posted - 2) % 2) if self.posted >= 2 else None

    def flush(self) -> dict[str, float] | None:
        """The values of the last post (waits for their copy; None before any post)."""
        return self._values((self.posted - 1) % 2) if self.posted >= 1 else None


__all__ = ["DeviceLBFGS", "LaggedReadout", "small_dtype"]
