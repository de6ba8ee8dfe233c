"""The `veil` command line.

Expected failures (a bad policy, input, key, or data the policy refuses) print one line
starting `error:` on stderr and exit 2; a bug exits 1. `--debug` shows tracebacks and
`--verbose` shows Beam's own logging. Beam is imported only by the commands that run jobs.
"""

import json
import logging
import re
import sys
import warnings
from typing import Annotated, Optional

import typer

from veil.errors import VeilError
from veil.pipelines.cli_expire import register_expire
from veil.pipelines.cli_explain import register_explain
from veil.pipelines.cli_governance import register_governance
from veil.pipelines.cli_keys import keys_app
from veil.pipelines.cli_review import register_review
from veil.pipelines.cli_scan import register_scan
from veil.pipelines.cli_verify import register_verify
from veil.pipelines.startup import freeze_at_exit, import_beam
from veil.pipelines.terminal import stderr_console, stdout_console

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="veil: per-purpose privacy policies for Apache Beam pipelines.",
)
app.add_typer(keys_app, name="keys")
register_governance(app)

_BEAM_SUFFIX = re.compile(r"\s*\[while running '[^']*'\]")
_REMOTE_ERROR = re.compile(r"veil\.errors\.\w+: (.+)")
_flags = {"debug": False, "verbose": False}


@app.command()
def validate(
    policy: Annotated[str, typer.Argument(help="Policy YAML file.")],
    input: Annotated[Optional[str], typer.Option("--input", help="Check against this input's schema.")] = None,
) -> None:
    """Check a policy (and, with --input, that it fits the input's schema)."""
    from veil.transforms.policy import load_policy

    loaded = load_policy(policy)
    message = f"ok: policy {policy} (purpose {loaded.purpose}, {len(loaded.fields)} fields)"
    if input:
        plan = _plan_for(loaded, input)
        message += f" fits {input}: {len(plan.ops)} output fields, {len(plan.dropped)} dropped"
    stdout_console().print(message)


def _plan_for(policy, input_pattern: str):
    from veil.transforms.io import format_of, match_inputs, read_schema
    from veil.transforms.plan import compile_plan, declared_types

    files = match_inputs(input_pattern)
    return compile_plan(policy, read_schema(files, format_of(files[0]), declared_types([policy])))


@app.command()
def plan(
    policy: Annotated[str, typer.Argument(help="Policy YAML file.")],
    input: Annotated[str, typer.Option("--input", help="Input file, folder or glob.")],
) -> None:
    """Show what the policy does to each field of an input."""
    from rich.table import Table

    from veil.transforms.policy import load_policy

    loaded = load_policy(policy)
    compiled = _plan_for(loaded, input)
    schema = compiled.input_schema
    table = Table(
        "input field", "type", "action", "output field", "output type", title=f"{policy} - purpose {loaded.purpose}"
    )
    for op in compiled.ops:
        table.add_row(op.source, str(schema.field(op.source).type), op.action, op.output, str(op.output_type))
    console = stdout_console()
    console.print(table)
    if compiled.dropped:
        console.print("dropped (not in the output): " + ", ".join(compiled.dropped))
    gates = []
    if loaded.consent:
        where = loaded.consent.field or f"the consent table {loaded.consent.table}"
        gates.append(f"consent ({where} must grant '{loaded.purpose}')")
    if loaded.erasure:
        gates.append(f"erasure (subjects in {loaded.erasure.table} never flow)")
    if gates:
        console.print("record gates: " + "; ".join(gates))


def _quiet_workers(beam_args: list[str]) -> list[str]:
    """Beam options plus a quiet log level for worker processes (they log on their own) unless --verbose."""
    if _flags["verbose"] or any(a.startswith("--default_sdk_harness_log_level") for a in beam_args):
        return beam_args
    return [*beam_args, "--default_sdk_harness_log_level=CRITICAL"]


def _warn_to(terminal):
    """A `warn` callback printing one `warning:` line on `terminal` (the real stderr while Beam runs)."""
    return lambda line: print(f"warning: {line}", file=terminal, flush=True)


