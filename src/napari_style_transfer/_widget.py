"""The napari manifest's entry point for the dock widget (``napari.yaml`` names this module).

The widget itself is built from the views in :mod:`napari_style_transfer._qt`.
"""

from ._qt.widget import StyleTransferWidget

__all__ = ["StyleTransferWidget"]
