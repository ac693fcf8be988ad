"""Personal data and consent in tracked messages.

- Personal traits (email, phone, names, street, birthday) are taken out of the message and
  handed to the profile (encrypted there); the stored event keeps the marker "[pii]" in their
  place. Any other string that looks like an email address is replaced by the marker too.
- `context.consent.categoryPreferences` is mapped to patronage's purposes (CATEGORY_PURPOSES).
- Without analytics consent, network and page details are removed from the stored event.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from patronage.customers import service as customers_service
from patronage.customers.consent import Purpose

PII_MARKER = "[pii]"
_EMAIL = re.compile(r"[^@\s\"'<>(),;:\[\]]+@[^@\s\"'<>(),;:\[\]]+\.[A-Za-z]{2,}")
_EMAIL_BYTES = re.compile(rb"[^@\s\"'<>(),;:\[\]]+@[^@\s\"'<>(),;:\[\]]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"^\+?[\d\s().-]{5,32}$")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
_LANGUAGE = re.compile(r"^([a-zA-Z]{2})(?:[-_]([a-zA-Z]{2}))?$")

# trait names (camelCase as the spec, snake_case as some SDKs) -> ProfileFacts field
_PII_KEYS = {
    "email": "email",
    "phone": "phone",
    "phoneNumber": "phone",
    "phone_number": "phone",
    "firstName": "first_name",
    "first_name": "first_name",
    "lastName": "last_name",
    "last_name": "last_name",
    "name": "name",
    "birthday": "birthday",
}
_ADDRESS_PII = {"street", "street1", "street2", "line1", "line2"}
_CLEAR_KEYS = {
    "gender": "gender",
    "language": "language",
    "country": "country",
    "city": "city",
    "state": "region",
    "region": "region",
    "postalCode": "postcode",
    "postal_code": "postcode",
    "postcode": "postcode",
    "createdAt": "signup_at",
    "created_at": "signup_at",
}
_GENDERS = {
    "f": "female",
    "female": "female",
    "woman": "female",
    "w": "female",
    "m": "male",
    "male": "male",
    "man": "male",
    "other": "other",
    "diverse": "other",
    "non-binary": "other",
    "nonbinary": "other",
    "d": "other",
    "x": "other",
    "unknown": "unknown",
}

# context.consent.categoryPreferences names (case, spaces and dashes ignored) -> purposes.
# OneTrust's default ids (C0001…) are understood too.
CATEGORY_PURPOSES: dict[str, tuple[Purpose, ...]] = {
    "necessary": (Purpose.NECESSARY,),
    "strictly_necessary": (Purpose.NECESSARY,),
    "essential": (Purpose.NECESSARY,),
    "c0001": (Purpose.NECESSARY,),
    "analytics": (Purpose.ANALYTICS,),
    "performance": (Purpose.ANALYTICS,),
    "statistics": (Purpose.ANALYTICS,),
    "measurement": (Purpose.ANALYTICS,),
    "c0002": (Purpose.ANALYTICS,),
    "personalisation": (Purpose.PERSONALISATION,),
    "personalization": (Purpose.PERSONALISATION,),
    "functional": (Purpose.PERSONALISATION,),
    "preferences": (Purpose.PERSONALISATION,),
    "c0003": (Purpose.PERSONALISATION,),
    "marketing_email": (Purpose.MARKETING_EMAIL,),
    "email_marketing": (Purpose.MARKETING_EMAIL,),
    "email": (Purpose.MARKETING_EMAIL,),
    "marketing_sms": (Purpose.MARKETING_SMS,),
    "sms": (Purpose.MARKETING_SMS,),
    "marketing_push": (Purpose.MARKETING_PUSH,),
    "push": (Purpose.MARKETING_PUSH,),
}
# banner-level "marketing" categories govern advertising tags: a "no" withdraws every
# marketing channel, a "yes" grants none (opt-in to messages is asked per channel)
WITHDRAW_ONLY = {"marketing", "advertising", "targeting", "c0004"}
_MARKETING = (Purpose.MARKETING_EMAIL, Purpose.MARKETING_SMS, Purpose.MARKETING_PUSH)

_NETWORK_KEYS = ("ip", "userAgent", "userAgentData", "page", "location")
_PAGE_PROPERTIES = ("url", "path", "referrer", "search", "title")


def consent_preferences(context: dict[str, Any]) -> dict[Purpose, bool]:
    consent = context.get("consent")
    prefs = consent.get("categoryPreferences") if isinstance(consent, dict) else None
    if not isinstance(prefs, dict):
        return {}
    result: dict[Purpose, bool] = {}
    for raw_name, value in prefs.items():
        if not isinstance(value, bool):
            continue
        name = re.sub(r"[\s-]+", "_", str(raw_name).strip().lower())
        if name in WITHDRAW_ONLY:
            if not value:
                result.update(dict.fromkeys(_MARKETING, False))
            continue
        for purpose in CATEGORY_PURPOSES.get(name, ()):
            result[purpose] = value
    return result


def strip_without_consent(kind: str, context: dict[str, Any], properties: dict[str, Any]) -> None:
    """Remove ip, user agent, page and location details (in place)."""
    for key in _NETWORK_KEYS:
        context.pop(key, None)
    device = context.get("device")
    if isinstance(device, dict):
        for key in ("advertisingId", "id"):
            device.pop(key, None)
    if kind in {"page", "screen"}:
        for key in _PAGE_PROPERTIES:
            properties.pop(key, None)


def profile_from(traits: dict[str, Any]) -> tuple[customers_service.ProfileFacts, dict[str, Any]]:
    """Traits -> (what goes to the profile, the traits as the event may keep them)."""
    facts = customers_service.ProfileFacts()
    kept: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    for key, value in traits.items():
        target = _PII_KEYS.get(key)
        if target is not None:
            kept[key] = PII_MARKER
            _set_pii(facts, target, value)
        elif key == "address" and isinstance(value, dict):
            kept[key] = _address(facts, value)
        elif key in _CLEAR_KEYS:
            kept[key] = value
            _set_clear(facts, _CLEAR_KEYS[key], value)
        elif key in {"id", "userId", "anonymousId"}:
            kept[key] = value
        else:
            kept[key] = value
            custom[key] = value
    facts.traits = redact_emails(custom)
    return facts, kept


def redact_properties(properties: dict[str, Any]) -> tuple[customers_service.ProfileFacts, bool]:
    """Personal keys at the top of track/page properties: taken out in place."""
    facts = customers_service.ProfileFacts()
    found = False
    for key in list(properties):
        target = _PII_KEYS.get(key)
        if target is not None and key != "name":  # a product or page "name" is not a person
            _set_pii(facts, target, properties[key])
            properties[key] = PII_MARKER
            found = True
    return facts, found


def _set_pii(facts: customers_service.ProfileFacts, target: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        if target == "birthday" and isinstance(value, int | float):
            return
        return
    text = value.strip()
    if target == "email":
        if _EMAIL.fullmatch(text) and len(text) <= 320:
            facts.email = text
    elif target == "phone":
        if _PHONE.match(text):
            facts.phone = text
    elif target == "name":
        first, _, last = text.partition(" ")
        facts.first_name = facts.first_name or first[:128]
        facts.last_name = facts.last_name or (last.strip()[:128] or None)
    elif target == "birthday":
        facts.birthday = _date(text)
    elif target in {"first_name", "last_name"}:
        setattr(facts, target, text[:128])


def _address(facts: customers_service.ProfileFacts, address: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    streets = []
    for key, value in address.items():
        if key in _ADDRESS_PII:
            kept[key] = PII_MARKER
            if isinstance(value, str) and value.strip():
                streets.append(value.strip())
        elif key in _CLEAR_KEYS:
            target = _CLEAR_KEYS[key]
            _set_clear(facts, target, value)
            if target == "postcode":  # only a prefix is kept in clear, as on the profile
                kept[key] = str(value)[:3] if value is not None else None
            else:
                kept[key] = value
        else:
            kept[key] = redact_emails(value)
    if streets:
        facts.street = ", ".join(streets)[:255]
    return kept


def _set_clear(facts: customers_service.ProfileFacts, target: str, value: Any) -> None:
    if target == "signup_at":
        facts.signup_at = _datetime(value)
        return
    if not isinstance(value, str) or not value.strip():
        return
    text = value.strip()
    if target == "gender":
        facts.gender = _GENDERS.get(text.lower(), "other")
    elif target == "language":
        m = _LANGUAGE.match(text)
        if m:
            facts.language = m.group(1).lower() + (f"-{m.group(2).upper()}" if m.group(2) else "")
    elif target == "country":
        if _COUNTRY.match(text):
            facts.country = text.upper()
    elif target in {"city", "region"}:
        setattr(facts, target, text[:64])
    elif target == "postcode":
        facts.postcode = text[:16]


def _date(text: str) -> date | None:
    try:
        parsed = date.fromisoformat(text[:10])
    except ValueError:
        return None
    return parsed if 1900 <= parsed.year <= datetime.now(UTC).year else None


def _datetime(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return parsed if 2000 <= parsed.year <= datetime.now(UTC).year else None


def has_email(encoded: bytes) -> bool:
    return b"@" in encoded and _EMAIL_BYTES.search(encoded) is not None


def redact_emails(value: Any) -> Any:
    """Replace every string that contains an email address by the marker (a copy)."""
    if isinstance(value, str):
        return PII_MARKER if _EMAIL.search(value) else value
    if isinstance(value, dict):
        return {k: redact_emails(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_emails(v) for v in value]
    return value


def locale_language(context: dict[str, Any]) -> str | None:
    locale = context.get("locale")
    if isinstance(locale, str):
        m = _LANGUAGE.match(locale.strip())
        if m:
            return m.group(1).lower()
    return None
