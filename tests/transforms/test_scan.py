"""Column scans: name hints in several languages, entity shares per column, and the suggested actions."""

from datetime import date

import pyarrow as pa
import pytest

from veil.transforms.detect.hints import column_hints
from veil.transforms.detect.scan import ColumnScan, scan_column, scan_table
from veil.transforms.detect.suggest import choose_subject, suggest, suggest_all

AT = date(2026, 1, 1)


@pytest.mark.parametrize(
    "name, hints",
    [
        ("email", ("email",)),
        ("E-Mail-Adresse", ("email", "address")),
        ("courriel", ("email",)),
        ("Telefonnummer", ("phone",)),
        ("Teléfono", ("phone",)),
        ("telefoonnummer", ("phone",)),
        ("date_of_birth", ("birth",)),
        ("Geburtsdatum", ("birth",)),
        ("fecha_nacimiento", ("birth",)),
        ("data_di_nascita", ("birth",)),
        ("DOB", ("birth",)),
        ("first_name", ("name",)),
        ("lastName", ("name",)),
        ("Nachname", ("name",)),
        ("prenom", ("name",)),
        ("apellido", ("name",)),
        ("cognome", ("name",)),
        ("achternaam", ("name",)),
        ("nom", ("name",)),
        ("Straße", ("address",)),
        ("indirizzo", ("address",)),
        ("PLZ", ("zip",)),
        ("code_postal", ("zip",)),
        ("postcode", ("zip",)),
        ("client_ip", ("ip",)),
        ("ssn", ("ssn",)),
        ("codice_fiscale", ("ssn",)),
        ("iban", ("iban",)),
        ("card_number", ("card",)),
        ("Geschlecht", ("gender",)),
        ("passport_no", ("ssn",)),
        ("cvv", ("card",)),
        ("username", ("name",)),
        ("bic", ("iban",)),
        ("age", ("age",)),
        ("consents", ("consent",)),
        ("customer_id", ("id",)),
        ("userId", ("id",)),
        ("Kundennummer", ("id",)),
        ("numero_client", ("id",)),
        # look-alikes: words inside other words, names of things rather than people
        ("zip_ok", ("zip",)),
        ("description", ()),
        ("product_name", ()),
        ("nom_produit", ()),
        ("hotel", ()),
        ("page", ()),
        ("order_id", ()),
        ("country", ()),
        ("income", ()),
    ],
)
def test_column_hints(name, hints):
    assert column_hints(name) == hints


def test_whole_values_and_shares_count_repeats():
    column = pa.chunked_array([["a@example.com", "a@example.com", " b@example.org ", "no address", None]])
    scanned = scan_column("contact", column)
    assert scanned.values == 4 and scanned.type == "string"
    assert scanned.entities == {"email": 0.75} and scanned.whole == {"email": 0.75}
    assert scanned.main_entity == "email" and not scanned.free_text
    assert scanned.distinct == 0.75


def test_spans_inside_free_text():
    notes = [
        "Customer asked to be called back at +44 20 7946 0958 tomorrow.",
        "Please refund card 4111 1111 1111 1111 and mail jane@example.com today.",
        "The parcel arrived late and the box was damaged on arrival.",
        "ok",
    ]
    scanned = scan_column("notes", pa.chunked_array([notes]))
    assert scanned.free_text
    assert scanned.entities == {"email": 0.25, "card": 0.25, "phone": 0.25}
    assert scanned.whole == {} and scanned.main_entity is None


def test_dates_count_as_birth_only_by_the_column_name():
    days = pa.chunked_array([pa.array([date(1990, 3, 1), None, date(1971, 5, 2)], pa.date32())])
    assert scan_column("birth_date", days).whole == {"date": 1.0}
    assert scan_column("signup_day", days).entities == {}
    texts = pa.chunked_array([["1990-03-01", "02/05/1971", "unknown"]])
    assert scan_column("geburtsdatum", texts).whole == {"date": pytest.approx(2 / 3)}
    assert scan_column("shipped", texts).entities == {}


def test_a_dictionary_column_is_of_its_values_kind():
    column = pa.chunked_array([pa.array(["a@example.com", "b@example.com"]).dictionary_encode()])
    scanned = scan_column("contact", column)
    assert scanned.kind == "string" and scanned.whole == {"email": 1.0}
    assert suggest(scanned, subject=None, at=AT).settings["action"] == "pseudonymize"


