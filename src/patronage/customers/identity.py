"""Identity resolution: which profile an anonymous id or user id belongs to, and merges.

Every id that points at a profile is a row of `identities`, unique on (kind, value). That
constraint is the arbiter when two requests meet the same new person at once: each claims
the id with INSERT … ON CONFLICT DO NOTHING, the loser reads the winner's row and throws its
own fresh profile away. No savepoints are needed (pysqlite's are unreliable), and the same
code is race-free on SQLite (one writer at a time) and PostgreSQL (the unique index waits for
the other transaction and then reports the conflict).

Merges never lose anything: events, orders, reviews, consents, identities and milestones move
to the surviving profile; profile fields follow the precedence documented in docs/collect.md;
the merged profile keeps its row (merged_into_id set) and a customer_merges row records it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, load_only
from sqlalchemy.orm.util import identity_key

from patronage.config import get_cipher, get_settings
from patronage.customers import pii
from patronage.customers.consent import DEFAULTS, Purpose
from patronage.customers.models import Consent, Customer, CustomerMerge, Identity, Milestone
from patronage.kit.clock import utcnow

USER_ID = "user_id"
ANONYMOUS_ID = "anonymous_id"
Key = tuple[str, str]

_CLEAR_FIELDS = ("gender", "language", "country", "region", "city", "postcode_prefix")
_PURPOSES = {p.value for p in Purpose}
_PII_FIELDS = ("email", "phone", "first_name", "last_name", "street", "birthday")


@dataclass(slots=True)
class ProfileFacts:
    """What a message says about its person. Personal fields end up encrypted."""

    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    street: str | None = None
    birthday: date | None = None
    gender: str | None = None
    language: str | None = None
    country: str | None = None
    region: str | None = None
    city: str | None = None
    postcode: str | None = None
    signup_at: datetime | None = None
    traits: dict[str, Any] = field(default_factory=dict)

    def has_personal(self) -> bool:
        return any(
            (self.email, self.phone, self.first_name, self.last_name, self.street, self.birthday)
        )

    def is_empty(self) -> bool:
        return not any(
            (
                self.email,
                self.phone,
                self.first_name,
                self.last_name,
                self.street,
                self.birthday,
                self.gender,
                self.language,
                self.country,
                self.region,
                self.city,
                self.postcode,
                self.signup_at,
                self.traits,
            )
        )


def _insert(session: Session, model: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


# built once: the hot path only binds values (compiled-statement cache hit)
_LOOKUP = (
    select(Identity.kind, Identity.value, Identity.customer_id, Consent.purpose, Consent.granted)
    .outerjoin(Consent, Consent.customer_id == Identity.customer_id)
    .where(
        or_(
            and_(Identity.kind == USER_ID, Identity.value.in_(bindparam("users", expanding=True))),
            and_(
                Identity.kind == ANONYMOUS_ID,
                Identity.value.in_(bindparam("anons", expanding=True)),
            ),
        )
    )
    .order_by(Consent.recorded_at, Consent.id)
)
_CLEAR = select(
    Customer.gender,
    Customer.language,
    Customer.country,
    Customer.region,
    Customer.city,
    Customer.postcode_prefix,
    Customer.signup_at,
    Customer.traits,
).where(Customer.id == bindparam("id"))
_PROFILE_COLUMNS = (
    Customer.id,
    Customer.user_id,
    Customer.is_anonymous,
    Customer.gender,
    Customer.language,
    Customer.country,
    Customer.region,
    Customer.city,
    Customer.postcode_prefix,
    Customer.signup_at,
    Customer.traits,
    Customer.updated_at,
)


class Resolver:
    """Resolves the ids of one batch of messages with one lookup query, creating, linking and
    merging profiles as the messages say. Keeps what it learnt for the rest of the batch."""

    def __init__(self, session: Session, source: str) -> None:
        self.session = session
        self.source = source[:64]
        self.known: dict[Key, int] = {}
        self.redirect: dict[int, int] = {}  # merged profile -> survivor, within this batch
        self._user_ids: dict[int, str | None] = {}
        self.consents: dict[int, dict[Purpose, bool]] = {}
        self.merge_on_email = get_settings().merge_on_email
        self._unadopted: list[str] = []

    # -- lookups ------------------------------------------------------------------------

    def preload(self, keys: set[Key], *, adopt: bool = True) -> None:
        """Every id of a batch, and the consents of their profiles, in one query.

        `adopt=False` only reads: the customers to adopt (see `_adopt`) wait for
        `adopt_pending`, called once the caller holds the write lock (on SQLite a write
        here, outside it, fails with "database is locked" under concurrent batches).
        """
        users = sorted(v for k, v in keys if k == USER_ID and (k, v) not in self.known)
        anons = sorted(v for k, v in keys if k == ANONYMOUS_ID and (k, v) not in self.known)
        connection = self.session.connection()
        for start in range(0, max(len(users), len(anons)), 500):
            rows = connection.execute(
                _LOOKUP,
                {"users": users[start : start + 500], "anons": anons[start : start + 500]},
            )
            for kind, value, customer_id, purpose, granted in rows:
                self.known[(kind, value)] = int(customer_id)
                said = self.consents.setdefault(int(customer_id), {})
                if purpose in _PURPOSES:
                    said[Purpose(purpose)] = bool(granted)
        unknown = [v for v in users if (USER_ID, v) not in self.known]
        if adopt:
            self._adopt(unknown)
        else:
            self._unadopted.extend(unknown)

    def adopt_pending(self) -> None:
        pending, self._unadopted = self._unadopted, []
        self._adopt([v for v in pending if (USER_ID, v) not in self.known])

    def _adopt(self, user_ids: list[str]) -> None:
        """Customers that carry a user_id but no identity row (created by an import, the REST
        API or before identities existed) get their row now, instead of a second profile that
        the unique user_id would refuse."""
        connection = self.session.connection()
        for start in range(0, len(user_ids), 500):
            rows = connection.execute(
                select(Customer.user_id, Customer.id, Customer.merged_into_id).where(
                    Customer.user_id.in_(user_ids[start : start + 500])
                )
            ).all()
            if not rows:
                continue
            owners = {str(u): int(m if m is not None else i) for u, i, m in rows}
            for user_id, customer_id in owners.items():
                self._claim(USER_ID, user_id, customer_id)
            self.consents.update(explicit_consents(self.session, set(owners.values())))

    def consents_of(self, customer_ids: set[int]) -> dict[int, dict[Purpose, bool]]:
        """What each customer said per purpose; one query for profiles not preloaded."""
        missing = {c for c in customer_ids if c not in self.consents}
        if missing:
            self.consents.update(explicit_consents(self.session, missing))
        return {c: dict(self.consents.get(c, {})) for c in customer_ids}

    def live(self, customer_id: int) -> int:
        while customer_id in self.redirect:
            customer_id = self.redirect[customer_id]
        return customer_id

    def _get(self, kind: str, value: str) -> int | None:
        found = self.known.get((kind, value))
        return self.live(found) if found is not None else None

    def _user_id_of(self, customer_id: int) -> str | None:
        if customer_id not in self._user_ids:
            self._user_ids[customer_id] = self.session.scalar(
                select(Customer.user_id).where(Customer.id == customer_id)
            )
        return self._user_ids[customer_id]

    # -- creating and claiming ----------------------------------------------------------

    def _new_customer(self, anonymous: bool) -> int:
        now = utcnow()
        stmt = (
            _insert(self.session, Customer)
            .values(
                is_anonymous=anonymous,
                traits={},
                key_version=get_cipher().keyring.active,
                signup_at=None if anonymous else now,
                created_at=now,
                updated_at=now,
            )
            .returning(Customer.id)
        )
        customer_id = int(self.session.execute(stmt).scalar_one())
        self._user_ids[customer_id] = None
        return customer_id

    def _claim(self, kind: str, value: str, customer_id: int) -> int:
        """Point (kind, value) at `customer_id` unless someone already has it: the owner."""
        stmt = (
            _insert(self.session, Identity)
            .values(
                customer_id=customer_id,
                kind=kind,
                value=value,
                source=self.source,
                first_seen_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["kind", "value"])
            .returning(Identity.customer_id)
        )
        inserted = self.session.execute(stmt).scalar_one_or_none()
        if inserted is not None:
            owner = int(inserted)
        else:
            owner = int(
                self.session.execute(
                    select(Identity.customer_id).where(
                        Identity.kind == kind, Identity.value == value
                    )
                ).scalar_one()
            )
        self.known[(kind, value)] = owner
        return self.live(owner)

    def _set_user_id(self, customer_id: int, user_id: str) -> None:
        self.session.execute(
            update(Customer)
            .where(Customer.id == customer_id, Customer.user_id.is_(None))
            .values(user_id=user_id, is_anonymous=False, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        self._user_ids[customer_id] = user_id

    def _ensure(self, kind: str, value: str) -> int:
        found = self._get(kind, value)
        if found is not None:
            return found
        fresh = self._new_customer(anonymous=kind == ANONYMOUS_ID)
        owner = self._claim(kind, value, fresh)
        if owner != fresh:  # another request created this person first: use theirs
            self.session.execute(delete(Customer).where(Customer.id == fresh))
        elif kind == USER_ID:
            self._set_user_id(fresh, value)
        return owner

    def create_new(self, people: list[tuple[str | None, str | None]]) -> None:
        """Profiles for the new people of a batch, in a few statements whatever their number.

        `people` are (user_id, anonymous_id) pairs of messages. Pairs whose ids are all
        unknown and appear in no other pair are created here; the rest (and any id another
        request claimed meanwhile) is left to `customer_for`, one message at a time.
        """
        seen: dict[Key, int] = {}
        pairs: dict[tuple[str | None, str | None], list[Key]] = {}
        for user_id, anonymous_id in set(people):
            keys: list[Key] = []
            if user_id:
                keys.append((USER_ID, user_id))
            if anonymous_id:
                keys.append((ANONYMOUS_ID, anonymous_id))
            for key in keys:  # counted over every pair: an id shared by two is not simple
                seen[key] = seen.get(key, 0) + 1
            if keys and not any(k in self.known for k in keys):
                pairs[(user_id, anonymous_id)] = keys
        todo = [
            (pair, keys)
            for pair, keys in sorted(pairs.items(), key=lambda p: p[1])
            if all(seen[k] == 1 for k in keys)
        ]
        if not todo:
            return
        now = utcnow()
        version = get_cipher().keyring.active
        rows: list[dict[str, Any]] = [
            {
                "is_anonymous": user_id is None,
                "traits": {},
                "key_version": version,
                "signup_at": None if user_id is None else now,
                "created_at": now,
                "updated_at": now,
            }
            for (user_id, _), _ in todo
        ]
        stmt = insert(Customer).returning(Customer.id, sort_by_parameter_order=True)
        ids = [int(i) for i in self.session.scalars(stmt, rows)]
        claims: list[dict[str, Any]] = [
            {
                "customer_id": cid,
                "kind": kind,
                "value": value,
                "source": self.source,
                "first_seen_at": now,
            }
            for cid, (_, keys) in zip(ids, todo, strict=True)
            for kind, value in keys
        ]
        won: dict[Key, int] = {}
        claim = (
            _insert(self.session, Identity)
            .on_conflict_do_nothing(index_elements=["kind", "value"])
            .returning(Identity.kind, Identity.value, Identity.customer_id)
        )
        for kind, value, cid in self.session.execute(claim, claims):
            won[(kind, value)] = int(cid)
        lost: set[Key] = {
            (str(c["kind"]), str(c["value"])) for c in claims if (c["kind"], c["value"]) not in won
        }
        self.known.update(won)
        if lost:  # another request created them first: theirs are the profiles
            self.preload(lost)
        named = []
        orphans = []
        for cid, ((user_id, _), keys) in zip(ids, todo, strict=True):
            self._user_ids[cid] = None
            self.consents[cid] = {}
            if not any(k in won for k in keys):
                orphans.append(cid)
            elif user_id and (USER_ID, user_id) in won:
                named.append({"id": cid, "user_id": user_id, "is_anonymous": False})
                self._user_ids[cid] = user_id
        if named:
            self.session.execute(update(Customer), named)
        if orphans:
            self.session.execute(delete(Customer).where(Customer.id.in_(orphans)))

    # -- what messages say --------------------------------------------------------------

    def customer_for(self, user_id: str | None, anonymous_id: str | None) -> int:
        """The profile of a message; both ids on one message link them (stitching)."""
        if not user_id:
            assert anonymous_id
            return self._ensure(ANONYMOUS_ID, anonymous_id)
        known = self._get(USER_ID, user_id)
        if not anonymous_id:
            return known if known is not None else self._ensure(USER_ID, user_id)
        anon = self._get(ANONYMOUS_ID, anonymous_id)
        if known is not None and anon is not None:
            return known if known == anon else self._stitch(anon, known)
        if known is not None:
            owner = self._claim(ANONYMOUS_ID, anonymous_id, known)
            return known if owner == known else self._stitch(owner, known)
        if anon is not None and self._user_id_of(anon) is None:
            # the anonymous visitor signs in: the anonymous profile becomes the known one
            owner = self._claim(USER_ID, user_id, anon)
            if owner == anon:
                self._set_user_id(anon, user_id)
                return anon
            return self._stitch(anon, owner)
        customer = self._ensure(USER_ID, user_id)
        if anon is None:
            owner = self._claim(ANONYMOUS_ID, anonymous_id, customer)
            if owner != customer:
                return self._stitch(owner, customer)
        return customer

    def _stitch(self, anonymous: int, known: int) -> int:
        """An anonymous history joins the known profile; a device shared by two known
        people (the anonymous id already belongs to someone else) links nothing."""
        if anonymous != known and self._user_id_of(anonymous) is None:
            return self.merge(anonymous, known, "stitch")
        return known

    def alias(self, previous_id: str, user_id: str, anonymous_id: str | None) -> int:
        """`alias` joins two ids: the previous id's profile merges into the user's."""
        # an unknown previous id is taken for the anonymous id it usually is (analytics.js
        # aliases the visitor's anonymous id on sign-up), unless the message says otherwise
        prev_kind = USER_ID if anonymous_id and anonymous_id != previous_id else ANONYMOUS_ID
        previous = self._get(USER_ID, previous_id)
        if previous is None:
            previous = self._get(ANONYMOUS_ID, previous_id)
        target = self._get(USER_ID, user_id)
        if previous is not None and target is not None:
            return target if previous == target else self.merge(previous, target, "alias")
        if previous is not None:
            owner = self._claim(USER_ID, user_id, previous)
            if owner != previous:
                return self.merge(previous, owner, "alias")
            if self._user_id_of(previous) is None:
                self._set_user_id(previous, user_id)
            return previous
        customer = self._ensure(USER_ID, user_id)
        owner = self._claim(prev_kind, previous_id, customer)
        return customer if owner == customer else self.merge(owner, customer, "alias")

    # -- profile facts ------------------------------------------------------------------

    def apply_profile(self, customer_id: int, facts: ProfileFacts, *, overwrite: bool) -> int:
        """Write what a message says about its person; returns the profile's id (a match
        on email may merge it into another profile). `overwrite=False` only fills gaps."""
        customer_id = self.live(customer_id)
        if facts.email and self.merge_on_email:
            other = self._email_owner(facts.email, customer_id)
            if other is not None:
                loser, survivor = self._precedence(customer_id, other)
                customer_id = self.merge(loser, survivor, "email")
        if facts.has_personal():
            customer = self.session.get(
                Customer, customer_id, options=[load_only(*_PROFILE_COLUMNS)]
            )
            if customer is not None:
                _write_facts(self.session, customer, facts, overwrite=overwrite)
        else:  # clear traits only (most identifies): no ORM object, no decryption
            _write_clear_facts(self.session, customer_id, facts, overwrite=overwrite)
        return customer_id

    def _email_owner(self, email: str, customer_id: int) -> int | None:
        found = self.session.scalar(
            select(Customer.id)
            .where(
                Customer.email_bidx == pii.email_index(email),
                Customer.merged_into_id.is_(None),
                Customer.id != customer_id,
            )
            .order_by(Customer.id)
            .limit(1)
        )
        return int(found) if found is not None else None

    def _precedence(self, a: int, b: int) -> tuple[int, int]:
        """(loser, survivor): a known profile survives an anonymous one, else the older."""
        known_a = self._user_id_of(a) is not None
        known_b = self._user_id_of(b) is not None
        if known_a != known_b:
            return (b, a) if known_a else (a, b)
        return (max(a, b), min(a, b))

    # -- merging ------------------------------------------------------------------------

    def merge(self, loser_id: int, survivor_id: int, reason: str) -> int:
        loser_id, survivor_id = self.live(loser_id), self.live(survivor_id)
        if loser_id == survivor_id:
            return survivor_id
        session = self.session
        session.flush()
        ids = sorted((loser_id, survivor_id))
        lock = select(Customer).where(Customer.id.in_(ids)).order_by(Customer.id)
        if session.get_bind().dialect.name == "postgresql":
            lock = lock.with_for_update()
        rows = {c.id: c for c in session.scalars(lock.execution_options(populate_existing=True))}
        loser, survivor = rows.get(loser_id), rows.get(survivor_id)
        if loser is None or survivor is None:
            return survivor_id
        if survivor.merged_into_id is not None:  # merged meanwhile: follow it
            self.redirect[survivor_id] = survivor.merged_into_id
            return self.merge(loser_id, survivor.merged_into_id, reason)
        if loser.merged_into_id is not None:
            self.redirect[loser_id] = loser.merged_into_id
            return self.merge(loser.merged_into_id, survivor_id, reason)
        details = _merge_rows(session, loser, survivor)
        details["reason"] = reason
        session.add(
            CustomerMerge(
                from_customer_id=loser_id,
                into_customer_id=survivor_id,
                reason=reason,
                details=details,
                merged_at=utcnow(),
            )
        )
        session.flush()
        self.redirect[loser_id] = survivor_id
        for key, owner in self.known.items():
            if owner == loser_id:
                self.known[key] = survivor_id
        self._user_ids[survivor_id] = survivor.user_id
        return survivor_id


def _merge_rows(session: Session, loser: Customer, survivor: Customer) -> dict[str, Any]:
    """Move everything of `loser` to `survivor`; the survivor's own values take precedence,
    the loser's fill the gaps (documented in docs/collect.md)."""
    moved: dict[str, Any] = {}
    if survivor.user_id is None and loser.user_id is not None:
        user_id, loser.user_id = loser.user_id, None
        session.flush()
        survivor.user_id = user_id
    survivor.is_anonymous = survivor.is_anonymous and loser.is_anonymous
    for name in _PII_FIELDS:
        if getattr(survivor, name) is None and getattr(loser, name) is not None:
            if name == "email":
                pii.set_email(survivor, loser.email)
            elif name == "phone":
                pii.set_phone(survivor, loser.phone)
            else:
                setattr(survivor, name, getattr(loser, name))
                if name == "birthday":
                    survivor.birth_year = loser.birth_year
    for name in _CLEAR_FIELDS:
        if getattr(survivor, name) is None:
            setattr(survivor, name, getattr(loser, name))
    if loser.signup_at and (survivor.signup_at is None or loser.signup_at < survivor.signup_at):
        survivor.signup_at = loser.signup_at
    survivor.traits = {**(loser.traits or {}), **(survivor.traits or {})}
    survivor.updated_at = utcnow()
    loser.merged_into_id = survivor.id
    loser.updated_at = utcnow()
    session.flush()
    moves = {
        "identities": update(Identity).where(Identity.customer_id == loser.id),
        "consents": update(Consent).where(Consent.customer_id == loser.id),
    }
    for label, stmt in moves.items():
        result = session.execute(
            stmt.values(customer_id=survivor.id).execution_options(synchronize_session=False)
        )
        moved[label] = int(getattr(result, "rowcount", 0) or 0)
    have = {
        (m.kind, m.label)
        for m in session.scalars(select(Milestone).where(Milestone.customer_id == survivor.id))
    }
    count = 0
    for milestone in session.scalars(select(Milestone).where(Milestone.customer_id == loser.id)):
        if (milestone.kind, milestone.label) not in have:
            milestone.customer_id = survivor.id
            count += 1
    moved["milestones"] = count
    session.execute(
        update(Customer)
        .where(Customer.merged_into_id == loser.id, Customer.id != survivor.id)
        .values(merged_into_id=survivor.id)
        .execution_options(synchronize_session=False)
    )
    # imported here: collect.service -> collect.ingest -> customers.service -> this module
    from patronage.collect import service as collect_service
    from patronage.orders import service as orders_service

    moved["events"] = collect_service.reassign_events(session, loser.id, survivor.id)
    moved.update(orders_service.reassign_customer(session, loser.id, survivor.id))
    return moved


