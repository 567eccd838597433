"""What the profile says about the closed provincial portal: its old URLs and the national portal they must lead to.

No specification of the closing is public, so the portal checks (PORT-…) take every URL from here: the old
procedure and submission pages (``old_urls``, each optionally with the procedure code it showed), the old
submission and sign-in endpoints, the look-up pages that may remain, and the national portal's address. The
embedded sandbox fills it in for its reference old portal; a profile declares it under ``portal:``.

Example::

    settings = PortalSettings.from_profile({"national_portal": "https://dichvucong.gov.vn",
                                            "old_urls": ["https://dichvucong.hanoi.gov.vn/thu-tuc/1.001193"]})
    settings.old_hosts()   # frozenset({'dichvucong.hanoi.gov.vn'})
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

__all__ = ["DEFAULT_MAX_REDIRECTS", "OldPage", "PortalSettings"]

DEFAULT_MAX_REDIRECTS = 5


@dataclass(frozen=True)
class OldPage:
    """An old portal page that must redirect; ``procedure`` is the code it showed (the redirect must name it)."""

    url: str
    procedure: str | None = None


@dataclass(frozen=True)
class PortalSettings:
    national_portal: str
    old_urls: tuple[OldPage, ...]
    submission_urls: tuple[str, ...] = ()
    login_urls: tuple[str, ...] = ()
    lookup_urls: tuple[str, ...] = ()
    max_redirects: int = DEFAULT_MAX_REDIRECTS
    #: the national identity provider (a sign-in URL may lead there instead of the portal); defaults to the portal
    national_idp: str | None = field(default=None)

    @classmethod
    def from_profile(cls, raw: Mapping[str, Any], *, national_idp: str | None = None) -> PortalSettings:
        """From the profile's ``portal`` mapping (already schema-valid) or from :func:`dataclasses.asdict`."""
        pages = []
        for item in raw.get("old_urls") or ():
            if isinstance(item, str):
                pages.append(OldPage(item))
            else:
                pages.append(OldPage(str(item["url"]), item.get("procedure")))
        return cls(
            national_portal=str(raw["national_portal"]).rstrip("/"),
            old_urls=tuple(pages),
            submission_urls=tuple(raw.get("submission_urls") or ()),
            login_urls=tuple(raw.get("login_urls") or ()),
            lookup_urls=tuple(raw.get("lookup_urls") or ()),
            max_redirects=int(raw.get("max_redirects", DEFAULT_MAX_REDIRECTS)),
            national_idp=raw.get("national_idp") or national_idp,
        )

    def to_profile(self) -> dict[str, Any]:
        """The profile's ``portal`` mapping for these settings (inverse of :meth:`from_profile`)."""
        raw: dict[str, Any] = {
            "national_portal": self.national_portal,
            "old_urls": [p.url if p.procedure is None else {"url": p.url, "procedure": p.procedure}
                         for p in self.old_urls],
        }
        for key in ("submission_urls", "login_urls", "lookup_urls"):
            if getattr(self, key):
                raw[key] = list(getattr(self, key))
        if self.max_redirects != DEFAULT_MAX_REDIRECTS:
            raw["max_redirects"] = self.max_redirects
        return raw

    def all_urls(self) -> list[str]:
        return [p.url for p in self.old_urls] + [*self.submission_urls, *self.login_urls, *self.lookup_urls]

    def old_hosts(self) -> frozenset[str]:
        """The hosts of the old portal's URLs (lower case): haicap may contact them, the profile named them."""
        return frozenset((urlsplit(u).hostname or "").lower() for u in self.all_urls()) - {""}
