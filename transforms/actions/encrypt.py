"""encrypt: randomised AES-256-GCM, bound to purpose and field, carrying the key version (or subject key id)."""

import base64
import binascii
from typing import Literal

from veil.errors import ActionError, ConfigError, ErrorCode, IntegrityError, KeyShreddedError
from veil.keys.tink_export import TinkKeySpec
from veil.transforms.actions.base import (
    BASE64URL,
    Action,
    ActionParams,
    BindContext,
    TextFormat,
    VerifyRule,
    decode_payload,
    parse_token,
    require_text,
    string_type,
    text_column,
    token_text,
    token_texts,
)


class EncryptParams(ActionParams):
    """Authenticated encryption of the value (AES-256-GCM, 96-bit random nonce).

    Attributes:
        per_subject: encrypt under the record's subject data key (from the policy's subject key
            table) instead of the purpose key, so that erasing the subject shreds the ciphertext.
    """

    action: Literal["encrypt"]
    per_subject: bool = False


def key_info(purpose: str) -> str:
    """HKDF info string of the encryption key of a purpose."""
    return f"veil/v1/encrypt/{purpose}"


def associated_data(purpose: str, field: str) -> bytes:
    """What a ciphertext is bound to: its purpose and its input field."""
    return f"veil/v1/encrypt/{purpose}/{field}".encode()


def _subject_aead(keyring, cell):
    """(key id, AEAD) of a subject key cell `<key id>:<wrapped, base64>`."""
    key_id, _, wrapped = cell.partition(":")
    try:
        unwrapped = base64.b64decode(wrapped, validate=True)
    except (ValueError, binascii.Error):
        raise IntegrityError("the subject key cell is not base64") from None
    return key_id, keyring.subject_aead(key_id, unwrapped)


def _bind_per_subject(ctx: BindContext):
    keyring, bound_to = ctx.keyring, associated_data(ctx.purpose, ctx.field)

    def encrypt_per_subject(value, key_cell):
        """`s.<subject key id>.` + base64url(nonce || AES-GCM ciphertext || tag) under the subject's key.

        Security: randomised; reversible only while the subject's key exists (erasure deletes it:
        crypto-shredding); the token names the key, never the subject.
        """
        text = require_text(value)
        if key_cell is None:
            raise ActionError(ErrorCode.NO_SUBJECT)
        key_id, aead = _subject_aead(keyring, key_cell)
        payload = aead.encrypt(text.encode("utf-8"), bound_to)
        return f"s.{key_id}." + base64.urlsafe_b64encode(payload).rstrip(b"=").decode("ascii")

    return encrypt_per_subject


def _bind(params: EncryptParams, ctx: BindContext):
    if params.per_subject:
        return _bind_per_subject(ctx)
    keyring, version = ctx.require_keys()
    aead, bound_to = keyring.aead(key_info(ctx.purpose), version), associated_data(ctx.purpose, ctx.field)

    def encrypt(value):
        """`v<version>.` + base64url(nonce || AES-GCM ciphertext || tag).

        Security: randomised (not joinable); reversible with the key; tampering, another
        purpose or another field is detected.
        """
        return token_text(version, aead.encrypt(require_text(value).encode("utf-8"), bound_to))

    return encrypt


def _bind_column(params: EncryptParams, ctx: BindContext):
    """`encrypt` over a column: one nonce draw, one GCM loop; None per subject (keys differ per row)."""
    if params.per_subject:
        return None
    keyring, version = ctx.require_keys()
    aead, bound_to = keyring.aead(key_info(ctx.purpose), version), associated_data(ctx.purpose, ctx.field)

    def encrypt_texts(texts: list[str]):
        return token_texts(version, aead.encrypt_many(list(map(str.encode, texts)), bound_to)), [], None

    return text_column(require_text, encrypt_texts)


def subject_key_id(token: str) -> str | None:
    """The subject key id a per-subject ciphertext names (None if it is not one)."""
    if not isinstance(token, str) or not token.startswith("s."):
        return None
    return token[2:].partition(".")[0] or None


def _reverse(params: EncryptParams, ctx: BindContext):
    keyring = ctx.keyring
    bound_to, info = associated_data(ctx.purpose, ctx.field), key_info(ctx.purpose)
    if params.per_subject:

        def decrypt_per_subject(text, key_cell):
            """The plaintext of a per-subject ciphertext; `KeyShreddedError` once its key is deleted."""
            key_id = subject_key_id(text)
            if key_id is None:
                raise IntegrityError("not a per-subject ciphertext")
            if key_cell is None:
                raise KeyShreddedError("the subject key of this value was deleted")
            cell_id, aead = _subject_aead(keyring, key_cell)
            if cell_id != key_id:
                raise IntegrityError("ciphertext names another key")
            _, _, payload = text[2:].partition(".")
            return aead.decrypt(decode_payload(payload), bound_to).decode("utf-8")

        return decrypt_per_subject

    def decrypt(text):
        """The plaintext of an `encrypt` output, under the key version it carries."""
        version, sealed = parse_token(text)
        return keyring.aead(info, keyring.readable_version(version)).decrypt(sealed, bound_to).decode("utf-8")

    return decrypt


def _tink_key(params: EncryptParams, purpose: str, field: str) -> TinkKeySpec:
    """The purpose's AES-256-GCM key as a Tink Aead key; refused per subject (one key per subject)."""
    if params.per_subject:
        raise ConfigError(
            "its values are encrypted per subject (one data key per customer, so erasure can shred it); "
            "a Tink keyset cannot hold those keys: use 'veil detokenize' instead"
        )
    return TinkKeySpec("aead", key_info(purpose), associated_data(purpose, field))


# v<version>.<base64url>, or s.<subject key id>.<base64url>
CIPHERTEXT_FORMAT = TextFormat(BASE64URL + ".", head=r"(?:v[0-9]+|s\.[A-Za-z0-9_-]+)\.[A-Za-z0-9_-]")

ACTION = Action(
    "encrypt",
    EncryptParams,
    bind=_bind,
    output_type=string_type,
    accepts=frozenset({"string"}),
    keyed=True,
    deterministic=False,
    subject_input=lambda params: "key" if params.per_subject else None,
    reverse=_reverse,
    bind_column=_bind_column,
    tink_key=_tink_key,
    verify=lambda _params: VerifyRule("encoded", format=CIPHERTEXT_FORMAT, designed=None),
)
