"""Rich consoles for the command line: stdout for results, stderr for everything else."""

from rich.console import Console


def stderr_console() -> Console:
    """A console on stderr (warnings, progress, summaries)."""
    return Console(stderr=True, highlight=False)


def stdout_console() -> Console:
    """A console on stdout (a command's result)."""
    return Console(highlight=False)
