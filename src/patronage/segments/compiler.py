"""Rules compiled to Ibis expressions: one boolean per customer, set at a time, on any engine.

The compiler sees only Ibis tables named as in `TABLES` (the engine decides where they live:
DuckDB fed from the store through Arrow, or the store itself) and a one-row `clock` table
holding `now`, so a compiled rule never embeds the time it runs at. Every value that comes
from a rule is an `ibis.param`, bound when the expression runs: nothing of a rule is ever
pasted into SQL text.

Semantics, shared exactly with the per-customer evaluator (`segments.local`, checked by a
property test): every leaf is two-valued — a test of something unknown (a NULL trait, a
missing feature row, an absent event property) is false, so `not` is the exact complement.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from patronage.customers.consent import DEFAULTS, Purpose
from patronage.errors import ValidationFailed
from patronage.segments import rules as r

# table -> its columns (names as in the store; analytics tables under short names)
TABLES: dict[str, dict[str, str]] = {
    "customers": {
        "id": "int64",
        "birth_year": "int64",
        "gender": "string",
        "language": "string",
        "country": "string",
        "region": "string",
        "city": "string",
        "postcode_prefix": "string",
        "is_anonymous": "boolean",
        "merged_into_id": "int64",
    },
    "consents": {
        "id": "int64",
        "customer_id": "int64",
        "purpose": "string",
        "granted": "boolean",
        "recorded_at": "timestamp",
    },
    "events": {
        "customer_id": "int64",
        "name": "string",
        "timestamp": "timestamp",
        "properties": "string",
    },
    # page views (events of type page) and their context, for visit reasons
    "visits": {"customer_id": "int64", "timestamp": "timestamp", "context": "string"},
    "orders": {
        "id": "int64",
        "customer_id": "int64",
        "status": "string",
        "total_minor": "int64",
        "placed_at": "timestamp",
    },
    "order_items": {"order_id": "int64", "product_id": "int64"},
    "products": {"id": "int64", "category_id": "int64"},
    "features": {
        "customer_id": "int64",
        **{k: ("float64" if v == "number" else "string") for k, v in r.FEATURES.items()},
    },
    "rfm": {"customer_id": "int64", "r": "int64", "f": "int64", "m": "int64", "segment": "string"},
    "scores": {
        "customer_id": "int64",
        **{s: "float64" for s in r.SCORES if not s.startswith("rfm_")},
    },
    # each customer's persona in the latest clustering (segment_persona_members)
    "personas": {"customer_id": "int64", "persona_id": "int64"},
    "clock": {"now": "timestamp"},
}

RuleLookup = Callable[[int], r.Node]
PercentileLookup = Callable[[str, float], float | None]


@ibis.udf.scalar.builtin(name="json_extract_string")  # type: ignore[untyped-decorator]
def _json_extract_string(value: str, path: str) -> str:  # type: ignore[empty-body]
    """DuckDB's json_extract_string: the value at `path` as text (NULL when absent)."""


@ibis.udf.scalar.builtin(name="json_type")  # type: ignore[untyped-decorator]
def _json_type(value: str, path: str) -> str:  # type: ignore[empty-body]
    """DuckDB's json_type: VARCHAR, BIGINT, UBIGINT, DOUBLE, BOOLEAN, NULL, ARRAY, OBJECT."""


@ibis.udf.scalar.builtin(name="jsonb_extract_path_text")  # type: ignore[untyped-decorator]
def _pg_text(value: dt.JSON, key: str) -> str:  # type: ignore[empty-body]
    """PostgreSQL: the value under `key` as text (NULL when absent)."""


@ibis.udf.scalar.builtin(name="jsonb_extract_path")  # type: ignore[untyped-decorator]
def _pg_path(value: dt.JSON, key: str) -> dt.JSON:
    """PostgreSQL: the JSON value under `key`."""


@ibis.udf.scalar.builtin(name="jsonb_typeof")  # type: ignore[untyped-decorator]
def _pg_typeof(value: dt.JSON) -> str:  # type: ignore[empty-body]
    """PostgreSQL: string, number, boolean, null, array or object."""


