"""What a field looks like from its name and action: personal data, free text, a quasi-identifier.

Static guesses for `veil lint` and `veil diff` (no data is read; `veil scan` looks at the data).
Personal data and the quasi-identifiers the hints know (gender, age, zip, city, birth) are what
`veil scan`'s column-name hints say (`transforms/detect/hints.py`, six languages): a name is
split into lower-case words (`customerEmail`, `e-mail` and `EMAIL_ADDR` all read as an email),
words match whole (`zip` is not `ip`) and a few compounds (`dateofbirth`, `creditcard`) inside
a word; free text (`notes`, `comments`) too (`looks_like_free_text`). Other places and times
(`country`, `lat`, `signup_ts`) are English words here.
"""

from veil.pipelines.governance.exposure import readable
from veil.transforms.actions.base import ActionParams
from veil.transforms.detect.hints import column_hints, words_of

# hint -> the kind of personal data it names; the first in this order wins
# (`email_address` is an email, `ip_address` an IP address)
_PERSONAL = {
    "email": "an email address",
    "phone": "a phone number",
    "name": "a person's name",
    "birth": "a birth date",
    "ssn": "a national identifier",
    "ip": "an IP address",
    "address": "a postal address",
    "card": "a card number",
    "iban": "a bank account",
}
# kind -> the hints that name it, and the words beyond them (places and times no hint names); first wins
_QUASI: tuple[tuple[str, frozenset[str], frozenset[str]], ...] = (
    ("a gender", frozenset({"gender"}), frozenset()),
    ("an age", frozenset({"age"}), frozenset({"ageband", "agegroup", "agerange"})),
    (
        "a location",
        frozenset({"zip", "city"}),
        frozenset({"county", "region", "state", "province", "district", "country", "location", "geohash"})
        | {"lat", "latitude", "lon", "lng", "longitude"},
    ),
    ("a date", frozenset({"birth"}), frozenset({"date", "ts", "timestamp", "time", "datetime", "day"})),
)


def personal_data_kind(name: str) -> str | None:
    """What personal data a field's name suggests ("an email address"), or None."""
    hints = column_hints(name)
    return next((kind for hint, kind in _PERSONAL.items() if hint in hints), None)


def quasi_identifier_kind(name: str, output: str, spec: ActionParams) -> str | None:
    """What kind of quasi-identifier an output looks like ("a location"), or None.

    Looked at: a generalized date or age (by the generalization), and outputs left readable (kept,
    generalized, masked, shifted) whose input or output name says gender, age, location or date.
    Tokens, ciphertexts and pseudonyms are not quasi-identifiers: nothing of the value shows.
    """
    if not readable(spec):
        return None
    variant = getattr(spec, "variant", None)  # a generalization's
    if variant == "age_bins":
        return "an age"
    if variant == "date":
        return "a generalized date"
    hints = set(column_hints(name)) | set(column_hints(output))
    words = set(words_of(name)) | set(words_of(output))
    for kind, named, vocabulary in _QUASI:
        if named & hints or vocabulary & words:
            return kind
    return None
