"""``python -m mobile`` / ``fieldwatch-app``: start the technicians' app (phone-sized window on a desktop)."""
from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    """Parse ``--data-dir``, size the desktop window like a phone, run the app."""
    parser = argparse.ArgumentParser(prog="fieldwatch-app", description="fieldwatch technicians' app")
    parser.add_argument("--data-dir", default=os.environ.get("FIELDWATCH_APP_DATA"),
                        help="where this phone keeps its data (default: the platform's user data dir)")
    parser.add_argument("--size", default="360x640", help="desktop window size, WIDTHxHEIGHT (default 360x640)")
    parser.add_argument("--font-scale", type=float, default=None, help="text size multiplier (accessibility check)")
    args = parser.parse_args(argv)

    os.environ.setdefault("KIVY_NO_ARGS", "1")  # kivy must not read our argv
    if args.font_scale:
        os.environ["KIVY_METRICS_FONTSCALE"] = str(args.font_scale)
    from kivy.config import Config

    if not hasattr(sys, "getandroidapilevel"):
        width, height = args.size.lower().split("x")
        Config.set("graphics", "width", width)
        Config.set("graphics", "height", height)
        Config.set("graphics", "resizable", "1")
    Config.set("input", "mouse", "mouse,multitouch_on_demand")  # no red dots on right-click

    from mobile.ui.app import FieldwatchApp

    FieldwatchApp(data_dir=args.data_dir).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
