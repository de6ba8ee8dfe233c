"""What a field looks like from its name and action: personal data, free text, a quasi-identifier.

Static guesses for `veil lint` and `veil diff` (no data is read; `veil scan` looks at the data).
A name is split into lower-case words at `_`, `-`, `.`, spaces and camelCase humps, so
`customerEmail`, `e-mail` and `EMAIL_ADDR` all read as an email. Words match whole (`zip` is not
`ip`); a few compounds (`dateofbirth`, `creditcard`) also match inside a word.
"""

import re

from veil.pipelines.governance.exposure import readable
from veil.transforms.actions.base import ActionParams

_HUMPS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")

# kind -> whole words, and compounds matched inside the joined name; the first kind that matches wins
# (`email_address` is an email, `ip_address` an IP address)
_PERSONAL: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {
    "an email address": (frozenset({"email", "mail", "emailaddress"}), ("email",)),
    "a phone number": (
        frozenset({"phone", "telephone", "tel", "mobile", "cell", "cellphone", "msisdn", "fax"}),
        ("phonenumber", "phoneno"),
    ),
    "a person's name": (
        frozenset({"surname", "firstname", "lastname", "fullname", "forename", "givenname", "familyname", "username"}),
        ("firstname", "lastname", "fullname", "givenname", "familyname", "maidenname", "middlename"),
    ),
    "a birth date": (frozenset({"dob", "birth", "birthdate", "birthday", "born"}), ("dateofbirth", "birthdate")),
    "a national identifier": (
        frozenset({"ssn", "nino", "passport", "nationalid", "taxid", "tin", "sin"}),
        ("socialsecurity", "nationalid", "passportno", "passportnumber"),
    ),
    "an IP address": (frozenset({"ip", "ipv4", "ipv6", "ipaddr", "ipaddress"}), ("ipaddress",)),
    "a postal address": (frozenset({"address", "addr", "street"}), ("streetaddress", "postaladdress", "homeaddress")),
    "a card number": (
        frozenset({"card", "cardnumber", "creditcard", "pan", "ccnumber", "ccnum", "cvv"}),
        ("creditcard", "cardnumber", "cardno"),
    ),
    "a bank account": (frozenset({"iban", "bic", "swift"}), ("bankaccount", "accountnumber", "iban")),
}
# words that make a `name` a person's: first_name, customer_name (not product_name)
_PERSON_WORDS = frozenset(
    {"first", "last", "full", "given", "family", "middle", "maiden", "user", "customer", "contact", "display", "nick"}
)
_FREE_TEXT = frozenset(
    {"note", "notes", "comment", "comments", "remark", "remarks", "message", "messages", "memo", "feedback"}
    | {"transcript", "freetext", "text", "body", "complaint", "chat", "narrative"}
)
_GENDER = frozenset({"gender", "sex"})
_AGE = frozenset({"age", "ageband", "agegroup", "agerange"})
_LOCATION = frozenset(
    {"zip", "zipcode", "postcode", "postal", "postalcode", "city", "town", "county", "region", "state"}
    | {"province", "district", "country", "location", "lat", "latitude", "lon", "lng", "longitude", "geohash"}
)
_DATE = frozenset({"date", "dob", "birth", "birthday", "ts", "timestamp", "time", "datetime", "day"})


def name_words(name: str) -> tuple[str, ...]:
    """`customerEmail_v2` -> ("customer", "email", "v", "2")."""
    return tuple(word.lower() for part in re.split(r"[^A-Za-z0-9]+", name) for word in _HUMPS.findall(part))


def personal_data_kind(name: str) -> str | None:
    """What personal data a field's name suggests ("an email address"), or None."""
    words = name_words(name)
    joined = "".join(words)
    for kind, (whole, compounds) in _PERSONAL.items():
        if whole.intersection(words) or any(compound in joined for compound in compounds):
            return kind
    if words == ("name",) or any(w == "name" and i and words[i - 1] in _PERSON_WORDS for i, w in enumerate(words)):
        return "a person's name"
    return None


def looks_like_free_text(name: str) -> bool:
    """Whether a field's name suggests free text (notes, comments, messages), which can hold anything."""
    return bool(_FREE_TEXT.intersection(name_words(name)))


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
    words = set(name_words(name)) | set(name_words(output))
    for kind, vocabulary in (("a gender", _GENDER), ("an age", _AGE), ("a location", _LOCATION), ("a date", _DATE)):
        if vocabulary & words:
            return kind
    return None