def test_integers_are_read_as_digits_and_other_types_not_at_all():
    cards = pa.chunked_array([pa.array([4111111111111111, 5555555555554444], pa.int64())])
    assert scan_column("pan", cards).whole == {"card": 1.0}
    amounts = pa.chunked_array([pa.array([12.5, 4111111111111111.0])])
    assert scan_column("amount", amounts).entities == {}


_KINDS = {"string": "string", "int64": "integer", "date32[day]": "date", "bool": "bool", "list<item: string>": "list"}


def _column(name, kind="string", *, entities=None, whole=None, free_text=False, hints=(), distinct=0.5):
    return ColumnScan(name, kind, _KINDS[kind], 100, entities or {}, whole or {}, free_text, hints, distinct)


@pytest.mark.parametrize(
    "column, action, role",
    [
        (_column("mail", entities={"email": 1.0}, whole={"email": 1.0}), "pseudonymize", "identifier"),
        (_column("surname", hints=("name",)), "pseudonymize", "identifier"),
        (_column("dob", "date32[day]", whole={"date": 1.0}, hints=("birth",)), "generalize", "quasi_identifier"),
        (_column("birthplace", hints=("birth",)), "drop", "none"),
        (_column("zip", hints=("zip",)), "generalize", "quasi_identifier"),
        (_column("age", "int64", hints=("age",)), "generalize", "quasi_identifier"),
        (_column("age", hints=("age",)), "drop", "none"),  # text ages are not binned
        (_column("gender", hints=("gender",)), "keep", "quasi_identifier"),
        (_column("city", hints=("city",)), "drop", "quasi_identifier"),
        (_column("consents", "list<item: string>", hints=("consent",)), "drop", "consent"),
        (_column("notes", entities={"phone": 0.3}, free_text=True), "scrub", "free_text"),
        (_column("misc", entities={"ip": 0.1}), "scrub", "free_text"),
        (_column("emails", "list<item: string>", entities={"email": 0.4}), "drop", "none"),
        (_column("email_ok", "bool", hints=("email",)), "drop", "none"),
        (_column("notes", free_text=True), "drop", "none"),
        (_column("country"), "drop", "none"),
    ],
)
def test_suggested_actions(column, action, role):
    suggestion = suggest(column, subject=None, at=AT)
    assert (suggestion.settings["action"], suggestion.role) == (action, role)
    assert suggestion.reason


def test_scrub_asks_for_the_defaults_and_what_was_found():
    suggestion = suggest(_column("notes", entities={"person": 0.9, "url": 0.1}, free_text=True), subject=None, at=AT)
    assert suggestion.settings == {
        "action": "scrub",
        "entities": ["email", "card", "iban", "ssn", "phone", "ip", "url", "person"],
        "replace": "label",
    }


def test_the_subject_is_a_distinct_id_column():
    columns = [_column("order_id", distinct=1.0), _column("customer_id", hints=("id",), distinct=0.99)]
    assert choose_subject(columns) == "customer_id"
    assert choose_subject([_column("customer_id", hints=("id",), distinct=0.3)]) is None
    chosen = suggest(columns[1], subject="customer_id", at=AT)
    assert chosen.role == "subject" and chosen.settings == {"action": "pseudonymize", "domain": "customer"}


def test_a_german_table_by_its_column_names():
    table = pa.table(
        {
            "Kundennummer": ["K-1", "K-2", "K-3"],
            "Vorname": ["Jürgen", "Anna", "Lukas"],
            "Nachname": ["Schmidt", "Weber", "Krause"],
            "Geburtsdatum": ["1980-02-01", "1975-12-24", "2001-07-30"],
            "PLZ": ["10115", "80331", "50667"],
            "Telefon": ["030 12345678", "089 1234567", "0221 123456"],
            "E-Mail": ["j.schmidt@example.de", "anna@example.de", "lk@example.de"],
            "Land": ["DE", "DE", "AT"],
        }
    )
    subject, suggestions = suggest_all(scan_table(table), AT)
    actions = {name: s.settings["action"] for name, s in suggestions.items()}
    assert actions == {
        "Kundennummer": "pseudonymize",
        "Vorname": "pseudonymize",
        "Nachname": "pseudonymize",
        "Geburtsdatum": "generalize",
        "PLZ": "generalize",
        "Telefon": "pseudonymize",
        "E-Mail": "pseudonymize",
        "Land": "drop",
    }
    assert suggestions["Telefon"].settings["domain"] == "phone" and subject == "Kundennummer"
