"""Vectorised validation: a column of text becomes typed NumPy values plus rejections.

Each check works on the whole column at once (Arrow compute kernels), marks the rows it
refuses, and records one rejection per refused row: row number, the file's column, and a
reason that never quotes the value (it may be personal data).
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from patronage.collect.importing.mapping import Mapping, template_parts
from patronage.collect.importing.readers import Frame, Rejection
from patronage.kit.clock import utcnow

_INT = r"^\s*[+-]?\d{1,18}\s*$"
_DECIMAL = r"^\s*[+-]?(\d{1,15}(\.\d*)?|\.\d+)\s*$"
_EMAIL = r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$"
_PHONE = r"^\+?[0-9 ()./-]{5,24}$"
ISO_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%d %H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
)
_EARLIEST = np.datetime64("1900-01-01T00:00:00", "us")


def _mask(array: pa.Array) -> np.ndarray:
    """A boolean Arrow array as NumPy, null counted as False."""
    return np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=bool)


class Checker:
    def __init__(self, frame: Frame, mapping: Mapping) -> None:
        self.frame = frame
        self.mapping = mapping
        self.rows = frame.rows
        self.bad = np.zeros(frame.rows, dtype=bool)
        self.rejected: list[Rejection] = list(frame.rejected)

    # -- sources ----------------------------------------------------------------------------

    def raw(self, name: str) -> pa.Array | None:
        """The field's text for every row (null where empty), or None when not mapped."""
        m = self.mapping
        if name in m.fields:
            return self.frame.columns[m.fields[name]]
        if name in m.constants:
            return pa.array([m.constants[name]] * self.rows, type=pa.string())
        if name in m.templates:
            pieces: list[pa.Array] = []
            for is_column, text in template_parts(m.templates[name]):
                if not is_column:
                    pieces.append(pa.array([text] * self.rows, type=pa.string()))
                elif text == "row":
                    pieces.append(pc.cast(pa.array(self.frame.row_numbers), pa.string()))
                else:
                    pieces.append(pc.fill_null(self.frame.columns[text], ""))
            return pc.binary_join_element_wise(*pieces, "")
        return None

    def reject(self, mask: np.ndarray, name: str, reason: str) -> None:
        fresh = mask & ~self.bad
        if not fresh.any():
            return
        column = self.mapping.origin(name)
        for row in self.frame.row_numbers[fresh].tolist():
            self.rejected.append(Rejection(int(row), column, reason))
        self.bad |= fresh

    # -- typed fields -----------------------------------------------------------------------

    def text(self, name: str, limit: int, *, required: bool = False) -> pa.Array | None:
        array = self.raw(name)
        if array is None:
            return None
        array = pc.utf8_trim_whitespace(array)
        if required:
            self.reject(_mask(pc.is_null(array)), name, "required, but empty")
        self.reject(_mask(pc.greater(pc.utf8_length(array), limit)), name, f"longer than {limit}")
        self.reject(_mask(pc.match_substring(array, "\x00")), name, "holds a NUL character")
        return array

    def _numeric(self, name: str, pattern: str, kind: str, required: bool) -> pa.Array | None:
        array = self.raw(name)
        if array is None:
            return None
        if required:
            self.reject(_mask(pc.is_null(array)), name, "required, but empty")
        ok = pc.match_substring_regex(array, pattern)
        self.reject(_mask(pc.invert(ok)), name, f"not {kind}")
        cleaned = pc.if_else(ok, pc.utf8_trim_whitespace(array), pa.scalar(None, pa.string()))
        return cleaned

    def integer(self, name: str, *, required: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
        """(values, present) with 0 where absent or refused."""
        cleaned = self._numeric(name, _INT, "a whole number", required)
        if cleaned is None:
            return None
        values = pc.cast(cleaned, pa.int64())
        present = _mask(pc.is_valid(values))
        return np.asarray(pc.fill_null(values, 0).to_numpy(), dtype=np.int64), present

    def money(
        self, name: str, *, required: bool = False, negative: bool = False
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Amounts in minor units (rounded to the cent), (values, present)."""
        cleaned = self._numeric(name, _DECIMAL, "a number", required)
        if cleaned is None:
            return None
        floats = pc.cast(cleaned, pa.float64())
        present = _mask(pc.is_valid(floats))
        values = np.rint(np.asarray(pc.fill_null(floats, 0.0).to_numpy()) * 100).astype(np.int64)
        if not negative:
            self.reject(values < 0, name, "negative")
        return values, present

    def moment(self, name: str, *, required: bool = False) -> np.ndarray | None:
        """UTC datetime64[us], NaT where absent or refused."""
        array = self.raw(name)
        if array is None:
            return None
        array = pc.utf8_trim_whitespace(array)
        if required:
            self.reject(_mask(pc.is_null(array)), name, "required, but empty")
        formats = self.mapping.date_formats or list(ISO_FORMATS)
        if not self.mapping.date_formats:
            array = pc.replace_substring_regex(array, r"(:\d\d)\.\d+", r"\1")
        result = pa.nulls(len(array), pa.timestamp("us"))
        for fmt in formats:
            parsed = pc.strptime(array, format=fmt, unit="us", error_is_null=True)
            if parsed.type.tz is not None:
                parsed = parsed.cast(pa.timestamp("us"))
            result = pc.coalesce(result, parsed)
        values = np.array(result.to_numpy(zero_copy_only=False), dtype="datetime64[us]")
        given = _mask(pc.is_valid(array))
        spelled = " or ".join(formats[:2]) + (" …" if len(formats) > 2 else "")
        self.reject(given & np.isnat(values), name, f"not a date ({spelled})")
        latest = np.datetime64((utcnow() + timedelta(days=1)).replace(tzinfo=None), "us")
        self.reject(
            ~np.isnat(values) & ((values < _EARLIEST) | (values > latest)),
            name,
            "date out of range (before 1900 or in the future)",
        )
        values[self.bad] = np.datetime64("NaT")
        return values

    def pattern(self, name: str, regex: str, what: str, limit: int) -> pa.Array | None:
        array = self.text(name, limit)
        if array is None:
            return None
        self.reject(_mask(pc.invert(pc.match_substring_regex(array, regex))), name, f"not {what}")
        return array

    def email(self, name: str = "email") -> pa.Array | None:
        return self.pattern(name, _EMAIL, "an email address", 254)

    def phone(self, name: str = "phone") -> pa.Array | None:
        return self.pattern(name, _PHONE, "a phone number", 32)

    def duplicates(self, key: pa.Array, name: str, reason: str) -> None:
        """Refuse every row whose key repeats an earlier row's (the first one stays)."""
        codes = np.asarray(
            pc.dictionary_encode(pc.fill_null(key, "\x00")).indices.to_numpy(), dtype=np.int64
        )
        _, first = np.unique(codes, return_index=True)
        later = np.ones(len(codes), dtype=bool)
        later[first] = False
        if later.any():
            first_row = self.frame.row_numbers[first[codes]]
            for i in np.flatnonzero(later & ~self.bad).tolist():
                self.rejected.append(
                    Rejection(
                        int(self.frame.row_numbers[i]),
                        self.mapping.origin(name),
                        f"{reason} (first at row {int(first_row[i])})",
                    )
                )
            self.bad |= later

    def whole_row_key(self) -> pa.Array:
        """Every mapped field of a row joined: equal keys are duplicate rows."""
        names = [*self.mapping.fields, *self.mapping.templates]
        pieces = [pc.fill_null(self.raw(n), "\x00") for n in names]
        if not pieces:
            return pa.array([""] * self.rows)
        return pc.binary_join_element_wise(*pieces, "\x1f")

    def as_list(self, array: pa.Array | None) -> list[str | None]:
        return [] if array is None else array.to_pylist()
