"""The matting Laplacian (Levin, Lischinski & Weiss 2008) as a structure-keeping loss (Luan et al. 2017).

Deep Photo Style Transfer keeps a result photorealistic by asking it to be, in every small
window, an affine recolouring of the content: out_c ≈ a_cᵀ I + b_c. The squared error of the
best such fit, summed over all windows, is a quadratic form Σ_c V_cᵀ L V_c in the result's
channels V_c, with L the content's matting Laplacian. Edges and thin structures of the
content cannot move or blur without raising it, while colours (the affine part) are free.

L is built once per content (each scale, tile and stack slice has its own) in float64 with
numpy: each 3×3 window k adds δ_ij − (1 + (I_i − μ_k)ᵀ (Σ_k + ε/9 I₃)⁻¹ (I_j − μ_k)) / 9 to
every pair of its pixels i, j. A pixel's neighbours in L lie at one of 25 offsets (dy, dx in
−2…2), so L is 25 diagonals (DIA format): a (25, H, W) array, filled by 81 shifted adds over
the window grid (45 with L's symmetry), never a COO list of 81·N entries.

The loss multiplies L by the result once per step, on the run's device, in fp32. Measured on
a 2-core AVX512 CPU (torch 2.14, two threads; median of 20 products of L with a 3-channel
image; ``benchmarks/structure.py --products``), in ms, on a quiet machine (two runs) and with
another process busy on the cores (``docs/results/structure_256.json``):

====================  ==========  ==========  ===========  ===========
L·V                   256² quiet  512² quiet  256² loaded  512² loaded
====================  ==========  ==========  ===========  ===========
DIA: 25 shifted FMAs  0.65–0.73   2.7–3.0     0.65         10.7
CSR, int32 indices    0.78–0.83   3.3–3.4     24           24
CSR, int64 indices    1.1–1.3     13–14       40           50
COO                   47–48       192–219     72           208
====================  ==========  ==========  ===========  ===========

The DIA product is the fastest (by ~10 % over int32 CSR when the machine is quiet, by 2–37×
when it is not), the leanest (no indices: 100 bytes a pixel in fp32, against 200–300 for
CSR) and made of plain dense operations that every device has (MPS has no sparse CSR; a CUDA
graph should capture them, not checked on a GPU here), so the loss uses it; :func:`matting_laplacian` gives the same L as a torch sparse CSR matrix, for
checks and other uses. Either way it is under 1 % of a step (0.17–0.25 s at 256 px on this CPU).

ε = 1e-5, not Levin et al.'s 1e-7 (which Luan et al. kept, for photographs): with 1e-7 the
fit may amplify any variation of the content, and the flat, noisy backgrounds of microscopy
images (the cell of ``skimage.data.cell``) came out as amplified noise, new structure. With
1e-5, ε/9 ≈ 1.1e-6 is the variance of 8-bit quantisation noise ((1/255)²/12 = 1.3e-6): below
one grey step the content counts as flat, while any visible texture (a ±1 % wiggle has a
variance of 1e-4) is fitted as before. Measured at 256 px (60 steps, weight 1e4, the edge F1
with quantile thresholds of ``benchmarks/structure.py``): cell × gravel 0.17 → 0.31,
microaneurysms × retina 0.84 → 0.88, coins × immunohistochemistry 0.79 either way; 1e-4 and
1e-3 flatten the style away (cell) or lose edges again (microaneurysms 0.82, 0.81). ε also
keeps Σ_k + ε/9 I₃ invertible where Σ_k is singular: flat windows, and every window of a grey
content (three equal channels, so Σ_k has rank one).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

#: The regularisation of the window covariances: 8-bit quantisation noise is flat (module docstring).
DEFAULT_EPS = 1e-5


def band_offsets(radius: int = 1) -> list[tuple[int, int]]:
    """The (dy, dx) of L's diagonals, row-major: column order within a row of L."""
    reach = 2 * radius
    return [(dy, dx) for dy in range(-reach, reach + 1) for dx in range(-reach, reach + 1)]