# Spark (4.x): a property's JSON type comes from its VARIANT value (get_json_object alone
# cannot tell the string "7" from the number 7). The variant stands behind an opaque binary
# type on the Ibis side: it only ever goes from one of these functions to another.
@ibis.udf.scalar.builtin(name="try_parse_json")  # type: ignore[untyped-decorator]
def _sp_parse(value: str) -> dt.Binary:
    """Spark: the text as a VARIANT (NULL when it is not JSON)."""


@ibis.udf.scalar.builtin(name="variant_get")  # type: ignore[untyped-decorator]
def _sp_get(value: dt.Binary, path: str, kind: str) -> dt.Binary:
    """Spark: the VARIANT at `path` (with `kind` 'variant')."""


@ibis.udf.scalar.builtin(name="variant_get")  # type: ignore[untyped-decorator]
def _sp_text(value: dt.Binary, path: str, kind: str) -> str:  # type: ignore[empty-body]
    """Spark: the value at `path` as text (with `kind` 'string')."""


@ibis.udf.scalar.builtin(name="try_variant_get")  # type: ignore[untyped-decorator]
def _sp_number(value: dt.Binary, path: str, kind: str) -> float:  # type: ignore[empty-body]
    """Spark: the value at `path` as a double (with `kind` 'double'; NULL when it is not)."""


@ibis.udf.scalar.builtin(name="schema_of_variant")  # type: ignore[untyped-decorator]
def _sp_type(value: dt.Binary) -> str:  # type: ignore[empty-body]
    """Spark: STRING, BIGINT, DOUBLE, DECIMAL(p,s), BOOLEAN, VOID, OBJECT<…>, ARRAY<…>."""


@ibis.udf.scalar.builtin(name="get_json_object")  # type: ignore[untyped-decorator]
def _sp_json_text(value: str, path: str) -> str:  # type: ignore[empty-body]
    """Spark: the value at `path` as text (NULL when absent)."""


