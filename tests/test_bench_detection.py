"""The detection bench (bench/detection.py) on a tiny corpus: the recall and precision it prints are a
plain recount of the detectors over the generated notes. No timing is asserted."""

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

from veil.transforms.detect import find_entities

BENCH = Path(__file__).resolve().parent.parent / "bench"
NOTES, SEED = 60, 5
ENTITIES = ("email", "phone", "card", "iban", "ssn", "ip", "person")


def _corpus():
    spec = importlib.util.spec_from_file_location("detection_corpus", BENCH / "detection_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_corpus(NOTES, SEED)


def _recount() -> dict[str, tuple[float, float]]:
    """Per entity (recall, precision), counted here without the bench's code."""
    planted, hit, detected, right = ({e: 0 for e in ENTITIES} for _ in range(4))
    for note in _corpus():
        spans = find_entities(note.text, ENTITIES)
        for p in note.planted:
            planted[p.entity] += 1
            hit[p.entity] += any(s.entity == p.entity and s.start < p.end and p.start < s.end for s in spans)
        for s in spans:
            detected[s.entity] += 1
            right[s.entity] += any(p.entity == s.entity and s.start < p.end and p.start < s.end for p in note.planted)
    return {
        e: (hit[e] / planted[e] if planted[e] else 1.0, right[e] / detected[e] if detected[e] else 1.0)
        for e in ENTITIES
    }


def test_printed_recall_and_precision_are_a_recount(tmp_path):
    out = tmp_path / "detection.json"
    command = [sys.executable, str(BENCH / "detection.py"), "--notes", str(NOTES), "--seed", str(SEED)]
    command += ["--repeats", "1", "--no-presidio", "--json", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    printed = {
        m.group(1): (float(m.group(3)), float(m.group(4)))
        for m in re.finditer(r"^(\w+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+-\s+-$", done.stdout, re.M)
    }
    recount = _recount()
    assert set(printed) == set(ENTITIES)
    for entity in ENTITIES:
        assert printed[entity] == tuple(round(x, 4) for x in recount[entity]), entity
    doc = json.loads(out.read_text())
    assert doc["notes"] == NOTES and doc["presidio_skipped"]
    assert sum(doc["planted"].values()) > 0 and doc["throughput_mb_per_s"]["veil scrub"] > 0
    assert {f"{e} {m}" for e in ENTITIES[:-1] for m in ("recall", "precision")} <= set(doc["targets"])
