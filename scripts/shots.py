"""What the screenshot scripts share: a screenshot saved as a small PNG for the docs."""

from __future__ import annotations

from pathlib import Path


def save_small_png(image, path: Path, limit_kb: int = 480) -> None:
    """Save as PNG; above ``limit_kb``, with a 256-colour palette (keeps the docs light)."""
    from PIL import Image

    picture = Image.fromarray(image[..., :3])
    picture.save(path, optimize=True)
    if path.stat().st_size > limit_kb * 1024:
        palette = picture.quantize(
            colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG
        )
        palette.save(path, optimize=True)
