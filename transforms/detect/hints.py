"""What a column's name says it holds (`email`, `dob`, `plz`, `nachname`, ...), in several languages.

The one vocabulary of personal-data names: `veil scan` reads it, and so do `veil lint` and
`veil diff` (`pipelines/governance/field_kinds.py`) for the fields a policy names, and
verification, which looks inside a kept field named as free text (`looks_like_free_text`).

A name is split into words (`customerEmail`, `first_name`, `E-Mail-Adresse` -> `customer email`,
`first name`, `e mail adresse`), accents folded (`Teléfono` -> `telefono`). A hint matches a
whole word (`ip` in `client_ip`, never in `zip`) or, for the long compound stems German and
Dutch write as one word, a stem inside the joined name (`geburtsdatum`, `telefoonnummer`).
Languages: English, German, French, Spanish, Dutch, Italian.
"""

import re
import unicodedata
from typing import Literal

Hint = Literal[
    "id", "email", "phone", "ssn", "card", "iban", "ip", "name", "address", "city", "zip", "birth", "age",
    "gender", "consent",
]  # fmt: skip

# hint -> (whole words, stems inside the joined name)
_HINTS: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {
    "email": (
        frozenset("email emails mail courriel correo".split()),
        ("email", "courriel", "correoelectronico"),
    ),
    "phone": (
        frozenset(
            "phone tel telephone mobile cell cellphone fax telefon handy telefone portable movil telefono "
            "cellulare telefoon mobiel gsm msisdn".split()
        ),
        ("phone", "telefon", "telefoon", "telefono", "handynummer", "mobilnummer"),
    ),
    "ssn": (
        frozenset("ssn sin nino nir bsn dni nie nif nss insee steuerid passport taxid tin".split()),
        (
            "socialsecurity",
            "nationalid",
            "passportno",
            "passportnumber",
            "sozialversicherung",
            "securitesociale",
            "seguridadsocial",
            "codicefiscale",
            "burgerservicenummer",
            "previdenza",
        ),
    ),  # fmt: skip
    "card": (
        frozenset("card cc pan karte carte tarjeta carta kaart creditcard ccnumber ccnum cvv".split()),
        ("creditcard", "cardnumber", "cardno", "kreditkarte", "kartennummer", "cartebancaire", "cartedecredit"),
    ),
    "iban": (
        frozenset({"iban", "bic", "swift"}),
        ("iban", "kontonummer", "accountnumber", "bankaccount", "rekeningnummer"),
    ),
    "ip": (frozenset("ip ipv4 ipv6 ipaddr".split()), ("ipaddress", "ipadresse", "ipadres", "ipaddr")),
    "name": (
        frozenset(
            "firstname lastname surname forename fullname givenname familyname vorname nachname familienname "
            "prenom apellido apellidos cognome voornaam achternaam tussenvoegsel username".split()
        ),
        (
            "firstname",
            "lastname",
            "surname",
            "forename",
            "fullname",
            "vorname",
            "nachname",
            "prenom",
            "apellido",
            "cognome",
            "voornaam",
            "achternaam",
            "maidenname",
            "middlename",
            "nickname",
        ),
    ),  # fmt: skip
    "address": (
        frozenset(
            "address addr street adresse anschrift strasse hausnummer rue domicile direccion calle domicilio "
            "indirizzo via adres straat huisnummer".split()
        ),
        ("address", "street", "adresse", "strasse", "anschrift", "direccion", "indirizzo", "straat"),
    ),
    "city": (
        frozenset("city town ville stadt ort wohnort ciudad localidad citta comune stad plaats woonplaats".split()),
        ("wohnort", "woonplaats"),
    ),
    "zip": (
        frozenset("zip zipcode postcode postal plz cp cap postcodigo".split()),
        ("zipcode", "postcode", "postalcode", "postleitzahl", "codepostal", "codigopostal", "codicepostale"),
    ),
    "birth": (
        frozenset("dob birth born birthday birthdate geboren naissance nacimiento nascita geboorte".split()),
        ("birth", "geburt", "naissance", "nacimiento", "nascita", "geboorte"),
    ),
    "age": (frozenset("age alter edad leeftijd".split()), ("lebensalter",)),
    "gender": (
        frozenset("gender sex geschlecht sexe sexo genero genere sesso geslacht".split()),
        ("geschlecht", "geslacht"),
    ),
    "consent": (
        frozenset("consent consents einwilligung consentement consentimiento consenso toestemming".split()),
        ("consent", "einwilligung", "consentement", "consentimiento", "toestemming"),
    ),
}
# A word `name` names a person only beside these words (`first_name`, `customer name`), not in `product_name`.
_NAME_WORDS = frozenset("name names nom nombre nome naam".split())
_PERSON_WORDS = frozenset(
    "first last full given family middle maiden nick display customer user client contact person member "
    "patient holder owner account cardholder kunde kunden client cliente klant utente".split()
)
# An id column (`customer_id`, `user_key`) names the data subject only with one of these words.
_ID_WORDS = frozenset("id uid uuid key nr no number nummer numero num".split())
_SUBJECT_WORDS = frozenset(
    "customer user client member person patient subscriber account kunde kunden cliente klant utente "
    "abonne usuario gebruiker".split()
)
_ID_STEMS = ("kundennummer", "kundennr", "kundenid", "klantnummer", "klantnr", "numeroclient", "numerocliente",
             "codicecliente", "customernumber", "clientnumber", "membernumber", "mitgliedsnummer")  # fmt: skip
_FREE_TEXT = frozenset(
    {"note", "notes", "comment", "comments", "remark", "remarks", "message", "messages", "memo", "feedback"}
    | {"transcript", "freetext", "text", "body", "complaint", "chat", "narrative"}
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SPLIT = re.compile(r"[^a-z0-9]+")


def words_of(column: str) -> list[str]:
    """The lower-case ASCII words of a column name (`customerEmail` -> [customer, email])."""
    folded = unicodedata.normalize("NFKD", column.replace("ß", "ss")).encode("ascii", "ignore").decode()
    return [word for word in _SPLIT.split(_CAMEL.sub(" ", folded).lower()) if word]


def column_hints(column: str) -> tuple[str, ...]:
    """The hints a column's name gives, in `Hint` order (`date_of_birth` -> (birth,), `customer_id` -> (id,))."""
    words = words_of(column)
    joined = "".join(words)
    found = []
    for hint, (whole, stems) in _HINTS.items():
        if any(word in whole for word in words) or any(stem in joined for stem in stems):
            found.append(hint)
    if "name" not in found and _NAME_WORDS & set(words) and set(words) - _NAME_WORDS <= _PERSON_WORDS:
        found.append("name")
    subject_id = _ID_WORDS & set(words) and _SUBJECT_WORDS & set(words)
    if subject_id or words in (["id"], ["uid"], ["uuid"]) or any(stem in joined for stem in _ID_STEMS):
        found.insert(0, "id")
    return tuple(found)


def looks_like_free_text(name: str) -> bool:
    """Whether a field's name suggests free text (notes, comments, messages), which can hold anything."""
    return bool(_FREE_TEXT.intersection(words_of(name)))
