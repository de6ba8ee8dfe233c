"""The benchmark workload (bench/policy.yaml) written out by hand, for the contenders that are not veil.

Every hand-written contender (limit, naive Beam, Presidio) applies the fields of
`bench/policy.yaml` with the same primitives veil uses: HMAC-SHA256, AES-SIV and AES-256-GCM
from `cryptography`, and FF1 from `veil.keys.ff1`. Their working keys are derived from the
root key of the benchmark keyset exactly as the README's "Derivations" table says, so the
deterministic outputs (pseudonyms, SIV and FF1 tokens, masks, generalizations) are byte-equal
to veil's; `encrypt` uses a random nonce, so only its format and length match. `bench/run.py`
checks this after each run.

Imports no Beam: the `limit` contender must not pay for it.
"""

import argparse
import base64
import os
from dataclasses import dataclass
from datetime import date, datetime

import pyarrow as pa
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from veil.keys.ff1 import ALPHABETS, FF1Alphabet, FF1Layout
from veil.keys.keyset import master_key_for, read_keyset, unwrap_keys

PURPOSE = "analytics"
CONSENT_FIELD = "consents"
AGE_EDGES = (0, 18, 25, 35, 50, 65)
AGE_AT = date(2026, 1, 1)
ZIP_PREFIX = 3
INCOME_WIDTH = 10_000
DIGITS = ALPHABETS["digits"]
CARD_KEEP_LAST = 4
FF1_MIN_DIGITS = 6  # SP 800-38G Rev.1: 10**6 >= 1,000,000
MASK_KEEP_FIRST = 1

# Input fields read by the workload, and the output schema (the same as `veil plan bench/policy.yaml`).
INPUT_FIELDS = (
    "customer_id",
    "email",
    "phone",
    "card_number",
    "notes",
    "last_name",
    "birth_date",
    "zip",
    "income",
    "signup_ts",
    "country",
    "gender",
    CONSENT_FIELD,
)
OUTPUT_SCHEMA = pa.schema(
    [
        ("customer_key", pa.string()),
        ("email_key", pa.string()),
        ("phone_token", pa.string()),
        ("card_token", pa.string()),
        ("notes", pa.string()),
        ("last_name", pa.string()),
        ("age_band", pa.string()),
        ("zip3", pa.string()),
        ("income_band", pa.int64()),
        ("signup_month", pa.date32()),
        ("country", pa.string()),
        ("gender", pa.string()),
    ]
)
DETERMINISTIC_OUTPUTS = tuple(name for name in OUTPUT_SCHEMA.names if name != "notes")

# README "Derivations": HKDF info strings (and the SIV / GCM associated data, the FF1 tweak).
INFO_CUSTOMER = f"veil/v1/pseudonymize/{PURPOSE}/customer"
INFO_EMAIL = f"veil/v1/pseudonymize/{PURPOSE}/email"
INFO_PHONE = f"veil/v1/tokenize-siv/{PURPOSE}/phone"
INFO_CARD = f"veil/v1/tokenize-ff1/{PURPOSE}/card_number/{DIGITS}"
TWEAK_CARD = f"veil/v1/tokenize-ff1/{PURPOSE}/card_number".encode()
INFO_ENCRYPT = f"veil/v1/encrypt/{PURPOSE}"
AD_NOTES = f"veil/v1/encrypt/{PURPOSE}/notes".encode()


