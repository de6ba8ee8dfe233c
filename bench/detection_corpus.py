"""A labeled corpus for the detection benchmark: support notes with planted entities, and look-alikes.

Each note joins two to four clauses in one of six languages (English, German, French, Spanish,
Dutch, Italian). A clause either plants one entity, recorded with its exact span, or holds a
look-alike that is not personal data: order and invoice numbers, amounts, timestamps, versions,
tracking numbers, cards and IBANs with a wrong check digit, never-issued SSNs, capitalised common
words. Entities come in the formats people write them: emails with tags and sub-domains, phones of
eight regions in E.164, international and national form, cards of four issuers grouped or not,
IBANs of six countries compact or in groups, SSNs with dashes, spaces or after `SSN`, IPv4 and
IPv6, names from Faker's lists and names that are in no list. Generated data only; the same
(notes, seed) always gives the same corpus.
"""

import random
from dataclasses import dataclass

import phonenumbers
from faker import Faker
from stdnum import iban as stdnum_iban
from stdnum import luhn

PHONE_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "CA")
LANGUAGES = ("en", "de", "fr", "es", "nl", "it")
_LOCALES = {"en": "en_US", "de": "de_DE", "fr": "fr_FR", "es": "es_ES", "nl": "nl_NL", "it": "it_IT"}
POSITIVE_SHARE = 0.6  # of clauses, the share that plant an entity

