"""How much of a field's value an action exposes: the ranks `veil diff` compares.

Exposure is what can be learned about a value from the output by anyone holding what veil
holds (the output, and the keys of its purpose). A one-way action destroys information for
good; a reversible one keeps all of it behind a key, so it ranks above every one-way action.
The README ("veil diff") states the order and why.
"""

from dataclasses import dataclass

from veil.transforms.actions.base import ActionParams


@dataclass(frozen=True)
class Tier:
    """One step of the exposure order.

    Attributes:
        rank: 0 (nothing reaches the output) to 7 (the value itself).
        name: the actions of the step, as the README lists them.
        shows: what of the value the output holds at this step, in words.
    """

    rank: int
    name: str
    shows: str


TIERS = (
    Tier(0, "drop", "nothing (the field is not in the output)"),
    Tier(1, "redact, replace", "a constant, nothing of the value"),
    Tier(2, "pseudonymize, fake", "a keyed one-way surrogate: equal values link within the purpose"),
    Tier(3, "generalize, mask, date_shift, scrub", "part of the value in clear (coarsened, masked, shifted, scrubbed)"),
    Tier(4, "encrypt", "the whole value behind a key (randomized: equal values do not show)"),
    Tier(5, "tokenize siv", "the whole value behind a key, equal values giving equal tokens"),
    Tier(6, "tokenize ff1", "the whole value behind a key, its length and format kept, kept characters in clear"),
    Tier(7, "keep", "the value itself"),
)
_RANKS = {
    "drop": 0,
    "redact": 1,
    "replace": 1,
    "pseudonymize": 2,
    "fake": 2,
    "generalize": 3,
    "mask": 3,
    "date_shift": 3,
    "scrub": 3,
    "encrypt": 4,
    "keep": 7,
}
REVERSIBLE_RANKS = frozenset({4, 5, 6})
PARTIAL, RAW = 3, 7  # part of the value in clear; the value itself


def tier_of(spec: ActionParams | None) -> Tier:
    """The exposure step of a field's action (None: a field the policy does not name, so dropped)."""
    if spec is None:
        return TIERS[0]
    if spec.action == "tokenize":
        return TIERS[6 if spec.method == "ff1" else 5]
    return TIERS[_RANKS[spec.action]]


def kept_raw(spec: ActionParams) -> bool:
    """Whether the action outputs the value itself."""
    return tier_of(spec).rank == RAW


def readable(spec: ActionParams) -> bool:
    """Whether the output shows the value or part of it in clear (not a constant, surrogate or ciphertext)."""
    return tier_of(spec).rank in (PARTIAL, RAW)
