"""Make docs/images/scientific/colour_result.jpg: a grey micrograph styled after a stain, grey and in colour.

Content: scikit-image's ``coins`` (grey; no known copyright restrictions); style: its
``immunohistochemistry`` sample (a stained tissue section, colour; public domain). Left to
right: the content, the style, today's result (``result_colour='content'``: grey, like the
content) and the colour one (``result_colour='style'``), and the same colour run with its style
taken from one region of the stain only (``Guidance.style_regions``: the blue,
haematoxylin-stained stroma). Runs the engine's defaults otherwise; about two minutes on two CPU cores::

    python scripts/make_colour_demo.py [--size 256] [--out docs/images/scientific/colour_result.jpg]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
#: The region of the stain the last panel's style comes from (x0, y0, x1, y1 in its pixels).
BLUE_REGION = (392, 300, 512, 440)


def panel(image: np.ndarray, height: int, caption: str) -> Image.Image:
    """An image scaled to ``height`` with a caption strip underneath."""
    picture = Image.fromarray(image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=-1))
    width = round(picture.width * height / picture.height)
    picture = picture.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
    out = Image.new("RGB", (width, height + 22), "white")
    out.paste(picture, (0, 0))
    ImageDraw.Draw(out).text((4, height + 5), caption, fill="black")
    return out


def main(argv: list[str] | None = None) -> None:
    from skimage import data

    from napari_style_transfer.engine import Guidance, stylize

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--out", type=Path, default=ROOT / "docs/images/scientific/colour_result.jpg")
    args = parser.parse_args(argv)
    content, style = data.coins(), data.immunohistochemistry()
    runs = {}
    for name, kwargs in {
        "result_colour='content' (grey)": {},
        "result_colour='style'": {"result_colour": "style"},
        "… style from the blue area": {
            "result_colour": "style",
            "guidance": Guidance(style_regions=[BLUE_REGION]),
        },
    }.items():
        start = time.perf_counter()
        runs[name] = stylize(content, style, size=args.size, preview_every=0, **kwargs)
        print(f"{name}: {time.perf_counter() - start:.0f} s")
    height = 200
    panels = [panel(content, height, "content (grey)"), panel(style, height, "style (a stain)")]
    panels += [panel(image, height, name) for name, image in runs.items()]
    sheet = Image.new(
        "RGB", (sum(p.width for p in panels) + 8 * (len(panels) - 1), panels[0].height), "white"
    )
    x = 0
    for p in panels:
        sheet.paste(p, (x, 0))
        x += p.width + 8
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, quality=88)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
