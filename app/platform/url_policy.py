"""Which addresses the server may reach on a run's behalf (WAYFARER_URL_POLICY).

A policy is a comma-separated list of rules, each a preset or `allow:<CIDR>` / `deny:<CIDR>`:

    open                                   every address (the default)
    public-only                            deny loopback, private, link-local, CGNAT, multicast, ...
    public-only,allow:10.1.2.0/24          ... except one intranet subnet
    deny:169.254.0.0/16,deny:10.0.0.0/8    only these ranges

The most specific rule (longest prefix) containing an address decides; no rule: allowed. Webhooks,
totp_url and file_url downloads resolve the host once, check every address, and connect to the
checked one (pinned), so a second DNS answer cannot swap in a denied address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

NON_PUBLIC = (
    "0.0.0.0/8",  # "this network", incl. the unspecified address
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",  # private
    "100.64.0.0/10",  # carrier-grade NAT
    "127.0.0.0/8",  # loopback
    "169.254.0.0/16",  # link-local, incl. the cloud metadata service 169.254.169.254
    "192.0.0.0/24", "198.18.0.0/15",  # IETF protocol assignments, benchmarking
    "224.0.0.0/4", "240.0.0.0/4",  # multicast, reserved and broadcast
    "::/128", "::1/128",  # unspecified, loopback
    "fc00::/7", "fe80::/10", "ff00::/8",  # unique local, link-local, multicast
)
PRESETS: dict[str, tuple[str, ...]] = {"open": (), "public-only": tuple(f"deny:{n}" for n in NON_PUBLIC)}
MAX_REDIRECTS = 5


class UrlDenied(ValueError):
    """The URL's host is, or resolves to, an address the policy denies (or does not resolve)."""


@dataclass(frozen=True)
class Rule:
    allow: bool
    network: IPNetwork

    def __str__(self) -> str:
        return f"{'allow' if self.allow else 'deny'}:{self.network}"


@dataclass(frozen=True)
class UrlPolicy:
    rules: tuple[Rule, ...]

    @property
    def restricts(self) -> bool:
        return any(not rule.allow for rule in self.rules)

    def denying_rule(self, address: IPAddress) -> Rule | None:
        """The rule that denies `address`, or None when it is allowed."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        matching = [rule for rule in self.rules if address in rule.network]
        if not matching:
            return None
        decisive = max(matching, key=lambda rule: rule.network.prefixlen)
        return None if decisive.allow else decisive

    def check_address(self, address: str, host: str) -> None:
        rule = self.denying_rule(ipaddress.ip_address(address))
        if rule is not None:
            via = "" if host == address else f" ({host} resolves to it)"
            raise UrlDenied(f"the address {address}{via} is denied by WAYFARER_URL_POLICY rule {rule}.")


@lru_cache(maxsize=32)
def parse_policy(text: str) -> UrlPolicy:
    """The policy a WAYFARER_URL_POLICY value describes; ValueError names the bad rule."""
    rules: dict[IPNetwork, Rule] = {}
    for raw in (part.strip() for part in text.split(",")):
        for token in PRESETS.get(raw.lower(), (raw,)):
            rule = _parse_rule(token)
            earlier = rules.get(rule.network)
            if earlier is not None and earlier.allow != rule.allow:
                raise ValueError(f"WAYFARER_URL_POLICY both allows and denies {rule.network}.")
            rules[rule.network] = rule
    return UrlPolicy(tuple(rules.values()))


def _parse_rule(token: str) -> Rule:
    verdict, _, cidr = token.partition(":")
    if verdict.lower() not in {"allow", "deny"} or not cidr:
        raise ValueError(f"WAYFARER_URL_POLICY rule {token!r} is not a preset ({', '.join(PRESETS)}) "
                         "nor allow:<CIDR> / deny:<CIDR>.")
    try:
        network = ipaddress.ip_network(cidr.strip(), strict=False)
    except ValueError as exc:
        raise ValueError(f"WAYFARER_URL_POLICY rule {token!r}: {exc}.") from None
    return Rule(verdict.lower() == "allow", network)


def literal_address_problem(url: str, policy: UrlPolicy) -> str | None:
    """Why a URL whose host is an IP literal is denied, else None. Names resolve at use time instead:
    their DNS answer may change before then."""
    host = urlsplit(url).hostname or ""  # no IDNA encoding: an IP literal needs none
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    try:
        policy.check_address(host, host)
    except UrlDenied as exc:
        return str(exc)
    return None


@dataclass(frozen=True)
class PinnedTarget:
    """A URL with its host resolved once and checked: connect to `address`, speak to `host`."""

    url: httpx.URL
    address: str

    @property
    def request_url(self) -> httpx.URL:
        return self.url.copy_with(host=self.address)

    @property
    def headers(self) -> dict[str, str]:
        return {"Host": self.url.netloc.decode("ascii")}

    @property
    def extensions(self) -> dict[str, Any]:
        """TLS SNI and certificate verification stay on the hostname, not the pinned address."""
        return {"sni_hostname": self.url.host} if self.url.scheme == "https" else {}


def resolve_allowed(url: str, policy: UrlPolicy) -> PinnedTarget:
    """Resolve the URL's host once; every address must be allowed. Raises UrlDenied."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise UrlDenied(f"{url!r} is not a valid URL ({exc}).") from None
    if parsed.scheme not in {"http", "https"} or not parsed.host:
        raise UrlDenied(f"{url} is not an http(s) URL with a host.")
    try:
        infos = socket.getaddrinfo(parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80),
                                   type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UrlDenied(f"the host {parsed.host} could not be resolved ({exc}).") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        policy.check_address(address, parsed.host)
    return PinnedTarget(parsed, addresses[0])


async def check_navigation(url: str, policy: UrlPolicy) -> None:
    """For the browser, which resolves names itself: raise UrlDenied when the policy denies the host.
    Free when the policy denies nothing."""
    if policy.restricts:
        await asyncio.to_thread(resolve_allowed, url, policy)


async def fetch(client: httpx.AsyncClient, method: str, url: str, policy: UrlPolicy, *,
                follow_redirects: bool = False, **kwargs: Any) -> httpx.Response:
    """A request to the pinned address; with follow_redirects (for GETs), each hop is resolved and
    checked again. Raises UrlDenied (also for a redirect to a denied target) and httpx.HTTPError."""
    headers = dict(kwargs.pop("headers", None) or {})
    for _ in range(MAX_REDIRECTS + 1):
        target = await asyncio.to_thread(resolve_allowed, url, policy)
        response = await client.request(method, target.request_url, headers={**headers, **target.headers},
                                         extensions=target.extensions, follow_redirects=False, **kwargs)
        if not (follow_redirects and response.is_redirect):
            return response
        url = urljoin(url, response.headers["location"])
    raise httpx.TooManyRedirects(f"more than {MAX_REDIRECTS} redirects", request=response.request)
