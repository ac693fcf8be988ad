"""How a file's columns become patronage fields: a TOML / JSON mapping, or `--map` flags.

```toml
kind = "orders"
format = "csv"            # csv | jsonl | parquet (default: from the file name)
delimiter = ","           # any one character, or "whitespace" (runs of blanks, e.g. CDNOW)
encoding = "utf-8"        # e.g. "latin-1" for older exports
header = true             # false: name the columns in `columns`
columns = []
date_formats = ["%m/%d/%Y %H:%M"]   # strptime formats, tried in order (default: ISO 8601)
currency = "GBP"          # when the file has no currency column
cancel_prefix = "C"       # invoices starting with it are cancellations
guest_customers = true    # lines without customer id: one guest per invoice ("guest:<invoice>")

[fields]                  # patronage field = file column
order_id = "InvoiceNo"

[constants]               # patronage field = fixed value
product_id = "CD"

[templates]               # patronage field = "{column}" pieces joined; {row} is the row number
order_id = "cdnow-{customer_id}-{date}-{row}"
```
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from patronage.errors import ValidationFailed

KINDS = ("customers", "products", "orders", "events")
FORMATS = ("csv", "jsonl", "parquet")

# every field each kind understands; the first group is required
FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "customers": (
        ("user_id",),
        (
            "email",
            "phone",
            "first_name",
            "last_name",
            "street",
            "birthday",
            "gender",
            "language",
            "country",
            "region",
            "city",
            "postcode",
            "signup_at",
        ),
    ),
    "products": (
        ("product_id",),
        ("name", "price", "currency", "category", "stock", "is_active"),
    ),
    "orders": (
        ("order_id", "product_id", "quantity", "placed_at"),
        ("customer_id", "unit_price", "line_total", "product_name", "currency", "country"),
    ),
    "events": (
        ("timestamp",),
        ("message_id", "type", "event", "user_id", "anonymous_id", "name"),
    ),
}
_TEMPLATE = re.compile(r"\{([^{}]*)\}")


@dataclass
class Mapping:
    kind: str
    fields: dict[str, str] = field(default_factory=dict)
    constants: dict[str, str] = field(default_factory=dict)
    templates: dict[str, str] = field(default_factory=dict)
    format: str | None = None
    delimiter: str = ","
    encoding: str = "utf-8"
    header: bool = True
    columns: list[str] = field(default_factory=list)
    date_formats: list[str] = field(default_factory=list)
    currency: str = "EUR"
    cancel_prefix: str | None = None
    guest_customers: bool = False

    def sources(self) -> list[str]:
        """Every file column the mapping reads (fields and template pieces)."""
        used = list(self.fields.values())
        for template in self.templates.values():
            used += [n for n in _TEMPLATE.findall(template) if n != "row"]
        return list(dict.fromkeys(used))

    def origin(self, name: str) -> str:
        """Where a field comes from, as reports name it: the file column, else the field."""
        return self.fields.get(name, name)

    def provides(self, name: str) -> bool:
        return name in self.fields or name in self.constants or name in self.templates

    def check(self) -> None:
        required, optional = FIELDS[self.kind]
        known = set(required) | set(optional)
        named = {*self.fields, *self.constants, *self.templates}
        extra = sorted(
            n for n in named - known if not (self.kind == "events" and n.startswith("properties."))
        )
        if extra:
            raise ValidationFailed(
                f"mapping: unknown field(s) for {self.kind}: {', '.join(extra)} "
                f"(known: {', '.join(sorted(known))})"
            )
        missing = [n for n in required if n not in named]
        if self.kind == "orders" and not ({"unit_price", "line_total"} & named):
            missing.append("unit_price or line_total")
        if self.kind == "events" and not ({"user_id", "anonymous_id"} & named):
            missing.append("user_id or anonymous_id")
        if missing:
            raise ValidationFailed(f"mapping: no column for {', '.join(missing)}")
        if self.format is not None and self.format not in FORMATS:
            raise ValidationFailed(f"mapping: format must be one of {', '.join(FORMATS)}")
        if self.delimiter != "whitespace" and len(self.delimiter) != 1:
            raise ValidationFailed("mapping: delimiter must be one character or 'whitespace'")
        if not self.header and not self.columns:
            raise ValidationFailed("mapping: header = false needs the column names in `columns`")


_OPTIONS = {
    "format": str,
    "delimiter": str,
    "encoding": str,
    "header": bool,
    "columns": list,
    "date_formats": list,
    "currency": str,
    "cancel_prefix": str,
    "guest_customers": bool,
}


def parse_mapping(kind: str, data: dict[str, Any]) -> Mapping:
    if kind not in KINDS:
        raise ValidationFailed(f"kind must be one of {', '.join(KINDS)}")
    declared = data.get("kind")
    if declared is not None and declared != kind:
        raise ValidationFailed(f"mapping is for {declared}, not {kind}")
    mapping = Mapping(kind=kind)
    for name, value in data.items():
        if name == "kind":
            continue
        if name in ("fields", "constants", "templates"):
            if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()
            ):
                raise ValidationFailed(f"mapping: [{name}] must map field names to strings")
            setattr(mapping, name, dict(value))
        elif name in _OPTIONS:
            if not isinstance(value, _OPTIONS[name]):
                raise ValidationFailed(f"mapping: {name} must be a {_OPTIONS[name].__name__}")
            setattr(mapping, name, value)
        else:
            raise ValidationFailed(f"mapping: unknown setting {name!r}")
    mapping.check()
    return mapping


def load_mapping(
    kind: str,
    path: Path | None = None,
    text: str | None = None,
    overrides: list[str] | None = None,
) -> Mapping:
    """A mapping from a file (TOML or JSON), text, and/or `col=field` overrides.

    Without any, the file's columns are taken to be named like the fields.
    """
    data: dict[str, Any] = {}
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValidationFailed(f"mapping file unreadable: {type(exc).__name__}") from None
        data = _parse_text(text, json_first=path.suffix == ".json")
    elif text is not None and text.strip():
        data = _parse_text(text, json_first=text.lstrip().startswith("{"))
    pairs = {}
    for item in overrides or []:
        column, sep, name = item.partition("=")
        if not sep or not column.strip() or not name.strip():
            raise ValidationFailed(f"--map takes column=field, got {item!r}")
        pairs[name.strip()] = column.strip()
    if pairs:
        data.setdefault("fields", {})
        data["fields"] = {**data["fields"], **pairs}
    if "fields" not in data and "templates" not in data:
        required, optional = FIELDS[kind]
        data["fields"] = {n: n for n in (*required, *optional)}
        data["_implicit"] = True
    implicit = data.pop("_implicit", False)
    mapping = parse_mapping(kind, data) if not implicit else _implicit(kind, data)
    return mapping


def _implicit(kind: str, data: dict[str, Any]) -> Mapping:
    """Fields named like the columns; the file decides which exist (see `restrict`)."""
    mapping = Mapping(kind=kind)
    for name, value in data.items():
        if name == "fields":
            mapping.fields = dict(value)
        elif name in _OPTIONS:
            setattr(mapping, name, value)
    mapping.fields = {n: n for n in mapping.fields}
    mapping.constants = {}
    setattr(mapping, "_implicit", True)  # noqa: B010
    return mapping


def restrict(mapping: Mapping, columns: list[str]) -> Mapping:
    """For an implicit mapping: keep the fields the file has, then check."""
    if getattr(mapping, "_implicit", False):
        mapping.fields = {n: c for n, c in mapping.fields.items() if c in columns}
        for column in columns:
            if column.startswith("properties."):
                mapping.fields[column] = column
        mapping.check()
    return mapping


def _parse_text(text: str, *, json_first: bool) -> dict[str, Any]:
    try:
        data = json.loads(text) if json_first else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValidationFailed(
            f"mapping is not valid {'JSON' if json_first else 'TOML'}: {exc}"
        ) from None
    if not isinstance(data, dict):
        raise ValidationFailed("mapping must be a table / object")
    return data


def template_parts(template: str) -> list[tuple[bool, str]]:
    """(is_column, text) pieces of a template."""
    parts: list[tuple[bool, str]] = []
    position = 0
    for match in _TEMPLATE.finditer(template):
        if match.start() > position:
            parts.append((False, template[position : match.start()]))
        parts.append((True, match.group(1)))
        position = match.end()
    if position < len(template):
        parts.append((False, template[position:]))
    return parts
