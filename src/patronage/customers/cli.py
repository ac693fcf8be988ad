"""`patronage keys …`: rotate the data key that seals customers' personal fields."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from patronage.console import console, fail, friendly_errors

keys = typer.Typer(help="Encryption keys of personal data: status and rotation.")


class RowsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- rows/s" if speed is None else f"{speed:,.0f} rows/s")


@keys.command("status")
@friendly_errors
def status() -> None:
    """Which key is active, and how many customer rows each key version seals."""
    from patronage.config import get_settings
    from patronage.customers import rotation
    from patronage.db import transaction

    settings = get_settings()
    with transaction() as session:
        report = rotation.key_status(session, settings)
    out = [f"keys from: {report.source}", f"active key version: {report.active}"]
    for version in sorted(set(report.versions) | set(report.rows)):
        line = f"key version {version}: {report.rows.get(version, 0)} rows"
        if version == report.active:
            line += " (active)"
        if version not in report.versions:
            line += " (NOT IN THE KEYRING: these rows cannot be decrypted)"
        out.append(line)
    if report.pending:
        out.append(
            f"{report.pending} rows still on older keys: run 'patronage keys rotate --resume'"
        )
    else:
        out.append("all rows are on the active key")
    for line in out:
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    if report.unreadable:
        raise typer.Exit(1)


@keys.command("rotate")
@friendly_errors
def rotate(
    batch_size: Annotated[
        int, typer.Option(min=1, max=1_000_000, help="rows per committed transaction")
    ] = 5000,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="add no key: finish re-encrypting rows not on the active key"
        ),
    ] = False,
) -> None:
    """Add a new data key, make it active, and re-encrypt every customer with it.

    Interrupted? Run it again with --resume: it continues where it stopped.
    """
    from patronage.config import get_cipher, get_settings
    from patronage.customers import rotation
    from patronage.db import transaction

    settings = get_settings()
    if not resume:
        keyring = rotation.start_rotation(settings)
        console.print(
            f"added key version {keyring.active} to {settings.resolved_key_file} (now active)",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    active = get_cipher().keyring.active
    with transaction() as session:
        total = rotation.count_pending(session, active)
    if total == 0:
        console.print(f"nothing to re-encrypt: every row is on key version {active}")
        return
    columns = (
        TextColumn("re-encrypting"),
        BarColumn(),
        MofNCompleteColumn(),
        RowsPerSecond(),
        TimeElapsedColumn(),
    )
    done = 0

    def advance(rows: int) -> None:
        nonlocal done
        done += rows
        progress.advance(task, rows)

    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("rows", total=total)
        try:
            result = rotation.reencrypt_all(batch_size, advance)
        except KeyboardInterrupt:
            progress.stop()
            raise fail(
                f"interrupted after {done} rows (committed); "
                "run 'patronage keys rotate --resume' to continue",
                130,
            ) from None
    console.print(
        f"re-encrypted {result.rewritten} rows in {result.batches} batches "
        f"with key version {result.active}"
    )
    if result.remaining:
        raise fail(
            f"{result.remaining} rows changed while they were being re-encrypted; "
            "run 'patronage keys rotate --resume' again"
        )


@keys.command("verify")
@friendly_errors
def verify(
    batch_size: Annotated[
        int, typer.Option(min=1, max=1_000_000, help="rows per committed transaction")
    ] = 5000,
) -> None:
    """Read every row's values and check which key sealed them (before retiring a key).

    Rows whose recorded key version is not that of their oldest value are corrected, so that
    'patronage keys rotate --resume' re-encrypts them.
    """
    from patronage.config import get_cipher
    from patronage.customers import rotation
    from patronage.db import transaction

    columns = (TextColumn("verifying"), BarColumn(), MofNCompleteColumn(), RowsPerSecond())
    with transaction() as session:
        total = sum(rotation.rows_per_version(session).values())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("rows", total=total)
        result = rotation.verify_all(batch_size, lambda n: progress.advance(task, n))
    versions = ", ".join(f"{v}: {n}" for v, n in sorted(result.values.items())) or "none"
    lines = [f"checked {result.rows} rows; rows with values sealed by key version {versions}"]
    if result.corrected:
        lines.append(f"corrected the recorded key version of {result.corrected} rows")
    else:
        lines.append("every row records the key of its oldest value")
    active = get_cipher().keyring.active
    with transaction() as session:
        pending = rotation.count_pending(session, active)
    if pending:
        lines.append(f"{pending} rows still on older keys: run 'patronage keys rotate --resume'")
    for line in lines:
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    if result.corrupt:
        shown = ", ".join(map(str, result.corrupt[:20]))
        raise fail(f"{len(result.corrupt)} rows hold values that are not ciphertexts: {shown}")
