"""Single sign-on: the province as a relying party of the national identity provider (OpenID Connect Core 1.0)."""

from __future__ import annotations
