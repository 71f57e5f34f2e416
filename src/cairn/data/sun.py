"""The sun's elevation and azimuth from place and time.

The Astronomical Almanac's low-precision solar coordinates (good to about 0.01 degree
between 1950 and 2050), vectorised with numpy: ecliptic longitude -> right ascension and
declination -> local hour angle -> horizon coordinates. No refraction correction.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def sun_position(latitude: Any, longitude: Any, when: Any) -> tuple[np.ndarray, np.ndarray]:
    """(elevation, azimuth) in degrees; azimuth clockwise from north. `when` is UTC if naive."""
    times = pd.to_datetime(pd.Series(np.atleast_1d(when)), utc=True, errors="coerce")
    seconds = (
        (times - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds().to_numpy(dtype=float)
    )
    n = seconds / 86400.0 + 2440587.5 - 2451545.0
    mean_longitude = np.mod(280.460 + 0.9856474 * n, 360.0)
    anomaly = np.radians(np.mod(357.528 + 0.9856003 * n, 360.0))
    ecliptic = np.radians(mean_longitude + 1.915 * np.sin(anomaly) + 0.020 * np.sin(2 * anomaly))
    obliquity = np.radians(23.439 - 0.0000004 * n)
    right_ascension = np.arctan2(np.cos(obliquity) * np.sin(ecliptic), np.cos(ecliptic))
    declination = np.arcsin(np.sin(obliquity) * np.sin(ecliptic))
    sidereal_hours = np.mod(18.697374558 + 24.06570982441908 * n, 24.0)
    lat = np.radians(np.asarray(latitude, dtype=float))
    hour_angle = (
        np.radians(sidereal_hours * 15.0 + np.asarray(longitude, dtype=float)) - right_ascension
    )
    sin_elevation = np.sin(lat) * np.sin(declination) + np.cos(lat) * np.cos(declination) * np.cos(
        hour_angle
    )
    elevation = np.degrees(np.arcsin(np.clip(sin_elevation, -1.0, 1.0)))
    azimuth = np.degrees(
        np.arctan2(
            -np.sin(hour_angle) * np.cos(declination),
            np.sin(declination) * np.cos(lat)
            - np.cos(declination) * np.sin(lat) * np.cos(hour_angle),
        )
    )
    return elevation, np.mod(azimuth, 360.0)