def contender_args(description: str) -> tuple[argparse.Namespace, list[str]]:
    """The command line every contender takes (--input, --output folder, --keyset), and what is left (Beam's)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--input", required=True, help="the customers Parquet file")
    parser.add_argument("--output", required=True, help="folder; part-*.parquet files are written in it")
    parser.add_argument("--keyset", required=True)
    return parser.parse_known_args()


def _hkdf(root: bytes, info: str, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info.encode()).derive(root)


@dataclass(frozen=True)
class WorkingKeys:
    """The working keys of the workload (bytes: picklable, for Beam DoFns of the benchmark only)."""

    version: int
    customer: bytes
    email: bytes
    phone: bytes
    card: bytes
    notes: bytes


def working_keys(keyset_path: str) -> WorkingKeys:
    """Unwrap the keyset's primary root key (VEIL_MASTER_KEY) and derive the workload's keys from it."""
    keyset = read_keyset(keyset_path)
    root = unwrap_keys(keyset, master_key_for(keyset), versions=[keyset.primary])[keyset.primary]
    return WorkingKeys(
        version=keyset.primary,
        customer=_hkdf(root, INFO_CUSTOMER, 32),
        email=_hkdf(root, INFO_EMAIL, 32),
        phone=_hkdf(root, INFO_PHONE, 64),
        card=_hkdf(root, INFO_CARD, 32),
        notes=_hkdf(root, INFO_ENCRYPT, 32),
    )


def token_text(version: int, payload: bytes) -> str:
    """`v<version>.` + base64url without padding (veil's token format)."""
    return f"v{version}." + base64.urlsafe_b64encode(payload).rstrip(b"=").decode("ascii")


def age_band(born: date) -> str:
    """The `age_bins` label of the age in completed years on AGE_AT."""
    age = AGE_AT.year - born.year - ((AGE_AT.month, AGE_AT.day) < (born.month, born.day))
    if age < AGE_EDGES[0]:
        return f"<{AGE_EDGES[0]}"
    if age >= AGE_EDGES[-1]:
        return f"{AGE_EDGES[-1]}+"
    for low, high in zip(AGE_EDGES, AGE_EDGES[1:]):
        if low <= age < high:
            return f"{low}-{high - 1}"
    raise AssertionError("unreachable")


def mask_keep_first(text: str) -> str:
    """Keep MASK_KEEP_FIRST characters, mask the rest with '*'; too short: all masked."""
    n = len(text)
    if MASK_KEEP_FIRST >= n:
        return "*" * n
    return text[:MASK_KEEP_FIRST] + "*" * (n - MASK_KEEP_FIRST)


def has_consent(consents) -> bool:
    return isinstance(consents, (list, tuple)) and PURPOSE in consents


class Primitives:
    """The workload's keyed functions, with every key set once (build it in `DoFn.setup`)."""

    def __init__(self, keys: WorkingKeys):
        self.version = keys.version
        self.customer_mac = hmac.HMAC(keys.customer, hashes.SHA256())
        self.email_mac = hmac.HMAC(keys.email, hashes.SHA256())
        self.siv = AESSIV(keys.phone)
        self.siv_ad = [INFO_PHONE.encode()]
        self.ff1 = FF1Alphabet(keys.card, DIGITS)
        self.card_layout = FF1Layout(self.ff1, TWEAK_CARD, keep_last=CARD_KEEP_LAST)  # batched, layouts in numpy
        self.gcm = AESGCM(keys.notes)

    def customer_key(self, text: str) -> str:
        mac = self.customer_mac.copy()
        mac.update(text.encode())
        return mac.finalize().hex()

    def email_key(self, text: str) -> str:
        mac = self.email_mac.copy()
        mac.update(text.strip().lower().encode())
        return mac.finalize().hex()

    def phone_token(self, text: str) -> str:
        return token_text(self.version, self.siv.encrypt(text.encode(), self.siv_ad))

    def card_token(self, text: str) -> str | None:
        """FF1 over the digits but the last CARD_KEEP_LAST; other characters stay in place."""
        positions = [i for i, ch in enumerate(text) if ch in DIGITS]
        middle = positions[: len(positions) - CARD_KEEP_LAST]
        if len(middle) < FF1_MIN_DIGITS:
            return None  # on_error: null
        secret = self.ff1.encrypt("".join(text[i] for i in middle), TWEAK_CARD)
        out = list(text)
        for index, ch in zip(middle, secret):
            out[index] = ch
        return "".join(out)

    def encrypt_notes(self, text: str, nonce: bytes | None = None) -> str:
        nonce = nonce or os.urandom(12)
        return token_text(self.version, nonce + self.gcm.encrypt(nonce, text.encode(), AD_NOTES))


def protect_record(p: Primitives, record: dict) -> dict | None:
    """The whole policy on one dict record (naive Beam); None when the record has no consent."""
    if not has_consent(record.get(CONSENT_FIELD)):
        return None
    return {
        "customer_key": _opt(p.customer_key, record["customer_id"]),
        "email_key": _opt(p.email_key, record["email"]),
        "phone_token": _opt(p.phone_token, record["phone"]),
        "card_token": _opt(p.card_token, record["card_number"]),
        "notes": _opt(p.encrypt_notes, record["notes"]),
        "last_name": _opt(mask_keep_first, record["last_name"]),
        **unkeyed_generalizations(record),
        "country": record["country"],
        "gender": record["gender"],
    }


def unkeyed_generalizations(record: dict) -> dict:
    """age_band, zip3, income_band and signup_month of a dict record (also used by the Presidio contender)."""
    born, zip_code, income, signed = record["birth_date"], record["zip"], record["income"], record["signup_ts"]
    return {
        "age_band": None if born is None else age_band(born),
        "zip3": None if zip_code is None else zip_code[:ZIP_PREFIX],
        "income_band": None if income is None else (income // INCOME_WIDTH) * INCOME_WIDTH,
        "signup_month": None if signed is None else _month(signed),
    }


def _month(value: datetime | date) -> date:
    day = value.date() if isinstance(value, datetime) else value
    return day.replace(day=1)


def _opt(fn, value):
    return None if value is None else fn(value)
