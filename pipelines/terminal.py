"""Rich consoles for the command line: stdout for results, stderr for everything else.

Lines are never broken at the console's width (soft wrap): a message naming a long path stays
one line that can be copied, grepped and read by a script; tables still fit the width.
"""

from rich.console import Console


def stderr_console() -> Console:
    """A console on stderr (warnings, progress, summaries)."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def stdout_console() -> Console:
    """A console on stdout (a command's result)."""
    return Console(highlight=False, soft_wrap=True)