def _write_facts(
    session: Session, customer: Customer, facts: ProfileFacts, *, overwrite: bool
) -> None:
    def wanted(current: object, new: object) -> bool:
        return new is not None and (overwrite or current is None) and new != current

    # personal columns are loaded (and decrypted) only when the message has a value for them
    if facts.email is not None and wanted(customer.email, facts.email):
        pii.set_email(customer, facts.email)
    if facts.phone is not None and wanted(customer.phone, facts.phone):
        pii.set_phone(customer, facts.phone)
    for name in ("first_name", "last_name", "street"):
        if getattr(facts, name) is not None and wanted(
            getattr(customer, name), getattr(facts, name)
        ):
            setattr(customer, name, getattr(facts, name))
    if facts.birthday is not None and wanted(customer.birthday, facts.birthday.isoformat()):
        pii.set_birthday(customer, facts.birthday)
        _birthday_milestone(session, customer.id, facts.birthday)
    for name in ("gender", "language", "country", "region", "city"):
        if wanted(getattr(customer, name), getattr(facts, name)):
            setattr(customer, name, getattr(facts, name))
    prefix = facts.postcode[:3] if facts.postcode else None
    if wanted(customer.postcode_prefix, prefix):
        customer.postcode_prefix = prefix
    if facts.signup_at is not None and (customer.signup_at is None or overwrite):
        customer.signup_at = facts.signup_at
    if facts.traits:
        current = dict(customer.traits or {})
        merged = {**current, **facts.traits} if overwrite else {**facts.traits, **current}
        if merged != current:
            customer.traits = merged
    if session.is_modified(customer):
        customer.updated_at = utcnow()
    session.flush()