# language -> entity -> clause templates, `{}` where the entity goes
_CLAUSES: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "email": ("Please reply to {} with the invoice", "customer wrote from {} yesterday", "new address: {}"),
        "phone": ("Customer called from {} about the refund", "call back on {} after 5pm", "mobile: {}"),
        "card": ("card on file {} was charged twice", "paid with {}", "customer read out card {}"),
        "iban": ("refund to IBAN {} requested", "account {} for the payout", "wire to {}"),
        "ssn": ("SSN {} verified on the phone", "social security number {} on the form", "ssn: {}"),
        "ip": ("login from {} was blocked", "requests came from {}", "device IP {}"),
        "person": ("spoke with {} today", "{} asked for a callback", "Dear {}, thanks for waiting"),
    },
    "de": {
        "email": ("Bitte an {} antworten", "Kunde schrieb von {}", "neue E-Mail: {}"),
        "phone": ("Kunde rief von {} an", "Rückruf unter {} erbeten", "Handy: {}"),
        "card": ("Karte {} wurde doppelt belastet", "bezahlt mit Karte {}", "Kreditkarte {}"),
        "iban": ("Erstattung auf IBAN {}", "Konto {} für die Auszahlung", "Überweisung an {}"),
        "ssn": ("SSN {} laut Formular", "US-Kunde, SSN: {}", "Sozialversicherungsnummer (US) {}"),
        "ip": ("Anmeldung von {} gesperrt", "Zugriffe von {}", "IP-Adresse {}"),
        "person": ("Gespräch mit {} heute", "{} bittet um Rückruf", "Hallo {}, danke für die Geduld"),
    },
    "fr": {
        "email": ("Merci de répondre à {}", "le client a écrit depuis {}", "nouvelle adresse : {}"),
        "phone": ("Le client a appelé du {}", "rappeler au {} après 17h", "portable : {}"),
        "card": ("la carte {} a été débitée deux fois", "payé avec la carte {}", "carte bancaire {}"),
        "iban": ("remboursement sur l'IBAN {}", "compte {} pour le versement", "virement vers {}"),
        "ssn": ("SSN {} vérifié", "client américain, SSN : {}", "numéro SSN {}"),
        "ip": ("connexion depuis {} bloquée", "requêtes venant de {}", "adresse IP {}"),
        "person": ("parlé avec {} aujourd'hui", "{} demande un rappel", "Bonjour {}, merci de votre patience"),
    },
    "es": {
        "email": ("Responder a {} con la factura", "el cliente escribió desde {}", "nuevo correo: {}"),
        "phone": ("El cliente llamó desde el {}", "devolver la llamada al {}", "móvil: {}"),
        "card": ("la tarjeta {} se cobró dos veces", "pagó con la tarjeta {}", "tarjeta {}"),
        "iban": ("reembolso al IBAN {}", "cuenta {} para el pago", "transferencia a {}"),
        "ssn": ("SSN {} verificado", "cliente de EE. UU., SSN: {}", "número SSN {}"),
        "ip": ("acceso desde {} bloqueado", "peticiones desde {}", "dirección IP {}"),
        "person": ("hablé con {} hoy", "{} pide que le llamen", "Hola {}, gracias por esperar"),
    },
    "nl": {
        "email": ("Graag antwoorden aan {}", "klant schreef vanaf {}", "nieuw e-mailadres: {}"),
        "phone": ("Klant belde vanaf {}", "terugbellen op {} na 17 uur", "mobiel: {}"),
        "card": ("kaart {} is twee keer belast", "betaald met kaart {}", "creditcard {}"),
        "iban": ("terugbetaling naar IBAN {}", "rekening {} voor de uitbetaling", "overboeking naar {}"),
        "ssn": ("SSN {} gecontroleerd", "Amerikaanse klant, SSN: {}", "SSN-nummer {}"),
        "ip": ("inlog vanaf {} geblokkeerd", "verzoeken vanaf {}", "IP-adres {}"),
        "person": ("gesproken met {} vandaag", "{} vraagt om terugbellen", "Beste {}, bedankt voor het wachten"),
    },
    "it": {
        "email": ("Rispondere a {} con la fattura", "il cliente ha scritto da {}", "nuova email: {}"),
        "phone": ("Il cliente ha chiamato dal {}", "richiamare al {} dopo le 17", "cellulare: {}"),
        "card": ("la carta {} è stata addebitata due volte", "pagato con la carta {}", "carta di credito {}"),
        "iban": ("rimborso sull'IBAN {}", "conto {} per il pagamento", "bonifico a {}"),
        "ssn": ("SSN {} verificato", "cliente USA, SSN: {}", "numero SSN {}"),
        "ip": ("accesso da {} bloccato", "richieste da {}", "indirizzo IP {}"),
        "person": ("parlato con {} oggi", "{} chiede di essere richiamato", "Gentile {}, grazie per l'attesa"),
    },
}
# Look-alikes, the same in every language (numbers read alike): `{}` is filled by `_negative`.
_NEGATIVES = (
    "order #{order} shipped on {timestamp}",
    "invoice no. {order} for {amount}",
    "ticket {ticket} closed at {time}",
    "version {version} installed",
    "tracking number {tracking}",
    "charged {amount} on {day}",
    "card ending {last4}",
    "card {bad_card} was declined",
    "IBAN {bad_iban} rejected",
    "reference {bad_ssn}",
    "Order {order} for the Summer Sale",
    "parcel {parcel} weighed {weight}",
    "logged at {timestamp}",
    "Will May check the Spring Offer on Monday",
    "room {last4}, floor 3, PIN {last4}",
    "qty 12 x 3.50, total {amount}",
    "delivery to ZIP 90210 on {day}",
    "call window {time}-{time} on {day}",
)


@dataclass(frozen=True)
class Planted:
    """One planted entity: its span in the note's text and its entity name."""

    start: int
    end: int
    entity: str


@dataclass(frozen=True)
class Note:
    """A support note and the entities planted in it."""

    text: str
    planted: tuple[Planted, ...]


