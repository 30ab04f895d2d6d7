"""The connector kit's :mod:`syncd.kit.listing` under its plugin API 1 name: plugins written
for it import from here and keep working. New code imports :mod:`syncd.kit.listing`."""

from syncd.kit.listing import (
    ListingCursor,
    listing_digest,
)

__all__ = [
    "ListingCursor",
    "listing_digest",
]