def _as_planes(rgb: torch.Tensor | np.ndarray) -> np.ndarray:
    """(1, 3, H, W) tensor or (3, H, W) array → (3, H, W) float64."""
    if isinstance(rgb, torch.Tensor):
        rgb = rgb.detach().to("cpu", torch.float64).numpy()
    planes = np.asarray(rgb, dtype=np.float64)
    if planes.ndim == 4:
        if planes.shape[0] != 1:
            raise ValueError(f"matting Laplacian: one image at a time, got a batch of {planes.shape[0]}")
        planes = planes[0]
    if planes.ndim != 3 or planes.shape[0] != 3:
        raise ValueError(f"matting Laplacian: needs an RGB image (1, 3, H, W), got shape {planes.shape}")
    return planes


def _inverse_covariances(patches: list[np.ndarray], mean: np.ndarray, eps: float) -> np.ndarray:
    """(Σ_k + ε/|w| I₃)⁻¹ of every window, as (3, 3, h, w)."""
    n = len(patches)
    cov = np.empty((*mean.shape[1:], 3, 3))
    for i in range(3):
        for j in range(i, 3):
            value = sum(p[i] * p[j] for p in patches) / n - mean[i] * mean[j]
            cov[..., i, j] = value
            cov[..., j, i] = value
    cov[..., [0, 1, 2], [0, 1, 2]] += eps / n
    return np.ascontiguousarray(np.linalg.inv(cov).transpose(2, 3, 0, 1))


def laplacian_bands(rgb: torch.Tensor | np.ndarray, eps: float = DEFAULT_EPS, radius: int = 1) -> np.ndarray:
    """L's diagonals as a float64 (K, H, W) array: ``[k, y, x]`` = L[(y, x), (y, x) + offset k].

    Offsets as :func:`band_offsets` lists them; entries whose neighbour is off the image are 0.
    An image smaller than one window has L = 0.
    """
    planes = _as_planes(rgb)
    _, height, width = planes.shape
    side, win = 4 * radius + 1, 2 * radius + 1
    n = win * win
    h, w = height - 2 * radius, width - 2 * radius
    bands = np.zeros((side * side, height, width))
    if h <= 0 or w <= 0:
        return bands
    where = [(ay, ax) for ay in range(win) for ax in range(win)]  # a pixel's place in its window
    patches = [planes[:, ay : ay + h, ax : ax + w] for ay, ax in where]
    mean = sum(patches) / n
    inverse = _inverse_covariances(patches, mean, eps)
    centred = [p - mean for p in patches]
    for b, (by, bx) in enumerate(where):
        d = centred[b]
        scaled = inverse[:, 0] * d[0] + inverse[:, 1] * d[1] + inverse[:, 2] * d[2]  # A_k (I_b − μ_k)
        for a in range(b + 1):
            ay, ax = where[a]
            value = (
                centred[a][0] * scaled[0] + centred[a][1] * scaled[1] + centred[a][2] * scaled[2] + 1
            ) / -n
            if a == b:
                value += 1.0
            bands[(by - ay + 2 * radius) * side + bx - ax + 2 * radius, ay : ay + h, ax : ax + w] += value
            if a != b:  # L is symmetric: the same value from b's row to a
                bands[(ay - by + 2 * radius) * side + ax - bx + 2 * radius, by : by + h, bx : bx + w] += value
    return bands


def bands_to_csr(bands: np.ndarray, radius: int = 1) -> torch.Tensor:
    """L's diagonals (:func:`laplacian_bands`) → an N×N torch sparse CSR matrix (float64, N = H·W)."""
    _, height, width = bands.shape
    offsets = band_offsets(radius)
    y = np.arange(height)[:, None, None]
    x = np.arange(width)[None, :, None]
    dy = np.array([o[0] for o in offsets])
    dx = np.array([o[1] for o in offsets])
    inside = ((y + dy >= 0) & (y + dy < height) & (x + dx >= 0) & (x + dx < width)).reshape(-1, len(offsets))
    pixels = height * width
    columns = (np.arange(pixels)[:, None] + (dy * width + dx)[None, :])[inside]
    values = bands.reshape(len(offsets), -1).T[inside]
    rows = np.concatenate([[0], np.cumsum(inside.sum(axis=1))])
    with warnings.catch_warnings():  # "sparse CSR support is in beta": said once per process, to no one
        warnings.filterwarnings(
            "ignore", message="Sparse CSR tensor support is in beta", category=UserWarning
        )
        return torch.sparse_csr_tensor(
            torch.from_numpy(rows),
            torch.from_numpy(columns),
            torch.from_numpy(np.ascontiguousarray(values)),
            (pixels, pixels),
            check_invariants=False,
        )


