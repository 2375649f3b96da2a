"""Persistence: one module per aggregate. Import models from here."""
from .alert import Alert
from .audit import AuditEntry
from .device import Device, EnrolCode
from .duty import DutyShift, ResponseTarget
from .org import CRITICALITIES, Organisation, Region, Site, Team
from .people import ROLES, User, supervisor_regions
from .quarantine import QuarantineItem
from .record import Change, RecordState, Revision
from .token import AccessToken
from .types import UTCDateTime, utcnow
from .webhook import Webhook, WebhookDelivery

__all__ = [
    "Alert", "Webhook", "WebhookDelivery", "DutyShift", "ResponseTarget", "AccessToken",
    "AuditEntry", "Device", "EnrolCode", "CRITICALITIES", "Organisation", "Region", "Site", "Team", "ROLES", "User",
    "supervisor_regions", "QuarantineItem", "Change", "RecordState", "Revision", "UTCDateTime", "utcnow",
]
