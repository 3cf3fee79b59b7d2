"""Identities: the card numbers, phone numbers and app ids that POS and CRM systems send,
mapped to the one member id, and stored only as keyed hashes.

A keyed hash (HMAC-SHA256 with the group's secret, ``LOYALTY_SECRET`` or
``Engine.open(secret=...)``) lets the store answer "whose card is this?" without ever
holding the card or phone number: without the secret, the table cannot be reversed by
hashing every possible phone number, which a plain hash of a phone number could.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re

from .errors import ConfigurationError

_NOT_PHONE = re.compile(r"[^0-9+]")


def normalize(kind: str, value: str) -> str:
    """One spelling per identifier: spaces and dashes never make a second identity."""
    value = value.strip()
    if kind == "phone":
        return _NOT_PHONE.sub("", value)
    return re.sub(r"[\s-]", "", value)


def group_secret(secret: str | None = None) -> str | None:
    return secret or os.environ.get("LOYALTY_SECRET") or None


def identity_digest(secret: str | None, kind: str, value: str) -> str:
    """The keyed hash stored for ``value`` (raises if no group secret is configured)."""
    if not secret:
        raise ConfigurationError("identities need the group secret: set LOYALTY_SECRET or "
                                 "pass secret= to Engine.open")
    if not kind or not value or not value.strip():
        raise ConfigurationError("an identity needs a kind (card, phone, app ...) and a value")
    message = f"{kind}\x00{normalize(kind, value)}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
