"""veil: a privacy transformation layer for Apache Beam.

One YAML policy per purpose says which fields that purpose may see and how each is
protected. The public names are re-exported lazily here so that `import veil` (and the
`veil` command's help) does not pay for importing Apache Beam.
"""

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "VeilError": "veil.errors",
    "ConfigError": "veil.errors",
    "InputError": "veil.errors",
    "KeyAccessError": "veil.errors",
    "IntegrityError": "veil.errors",
    "DataRefusedError": "veil.errors",
    "Policy": "veil.transforms.policy",
    "load_policy": "veil.transforms.policy",
    "compile_plan": "veil.transforms.plan",
    "Plan": "veil.transforms.plan",
    "Sanitize": "veil.transforms.beam",
    "SanitizeBatches": "veil.transforms.beam",
    "Detokenize": "veil.transforms.beam",
    "DetokenizeBatches": "veil.transforms.beam",
    "SanitizeResult": "veil.transforms.beam",
    "DeadLetter": "veil.transforms.engine",
    "EnforceKAnonymity": "veil.transforms.enforce",
    "DPAggregates": "veil.transforms.dp",
    "Verify": "veil.transforms.verify",
    "open_keyring": "veil.keys",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'veil' has no attribute '{name}'")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
