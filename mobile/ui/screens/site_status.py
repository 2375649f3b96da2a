"""Site status: state, power source, backup transmission, mobile base-station vehicle, access, notes."""
from __future__ import annotations

from shared.schemas.site_status import ACCESS, POWER_SOURCES, SITE_STATES

from mobile.core.errors import ValidationFailed

from ..format import words
from ..kv import load_kv
from .base import BaseScreen

YES_NO = [("no", "No"), ("yes", "Yes")]


class SiteStatusScreen(BaseScreen):
    """One call: :meth:`Device.record_site_status`."""

    def on_kv_post(self, base_widget):
        """Fill the option groups from the shared schema."""
        ids = self.ids
        ids.state.choices = [(s, words(s)) for s in SITE_STATES]
        ids.power.choices = [(p, words(p)) for p in POWER_SOURCES]
        ids.backup.choices = YES_NO
        ids.bts.choices = YES_NO
        ids.access.choices = [(a, words(a)) for a in ACCESS]
        self.reset()

    def reset(self) -> None:
        """Defaults: no state chosen (the technician must look), grid power, open access."""
        ids = self.ids
        ids.state.select()
        ids.power.select("grid")
        ids.backup.select("no")
        ids.bts.select("no")
        ids.access.select("open")
        ids.cause.text = ids.notes.text = ""
        self.show_field_errors(self._fields(), {})

    def refresh(self) -> None:
        """Load the site list."""
        self.load_sites(self.ids.site)

    def _fields(self) -> dict:
        ids = self.ids
        return {"site_code": ids.f_site, "state": ids.f_state, "power_source": ids.f_power,
                "backup_transmission": ids.f_backup, "mobile_bts_deployed": ids.f_bts, "access": ids.f_access,
                "cause": ids.f_cause, "notes": ids.f_notes}

    def submit(self) -> None:
        """Save the observation (works offline)."""
        ids = self.ids
        try:
            saved = self.device.record_site_status(
                ids.site.value or "", ids.state.value or "", power_source=ids.power.value or "",
                backup_transmission=ids.backup.value == "yes", mobile_bts_deployed=ids.bts.value == "yes",
                access=ids.access.value or "", cause=ids.cause.text.strip(), notes=ids.notes.text.strip())
        except ValidationFailed as exc:
            loose = self.show_field_errors(self._fields(), exc.errors)
            self.say("Please correct the fields marked in red." + ("\n" + "\n".join(loose) if loose else ""), "danger")
            return
        except Exception as exc:
            self.fail(exc)
            return
        site = ids.site.value
        self.reset()
        self.app.after_save(saved)
        self.app.toast(f"Status of {site} saved. It will be sent when online.")
        self.app.go("home", direction="right")


load_kv(__file__)
