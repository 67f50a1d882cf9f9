"""``runner trust [DIR]``: approve the endpoints a project's runner.yaml declares (or, with
``--revoke``, withdraw that approval; with ``--list``, show every approval)."""

from __future__ import annotations

from pathlib import Path

import click

from runner.cli.options import reports_errors


@click.command("trust", short_help="Let a project's specs send keys to the servers it declares.")
@click.argument("folder", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--revoke", is_flag=True, help="Withdraw the approval of the project.")
@click.option("--list", "listing", is_flag=True, help="List the projects you approved.")
@reports_errors
def trust(folder: Path, revoke: bool, listing: bool) -> None:
    """Approve the endpoints declared under endpoints: in the runner.yaml of the project that
    holds FOLDER (default: here): its specs may then send each key named there to its server.

    The approval is kept in your config folder, never in the project, and holds only while the
    declaration is unchanged: when it changes, runs stop before sending until you approve it
    again. Specs that use the offline or built-in providers need no approval."""
    from runner.errors import UsageError
    from runner.providers.trust import approve_project, approved_projects, revoke_project

    if listing:
        if revoke:
            raise UsageError("give --list or --revoke, not both")
        for approval in approved_projects():
            click.echo(f"{approval.project}: {', '.join(approval.describe()) or 'nothing'}")
        return
    if revoke:
        approval = revoke_project(folder)
        click.echo(f"no longer trusted: {approval.project} (removed from {approval.store})")
        return
    approval = approve_project(folder)
    click.echo(f"trusted {approval.project}: its specs may send")
    for line in approval.describe():
        click.echo(f"  {line}")
    click.echo(f"(kept in {approval.store}; undo with: runner trust --revoke {approval.project})")
