"""Where a run will compute, in words, before Run: the device, its memory or threads, the precision.

The widget's "Runs on" row (``_qt/device_label.py``) shows :func:`describe_device` for the
form's device, precision and output size, and asks again when one of them changes. It
resolves 'auto' with the engine's own rules (:func:`~..engine.runtime.select_device`,
:func:`~..engine.runtime.select_runtime`, the same output long side the run passes), so the row
says what the run will do, not a guess. The first CUDA query initialises the driver, which can
take seconds: the widget calls this off the GUI thread. Qt-free, so it is tested without a viewer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..engine import ConfigError
from ..engine.runtime import AUTO_BF16_FROM_SIDE, select_device, select_runtime
from ..messages import first_line


@dataclass(frozen=True)
class DeviceSummary:
    """One line for the row, more for its tooltip; ``ok`` False: these settings cannot run here."""

    text: str
    tooltip: str = ""
    ok: bool = True


def torch_build() -> str:
    """This PyTorch and what it was built for: 'PyTorch 2.5.1+cu124 (CUDA 12.4)', '… (ROCm 6.2)', '… (CPU only)'."""
    version = getattr(torch, "__version__", "?")
    cuda = getattr(torch.version, "cuda", None)
    hip = getattr(torch.version, "hip", None)
    if hip:
        return f"PyTorch {version} (ROCm {hip})"
    if cuda:
        return f"PyTorch {version} (CUDA {cuda})"
    return f"PyTorch {version} (CPU only)"


def hardware_text(device: torch.device) -> str:
    """'CUDA 0: NVIDIA H100 80GB HBM3 (79 GiB)', 'Apple GPU (MPS)' or 'CPU, 8 threads'."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        name = torch.cuda.get_device_name(index)
        gib = torch.cuda.get_device_properties(index).total_memory / 2**30
        kind = "ROCm" if getattr(torch.version, "hip", None) else "CUDA"
        return f"{kind} {index}: {name} ({gib:.0f} GiB)"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    threads = torch.get_num_threads()
    return f"CPU, {threads} thread{'s' if threads != 1 else ''}"


def precision_text(precision: str, device: torch.device, size: int | None) -> tuple[str, str]:
    """The precision a run at output long side ``size`` gets (``select_runtime``'s rule), and a note.

    On a CUDA GPU with bf16, 'auto' depends on the size: fp32 (TF32) below
    :data:`AUTO_BF16_FROM_SIDE` px, bf16 from there; the text then says "at this size".
    Raises ConfigError where the precision cannot run on ``device``.
    """
    chosen = select_runtime(precision, device, long_side=size).precision
    if precision != "auto" or device.type != "cuda":
        return chosen, ""
    if select_runtime("auto", device, long_side=None).precision != "bf16":
        return chosen, ""  # fp16 on an older GPU, whatever the size
    note = f"'auto' runs fp32 (TF32 convolutions) below {AUTO_BF16_FROM_SIDE} px and bf16 from there"
    if size is None:
        return chosen, note + "; at the content's own size, bf16"
    return f"{chosen} at this size", note


def describe_device(device: str = "auto", precision: str = "auto", size: int | None = None) -> DeviceSummary:
    """What a run with these settings will run on, e.g. 'CUDA 0: NVIDIA H100 (79 GiB), fp32 at this size'.

    ``device`` and ``precision`` are StyleConfig's values ('auto' resolved as a run resolves
    it), ``size`` the output long side (None: the content's own size). A choice that cannot
    run here gives the engine's sentence with ``ok`` False; so does a failing driver.
    """
    build = torch_build()
    try:
        chosen = select_device(device)
    except ConfigError as exc:
        return DeviceSummary(first_line(exc), build, ok=False)
    try:
        hardware = hardware_text(chosen)
    except Exception as exc:  # noqa: BLE001 - a broken driver: say so, never raise into the GUI
        return DeviceSummary(f"{chosen.type}: not usable ({first_line(exc)})", build, ok=False)
    try:
        text, note = precision_text(precision, chosen, size)
    except ConfigError as exc:
        return DeviceSummary(f"{hardware} — {first_line(exc)}", build, ok=False)
    except Exception as exc:  # noqa: BLE001
        return DeviceSummary(f"{hardware} — precision unknown ({first_line(exc)})", build, ok=False)
    picked = f"'auto' picks {hardware.split(',')[0]}" if device == "auto" else f"device '{device}'"
    if device == "auto" and chosen.type == "cpu":
        picked += " (this PyTorch sees no GPU)"
    tooltip = "\n".join(line for line in (f"{picked}; {build}", note) if line)
    return DeviceSummary(f"{hardware}, {text}", tooltip)


__all__ = ["DeviceSummary", "describe_device", "hardware_text", "precision_text", "torch_build"]