def _split_beam_args(tokens: list[str]) -> tuple[list[str], list[str]]:
    """Policies vs. Beam pipeline options (`--flag value` or `--flag=value`) among free arguments."""
    policies, beam_args = [], []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("--"):
            beam_args.append(token)
            following = tokens[i + 1] if i + 1 < len(tokens) else None
            if (
                "=" not in token
                and following is not None
                and not following.startswith("--")
                and not following.endswith((".yaml", ".yml"))
            ):
                beam_args.append(following)
                i += 1
        else:
            policies.append(token)
        i += 1
    return policies, beam_args


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run(
    policies: Annotated[
        list[str],
        typer.Argument(help="Policy YAML files, then any Beam options (--runner DataflowRunner --project ...)."),
    ],
    input: Annotated[str, typer.Option("--input", help="Input file, folder or glob (.parquet, .csv, .jsonl, .avro).")],
    output: Annotated[
        str, typer.Option("--output", help="Output folder (one policy) or parent of <purpose>/ folders (several).")
    ],
    format: Annotated[str, typer.Option("--format", help="parquet, csv, jsonl or avro.")] = "parquet",
    keyset: Annotated[
        Optional[str], typer.Option("--keyset", help="Keyset path, overriding $VEIL_KEYSET and the policy's.")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a previous veil output.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress, no summary.")] = False,
    verify: Annotated[
        str, typer.Option("--verify", help="fail (default), warn or off: check each view against the input.")
    ] = "fail",
) -> None:
    """Run policies over an input: one protected view per policy, each with a _manifest.json."""
    import_beam()
    from veil.pipelines.console import beam_chatter_hidden, run_with_progress, summary_table
    from veil.transforms.policy import load_policy

    policy_files, beam_args = _split_beam_args(policies)
    beam_args = _quiet_workers(beam_args)
    if not policy_files:
        raise typer.BadParameter("name at least one policy file", param_hint="POLICIES")
    loaded = [load_policy(path) for path in policy_files]
    show = not quiet and sys.stderr.isatty()
    with beam_chatter_hidden(not _flags["verbose"]) as terminal:
        manifests = run_with_progress(
            loaded,
            input,
            output,
            show=show,
            terminal=terminal,
            output_format=format,
            keyset=keyset,
            overwrite=overwrite,
            beam_args=beam_args,
            warn=_warn_to(terminal),
            verify=verify,
        )
    if show:
        stderr_console().print(summary_table(manifests))
    if not quiet:
        from veil.pipelines.report_text import run_lines
        from veil.pipelines.verify import verify_lines

        for line in [*run_lines(manifests), *verify_lines(manifests)]:  # k-anonymity, then verification
            stderr_console().print(line, markup=False, soft_wrap=True)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def detokenize(
    policy: Annotated[list[str], typer.Argument(help="The policy that made the data, then any Beam options.")],
    input: Annotated[str, typer.Option("--input", help="A veil output folder (with its _manifest.json).")],
    output: Annotated[str, typer.Option("--output", help="Folder for the restored copy.")],
    fields: Annotated[str, typer.Option("--fields", help="Output fields to restore, comma-separated.")],
    on_error: Annotated[str, typer.Option("--on-error", help="fail (default) or null for values that fail.")] = "fail",
    key_version: Annotated[
        Optional[int], typer.Option("--key-version", help="Key version of ff1 tokens (default: the manifest's).")
    ] = None,
    format: Annotated[str, typer.Option("--format", help="parquet, csv, jsonl or avro.")] = "parquet",
    keyset: Annotated[Optional[str], typer.Option("--keyset", help="Keyset path.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a previous veil output.")] = False,
) -> None:
    """Restore tokenized and encrypted fields of a veil output (every use is audited)."""
    import_beam()
    from veil.pipelines.console import beam_chatter_hidden
    from veil.pipelines.detokenize import detokenize_job
    from veil.transforms.policy import load_policy

    policy_files, beam_args = _split_beam_args(policy)
    if len(policy_files) != 1:
        raise typer.BadParameter("name exactly one policy file", param_hint="POLICY")
    loaded = load_policy(policy_files[0])
    names = [name.strip() for name in fields.split(",") if name.strip()]
    with beam_chatter_hidden(not _flags["verbose"]) as terminal:
        summary = detokenize_job(
            loaded,
            input,
            output,
            names,
            keyset=keyset,
            key_version=key_version,
            on_error=on_error,
            output_format=format,
            overwrite=overwrite,
            beam_args=_quiet_workers(beam_args),
            warn=_warn_to(terminal),
        )
    if sys.stderr.isatty():
        restored = ", ".join(f"{f} {n}" for f, n in summary["counts"]["restored"].items())
        failed = ", ".join(f"{f} {n}" for f, n in summary["counts"]["failed"].items()) or "none"
        stderr_console().print(f"restored {restored}; failed: {failed}; written to {output} (audited)")


@app.command()
def erase(
    policy: Annotated[str, typer.Argument(help="A policy with an erasure table.")],
    subject: Annotated[
        Optional[list[str]], typer.Option("--subject", help="A subject id to erase (repeatable).")
    ] = None,
    subjects_file: Annotated[
        Optional[str], typer.Option("--subjects-file", help="A file of subject ids, one a line.")
    ] = None,
    init: Annotated[bool, typer.Option("--init", help="Create the policy's empty erasure table.")] = False,
    keyset: Annotated[Optional[str], typer.Option("--keyset", help="Keyset path.")] = None,
) -> None:
    """Erase subjects: their records never flow again, under any policy sharing the erasure table."""
    from veil import _fs
    from veil.pipelines.rights import erase_subjects, init_erasure_table
    from veil.transforms.policy import load_policy

    loaded = load_policy(policy)
    if init:
        stdout_console().print(f"created erasure table {init_erasure_table(loaded)}")
        if not subject and not subjects_file:
            return
    ids = list(subject or [])
    if subjects_file:
        try:
            ids += _fs.read_bytes(subjects_file).decode("utf-8").splitlines()
        except FileNotFoundError:
            raise typer.BadParameter(f"{subjects_file} not found", param_hint="--subjects-file") from None
    added = erase_subjects(loaded, ids, keyset=keyset)
    stdout_console().print(f"erased {added} subject{'s' if added != 1 else ''} (table {loaded.erasure.table}, audited)")


@app.command()
def locate(
    policy: Annotated[str, typer.Argument(help="The policy whose outputs to search.")],
    subject: Annotated[str, typer.Option("--subject", help="The subject id.")],
    keyset: Annotated[Optional[str], typer.Option("--keyset", help="Keyset path.")] = None,
) -> None:
    """Print, as JSON, a subject's pseudonyms and tokens under a policy (audited)."""
    from veil.pipelines.rights import locate as locate_subject
    from veil.transforms.policy import load_policy

    print(json.dumps(locate_subject(load_policy(policy), subject, keyset=keyset), indent=2))


@app.command()
def export(
    policy: Annotated[str, typer.Argument(help="The policy that made the output.")],
    subject: Annotated[str, typer.Option("--subject", help="The subject id.")],
    input: Annotated[str, typer.Option("--input", help="A veil output folder of that policy.")],
    output: Annotated[str, typer.Option("--output", help="The JSON file to write.")],
    keyset: Annotated[Optional[str], typer.Option("--keyset", help="Keyset path.")] = None,
) -> None:
    """Write a subject's rows of an output, reversible fields restored, as one JSON document (audited)."""
    from veil import _fs
    from veil.pipelines.rights import export_json, export_subject
    from veil.transforms.policy import load_policy

    document = export_subject(load_policy(policy), subject, input, keyset=keyset)
    _fs.write_bytes(output, export_json(document), private=True)
    stdout_console().print(f"exported {len(document['records'])} records to {output} (audited)")


@app.command()
def report(
    folder: Annotated[str, typer.Argument(help="A veil output folder (with its _manifest.json).")],
    quasi_identifiers: Annotated[
        Optional[str],
        typer.Option("--quasi-identifiers", help="Comma-separated; default: the manifest's k_anonymity."),
    ] = None,
    k: Annotated[Optional[int], typer.Option("--k", min=1, help="Default: the manifest's k.")] = None,
    sensitive: Annotated[
        Optional[str], typer.Option("--sensitive", help="Fields to measure l of (default: the manifest's).")
    ] = None,
    protected: Annotated[
        Optional[str], typer.Option("--protected", help="Groups to show (default: the manifest's).")
    ] = None,
) -> None:
    """Measure the re-identification risk of an output: writes DIR/_report.json and DIR/_report.html."""
    from veil.pipelines.report import report_job
    from veil.pipelines.report_text import summary_lines

    def names(text: Optional[str]) -> Optional[list[str]]:
        return None if text is None else [n.strip() for n in text.split(",") if n.strip()]

    result, json_path, html_path = report_job(
        folder, quasi_identifiers=names(quasi_identifiers), k=k, sensitive=names(sensitive), protected=names(protected)
    )
    console = stdout_console()
    for line in summary_lines(result):
        console.print(line, markup=False, soft_wrap=True)
    console.print(f"report: {html_path} (figures: {json_path})", markup=False, soft_wrap=True)


@app.command()
def schema() -> None:
    """Print the policy JSON Schema (for editor completion and validation)."""
    from veil.transforms.policy import policy_json_schema

    print(json.dumps(policy_json_schema(), indent=2))


@app.command()
def demo(
    rows: Annotated[int, typer.Option("--rows", min=1, help="Synthetic customers to generate.")] = 2000,
    out: Annotated[str, typer.Option("--out", help="Folder for the demo's input, keys and views.")] = "veil-demo",
) -> None:
    """Synthetic customers through the example policies (analytics, marketing, support), end to end."""
    import_beam()
    from veil.pipelines.demo import run_demo

    run_demo(rows=rows, out=out, console=stdout_console())


register_explain(app)  # after the commands above, so `veil --help` lists them in this order
register_review(app)
register_expire(app)
register_scan(app)
register_verify(app)


def _find_veil_error(error: BaseException) -> Optional[str]:
    seen = set()
    current: Optional[BaseException] = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, VeilError):
            return _BEAM_SUFFIX.sub("", str(current))
        current = current.__cause__ or current.__context__
    match = _REMOTE_ERROR.search(str(error))  # raised in another worker process, re-raised as text
    return _BEAM_SUFFIX.sub("", match.group(1)) if match else None


