"""Detection benchmark (issue 11): recall and precision per entity, and scrub against Presidio.

On a labeled corpus of support notes (bench/detection_corpus.py: planted entities in six
languages and many formats, plus look-alikes), it measures:

- per entity, the recall (planted spans a detection of that entity overlaps) and the precision
  (detections overlapping a planted span of their entity) of veil's detectors, and of Presidio's
  predefined pattern recognizers (presidio-analyzer, no NLP model: each recognizer's `analyze`
  with `nlp_artifacts=None`, every score kept; phone regions as veil's), for the six entities both
  have: email, phone, card, iban, ssn, ip. `person` is veil's alone (Presidio finds names with an
  NLP model only);
- throughput, one process on one core: veil's `scrub` kernel (the Arrow kernel `veil run` uses,
  `replace: label`, default entities) over the notes in batches, against Presidio's recognizers
  plus its AnonymizerEngine replacing the spans with labels, in MB of note text per second.

Targets: recall and precision >= 0.98 for the six entities; scrub >= 10x Presidio at equal or
better recall. Printed as met or not met; a benchmark, not a test. `--json FILE` writes the figures.
Run by `make bench` (bench/run.py) or alone: `python bench/detection.py [--notes N]`.
"""

import argparse
import json
import os
import sys
import time
from collections import Counter

import pyarrow as pa

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from detection_corpus import Note, make_corpus  # noqa: E402

from veil.transforms.actions.base import BindContext  # noqa: E402
from veil.transforms.actions.scrub import ScrubParams  # noqa: E402
from veil.transforms.detect import DEFAULT_REGIONS, find_entities  # noqa: E402
from veil.transforms.registry import REGISTRY  # noqa: E402

SHARED = ("email", "phone", "card", "iban", "ssn", "ip")  # the entities veil and Presidio both detect
ENTITIES = (*SHARED, "person")
TARGET_QUALITY = 0.98
TARGET_SPEEDUP = 10.0
BATCH = 2048
_PRESIDIO_NAMES = {
    "EMAIL_ADDRESS": "email",
    "PHONE_NUMBER": "phone",
    "CREDIT_CARD": "card",
    "IBAN_CODE": "iban",
    "US_SSN": "ssn",
    "IP_ADDRESS": "ip",
}


def veil_detector(text: str) -> list[tuple[int, int, str]]:
    """veil's detectors (the six shared entities and person), spans merged as scrub merges them."""
    return [(s.start, s.end, s.entity) for s in find_entities(text, ENTITIES, DEFAULT_REGIONS)]


def presidio_missing() -> str | None:
    """Why Presidio cannot run here, or None."""
    try:
        import presidio_analyzer  # noqa: F401
        import presidio_anonymizer  # noqa: F401
    except ImportError:
        return "presidio-analyzer is not installed (pip install -c constraints.txt -e '.[bench]')"
    return None


def presidio_recognizers() -> list:
    """Presidio's predefined pattern recognizers for the shared entities (phone regions as veil's)."""
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        PhoneRecognizer,
        UsSsnRecognizer,
    )

    return [
        EmailRecognizer(),
        PhoneRecognizer(supported_regions=DEFAULT_REGIONS),
        CreditCardRecognizer(),
        IbanRecognizer(),
        UsSsnRecognizer(),
        IpRecognizer(),
    ]


def presidio_results(recognizers: list, text: str) -> list:
    """Every recognizer's results on `text`, without an NLP model (every score kept)."""
    return [result for r in recognizers for result in r.analyze(text, r.supported_entities, nlp_artifacts=None)]


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def score(notes: list[Note], found: list[list[tuple[int, int, str]]], entities: tuple[str, ...]) -> dict[str, dict]:
    """Per entity: planted, tp (planted spans a same-entity detection overlaps), detected, correct
    (detections overlapping a planted span of their entity), recall and precision; `found[i]` is
    what a detector found in `notes[i]`, as (start, end, entity)."""
    counts = {entity: Counter() for entity in entities}
    for note, spans in zip(notes, found):
        spans = [span for span in spans if span[2] in counts]
        for planted in note.planted:
            if planted.entity in counts:
                counts[planted.entity]["planted"] += 1
                hit = any(s[2] == planted.entity and _overlaps(s[:2], (planted.start, planted.end)) for s in spans)
                counts[planted.entity]["tp"] += hit
        for start, end, entity in spans:
            counts[entity]["detected"] += 1
            right = any(p.entity == entity and _overlaps((start, end), (p.start, p.end)) for p in note.planted)
            counts[entity]["correct"] += right
    return {
        entity: {
            **{key: c[key] for key in ("planted", "tp", "detected", "correct")},
            "recall": c["tp"] / c["planted"] if c["planted"] else 1.0,
            "precision": c["correct"] / c["detected"] if c["detected"] else 1.0,
        }
        for entity, c in counts.items()
    }


def veil_scrub_seconds(texts: list[str], repeats: int) -> float:
    """Best of `repeats` timings of veil's scrub kernel (label, default entities) over `texts` in batches."""
    params = ScrubParams(action="scrub")
    kernel = REGISTRY["scrub"].bind_arrow(params, BindContext("bench", "notes", tally=Counter()), pa.string())
    batches = [pa.array(texts[i : i + BATCH], pa.string()) for i in range(0, len(texts), BATCH)]
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for batch in batches:
            kernel(batch)
        best = min(best, time.perf_counter() - started)
    return best


