"""vCard 3.0 / 4.0 <-> canonical contact mapping, shared by the vCard connectors.

An address book has no company records, so ``contact.company`` is the company's
*name*, kept in ORG. Updates patch the card as read: properties syncd does not map
(photos, addresses, X- extensions) survive untouched.
"""

from __future__ import annotations

from syncd_vcard.mapping import (
    CONTACT_FIELDS,
    VCardError,
    card_fields,
    card_uid,
    new_card,
    patch_card,
)

__all__ = ["CONTACT_FIELDS", "VCardError", "card_fields", "card_uid", "new_card", "patch_card"]
