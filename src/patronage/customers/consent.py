"""Consent purposes. Every consumer of customer data asks for the purpose it needs."""

from __future__ import annotations

from enum import StrEnum


class Purpose(StrEnum):
    NECESSARY = "necessary"
    ANALYTICS = "analytics"
    PERSONALISATION = "personalisation"
    MARKETING_EMAIL = "marketing_email"
    MARKETING_SMS = "marketing_sms"
    MARKETING_PUSH = "marketing_push"


# what applies when a customer never said anything: only what the service needs to work
DEFAULTS: dict[Purpose, bool] = {p: p is Purpose.NECESSARY for p in Purpose}
