"""Connectivity facade: can the phone reach its server right now?

``is_online(server_url)`` answers quickly and never raises. It is a hint that
wakes the sync when the network comes back; the sync's own result is the truth
(a TransportError means offline, whatever this said).

- Desktop: a TCP connect to the server's host and port with a short time-out
  (no HTTP here: that belongs to :mod:`mobile.core.sync`).
- Android: ConnectivityManager's active network (through pyjnius, when packaged),
  then the same TCP probe, since "has a network" is not "reaches the server".

Call it off the UI thread: a probe can take up to ``timeout`` seconds.
"""
from __future__ import annotations

import socket
import sys
from urllib.parse import urlsplit


class Connectivity:
    """The facade: :meth:`is_online` calls :meth:`_is_online` and turns any failure into False."""

    timeout: float = 2.0

    def is_online(self, server_url: str | None) -> bool:
        """True when the server's address answers a TCP connect (False when unknown)."""
        if not server_url:
            return False
        try:
            return bool(self._is_online(server_url))
        except Exception:
            return False

    def _is_online(self, server_url: str) -> bool:
        raise NotImplementedError


class DesktopConnectivity(Connectivity):
    """A TCP connect to the server's host and port."""

    def _is_online(self, server_url: str) -> bool:
        return probe(server_url, self.timeout)


class AndroidConnectivity(Connectivity):
    """ConnectivityManager first (cheap, no radio use), then the TCP probe."""

    def _is_online(self, server_url: str) -> bool:
        from jnius import autoclass  # only in the APK

        activity = autoclass("org.kivy.android.PythonActivity").mActivity
        context = autoclass("android.content.Context")
        manager = activity.getSystemService(context.CONNECTIVITY_SERVICE)
        if manager.getActiveNetwork() is None:
            return False
        return probe(server_url, self.timeout)


def probe(server_url: str, timeout: float) -> bool:
    """A TCP connect to ``server_url``'s host and port."""
    parts = urlsplit(server_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    with socket.create_connection((parts.hostname, port), timeout=timeout):
        return True


def connectivity_for(platform: str | None = None) -> Connectivity:
    """The connectivity implementation for ``platform`` (default: the running one)."""
    platform = platform or ("android" if hasattr(sys, "getandroidapilevel") else sys.platform)
    if platform == "android":
        try:
            import jnius  # noqa: F401
            return AndroidConnectivity()
        except ImportError:
            pass
    return DesktopConnectivity()
