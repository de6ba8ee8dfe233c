"""tokenize: reversible deterministic tokens: AES-SIV (`siv`) or format-preserving FF1 (`ff1`)."""

from typing import Literal

from pydantic import Field, model_validator

from veil.errors import ActionError, ConfigError, ErrorCode, IntegrityError
from veil.keys.ff1 import ALPHABETS, FF1Layout
from veil.keys.tink_export import TinkKeySpec
from veil.transforms.actions.base import (
    TOKEN_FORMAT,
    Action,
    ActionParams,
    BindContext,
    Normalization,
    VerifyRule,
    column_normalizer,
    normalizer,
    parse_token,
    require_text,
    string_type,
    text_column,
    token_text,
    token_texts,
)


class TokenizeParams(ActionParams):
    """Deterministic, reversible token.

    Attributes:
        method: `siv` (AES-SIV, text token `v<version>.<base64url>`, tamper-evident) or `ff1`
            (NIST SP 800-38G FF1: same length and format, no key version, no tamper detection).
        domain: names the derived key (default: the input field's name).
        normalize: steps applied before encryption (strip, lower, upper).
        alphabet: ff1 only: digits, alnum, lower, upper, or the characters themselves (2 to 256
            distinct). Characters outside it (dashes, spaces) stay where they are.
        keep_first: ff1 only: leading alphabet characters kept in clear.
        keep_last: ff1 only: trailing alphabet characters kept in clear.
    """

    action: Literal["tokenize"]
    method: Literal["siv", "ff1"] = "siv"
    domain: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    normalize: tuple[Normalization, ...] = ()
    alphabet: str | None = None
    keep_first: int = Field(0, ge=0)
    keep_last: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _method_settings(self) -> "TokenizeParams":
        if self.method == "siv":
            if self.alphabet is not None or self.keep_first or self.keep_last:
                raise ValueError("alphabet, keep_first and keep_last are for method: ff1")
            return self
        characters = self.characters
        if not 2 <= len(characters) <= 256 or len(set(characters)) != len(characters):
            raise ValueError("an ff1 alphabet is digits, alnum, lower, upper, or 2 to 256 distinct characters")
        return self

    @property
    def characters(self) -> str:
        """The ff1 alphabet's characters, in numeral order."""
        name = self.alphabet or "digits"
        return ALPHABETS.get(name, name)


def key_info(purpose: str, domain: str) -> str:
    """HKDF info string of the SIV key for (purpose, domain); also its associated data."""
    return f"veil/v1/tokenize-siv/{purpose}/{domain}"


def ff1_key_info(purpose: str, domain: str, alphabet: str) -> str:
    """HKDF info string of the FF1 key for (purpose, domain, alphabet characters)."""
    return f"veil/v1/tokenize-ff1/{purpose}/{domain}/{alphabet}"


def ff1_tweak(purpose: str, domain: str) -> bytes:
    """The FF1 tweak: UTF-8 of `veil/v1/tokenize-ff1/<purpose>/<domain>`."""
    return f"veil/v1/tokenize-ff1/{purpose}/{domain}".encode()


def _ff1(params: TokenizeParams, ctx: BindContext, version: int, decrypt: bool):
    """(per-value function, column function) of FF1 (or its inverse) for bound params."""
    domain = params.domain or ctx.field
    characters = params.characters
    cipher = ctx.keyring.ff1(ff1_key_info(ctx.purpose, domain, characters), version, characters)

    def refusal() -> Exception:
        if decrypt:
            return IntegrityError("not an ff1 token of this field")
        return ActionError(ErrorCode.TOO_SHORT)

    layout = FF1Layout(
        cipher,
        ff1_tweak(ctx.purpose, domain),
        keep_first=params.keep_first,
        keep_last=params.keep_last,
        decrypt=decrypt,
        refusal=refusal,
    )
    normalize = normalizer(params.normalize) if not decrypt else str
    normalize_all = column_normalizer(params.normalize) if not decrypt else None

    def format_preserving(value):
        """FF1 over the value's alphabet characters between the kept ones; the rest stays.

        Security: deterministic (joinable within purpose and domain); reversible with the key;
        NOT tamper-evident (any same-format string decrypts to something); a value with fewer
        than the standard's minimum of encryptable characters is refused, never passed through.
        """
        return layout.crypt(normalize(require_text(value)))

    def format_preserving_texts(texts: list[str]):
        """`format_preserving` over texts, with one batched FF1 call (see `FF1Layout.crypt_texts`)."""
        return layout.crypt_texts(normalize_all(texts) if normalize_all is not None else texts)

    return format_preserving, text_column(require_text, format_preserving_texts)


