"""Which image a layer holds, beyond its name: what a result records of its input layers, so
that Continue never runs on another image that happens to have the same name.

No Qt here. An identity is cheap to take on the GUI thread and never reads lazy data: the
layer's kind, the shape and dtype of its full-resolution data, its number of dimensions and
whether it is RGB, and, for data in memory only, a fingerprint of :data:`SAMPLES` pixels
spread over the whole array. It is plain JSON (a result's metadata is saved with it), and it
holds nothing of the session (napari's ``unique_id`` changes when a layer is saved and opened
again; an identity does not, as long as the pixels are the same). A Labels mask is not
fingerprinted: painting a mask is an edit the next run should use, not another mask (nor are a
Shapes layer's shapes).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from .faults import UserError
from .layers import full_data, full_shape, layer_kind

#: Pixels sampled (evenly over the flat array) for the fingerprint of data in memory.
SAMPLES = 1024


def fingerprint(data: Any) -> str | None:
    """A short hash of :data:`SAMPLES` values spread over ``data``; None unless it is in memory (numpy)."""
    if not isinstance(data, np.ndarray) or data.size == 0:
        return None
    flat = np.unique(np.linspace(0, data.size - 1, min(SAMPLES, data.size)).round().astype(np.int64))
    picked = np.ascontiguousarray(data[np.unravel_index(flat, data.shape)])
    digest = hashlib.blake2b(digest_size=8)
    digest.update(str(picked.dtype).encode())
    digest.update(picked.tobytes())
    return digest.hexdigest()


def layer_identity(layer: Any) -> dict[str, Any]:
    """What identifies the image a layer holds (plain JSON values; see the module's docstring).

    A layer without an array (Shapes: a mask or a style region) is known by its kind and
    dimensions only: editing its shapes is an edit the next run should use."""
    data = full_data(layer)
    if not hasattr(data, "dtype"):
        return {"kind": layer_kind(layer), "ndim": int(layer.ndim), "rgb": False}
    identity: dict[str, Any] = {
        "kind": layer_kind(layer),
        "shape": list(full_shape(layer)),
        "dtype": str(np.dtype(data.dtype)),
        "ndim": int(layer.ndim),
        "rgb": bool(getattr(layer, "rgb", False)),
    }
    if identity["kind"] != "Labels":
        found = fingerprint(data)
        if found is not None:
            identity["fingerprint"] = found
    return identity


def identity_change(recorded: Any, layer: Any) -> str | None:
    """How ``layer`` differs from the ``recorded`` identity ('its size changed from 43×64 to 50×64');
    None when it is the same image, or when nothing usable was recorded (an older result)."""
    if not isinstance(recorded, dict):
        return None
    now = layer_identity(layer)
    if recorded.get("kind", now["kind"]) != now["kind"]:
        return f"it was {a_kind(recorded['kind'])} layer and is {a_kind(now['kind'])} layer now"
    if "shape" in recorded and "shape" in now and list(recorded["shape"]) != now["shape"]:
        return f"its size changed from {shown_shape(recorded['shape'])} to {shown_shape(now['shape'])}"
    if recorded.get("rgb", now["rgb"]) != now["rgb"]:
        return "it was an RGB image and is not any more" if recorded["rgb"] else "it is an RGB image now"
    if recorded.get("ndim", now["ndim"]) != now["ndim"]:
        return f"it had {recorded['ndim']} dimensions and has {now['ndim']} now"
    if recorded.get("dtype", now.get("dtype")) != now.get("dtype"):
        return f"its data type changed from {recorded['dtype']} to {now['dtype']}"
    if (
        recorded.get("fingerprint")
        and now.get("fingerprint")
        and recorded["fingerprint"] != now["fingerprint"]
    ):
        return "its pixels are not the same"
    return None


def a_kind(kind: Any) -> str:
    """'an Image', 'a Labels'."""
    return f"{'an' if str(kind)[:1] in 'AEIOU' else 'a'} {kind}"


def shown_shape(shape: Any) -> str:
    """'43×64×3'."""
    return "×".join(str(int(v)) for v in shape)


def check_identity(recorded: Any, layer: Any, what: str) -> None:
    """Raise UserError (one sentence) when ``layer`` is no longer the image ``recorded`` describes."""
    change = identity_change(recorded, layer)
    if change is None:
        return
    image = "labels" if what.startswith("mask") else "image"
    raise UserError(
        f"The {what} '{layer.name}' is no longer the {image} this result was made from ({change}); "
        f"give that {image} the name '{layer.name}' again (and this layer another name) to continue."
    )


__all__ = ["check_identity", "fingerprint", "identity_change", "layer_identity"]
