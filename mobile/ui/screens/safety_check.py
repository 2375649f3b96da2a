"""Health-safety check: temperature, symptoms, exposure, protective equipment, site, quarantined area, notes.

Validation is the core's (the shared schema): its per-field messages are shown
under each field. Fitness for duty is the core's rule too (``fit_for_duty`` is
left to :meth:`Device.record_safety_check`).
"""
from __future__ import annotations

from shared.schemas.safety_check import EXPOSURES, PPE, SYMPTOMS

from mobile.core.errors import ValidationFailed

from ..format import words
from ..kv import load_kv
from .base import BaseScreen


def _number(text: str):
    """A float when the text is one; otherwise the text itself, so the schema names the problem."""
    try:
        return float(text.replace(",", "."))
    except ValueError:
        return text.strip()


class SafetyCheckScreen(BaseScreen):
    """One form, one call: :meth:`Device.record_safety_check`."""

    def on_kv_post(self, base_widget):
        """Fill the option groups from the shared schema's lists."""
        self.ids.symptoms.choices = [(s, words(s)) for s in SYMPTOMS]
        self.ids.exposure.choices = [(e, words(e)) for e in EXPOSURES]
        self.ids.ppe.choices = [(p, words(p)) for p in PPE]
        self.ids.quarantine.choices = [("no", "No"), ("yes", "Yes")]
        self.reset()

    def reset(self) -> None:
        """An empty form (exposure none, not in a quarantined area)."""
        self.ids.temperature.text = ""
        self.ids.symptoms.select()
        self.ids.exposure.select("none")
        self.ids.ppe.select()
        self.ids.quarantine.select("no")
        self.ids.notes.text = ""
        self.ids.site.choose(None)
        self.show_field_errors(self._fields(), {})

    def refresh(self) -> None:
        """Load the site list."""
        self.load_sites(self.ids.site)

    def _fields(self) -> dict:
        ids = self.ids
        return {"temperature_c": ids.f_temperature, "symptoms": ids.f_symptoms, "exposure": ids.f_exposure,
                "ppe": ids.f_ppe, "site_code": ids.f_site, "in_quarantine_area": ids.f_quarantine, "notes": ids.f_notes}

    def submit(self) -> None:
        """Save the check (works offline) and say what was saved."""
        ids = self.ids
        try:
            saved = self.device.record_safety_check(
                _number(ids.temperature.text), ids.exposure.value or "none", symptoms=ids.symptoms.selected,
                ppe=ids.ppe.selected, site_code=ids.site.value, in_quarantine_area=ids.quarantine.value == "yes",
                notes=ids.notes.text.strip())
        except ValidationFailed as exc:
            loose = self.show_field_errors(self._fields(), exc.errors)
            self.say("Please correct the fields marked in red." + ("\n" + "\n".join(loose) if loose else ""), "danger")
            return
        except Exception as exc:
            self.fail(exc)
            return
        self.app.sync.refresh()
        fit = self.app.sync.today.get("fit_for_duty")
        self.reset()
        verdict = "fit for duty" if fit else "NOT fit for duty: tell your supervisor"
        self.app.toast(f"Health check saved: {verdict}. It will be sent when online.")
        self.app.after_save(saved)
        self.app.go("home", direction="right")


load_kv(__file__)