def naive_utc(moment: datetime) -> datetime:
    """The engines compute in UTC wall-clock time (naive timestamps)."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


class Compiler:
    """Compiles rules over `tables`; `params` collects the values to bind when running."""

    def __init__(
        self,
        tables: Mapping[str, ir.Table],
        *,
        rules: RuleLookup,
        percentile: PercentileLookup,
        json_text: bool = False,
        pg_json: bool = False,
        spark_json: bool = False,
    ) -> None:
        self.json_text = json_text  # the engine has DuckDB's JSON functions
        self.pg_json = pg_json  # PostgreSQL's jsonb functions (Ibis' own JSON ops fail there)
        self.spark_json = spark_json  # Spark's VARIANT functions
        self.t = tables
        self.rules = rules
        self.percentile = percentile
        self.params: dict[Any, Any] = {}
        self.customers = tables["customers"].filter(tables["customers"].merged_into_id.isnull())
        self.now = tables["clock"].now.as_scalar()

    # -- entry points --------------------------------------------------------------------------

    def members(self, rule: r.Node) -> ir.Table:
        """The ids (column `customer_id`) of the customers matching `rule`."""
        c = self.customers
        return c.filter(self.predicate(rule, c)).select(customer_id=c.id)

    def predicate(self, node: r.Node, c: ir.Table, seen: frozenset[int] = frozenset()) -> Any:
        if isinstance(node, r.And):
            parts = [self.predicate(n, c, seen) for n in node.conditions]
            out = parts[0]
            for p in parts[1:]:
                out = out & p
            return out
        if isinstance(node, r.Or):
            parts = [self.predicate(n, c, seen) for n in node.conditions]
            out = parts[0]
            for p in parts[1:]:
                out = out | p
            return out
        if isinstance(node, r.Not):
            return ~self.predicate(node.condition, c, seen)
        if isinstance(node, r.InSegment):
            if node.segment_id in seen:
                raise ValidationFailed(f"segment {node.segment_id} refers to itself")
            return self.predicate(self.rules(node.segment_id), c, seen | {node.segment_id})
        return self._leaf(node, c).fill_null(False)

    # -- helpers -------------------------------------------------------------------------------

    def _p(self, value: Any, dtype: Any) -> Any:
        param = ibis.param(dtype)
        self.params[param] = value
        return param

    def _value(self, value: Any) -> Any:
        if isinstance(value, bool):
            return self._p(value, dt.boolean)
        if isinstance(value, int):
            return self._p(float(value), dt.float64)
        if isinstance(value, float):
            return self._p(value, dt.float64)
        return self._p(value, dt.string)

    def _list(self, values: list[Any]) -> Any:
        first = values[0]
        if isinstance(first, bool):
            return self._p(values, dt.Array(dt.boolean))
        if isinstance(first, int | float):
            return self._p([float(v) for v in values], dt.Array(dt.float64))
        return self._p(values, dt.Array(dt.string))

    def compare(self, col: Any, op: str, value: Any) -> Any:
        if op == "is_set":
            return col.notnull()
        if op == "is_not_set":
            return col.isnull()
        if op == "between":
            return (col >= self._value(value[0])) & (col <= self._value(value[1]))
        if op in ("in", "not_in"):
            hit = self._list(value).contains(col)
            return hit if op == "in" else ~hit & col.notnull()
        if op == "contains":
            return col.contains(self._value(value))
        if op == "starts_with":
            return col.startswith(self._value(value))
        if op == "ends_with":
            return col.endswith(self._value(value))
        v = self._value(value)
        return {
            "eq": lambda: col == v,
            "ne": lambda: col != v,
            "lt": lambda: col < v,
            "lte": lambda: col <= v,
            "gt": lambda: col > v,
            "gte": lambda: col >= v,
        }[op]()

    def _since(self, days: int) -> Any:
        return self.now - ibis.interval(days=days)

    def _leaf(self, node: r.Node, c: ir.Table) -> Any:
        if isinstance(node, r.Trait):
            col = (self.now.year() - c.birth_year) if node.field == "age" else c[node.field]
            return self.compare(col, node.op, node.value)
        if isinstance(node, r.Feature):
            f = self.t["features"]
            if node.percentile:
                threshold = self.percentile(node.feature, float(node.value))  # type: ignore[arg-type]
                if threshold is None:
                    return ibis.literal(False)
                hit = self.compare(f[node.feature], node.op, threshold)
            else:
                hit = self.compare(f[node.feature], node.op, node.value)
            return c.id.isin(f.filter(hit.fill_null(False)).customer_id)
        if isinstance(node, r.Score):
            if node.score.startswith("rfm_"):
                s = self.t["rfm"]
                col = s[node.score.removeprefix("rfm_")]
            else:
                s = self.t["scores"]
                col = s[node.score]
            return c.id.isin(
                s.filter(self.compare(col, node.op, node.value).fill_null(False)).customer_id
            )
        if isinstance(node, r.Rfm):
            s = self.t["rfm"]
            return c.id.isin(s.filter(self._list(node.segments).contains(s.segment)).customer_id)
        if isinstance(node, r.Event):
            e = self._events(node.event, node.where, node.within_days)
            if node.at_least > 1:
                counted = e.group_by("customer_id").agg(n=e.count())
                e = counted.filter(counted.n >= self._p(node.at_least, dt.int64))
            return c.id.isin(e.customer_id)
        if isinstance(node, r.NotDone):
            if node.since_days is not None:
                cutoff = self._since(node.since_days)
            else:
                assert node.since is not None
                start = datetime(node.since.year, node.since.month, node.since.day)
                cutoff = self._p(start, dt.timestamp)
            return ~c.id.isin(self._events(node.event, node.where, cutoff=cutoff).customer_id)
        if isinstance(node, r.BoughtCategory):
            o = self._orders(node.within_days)
            items = self.t["order_items"]
            products = self.t["products"]
            chosen = products.filter(products.category_id == self._p(node.category_id, dt.int64))
            lines = items.filter(items.product_id.isin(chosen.id))
            return c.id.isin(o.filter(o.id.isin(lines.order_id)).customer_id)
        if isinstance(node, r.Spent):
            o = self._orders(node.within_days)
            totals = o.group_by("customer_id").agg(spent=o.total_minor.sum())
            hit = self.compare(totals.spent, node.op, node.amount_minor)
            zero_matches = {
                "gt": node.amount_minor < 0,
                "gte": node.amount_minor <= 0,
                "lt": node.amount_minor > 0,
                "lte": node.amount_minor >= 0,
            }[node.op]
            if zero_matches:  # customers without orders (spent 0) are in: exclude the others
                return ~c.id.isin(totals.filter(~hit).customer_id)
            return c.id.isin(totals.filter(hit).customer_id)
        if isinstance(node, r.Consent):
            latest = self._consents(node.purpose.value)
            default = DEFAULTS[Purpose(node.purpose)]
            if node.granted == default:
                # the default holds unless the latest record says otherwise
                return ~c.id.isin(latest.filter(latest.granted != node.granted).customer_id)
            return c.id.isin(latest.filter(latest.granted == node.granted).customer_id)
        if isinstance(node, r.InPersona):
            p = self.t["personas"]
            wanted = self._p(list(node.personas), dt.Array(dt.int64))
            return c.id.isin(p.filter(wanted.contains(p.persona_id)).customer_id)
        if isinstance(node, r.Visit):
            v = self.t["visits"]
            if node.within_days is not None:
                v = v.filter(v.timestamp >= self._since(node.within_days))
            reason = self._visit_reason(v)
            return c.id.isin(v.filter(self._list(list(node.reasons)).contains(reason)).customer_id)
        raise AssertionError(f"unhandled condition {type(node).__name__}")  # pragma: no cover

    def _visit_reason(self, v: ir.Table) -> Any:
        """rules.visit_reason, as an expression over the page view's context."""
        if self.json_text:
            medium = _json_extract_string(v.context, "$.campaign.medium").lower()
            referrer = _json_extract_string(v.context, "$.page.referrer").lower()
        elif self.pg_json:
            medium = _pg_text(_pg_path(v.context, "campaign"), "medium").lower()
            referrer = _pg_text(_pg_path(v.context, "page"), "referrer").lower()
        elif self.spark_json:
            medium = _sp_json_text(v.context, "$.campaign.medium").lower()
            referrer = _sp_json_text(v.context, "$.page.referrer").lower()
        else:
            ctx = v.context.cast("json")
            medium = ctx["campaign"]["medium"].str.lower()
            referrer = ctx["page"]["referrer"].str.lower()
        has_medium = medium.notnull() & (medium != "")
        has_referrer = referrer.notnull() & (referrer != "")

        def any_of(col: Any, parts: tuple[str, ...]) -> Any:
            out = col.contains(parts[0])
            for part in parts[1:]:
                out = out | col.contains(part)
            return out

        return ibis.cases(
            (has_medium & (medium == "email"), "email"),
            (has_medium & medium.isin(r.PAID_SEARCH_MEDIA), "paid_search"),
            (has_medium & medium.isin(r.PAID_SOCIAL_MEDIA), "paid_social"),
            (has_medium, "campaign"),
            (has_referrer & any_of(referrer, r.SEARCH_ENGINES), "organic_search"),
            (has_referrer & any_of(referrer, r.SOCIAL_SITES), "social"),
            (has_referrer, "referral"),
            else_="direct",
        )

    def _events(
        self,
        name: str,
        where: list[r.PropertyFilter],
        within_days: int | None = None,
        cutoff: Any = None,
    ) -> ir.Table:
        # cheap tests first: the name and the window, then the properties (JSON parsing)
        e = self.t["events"]
        e = e.filter(e.name == self._p(name, dt.string))
        if within_days is not None:
            cutoff = self._since(within_days)
        if cutoff is not None:
            e = e.filter(e.timestamp >= cutoff)
        for f in where:
            e = e.filter(self._property(e, f).fill_null(False))
        return e

    def _property(self, e: ir.Table, f: r.PropertyFilter) -> Any:
        if self.json_text:
            return self._property_text(e, f)
        if self.pg_json:
            return self._property_pg(e, f)
        if self.spark_json:
            return self._property_spark(e, f)
        value = e.properties.cast("json")[f.property]
        if f.op == "is_set":
            return value.str.notnull() | value.float.notnull() | value.bool.notnull()
        first = f.value[0] if isinstance(f.value, list) else f.value
        kind = r._kind_of(first)
        col = value.str if kind == "text" else value.float if kind == "number" else value.bool
        return self.compare(col, f.op, f.value)

    def _property_text(self, e: ir.Table, f: r.PropertyFilter) -> Any:
        """The same tests with DuckDB's JSON functions on the text: the value is extracted
        once and compared before its type is checked (half the parsing of the generic path,
        measured on 12M events)."""
        path = self._p(f"$.{f.property}", dt.string)
        kind = _json_type(e.properties, path)
        if f.op == "is_set":
            return kind.isin(("VARCHAR", "UBIGINT", "BIGINT", "DOUBLE", "BOOLEAN"))
        first = f.value[0] if isinstance(f.value, list) else f.value
        text = _json_extract_string(e.properties, path)
        if r._kind_of(first) == "text":
            return self.compare(text, f.op, f.value) & (kind == "VARCHAR")
        if r._kind_of(first) == "bool":
            return (kind == "BOOLEAN") & self.compare(text == "true", f.op, f.value)
        number = kind.isin(("UBIGINT", "BIGINT", "DOUBLE"))
        return number & self.compare(text.try_cast("float64"), f.op, f.value)

    def _property_pg(self, e: ir.Table, f: r.PropertyFilter) -> Any:
        key = self._p(f.property, dt.string)
        kind = _pg_typeof(_pg_path(e.properties, key))
        if f.op == "is_set":
            return kind.isin(("string", "number", "boolean"))
        first = f.value[0] if isinstance(f.value, list) else f.value
        text = _pg_text(e.properties, key)
        if r._kind_of(first) == "text":
            return (kind == "string") & self.compare(text, f.op, f.value)
        if r._kind_of(first) == "bool":
            return (kind == "boolean") & self.compare(text == "true", f.op, f.value)
        number = ibis.ifelse(kind == "number", text, ibis.null("string")).cast("float64")
        return self.compare(number, f.op, f.value)

    def _property_spark(self, e: ir.Table, f: r.PropertyFilter) -> Any:
        path = self._p(f"$.{f.property}", dt.string)
        value = _sp_get(_sp_parse(e.properties), path, "variant")
        kind = _sp_type(value)
        number = kind.isin(("BIGINT", "DOUBLE")) | kind.startswith("DECIMAL")
        if f.op == "is_set":
            return number | kind.isin(("STRING", "BOOLEAN"))
        first = f.value[0] if isinstance(f.value, list) else f.value
        if r._kind_of(first) == "text":
            text = _sp_text(value, "$", "string")
            return (kind == "STRING") & self.compare(text, f.op, f.value)
        if r._kind_of(first) == "bool":
            text = _sp_text(value, "$", "string")
            return (kind == "BOOLEAN") & self.compare(text == "true", f.op, f.value)
        return number & self.compare(_sp_number(value, "$", "double"), f.op, f.value)

    def _orders(self, within_days: int | None) -> ir.Table:
        o = self.t["orders"]
        o = o.filter(o.status != "cancelled")
        if within_days is not None:
            o = o.filter(o.placed_at >= self._since(within_days))
        return o

    def _consents(self, purpose: str) -> ir.Table:
        """The latest record of `purpose` per customer (purpose filtered before ranking)."""
        s = self.t["consents"]
        s = s.filter(s.purpose == self._p(purpose, dt.string))
        ranked = s.mutate(
            rank=ibis.row_number().over(
                group_by=[s.customer_id],
                order_by=[ibis.desc(s.recorded_at), ibis.desc(s.id)],
            )
        )
        return ranked.filter(ranked["rank"] == 0)
