"""What a result layer records in its metadata: every setting, the inputs, and how the run went.

No Qt here. File ▸ Save Layer embeds ``settings`` in the file, ``--config`` and Continue read it
back (``continuation.py``). A canvas run records its layers and their display settings
(``canvas``), a run with style regions the Shapes layer of each (``style_regions``) and the box
each took in its style's pixels (``style_region_bounds``), and the viewer's world point when the
run had one (``world_point``: Continue takes an nD Shapes layer's shapes at the same slice).
``input_identities`` says which images the input layers held (``identity.py``), so that Continue
refuses a layer that has the name but not the image.
"""

from __future__ import annotations

import copy
from typing import Any

from ..engine import ProgressEvent
from ..settings import values_of
from ..version import __version__
from .layers import PLUGIN_KEY
from .progress import RunUpdate
from .run_request import RunRequest


def result_metadata(request: RunRequest, event: ProgressEvent | None = None) -> dict[str, Any]:
    """What a result layer records: every setting, the inputs, where and how fast it ran."""
    meta: dict[str, Any] = {
        PLUGIN_KEY: __version__,
        "content_layer": request.content_name,
        "style_layers": list(request.style_names),
        "config": request.config.as_dict(),
        # every setting as plain values: what File ▸ Save Layer embeds, and --config reads back
        "settings": values_of(request.config, {"full_size": request.full_size}),
        "weights": request.config.weights,
        "stopped": False,
        "done": False,
    }
    if request.stack is not None:
        meta["stack"] = request.stack
        if request.stack == "slice":
            meta["slice_index"] = list(request.slice_index)
        else:
            meta["coherence"] = request.coherence
    if request.mask_name is not None:
        meta["mask_layer"] = request.mask_name
        meta["label_styles"] = {str(k): v for k, v in (request.label_styles or {}).items()}
    if request.canvas is not None:  # the canvas's layers and how each was drawn (Continue redraws it)
        meta["canvas"] = copy.deepcopy(request.canvas)
    if request.region_names is not None:  # per style, the Shapes layer of its region (or None)
        meta["style_regions"] = list(request.region_names)
        meta["style_region_bounds"] = region_bounds(request)
    if request.point is not None:  # Continue takes an nD Shapes layer's shapes at the same slice
        meta["world_point"] = [float(v) for v in request.point]
    if request.identities is not None:
        # what Continue checks the layers found by name against (identity.py)
        meta["input_identities"] = copy.deepcopy(request.identities)
    meta.update(start_metadata(request, meta))
    if event is not None:
        meta.update(
            {
                "done": bool(event.done) and not event.stopped,  # a stopped run is not done
                "stopped": bool(event.stopped),
                "steps": int(event.step),
                "total_steps": int(event.total_steps),
                "losses": dict(event.losses),
                "elapsed_s": round(float(event.elapsed), 3),
            }
        )
        if event.info:
            meta["info"] = dict(event.info)
            meta["device"] = event.info.get("device")
            meta["weights"] = event.info.get("weights", meta["weights"])
    return meta


def region_bounds(request: RunRequest) -> list[dict[str, Any] | None]:
    """Per style, the box its region took in the style's full-resolution pixels, and whether the
    region is that box (None: no region, or none left inside the image); File ▸ Save Layer embeds
    it, so the CLI can say which ``--style-region`` does the same."""
    found: list[dict[str, Any] | None] = []
    for read in request.region_reads or ():
        bounds = getattr(read, "bounds", None)
        found.append(None if bounds is None else {"bounds": list(bounds), "exact": bool(read.exact)})
    return found


def start_metadata(request: RunRequest, recorded: dict[str, Any]) -> dict[str, Any]:
    """Where the styles came from (layers, files, the gallery), the start image and a continued
    result; with a start image, ``recorded``'s config and settings say ``init`` 'image'."""
    meta: dict[str, Any] = {"styles": [dict(d) for d in request.style_sources or ()]}
    if request.init_read is not None:
        meta["config"] = {**recorded["config"], "init": "image"}
        meta["settings"] = {**recorded["settings"], "init": "image"}
        meta["init_layer"] = request.init_name
    if request.continued_from is not None:
        meta["continued_from"] = request.continued_from
    return meta


def final_metadata(request: RunRequest, update: RunUpdate, slices_done: int = 0) -> dict[str, Any]:
    """What a result layer records at the end of a run (stack runs: the stack's steps and slices)."""
    meta = result_metadata(request, update.event)
    if update.is_stack:
        meta.update(
            {
                "stopped": bool(update.stopped),
                "done": not update.stopped,
                "steps": int(update.step),
                "total_steps": int(update.total_steps),
                "stack": dict(update.info),
                "slices_done": slices_done,
                "slice_count": update.slice_count,
            }
        )
    return meta
