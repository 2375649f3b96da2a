"""One module per screen (``<name>.py`` + ``<name>.kv``). A screen reads its widgets, calls one
:class:`mobile.core.services.Device` method, and shows the result or the error."""
from .check_in import CheckInScreen
from .enrol import EnrolScreen
from .home import HomeScreen
from .job_detail import JobDetailScreen
from .jobs import JobsScreen
from .pin import PinScreen
from .report_fault import ReportFaultScreen
from .safety_check import SafetyCheckScreen
from .settings import SettingsScreen
from .site_status import SiteStatusScreen
from .sync import SyncScreen

# name -> class; the app builds a screen the first time it is shown (a faster cold start).
SCREENS = {"enrol": EnrolScreen, "pin": PinScreen, "home": HomeScreen, "safety_check": SafetyCheckScreen,
           "check_in": CheckInScreen, "jobs": JobsScreen, "job_detail": JobDetailScreen,
           "report_fault": ReportFaultScreen, "site_status": SiteStatusScreen, "sync": SyncScreen,
           "settings": SettingsScreen}

__all__ = ["SCREENS", *(cls.__name__ for cls in SCREENS.values())]