def _quiet_logging(verbose: bool) -> None:
    level = logging.INFO if verbose else logging.ERROR
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)
    if not verbose:
        logging.getLogger("apache_beam").setLevel(logging.CRITICAL)
        warnings.filterwarnings("ignore")


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point of the `veil` console script; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    _flags["debug"] = "--debug" in args
    _flags["verbose"] = "--verbose" in args
    args = [a for a in args if a not in ("--debug", "--verbose")]
    _quiet_logging(_flags["verbose"])
    try:
        app(args, prog_name="veil", standalone_mode=False)
    except VeilError as error:
        return _fail(error, _BEAM_SUFFIX.sub("", str(error)))
    except SystemExit as exit_:
        return int(exit_.code or 0)
    except KeyboardInterrupt:
        stderr_console().print("error: interrupted")
        return 130
    except Exception as error:  # click usage errors, then Beam-wrapped veil errors, then bugs
        if hasattr(error, "show") and hasattr(error, "exit_code"):
            error.show()
            return error.exit_code
        message = _find_veil_error(error)
        if message is not None:
            return _fail(error, message)
        if _flags["debug"]:
            raise
        print(
            f"error: internal error ({type(error).__name__}); this is a bug in veil. "
            "Rerun with --debug for the traceback and report it.",
            file=sys.stderr,
        )
        return 1
    return 0


def _fail(error: BaseException, message: str) -> int:
    if _flags["debug"]:
        import traceback

        traceback.print_exception(error)
    print(f"error: {message}", file=sys.stderr)
    return 2


def console_main() -> None:
    """`veil` console script."""
    code = main()
    freeze_at_exit()
    sys.exit(code)
