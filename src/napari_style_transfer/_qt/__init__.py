"""The dock widget's Qt views, one small part per module (the logic they call has no Qt).

``form`` (the settings controls ↔ StyleConfig), ``style_rows`` (style layers, files and
gallery styles, with blend weights), ``label_table`` (mask label → style), ``run_extras``
(start image, saved previews, Continue), ``worker`` (the thread and its wiring),
``results`` (the one result-layer path for 2D and stack runs), ``batch`` (the Batch choice
and its runs) and ``widget``, which composes them into :class:`~napari_style_transfer._qt.widget.StyleTransferWidget`.
"""
