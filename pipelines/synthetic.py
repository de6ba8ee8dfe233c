"""Seeded synthetic customers for demos, tests and benchmarks.

The table looks like a real customer extract (names, contact details, a card number, free-text
notes that repeat personal data) so that every veil action has something realistic to work on,
yet nothing in it belongs to a real person: names, streets and cities come from Faker, phones
use the unassigned area code 555 and card numbers are random Luhn-valid digits. The same
`(rows, seed, locale)` always gives the same table for a given Faker version, and a table is the
first rows of any longer one made with the same seed and locale.

Faker is slow when called per row, so it only fills small pools (names, streets, cities, mail
domains) once; every per-row draw comes from one `random.Random(seed)`.
"""

import functools
import itertools
import json
import math
import os
import random
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timezone

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from faker import Faker

CUSTOMER_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("first_name", pa.string()),
        ("last_name", pa.string()),
        ("email", pa.string()),
        ("phone", pa.string()),
        ("birth_date", pa.date32()),
        ("street", pa.string()),
        ("city", pa.string()),
        ("zip", pa.string()),
        ("country", pa.string()),
        ("gender", pa.string()),
        ("income", pa.int64()),
        ("card_number", pa.string()),
        ("signup_ts", pa.timestamp("us", tz="UTC")),
        ("consents", pa.list_(pa.string())),
        ("notes", pa.string()),
    ]
)

MAX_ROWS = 9_999_999  # customer ids are "C" + 7 digits

_REFERENCE_DATE = date(2026, 1, 1)
_EPOCH = date(1970, 1, 1)
_MIN_AGE, _MAX_AGE, _MODE_AGE = 16, 90, 38
_SIGNUP_START = datetime(2019, 1, 1, tzinfo=timezone.utc)
_SIGNUP_END = datetime(2026, 1, 1, tzinfo=timezone.utc)

_ZIP_PREFIXES = 40
_ZIPS_PER_PREFIX = 5
_ZIP_SKEW = 0.7  # Zipf exponent: a few busy zips, a long tail of rare ones

_COUNTRY_WEIGHTS = {
    "US": 70.0, "CA": 8.0, "GB": 7.0, "DE": 5.0, "FR": 4.0, "MX": 3.0,
    "AU": 0.8, "NL": 0.6, "ES": 0.5, "IT": 0.4, "JP": 0.3, "BR": 0.2, "IE": 0.1, "NZ": 0.1,
}  # fmt: skip
_GENDER_WEIGHTS = {"female": 48.0, "male": 48.0, "nonbinary": 3.0, "unknown": 1.0}
# Whole consent lists with their weights: None is a null list, () an empty one.
_CONSENT_WEIGHTS: dict[tuple[str, ...] | None, float] = {
    None: 3.0,
    (): 10.0,
    ("analytics",): 20.0,
    ("marketing",): 6.0,
    ("support",): 10.0,
    ("analytics", "marketing"): 14.0,
    ("analytics", "support"): 17.0,
    ("marketing", "support"): 5.0,
    ("analytics", "marketing", "support"): 15.0,
}

_NULL_BIRTH_DATE = 0.01
_NULL_INCOME = 0.02
_NULL_NOTES = 0.20
_INCOME_MEDIAN, _INCOME_SIGMA = 58_000, 0.55
_INCOME_MIN, _INCOME_MAX = 15_000, 400_000

_LUHN_DOUBLED = {str(d): (2 * d - 9 if d > 4 else 2 * d) for d in range(10)}

_NOTE_TEMPLATES = (
    "{first} called about a double charge; refund issued.",
    "{first} asked us to update the shipping address.",
    "Spoke with {first} on {phone} about a late delivery.",
    "{first} requested a callback at {phone}.",
    "Left a voicemail for {first}, no answer on {phone}.",
    "{first} wants to stop marketing emails.",
    "{first} reported the app crashes at login; escalated to tier 2.",
    "Verified the identity of {first} before the password reset.",
)


@dataclass(frozen=True)
class _Pools:
    """Values drawn once from Faker; rows sample from these."""

    female_names: tuple[str, ...]
    male_names: tuple[str, ...]
    last_names: tuple[str, ...]
    streets: tuple[str, ...]
    zips: tuple[str, ...]
    zip_cities: tuple[str, ...]  # zip_cities[i] is the city of zips[i]
    zip_cum_weights: tuple[float, ...]
    mail_domains: tuple[str, ...]


