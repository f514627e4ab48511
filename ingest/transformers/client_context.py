"""``ClientContext``: who sent the event, into ``data.context`` (the Segment
spec's place): the client's IP address (truncated or dropped before anything
is stored, as configured), its user agent, the country and city of the address
from a MaxMind database file, the browser, OS and device from the user agent,
and whether it is a bot.

The address is the request's (the socket's peer, or the first untrusted hop of
``X-Forwarded-For`` behind ``ingest.trusted_proxies``) unless the event carries
its own ``context.ip`` (a Segment SDK's server-side call); the same for
``context.userAgent``."""

from __future__ import annotations

import functools
import ipaddress
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from plugins.base import ClientInfo, PluginParams, Transformer

if TYPE_CHECKING:
    from crawlerdetect import CrawlerDetect

# maxminddb, ua_parser and crawlerdetect are imported by the first use of each
# (about 5 MB of memory in every process that imports this module's plugin
# class, most of which never run it: bench/RESULTS.md, issue 23).

__all__ = ["ClientContext", "ip_truncate"]


def ip_truncate(ip: str, v4_prefix: int, v6_prefix: int) -> str | None:
    """The network address of ``ip`` at the prefix of its family (``/24``:
    ``203.0.113.7`` → ``203.0.113.0``); None when it is not an address."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    prefix = v4_prefix if address.version == 4 else v6_prefix
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


def _named(name: str, major: str | None, minor: str | None) -> dict[str, str]:
    """``{"name", "version"}``, the version only when known."""
    version = ".".join(v for v in (major, minor) if v)
    return {"name": name, "version": version} if version else {"name": name}


@functools.lru_cache(maxsize=4096)
def _user_agent(text: str, crawlerdetect: bool) -> dict[str, Any]:
    """Browser, OS, device and bot flag of a user agent (cached: a service sees
    few distinct ones). The bot flag is uap-core's ("Spider" devices), or with
    ``crawlerdetect`` CrawlerDetect's longer list (~150 µs a user agent not seen
    before, against ~10 µs: bench/RESULTS.md)."""
    import ua_parser

    parsed = ua_parser.parse(text)
    spider = parsed.device is not None and parsed.device.family == "Spider"
    out: dict[str, Any] = {"bot": _crawlers().isCrawler(text) if crawlerdetect else spider}
    if parsed.user_agent is not None:
        out["browser"] = _named(
            parsed.user_agent.family, parsed.user_agent.major, parsed.user_agent.minor
        )
    if parsed.os is not None:
        out["os"] = _named(parsed.os.family, parsed.os.major, parsed.os.minor)
    if parsed.device is not None:
        device = parsed.device
        out["device"] = {
            k: v
            for k, v in (("name", device.family), ("brand", device.brand), ("model", device.model))
            if v
        }
    return out


@functools.cache
def _crawlers() -> CrawlerDetect:
    from crawlerdetect import CrawlerDetect

    return CrawlerDetect()


def _open_database(path: str) -> Any:
    import maxminddb

    return maxminddb.open_database(path, maxminddb.MODE_AUTO)


class ClientContext(Transformer):
    """Adds the client to data.context: its IP address (truncated to /24 or /48,
    or dropped, before storage), user agent, country and city (a MaxMind
    database), browser, OS, device and a bot flag."""

    name = "ClientContext"

    class Params(PluginParams):
        ip: Literal["truncate", "drop", "keep"] = Field(
            "truncate",
            description="What is stored of the address: its network (truncate), nothing "
            "(drop; the location is still looked up), or all of it (keep).",
        )
        ipv4_prefix: int = Field(24, ge=0, le=32, description="Bits of an IPv4 address kept.")
        ipv6_prefix: int = Field(48, ge=0, le=128, description="Bits of an IPv6 address kept.")
        geoip_database: str = Field(
            "",
            description="A MaxMind database file (.mmdb: GeoLite2-City or -Country); "
            "empty: no location.",
        )
        user_agent: bool = Field(
            True, description="Store the user agent, its browser, OS and device, and a bot flag."
        )
        bots: Literal["ua-parser", "crawlerdetect"] = Field(
            "ua-parser",
            description="Who says a user agent is a bot: ua-parser's rules (cheap), or "
            "CrawlerDetect's longer list (slower on user agents not seen before).",
        )

        @field_validator("geoip_database")
        @classmethod
        def _readable(cls, path: str) -> str:
            if path:
                if not Path(path).is_file():
                    raise ValueError(f"no such file: {path}")
                try:
                    _open_database(path).close()
                except Exception as exc:
                    raise ValueError(f"not a MaxMind database: {exc}") from None
            return path

    params: ClientContext.Params

    def __init__(self, params: ClientContext.Params) -> None:
        super().__init__(params)
        self._geo = _open_database(params.geoip_database) if params.geoip_database else None
        if params.user_agent:  # ua-parser loads its rules on first use (~0.1 s): not in a request
            _user_agent("Mozilla/5.0", params.bots == "crawlerdetect")

    def _location(self, ip: str) -> dict[str, Any] | None:
        assert self._geo is not None
        try:
            record = self._geo.get(ip)
        except ValueError:  # not an address
            return None
        if not isinstance(record, dict):
            return None
        location: dict[str, Any] = {}
        country = record.get("country") or {}
        if code := country.get("iso_code"):
            location["country"] = code
        city = (record.get("city") or {}).get("names", {}).get("en")
        if city:
            location["city"] = city
        return location or None

    def transform(self, event: dict[str, Any], client: ClientInfo) -> dict[str, Any]:
        data = event.get("data")
        if data is None:
            data = event["data"] = {}
        elif not isinstance(data, dict):
            data = event["data"] = {"value": data}
        context = data.get("context")
        if not isinstance(context, dict):
            context = data["context"] = {}
        given_ip = context.get("ip")
        ip = given_ip if isinstance(given_ip, str) and given_ip else client.ip
        given_ua = context.get("userAgent")
        user_agent = given_ua if isinstance(given_ua, str) and given_ua else client.user_agent

        if ip and self._geo is not None and (location := self._location(ip)):
            context["location"] = {**(context.get("location") or {}), **location}
        params = self.params
        if ip and params.ip == "truncate":
            context["ip"] = ip_truncate(ip, params.ipv4_prefix, params.ipv6_prefix)
            if context["ip"] is None:
                del context["ip"]  # not an address: nothing of it is kept
        elif ip and params.ip == "keep":
            context["ip"] = ip
        else:
            context.pop("ip", None)
        if params.user_agent and user_agent:
            context["userAgent"] = user_agent
            crawlerdetect = params.bots == "crawlerdetect"
            # (copies: the cached dicts are shared by every event of that user agent)
            for key, value in _user_agent(user_agent, crawlerdetect).items():
                context[key] = dict(value) if isinstance(value, dict) else value
        return event
