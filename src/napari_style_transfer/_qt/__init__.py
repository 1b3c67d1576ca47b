"""The dock widget's Qt views, one small part per module; the logic they call is in ``plugin/`` (no Qt).

``form`` (the settings controls ↔ StyleConfig), ``inputs`` (the content — a layer or the
canvas — stack mode, styles, mask), ``style_rows`` (style layers, files and gallery styles,
with blend weights and Shapes regions), ``label_table`` (mask label or shape → style),
``colour_hint`` (offers the style's colours for a grey content), ``run_extras``
(start image, saved previews, Continue), ``controls`` (Run / Stop, the bar and the status
line: one owner for single runs and batches), ``worker`` (the thread and its wiring),
``results`` (the one result-layer path for 2D and stack runs), ``batch`` (the Batch choice
and its runs), ``settings_view`` (presets, Reset, last-used settings) and ``widget``, which
composes them into :class:`~napari_style_transfer._qt.widget.StyleTransferWidget` (the
manifest's widget). A view is handed what it shows (a form, the controls, the viewer), never
the widget.

May import: ``plugin`` and everything below it, napari, magicgui, qtpy and superqt.
"""
