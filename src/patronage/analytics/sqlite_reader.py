"""ADBC's SQLite driver, run in a child process: blocks of a SQLite file read into Arrow.

Why a child process (ADR 0006, amended): the driver carries a copy of SQLite of its own
(statically linked), and two copies of SQLite in one process break SQLite's locking
(https://sqlite.org/howtocorrupt.html, "multiple copies of SQLite linked into the same
application"): POSIX advisory locks belong to the process, so neither copy sees the other's.
The driver's copy, opening the file's wal-index (`-shm`) with no connection of its own open,
finds no other lock on it and truncates it (`ftruncate(shm, 3)`, seen with strace) while the
process's own connections have it mapped: `patronage demo` (20,000 customers) died of SIGBUS
in the segments step after the analytics refresh. In a process of its own the driver is one
more reader of the file, as the server's or a worker's connections are.

The child takes a job as JSON on stdin (`Job`), reads the blocks on `readers` connections
of its own (each takes the next block), checks and types each block as the parent asks,
writes block i as the Arrow IPC file `<out>/<i>.arrow`, and exits 0 (otherwise non-zero with
the error on stderr; it stops, and removes its files, when its parent is gone). The parent
maps the files (no copy: `/dev/shm` is memory) and deletes them; the mapped tables live as
long as they are used. Directories left by a process killed while reading are removed by the
next read (`_sweep`).

Run as `python -m patronage.analytics.sqlite_reader`; it imports nothing of patronage's but
this module (the interpreter starts in ~0.5 s).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc

SHM = Path("/dev/shm")  # noqa: S108 (a private directory is made in it by mkdtemp)
PRAGMAS = ("busy_timeout=30000", "mmap_size=1073741824", "cache_size=-65536")


@dataclass(frozen=True)
class Block:
    """One query and the Arrow schema its rows are typed to; its first row is a sentinel
    (see engine._adbc_blocks), flagged by a last column `sentinel` = 1."""

    table: str
    query: str
    schema: str  # the Arrow schema, IPC-serialised, base64


@dataclass(frozen=True)
class Job:
    uri: str
    out: str
    readers: int
    blocks: list[Block]


def schema_text(schema: pa.Schema) -> str:
    return base64.b64encode(schema.serialize().to_pybytes()).decode()


def _schema(text: str) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))


# -- in the parent ---------------------------------------------------------------------------


PREFIX = "patronage-read-"


def _scratch(database: Path) -> Path:
    """Where the blocks go: /dev/shm when it has room for the database's size (the blocks
    are smaller than the file: no text, no indexes), else the temporary directory. Named
    after this process, so that what a killed process left behind is found (`_sweep`)."""
    prefix = f"{PREFIX}{os.getpid()}-"
    try:
        if shutil.disk_usage(SHM).free > database.stat().st_size and os.access(SHM, os.W_OK):
            return Path(tempfile.mkdtemp(prefix=prefix, dir=SHM))
    except OSError:
        pass
    return Path(tempfile.mkdtemp(prefix=prefix))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _sweep() -> None:
    """Remove the block directories of processes that are gone (killed while reading: on
    /dev/shm their blocks would hold memory until the machine restarts)."""
    for parent in (SHM, Path(tempfile.gettempdir())):
        for found in parent.glob(f"{PREFIX}*-*"):
            pid = found.name.removeprefix(PREFIX).split("-", 1)[0]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(found, ignore_errors=True)


def read(path: str, blocks: list[Block], readers: int) -> list[pa.Table]:
    """The blocks of the SQLite file `path`, typed, in order (read by a child process)."""
    if not blocks:
        return []
    _sweep()
    out = _scratch(Path(path))
    try:
        job = Job(uri=f"file:{quote(path)}?mode=ro", out=str(out), readers=readers, blocks=blocks)
        done = subprocess.run(  # noqa: S603 (this interpreter, this module)
            [sys.executable, "-m", __name__],
            input=json.dumps(asdict(job)).encode(),
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            error = done.stderr.decode(errors="replace").strip().splitlines()
            raise RuntimeError(
                f"analytics: reading the SQLite store failed ({error[-1] if error else done})"
            )
        # mapped, not read: the tables point into the files, which live (unlinked) as long
        # as the tables do
        return [
            pa.ipc.open_file(pa.memory_map(str(out / f"{i}.arrow"))).read_all()
            for i in range(len(blocks))
        ]
    finally:
        shutil.rmtree(out, ignore_errors=True)


# -- in the child ----------------------------------------------------------------------------


def _typed(table: pa.Table, block: Block) -> pa.Table:
    """The block without its sentinel row, each column cast to the asked type."""
    flags = table.column("sentinel")
    if flags[0].as_py() != 1 or pc.sum(flags).as_py() != 1:  # pragma: no cover - SQLite's order
        raise RuntimeError(f"the sentinel row of a {block.table} block is not first")
    table = table.slice(1)
    schema = _schema(block.schema)
    columns = []
    for field in schema:
        column = table.column(field.name)
        if column.type != field.type:  # timestamps (text); a block of NULLs only is typed anyway
            column = column.cast(field.type)
        columns.append(column)
    return pa.table(columns, schema=schema)


def _run(job: Job) -> None:
    from adbc_driver_sqlite import dbapi

    queue = iter(enumerate(job.blocks))
    lock = threading.Lock()
    errors: list[BaseException] = []
    parent = os.getppid()

    def reader() -> None:
        try:
            with dbapi.connect(job.uri, autocommit=True) as connection:
                cursor = connection.cursor()
                for pragma in PRAGMAS:  # wait for a writer's lock as patronage.db's do
                    cursor.execute(f"PRAGMA {pragma}")
                    cursor.fetchall()
                while not errors:
                    with lock:
                        index, block = next(queue, (-1, None))
                    if block is None:
                        return
                    if os.getppid() != parent:  # nobody will read the blocks
                        raise RuntimeError("the parent process is gone")
                    cursor.execute(block.query)
                    table = _typed(cursor.fetch_arrow_table(), block)
                    path = str(Path(job.out) / f"{index}.arrow")
                    with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as ipc:
                        ipc.write_table(table)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(max(1, job.readers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        if os.getppid() != parent:
            shutil.rmtree(job.out, ignore_errors=True)
        raise errors[0]


def _job(raw: dict[str, Any]) -> Job:
    return Job(
        uri=raw["uri"],
        out=raw["out"],
        readers=int(raw["readers"]),
        blocks=[Block(**b) for b in raw["blocks"]],
    )


if __name__ == "__main__":
    _run(_job(json.load(sys.stdin)))
