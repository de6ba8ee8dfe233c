"""`veil explain`: the customer notice and the data map, from the policies."""

from typing import Annotated

import typer
from rich.markup import escape

from veil.pipelines.terminal import stdout_console


def explain(
    policies: Annotated[list[str], typer.Argument(help="Policy YAML files, one per purpose.")],
    output: Annotated[str, typer.Option("--output", help="Folder for notice.md/.html and data-map.json/.html.")],
) -> None:
    """Write a customer data-use notice and a data map (record of processing) from the policies."""
    from veil.pipelines.governance.explain import write_explain
    from veil.transforms.policy import load_policy

    paths = write_explain([load_policy(path) for path in policies], output)
    console = stdout_console()
    for path in paths:
        console.print(escape(path), soft_wrap=True)


def register_explain(app: typer.Typer) -> None:
    """Add `veil explain` to the `veil` app."""
    app.command("explain")(explain)
