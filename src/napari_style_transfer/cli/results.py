"""What the CLI writes: the result at the content's full size with ``--full-size``, carrying its settings.

PNG and TIFF results carry the run's settings (a text chunk, the TIFF description), so
``--config result.png`` runs it again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .job import Job


def result_image(job: Job, image: Any, rgb: bool) -> Any:
    """The result as written: at the content's full size with ``--full-size``."""
    if not job.output.get("full_size"):
        return image
    from ..engine.full_size import upsample_to

    shape = job.content.shape
    hw = job.content_hw or (shape[-3:-1] if rgb else shape[-2:])
    return upsample_to(image, hw, rgb)


def result_description(job: Job) -> str:
    """The settings a result carries (a JSON settings document), with the input files' names."""
    from ..settings import to_json, values_of

    return to_json(values_of(job.config, job.output), inputs=job.inputs)


__all__ = ["result_description", "result_image"]
