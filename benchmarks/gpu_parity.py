"""Step 4 of the device check: the engine's loss and image gradient on the device against the CPU.

fp32, bf16 and fp16 (with the loss scale the engine starts from) are compared with a CPU fp32
reference on one image, and for fp16 the share of relu4_x gradients that fall below fp16's
smallest normal number is counted, at a fixed scale of 1024 and at the pixel-count scale.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from napari_style_transfer.engine import StyleConfig, get_network
from napari_style_transfer.engine.losses import content_loss, gram, relative_sq_distance
from napari_style_transfer.engine.runtime import FP16_TINY, initial_loss_scale
from napari_style_transfer.engine.vgg import LAYER_INDEX, preprocess, resolve_weights

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def _targets(net, convention, content_t, style_t, config) -> dict:
    with torch.no_grad():
        c = net(preprocess(content_t, convention), config.content_layers)
        s = net(preprocess(style_t, convention), config.style_layers)
        return {"content": {k: v.float() for k, v in c.items()}, "style": {k: gram(v) for k, v in s.items()}}


def loss_and_grad(image, content_t, style_t, device, precision: str, scale: float = 1.0, watch=()) -> dict:
    """The engine's loss (relative content and Gram distances, equal layer weights) and its image gradient."""
    config = StyleConfig()
    dtype = DTYPES[precision]
    channels_last = device.type == "cuda" or dtype is not None
    net = get_network("embedded", "max", device, config.deepest_layer, channels_last=channels_last)
    _, convention = resolve_weights("embedded")
    targets = _targets(net, convention, content_t.to(device), style_t.to(device), config)
    x = image.detach().clone().to(device).requires_grad_(True)
    inp = preprocess(x, convention)
    inp = inp.contiguous(memory_format=torch.channels_last) if channels_last else inp
    run_net, inp = (net, inp) if dtype is None else (net.cast(dtype), inp.to(dtype))
    names = tuple(
        sorted(set(config.content_layers + config.style_layers + tuple(watch)), key=LAYER_INDEX.get)
    )
    feats = run_net(inp, names)
    for name in watch:
        feats[name].retain_grad()
    c = sum(content_loss(feats[n], targets["content"][n]) for n in config.content_layers) / len(
        config.content_layers
    )
    s = sum(relative_sq_distance(gram(feats[n]), targets["style"][n]) for n in config.style_layers) / len(
        config.style_layers
    )
    loss = config.content_weight * c + config.style_weight * s
    (loss * scale).backward()
    return {
        "loss": float(loss.detach()),
        "grad": (x.grad / scale).float().cpu(),
        "feats": feats,
        "watch": watch,
    }


def _inputs(images, side: int):
    from napari_style_transfer.arrays import fit_long_side
    from napari_style_transfer.engine.images import resize, to_tensor

    content, style = (to_tensor(a.astype(np.float32) / 255) for a in images)
    content = resize(content, fit_long_side(tuple(content.shape[-2:]), side))
    style = resize(style, fit_long_side(tuple(style.shape[-2:]), side))
    gen = torch.Generator().manual_seed(0)
    image = (content + 0.1 * torch.randn(content.shape, generator=gen)).clamp(0, 1)
    return image, content, style


def step_parity(plan: Any, images) -> dict:
    image, content_t, style_t = _inputs(images, plan.parity)
    ref = loss_and_grad(image, content_t, style_t, torch.device("cpu"), "fp32")
    out = {"size": list(image.shape[-2:]), "reference": "cpu fp32", "cpu_loss": ref["loss"]}
    pixels = image.shape[-2] * image.shape[-1]
    for precision in ("fp32", "bf16", "fp16"):
        scale = initial_loss_scale(pixels) if precision == "fp16" else 1.0
        got = loss_and_grad(image, content_t, style_t, plan.device, precision, scale)
        g, r = got["grad"].flatten(), ref["grad"].flatten()
        out[precision] = {
            "loss": got["loss"],
            "loss_rel_diff": abs(got["loss"] - ref["loss"]) / abs(ref["loss"]),
            "grad_cosine": float(torch.nn.functional.cosine_similarity(g, r, dim=0)),
            "grad_rel_l2": float((g - r).norm() / r.norm()),
            "grad_finite": bool(torch.isfinite(g).all()),
        }
    out["subnormal"] = {str(side): fp16_subnormal_share(images, side, plan.device) for side in plan.subnormal}
    return out


def fp16_subnormal_share(images, side: int, device) -> dict:
    """Share of relu4_x gradients (fp16) below fp16's smallest normal number, at 1024 and the pixel-count scale."""
    image, content_t, style_t = _inputs(images, side)
    pixels = image.shape[-2] * image.shape[-1]
    out = {}
    for label, scale in (("scale_1024", 1024.0), ("scale_initial", initial_loss_scale(pixels))):
        got = loss_and_grad(image, content_t, style_t, device, "fp16", scale, watch=("relu4_1", "relu4_2"))
        layers = {}
        for name in got["watch"]:
            g = got["feats"][name].grad.float().abs()
            active = got["feats"][name].detach() > 0
            nonzero = g[g > 0]
            layers[name] = {
                "subnormal_share_of_nonzero": float((nonzero < FP16_TINY).float().mean())
                if nonzero.numel()
                else None,
                "zero_share_where_active": float((g[active] == 0).float().mean()) if active.any() else None,
                "max_scaled": float(g.max()),
                "finite": bool(torch.isfinite(g).all()),
            }
        out[label] = {"scale": scale, "layers": layers}
    return out
