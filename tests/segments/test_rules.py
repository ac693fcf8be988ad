"""The rule language: exact members on a hand-built dataset (both evaluators), validation."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patronage.errors import ValidationFailed
from patronage.segments import rules as r
from tests.segments.dataset import ALL, NOW, both

SHOES = {"property": "category", "op": "eq", "value": "shoes"}


def trait(field: str, op: str, value: Any = None) -> dict[str, Any]:
    out = {"type": "trait", "field": field, "op": op}
    return out if value is None else {**out, "value": value}


CASES: list[tuple[dict[str, Any], set[int]]] = [
    (trait("country", "eq", "DE"), {1, 2}),
    (trait("country", "ne", "DE"), {3, 4, 6, 7, 8}),
    (trait("country", "in", ["FR", "IT"]), {3, 7, 8}),
    (trait("gender", "not_in", ["female"]), {2, 6, 7}),  # unknown gender (4) is not "not female"
    (trait("gender", "is_not_set"), {4}),
    (trait("language", "is_set"), {1, 2, 3, 4, 6, 8}),
    (trait("age", "between", [25, 40]), {1, 3, 7}),  # 36, 26, 27 (6 is 51)
    (trait("age", "gte", 60), {2, 8}),
    (trait("birth_year", "lt", 1976), {2, 6, 8}),
    (trait("city", "starts_with", "Pa"), {3}),
    (trait("region", "contains", "a"), {1, 8}),  # case-sensitive: not PACA
    (trait("city", "ends_with", "e"), {7, 8}),
    (trait("is_anonymous", "eq", True), {6}),
    ({"type": "feature", "feature": "total_spend_minor", "op": "gte", "value": 20000}, {1, 3}),
    ({"type": "feature", "feature": "preferred_channel", "op": "eq", "value": "web"}, {1, 7}),
    ({"type": "feature", "feature": "recency_days", "op": "is_set"}, {1, 2, 3}),
    # values 0, 0, 1000, 20000, 30000, 99999 (merged 5 still in the refresh's table): p80 → 30000
    (
        {
            "type": "feature",
            "feature": "total_spend_minor",
            "percentile": True,
            "op": "gte",
            "value": 80,
        },
        {1},
    ),
    (
        {
            "type": "feature",
            "feature": "total_spend_minor",
            "percentile": True,
            "op": "lte",
            "value": 40,
        },
        {2, 6, 7},  # p40 of 6 values: the 3rd smallest, 1000
    ),
    ({"type": "score", "score": "churn_risk", "op": "gt", "value": 0.5}, {2}),
    ({"type": "score", "score": "clv_minor", "op": "gte", "value": 300}, {1, 3}),
    ({"type": "score", "score": "rfm_f", "op": "gte", "value": 4}, {1, 3}),
    ({"type": "rfm", "segments": ["Champions", "Loyal"]}, {1, 3}),
    ({"type": "event", "event": "Product Viewed"}, {1, 2, 4, 7, 8}),
    ({"type": "event", "event": "Product Viewed", "within_days": 30}, {1, 2, 4, 8}),
    ({"type": "event", "event": "Product Viewed", "where": [SHOES], "at_least": 2}, {1}),
    ({"type": "event", "event": "Product Viewed", "where": [SHOES], "within_days": 7}, {1, 2}),
    (
        {
            "type": "event",
            "event": "Product Viewed",
            "where": [SHOES, {"property": "price", "op": "gt", "value": 52}],
        },
        {1, 2},
    ),
    (
        {
            "type": "event",
            "event": "Product Viewed",
            "where": [{"property": "category", "op": "eq", "value": 7}],
        },
        {4},
    ),
    (
        {
            "type": "event",
            "event": "Product Viewed",
            "where": [{"property": "category", "op": "is_set"}],
        },
        {1, 2, 4, 7},  # 8's category is null
    ),
    (
        {
            "type": "event",
            "event": "Product Added",
            "where": [{"property": "gift", "op": "eq", "value": True}],
        },
        {3},
    ),
    (
        {
            "type": "event",
            "event": "Product Viewed",
            "where": [{"property": "category", "op": "in", "value": ["hats", "caps"]}],
        },
        {2},
    ),
    ({"type": "not_done", "event": "Order Completed", "since_days": 90}, {2, 3, 4, 6, 7, 8}),
    ({"type": "not_done", "event": "Product Viewed", "since": "2026-05-01"}, {3, 6, 7}),
    ({"type": "bought_category", "category_id": 3}, {3}),  # 1's order of category 3 was cancelled
    ({"type": "bought_category", "category_id": 1, "within_days": 365}, {1}),
    ({"type": "spent", "op": "gt", "amount_minor": 5000}, {1, 3}),
    ({"type": "spent", "op": "gte", "amount_minor": 1000, "within_days": 30}, {1}),
    ({"type": "spent", "op": "lt", "amount_minor": 5000}, {2, 4, 6, 7, 8}),
    ({"type": "spent", "op": "lte", "amount_minor": 0}, {4, 6, 7, 8}),
    ({"type": "visit", "reasons": ["organic_search"]}, {1}),
    ({"type": "visit", "reasons": ["email", "paid_search"]}, {2, 3}),  # CPC: case ignored
    ({"type": "visit", "reasons": ["email", "paid_search"], "within_days": 30}, {2}),
    ({"type": "visit", "reasons": ["direct"]}, {6, 8}),
    ({"type": "visit", "reasons": ["social", "referral"]}, {4, 7}),
    ({"type": "consent", "purpose": "marketing_email"}, {2, 4}),  # 1 revoked it
    ({"type": "consent", "purpose": "marketing_email", "granted": False}, {1, 3, 6, 7, 8}),
    ({"type": "consent", "purpose": "analytics", "granted": False}, ALL),  # default: not given
    ({"type": "consent", "purpose": "necessary"}, ALL - {8}),
    (
        {
            "type": "and",
            "conditions": [
                trait("country", "in", ["DE", "FR"]),
                {
                    "type": "or",
                    "conditions": [
                        {"type": "rfm", "segments": ["Lost"]},
                        trait("gender", "eq", "female"),
                    ],
                },
            ],
        },
        {1, 2, 3},
    ),
    ({"type": "persona", "personas": [1]}, {1, 4}),  # 5 (merged away) is never counted
    ({"type": "persona", "personas": [2, 1]}, {1, 2, 4, 7, 8}),
    (
        {"type": "not", "condition": {"type": "persona", "personas": [2]}},
        {1, 3, 4, 6},
    ),  # 3, 6: none
    ({"type": "persona", "personas": [3]}, set()),  # retired: nobody has it
    ({"type": "not", "condition": trait("country", "eq", "DE")}, {3, 4, 6, 7, 8}),
    ({"type": "not", "condition": trait("gender", "eq", "female")}, {2, 4, 6, 7}),  # 4: unknown
    (
        {
            "type": "not",
            "condition": {
                "type": "not",
                "condition": {"type": "event", "event": "Order Completed"},
            },
        },
        {1, 3},
    ),
]


@pytest.mark.parametrize(("raw", "expected"), CASES, ids=[json.dumps(c[0])[:60] for c in CASES])
def test_exact_members_both_ways(raw: dict[str, Any], expected: set[int]) -> None:
    duck, local = both(r.parse_rule(raw))
    assert duck == expected
    assert local == expected


def test_membership_of_another_segment_is_evaluated_in_place() -> None:
    rules = {
        1: r.parse_rule(trait("country", "eq", "DE")),
        2: r.parse_rule(
            {
                "type": "and",
                "conditions": [{"type": "segment", "segment_id": 1}, trait("gender", "eq", "male")],
            }
        ),
    }
    rule = r.parse_rule(
        {
            "type": "or",
            "conditions": [{"type": "segment", "segment_id": 2}, trait("country", "eq", "IT")],
        }
    )
    duck, local = both(rule, segments=rules.__getitem__)
    assert duck == local == {2, 8}


def test_windows_slide_with_now() -> None:
    rule = r.parse_rule({"type": "event", "event": "Product Viewed", "within_days": 30})
    # views 1 day (customers 1, 4), 2 days (1, 8) and 3 days (2) before NOW
    for later, expected in [(28, {1, 4, 8}), (29, {1, 4}), (29.01, set())]:
        duck, local = both(rule, now=NOW + timedelta(days=later))
        assert duck == local == expected


# -- validation ----------------------------------------------------------------------------------


def problems(raw: Any) -> list[dict[str, str]]:
    with pytest.raises(ValidationFailed) as caught:
        r.parse_rule(raw)
    detail = caught.value.detail
    assert isinstance(detail, list)
    return detail


def test_errors_name_the_condition_and_the_problem() -> None:
    raw = {
        "type": "and",
        "conditions": [
            trait("country", "eq", "DE"),
            {"type": "or", "conditions": [{"type": "event", "event": "X", "at_least": 0}]},
            trait("country", "gt", "DE"),
            trait("shoe_size", "eq", 42),
            {"type": "spent", "op": "gt"},
            {"type": "nope"},
            {"type": "rfm", "segments": ["Champs"]},
            {"type": "consent", "purpose": "marketing_email", "colour": "red"},
        ],
    }
    assert problems(raw) == [
        {
            "path": "$.conditions[1].conditions[0].at_least",
            "problem": "Input should be greater than or equal to 1",
        },
        {"path": "$.conditions[2]", "problem": "'gt' compares numbers; country is text"},
        {
            "path": "$.conditions[3]",
            "problem": "unknown trait 'shoe_size'; one of: " + ", ".join(r.TRAITS),
        },
        {"path": "$.conditions[4].amount_minor", "problem": "Field required"},
        {
            "path": "$.conditions[5]",
            "problem": "unknown condition type; one of: " + ", ".join(r.TYPES),
        },
        {
            "path": "$.conditions[6]",
            "problem": "unknown RFM segment 'Champs'; one of: " + ", ".join(r.RFM_SEGMENTS),
        },
        {"path": "$.conditions[7].colour", "problem": "unknown field"},
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (trait("age", "eq", "old"), "age is compared with a number value; got a text"),
        (trait("country", "in", []), "'in' takes a non-empty list of values"),
        (trait("country", "eq", ["DE"]), "'eq' takes one value, not a list"),
        (trait("country", "is_set", "DE"), "'is_set' takes no value"),
        (trait("country", "eq"), "'eq' needs a value"),
        (trait("age", "between", [50, 20]), "'between' needs low <= high"),
        (trait("age", "contains", 5), "'contains' applies to text; age is a number"),
        (trait("city", "eq", "x" * 201), "text values are at most 200 characters"),
        (trait("city", "eq", "a\x00b"), "text values may not contain a NUL character"),
        (trait("city", "matches", "^(a+)+$"), None),
        ({"type": "not_done", "event": "X"}, "give exactly one of since_days or since (a date)"),
        (
            {
                "type": "event",
                "event": "X",
                "where": [{"property": "a.b'", "op": "eq", "value": 1}],
            },
            "a property name is a letter or _ then up to 63 letters, digits or _",
        ),
        (
            {"type": "feature", "feature": "orders", "percentile": True, "op": "eq", "value": 5},
            "a percentile is tested with gt, gte, lt or lte",
        ),
        (
            {"type": "persona", "personas": []},
            "List should have at least 1 item after validation, not 0",
        ),
        ({"type": "persona", "personas": [0]}, "Input should be greater than or equal to 1"),
        (
            {"type": "persona", "personas": ["Fashion buyers"]},
            'a persona is named by its id (a whole number); got "Fashion buyers"',
        ),
    ],
)
def test_precise_problems(raw: dict[str, Any], expected: str | None) -> None:
    found = problems(raw)
    if expected is None:  # no regular expressions: an unknown operator
        assert found[0]["path"] == "$.op"
        assert found[0]["problem"].startswith("Input should be 'eq', 'ne'")
    else:
        assert found[0]["problem"] == expected


def test_limits_are_checked_before_parsing_and_fast() -> None:
    wide = {"type": "or", "conditions": [trait("country", "eq", "DE")] * 10_000}
    deep: dict[str, Any] = trait("country", "eq", "DE")
    for _ in range(10_000):
        deep = {"type": "not", "condition": deep}
    started = time.perf_counter()
    assert problems(wide) == [{"path": "$", "problem": "a rule has at most 200 conditions"}]
    assert problems(deep)[0]["problem"] == "conditions nest at most 10 levels deep"
    assert time.perf_counter() - started < 2.0  # milliseconds when idle; the CI box is shared
    assert problems("{not json") == [{"path": "$", "problem": "the rule is not JSON"}]
    assert problems([1]) == [{"path": "$", "problem": "a condition is a JSON object"}]


def test_text_form() -> None:
    rule = r.parse_rule(
        {
            "type": "and",
            "conditions": [
                trait("country", "in", ["DE", "AT"]),
                {
                    "type": "event",
                    "event": "Product Viewed",
                    "where": [SHOES],
                    "at_least": 3,
                    "within_days": 30,
                },
                {
                    "type": "or",
                    "conditions": [
                        {"type": "rfm", "segments": ["Champions"]},
                        {"type": "segment", "segment_id": 4},
                    ],
                },
                {"type": "not", "condition": {"type": "consent", "purpose": "marketing_email"}},
                {"type": "spent", "op": "gt", "amount_minor": 10000, "within_days": 90},
            ],
        }
    )
    assert r.describe(rule, {4: "VIP"}) == (
        'country is one of ["DE", "AT"] and performed "Product Viewed" where category is "shoes" '
        'at least 3 times in the last 30 days and (RFM segment is one of ["Champions"] or in '
        'segment "VIP") and not consents to marketing_email and spent > 100.00 in the last 90 days'
    )
    assert r.topics(rule) == {"profile", "event:Product Viewed", "analytics", "orders"}
    assert r.time_based(rule)
    assert r.segment_refs(rule) == {4}
    assert r.parse_rule(r.dump_rule(rule)) == rule


def test_persona_condition_in_words_and_paths() -> None:
    rule = r.parse_rule(
        {
            "type": "or",
            "conditions": [
                trait("country", "eq", "DE"),
                {"type": "not", "condition": {"type": "persona", "personas": [2, 9]}},
            ],
        }
    )
    assert r.describe(rule, {}, {2: "Fashion buyers"}) == (
        'country is "DE" or not persona is one of ["Fashion buyers", #9]'
    )
    assert r.topics(rule) == {"profile", "personas"}
    assert not r.time_based(rule)
    assert [path for path, n in r.with_paths(rule) if isinstance(n, r.InPersona)] == [
        "$.conditions[1].condition"
    ]
    assert r.dump_rule(rule)["conditions"][1]["condition"] == {
        "type": "persona",
        "personas": [2, 9],
    }


# -- fuzzing ---------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
shaped = st.fixed_dictionaries(
    {"type": st.sampled_from(r.TYPES)},
    optional={
        "field": st.sampled_from([*r.TRAITS, "x"]),
        "feature": st.sampled_from([*r.FEATURES, "x"]),
        "score": st.sampled_from([*r.SCORES, "x"]),
        "op": st.sampled_from(["eq", "ne", "in", "gt", "between", "is_set", "contains", "regex"]),
        "value": json_values,
        "event": st.text(max_size=300),
        "where": st.lists(
            st.dictionaries(st.sampled_from(["property", "op", "value"]), json_values)
        ),
        "at_least": st.integers(),
        "within_days": st.integers(),
        "conditions": st.lists(json_values, max_size=3),
        "condition": json_values,
        "segments": st.lists(st.text(max_size=12), max_size=3),
        "purpose": st.text(max_size=20),
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(json_values, shaped))
def test_fuzzed_documents_are_rules_or_precise_errors(raw: Any) -> None:
    try:
        rule = r.parse_rule(raw)
    except ValidationFailed as exc:
        assert isinstance(exc.detail, list) and exc.detail
        for problem in exc.detail:
            assert set(problem) == {"path", "problem"}
            assert problem["path"].startswith("$")
            assert problem["problem"]
        return
    assert r.parse_rule(r.dump_rule(rule)) == rule
    r.describe(rule)


# rules built only from valid pieces: both evaluators must agree on every one
def _leaf() -> st.SearchStrategy[dict[str, Any]]:
    text_traits = st.sampled_from(["gender", "language", "country", "region", "city"])
    words = st.sampled_from(["DE", "FR", "female", "male", "en", "Paris", "a", "e", "Ba"])
    numbers = st.integers(min_value=0, max_value=100)
    return st.one_of(
        st.builds(
            lambda f, op, v: trait(f, op, v),
            text_traits,
            st.sampled_from(["eq", "ne", "contains", "starts_with", "ends_with"]),
            words,
        ),
        st.builds(
            lambda f, v: trait(f, "in", v), text_traits, st.lists(words, min_size=1, max_size=3)
        ),
        st.builds(
            lambda f, op: trait(f, op), text_traits, st.sampled_from(["is_set", "is_not_set"])
        ),
        st.builds(lambda op, v: trait("age", op, v), st.sampled_from(["lt", "gte", "eq"]), numbers),
        st.builds(
            lambda f, op, v: {"type": "feature", "feature": f, "op": op, "value": v * 300},
            st.sampled_from(["total_spend_minor", "recency_days", "orders"]),
            st.sampled_from(["gt", "lte", "ne"]),
            numbers,
        ),
        st.builds(
            lambda op, v: {
                "type": "feature",
                "feature": "total_spend_minor",
                "percentile": True,
                "op": op,
                "value": v,
            },
            st.sampled_from(["gt", "gte", "lt", "lte"]),
            numbers,
        ),
        st.builds(
            lambda s: {"type": "rfm", "segments": s},
            st.lists(st.sampled_from(r.RFM_SEGMENTS), min_size=1, max_size=3),
        ),
        st.builds(
            lambda name, k, days, shoes: {
                "type": "event",
                "event": name,
                "at_least": k,
                "within_days": days,
                "where": [SHOES] if shoes else [],
            },
            st.sampled_from(["Product Viewed", "Order Completed", "Product Added"]),
            st.integers(1, 3),
            st.sampled_from([None, 3, 30, 365]),
            st.booleans(),
        ),
        st.builds(
            lambda days: {"type": "not_done", "event": "Product Viewed", "since_days": days},
            st.integers(1, 200),
        ),
        st.builds(
            lambda c, days: {"type": "bought_category", "category_id": c, "within_days": days},
            st.integers(1, 4),
            st.sampled_from([None, 30, 365]),
        ),
        st.builds(
            lambda op, v, days: {
                "type": "spent",
                "op": op,
                "amount_minor": v * 500,
                "within_days": days,
            },
            st.sampled_from(["gt", "gte", "lt", "lte"]),
            numbers,
            st.sampled_from([None, 30, 365]),
        ),
        st.builds(
            lambda reasons, days: {"type": "visit", "reasons": reasons, "within_days": days},
            st.lists(st.sampled_from(r.VISIT_REASONS), min_size=1, max_size=3, unique=True),
            st.sampled_from([None, 7, 30]),
        ),
        st.builds(
            lambda ids: {"type": "persona", "personas": ids},
            st.lists(st.integers(1, 3), min_size=1, max_size=2),
        ),
        st.builds(
            lambda p, g: {"type": "consent", "purpose": p, "granted": g},
            st.sampled_from(["marketing_email", "analytics", "necessary"]),
            st.booleans(),
        ),
    )


trees = st.recursive(
    _leaf(),
    lambda inner: st.one_of(
        st.builds(
            lambda cs: {"type": "and", "conditions": cs}, st.lists(inner, min_size=1, max_size=3)
        ),
        st.builds(
            lambda cs: {"type": "or", "conditions": cs}, st.lists(inner, min_size=1, max_size=3)
        ),
        st.builds(lambda c: {"type": "not", "condition": c}, inner),
    ),
    max_leaves=6,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees)
def test_the_two_evaluators_agree(raw: dict[str, Any]) -> None:
    duck, local = both(r.parse_rule(raw))
    assert duck == local


@pytest.mark.parametrize(
    ("raw", "expected"),
    [c for c in CASES if "where" in c[0] or c[0]["type"] == "visit"],
    ids=lambda c: str(c)[:40],
)
def test_generic_json_path_agrees(raw: dict[str, Any], expected: set[int]) -> None:
    """Engines without DuckDB's JSON functions use Ibis' JSON operations: same members."""
    from patronage.segments.compiler import Compiler
    from tests.segments.dataset import engine, no_segments, percentiles

    eng = engine()
    try:
        tables = {n: eng.backend.table(n) for n in ("customers", "clock", "events", "visits")}
        compiler = Compiler(tables, rules=no_segments, percentile=percentiles)
        found = set(eng.members(compiler, r.parse_rule(raw)))
    finally:
        eng.close()
    assert found == expected
