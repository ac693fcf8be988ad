"""Country names as shop exports spell them, to ISO 3166-1 alpha-2 (customers keep 2 letters)."""

from __future__ import annotations

NAMES = {
    "australia": "AU", "austria": "AT", "bahrain": "BH", "belgium": "BE", "brazil": "BR",
    "canada": "CA", "channel islands": "JE", "cyprus": "CY", "czech republic": "CZ",
    "czechia": "CZ", "denmark": "DK", "eire": "IE", "ireland": "IE", "european community": "EU",
    "finland": "FI", "france": "FR", "germany": "DE", "greece": "GR", "hong kong": "HK",
    "iceland": "IS", "israel": "IL", "italy": "IT", "japan": "JP", "korea": "KR",
    "lebanon": "LB", "lithuania": "LT", "malta": "MT", "netherlands": "NL",
    "the netherlands": "NL", "new zealand": "NZ", "nigeria": "NG", "norway": "NO",
    "poland": "PL", "portugal": "PT", "rsa": "ZA", "south africa": "ZA", "saudi arabia": "SA",
    "singapore": "SG", "spain": "ES", "sweden": "SE", "switzerland": "CH", "thailand": "TH",
    "turkey": "TR", "united arab emirates": "AE", "united kingdom": "GB", "uk": "GB",
    "great britain": "GB", "united states": "US", "usa": "US", "united states of america": "US",
    "west indies": "JM", "china": "CN", "india": "IN", "mexico": "MX", "argentina": "AR",
    "chile": "CL", "colombia": "CO", "egypt": "EG", "estonia": "EE", "hungary": "HU",
    "indonesia": "ID", "latvia": "LV", "luxembourg": "LU", "malaysia": "MY", "morocco": "MA",
    "pakistan": "PK", "peru": "PE", "philippines": "PH", "romania": "RO", "russia": "RU",
    "slovakia": "SK", "slovenia": "SI", "taiwan": "TW", "ukraine": "UA", "vietnam": "VN",
    "bulgaria": "BG", "croatia": "HR", "serbia": "RS",
}  # fmt: skip


def country_code(value: str | None) -> str | None:
    """Two letters stay (upper-cased); known names map; anything else is unknown (None)."""
    if not value:
        return None
    text = value.strip()
    if len(text) == 2 and text.isalpha():
        return text.upper()
    return NAMES.get(text.lower())
