"""Report a fault found on site: opens a repair job (status reported)."""
from __future__ import annotations

from shared.schemas.repair_job import FAULT_TYPES, PRIORITIES

from mobile.core.errors import ValidationFailed

from ..format import words
from ..kv import load_kv
from .base import BaseScreen


class ReportFaultScreen(BaseScreen):
    """One call: :meth:`Device.report_fault`."""

    def on_kv_post(self, base_widget):
        """Fill the option groups from the shared schema."""
        self.ids.fault_type.choices = [(f, words(f)) for f in FAULT_TYPES]
        self.ids.priority.choices = [(p, words(p)) for p in PRIORITIES]
        self.ids.priority.select("medium")

    def refresh(self) -> None:
        """Load the site list."""
        self.load_sites(self.ids.site)

    def _fields(self):
        ids = self.ids
        return {"site_code": ids.f_site, "fault_type": ids.f_fault_type, "priority": ids.f_priority, "title": ids.f_title,
                "notes": ids.f_note}

    def submit(self) -> None:
        """Save the new job and open it."""
        ids = self.ids
        fields = self._fields()
        if ids.site.value is None or ids.fault_type.value is None:
            self.show_field_errors(fields, {**({"site_code": ["choose a site"]} if ids.site.value is None else {}),
                                            **({"fault_type": ["choose a fault type"]} if ids.fault_type.value is None else {})})
            self.say("Please correct the fields marked in red.", "danger")
            return
        try:
            saved = self.device.report_fault(ids.site.value, ids.fault_type.value, ids.priority.value or "medium",
                                             ids.title.text.strip(), ids.note.text.strip() or None)
        except ValidationFailed as exc:
            loose = self.show_field_errors(fields, exc.errors)
            self.say("Please correct the fields marked in red." + ("\n" + "\n".join(loose) if loose else ""), "danger")
            return
        except Exception as exc:
            self.fail(exc)
            return
        ids.title.text = ids.note.text = ""
        ids.fault_type.select()
        self.show_field_errors(fields, {})
        self.app.after_save(saved)
        self.app.toast("Fault reported. It will be sent when online.")
        self.app.open_job(saved.record_id)


load_kv(__file__)
