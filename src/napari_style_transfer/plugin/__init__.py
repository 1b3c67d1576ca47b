"""The napari plugin's logic, without Qt: what the dock widget's views call.

``layers`` (napari layers → read plans and arrays, checks, placement), ``run_request``
(the form's choices → the engine's inputs, ``Guidance`` and ``StackOptions``),
``batch_request`` (a batch of layers or slices), ``continuation`` (a result's metadata → the
run that continues it), ``result_metadata`` (what a result layer records), ``sources`` (styles
from files and the gallery), ``previews`` (every Nth preview to a folder), ``progress`` (one
update shape for 2D runs and stacks, status texts) and ``faults`` (one-sentence errors,
memory release). napari layer objects are used duck-typed; nothing here imports Qt.

May import: ``engine``, ``files``, ``settings``, ``batch`` and the package's leaves. Tested
without a viewer in ``tests/plugin/``.
"""
