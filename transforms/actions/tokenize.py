"""tokenize: reversible deterministic tokens: AES-SIV (`siv`) or format-preserving FF1 (`ff1`)."""

from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from veil.errors import ActionError, ErrorCode, IntegrityError
from veil.keys.ff1 import ALPHABETS, MAX_LEN, MIN_DOMAIN
from veil.transforms.actions.base import (
    Action,
    ActionParams,
    BindContext,
    Normalization,
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


_ARRAYS_FROM = 8  # values (of one layout, or for FF1 at all) from which arrays beat a loop
_UTF32 = "utf-32-le"  # one code unit per character, so text positions are array positions


def _ff1(params: TokenizeParams, ctx: BindContext, version: int, decrypt: bool):
    """(per-value function, column function) of FF1 (or its inverse) for bound params."""
    domain = params.domain or ctx.field
    characters = params.characters
    cipher = ctx.keyring.ff1(ff1_key_info(ctx.purpose, domain, characters), version, characters)
    crypt, crypt_many = (cipher.decrypt, cipher.decrypt_many) if decrypt else (cipher.encrypt, cipher.encrypt_many)
    tweak, members = ff1_tweak(ctx.purpose, domain), frozenset(characters)
    first, last, radix = params.keep_first, params.keep_last, len(characters)
    shortest = next(n for n in range(1, 64) if radix**n >= MIN_DOMAIN)
    normalize = normalizer(params.normalize) if not decrypt else str
    normalize_all = column_normalizer(params.normalize) if not decrypt else None
    in_alphabet = np.zeros(max(map(ord, characters)) + 2, dtype=bool)  # code point -> member; last: others
    in_alphabet[[ord(ch) for ch in characters]] = True

    def refusal() -> Exception:
        if decrypt:
            return IntegrityError("not an ff1 token of this field")
        return ActionError(ErrorCode.TOO_SHORT)

    def middle_of(positions):
        """The alphabet positions FF1 encrypts (those between the kept ones); None if too few or too many."""
        middle = positions[first : max(len(positions) - last, 0)]
        return middle if shortest <= len(middle) <= MAX_LEN else None

    def locate(text: str) -> list[int]:
        """The positions of a normalized text that FF1 encrypts; refuses what it cannot protect."""
        middle = middle_of([i for i, ch in enumerate(text) if ch in members])
        if middle is None:
            raise refusal()
        return middle

    def merge(text: str, middle: list[int], secret: str) -> str:
        out = list(text)
        for index, ch in zip(middle, secret):
            out[index] = ch
        return "".join(out)

    def format_preserving(value):
        """FF1 over the value's alphabet characters between the kept ones; the rest stays.

        Security: deterministic (joinable within purpose and domain); reversible with the key;
        NOT tamper-evident (any same-format string decrypts to something); a value with fewer
        than the standard's minimum of encryptable characters is refused, never passed through.
        """
        text = normalize(require_text(value))
        middle = locate(text)
        return merge(text, middle, crypt("".join(text[i] for i in middle), tweak))

    def layouts(texts: list[str]):
        """Group the texts by layout (length, and where the alphabet is and what the rest is).

        Returns:
            (blocks, singles, refused): blocks are (rows, characters as a (rows, length)
            uint32 array, middle positions) for layouts shared by `_ARRAYS_FROM` values or more;
            singles are the rows left to do one by one; refused are rows of blocks whose
            layout has too few (or too many) characters to encrypt.
        """
        blocks, singles, refused = [], [], []
        if len(texts) < _ARRAYS_FROM:
            return blocks, list(range(len(texts))), refused
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        distinct = np.unique(lengths)
        for length in distinct.tolist():
            rows = np.arange(len(texts)) if len(distinct) == 1 else np.flatnonzero(lengths == length)
            if len(rows) < _ARRAYS_FROM or length == 0:
                singles.extend(rows.tolist())
                continue
            group = texts if len(distinct) == 1 else [texts[i] for i in rows.tolist()]
            chars = np.frombuffer("".join(group).encode(_UTF32, "surrogatepass"), dtype="<u4").reshape(-1, length)
            alphabetic = in_alphabet[np.minimum(chars, len(in_alphabet) - 1)]
            shapes = np.where(alphabetic, np.uint32(0xFFFFFFFF), chars)  # above any code point
            if (shapes == shapes[0]).all():
                found = [(rows, chars, shapes[0])]
            else:
                unique, inverse, counts = np.unique(shapes, axis=0, return_inverse=True, return_counts=True)
                inverse = inverse.reshape(-1)
                singles.extend(rows[counts[inverse] < _ARRAYS_FROM].tolist())
                found = []
                for shape in np.flatnonzero(counts >= _ARRAYS_FROM).tolist():
                    same = np.flatnonzero(inverse == shape)
                    found.append((rows[same], chars[same], unique[shape]))
            for block_rows, block_chars, shape in found:
                middle = middle_of(np.flatnonzero(shape == 0xFFFFFFFF))
                if middle is None:
                    refused.extend(block_rows.tolist())
                else:
                    blocks.append((block_rows.tolist(), block_chars, middle))
        return blocks, singles, refused

    def format_preserving_texts(texts: list[str]):
        """`format_preserving` over texts, with one batched FF1 call.

        Values that share a layout are cut and put back together as arrays, the others one
        by one.
        """
        if normalize_all is not None:
            texts = normalize_all(texts)
        blocks, singles, failed = layouts(texts)
        middles, located = [], []
        for _, chars, middle in blocks:
            width, joined = len(middle), chars[:, middle].tobytes().decode(_UTF32, "surrogatepass")
            middles += [joined[o : o + width] for o in range(0, len(joined), width)]
        for row in singles:
            text = texts[row]
            try:
                middle = locate(text)
            except ActionError:
                failed.append(row)
                continue
            located.append((row, text, middle))
            middles.append("".join(text[i] for i in middle))
        if failed and decrypt:
            raise refusal()
        # A few values are cheaper one by one than in FF1's lock-step arrays.
        secrets = crypt_many(middles, tweak) if len(middles) >= _ARRAYS_FROM else [crypt(m, tweak) for m in middles]
        out: list = [None] * len(texts)
        done = 0
        for rows, chars, middle in blocks:
            replaced = chars.copy()
            joined = "".join(secrets[done : done + len(rows)]).encode(_UTF32, "surrogatepass")
            replaced[:, middle] = np.frombuffer(joined, dtype="<u4").reshape(len(rows), -1)
            done += len(rows)
            length, whole = chars.shape[1], replaced.tobytes().decode(_UTF32, "surrogatepass")
            for row, offset in zip(rows, range(0, len(whole), length)):
                out[row] = whole[offset : offset + length]
        for (row, text, middle), secret in zip(located, secrets[done:]):
            out[row] = merge(text, middle, secret)
        failed.sort()
        return out, failed, (refusal() if failed else None)

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


ACTION = Action(
    "tokenize",
    TokenizeParams,
    bind=_bind,
    output_type=string_type,
    accepts=frozenset({"string"}),
    keyed=True,
    reverse=_reverse,
    bind_column=_bind_column,
)
