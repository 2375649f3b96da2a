"""Job detail: only the next steps the state machine allows, notes, parts used, and the timeline."""
from __future__ import annotations

from kivy.properties import DictProperty, StringProperty

from mobile.core.errors import DeviceError

from ..format import ACTION_LABELS, STATE_LABELS, clock_time, response_text, words
from ..kv import load_kv
from ..widgets import BigButton, Para
from .base import BaseScreen


class JobDetailScreen(BaseScreen):
    """Each button is one :meth:`Device.update_job` call."""

    job_id = StringProperty("")
    job = DictProperty({})
    timing = StringProperty("")          # time since reported against the target now due (the core measures)
    timing_tone = StringProperty("plain")

    def refresh(self) -> None:
        """Re-read the job and rebuild the step buttons and the timeline."""
        if not self.job_id:
            return
        try:
            self.job = self.device.get_job(self.job_id)
        except Exception as exc:
            self.fail(exc)
            return
        job, now = self.job, self.device.settings.now()
        self.ids.summary.text = (f"[b]{job['site_code']}[/b]  ·  {words(job.get('fault_type'))}  ·  {words(job.get('priority'))}\n"
                                 f"{job.get('title') or ''}\n"
                                 f"Now: [b]{STATE_LABELS.get(job['status'], job['status'])}[/b]")
        self.timing, over = response_text(job.get("response"), job.get("reported_at"), now)
        self.timing_tone = "danger" if over else "plain"
        steps = self.ids.steps
        steps.clear_widgets()
        for state in job["next_states"]:
            button = BigButton(text=ACTION_LABELS.get(state, words(state)), tone="danger" if state == "cancelled" else "primary")
            button.state_to = state
            button.bind(on_release=lambda b: self.move(b.state_to))
            steps.add_widget(button)
        if job["finished"]:
            steps.add_widget(Para(text="This job is finished."))
        parts = job.get("parts") or []
        self.ids.parts_list.text = "\n".join(f"{p['quantity']} × {p['name']}" for p in parts) or "No parts recorded."
        events = [(at, f"{STATE_LABELS.get(s, s)}") for s, at in (job.get("steps") or {}).items()]
        events += [(n["at"], f"Note: {n['text']}") for n in job.get("notes") or []]
        self.ids.timeline.text = "\n".join(f"{clock_time(at, now)}  {what}" for at, what in sorted(events)) or "Nothing yet."

    def move(self, to: str) -> None:
        """Move the job to ``to`` (with the note typed, if any)."""
        self._update(to=to, note=self.ids.note.text.strip() or None)

    def add_note(self) -> None:
        """Add the typed note."""
        if not self.ids.note.text.strip():
            self.ids.f_note.error = "type a note first"
            return
        self._update(note=self.ids.note.text.strip())

    def add_part(self) -> None:
        """Add the typed part and quantity."""
        name, qty = self.ids.part_name.text.strip(), self.ids.part_qty.text.strip() or "1"
        if not name:
            self.ids.f_part.error = "type the part's name"
            return
        try:
            quantity = int(qty)
        except ValueError:
            self.ids.f_part.error = "quantity must be a whole number"
            return
        self._update(parts=[{"name": name, "quantity": quantity}])

    def _update(self, **change) -> None:
        self.ids.f_note.error = self.ids.f_part.error = ""
        try:
            job = self.device.update_job(self.job_id, **change)
        except DeviceError as exc:
            self.fail(exc)
            errors = getattr(exc, "errors", None)
            if errors:
                loose = self.show_field_errors({"notes": self.ids.f_note, "parts": self.ids.f_part}, errors)
                if loose:
                    self.say("; ".join(loose), "danger")
            return
        self.ids.note.text = self.ids.part_name.text = self.ids.part_qty.text = ""
        self.app.after_save(job["saved"])
        self.refresh()
        self.say(f"Saved: {STATE_LABELS.get(job['status'], job['status'])}. It will be sent when online.", "ok")


load_kv(__file__)
