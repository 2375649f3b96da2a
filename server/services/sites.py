"""Sites as reference data."""
from __future__ import annotations

from sqlalchemy import select

from ..extensions import db
from ..models import Device, Region, Site


def for_device(device: Device) -> list[dict]:
    """The sites of a device's team region, for the phone's pickers."""
    if device.team is None:
        return []
    rows = db.session.execute(
        select(Site.code, Site.name, Region.code.label("region_code"), Site.lat, Site.lon, Site.criticality)
        .join(Region, Region.id == Site.region_id)
        .where(Site.region_id == device.team.region_id)
        .order_by(Site.code)
    )
    return [dict(r._mapping) for r in rows]