def _write_clear_facts(
    session: Session, customer_id: int, facts: ProfileFacts, *, overwrite: bool
) -> None:
    row = session.connection().execute(_CLEAR, {"id": customer_id}).first()
    if row is None:
        return
    current = row._mapping
    changes: dict[str, Any] = {}
    wanted = {
        "gender": facts.gender,
        "language": facts.language,
        "country": facts.country,
        "region": facts.region,
        "city": facts.city,
        "postcode_prefix": facts.postcode[:3] if facts.postcode else None,
        "signup_at": facts.signup_at,
    }
    for name, value in wanted.items():
        if value is not None and (overwrite or current[name] is None) and value != current[name]:
            changes[name] = value
    if facts.traits:
        traits = dict(current["traits"] or {})
        merged = {**traits, **facts.traits} if overwrite else {**facts.traits, **traits}
        if merged != traits:
            changes["traits"] = merged
    if changes:
        session.execute(
            update(Customer)
            .where(Customer.id == customer_id)
            .values(**changes, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        loaded = session.identity_map.get(identity_key(Customer, customer_id))
        if loaded is not None:  # a merge earlier in the batch loaded it: not stale
            session.expire(loaded)


def _birthday_milestone(session: Session, customer_id: int, birthday: date) -> None:
    existing = session.scalar(
        select(Milestone).where(Milestone.customer_id == customer_id, Milestone.kind == "birthday")
    )
    if existing is None:
        session.add(
            Milestone(
                customer_id=customer_id, kind="birthday", month=birthday.month, day=birthday.day
            )
        )
    else:
        existing.month, existing.day = birthday.month, birthday.day


def may_use_many(session: Session, customer_ids: set[int], purpose: Purpose) -> dict[int, bool]:
    """`may_use` for many customers in one query (the tracking API asks once per batch)."""
    result = dict.fromkeys(customer_ids, DEFAULTS[purpose])
    ids = sorted(customer_ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows = session.execute(
            select(Consent.customer_id, Consent.granted)
            .where(Consent.customer_id.in_(chunk), Consent.purpose == purpose.value)
            .order_by(Consent.recorded_at, Consent.id)
        )
        for customer_id, granted in rows:  # the newest record wins, as in consent_states
            result[int(customer_id)] = bool(granted)
    return result


def explicit_consents(session: Session, customer_ids: set[int]) -> dict[int, dict[Purpose, bool]]:
    """What each customer said per purpose (the newest record), without defaults: one query
    for a whole batch of customers."""
    result: dict[int, dict[Purpose, bool]] = {cid: {} for cid in customer_ids}
    ids = sorted(customer_ids)
    for start in range(0, len(ids), 500):
        rows = session.connection().execute(_CONSENTS, {"ids": ids[start : start + 500]})
        for customer_id, purpose, granted in rows:
            if purpose in _PURPOSES:
                result[int(customer_id)][Purpose(purpose)] = bool(granted)
    return result


_CONSENTS = (
    select(Consent.customer_id, Consent.purpose, Consent.granted)
    .where(Consent.customer_id.in_(bindparam("ids", expanding=True)))
    .order_by(Consent.recorded_at, Consent.id)
)


def record_consents(session: Session, changes: list[tuple[int, Purpose, bool, str]]) -> None:
    """Append many consent records at once (customer id, purpose, granted, source); the
    customers are known to exist (the tracking API just resolved them)."""
    if not changes:
        return
    now = utcnow()
    session.execute(
        insert(Consent),
        [
            {
                "customer_id": cid,
                "purpose": purpose.value,
                "granted": granted,
                "source": source[:64],
                "recorded_at": now,
            }
            for cid, purpose, granted, source in changes
        ],
    )