@functools.lru_cache(maxsize=4)
def _pools(locale: str, seed: int) -> _Pools:
    """Draw the Faker pools for `locale`, cached because Faker dominates generation time."""
    fake = Faker(locale)
    fake.seed_instance(seed)
    prefixes = fake.random.sample(range(10, 1000), _ZIP_PREFIXES)
    zips = [
        f"{prefix:03d}{suffix:02d}"
        for prefix in prefixes
        for suffix in sorted(fake.random.sample(range(100), _ZIPS_PER_PREFIX))
    ]
    fake.random.shuffle(zips)  # so the busiest zips are not all in one prefix
    weights = [1.0 / (rank**_ZIP_SKEW) for rank in range(1, len(zips) + 1)]
    return _Pools(
        female_names=tuple(fake.first_name_female() for _ in range(250)),
        male_names=tuple(fake.first_name_male() for _ in range(250)),
        last_names=tuple(fake.last_name() for _ in range(1000)),
        streets=tuple(fake.street_address() for _ in range(500)),
        zips=tuple(zips),
        zip_cities=tuple(fake.city() for _ in zips),
        zip_cum_weights=tuple(itertools.accumulate(weights)),
        mail_domains=tuple(fake.free_email_domain() for _ in range(12)) + tuple(fake.domain_name() for _ in range(8)),
    )


