"""`cairn data prepare RECIPE`: run a whole recipe."""

from __future__ import annotations

import click

from cairn.cli.buckets import local_buckets
from cairn.cli.data._common import console, local_path, progress_status, reported_errors
from cairn.cli.options import CairnCommand


@click.command(cls=CairnCommand)
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option(
    "-o",
    "--output",
    help="Folder or gs://BUCKET/PATH for the outputs (default: the recipe's output.path).",
)
@click.option(
    "--memory-limit", help="DuckDB memory limit, e.g. 4GB; above it DuckDB spills to disk."
)
@click.option("--no-report", is_flag=True, help="Skip the HTML report.")
@click.option(
    "--check", is_flag=True, help="Only check the recipe on a sample of the data; write nothing."
)
def prepare(
    recipe: str, output: str | None, memory_limit: str | None, no_report: bool, check: bool
) -> None:
    """Run RECIPE (YAML): load and join sources, clean, split, fit the preparation pipeline.

    Writes train/validation/test files, preparation.joblib (the fitted pipeline that serving
    applies to raw instances), report.json and report.html into the output folder. Mistakes
    in the recipe are reported with their line before any real work starts.

    Each join prints the share of rows that found a match; a join that leaves more than
    its `max_unmatched` share (default 5 %) unmatched prints a WARNING naming the most
    frequent unmatched keys (or fails, with `on_unmatched: fail` in the recipe).
    """
    from cairn.data import load_recipe, rehearse
    from cairn.data import prepare as run_recipe
    from cairn.data.runner import stage_count

    with reported_errors():
        parsed = load_recipe(recipe, local_buckets())
        if check:
            with progress_status("checking the recipe on a sample"):
                rehearse(parsed)
            click.echo(f"{recipe} looks good.")
            return
        total = stage_count(parsed, False if no_report else None)
        with progress_status("starting", total) as update:
            result = run_recipe(
                parsed,
                str(local_path(output)) if output else None,
                progress=update,
                memory_limit=memory_limit,
                report=False if no_report else None,
            )
    for step in result.reports:
        rate = step.details.get("match_rate")
        matched = f", {rate:.1%} of rows matched" if rate is not None else ""
        console.print(f"  {step.summary()}{matched}", soft_wrap=True)
    # Plain text, unwrapped: a warning names keys and fixes that must survive copying.
    for warning in result.warnings:
        click.secho(f"WARNING: {warning}", fg="yellow", err=True)
    for name, path in result.files.items():
        click.echo(f"{name}: {path}")
    if result.artifact:
        click.echo(f"pipeline: {result.artifact}")
    if result.report_html:
        click.echo(f"report: {result.report_html}")
