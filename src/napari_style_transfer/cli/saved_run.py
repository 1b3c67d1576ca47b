"""What ``--config saved.png`` says of the saved run's inputs that a command line cannot take.

A result saved from napari (File ▸ Save Layer) records in its settings document what its run
took besides settings (``settings.document_inputs``): the canvas (layers drawn as napari showed
them), a mask layer, and per style the Shapes layer of its region with the box it took in the
style image's pixels. The settings alone would run something else without a word, so each of those
the command line does not give again is one ``note:`` line on stderr, saying which flag does the
same where one exists. Notes only: the run and its exit code are unchanged.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any


def number(value: float) -> str:
    """A pixel coordinate, compact: 12, 12.5, 12.25 (up to six decimals, no trailing zeros)."""
    text = f"{float(value):.6f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def region_box(record: Any) -> tuple[str, bool] | None:
    """'X0,Y0,X1,Y1' of a saved region record and whether the region was exactly that box (None:
    no usable box, e.g. a document written before boxes were recorded)."""
    if not isinstance(record, Mapping):
        return None
    box = record.get("bounds")
    if not isinstance(box, Sequence) or isinstance(box, str) or len(box) != 4:
        return None
    try:
        values = [float(v) for v in box]
    except (TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for v in values):
        return None
    return ",".join(number(v) for v in values), record.get("exact") is True


def region_notes(regions: Any) -> list[str]:
    """One line per style whose saved region has a box: where its look came from, and the
    ``--style-region`` that takes the same rectangle of the same style image."""
    if not isinstance(regions, Sequence) or isinstance(regions, str):
        return []
    notes = []
    for n, record in enumerate(regions, start=1):
        found = region_box(record)
        if found is None:
            continue
        box, exact = found
        where = box if exact else f"shapes within {box}"
        flag = f"--style-region {box}"
        if n > 1:
            flag += f" as style {n}'s (one --style-region per STYLE, in order; '-': the whole image)"
        goal = "to do the same" if exact else "to take that whole box"
        notes.append(
            f"note: the saved run took style {n}'s look from {where} of its style image"
            f"{layer_words(record)}; add {flag} {goal}"
        )
    return notes


def layer_words(record: Mapping[str, Any]) -> str:
    """ " (Shapes 'area')" for a region drawn in napari; nothing for one given on a command line."""
    layer = record.get("layer")
    return f" (Shapes '{layer}')" if layer is not None else ""


def canvas_note(canvas: Any, content: str) -> list[str]:
    """One line when the saved run's content was the canvas: which layers, and that this command
    takes ``content`` (an image file) as it is."""
    if not isinstance(canvas, Mapping):
        return []
    layers = canvas.get("layers")
    names = [str(r.get("name")) for r in layers if isinstance(r, Mapping)] if isinstance(layers, list) else []
    which = f" of layers {', '.join(repr(name) for name in names)}" if names else ""
    return [
        f"note: the saved run's content was the canvas{which} as napari drew them (colormaps, contrast "
        f"limits, blending); the command line draws no layers: it takes {content} as it is"
    ]


def mask_note(mask: Any, can_mask: bool) -> list[str]:
    """One line when the saved run had a mask layer: which one, and ``--mask`` with its table."""
    if not isinstance(mask, Mapping) or mask.get("layer") is None:
        return []
    kind = mask.get("kind")
    if kind == "file":  # a run of the command line: --mask FILE
        layer = f"the label file '{mask['layer']}'"
    else:
        layer = f"the {kind} layer '{mask['layer']}'" if kind else f"the layer '{mask['layer']}'"
    if not can_mask:
        return [
            f"note: the saved run was masked by {layer}; a batch takes no mask: each image is stylised whole"
        ]
    table = mask.get("label_styles")
    pairs = " ".join(f"{k}:{v}" for k, v in table.items()) if isinstance(table, Mapping) else ""
    flags = "--mask LABELS_FILE" + (f" --label-styles {pairs}" if pairs else "")
    if kind == "file":
        return [f"note: the saved run was masked by {layer}; add {flags} (that file) to do the same"]
    image = "as a label image: shape i is label i + 1" if kind == "Shapes" else "saved as a label image"
    return [f"note: the saved run was masked by {layer}; add {flags} (that layer {image}) to do the same"]


def saved_run_notes(
    inputs: Mapping[str, Any], *, region_given: bool, mask_given: bool | None, content: str = "CONTENT"
) -> list[str]:
    """The note lines for a saved run's ``inputs`` that this command line does not give again:
    style regions (unless ``--style-region`` is given), the canvas, a mask (unless ``--mask`` is
    given; ``mask_given`` None: the command has no ``--mask``). ``content``: what it takes instead
    of the canvas, in words."""
    notes = [] if region_given else region_notes(inputs.get("style_regions"))
    notes += canvas_note(inputs.get("canvas"), content)
    if not mask_given:
        notes += mask_note(inputs.get("mask"), mask_given is not None)
    return notes


def print_saved_run_notes(args: argparse.Namespace, prog: str, *, content: str = "CONTENT") -> None:
    """Print ``prog: note: …`` on stderr for each :func:`saved_run_notes` line of ``--config FILE``
    (nothing without ``--config``, or when the file records no inputs)."""
    from ..settings.values import read_settings_inputs

    path = getattr(args, "config_file", None)
    if not path:
        return
    mask_given = bool(args.mask) if hasattr(args, "mask") else None
    notes = saved_run_notes(
        read_settings_inputs(path),
        region_given=bool(getattr(args, "style_region", None)),
        mask_given=mask_given,
        content=content,
    )
    for line in notes:
        print(f"{prog}: {line}", file=sys.stderr, flush=True)


__all__ = ["number", "print_saved_run_notes", "saved_run_notes"]
