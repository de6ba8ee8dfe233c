"""`veil verify OUTPUT --input RAW --policy POLICY`: the leak check of `veil run` on an existing output."""

import json
from typing import Annotated

import typer

from veil.errors import DataRefusedError
from veil.pipelines.terminal import stdout_console


def verify(
    ctx: typer.Context,
    output: Annotated[str, typer.Argument(help="A veil output folder (read through its _manifest.json).")],
    input: Annotated[str, typer.Option("--input", help="The raw input it was made from (file, folder or glob).")],
    policy: Annotated[str, typer.Option("--policy", help="The policy that made it.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
) -> None:
    """Check an output against its raw input: raw values and personal-data patterns (exit 2 on findings)."""
    from veil.pipelines import cli
    from veil.pipelines.console import beam_chatter_hidden
    from veil.pipelines.verify import refused_findings, verify_job, verify_lines
    from veil.transforms.policy import load_policy
    from veil.transforms.verify import findings_message

    _, beam_args = cli._split_beam_args(list(ctx.args))
    loaded = load_policy(policy)
    with beam_chatter_hidden(not cli._flags["verbose"]) as terminal:
        result = verify_job(output, input, loaded, beam_args=cli._quiet_workers(beam_args), warn=cli._warn_to(terminal))
    entry = result["verify"]
    console = stdout_console()
    if as_json:
        print(json.dumps(entry, indent=2))
    else:
        for line in verify_lines([result]):
            console.print(line, markup=False, soft_wrap=True)
    if entry["refused"]:
        raise DataRefusedError(f"{findings_message(loaded.purpose, refused_findings(entry))} in output {output}")


def register_verify(app: typer.Typer) -> None:
    """Add `veil verify` to the `veil` app."""
    app.command(name="verify", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(verify)