def _siv(params: TokenizeParams, ctx: BindContext):
    """(key version, AES-SIV of the field's domain, its associated data) for binding."""
    keyring, version = ctx.require_keys()
    info = key_info(ctx.purpose, params.domain or ctx.field)
    return version, keyring.daead(info, version), info.encode("utf-8")


def _bind(params: TokenizeParams, ctx: BindContext):
    if params.method == "ff1":
        return _ff1(params, ctx, ctx.require_keys()[1], decrypt=False)[0]
    version, daead, associated_data = _siv(params, ctx)
    normalize = normalizer(params.normalize)

    def tokenize(value):
        """`v<version>.` + base64url(AES-SIV(utf-8 of normalized value, [info])).

        Security: deterministic (joinable within purpose and domain); reversible with the key;
        tampering is detected.
        """
        plaintext = normalize(require_text(value)).encode("utf-8")
        return token_text(version, daead.encrypt_deterministically(plaintext, associated_data))

    return tokenize


def _reverse(params: TokenizeParams, ctx: BindContext):
    keyring = ctx.keyring
    if params.method == "ff1":
        return _ff1(params, ctx, keyring.readable_version(ctx.key_version), decrypt=True)[0]
    info = key_info(ctx.purpose, params.domain or ctx.field)
    associated_data = info.encode("utf-8")

    def detokenize(text):
        """The (normalized) plaintext of a siv token, under the key version it carries."""
        version, payload = parse_token(text)
        daead = keyring.daead(info, keyring.readable_version(version))
        return daead.decrypt_deterministically(payload, associated_data).decode("utf-8")

    return detokenize


def _bind_column(params: TokenizeParams, ctx: BindContext):
    """`_bind` over a column: SIV in one loop with the tokens encoded in bulk, or FF1 batched."""
    if params.method == "ff1":
        return _ff1(params, ctx, ctx.require_keys()[1], decrypt=False)[1]
    version, daead, associated_data = _siv(params, ctx)
    normalize_all = column_normalizer(params.normalize)

    def tokenize_texts(texts: list[str]):
        if normalize_all is not None:
            texts = normalize_all(texts)
        plaintexts = list(map(str.encode, texts))
        return token_texts(version, daead.encrypt_deterministically_many(plaintexts, associated_data)), [], None

    return text_column(require_text, tokenize_texts)


def _tink_key(params: TokenizeParams, purpose: str, field: str) -> TinkKeySpec:
    """The domain's AES-SIV key as a Tink DeterministicAead key; refused for ff1 (Tink has no FF1)."""
    if params.method == "ff1":
        raise ConfigError(
            "it is tokenized with ff1 (format-preserving), which neither Tink nor BigQuery implements: "
            "use 'veil detokenize' instead"
        )
    info = key_info(purpose, params.domain or field)
    return TinkKeySpec("deterministic_aead", info, info.encode("utf-8"))


ACTION = Action(
    "tokenize",
    TokenizeParams,
    bind=_bind,
    output_type=string_type,
    accepts=frozenset({"string"}),
    keyed=True,
    reverse=_reverse,
    bind_column=_bind_column,
    versioned=lambda params: params.method != "ff1",
    tink_key=_tink_key,
    verify=lambda params: (
        VerifyRule("derived", designed=None)  # ff1 keeps the value's format (a card stays card-shaped)
        if params.method == "ff1"
        else VerifyRule("encoded", format=TOKEN_FORMAT, designed=None)
    ),
)