def matting_laplacian(
    rgb: torch.Tensor | np.ndarray, eps: float = DEFAULT_EPS, radius: int = 1
) -> torch.Tensor:
    """The matting Laplacian of an RGB [0, 1] image (1, 3, H, W): an N×N float64 sparse CSR matrix.

    Pixels are numbered row-major (i = y·W + x). Windows are (2·radius+1)² and lie inside the
    image; L is symmetric, positive semi-definite, and its rows sum to 0.
    """
    return bands_to_csr(laplacian_bands(rgb, eps, radius), radius)


def banded_product(bands: torch.Tensor, image: torch.Tensor, radius: int = 1) -> torch.Tensor:
    """L·V for an image (…, C, H, W) and L's diagonals (K, H, W): each channel multiplied by L."""
    height, width = image.shape[-2:]
    reach = 2 * radius
    padded = torch.nn.functional.pad(image, (reach, reach, reach, reach))
    out = torch.zeros_like(image)
    for k, (dy, dx) in enumerate(band_offsets(radius)):
        shifted = padded[..., reach + dy : reach + dy + height, reach + dx : reach + dx + width]
        out.addcmul_(bands[k], shifted)
    return out


class _LaplacianEnergy(torch.autograd.Function):
    """Σ_c V_cᵀ L V_c / N with its gradient 2 L V / N: L·V computed once, kept for the backward."""

    @staticmethod
    def forward(ctx, image: torch.Tensor, bands: torch.Tensor, radius: int) -> torch.Tensor:
        values = image.float()
        product = banded_product(bands, values, radius)
        ctx.save_for_backward(product)
        ctx.scale = 1.0 / (image.shape[-1] * image.shape[-2])
        ctx.dtype = image.dtype
        return (values * product).sum() * ctx.scale

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (product,) = ctx.saved_tensors
        return (product * (grad * 2 * ctx.scale)).to(ctx.dtype), None, None


class MattingLaplacian:
    """The structure loss of one content: built once from it, then one L·V per evaluation.

    ``content``: the (1, 3, H, W) RGB [0, 1] tensor the result must stay an affine recolouring
    of; L's diagonals live on its device in fp32 (100 bytes a pixel).
    """

    def __init__(self, content: torch.Tensor, eps: float = DEFAULT_EPS, radius: int = 1):
        self.radius = radius
        self.shape = tuple(content.shape[-2:])
        bands = laplacian_bands(content, eps, radius)
        self.bands = torch.from_numpy(bands).to(device=content.device, dtype=torch.float32)

    def energy(self, image: torch.Tensor) -> torch.Tensor:
        """Σ_c V_cᵀ L V_c / N of ``image`` (1, 3, H, W), differentiable; N = H·W (size-independent weight)."""
        if tuple(image.shape[-2:]) != self.shape:
            raise ValueError(f"structure loss: the Laplacian is {self.shape}, the image {tuple(image.shape)}")
        return _LaplacianEnergy.apply(image, self.bands, self.radius)


#: Device bytes per pixel the structure loss holds during a step: L's 25 fp32 diagonals, L·V
#: kept for the backward pass, the padded image and the product being summed (3 fp32 each).
#: Under 3 % of ``memory.estimate_peak_memory`` at any size (which is about twice the measured
#: peak), so the estimate leaves it out; the float64 build (~500 B/px) is gone before step 1.
STRUCTURE_BYTES_PER_PIXEL = (25 + 3 * 3) * 4


__all__ = [
    "DEFAULT_EPS",
    "STRUCTURE_BYTES_PER_PIXEL",
    "MattingLaplacian",
    "band_offsets",
    "banded_product",
    "bands_to_csr",
    "laplacian_bands",
    "matting_laplacian",
]
