"""Drive a real Kivy window without sleeping: frames, taps, typing, waiting with a time-out, screenshots."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

SHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"


def advance(n: int = 1) -> None:
    """Run ``n`` frames: Clock callbacks, input, layout, redraw."""
    from kivy.base import EventLoop

    for _ in range(n):
        EventLoop.idle()


def wait_until(predicate, timeout: float = 15.0, what: str = "condition"):
    """Run frames until ``predicate()`` is truthy (returns it) or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        advance(1)


def tap(widget) -> None:
    """A touch down and up at the widget's centre (scrolls it into view first if it is in a ScrollView)."""
    from kivy.tests.common import UnitTestTouch
    from kivy.uix.scrollview import ScrollView

    parent = widget.parent
    while parent is not None and not isinstance(parent, ScrollView):
        parent = parent.parent if parent.parent is not parent else None  # the Window is its own parent
    if parent is not None and not _inside(widget, parent):
        parent.scroll_to(widget, padding=10, animate=False)
        advance(2)
    x, y = settled_centre(widget)
    touch = UnitTestTouch(x, y)
    touch.touch_down()
    touch.touch_up()
    # Inside a ScrollView the press is replayed on touch-up and the release 0.2 s later
    # (Clock): run frames until nothing holds the touch any more, so taps never overlap.
    wait_until(lambda: not touch.grab_list, 3, "the tap to finish")
    advance(2)


def _inside(widget, view) -> bool:
    """True when the widget is wholly visible in the ScrollView ``view``."""
    x, y = widget.to_window(widget.x, widget.y)
    vx, vy = view.to_window(view.x, view.y)
    return vy <= y and y + widget.height <= vy + view.height


def settled_centre(widget, frames: int = 3):
    """The widget's centre in window coordinates once layout has stopped moving it."""
    last, same = None, 0
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        now = (widget.to_window(*widget.center), tuple(widget.size))
        same = same + 1 if now == last else 0
        if same >= frames:
            return now[0]
        last = now
        advance(1)
    raise AssertionError(f"{widget} never stopped moving")


def type_into(text_input, text: str) -> None:
    """Focus ``text_input`` by tapping it, clear it, and type ``text`` as SDL would."""
    from kivy.core.window import Window

    tap(text_input)
    assert text_input.focus, f"{text_input} did not take the focus"
    text_input.text = ""
    for ch in text:
        Window.dispatch("on_textinput", ch)
    advance(1)
    text_input.focus = False
    advance(1)


def choose(group, *values: str) -> None:
    """Tap the options of a ChoiceGroup whose value is in ``values``."""
    for button in list(group.children):
        if button.value in values and button.state != "down":
            tap(button)
    assert set(values) <= set(group.selected), (values, group.selected)


def screenshot(screen: str) -> Path:
    """Save the window as docs/screenshots/app-<screen>.png (a few frames first, so it is drawn)."""
    from kivy.core.window import Window

    for root in Window.children:          # no leftover toast over the screen
        if hasattr(root, "toast_text"):
            root.toast_text = ""
    advance(4)
    SHOTS.mkdir(parents=True, exist_ok=True)
    made = Window.screenshot(name=str(SHOTS / f"tmp-{screen}.png"))
    target = SHOTS / f"app-{screen}.png"
    shutil.move(made, target)
    assert target.stat().st_size > 2000
    return target
