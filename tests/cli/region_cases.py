"""The bad ``--style-region`` values the single run and the batch must each refuse in one line."""

BAD_REGIONS = [
    (["--style-region", "0,0,10"], "--style-region: '0,0,10' must be X0,Y0,X1,Y1"),
    (
        ["--style-region", "500,0,600,10"],
        "--style-region: 500,0,600,10 lies outside the style image (120×60 px)",
    ),
    (["--style-region", "10,0,5,10"], "style_regions[0]: must be None or (x0, y0, x1, y1)"),
    (["--style-region", "-", "--style-region", "-"], "--style-region: given 2 times for 1 style image(s)"),
]