@functools.cache  # names come from the bounded pools
def _ascii_slug(name: str) -> str:
    """Lower-case ASCII letters and digits of `name` ("O'Brien" -> "obrien", "Jürgen" -> "jurgen")."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def _email(rng: random.Random, first: str, last: str, domains: tuple[str, ...], taken: set[str]) -> str:
    """A plausible address, unique once stripped and lower-cased, sometimes with messy case/spaces."""
    f, la = _ascii_slug(first) or "customer", _ascii_slug(last) or "x"
    pattern = rng.randrange(5)
    if pattern == 0:
        local = f"{f}.{la}"
    elif pattern == 1:
        local = f"{f}{la}"
    elif pattern == 2:
        local = f"{f[0]}{la}"
    elif pattern == 3:
        local = f"{f}_{la}{rng.randint(1, 99)}"
    else:
        local = f"{f}{rng.randint(1, 999)}"
    domain = rng.choice(domains)
    while f"{local}@{domain}" in taken:
        local = f"{local}{rng.randint(0, 9)}"
    address = f"{local}@{domain}"
    taken.add(address)
    style = rng.random()
    if style < 0.06:
        address = ".".join(part.capitalize() for part in local.split(".")) + "@" + domain.capitalize()
    elif style < 0.08:
        address = address.upper()
    if rng.random() < 0.04:
        pad = " " * rng.randint(1, 2)
        address = pad + address if rng.random() < 0.5 else address + pad
    return address


def _card_number(rng: random.Random) -> str:
    """A Luhn-valid 16-digit Visa- or Mastercard-like number, grouped as dddd-dddd-dddd-dddd."""
    prefix = "4" if rng.random() < 0.6 else str(rng.randint(51, 55))
    filler = 15 - len(prefix)
    body = prefix + f"{rng.randrange(10**filler):0{filler}d}"
    # Once the check digit is appended, the body's last digit and every second one before it are doubled.
    total = sum(map(int, body[-2::-2])) + sum(_LUHN_DOUBLED[ch] for ch in body[-1::-2])
    digits = body + str(-total % 10)
    return f"{digits[:4]}-{digits[4:8]}-{digits[8:12]}-{digits[12:]}"


def _weighted(weights: dict) -> tuple[list, list[float]]:
    """`weights` split into values and cumulative weights, ready for `Random.choices`."""
    return list(weights), list(itertools.accumulate(weights.values()))


def synthetic_customers(rows: int, seed: int = 7, *, locale: str = "en_US") -> pa.Table:
    """Generate a reproducible table of fake customers with `CUSTOMER_SCHEMA`.

    The data is shaped for privacy work: emails need normalizing (case, spaces), zips come from
    a skewed pool of about 200 so 3-digit prefixes and rare zips both occur (k-anonymity), card
    numbers are Luhn-valid (format-preserving tokenization), notes repeat names and phones
    (free-text redaction), and a few birth dates, incomes, consents and notes are null.

    Args:
        rows: Number of customers, 0 to `MAX_ROWS`.
        seed: Seed for every random draw; the same rows and seed give the same table.
        locale: Faker locale for names, streets and cities; emails stay ASCII.

    Returns:
        A table of `rows` customers with ids "C0000001", "C0000002", ... in order; it is the
        first `rows` rows of any longer table from the same seed and locale.

    Raises:
        ValueError: If `rows` is negative or above `MAX_ROWS`.
    """
    if not 0 <= rows <= MAX_ROWS:
        raise ValueError(f"rows must be between 0 and {MAX_ROWS}, got {rows}")
    pools = _pools(locale, seed)
    rng = random.Random(seed)
    country_values, country_cum = _weighted(_COUNTRY_WEIGHTS)
    gender_values, gender_cum = _weighted(_GENDER_WEIGHTS)
    consent_values, consent_cum = _weighted(_CONSENT_WEIGHTS)
    zip_indexes = range(len(pools.zips))

    any_names = pools.female_names + pools.male_names
    names_by_gender = {"female": pools.female_names, "male": pools.male_names}
    youngest = (_REFERENCE_DATE.replace(year=_REFERENCE_DATE.year - _MIN_AGE) - _EPOCH).days
    oldest = (_REFERENCE_DATE.replace(year=_REFERENCE_DATE.year - _MAX_AGE - 1) - _EPOCH).days + 1
    mode = (_REFERENCE_DATE.replace(year=_REFERENCE_DATE.year - _MODE_AGE) - _EPOCH).days
    signup_start = int(_SIGNUP_START.timestamp()) * 1_000_000
    signup_end = int(_SIGNUP_END.timestamp()) * 1_000_000
    income_mu = math.log(_INCOME_MEDIAN)

    columns: dict[str, list] = {name: [] for name in CUSTOMER_SCHEMA.names}
    taken_emails: set[str] = set()
    # Every draw for a row happens in its own iteration, so a table is a prefix of any longer one.
    for number in range(1, rows + 1):
        gender = rng.choices(gender_values, cum_weights=gender_cum)[0]
        first = rng.choice(names_by_gender.get(gender, any_names))
        last = rng.choice(pools.last_names)
        phone = f"+1-555-{rng.randrange(1000):03d}-{rng.randrange(10000):04d}"
        columns["customer_id"].append(f"C{number:07d}")
        columns["first_name"].append(first)
        columns["last_name"].append(last)
        columns["email"].append(_email(rng, first, last, pools.mail_domains, taken_emails))
        columns["phone"].append(phone)
        birth_day = None if rng.random() < _NULL_BIRTH_DATE else round(rng.triangular(oldest, youngest, mode))
        columns["birth_date"].append(birth_day)
        columns["street"].append(rng.choice(pools.streets))
        zip_index = rng.choices(zip_indexes, cum_weights=pools.zip_cum_weights)[0]
        columns["city"].append(pools.zip_cities[zip_index])
        columns["zip"].append(pools.zips[zip_index])
        columns["country"].append(rng.choices(country_values, cum_weights=country_cum)[0])
        columns["gender"].append(gender)
        income = min(max(rng.lognormvariate(income_mu, _INCOME_SIGMA), _INCOME_MIN), _INCOME_MAX)
        columns["income"].append(None if rng.random() < _NULL_INCOME else int(round(income, -2)))
        columns["card_number"].append(_card_number(rng))
        columns["signup_ts"].append(rng.randrange(signup_start, signup_end))
        consent_set = rng.choices(consent_values, cum_weights=consent_cum)[0]
        columns["consents"].append(None if consent_set is None else list(consent_set))
        note = None if rng.random() < _NULL_NOTES else rng.choice(_NOTE_TEMPLATES)
        columns["notes"].append(note and note.format(first=first, phone=phone))
    return pa.table(columns, schema=CUSTOMER_SCHEMA)


def _json_default(value: object) -> str:
    """ISO 8601 text for the dates and timestamps `json` cannot encode."""
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def write_customers(path: str, rows: int, seed: int = 7) -> int:
    """Write `synthetic_customers(rows, seed)` to a file whose format follows the extension.

    Gives demos and benchmarks input files in each format a pipeline may read. Parquet keeps the
    schema. CSV cannot hold lists, so consents become one ';'-joined string (an empty list is
    `""`, a null list an empty field). JSON Lines holds one object per customer, with dates and
    timestamps as ISO 8601 strings.

    Args:
        path: Target file ending in .parquet, .csv or .jsonl; it is overwritten.
        rows: Number of customers.
        seed: Seed passed to `synthetic_customers`.

    Returns:
        The number of rows written.

    Raises:
        ValueError: If the extension is not one of the three above.
    """
    extension = os.path.splitext(path)[1].lower()
    if extension not in (".parquet", ".csv", ".jsonl"):
        raise ValueError(f"unsupported extension {extension!r} for {path}; use .parquet, .csv or .jsonl")
    table = synthetic_customers(rows, seed)
    if extension == ".parquet":
        pq.write_table(table, path)
    elif extension == ".csv":
        index = table.schema.get_field_index("consents")
        joined = pc.binary_join(table.column("consents"), ";")
        pa_csv.write_csv(table.set_column(index, "consents", joined), path)
    else:
        with open(path, "w", encoding="utf-8") as out:
            for record in table.to_pylist():
                out.write(json.dumps(record, ensure_ascii=False, default=_json_default) + "\n")
    return table.num_rows
