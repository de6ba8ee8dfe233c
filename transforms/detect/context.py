"""Words just before a number that say it is not personal (an order or invoice number, a version)."""

import re

_NOT_PERSONAL = re.compile(
    r"(?:order|invoice|inv|ref|reference|ticket|tracking|parcel|shipment|sku|item|product|version|ver|build|"
    r"bestellung|rechnung|commande|facture|pedido|factura|ordine|fattura|bestelling|factuur)"
    r"\s*(?:no\.?|nr\.?|number|num|id|#|n°|:)?\s*#?\s*:?\s*$",
    re.IGNORECASE,
)
_WINDOW = 32


def refused_by_context(text: str, start: int) -> bool:
    """Whether the words right before `start` name a non-personal number (`order #`, `invoice no.`, `version`)."""
    before = text[max(0, start - _WINDOW) : start]
    return before.rstrip().endswith("#") or _NOT_PERSONAL.search(before) is not None


def preceded_by(text: str, start: int, words: re.Pattern, window: int = 40) -> bool:
    """Whether `words` occurs in the `window` characters before `start`."""
    return words.search(text[max(0, start - window) : start]) is not None
