"""The demo shop's customers: who they are, where they live, what they agreed to, and the
hidden traits that drive how they shop (rates, loyalty, tastes, habits).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from patronage.demo import reference as ref
from patronage.demo.catalog import Catalog, ascii_fold
from patronage.demo.timeline import DAY, HOUR, HOUR_PEAKS, Timeline

GENDERS = np.array(["female", "male", "diverse", ""], dtype=object)
GENDER_P = (0.49, 0.47, 0.01, 0.03)
PAYMENT_METHODS = np.array(["card", "paypal", "invoice", "gift_card"], dtype=object)
PAYMENT_P = (0.45, 0.33, 0.15, 0.07)


@dataclass
class People:
    ids: np.ndarray
    columns: dict[str, object]  # the customers table, personal data in clear
    consents: dict[str, object]
    milestones: dict[str, object]
    identities: dict[str, object]
    # hidden traits
    country: np.ndarray  # index into reference.COUNTRIES
    remote: np.ndarray  # lives outside the metropolitan city
    female: np.ndarray  # +1 female, -1 male, 0 otherwise
    age: np.ndarray
    signup: np.ndarray
    birthday_doy: np.ndarray  # day of year of the birthday, -1 when unknown
    locale: np.ndarray  # index into `locales`
    locales: list[str]
    device: list[str]  # anonymous id of the customer's browser / app
    app_user: np.ndarray
    pay_method: np.ndarray  # preferred payment method index
    hour: np.ndarray  # preferred hour of day
    deal_seeker: np.ndarray  # chance to use a coupon on an ordinary order
    returner: np.ndarray  # multiplies the return probability
    leaves: np.ndarray  # (n, 3): primary, secondary, tertiary leaf
    tracked_from: np.ndarray  # epoch seconds from which events are recorded (analytics consent)
    marketing: np.ndarray  # marketing e-mail consent, current state


def make_people(
    rng: np.random.Generator, catalog: Catalog, tl: Timeline, first_id: int, n: int
) -> People:
    ids = np.arange(first_id, first_id + n)
    countries = ref.COUNTRIES
    country = rng.choice(len(countries), n, p=_norm([c.weight for c in countries]))
    gender = rng.choice(len(GENDERS), n, p=GENDER_P)
    female = np.select([gender == 0, gender == 1], [1, -1], 0)
    age = np.clip(rng.normal(39, 13, n), 18, 88)

    # signups grow over time: more customers joined recently
    u = rng.random(n)
    signup_day = np.where(u < 0.25, rng.random(n), rng.random(n) ** 0.65) * (tl.days - 1)
    hour = _preferred_hours(rng, n)
    signup = tl.start + signup_day.astype(np.int64) * DAY + _time_of_day(rng, hour)
    signup = np.minimum(signup, tl.end - 60)

    remote = rng.random(n) < 0.42
    town = rng.integers(0, 1 << 30, n)
    city = np.full(n, None, dtype=object)
    region_name = np.full(n, None, dtype=object)
    postcode = np.full(n, None, dtype=object)
    first = np.full(n, "", dtype=object)
    last = np.full(n, "", dtype=object)
    street = np.full(n, None, dtype=object)
    phone = np.full(n, None, dtype=object)
    language = np.full(n, None, dtype=object)
    has_phone = rng.random(n) < 0.82
    has_street = rng.random(n) < 0.93
    house = rng.integers(1, 160, n)
    digits = rng.integers(0, 10_000_000, n)
    mobile = rng.integers(0, 10, n)
    first_pick = rng.integers(0, 1 << 30, n)
    last_pick = rng.integers(0, 1 << 30, n)
    street_pick = rng.integers(0, 1 << 30, n)
    lang_u = rng.random(n)
    locales: list[str] = []
    locale = np.zeros(n, dtype=np.int64)
    for c, spec in enumerate(countries):
        members = np.flatnonzero(country == c)
        if members.size == 0:
            continue
        m = members.size
        region = rng.choice(len(spec.regions), m, p=_norm([r.weight for r in spec.regions]))
        towns = np.array([t for r in spec.regions for t in r.towns], dtype=object)
        sizes = np.array([len(r.towns) for r in spec.regions])
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        town_of = towns[offsets[region] + town[members] % sizes[region]]
        metro = np.array([r.metro for r in spec.regions], dtype=object)[region]
        city[members] = np.where(remote[members], town_of, metro)
        region_name[members] = np.array([r.name for r in spec.regions], dtype=object)[region]
        postcode[members] = np.array([r.postcode for r in spec.regions], dtype=object)[region]
        g = female[members]
        use_female = (g > 0) | ((g == 0) & (town[members] % 2 == 1))
        females = np.array(spec.female, dtype=object)
        males = np.array(spec.male, dtype=object)
        pick = first_pick[members]
        first[members] = np.where(
            use_female, females[pick % len(females)], males[pick % len(males)]
        )
        last[members] = np.array(spec.last, dtype=object)[last_pick[members] % len(spec.last)]
        names = np.array(spec.streets, dtype=object)[street_pick[members] % len(spec.streets)]
        numbers = house[members].tolist()
        if spec.street_first:
            texts = [f"{a} {b}" for a, b in zip(names.tolist(), numbers, strict=True)]
        else:
            texts = [f"{b} {a}" for a, b in zip(names.tolist(), numbers, strict=True)]
        streets = np.array(texts, dtype=object)
        streets[~has_street[members]] = None
        street[members] = streets
        phones = [
            f"{spec.phone}{a} {b:07d}"
            for a, b in zip(mobile[members].tolist(), digits[members].tolist(), strict=True)
        ]
        numbers_ = np.array(phones, dtype=object)
        numbers_[~has_phone[members]] = None
        phone[members] = numbers_
        cumulative_lang = np.cumsum([p for _, p in spec.languages])
        which = np.minimum(
            np.searchsorted(cumulative_lang, lang_u[members]), len(spec.languages) - 1
        )
        for k, (lang, _) in enumerate(spec.languages):
            chosen = members[which == k]
            language[chosen] = lang
            key = f"{lang}-{spec.code}"
            if key not in locales:
                locales.append(key)
            locale[chosen] = locales.index(key)

    emails = [
        f"{ascii_fold(f)}.{ascii_fold(s)}.{i}@example.com"
        for f, s, i in zip(first.tolist(), last.tolist(), ids.tolist(), strict=True)
    ]
    has_birthday = rng.random(n) < 0.9
    born = tl.end - (age * 365.25 * DAY).astype(np.int64) - rng.integers(0, 365 * DAY, n)
    born_day = born.astype("datetime64[s]").astype("datetime64[D]")
    birthday_text = _iso_days(born_day)
    birthday = [b if has else None for b, has in zip(birthday_text, has_birthday, strict=True)]
    birth_year = born_day.astype("datetime64[Y]").astype(np.int64) + 1970
    month = born_day.astype("datetime64[M]").astype(np.int64) % 12 + 1
    day = (born_day - born_day.astype("datetime64[M]")).astype(np.int64) + 1
    doy = (born_day - born_day.astype("datetime64[Y]")).astype(np.int64)
    acquisition = rng.choice(len(ref.ACQUISITION), n, p=_norm(ref.ACQUISITION_WEIGHTS))
    traits = np.array([f'{{"acquisition":"{a}"}}' for a in ref.ACQUISITION], dtype=object)
    signup64 = signup.astype("datetime64[s]")
    columns: dict[str, object] = {
        "id": ids,
        "user_id": [f"C{i:08d}" for i in ids.tolist()],
        "email": emails,
        "phone": phone.tolist(),
        "first_name": first.tolist(),
        "last_name": last.tolist(),
        "street": street.tolist(),
        "birthday": birthday,
        "birth_year": [
            int(y) if has else None for y, has in zip(birth_year, has_birthday, strict=True)
        ],
        "gender": [g or None for g in GENDERS[gender].tolist()],
        "language": language.tolist(),
        "country": np.array([c.code for c in countries], dtype=object)[country].tolist(),
        "region": region_name.tolist(),
        "city": city.tolist(),
        "postcode_prefix": postcode.tolist(),
        "signup_at": signup64,
        "traits": traits[acquisition],
        "is_anonymous": np.zeros(n, dtype=bool),
        "created_at": signup64,
        "updated_at": signup64,
    }

    # consent at signup; some change their mind later (the newest row is the current state)
    analytics = rng.random(n) < 0.6
    personal = np.where(analytics, rng.random(n) < 0.6, rng.random(n) < 0.1)
    marketing = rng.random(n) < 0.3
    necessary = rng.random(n) < 0.98
    late_grant = ~analytics & (rng.random(n) < 0.08)
    late_at = signup + (rng.random(n) * (tl.end - signup)).astype(np.int64)
    revoked = marketing & (rng.random(n) < 0.1)
    revoke_at = signup + (rng.random(n) * (tl.end - signup)).astype(np.int64)
    purposes = (
        ("necessary", necessary, np.ones(n, dtype=bool), signup, "signup"),
        ("analytics", np.ones(n, dtype=bool), analytics, signup, "signup"),
        ("personalisation", np.ones(n, dtype=bool), personal, signup, "signup"),
        ("marketing_email", np.ones(n, dtype=bool), marketing, signup, "signup"),
        ("analytics", late_grant, np.ones(n, dtype=bool), late_at, "cookie_banner"),
        ("marketing_email", revoked, np.zeros(n, dtype=bool), revoke_at, "preference_center"),
    )
    cons_customer, cons_purpose, cons_granted, cons_at, cons_source = [], [], [], [], []
    for purpose, present, granted, at, source in purposes:
        rows = np.flatnonzero(present)
        cons_customer.append(ids[rows])
        cons_purpose.extend([purpose] * rows.size)
        cons_granted.append(granted[rows])
        cons_at.append(at[rows])
        cons_source.extend([source] * rows.size)
    cons_order = np.lexsort((np.concatenate(cons_at), np.concatenate(cons_customer)))
    consents: dict[str, object] = {
        "customer_id": np.concatenate(cons_customer)[cons_order],
        "purpose": np.array(cons_purpose, dtype=object)[cons_order],
        "granted": np.concatenate(cons_granted)[cons_order],
        "source": np.array(cons_source, dtype=object)[cons_order],
        "recorded_at": np.concatenate(cons_at)[cons_order].astype("datetime64[s]"),
    }
    tracked_from = np.where(analytics, signup, np.where(late_grant, late_at, tl.end + DAY))

    with_birthday = np.flatnonzero(has_birthday)
    signup_days = signup64.astype("datetime64[D]")
    signup_month = signup_days.astype("datetime64[M]").astype(np.int64) % 12 + 1
    signup_dom = (signup_days - signup_days.astype("datetime64[M]")).astype(np.int64) + 1
    signup_year = signup_days.astype("datetime64[Y]").astype(np.int64) + 1970
    ms_customer = np.concatenate([ids[with_birthday], ids])
    ms_order = np.argsort(ms_customer, kind="stable")
    milestones: dict[str, object] = {
        "customer_id": ms_customer[ms_order],
        "kind": np.array(["birthday"] * with_birthday.size + ["signup_anniversary"] * n)[ms_order],
        "label": [None] * (with_birthday.size + n),
        "month": np.concatenate([month[with_birthday], signup_month])[ms_order],
        "day": np.concatenate([day[with_birthday], signup_dom])[ms_order],
        "year": [None] * with_birthday.size + signup_year.tolist(),
    }
    year_list = milestones["year"]
    milestones["year"] = [year_list[i] for i in ms_order.tolist()]  # type: ignore[index]

    hi, lo = rng.integers(0, 1 << 62, n), rng.integers(0, 1 << 62, n)
    device = [_uuid(a, b) for a, b in zip(hi.tolist(), lo.tolist(), strict=True)]
    app_user = rng.random(n) < 0.35
    tracked = np.flatnonzero(tracked_from < tl.end)
    tracked_ids = ids[tracked]
    id_customer = np.concatenate([ids, tracked_ids])
    id_order = np.argsort(id_customer, kind="stable")  # by customer: user id, then device
    user_ids: list[str] = columns["user_id"]  # type: ignore[assignment]
    id_values = np.array(user_ids + [device[i] for i in tracked.tolist()], dtype=object)
    id_source = np.array(
        ["signup"] * n + ["app" if app_user[i] else "web" for i in tracked.tolist()], dtype=object
    )
    seen = np.concatenate([signup, np.maximum(tracked_from[tracked], signup[tracked])])
    identities: dict[str, object] = {
        "customer_id": id_customer[id_order],
        "kind": np.array(["user_id"] * n + ["anonymous_id"] * tracked.size, dtype=object)[id_order],
        "value": id_values[id_order],
        "source": id_source[id_order],
        "first_seen_at": seen[id_order].astype("datetime64[s]"),
    }

    return People(
        ids=ids,
        columns=columns,
        consents=consents,
        milestones=milestones,
        identities=identities,
        country=country,
        remote=remote,
        female=female,
        age=age,
        signup=signup,
        birthday_doy=np.where(has_birthday, doy, -1),
        locale=locale,
        locales=locales,
        device=device,
        app_user=app_user,
        pay_method=rng.choice(len(PAYMENT_METHODS), n, p=PAYMENT_P),
        hour=hour,
        deal_seeker=rng.beta(0.6, 7.0, n),
        returner=rng.lognormal(0.0, 0.5, n) / np.exp(0.125),
        leaves=_tastes(rng, catalog, female, age, n),
        tracked_from=tracked_from,
        marketing=marketing & ~revoked,
    )


def _tastes(
    rng: np.random.Generator, catalog: Catalog, female: np.ndarray, age: np.ndarray, n: int
) -> np.ndarray:
    """Three favourite leaves per customer: the primary one by popularity, gender and age;
    the secondary usually related to it; the tertiary (where customers branch out) anywhere."""
    leaves = ref.LEAVES
    lean = np.array([leaf.female for leaf in leaves])
    typical_age = np.array([leaf.age for leaf in leaves])
    score = (
        np.log(catalog.leaf_weight)[None, :]
        + 1.3 * female[:, None] * lean[None, :]
        - ((age[:, None] - typical_age[None, :]) / 14.0) ** 2
        + rng.gumbel(size=(n, len(leaves)))
    )
    primary = np.argmax(score, axis=1)
    score[np.arange(n), primary] = -np.inf
    other = np.argmax(score, axis=1)
    score[np.arange(n), other] = -np.inf
    third = np.argmax(score, axis=1)
    related_pick = rng.integers(0, 1 << 30, n)
    secondary = np.array(
        [
            catalog.related[p][k % len(catalog.related[p])]
            for p, k in zip(primary, related_pick, strict=True)
        ]
    )
    secondary = np.where(rng.random(n) < 0.65, secondary, other)
    third = np.where(third == secondary, other, third)
    return np.stack([primary, secondary, third], axis=1)


def _preferred_hours(rng: np.random.Generator, n: int) -> np.ndarray:
    centres = np.array([c for c, _ in HOUR_PEAKS])
    shares = _norm([s for _, s in HOUR_PEAKS])
    return centres[rng.choice(len(centres), n, p=shares)] + rng.normal(0, 0.8, n)


def _time_of_day(rng: np.random.Generator, hour: np.ndarray) -> np.ndarray:
    """Seconds after midnight around each preferred hour."""
    h = np.mod(hour + rng.normal(0, 1.8, len(hour)), 24.0)
    return (h * HOUR).astype(np.int64)


def time_of_day(rng: np.random.Generator, hour: np.ndarray) -> np.ndarray:
    return _time_of_day(rng, hour)


def _uuid(a: int, b: int) -> str:
    h = f"{a:016x}{b:016x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def _iso_days(days: np.ndarray) -> list[str]:
    unique, inverse = np.unique(days, return_inverse=True)
    texts = np.array(np.datetime_as_string(unique), dtype=object)
    return texts[inverse].tolist()  # type: ignore[no-any-return]


def _norm(weights: object) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return w / w.sum()  # type: ignore[no-any-return]
