"""veil's one error tree.

Every error a user can cause is a `VeilError`; the command line prints `str(error)` on one
line and exits with code 2. Messages may name files, fields, actions, key versions, counts
and codes. They never contain a record value or key material: no error class here takes a
value parameter, so there is nothing to leak.
"""

import enum

__all__ = [
    "ActionError",
    "AuditLogError",
    "ConfigError",
    "DataRefusedError",
    "ErrorCode",
    "InputError",
    "IntegrityError",
    "KeyAccessError",
    "KeyShreddedError",
    "OutputError",
    "VeilError",
]


class VeilError(Exception):
    """Root of every expected failure: a bad policy, input, key or refused data."""


class ConfigError(VeilError):
    """A policy or command-line setting is wrong; the message says where and how to fix it."""


class InputError(VeilError):
    """The input data cannot be read or does not match what the policy needs."""


class OutputError(VeilError):
    """The output location cannot be written as asked (for example it is not empty)."""


class KeyAccessError(VeilError):
    """A keyset or master key is missing, wrong or corrupt, or a key version is unusable."""


class IntegrityError(VeilError):
    """A token or ciphertext failed authentication. Deliberately says nothing more."""


class KeyShreddedError(VeilError):
    """A value was encrypted under a subject key that has been deleted (the subject was erased)."""


class ErrorCode(enum.Enum):
    """Why a single value could not be protected. Codes, never values."""

    WRONG_TYPE = "wrong type"
    INVALID_DATE = "not a valid date"
    UNMAPPED = "no mapping and no 'other'"
    NO_SUBJECT = "the record has no subject id"
    NOT_FINITE = "not a finite number"
    NOT_A_NUMBER = "text that is not a number"
    TOO_SHORT = "too short to protect"
    UNREADABLE = "not a value veil can read"


class ActionError(VeilError):
    """One value of one field could not be protected.

    Raised by the pure column functions and handled by the plan according to the field's
    `on_error`. It carries the field, the action and a code; never the value.
    """

    def __init__(self, code: ErrorCode, field: str = "?", action: str = "?"):
        super().__init__(f"field '{field}' ({action}): {code.value}")
        self.code, self.field, self.action = code, field, action

    def __reduce__(self):  # keeps the error picklable across Beam workers
        return (ActionError, (self.code, self.field, self.action))


class DataRefusedError(VeilError):
    """The data broke a rule the policy enforces with `on_error: fail` (or a dataset rule)."""


class AuditLogError(VeilError):
    """An audit log's hash chain is broken: a line was edited, deleted, moved or cut off."""
