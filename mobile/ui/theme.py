"""Colours and sizes: high contrast for sunlight, big type and touch targets for gloves.

Sizes are in dp/sp so they follow the phone's density and the user's font scale
(``Metrics.fontscale``); every touch target is at least :data:`TOUCH` (48 dp).

The sizes are computed when read (``T.FONT`` in a kv rule is evaluated as each
widget is built), not once at import: a font scale set after this module was
imported (Android's accessibility setting, ``KIVY_METRICS_FONTSCALE``, or a
test) applies to every screen built afterwards.
"""
from kivy.metrics import dp, sp

BG = (0.96, 0.96, 0.94, 1)
SURFACE = (1, 1, 1, 1)
TEXT = (0.08, 0.09, 0.10, 1)
MUTED = (0.32, 0.34, 0.37, 1)
PRIMARY = (0.05, 0.30, 0.60, 1)
OK = (0.08, 0.48, 0.22, 1)
WARN = (0.80, 0.45, 0.02, 1)
DANGER = (0.72, 0.08, 0.08, 1)
OFFLINE = (0.35, 0.35, 0.38, 1)
SELECTED = (0.05, 0.30, 0.60, 1)
UNSELECTED = (0.86, 0.87, 0.88, 1)
ON_DARK = (1, 1, 1, 1)

# name -> (unit, value). Read as T.TOUCH, T.FONT, ... (see __getattr__).
SIZES = {
    "TOUCH": (dp, 48),      # the minimum touch target
    "BUTTON": (dp, 60),     # the big action buttons
    "FIELD": (dp, 56),
    "PAD": (dp, 12),
    "GAP": (dp, 10),
    "FONT": (sp, 18),
    "FONT_SMALL": (sp, 15),
    "FONT_BIG": (sp, 22),
    "FONT_TITLE": (sp, 20),
}


def __getattr__(name: str) -> float:
    """``T.FONT`` etc.: the size in pixels at the current density and font scale."""
    try:
        unit, value = SIZES[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    return unit(value)


def markup_colour(name: str) -> str:
    """A theme colour as the hex a label's ``[color=...]`` markup takes ('DANGER' -> 'b81414')."""
    return "".join(f"{round(c * 255):02x}" for c in globals()[name][:3])