class _Makers:
    """Makers of entity values and look-alikes, all drawing from one `random.Random`."""

    def __init__(self, rng: random.Random, seed: int):
        self.rng = rng
        fakes = {lang: Faker(locale) for lang, locale in _LOCALES.items()}
        for index, fake in enumerate(fakes.values()):
            fake.seed_instance(seed + index)
        self.first = {lang: [fake.first_name() for _ in range(60)] for lang, fake in fakes.items()}
        self.last = {lang: [fake.last_name() for _ in range(60)] for lang, fake in fakes.items()}
        self.domains = [fake.free_email_domain() for fake in fakes.values()] + [
            "mail.example.co.uk",
            "corp.example.org",
        ]
        self.phones = {region: self._phone_pool(region) for region in PHONE_REGIONS}

    def _phone_pool(self, region: str) -> list[phonenumbers.PhoneNumber]:
        pool = []
        for kind in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE):
            example = phonenumbers.example_number_for_type(region, kind)
            national = str(example.national_number)
            for _ in range(200):
                tail = "".join(self.rng.choice("0123456789") for _ in range(4))
                number = phonenumbers.parse(f"+{example.country_code}{national[:-4]}{tail}")
                if phonenumbers.is_valid_number(number):
                    pool.append(number)
        return pool

    def email(self, lang: str) -> str:
        rng = self.rng
        first, last = (rng.choice(self.first[lang]), rng.choice(self.last[lang]))
        local = "".join(ch for ch in f"{first}.{last}".lower() if ch.isascii() and (ch.isalnum() or ch == "."))
        local = local.strip(".") or "customer"
        local += rng.choice(["", "", str(rng.randint(1, 99)), "+support", "_" + str(rng.randint(1, 9))])
        address = f"{local}@{rng.choice(self.domains)}"
        return address.upper() if rng.random() < 0.05 else address

    def phone(self, _lang: str) -> str:
        """E.164, international (`+49 30 1234567`, with dashes, or `0049 ...`) or national (spaces or dashes)."""
        rng = self.rng
        number = rng.choice(self.phones[rng.choice(PHONE_REGIONS)])
        formats = phonenumbers.PhoneNumberFormat
        style = rng.choice(
            ("e164", "international", "international", "dashes", "00", "national", "national", "national-")
        )
        if style == "e164":
            return phonenumbers.format_number(number, formats.E164)
        if style.startswith("national"):
            text = phonenumbers.format_number(number, formats.NATIONAL)
            return text.replace(" ", "-") if style == "national-" and "(" not in text else text
        text = phonenumbers.format_number(number, formats.INTERNATIONAL)
        if style == "dashes":
            return text.replace(" ", "-")
        return "00" + text[1:] if style == "00" else text

    def card_digits(self) -> str:
        prefix, length = self.rng.choice(
            (("4", 16), ("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("37", 15), ("6011", 16))
        )
        body = prefix + "".join(self.rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
        return body + luhn.calc_check_digit(body)

    def card(self, _lang: str) -> str:
        digits = self.card_digits()
        if len(digits) == 15:
            groups = [digits[:4], digits[4:10], digits[10:]]
        else:
            groups = [digits[i : i + 4] for i in range(0, 16, 4)]
        return self.rng.choice(["", " ", "-", " "]).join(groups)

    def iban_compact(self) -> str:
        rng = self.rng
        digits = "0123456789"
        letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        while True:
            country, bban = rng.choice(
                (
                    ("DE", "".join(rng.choice(digits) for _ in range(18))),
                    (
                        "GB",
                        "".join(rng.choice(letters) for _ in range(4)) + "".join(rng.choice(digits) for _ in range(14)),
                    ),
                    ("FR", "".join(rng.choice(digits) for _ in range(23))),
                    (
                        "NL",
                        "".join(rng.choice(letters) for _ in range(4)) + "".join(rng.choice(digits) for _ in range(10)),
                    ),
                    ("ES", "".join(rng.choice(digits) for _ in range(20))),
                    ("IT", rng.choice(letters) + "".join(rng.choice(digits) for _ in range(22))),
                )
            )
            number = country + stdnum_iban.calc_check_digits(country + "00" + bban) + bban
            if stdnum_iban.is_valid(number):
                return number

    def iban(self, _lang: str) -> str:
        number = self.iban_compact()
        return stdnum_iban.format(number) if self.rng.random() < 0.6 else number

    def ssn(self, _lang: str) -> str:
        rng = self.rng
        area = rng.choice([a for a in range(1, 900) if a != 666])
        parts = f"{area:03d}", f"{rng.randint(1, 99):02d}", f"{rng.randint(1, 9999):04d}"
        return rng.choice(["-", "-", "-", " "]).join(parts)

    def ip(self, _lang: str) -> str:
        rng = self.rng
        if rng.random() < 0.7:
            return ".".join(str(rng.randint(1, 254)) for _ in range(4))
        groups = [f"{rng.randint(0, 0xFFFF):x}" for _ in range(8)]
        if rng.random() < 0.5:
            return ":".join(groups)
        return f"2001:db8::{groups[6]}:{groups[7]}"

    def person(self, lang: str) -> str:
        rng = self.rng
        if rng.random() < 0.1:  # a name in no list: the detector is not expected to find it
            return rng.choice(("Zorvath", "Quilleen", "Marbeck", "Ysolde")) + " " + rng.choice(("Vantrell", "Oakhurst"))
        return f"{rng.choice(self.first[lang])} {rng.choice(self.last[lang])}"

    def negative(self, template: str) -> str:
        rng = self.rng
        digits = "0123456789"
        bad_card = self.card_digits()
        bad_card = bad_card[:-1] + str((int(bad_card[-1]) + 1) % 10)
        good_iban = self.iban_compact()
        month, day, hour, minute = (f"{rng.randint(1, n):02d}" for n in (12, 28, 23, 59))
        values = {
            "order": f"{rng.randint(2019, 2026)}{month}{day}-{rng.randint(1000, 9999)}",
            "timestamp": rng.choice(
                (
                    f"2024-{month}-{day} {hour}:{minute}:00",
                    f"{day}.{month}.2024 {hour}:{minute}",
                    f"2024{month}{day}{hour}{minute}00",
                )
            ),
            "amount": rng.choice(
                (
                    f"${rng.randint(1, 99)},{rng.randint(100, 999)}.{rng.randint(0, 99):02d}",
                    f"€ {rng.randint(1, 99)}.{rng.randint(100, 999)},{rng.randint(0, 99):02d}",
                    f"{rng.randint(1, 9)} {rng.randint(100, 999)} {rng.randint(100, 999)},00 EUR",
                )
            ),
            "ticket": f"TCK-{rng.randint(100000, 999999)}",
            "time": f"{hour}:{minute}",
            "version": ".".join(str(rng.randint(0, 20)) for _ in range(4)),
            "tracking": "1Z" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(16)),
            "day": f"{day}/{month}/2025",
            "last4": "".join(rng.choice(digits) for _ in range(4)),
            "bad_card": " ".join(bad_card[i : i + 4] for i in range(0, len(bad_card), 4)),
            "bad_iban": stdnum_iban.format(good_iban[:2] + f"{(int(good_iban[2:4]) + 1) % 100:02d}" + good_iban[4:]),
            "bad_ssn": rng.choice(("000", "666", f"9{rng.randint(0, 99):02d}"))
            + f"-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}",
            "parcel": "".join(rng.choice(digits) for _ in range(12)),
            "weight": f"{rng.randint(1, 30)}.{rng.randint(0, 9)} kg",
        }
        return template.format(**values)


def make_corpus(notes: int, seed: int = 11) -> list[Note]:
    """`notes` labeled support notes (see the module docstring); the same arguments give the same corpus."""
    rng = random.Random(seed)
    makers = _Makers(rng, seed)
    entities = tuple(_CLAUSES["en"])
    out = []
    for _ in range(notes):
        lang = rng.choice(LANGUAGES)
        text, planted = "", []
        for index in range(rng.randint(2, 4)):
            text += ". " if index else ""
            if rng.random() < POSITIVE_SHARE:
                entity = rng.choice(entities)
                before, _, after = rng.choice(_CLAUSES[lang][entity]).partition("{}")
                value = getattr(makers, entity)(lang)
                start = len(text) + len(before)
                planted.append(Planted(start, start + len(value), entity))
                text += before + value + after
            else:
                text += makers.negative(rng.choice(_NEGATIVES))
        out.append(Note(text[0].upper() + text[1:] + ".", tuple(planted)))
    return out
