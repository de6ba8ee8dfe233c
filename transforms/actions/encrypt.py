"""encrypt: randomised AES-256-GCM, bound to purpose and field, carrying the key version."""

from typing import Literal

from veil.errors import ActionError, ErrorCode
from veil.transforms.actions.base import Action, ActionParams, BindContext, parse_token, string_type, token_text


class EncryptParams(ActionParams):
    """Authenticated encryption of the value (AES-256-GCM, 96-bit random nonce)."""

    action: Literal["encrypt"]


def key_info(purpose: str) -> str:
    """HKDF info string of the encryption key of a purpose."""
    return f"veil/v1/encrypt/{purpose}"


def associated_data(purpose: str, field: str) -> bytes:
    """What a ciphertext is bound to: its purpose and its input field."""
    return f"veil/v1/encrypt/{purpose}/{field}".encode()


def _bind(_params: EncryptParams, ctx: BindContext):
    keyring, version = ctx.require_keys()
    aead, bound_to = keyring.aead(key_info(ctx.purpose), version), associated_data(ctx.purpose, ctx.field)

    def encrypt(value):
        """`v<version>.` + base64url(nonce || AES-GCM ciphertext || tag).

        Security: randomised (not joinable); reversible with the key; tampering, another
        purpose or another field is detected.
        """
        if not isinstance(value, str):
            raise ActionError(ErrorCode.WRONG_TYPE)
        return token_text(version, aead.encrypt(value.encode("utf-8"), bound_to))

    return encrypt


def _reverse(_params: EncryptParams, ctx: BindContext):
    keyring = ctx.keyring
    bound_to, info = associated_data(ctx.purpose, ctx.field), key_info(ctx.purpose)

    def decrypt(text):
        """The plaintext of an `encrypt` output, under the key version it carries."""
        version, sealed = parse_token(text)
        return keyring.aead(info, keyring.readable_version(version)).decrypt(sealed, bound_to).decode("utf-8")

    return decrypt


ACTION = Action(
    "encrypt",
    EncryptParams,
    bind=_bind,
    output_type=string_type,
    accepts=frozenset({"string"}),
    keyed=True,
    deterministic=False,
    reverse=_reverse,
)
