"""tokenize: reversible deterministic tokens (AES-SIV), carrying the key version."""

from typing import Literal

from pydantic import Field, field_validator

from veil.errors import ActionError, ErrorCode
from veil.transforms.actions.base import (
    Action,
    ActionParams,
    BindContext,
    Normalization,
    normalizer,
    parse_token,
    string_type,
    token_text,
)


class TokenizeParams(ActionParams):
    """Deterministic, reversible token.

    Attributes:
        method: `siv` (AES-SIV, text token `v<version>.<base64url>`).
        domain: names the derived key (default: the input field's name).
        normalize: steps applied before encryption (strip, lower, upper).
    """

    action: Literal["tokenize"]
    method: Literal["siv", "ff1"] = "siv"
    domain: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    normalize: tuple[Normalization, ...] = ()

    @field_validator("method")
    @classmethod
    def _ff1_not_yet(cls, method: str) -> str:
        if method == "ff1":
            raise ValueError(
                "tokenize method 'ff1' (format-preserving) is not available in this version; use method: siv"
            )
        return method


def key_info(purpose: str, domain: str) -> str:
    """HKDF info string of the SIV key for (purpose, domain); also its associated data."""
    return f"veil/v1/tokenize-siv/{purpose}/{domain}"


def _bind(params: TokenizeParams, ctx: BindContext):
    keyring, version = ctx.require_keys()
    info = key_info(ctx.purpose, params.domain or ctx.field)
    daead, associated_data = keyring.daead(info, version), info.encode("utf-8")
    normalize = normalizer(params.normalize)

    def tokenize(value):
        """`v<version>.` + base64url(AES-SIV(utf-8 of normalized value, [info])).

        Security: deterministic (joinable within purpose and domain); reversible with the key;
        tampering is detected.
        """
        if not isinstance(value, str):
            raise ActionError(ErrorCode.WRONG_TYPE)
        plaintext = normalize(value).encode("utf-8")
        return token_text(version, daead.encrypt_deterministically(plaintext, associated_data))

    return tokenize


def _reverse(params: TokenizeParams, ctx: BindContext):
    keyring = ctx.keyring
    info = key_info(ctx.purpose, params.domain or ctx.field)
    associated_data = info.encode("utf-8")

    def detokenize(text):
        """The (normalized) plaintext of a siv token, under the key version it carries."""
        version, payload = parse_token(text)
        daead = keyring.daead(info, keyring.readable_version(version))
        return daead.decrypt_deterministically(payload, associated_data).decode("utf-8")

    return detokenize


ACTION = Action(
    "tokenize",
    TokenizeParams,
    bind=_bind,
    output_type=string_type,
    accepts=frozenset({"string"}),
    keyed=True,
    reverse=_reverse,
)
