"""The one list of field actions: YAML `action:` value -> Action, and the params union."""

from types import MappingProxyType
from typing import Annotated, Union

from pydantic import Field

from veil.transforms.actions import (
    date_shift,
    drop,
    encrypt,
    fake,
    generalize,
    keep,
    mask,
    pseudonymize,
    redact,
    replace,
    scrub,
    tokenize,
)
from veil.transforms.actions.base import Action

_MODULES = (keep, drop, redact, replace, mask, pseudonymize, tokenize, encrypt, generalize, date_shift, fake, scrub)

REGISTRY: MappingProxyType[str, Action] = MappingProxyType({m.ACTION.name: m.ACTION for m in _MODULES})

FieldSpec = Annotated[
    Union[
        keep.KeepParams,
        drop.DropParams,
        redact.RedactParams,
        replace.ReplaceParams,
        mask.MaskParams,
        pseudonymize.PseudonymizeParams,
        tokenize.TokenizeParams,
        encrypt.EncryptParams,
        generalize.GeneralizeParams,
        date_shift.DateShiftParams,
        fake.FakeParams,
        scrub.ScrubParams,
    ],
    Field(discriminator="action"),
]
