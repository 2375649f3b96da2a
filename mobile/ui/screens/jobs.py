"""My jobs: the team's open repair jobs (site, priority, state, time since reported), newest first by priority."""
from __future__ import annotations

from kivy.properties import BooleanProperty, StringProperty
from kivy.uix.button import Button

from ..format import STATE_LABELS, response_text, words
from ..theme import markup_colour
from ..kv import load_kv
from .base import BaseScreen


class JobRow(Button):
    """One job in the list; tapping opens its detail."""

    job_id = StringProperty("")
    priority = StringProperty("")
    timing = StringProperty("")     # the plain response text (no markup), for tests and accessibility
    over = BooleanProperty(False)   # the response target of the step now due has passed


class JobsScreen(BaseScreen):
    """Lists :meth:`Device.list_my_jobs`."""

    def refresh(self) -> None:
        """Rebuild the rows."""
        box = self.ids.rows
        box.clear_widgets()
        try:
            jobs = self.device.list_my_jobs()
        except Exception as exc:
            self.fail(exc)
            return
        now = self.device.settings.now()
        for job in jobs:
            title = job.get("title") or words(job.get("fault_type"))
            timing, over = response_text(job.get("response"), job.get("reported_at"), now)
            if over:
                timing = f"[color={markup_colour('DANGER')}][b]{timing}[/b][/color]"
            text = (f"[b]{job['site_code']}[/b]  {words(job.get('priority'))}  ·  {STATE_LABELS.get(job['status'], job['status'])}\n"
                    f"{title}\n{timing}")
            row = JobRow(text=text, job_id=job["id"], priority=job.get("priority") or "",
                         timing=response_text(job.get("response"), job.get("reported_at"), now)[0], over=over)
            row.bind(on_release=lambda r: self.app.open_job(r.job_id))
            box.add_widget(row)
        self.ids.empty.text = "" if jobs else "No open jobs. New jobs arrive when the phone syncs."


load_kv(__file__)
