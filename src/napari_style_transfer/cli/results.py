"""What the CLI writes: the result at the content's full size with ``--full-size``, carrying its settings.

PNG and TIFF results carry the run's settings (a text chunk, the TIFF description), so
``--config result.png`` runs it again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .job import Job


def result_image(job: Job, image: Any, rgb: bool) -> Any:
    """The result as written: at the content's full size with ``--full-size`` (``rgb``: whether the
    result is in colour, which a grey content given the style's colours is)."""
    if not job.output.get("full_size"):
        return image
    from ..engine.full_size import upsample_to

    shape = job.content.shape
    hw = job.content_hw or (shape[-3:-1] if job.content_rgb else shape[-2:])
    return upsample_to(image, hw, rgb)


def check_result_fits(job: Job) -> None:
    """With ``--full-size``, refuse before the run a result that would not fit in memory at full size."""
    if not job.output.get("full_size"):
        return
    import numpy as np

    from ..engine.full_size import check_full_size, result_channels

    shape = job.content.shape
    rgb = job.content_rgb
    image_axes = 3 if rgb else 2
    hw = job.content_hw or shape[len(shape) - image_axes : len(shape) - image_axes + 2]
    channels = result_channels(shape[-1] if rgb else 1, job.config.result_colour)  # grey → RGB: 3
    planes = int(np.prod(shape[: len(shape) - image_axes], dtype=np.int64)) * channels
    check_full_size(hw, planes, job.content.dtype)


def result_description(job: Job) -> str:
    """The settings a result carries (a JSON settings document), with the input files' names."""
    from ..settings import to_json, values_of

    return to_json(values_of(job.config, job.output), inputs=job.inputs)


__all__ = ["check_result_fits", "result_description", "result_image"]
