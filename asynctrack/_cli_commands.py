"""The commands of ``asynctrack`` (click), in MLflow's style: a group, one function a command."""

from __future__ import annotations

import os

import click


@click.group()
def cli() -> None:
    """asynctrack: an MLflow-compatible experiment tracker."""


@cli.command()
@click.argument("spools", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--tracking-uri",
    default=None,
    help="The store to write to (default: the one each spool file was written for).",
)
@click.option("--delete", is_flag=True, help="Remove each spool file once all of it is stored.")
def replay(spools: tuple[str, ...], tracking_uri: str | None, delete: bool) -> int:
    """Store the records of spool files (written when a store could not be reached).

    Replaying is idempotent: records already stored are not stored twice, so a spool can be
    replayed again after an interrupted or partly failed replay.
    """
    from ._replay import replay_spool
    from .writer import flush_all

    worst = 0
    for path in spools:
        report = replay_spool(path, tracking_uri)
        click.echo(
            f"{path}: {report.read} records read, {report.stored} stored in "
            f"{report.tracking_uri}, {len(report.failed)} refused."
        )
        for index, record, error in report.failed[:20]:
            click.echo(f"  record #{index} {record}: {error}", err=True)
        if len(report.failed) > 20:
            click.echo(f"  ... and {len(report.failed) - 20} more refused records", err=True)
        for problem in report.problems:
            click.echo(f"  {problem}", err=True)
        if report.ok and delete:
            os.remove(path)
            click.echo(f"  removed {path}")
        if not report.ok:
            worst = 1
    flush_all()
    return worst
