"""`lcengine prep --verify DIR`: every shard of a prepared directory against its manifest."""

from __future__ import annotations

from pathlib import Path

import click

from lcengine.data.errors import DataError
from lcengine.data.shards import verify_shard_set


def verify_and_exit(ctx: click.Context, param, value) -> None:
    """Eager option callback: verify DIR, say the result, end the command (no DATASET needed)."""
    if value is None or ctx.resilient_parsing:
        return
    directory = Path(value)
    try:
        count, problems = verify_shard_set(directory)
    except DataError as err:
        raise click.ClickException(str(err)) from None
    for line in problems:
        click.echo(line)
    if problems:
        raise click.ClickException(f"{directory}: {len(problems)} of {count} shards damaged "
                                   "(listed above); prepare the data again")
    click.echo(f"{directory}: {count} shards intact (size, header and SHA-256 as the manifest "
               "lists)")
    ctx.exit()
