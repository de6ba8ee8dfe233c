"""Plain-language sentences for the customer notice: one per field action, per legal basis.

Pure: policy settings in, sentences out. A sentence says what happens to a field in words a
customer understands, with the action's main settings ("only the last 4 characters"), and
never shows data, keys or paths: only configuration words the policy already holds.
"""

from collections.abc import Callable
from datetime import date
from typing import Any

from veil.transforms.actions.date_shift import DateShiftParams
from veil.transforms.actions.encrypt import EncryptParams
from veil.transforms.actions.fake import FakeParams
from veil.transforms.actions.generalize import GeneralizeParams, bin_labels
from veil.transforms.actions.mask import MaskParams
from veil.transforms.actions.pseudonymize import PseudonymizeParams
from veil.transforms.actions.replace import ReplaceParams
from veil.transforms.actions.scrub import ScrubParams
from veil.transforms.actions.tokenize import TokenizeParams

# Words of field names a customer would not read as meant (`signup_ts` -> "signup time").
_NAME_WORDS = {
    "id": "ID",
    "ts": "time",
    "dob": "date of birth",
    "zip": "ZIP code",
    "ssn": "social security number",
    "ip": "IP address",
    "iban": "IBAN",
    "url": "web address",
    "email": "email address",
    "phone": "phone number",
}

# What each detector finds, as the notice names it (keys: `veil.transforms.detect.Entity`).
ENTITY_WORDS = {
    "email": "email addresses",
    "phone": "phone numbers",
    "card": "payment card numbers",
    "iban": "bank account numbers (IBAN)",
    "ssn": "social security numbers",
    "ip": "IP addresses",
    "url": "web addresses",
    "person": "names of people",
    "date": "dates of birth",
}

# GDPR Art. 6(1) (a) to (f): the letter, a short title and what it means for the customer
# (keys: `veil.transforms.policy.LegalBasis`).
LEGAL_BASES: dict[str, tuple[str, str, str]] = {
    "consent": (
        "a",
        "your consent",
        "We do this only because you agreed to it. You can withdraw your consent at any time; "
        "withdrawing does not make what was done before unlawful, but nothing new is done with your data for this.",
    ),
    "contract": (
        "b",
        "a contract with you",
        "We need this to provide the service you signed up for, or to take steps you asked for before signing up.",
    ),
    "legal_obligation": (
        "c",
        "a legal obligation",
        "The law requires us to do this.",
    ),
    "vital_interests": (
        "d",
        "vital interests",
        "This is needed to protect your life or physical safety, or someone else's.",
    ),
    "public_task": (
        "e",
        "a public task",
        "This is needed for a task we carry out in the public interest or under official authority given to us by law.",
    ),
    "legitimate_interests": (
        "f",
        "our legitimate interests",
        "We have a genuine interest in doing this, which we weighed against your rights and interests. "
        "You can object to it at any time, and we then stop unless we have compelling reasons.",
    ),
}

_PERIODS = {
    "year": "Only the year of {noun} is kept.",
    "quarter": "Only the quarter and year of {noun} are kept.",
    "month": "Only the month and year of {noun} are kept; the day and time are removed.",
    "week": "Only the week of {noun} is kept; the day and time are removed.",
}


def name_words(name: str) -> str:
    """A field name in words: `signup_ts` -> "signup time", `age_band` -> "age band"."""
    return " ".join(_NAME_WORDS.get(word.lower(), word) for word in name.split("_") if word)


def field_noun(name: str, description: str | None = None) -> str:
    """How the notice names an input field: its `description`, else its name in words ("your signup time")."""
    return description or f"your {name_words(name)}"


def plural(noun: str) -> bool:
    """Whether a noun reads as plural ("your notes", "your consent choices"; not "your address")."""
    last = noun.rsplit(" ", 1)[-1].lower()
    return last.endswith("s") and not last.endswith(("ss", "us", "is"))


def _is(noun: str) -> str:
    return "are" if plural(noun) else "is"


def _it(noun: str) -> str:
    return "them" if plural(noun) else "it"


