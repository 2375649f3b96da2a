"""Errors the device core raises to a screen or the command line.

Callers catch at the level they can act on::

    DeviceError                      anything the core refuses, with a stable ``reason``
     ├── ValidationFailed            a record fails its shared schema; ``errors`` = marshmallow's per-field messages
     ├── NotEnrolled                 the data dir holds no enrolment yet
     ├── AlreadyEnrolled             enrol twice into one data dir
     ├── PinError                    the PIN gate
     │    ├── WrongPin               wrong PIN; ``attempts_left`` before a lock-out
     │    ├── PinLockedOut           too many wrong PINs; ``until`` (aware datetime), ``seconds_left``
     │    └── StoreLocked            an action needs the PIN first (``unlock``)
     ├── NotFound                    no such job / record / site
     ├── TransitionNotAllowed        a job cannot move to that state from where it is
     └── NotFitForDuty               the organisation requires a fit health check to accept a job

Sync failures have their own tree in :mod:`mobile.core.sync.client` (``SyncError``),
which also derives from :class:`DeviceError` so a screen can catch both at once.
"""
from __future__ import annotations

from datetime import datetime

from shared.schemas import describe_errors


class DeviceError(Exception):
    """Base of every refusal by the device core; ``reason`` is a stable code."""

    reason = "device_error"

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.message = message
        if reason:
            self.reason = reason

    def to_dict(self) -> dict:
        """Machine form for ``--json`` output and logs."""
        return {"reason": self.reason, "message": self.message}


class ValidationFailed(DeviceError):
    """A record failed its schema; ``errors`` maps field names to messages."""

    reason = "invalid_record"

    def __init__(self, kind: str, errors: dict):
        self.kind = kind
        self.errors = errors
        super().__init__(f"the {kind.replace('_', ' ')} is not valid: {describe_errors(errors)}")

    def to_dict(self) -> dict:
        """Adds the per-field messages."""
        return {**super().to_dict(), "kind": self.kind, "errors": self.errors}


class NotEnrolled(DeviceError):
    """No enrolment in this data dir."""

    reason = "not_enrolled"


class AlreadyEnrolled(DeviceError):
    """This data dir already holds an enrolled device."""

    reason = "already_enrolled"


class PinError(DeviceError):
    """Base of PIN failures."""

    reason = "pin_error"


class WrongPin(PinError):
    """The PIN does not open the key store."""

    reason = "wrong_pin"

    def __init__(self, attempts_left: int):
        self.attempts_left = attempts_left
        tail = f"{attempts_left} attempt(s) left before a lock-out" if attempts_left else "the app is now locked for a while"
        super().__init__(f"wrong PIN; {tail}")

    def to_dict(self) -> dict:
        """Adds the attempts left."""
        return {**super().to_dict(), "attempts_left": self.attempts_left}


class PinLockedOut(PinError):
    """Too many wrong PINs: no attempt is checked until ``until``."""

    reason = "pin_locked"

    def __init__(self, until: datetime, seconds_left: int):
        self.until = until
        self.seconds_left = seconds_left
        super().__init__(f"too many wrong PINs; try again in {seconds_left} s (at {until.isoformat(timespec='seconds')})")

    def to_dict(self) -> dict:
        """Adds when the lock-out ends."""
        return {**super().to_dict(), "until": self.until.isoformat(), "seconds_left": self.seconds_left}


class StoreLocked(PinError):
    """The action needs the keys: unlock with the PIN first."""

    reason = "locked"


class NotFound(DeviceError):
    """No such thing on this device."""

    reason = "not_found"


class TransitionNotAllowed(DeviceError):
    """A job state move its state machine does not allow."""

    reason = "transition_not_allowed"


class NotFitForDuty(DeviceError):
    """Accepting work needs today's health check to say fit for duty."""

    reason = "not_fit_for_duty"
