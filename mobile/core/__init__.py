"""The device core: everything a phone does, without Kivy.

``services.Device`` is the one entry point for screens and the command line;
``store`` (SQLite), ``keystore`` (PIN), ``outbox``, ``records`` (readable
copies), ``pinning`` (server keys) and ``sync`` (client + engine) sit under it.
Never imports kivy, ``mobile.ui`` or ``server``; crypto only through ``shared``.
"""