def capitalized(text: str) -> str:
    """`text` with its first letter upper case (the rest as written)."""
    return text[:1].upper() + text[1:]


def _characters(count: int) -> str:
    return "character" if count == 1 else f"{count} characters"


def _number(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) or not value.is_integer() else f"{int(value):,}"


def word_list(words: list[str]) -> str:
    """`a`, `a and b`, `a, b and c`: how a sentence lists things."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _day(day: date) -> str:
    return f"{day.day} {day:%B %Y}"


def _ages(edges: tuple[int, ...]) -> list[str]:
    """Age band labels; no band below an age of 0 or less (nobody is that young)."""
    labels = bin_labels(edges)
    return labels[1:] if edges[0] <= 0 else labels


def _re_identification(purpose: str, verb: str) -> str:
    return f"only the {purpose} team can {verb}, and every time that is logged"


def _keep(_spec: Any, noun: str, _purpose: str) -> str:
    return f"{capitalized(noun)} {_is(noun)} used as {'they are' if plural(noun) else 'it is'}."


def _drop(_spec: Any, noun: str, purpose: str) -> str:
    return f"{capitalized(noun)} {_is(noun)} not used: removed before the data reaches {purpose}."


def _redact(_spec: Any, noun: str, _purpose: str) -> str:
    return f"{capitalized(noun)} {_is(noun)} blanked out: every value is removed, so nothing of {_it(noun)} is used."


def _replace(spec: ReplaceParams, noun: str, _purpose: str) -> str:
    return (
        f"{capitalized(noun)} {_is(noun)} replaced by the same fixed value for everyone (“{spec.value}”), "
        f"so nothing of {_it(noun)} is used."
    )


def _mask(spec: MaskParams, noun: str, _purpose: str) -> str:
    first, last = spec.keep_first, spec.keep_last
    if not first and not last:
        hidden = f"every character is replaced by “{spec.char}”, so only the length shows"
        return f"{capitalized(noun)} {_is(noun)} hidden: {hidden}."
    if first and last:
        shown = f"Only the first {_characters(first)} and the last {_characters(last)} of {noun} are shown"
    elif first:
        shown = f"Only the first {_characters(first)} of {noun} {'is' if first == 1 else 'are'} shown"
    else:
        shown = f"Only the last {_characters(last)} of {noun} {'is' if last == 1 else 'are'} shown"
    return f"{shown}; the rest is hidden (a value too short for that is hidden completely)."


def _pseudonymize(_spec: PseudonymizeParams, noun: str, purpose: str) -> str:
    return (
        f"{capitalized(noun)} {_is(noun)} replaced by a code that cannot be turned back into {noun}. "
        f"The same value always gets the same code in {purpose}, so your records can be counted together, "
        "but every other use gets different codes, which cannot be matched with these."
    )


def _tokenize(spec: TokenizeParams, noun: str, purpose: str) -> str:
    back = _re_identification(purpose, f"turn {_it(noun)} back")
    if spec.method == "siv":
        return (
            f"{capitalized(noun)} {_is(noun)} replaced by an encrypted token; the same value always gets the same "
            f"token, so your records can still be matched in {purpose}. {capitalized(back)}."
        )
    kept = [
        f"the {where} {_characters(count)}"
        for where, count in (("first", spec.keep_first), ("last", spec.keep_last))
        if count
    ]
    clear = f", except {word_list(kept)}, which stay as they are" if kept else ""
    return f"{capitalized(noun)} {_is(noun)} encrypted into a value of the same length and format{clear}; {back}."


def _encrypt(spec: EncryptParams, noun: str, purpose: str) -> str:
    sentence = (
        f"{capitalized(noun)} {_is(noun)} encrypted; only the {purpose} team can read {_it(noun)}, "
        "and every reading is logged."
    )
    if spec.per_subject:
        sentence += (
            " It is encrypted with a key of your own: when you ask for erasure, that key is destroyed, "
            "which makes every copy unreadable at once."
        )
    return sentence


def _generalize(spec: GeneralizeParams, noun: str, _purpose: str) -> str:
    subject = capitalized(noun)
    match spec.variant:
        case "age_bins":
            bands = ", ".join(_ages(spec.age_bins))
            return f"{subject} {_is(noun)} reduced to an age band ({bands}), by age on {_day(spec.at)}."
        case "bins":
            return f"{subject} {_is(noun)} reduced to a range ({', '.join(bin_labels(spec.bins))})."
        case "width":
            return f"{subject} {_is(noun)} rounded down to a multiple of {_number(spec.width)}: only the band is kept."
        case "date":
            return _PERIODS[spec.date].format(noun=noun)
        case "prefix":
            return f"Only the first {_characters(spec.prefix)} of {noun} {'is' if spec.prefix == 1 else 'are'} kept."
        case "map":
            labels = set(spec.map.values()) | ({spec.other} if spec.other is not None else set())
            return f"{subject} {_is(noun)} replaced by a broader category (one of {len(labels)})."
        case _:  # round
            if spec.round > 0:
                places = f"{spec.round} decimal place{'s' if spec.round != 1 else ''}"
                return f"{subject} {_is(noun)} rounded to {places}."
            if spec.round == 0:
                return f"{subject} {_is(noun)} rounded to a whole number."
            return f"{subject} {_is(noun)} rounded to the nearest {10**-spec.round:,}."


def _date_shift(spec: DateShiftParams, noun: str, _purpose: str) -> str:
    return (
        f"{capitalized(noun)} {_is(noun)} moved by a secret number of days, up to {spec.max_days} either way "
        "and the same for all of your dates: time spans stay right, but the real date is not shown."
    )


def _fake(spec: FakeParams, noun: str, _purpose: str) -> str:
    made_up = spec.provider.replace("_", " ")
    return (
        f"{capitalized(noun)} {_is(noun)} replaced by a made-up {made_up}: the same value always gets the same "
        "stand-in, and the stand-in tells nothing about the real one."
    )


_SCRUB_REPLACEMENTS = {
    "label": "each is replaced by its kind, like [EMAIL]",
    "pseudonym": "each is replaced by a code, so a reviewer can see the same detail come back without seeing it",
    "mask": "each is masked character by character, so only its length and punctuation remain",
}


def _scrub(spec: ScrubParams, noun: str, _purpose: str) -> str:
    found = word_list([ENTITY_WORDS[entity] for entity in spec.entities])
    return (
        f"{capitalized(noun)} {_is(noun)} kept as free text, but {found} found in {_it(noun)} are removed: "
        f"{_SCRUB_REPLACEMENTS[spec.replace]}. The search is automatic and can miss some."
    )


# YAML `action:` value -> its sentence (a test checks every action in the registry has one).
SENTENCES: dict[str, Callable[[Any, str, str], str]] = {
    "keep": _keep,
    "drop": _drop,
    "redact": _redact,
    "replace": _replace,
    "mask": _mask,
    "pseudonymize": _pseudonymize,
    "tokenize": _tokenize,
    "encrypt": _encrypt,
    "generalize": _generalize,
    "date_shift": _date_shift,
    "fake": _fake,
    "scrub": _scrub,
}


def protection(spec: Any, noun: str, purpose: str) -> str:
    """What `spec` (a field's action params) does to the field, as one or two sentences.

    Args:
        spec: the field's action params (`Policy.fields[name]`).
        noun: how the notice names the field (`field_noun`).
        purpose: the policy's purpose (who can re-identify a reversible field: its team).

    Returns:
        The sentence(s), starting upper case and ending with a full stop.
    """
    return SENTENCES[spec.action](spec, noun, purpose)


def legal_basis_text(basis: str | None) -> str:
    """The GDPR Art. 6(1) basis in plain words ("Your consent (GDPR Art. 6(1)(a)). We do this only...")."""
    if basis is None:
        return "No legal basis is recorded for this use."
    letter, title, meaning = LEGAL_BASES[basis]
    return f"{capitalized(title)} (GDPR Art. 6(1)({letter})). {meaning}"
