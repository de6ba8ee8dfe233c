"""fake: a realistic surrogate from Faker, the same for the same input within a purpose."""

from functools import cache
from typing import Literal

from pydantic import Field, model_validator

from veil.transforms.actions.base import Action, ActionParams, BindContext, VerifyRule, string_type


class FakeParams(ActionParams):
    """Consistent Faker surrogate.

    Attributes:
        provider: a Faker provider method (first_name, last_name, name, email, city, ...).
        locale: the Faker locale (default en_US).
    """

    action: Literal["fake"]
    provider: str = Field(..., pattern=r"^[a-z][a-z0-9_]*$")
    locale: str = Field("en_US", pattern=r"^[a-z]{2,3}(_[A-Z]{2})?$")

    @model_validator(mode="after")
    def _provider_exists(self) -> "FakeParams":
        faker = _faker(self.locale)
        provider = getattr(faker, self.provider, None)
        if self.provider.startswith("seed") or not callable(provider):
            raise ValueError(f"Faker has no provider '{self.provider}' for locale {self.locale}")
        faker.seed_instance(0)
        try:
            sample = provider()
        except TypeError:
            sample = None
        if not isinstance(sample, (str, int, float)):
            raise ValueError(
                f"Faker provider '{self.provider}' does not make a text value; "
                "use one like first_name, last_name, name, email, city, street_address"
            )
        return self


@cache
def _faker(locale: str):
    from faker import Faker

    try:
        return Faker(locale)
    except AttributeError:
        raise ValueError(f"unknown Faker locale '{locale}'") from None


def key_info(purpose: str, provider: str) -> str:
    """HKDF info string of the seed key for one provider in a purpose."""
    return f"veil/v1/fake/{purpose}/{provider}"


def _bind(params: FakeParams, ctx: BindContext):
    from faker import Faker

    keyring, version = ctx.require_keys()
    prf = keyring.prf(key_info(ctx.purpose, params.provider), version)
    faker = Faker(params.locale)
    provider = getattr(faker, params.provider)

    def fake(value):
        """Faker output seeded by the first 8 bytes of HMAC(key, utf-8 of str(value)).

        Security: deterministic within a purpose; not reversible; the surrogate depends on the
        Faker version (pinned in constraints.txt).
        """
        faker.seed_instance(int.from_bytes(prf.compute(str(value).encode("utf-8"))[:8], "big"))
        return str(provider())

    return fake


# Surrogates are made to look like real values of their kind, and may equal another record's raw value.
ACTION = Action(
    "fake",
    FakeParams,
    bind=_bind,
    output_type=string_type,
    keyed=True,
    verify=lambda _params: VerifyRule("coincident", designed=None),
)
