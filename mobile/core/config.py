"""Device settings: everything the core needs from its host, passed in, never read from the environment.

The Kivy app builds a :class:`DeviceSettings` from ``App.user_data_dir``; the
command-line device builds one from ``--data-dir``. Tests shrink the scrypt cost
and inject clocks, so no test sleeps.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

APP_VERSION = "fieldwatch-device/0.1.0"
DB_NAME = "device.sqlite3"


def local_now() -> datetime:
    """The device's wall clock as an aware local time."""
    return datetime.now().astimezone()


@dataclass
class DeviceSettings:
    """How one device runs. One ``data_dir`` per device."""

    data_dir: Path
    app_version: str = APP_VERSION
    # scrypt N for the PIN key: 2**15 costs ~0.1 s per guess on a phone; tests use 2**10.
    scrypt_n: int = 2**15
    # Wrong PINs: this many are free, then the lock-out doubles from the base each time.
    free_pin_attempts: int = 3
    lockout_base_s: int = 30
    lockout_max_s: int = 3600
    # SQLite durability: FULL survives a power cut (one fsync per save); NORMAL survives an app kill.
    synchronous: str = "FULL"
    # Sync: network time-outs (connect, read) and the retry policy.
    timeout: tuple[float, float] = (5.0, 30.0)
    max_attempts: int = 5
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    retry_after_max_s: float = 300.0
    gzip: bool = True
    now: Callable[[], datetime] = local_now
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = random.random

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)

    @property
    def db_path(self) -> Path:
        """The SQLite file of this device."""
        return self.data_dir / DB_NAME

    def now_ms(self) -> int:
        """Wall clock in ms for the hybrid logical clock (follows the injected ``now``)."""
        return int(self.now().timestamp() * 1000)
