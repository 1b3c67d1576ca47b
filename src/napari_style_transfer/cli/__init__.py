"""The command line: ``napari-style-transfer CONTENT STYLE -o OUT`` and ``napari-style-transfer batch``.

``main.py`` (the entry point and its signals), ``single.py`` and ``batch.py`` (the two
commands), ``options.py`` (every option's flag from the option specs; preset < config file <
flags), ``job.py`` (what one run checks and reads), ``results.py`` (the result as written,
with its settings) and ``common.py`` (one parser base, one progress bar, one error path).

May import: ``engine``, ``files``, ``settings``, ``batch`` and the package's leaves; never
``plugin`` or ``_qt`` (``tests/test_layout.py`` checks it).
"""

from .main import main, run
from .options import config_from_args, settings_from_args
from .single import build_parser

__all__ = ["build_parser", "config_from_args", "main", "run", "settings_from_args"]
