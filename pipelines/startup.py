"""How a `veil` command process starts and ends without paying for what it does not use.

Two costs dominate a small `veil run` that are not veil's work (README, Performance, "Start-up"):

- pandas, about 0.3 s of CPU to import, whenever it is installed: `import apache_beam` imports
  it (its type hints register pandas batch types) and so does pyarrow's first conversion of a
  Python list (to tell whether the list is a pandas object). veil hands neither of them pandas
  objects. `import_beam` imports Beam, and lets pyarrow settle that question, with pandas
  hidden, unless this process has already imported it; pandas stays importable afterwards
  (pyarrow's `to_pandas` and anything else that asks for it get it).
- The garbage collector walks every object the imports made, several times while importing
  and again, in full, when the interpreter exits (about 0.4 s of CPU after Beam is imported).
  `import_beam` pauses it while Beam is imported and then freezes what is there (those objects
  live as long as the process), and `freeze_at_exit` does the same before the process ends.
"""

import gc
import importlib
import sys
from importlib.machinery import ModuleSpec


class _HiddenPandas:
    """A meta path finder under which `import pandas` fails as it does where pandas is not installed."""

    def find_spec(self, name: str, path=None, target=None) -> ModuleSpec | None:
        """Refuse pandas and its submodules; leave every other module to the next finder."""
        if name.partition(".")[0] == "pandas":
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return None


def import_beam() -> None:
    """Import Apache Beam once for a command that runs a pipeline, without pandas and collections.

    A no-op when Beam is already imported (a test process, a second command in one process).
    """
    if "apache_beam" in sys.modules:
        return
    hidden = _HiddenPandas() if "pandas" not in sys.modules else None
    enabled = gc.isenabled()
    gc.disable()
    if hidden is not None:
        sys.meta_path.insert(0, hidden)
    try:
        importlib.import_module("apache_beam")
        importlib.import_module("pyarrow").array([])  # pyarrow checks for pandas once, here
    finally:
        if hidden is not None:
            sys.meta_path.remove(hidden)
        gc.freeze()  # Beam's modules, classes and constants: never garbage, never walked again
        if enabled:
            gc.enable()


def freeze_at_exit() -> None:
    """Spare the interpreter's final collections over every object still alive (the process is ending).

    Files, locks and staging folders are closed by then (context managers); nothing veil writes
    waits for a garbage collection.
    """
    gc.freeze()
