"""Contender 3, Presidio: the naive Beam job with presidio-anonymizer's operators.

The same job shape as the naive contender (`ReadFromParquet` -> per-record `DoFn` ->
`WriteToParquet`). In each record, the fields Presidio has an operator for go through ONE
`BatchAnonymizerEngine.anonymize_dict` call, each value marked as an entity over the span to
replace (Presidio anonymizes spans of text that an analyzer found; here the spans are given):

| field | Presidio operator | differs from veil |
|---|---|---|
| customer_id, email | `hash` (sha256, fixed 32-byte salt; email normalized first) | salted SHA-256, not HMAC |
| phone | `custom` with veil's AES-SIV token function | the same primitive, through Presidio's engine |
| notes | `encrypt` (Presidio's AES-256-CBC, random IV, no MAC) | CBC without authentication, not GCM |
| last_name | `mask` over the span after the first character | - |
| zip | `replace` with "" over the span after the first three characters | - |

Presidio has no format-preserving encryption, no age bins, no numeric buckets and no date
truncation: card_number (FF1), birth_date, income and signup_ts, the consent gate and the
kept fields run the naive contender's code (`bench/workload.py`).

Run by bench/run.py: `python bench/contender_presidio.py --input F --output DIR --keyset K [beam options]`.
Prints one JSON line {"read": n, "written": m}.
"""

import os
import sys

import apache_beam as beam
from apache_beam.metrics import Metrics
from presidio_anonymizer import BatchAnonymizerEngine
from presidio_anonymizer.entities import DictRecognizerResult, OperatorConfig, RecognizerResult

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from contender_naive import NAMESPACE, run_records  # noqa: E402
from workload import (  # noqa: E402
    CONSENT_FIELD,
    MASK_KEEP_FIRST,
    OUTPUT_SCHEMA,
    ZIP_PREFIX,
    Primitives,
    has_consent,
    unkeyed_generalizations,
    working_keys,
)

SALT = b"veil-bench-presidio-fixed-salt!!"  # 32 bytes, public: a benchmark, not a secret

# input field -> (output field, entity type, where the span starts)
PRESIDIO_FIELDS = {
    "customer_id": ("customer_key", "CUSTOMER_ID", 0),
    "email": ("email_key", "EMAIL_ADDRESS", 0),
    "phone": ("phone_token", "PHONE_NUMBER", 0),
    "notes": ("notes", "NOTES", 0),
    "last_name": ("last_name", "LAST_NAME", MASK_KEEP_FIRST),
    "zip": ("zip3", "ZIP", ZIP_PREFIX),
}


def operators(primitives: Primitives, notes_key: bytes) -> dict[str, OperatorConfig]:
    return {
        "CUSTOMER_ID": OperatorConfig("hash", {"hash_type": "sha256", "salt": SALT}),
        "EMAIL_ADDRESS": OperatorConfig("hash", {"hash_type": "sha256", "salt": SALT}),
        "PHONE_NUMBER": OperatorConfig("custom", {"lambda": primitives.phone_token}),
        "NOTES": OperatorConfig("encrypt", {"key": notes_key}),
        "LAST_NAME": OperatorConfig("mask", {"masking_char": "*", "chars_to_mask": 1_000_000, "from_end": False}),
        "ZIP": OperatorConfig("replace", {"new_value": ""}),
    }


class PresidioRecord(beam.DoFn):
    """The policy on one dict record, Presidio's operators where it has them."""

    def __init__(self, keyset: str):
        self._keyset = keyset
        self._read = Metrics.counter(NAMESPACE, "read")
        self._written = Metrics.counter(NAMESPACE, "written")

    def setup(self):
        keys = working_keys(self._keyset)
        self._primitives = Primitives(keys)
        self._engine = BatchAnonymizerEngine()
        self._operators = operators(self._primitives, keys.notes)

    def process(self, record):
        self._read.inc()
        if not has_consent(record.get(CONSENT_FIELD)):
            return
        results = []
        for field, (_, entity, start) in PRESIDIO_FIELDS.items():
            value = record[field]
            if value is None:
                continue
            if field == "email":
                value = value.strip().lower()
            span = [RecognizerResult(entity, start, len(value), 1.0)] if len(value) > start else []
            if field == "last_name" and not span:  # too short to keep a character: mask it whole
                span = [RecognizerResult(entity, 0, len(value), 1.0)]
            results.append(DictRecognizerResult(field, value, span))
        anonymized = self._engine.anonymize_dict(results, operators=self._operators)
        out = {output: anonymized.get(field) for field, (output, _, _) in PRESIDIO_FIELDS.items()}
        card = record["card_number"]
        out["card_token"] = None if card is None else self._primitives.card_token(card)
        out.update(unkeyed_generalizations(record))
        out["country"], out["gender"] = record["country"], record["gender"]
        self._written.inc()
        yield {name: out[name] for name in OUTPUT_SCHEMA.names}


if __name__ == "__main__":
    run_records(__doc__.splitlines()[0], PresidioRecord)
