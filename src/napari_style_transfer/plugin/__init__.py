"""The napari plugin's logic, without Qt: what the dock widget's views call.

``layers`` (napari layers → read plans and arrays, checks, placement), ``run_request``
(the form's choices → the engine's inputs, ``Guidance`` and ``StackOptions``),
``batch_request`` (a batch of layers or slices), ``folder_request`` (a folder or pattern
into an output folder, the CLI's batch path), ``continuation`` (a result's metadata → the
run that continues it), ``identity`` (is a layer still the image a result was made from),
``result_metadata`` (what a result layer records), ``geometry`` (a result laid over a rotated
or sheared content), ``label_masks`` (label values of any integer type, masks on another
grid), ``composite`` (the canvas as content: the visible image layers composited as napari
draws them), ``shapes`` (Shapes layers as masks and style regions), ``sources`` (styles from
files and the gallery), ``previews`` (every Nth preview to a folder), ``progress`` (one
update shape for 2D runs and stacks, status texts), ``device`` (what "Runs on" says) and
``faults`` (one-sentence errors, memory release). napari layer objects are used duck-typed;
nothing here imports Qt.

May import: ``engine``, ``files``, ``settings``, ``batch`` and the package's leaves. Tested
without a viewer in ``tests/plugin/``.
"""
