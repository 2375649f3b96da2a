"""A large font (Android's accessibility font size, Kivy's ``Metrics.fontscale``) at 360x640: no text wider than
its widget, and every touch target still at least 48 dp, on home, the health-safety check and a job."""
from __future__ import annotations

import pytest

from tests.mobile.ui.conftest import screen_of
from tests.mobile.ui.kivy_helpers import advance, screenshot, tap, type_into, wait_until

LARGE = 2.0   # Android 14's largest font size (older phones stop at 1.3): what fits here fits there


@pytest.fixture
def large_font():
    from kivy.metrics import Metrics

    before = Metrics.fontscale
    Metrics.fontscale = LARGE
    yield LARGE
    Metrics.fontscale = before


def layout_problems(root) -> list[str]:
    """Text wider (or taller) than its widget, widgets sticking out of the window, touch targets under 48 dp."""
    from kivy.core.text import Label as CoreLabel
    from kivy.core.window import Window
    from kivy.metrics import dp
    from kivy.uix.behaviors import ButtonBehavior
    from kivy.uix.label import Label
    from kivy.uix.textinput import TextInput

    from mobile.ui.widgets import SitePicker

    problems = []
    for widget in root.walk(restrict=True):
        if not _shown(widget):
            continue
        name = f"{type(widget).__name__}({getattr(widget, 'text', '')[:30]!r})"
        left = widget.to_window(widget.x, widget.y)[0]
        if left < -1 or left + widget.width > Window.width + 1:
            problems.append(f"{name} sticks out of the window: x={left:.0f} width={widget.width:.0f}")
        if isinstance(widget, Label) and widget.text:
            widget.texture_update()
            tw, th = widget.texture_size
            if tw > widget.width + 1:
                problems.append(f"{name} text is {tw:.0f} px wide in {widget.width:.0f} px")
            if th > widget.height + 1:
                problems.append(f"{name} text is {th:.0f} px tall in {widget.height:.0f} px")
            if widget.text_size[0] and not widget.markup:
                room = widget.text_size[0]
                for word in widget.text.split():
                    if CoreLabel(text=word, font_size=widget.font_size, bold=widget.bold).get_extents(word)[0] > room + 1:
                        problems.append(f"{name} breaks the word {word!r} across lines")
            if widget.shorten and not isinstance(widget, SitePicker):   # a long site name may end in "..."
                problems.append(f"{name} may be cut short ('...') instead of wrapping")
        if isinstance(widget, (ButtonBehavior, TextInput)) and not widget.disabled:
            if widget.height < dp(48) - 0.5 or widget.width < dp(48) - 0.5:
                problems.append(f"{name} touch target {widget.width:.0f}x{widget.height:.0f} px is under 48 dp")
    return problems


def _shown(widget) -> bool:
    node = widget
    while node is not None and node is not node.parent:
        if getattr(node, "opacity", 1) == 0 or node.width <= 0 or node.height <= 0:
            return False
        node = node.parent
    return True


def check(app, name: str) -> None:
    advance(3)
    problems = layout_problems(app.shell)
    screenshot(f"large-font-{name}")
    assert not problems, "\n".join(problems)


def test_large_font_fits_home_health_check_and_job(large_font, make_app, server):
    from kivy.metrics import sp

    app = make_app(server)
    home = screen_of(app, "home")
    assert home.ids.go_safety.font_size == pytest.approx(sp(22))       # the scale reached the screens
    assert home.ids.go_safety.font_size >= 22 * LARGE - 0.5
    app.reminder.check()                                                # the longest home: the reminder bar too
    check(app, "home")

    tap(home.ids.go_safety)
    form = screen_of(app, "safety_check")
    wait_until(lambda: form.ids.site.values, 10, "the site list")
    type_into(form.ids.temperature, "50")
    tap(form.ids.submit)                                                # with its validation message
    assert form.ids.f_temperature.error
    form.ids.scroll.scroll_y = 1
    check(app, "safety-check")

    job_id = app.device.report_fault("HN001", "transmission", "critical", "Microwave link down after the storm").record_id
    app.device.update_job(job_id, note="waiting for the generator before climbing", parts=[("rectifier module", 2)])
    app.open_job(job_id)
    detail = screen_of(app, "job_detail")
    assert detail.ids.timing.text
    check(app, "job-detail")
