"""Widgets every screen uses. Layout and look are in ``common.kv``; behaviour (selection) is here."""
from __future__ import annotations

from kivy.clock import Clock
from kivy.core.text import Label as CoreLabel
from kivy.metrics import dp
from kivy.properties import BooleanProperty, ListProperty, ObjectProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.label import Label
from kivy.uix.spinner import Spinner, SpinnerOption
from kivy.uix.stacklayout import StackLayout
from kivy.uix.textinput import TextInput
from kivy.uix.togglebutton import ToggleButton

from ..kv import load_kv


class BigButton(Button):
    """A full-width action button, 60 dp tall; ``tone`` picks its colour (primary, ok, warn, danger, plain)."""

    tone = StringProperty("primary")


class Para(Label):
    """A paragraph that wraps to its width and grows to its text."""


class Heading(Para):
    """A section heading."""


class Notice(Para):
    """A coloured message line (``tone`` ok/warn/danger/info); hidden while empty."""

    tone = StringProperty("info")


class FieldError(Para):
    """A :class:`FormField`'s validation message (or hint), always right below its input."""


class Input(TextInput):
    """A one-line text input, 56 dp tall, large type."""


class InfoCard(BoxLayout):
    """A white card with a title line and a value line (home screen tiles)."""

    title = StringProperty("")
    value = StringProperty("")
    tone = StringProperty("plain")


class TopBar(BoxLayout):
    """Screen title with a back button (hidden when ``back`` is empty).

    With a large font the back button shrinks to "<" when the title's longest word
    would not fit beside "< Back" (a word is never split across lines).
    """

    title = StringProperty("")
    back = StringProperty("")
    screen = ObjectProperty(None, allownone=True)
    compact = BooleanProperty(False)

    def on_kv_post(self, base_widget):
        """Re-decide ``compact`` whenever the size, the title or its font changes."""
        decide = Clock.create_trigger(lambda dt: self._decide_compact(), 0)
        self.bind(width=decide, title=decide, back=decide)
        self.ids.title.bind(font_size=decide)
        decide()

    def _decide_compact(self) -> None:
        title = self.ids.title
        words = self.title.split() or [""]
        widest = max(CoreLabel(text=w, font_size=title.font_size, bold=True).get_extents(w)[0] for w in words)
        back = self.ids.back_button
        back_width = max(dp(96), CoreLabel(text="< Back", font_size=back.font_size).get_extents("< Back")[0] + dp(16))
        room = self.width - self.padding[0] - self.padding[2] - self.spacing - back_width
        self.compact = bool(self.back) and widest > room


class FormField(BoxLayout):
    """A label, the input(s) declared inside it in kv, and the field's validation message right below.

    Children added in kv go into the ``slot`` box between the label and the error.
    """

    label = StringProperty("")
    error = StringProperty("")
    hint = StringProperty("")

    def add_widget(self, widget, *args, **kwargs):
        """Children from kv go into the slot (the class rule's own children are placed normally)."""
        slot = self.ids.get("slot")
        if slot is not None and widget is not slot and not isinstance(widget, FieldError):
            return slot.add_widget(widget, *args, **kwargs)
        return super().add_widget(widget, *args, **kwargs)


class Choice(ToggleButton):
    """One option of a :class:`ChoiceGroup`; ``value`` is what the core receives."""

    value = StringProperty("")


class ChoiceGroup(StackLayout):
    """Options as big toggle buttons (no tiny checkboxes for gloved hands).

    ``choices`` is a list of (value, label); ``selected`` the chosen values (one at
    most unless ``multiple``). Pick by code with :meth:`select`.
    """

    choices = ListProperty([])
    selected = ListProperty([])
    multiple = BooleanProperty(False)

    def on_choices(self, *_):
        """Rebuild the buttons."""
        self.clear_widgets()
        for value, label in self.choices:
            button = Choice(text=label, value=value, state="down" if value in self.selected else "normal")
            button.bind(on_release=self._pressed)
            self.add_widget(button)

    def on_selected(self, *_):
        """Keep the buttons in step when ``selected`` is set from code."""
        for button in self.children:
            button.state = "down" if button.value in self.selected else "normal"

    def select(self, *values: str) -> None:
        """Select exactly ``values``."""
        self.selected = list(values)

    @property
    def value(self) -> str | None:
        """The single selected value (None when nothing is chosen)."""
        return self.selected[0] if self.selected else None

    def _pressed(self, button: Choice) -> None:
        if self.multiple:
            chosen = [v for v in self.selected if v != button.value]
            if button.state == "down":
                chosen.append(button.value)
            self.selected = chosen
        else:
            self.selected = [button.value]  # a second tap keeps the choice: single choice never goes empty


class BigOption(SpinnerOption):
    """A drop-down row of a :class:`SitePicker`: 56 dp tall."""


class SitePicker(Spinner):
    """Pick a site from the region's list (``sites`` = the core's list_region_sites rows).

    ``value`` is the chosen site code, or None ("no site" when ``optional``).
    """

    sites = ListProperty([])
    optional = BooleanProperty(False)
    NONE = "No particular site"
    PLACEHOLDER = "Tap to choose a site"

    def on_sites(self, *_):
        """Rebuild the options from the site rows."""
        options = [self.NONE] if self.optional else []
        options += [f"{s['code']}  {s.get('name') or ''}".strip() for s in self.sites]
        self.values = options

    @property
    def value(self) -> str | None:
        """The chosen site code."""
        if self.text not in self.values or self.text == self.NONE:
            return None
        return self.text.split()[0]

    def choose(self, code: str | None) -> None:
        """Select ``code`` (None: no site)."""
        if code is None:
            self.text = self.NONE if self.optional else self.PLACEHOLDER
            return
        self.text = next((v for v in self.values if v.split()[0] == code), code)


load_kv(__file__)
