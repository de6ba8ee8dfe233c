"""pseudonymize: a keyed HMAC-SHA256 pseudonym, joinable within one purpose and domain."""

import base64
from typing import Literal

from pydantic import Field, model_validator

from veil.transforms.actions.base import (
    BASE64URL,
    Action,
    ActionParams,
    BindContext,
    Normalization,
    TextFormat,
    VerifyRule,
    as_text,
    column_normalizer,
    normalizer,
    string_type,
    text_column,
)

Encoding = Literal["hex", "base32", "base64url"]
BITS_PER_CHAR = {"hex": 4, "base32": 5, "base64url": 6}
FULL_LENGTH = {"hex": 64, "base32": 52, "base64url": 43}
ALPHABETS = {"hex": "0123456789abcdef", "base32": "abcdefghijklmnopqrstuvwxyz234567", "base64url": BASE64URL}
MIN_BITS = 64


class PseudonymizeParams(ActionParams):
    """Keyed pseudonym.

    Attributes:
        domain: names the derived key (default: the input field's name). Fields with the same
            domain in one purpose get joinable pseudonyms.
        encoding: hex, base32 (lower case, no padding) or base64url (no padding).
        length: output characters (a prefix of the full encoding); at least 64 bits.
        normalize: steps applied before hashing (strip, lower, upper).
    """

    action: Literal["pseudonymize"]
    domain: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    encoding: Encoding = "hex"
    length: int | None = Field(None, ge=1)
    normalize: tuple[Normalization, ...] = ()

    @model_validator(mode="after")
    def _length_fits(self) -> "PseudonymizeParams":
        if self.length is not None:
            full = FULL_LENGTH[self.encoding]
            shortest = -(-MIN_BITS // BITS_PER_CHAR[self.encoding])
            if not shortest <= self.length <= full:
                raise ValueError(
                    f"length for {self.encoding} must be between {shortest} (64 bits) and {full} characters"
                )
        return self


def encode_digest(digest: bytes, encoding: Encoding, length: int | None) -> str:
    """Text of a digest in `encoding`, cut to `length` characters."""
    if encoding == "hex":
        text = digest.hex()
    elif encoding == "base32":
        text = base64.b32encode(digest).decode("ascii").rstrip("=").lower()
    else:
        text = base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")
    return text if length is None else text[:length]


def key_info(purpose: str, domain: str) -> str:
    """HKDF info string of the pseudonym key for (purpose, domain)."""
    return f"veil/v1/pseudonymize/{purpose}/{domain}"


def _bind(params: PseudonymizeParams, ctx: BindContext):
    keyring, version = ctx.require_keys()
    prf = keyring.prf(key_info(ctx.purpose, params.domain or ctx.field), version)
    normalize, encoding, length = normalizer(params.normalize), params.encoding, params.length

    def pseudonymize(value):
        """HMAC-SHA256(key, utf-8 of the normalized text), encoded.

        Security: deterministic per (purpose, domain, key version); not reversible;
        unlinkable across purposes and domains.
        """
        return encode_digest(prf.compute(normalize(as_text(value)).encode("utf-8")), encoding, length)

    return pseudonymize


def _bind_column(params: PseudonymizeParams, ctx: BindContext):
    """`pseudonymize` over a column: one HMAC loop, hex in one map."""
    keyring, version = ctx.require_keys()
    prf = keyring.prf(key_info(ctx.purpose, params.domain or ctx.field), version)
    normalize_all, encoding, length = column_normalizer(params.normalize), params.encoding, params.length

    def pseudonymize_texts(texts: list[str]):
        if normalize_all is not None:
            texts = normalize_all(texts)
        digests = prf.compute_many(list(map(str.encode, texts)))
        if encoding != "hex":
            return [encode_digest(digest, encoding, length) for digest in digests], [], None
        encoded = list(map(bytes.hex, digests))
        return (encoded if length is None else [text[:length] for text in encoded]), [], None

    return text_column(as_text, pseudonymize_texts)


ACTION = Action(
    "pseudonymize",
    PseudonymizeParams,
    bind=_bind,
    output_type=string_type,
    accepts=frozenset({"string", "integer"}),
    keyed=True,
    bind_column=_bind_column,
    verify=lambda params: VerifyRule(
        "encoded",
        format=TextFormat(ALPHABETS[params.encoding], params.length or FULL_LENGTH[params.encoding]),
        designed=None,
    ),
)
