"""A MaxMind database of the tests' own (the GeoLite2-City layout), written with
``mmdb-writer``: a few documentation networks (RFC 5737, RFC 3849) in known
places, so a lookup's answer is known."""

from __future__ import annotations

from pathlib import Path

from mmdb_writer import MMDBWriter
from netaddr import IPSet

__all__ = ["PLACES", "geoip_database_write"]

# network: (country ISO code, city)
PLACES = {
    "198.51.100.0/24": ("DE", "Berlin"),
    "203.0.113.0/24": ("FR", "Paris"),
    "2001:db8:1234::/48": ("JP", "Tokyo"),
}


def geoip_database_write(path: Path) -> Path:
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-City")
    for network, (country, city) in PLACES.items():
        writer.insert_network(
            IPSet([network]), {"country": {"iso_code": country}, "city": {"names": {"en": city}}}
        )
    writer.to_db_file(str(path))
    return path
