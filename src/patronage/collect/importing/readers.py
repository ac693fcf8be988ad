"""Files into columns of text: CSV (any delimiter, or runs of whitespace), JSON Lines, Parquet.

Every column comes out as an Arrow string array (empty -> null); typing is validation's job.
Whole-file problems (empty, binary, wrong encoding, not Parquet, missing columns) raise
`ValidationFailed` with a message that never quotes the file's content: cells may hold
personal data. Rows that cannot be read (wrong field count, bad JSON) are returned as
rejections with their row number (rows count from 1, the header not included).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from patronage.collect.importing.mapping import Mapping
from patronage.errors import ValidationFailed


@dataclass
class Rejection:
    row: int
    column: str
    reason: str


@dataclass
class Frame:
    columns: dict[str, pa.Array]
    rows: int
    row_numbers: np.ndarray  # 1-based record number of each row as the file counts them
    rejected: list[Rejection] = field(default_factory=list)


def guess_format(name: str) -> str:
    lower = name.lower()
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if lower.endswith((".parquet", ".pq")):
        return "parquet"
    return "csv"


def read_file(data: bytes, name: str, mapping: Mapping) -> Frame:
    fmt = mapping.format or guess_format(name)
    if not data.strip():
        raise ValidationFailed("the file is empty")
    if fmt == "parquet":
        frame = _parquet(data)
    else:
        text = _text(data, mapping.encoding)
        frame = _jsonl(text) if fmt == "jsonl" else _csv(text, mapping)
    # an implicit mapping (fields named like the columns) takes what the file has: `restrict`
    implicit = getattr(mapping, "_implicit", False)
    missing = [] if implicit else [c for c in mapping.sources() if c not in frame.columns]
    if missing:
        have = ", ".join(list(frame.columns)[:30])
        raise ValidationFailed(f"the file has no column(s) {', '.join(missing)} (it has: {have})")
    return frame


def read_path(path: Path, mapping: Mapping) -> Frame:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValidationFailed(
            f"cannot read {path.name}: {exc.strerror or type(exc).__name__}"
        ) from None
    return read_file(data, path.name, mapping)


def _text(data: bytes, encoding: str) -> bytes:
    """The file as UTF-8 bytes (BOM dropped), or a clear error."""
    if b"\x00" in data[:65536]:
        raise ValidationFailed(
            "not a text file: it holds binary data (NUL bytes); a UTF-16 file or a "
            "spreadsheet must be saved as CSV in UTF-8 first"
        )
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise ValidationFailed(
                f"not valid UTF-8 text (line {line}, byte {exc.start}); if the file uses "
                'another encoding, set `encoding` in the mapping (e.g. "latin-1")'
            ) from None
        return data.removeprefix(b"\xef\xbb\xbf")
    try:
        return data.decode(encoding).encode("utf-8").removeprefix(b"\xef\xbb\xbf")
    except LookupError:
        raise ValidationFailed(f"unknown encoding {encoding!r}") from None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ValidationFailed(f"not valid {encoding} text (line {line})") from None


def _names(first: list[str]) -> list[str]:
    names = [n.strip() for n in first]
    if not any(names):
        raise ValidationFailed("the header line is empty")
    seen: set[str] = set()
    dupes = sorted({n for n in names if n in seen or seen.add(n)})  # type: ignore[func-returns-value]
    if dupes:
        raise ValidationFailed(f"the header names a column twice: {', '.join(dupes)}")
    return names


def _from_lists(names: list[str], values: list[list[str | None]]) -> dict[str, pa.Array]:
    return {n: pa.array(v, type=pa.string()) for n, v in zip(names, values, strict=True)}


def _empty_is_null(array: pa.Array) -> pa.Array:
    trimmed = pc.utf8_trim_whitespace(array)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), array)


def _whitespace(text: bytes, mapping: Mapping) -> Frame:
    lines = [line.split() for line in text.decode("utf-8").splitlines()]
    numbers = [i for i, parts in enumerate(lines) if parts]
    body = [lines[i] for i in numbers]
    if mapping.header:
        names = _names(body[0])
        body, numbers = body[1:], numbers[1:]
    else:
        names = _names(mapping.columns)
    return _rows(names, body, list(range(1, len(body) + 1)))


def _rows(names: list[str], body: list[list[str]], numbers: list[int]) -> Frame:
    width = len(names)
    rejected = []
    kept: list[list[str]] = []
    kept_numbers = []
    for number, parts in zip(numbers, body, strict=True):
        if len(parts) != width:
            rejected.append(Rejection(number, "", f"expected {width} fields, found {len(parts)}"))
        else:
            kept.append(parts)
            kept_numbers.append(number)
    values = [[p or None for p in column] for column in zip(*kept, strict=True)] if kept else []
    if not values:
        values = [[] for _ in names]
    columns = _from_lists(names, values)
    return Frame(columns, len(kept), np.array(kept_numbers, dtype=np.int64), rejected)


def _csv(text: bytes, mapping: Mapping) -> Frame:
    if mapping.delimiter == "whitespace":
        return _whitespace(text, mapping)
    delimiter = mapping.delimiter
    if mapping.header:
        first_line = text.split(b"\n", 1)[0].decode("utf-8").rstrip("\r")
        names = _names(next(csv.reader([first_line], delimiter=delimiter)))
        skip = 1
    else:
        names = _names(mapping.columns)
        skip = 0
    ragged: list[int] = []

    def invalid(row: Any) -> str:
        ragged.append(1)
        return "skip"

    def read(block_size: int | None) -> pa.Table:
        return pacsv.read_csv(
            io.BytesIO(text),
            read_options=pacsv.ReadOptions(
                column_names=names, skip_rows=skip, block_size=block_size
            ),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=True,
                null_values=[""],
                quoted_strings_can_be_null=True,
            ),
        )

    try:
        try:
            table = read(None)
        except pa.ArrowInvalid as exc:
            if "straddling" not in str(exc):
                raise
            # a row longer than a read block (a huge field): one block for the whole file
            ragged.clear()
            table = read(len(text) + 1)
    except pa.ArrowInvalid:
        ragged.append(1)
    if ragged:
        # the slow path, only for broken files: which rows, by number
        reader = csv.reader(io.StringIO(text.decode("utf-8")), delimiter=delimiter)
        try:
            rows = list(reader)[skip:]
        except csv.Error as exc:
            raise ValidationFailed(
                f"line {reader.line_num} cannot be read as CSV ({_csv_reason(exc)})"
            ) from None
        numbers = [i + 1 for i, r in enumerate(rows) if r]
        return _rows(names, [r for r in rows if r], numbers)
    columns = {n: table.column(n).combine_chunks() for n in names}
    columns = {n: _empty_is_null(a) for n, a in columns.items()}
    rows = table.num_rows
    return Frame(columns, rows, np.arange(1, rows + 1, dtype=np.int64))


def _csv_reason(exc: csv.Error) -> str:
    message = str(exc)
    if "field larger than field limit" in message:
        return f"a field over {csv.field_size_limit():,} characters in a malformed row"
    return message.split(":")[0][:80]


def _jsonl(text: bytes) -> Frame:
    records: list[dict[str, Any]] = []
    numbers: list[int] = []
    rejected: list[Rejection] = []
    number = 0
    for line in text.decode("utf-8").splitlines():
        if not line.strip():
            continue
        number += 1
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            rejected.append(Rejection(number, "", "not valid JSON"))
            continue
        if not isinstance(value, dict):
            rejected.append(Rejection(number, "", "not a JSON object"))
            continue
        records.append(_flatten(value))
        numbers.append(number)
    names = list(dict.fromkeys(k for r in records for k in r))
    columns = {n: pa.array([r.get(n) for r in records], type=pa.string()) for n in names}
    columns = {n: _empty_is_null(a) for n, a in columns.items()}
    return Frame(columns, len(records), np.array(numbers, dtype=np.int64), rejected)


def _flatten(record: dict[str, Any], prefix: str = "") -> dict[str, str | None]:
    """Nested objects become dotted columns ("properties.sku"); other values text."""
    out: dict[str, str | None] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_flatten(value, name + "."))
        elif value is None:
            out[name] = None
        elif isinstance(value, bool):
            out[name] = "true" if value else "false"
        elif isinstance(value, str):
            out[name] = value
        elif isinstance(value, int | float):
            out[name] = repr(value) if isinstance(value, float) else str(value)
        else:
            out[name] = json.dumps(value, separators=(",", ":"))
    return out


def _parquet(data: bytes) -> Frame:
    if not (data.startswith(b"PAR1") and data.endswith(b"PAR1")):
        raise ValidationFailed("not a Parquet file (no PAR1 magic at both ends)")
    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError):
        raise ValidationFailed("the Parquet file is damaged and cannot be read") from None
    columns: dict[str, pa.Array] = {}
    for name in table.column_names:
        array = table.column(name).combine_chunks()
        try:
            if pa.types.is_timestamp(array.type) or pa.types.is_date(array.type):
                array = pc.strftime(array, format="%Y-%m-%dT%H:%M:%S")
            columns[name] = _empty_is_null(pc.cast(array, pa.string()))
        except (pa.ArrowException, NotImplementedError):
            raise ValidationFailed(
                f"column {name} has a type that cannot be imported ({array.type})"
            ) from None
    rows = table.num_rows
    return Frame(columns, rows, np.arange(1, rows + 1, dtype=np.int64))
