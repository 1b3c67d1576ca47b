"""Continue: a result layer's recorded run, as the choices of a run that goes on from its image.

No Qt here. A result layer's metadata (``result_metadata.result_metadata``) records the settings,
the content layer, the styles (layers by name, files by path, gallery styles by key) and the
mask, and what identifies each of those layers beyond its name (``identity.py``): a layer of
that name that holds another image is refused in one sentence (results made before this was
recorded are found by name only). :func:`continue_choices` finds them again and builds a run
of N more iterations that starts from the result's image at the result's run size (one scale:
the coarse scales are done), with the same output options (a full-size result stays full size).
A canvas result is drawn again from the layers it names, with the display settings it recorded;
style regions are found by their Shapes layers' names; the shapes of an nD Shapes layer are those
of the slice the run took them from (its recorded world point), wherever the viewer is now.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..engine.options import TUPLE_KINDS, option_spec, option_specs
from ..settings import OUTPUT_SPECS
from .composite import Canvas, LayerLook
from .faults import UserError
from .identity import check_identity
from .layers import is_result_layer
from .run_request import RunChoices
from .sources import is_source, resolve_style

#: Settings that the run's layers give (or Continue sets), not the recorded config.
NOT_RECORDED_GROUPS = ("inputs",)


def recorded_params(config: dict[str, Any], iterations: int) -> dict[str, Any]:
    """The widget's settings as a result recorded them, for ``iterations`` more steps from its image."""
    known = {spec.name for spec in option_specs() if spec.group not in NOT_RECORDED_GROUPS}
    params: dict[str, Any] = {}
    for name, value in config.items():
        if name not in known:
            continue
        if option_spec(name).kind in TUPLE_KINDS and isinstance(value, list):
            value = tuple(value)
        params[name] = value
    params.update(iterations=int(iterations), multiscale=False, init="image")
    return params


def find_layer(name: Any, layers: Iterable[Any], what: str, identity: Any = None) -> Any:
    """The layer called ``name``; UserError saying it is gone otherwise, or, when the result
    recorded the ``identity`` of the image it was made from, that the layer is another image."""
    for layer in layers:
        if layer.name == name:
            check_identity(identity, layer, what)
            return layer
    again = "draw or open it again" if what in ("mask layer", "style region") else "open it again"
    raise UserError(f"The {what} '{name}' of this result is gone; {again} to continue.")


def continue_choices(
    result: Any, layers: Iterable[Any], iterations: int, previews: tuple[Any, int] | None = None
) -> RunChoices:
    """The choices of a run of ``iterations`` more steps from ``result`` (a 2D result layer).

    Raises UserError when ``result`` is no finished-or-stopped result of this plugin, is a
    stack result, or when a layer it was made from is gone.
    """
    if result is None or not is_result_layer(result):
        raise UserError("Select a Style Transfer result layer ('… stylised') to continue it.")
    meta = result.metadata
    if meta.get("stack") == "slice":
        raise UserError(
            "Continue works on 2D results; a result of one slice of a stack cannot be continued yet "
            "(run that slice again with more iterations)."
        )
    if meta.get("stack") is not None:
        raise UserError("Continue works on 2D results; a stack result cannot be continued yet.")
    if int(iterations) < 1:
        raise UserError("Continue: the number of iterations must be 1 or more.")
    layers = list(layers)
    identities = meta.get("input_identities")
    identities = identities if isinstance(identities, dict) else {}
    content = recorded_content(meta, layers, identities)
    records = meta.get("styles") or [{"layer": name} for name in meta.get("style_layers", ())]
    styles = [resolve_style(record, layers) for record in records]
    for style, recorded in zip(styles, identities.get("styles") or ()):
        if recorded is not None and not is_source(style):
            check_identity(recorded, style, "style layer")
    config = dict(meta.get("config") or {})
    weights = config.get("style_blend_weights") or [1.0] * len(styles)
    mask = label_styles = None
    if meta.get("mask_layer") is not None:
        mask = find_layer(meta["mask_layer"], layers, "mask layer", identities.get("mask"))
        label_styles = {int(k): int(v) for k, v in (meta.get("label_styles") or {}).items()}
    regions = [
        None if name is None else find_layer(name, layers, "style region")
        for name in meta.get("style_regions") or ()
    ]
    params = recorded_params(config, iterations)
    recorded = meta.get("settings") or {}
    params.update({spec.name: recorded[spec.name] for spec in OUTPUT_SPECS if spec.name in recorded})
    return RunChoices(
        content,
        list(zip(styles, (float(w) for w in weights))),
        params,
        mask_layer=mask,
        label_styles=label_styles,
        init_layer=result,
        previews=previews,
        continued_from=result.name,
        style_regions=regions or None,
        point=recorded_point(meta),
    )


def recorded_point(meta: dict[str, Any]) -> tuple[float, ...] | None:
    """The viewer's world point the result's run took its slices at, so that Continue takes an nD
    Shapes layer's shapes (and an nD style's slice) as that run did even if the viewer has moved
    since; None for results that recorded none (every shape, as before) or a damaged record."""
    point = meta.get("world_point")
    if not isinstance(point, (list, tuple)):
        return None
    try:
        return tuple(float(v) for v in point)
    except (TypeError, ValueError):
        return None


def recorded_content(meta: dict[str, Any], layers: list[Any], identities: dict[str, Any]) -> Any:
    """The content layer a result names, or its canvas: the layers it names, drawn as recorded."""
    canvas = meta.get("canvas")
    if not isinstance(canvas, dict):
        return find_layer(meta.get("content_layer"), layers, "content layer", identities.get("content"))
    looks = [LayerLook.from_record(record) for record in canvas.get("layers") or ()]
    recorded = list(identities.get("canvas") or ())
    recorded += [None] * (len(looks) - len(recorded))
    found = [find_layer(look.name, layers, "canvas layer", known) for look, known in zip(looks, recorded)]
    return Canvas(tuple(found), tuple(looks))


__all__ = ["continue_choices", "find_layer", "recorded_params", "recorded_point"]