def presidio_pass(texts: list[str]) -> tuple[float, list[list[tuple[int, int, str]]]]:
    """One timed pass of Presidio's recognizers plus AnonymizerEngine (labels) over `texts`, after a
    warm-up: (seconds, the spans found per text as (start, end, veil entity name))."""
    from presidio_anonymizer import AnonymizerEngine
    from presidio_anonymizer.entities import OperatorConfig

    recognizers, engine = presidio_recognizers(), AnonymizerEngine()
    operators = {
        name: OperatorConfig("replace", {"new_value": f"[{e.upper()}]"}) for name, e in _PRESIDIO_NAMES.items()
    }
    for text in texts[:20]:  # warm-up: lazily loaded phone metadata, compiled patterns
        engine.anonymize(text, presidio_results(recognizers, text), operators)
    found, seconds = [], 0.0
    for text in texts:
        started = time.perf_counter()
        results = presidio_results(recognizers, text)
        engine.anonymize(text, results, operators)
        seconds += time.perf_counter() - started
        found.append([(r.start, r.end, _PRESIDIO_NAMES[r.entity_type]) for r in results])
    return seconds, found


def run(notes: int, seed: int, repeats: int, presidio: bool = True) -> dict:
    """The benchmark's figures (see the module docstring)."""
    corpus = make_corpus(notes, seed)
    texts = [note.text for note in corpus]
    megabytes = sum(len(t.encode()) for t in texts) / 1e6
    doc: dict = {
        "notes": notes,
        "seed": seed,
        "megabytes": megabytes,
        "planted": dict(Counter(p.entity for note in corpus for p in note.planted)),
        "veil": score(corpus, [veil_detector(text) for text in texts], ENTITIES),
    }
    veil_scrub_seconds(texts[:20], 1)  # warm-up: lazily loaded phone metadata
    doc["throughput_mb_per_s"] = {"veil scrub": megabytes / veil_scrub_seconds(texts, repeats)}
    doc["presidio_skipped"] = presidio_missing() if presidio else "not asked (--no-presidio)"
    if not doc["presidio_skipped"]:
        seconds, found = presidio_pass(texts)
        doc["presidio"] = score(corpus, found, SHARED)
        doc["throughput_mb_per_s"]["presidio"] = megabytes / seconds
    doc["targets"] = targets(doc)
    return doc


def _recall(figures: dict, entities: tuple[str, ...]) -> float:
    planted = sum(figures[e]["planted"] for e in entities)
    return sum(figures[e]["tp"] for e in entities) / planted if planted else 1.0


def targets(doc: dict) -> dict[str, dict]:
    """Each target: its value, threshold and whether it is met."""
    out = {}
    for entity in SHARED:
        for measure in ("recall", "precision"):
            value = doc["veil"][entity][measure]
            out[f"{entity} {measure}"] = {"value": value, "threshold": TARGET_QUALITY, "met": value >= TARGET_QUALITY}
    if "presidio" in doc:
        speed = doc["throughput_mb_per_s"]
        ratio = speed["veil scrub"] / speed["presidio"]
        equal = _recall(doc["veil"], SHARED) >= _recall(doc["presidio"], SHARED)
        out["scrub / Presidio"] = {"value": ratio, "threshold": TARGET_SPEEDUP, "met": ratio >= TARGET_SPEEDUP}
        out["recall veil >= Presidio"] = {
            "value": _recall(doc["veil"], SHARED),
            "threshold": _recall(doc["presidio"], SHARED),
            "met": equal,
        }
    return out


def print_report(doc: dict) -> None:
    """The figures as a table, then the throughput and the targets."""
    presidio = doc.get("presidio", {})
    print(f"\ndetection: {doc['notes']:,} notes, {doc['megabytes']:.2f} MB, seed {doc['seed']}")
    head = ("veil recall", 12), ("veil precision", 15), ("Presidio recall", 16), ("Presidio precision", 19)
    print(f"{'entity':<8} {'planted':>8} " + " ".join(f"{name:>{width}}" for name, width in head))
    for entity in ENTITIES:
        v, p = doc["veil"][entity], presidio.get(entity)
        theirs = f"{p['recall']:>16.4f} {p['precision']:>19.4f}" if p else f"{'-':>16} {'-':>19}"
        print(f"{entity:<8} {v['planted']:>8} {v['recall']:>12.4f} {v['precision']:>15.4f} {theirs}")
    for name, speed in doc["throughput_mb_per_s"].items():
        per_note = doc["megabytes"] / speed / doc["notes"] * 1e6
        print(f"throughput {name}: {speed:.3g} MB/s on one core ({per_note:.0f} us per note)")
    if doc["presidio_skipped"]:
        print(f"Presidio skipped: {doc['presidio_skipped']}")
    for name, target in doc["targets"].items():
        verdict = "met" if target["met"] else "NOT met"
        print(f"target {name}: {target['value']:.4g} (want >= {target['threshold']:.4g}) {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=1000, help="notes in the corpus (default 1,000)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--repeats", type=int, default=3, help="timings of veil's scrub; the best counts (Presidio: one)"
    )
    parser.add_argument("--no-presidio", action="store_true", help="veil only")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    doc = run(args.notes, args.seed, args.repeats, presidio=not args.no_presidio)
    print_report(doc)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(doc, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
