"""`patronage import customers|products|orders|events FILE`, `patronage export events` and
`patronage ingestion status`.

Exit codes: 0 imported (or, with --dry-run, every row valid); 1 rows refused (nothing
written unless --skip-invalid, which then exits 0) or the file / mapping is unusable;
3 the database is unavailable.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from patronage.console import console, err_console, fail, friendly_errors

imports = typer.Typer(
    help="Bulk import from CSV, JSON Lines or Parquet (all-or-nothing by default).",
    no_args_is_help=True,
)
exports = typer.Typer(help="Export data for other engines (Parquet).", no_args_is_help=True)
ingestion = typer.Typer(help="The tracking API's ingestion.", no_args_is_help=True)


class RowsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- rows/s" if speed is None else f"{speed:,.0f} rows/s")


MappingOpt = Annotated[
    Path | None,
    typer.Option("--mapping", "-m", help="TOML or JSON mapping file (see docs/import.md)"),
]
MapOpt = Annotated[
    list[str] | None,
    typer.Option("--map", help="COLUMN=FIELD, repeatable (overrides the mapping file)"),
]
FormatOpt = Annotated[str | None, typer.Option("--format", help="csv | jsonl | parquet")]
DelimiterOpt = Annotated[
    str | None, typer.Option("--delimiter", help="one character, or 'whitespace'")
]
EncodingOpt = Annotated[str | None, typer.Option("--encoding", help="e.g. latin-1")]
DateOpt = Annotated[
    list[str] | None, typer.Option("--date-format", help="strptime format, repeatable")
]
CurrencyOpt = Annotated[str | None, typer.Option("--currency", help="when no currency column")]
CancelOpt = Annotated[
    str | None, typer.Option("--cancel-prefix", help="invoice prefix of cancellations")
]
GuestOpt = Annotated[
    bool, typer.Option("--guest-customers", help="lines without customer id: guest orders")
]
SkipOpt = Annotated[bool, typer.Option("--skip-invalid", help="import the good rows anyway")]
DryOpt = Annotated[bool, typer.Option("--dry-run", help="validate only, write nothing")]
RejectsOpt = Annotated[
    Path | None,
    typer.Option("--rejects", help="CSV of refused rows (default: ./<file>.rejects.csv)"),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")]


def _import(
    kind: str,
    file: Path,
    mapping_file: Path | None,
    pairs: list[str] | None,
    fmt: str | None,
    delimiter: str | None,
    encoding: str | None,
    date_formats: list[str] | None,
    currency: str | None,
    cancel_prefix: str | None,
    guest_customers: bool,
    skip_invalid: bool,
    dry_run: bool,
    rejects: Path | None,
    quiet: bool,
) -> None:
    from patronage.collect.importing import load_mapping
    from patronage.collect.importing.mapping import FORMATS
    from patronage.collect.imports import import_file

    if not file.is_file():
        raise fail(f"no such file: {file}")
    if fmt is not None and fmt not in FORMATS:
        raise fail(f"mapping: format must be one of {', '.join(FORMATS)}")
    mapping = load_mapping(kind, mapping_file, overrides=pairs)
    for name, value in (
        ("format", fmt),
        ("delimiter", delimiter),
        ("encoding", encoding),
        ("currency", currency),
        ("cancel_prefix", cancel_prefix),
    ):
        if value is not None:
            setattr(mapping, name, value)
    if date_formats:
        mapping.date_formats = list(date_formats)
    if guest_customers:
        mapping.guest_customers = True
    if not getattr(mapping, "_implicit", False):
        mapping.check()
    report = rejects or Path.cwd() / f"{file.name}.rejects.csv"
    columns = (
        TextColumn("{task.description:<9}"),
        BarColumn(),
        MofNCompleteColumn(),
        RowsPerSecond(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, transient=False, disable=quiet) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                label = "validate" if phase == "validate" else "write"
                tasks[phase] = bar.add_task(label, total=max(total, 1))
            bar.update(tasks[phase], completed=done, total=max(total, 1))

        result = import_file(
            file,
            mapping,
            dry_run=dry_run,
            skip_invalid=skip_invalid,
            progress=progress,
            rejects=report,
        )
    if not result.rejected:
        report.unlink(missing_ok=True)  # a stale report of an earlier run would mislead
    _summary(result, report)
    if result.aborted or (dry_run and result.rejected and not skip_invalid):
        raise typer.Exit(1)


def _summary(result: object, report: Path) -> None:
    from patronage.collect.importing import ImportResult

    assert isinstance(result, ImportResult)
    rate = result.rows / result.seconds if result.seconds else 0.0
    head = f"{result.rows:,} rows read, {result.valid:,} valid, {result.rejected_rows:,} refused"
    console.print(f"{head} ({result.seconds:.1f} s, {rate:,.0f} rows/s)", highlight=False)
    if result.counts:
        table = Table("written", "rows", box=None)
        for name, count in result.counts.items():
            table.add_row(name.replace("_", " "), f"{count:,}")
        console.print(table)
    if result.rejected:
        table = Table("column", "reason", "rows", box=None, title="refused rows")
        for column, reason, rows in result.reasons():
            table.add_row(column or "(row)", reason, f"{rows:,}")
        console.print(table)
        console.print(f"every refused row: {report}", highlight=False, soft_wrap=True)
    if result.dry_run:
        console.print("dry run: nothing written", highlight=False)
    elif result.aborted:
        err_console.print(
            f"[bold red]error:[/] {result.rejected_rows:,} rows refused, nothing written; "
            "fix them or run again with --skip-invalid",
            highlight=False,
        )
    elif result.rejected:
        console.print(f"imported the valid rows; {result.rejected_rows:,} skipped", highlight=False)


def _command(kind: str) -> None:
    @imports.command(kind, help=f"Import {kind} from FILE (CSV, JSON Lines or Parquet).")
    @friendly_errors
    def command(
        file: Annotated[Path, typer.Argument(help="CSV, JSON Lines or Parquet file")],
        mapping: MappingOpt = None,
        map_: MapOpt = None,
        fmt: FormatOpt = None,
        delimiter: DelimiterOpt = None,
        encoding: EncodingOpt = None,
        date_format: DateOpt = None,
        currency: CurrencyOpt = None,
        cancel_prefix: CancelOpt = None,
        guest_customers: GuestOpt = False,
        skip_invalid: SkipOpt = False,
        dry_run: DryOpt = False,
        rejects: RejectsOpt = None,
        quiet: QuietOpt = False,
    ) -> None:
        _import(
            kind,
            file,
            mapping,
            map_,
            fmt,
            delimiter,
            encoding,
            date_format,
            currency,
            cancel_prefix,
            guest_customers,
            skip_invalid,
            dry_run,
            rejects,
            quiet,
        )

    command.__name__ = f"import_{kind}"


for _kind in ("customers", "products", "orders", "events"):
    _command(_kind)


@exports.command("events")
@friendly_errors
def export_events(
    to: Annotated[Path, typer.Option("--to", help="target directory (created if missing)")],
    since: Annotated[
        str | None, typer.Option("--since", help="YYYY-MM-DD: events from that day on")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=1_000_000)] = 100_000,
) -> None:
    """Events as Parquet partitioned by day (DIR/date=YYYY-MM-DD/part-*.parquet).

    Incremental: DIR/_export_state.json records the last exported event id, so running it
    again exports only newer events; an interrupted run leaves no partial file behind.
    """
    from patronage.collect import export

    start: date | None = None
    if since is not None:
        try:
            start = date.fromisoformat(since)
        except ValueError:
            raise fail(f"--since takes a date as YYYY-MM-DD, got {since!r}") from None
    report = export.export_events(to, since=start, batch_size=batch_size)
    console.print(
        f"{report.events:,} events exported into {report.files} files "
        f"(last event id {report.last_id}); {to}",
        highlight=False,
        soft_wrap=True,
    )


@ingestion.command("status")
@friendly_errors
def ingestion_status() -> None:
    """Events stored, messages acknowledged and waiting for the processor, messages set aside."""
    from patronage import db
    from patronage.collect import service

    with db.transaction() as session:
        status = service.ingestion_status(session)
    console.print(
        f"{status.events:,} events stored; {status.waiting:,} messages waiting to be processed; "
        f"{status.set_aside:,} set aside",
        highlight=False,
        soft_wrap=True,
    )
