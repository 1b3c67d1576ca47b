"""Driver: coarse-to-fine optimisation, one call of the loop per scale, each warm-started from the last."""

from __future__ import annotations

import time
from collections.abc import Generator

import torch

from .content_run import ContentRun, RunEnd
from .events import ProgressEvent, StopRequest, should_stop
from .images import resize
from .optimise import Steps, optimise
from .stopping import Numbering


def run_scales(
    run: ContentRun, sizes: list[tuple[int, int]], stop: StopRequest, numbering: Numbering, *, final: bool
) -> Generator[ProgressEvent, None, RunEnd]:
    """Optimise ``run`` at each of ``sizes`` in turn; yield step events, return where it ended.

    With ``final`` the run's very last step yields no event and makes no preview (the caller
    yields the final event with the result).
    """
    end = RunEnd()
    image: torch.Tensor | None = None
    message = numbering.message
    for scale_index, shape in enumerate(sizes):
        if image is not None and should_stop(stop):
            # Stop before the next scale's set-up (its targets take a while at large sizes).
            end.image, end.stopped, end.scale = image, True, scale_index - 1
            end.shape = tuple(image.shape[-2:])
            return end
        scale_start = time.perf_counter()
        objective, content_t = run.objective(shape)
        if image is None:
            image = run.initial_image(shape, content_t)
        else:
            image = resize(image.detach(), shape).clamp(0, 1)
        last_scale = final and scale_index == len(sizes) - 1
        end.scale, end.shape = scale_index, shape
        budget = numbering.budgets[scale_index]
        steps = Steps(
            optimise(
                image,
                objective,
                budget,
                run.settings,
                stop=stop,
                render=run.render,
                preview_last=not last_scale,
            )
        )
        for step in steps:
            end.step += 1
            end.iteration, end.losses = step.iteration, step.losses
            numbering.expected[scale_index] = end.expected = step.expected
            if last_scale and step.last:
                continue  # the caller's final event stands for this step
            yield run.step_event(end, numbering, preview=step.preview, message=message, **numbering.fields)
            message = None
        outcome = steps.outcome
        assert outcome is not None
        image = outcome.image
        if outcome.stopped:
            end.image, end.stopped, end.iteration = image, True, outcome.iterations
            return end
        end.scale_times.append(time.perf_counter() - scale_start)
    end.image, end.scale, end.shape = image, len(sizes) - 1, sizes[-1]
    return end


__all__ = ["run_scales"]
