"""``haicap profile init``: write a commented profile template for a province, to fill in and certify.

The template names every field of ``haicap/schemas/profile.schema.json`` with what it is for, its secrets by
environment-variable name only, and the capabilities of the one table (haicap/criteria.py); the province's
agency code is filled in from the official list. ``--out`` refuses to overwrite an existing file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from haicap.errors import HaicapError

__all__ = ["register", "render_template"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("profile", help="write a province profile template",
                                   description="Province profiles for haicap certify.")
    sub = parser.add_subparsers(dest="profile_command", metavar="ACTION", required=True)
    init = sub.add_parser("init", help="write a commented profile template for a province",
                          description="Write a commented profile template for a province (fill it in, then "
                                      "haicap certify --profile FILE).")
    init.add_argument("--province", required=True, metavar="CODE", help="province code of the 34-province list")
    init.add_argument("--out", type=Path, metavar="FILE", help="write here (default: print to stdout)")
    init.set_defaults(handler=run_init)


def render_template(province: str) -> str:
    from haicap.criteria import CAPABILITIES
    from haicap.data_generators.agencies import province_agency_code
    from haicap.data_generators.units import admin_units

    name = admin_units().province(province).name
    agency = province_agency_code(province)
    upper = f"HAICAP_{province}"
    return f"""\
# haicap province profile — {name} ({province}). Schema: haicap/schemas/profile.schema.json
# Fill in the URLs of your staging system, export the secrets named by *_env, then:
#   haicap certify --profile THIS-FILE
name: {name} staging
province: "{province}"                                      # 34-province code
agency_code: "{agency}"                        # the province's agency identification code
province_url: http://127.0.0.1:9000                 # base URL of your dossier API (GET /health, /auth/login, /api/v1/…)
national:
  listen: 127.0.0.1:8710                            # where haicap's national counterpart listens (loopback, fixed port)
  public_url: http://127.0.0.1:8710                 # how your system reaches it: configure it as the OIDC issuer,
                                                    # sync and payment base URL, the document axis (/axis/…,
                                                    # document_axis) and interconnection portal (/lienthong/…)
credentials:                                        # secrets by environment-variable NAME, never the value
  oidc_client_id: province-{province}                 # the client_id your system sends to /authorize
  oidc_client_secret_env: {upper}_OIDC_SECRET
  oidc_redirect_uri: http://127.0.0.1:9000/auth/callback          # exactly the redirect_uri your system sends
  oidc_post_logout_redirect_uri: http://127.0.0.1:9000/auth/logged-out   # where logout returns (SSO-02)
  payment_partner: DVC{province}                      # your MaDoiTac at the payment platform
  payment_secret_env: {upper}_PAYMENT_SECRET
  payment_callback_url: http://127.0.0.1:9000/DvcPayment/Confirm  # where the platform sends payment results
  sync_username: sync-{province}                      # your account at the national sync API (madonvi = agency_code)
  sync_password_env: {upper}_SYNC_PASSWORD
  forward_token_env: {upper}_FORWARD_TOKEN   # the bearer token the national portal presents when forwarding
  officer_token_env: {upper}_OFFICER_TOKEN   # your officer API, to walk dossiers through their states
# What your system implements; checks needing an undeclared capability are skipped (exit 3 unless
# --allow-incomplete). Remove what you do not implement. civil_status: you serve POST /lienthong/dossiers and
# /lienthong/ket-qua at province_url (contracts/civil-status.openapi.yaml); document_axis: POST /axis/edxml and
# /axis/status (contracts/province-axis.openapi.yaml); both with the forward token as Bearer.
capabilities: [{", ".join(c for c in CAPABILITIES if c != "signatures")}]
sync_sla_seconds: 60                         # how late a state change may reach the national portal
portal:                                      # your closed old portal (PORT-01..03); without it, drop portal above
  national_portal: https://dichvucong.gov.vn # where old pages must lead (never requested by haicap)
  old_urls:                                  # old procedure and submission pages: each must redirect there
    - {{url: "https://dichvucong.example.gov.vn/thu-tuc/1.001193", procedure: "1.001193"}}
  submission_urls: ["https://dichvucong.example.gov.vn/nop-ho-so"]   # where the old forms POSTed
  login_urls: ["https://dichvucong.example.gov.vn/dang-nhap"]        # the old sign-in page
  lookup_urls: ["https://dichvucong.example.gov.vn/tra-cuu"]         # look-up pages that may remain
conversion: {{}}                               # your converted legacy data (CONV-01..05): {{}} reads your export
#                                            # endpoint with the officer token; or before: old.jsonl, after: new.jsonl
# signature_trust_anchors: [gcc-root.pem]    # the specialised CA's root(s), PEM: add signatures above (SIG-01..06)
# signature_crls: [gcc-root.crl, "https://ca.example.gov.vn/sub.crl"]  # CRLs of every CA of the chains
# communes: ["00004", "00008"]               # restrict submission to these communes (SUB-05 then cannot pass)
# sso_clock_skew_seconds: 60                 # the clock skew your relying party allows on ID-token exp/iat
# sync_retry_seconds: 1                      # your sync client's longest pause between attempts (SYNC-10)
# sso_mixup_province_url: http://127.0.0.1:9001  # a 2nd instance configured against {{public_url}}/mixup (SSO-30)
# signing_key_file: province.pem             # Ed25519 key that signs bundle.zip (else a key made per run)
# back_office: {{kind: operator, deadline_seconds: 300}}  # without an officer API: a person acts, guided by
#                                            # OUT/operator/pending/*.json (or kind: plugin, plugin: module:Class)
"""


def run_init(args: argparse.Namespace) -> int:
    text = render_template(args.province)
    if args.out is None:
        sys.stdout.write(text)
        return 0
    if args.out.exists():
        raise HaicapError(f"{args.out} exists: give another --out (a profile is never overwritten)")
    try:
        args.out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise HaicapError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    print(f"wrote {args.out}: fill in your URLs and secrets' variable names, then haicap certify --profile "
          f"{args.out}")
    return 0
