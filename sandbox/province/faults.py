"""Named, switchable defects of the reference province: the suite's proof that its checks can fail.

Each fault reproduces one real defect when its id is in ``ProvinceConfig.faults``. The switch sits at the
exact place where the correct code does the right thing (``if fault not in faults: check()``), so a fault
changes one decision and nothing else. ``breaks`` names the readiness criterion of the national checklist the
defect fails (sso, submission, payment, sync, forwarding, units, portal, conversion).
defect fails (sso, submission, payment, sync, forwarding, units, portal, document_axis).
defect fails (sso, submission, payment, sync, forwarding, units, portal, signatures).

Example::

    FAULTS["skips-nonce-check"].breaks    # 'sso'
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FAULTS", "Fault"]


@dataclass(frozen=True, slots=True)
class Fault:
    id: str
    breaks: str
    description: str


_FAULTS = [
    # sso: the relying party's ID token validation (OpenID RP certification rules)
    Fault("accepts-bad-id-token-signature", "sso", "ID token signature not verified against the national JWKS"),
    Fault("accepts-alg-none", "sso", "an unsigned ID token (alg none) is accepted"),
    Fault("skips-issuer-check", "sso", "ID token iss not compared with the national issuer"),
    Fault("skips-audience-check", "sso", "ID token aud not required to contain the province's client_id"),
    Fault("accepts-expired-id-token", "sso", "ID token exp not checked"),
    Fault("accepts-future-iat", "sso", "ID token iat in the future accepted"),
    Fault("skips-nonce-check", "sso", "ID token nonce not compared with the one sent at login"),
    Fault("skips-state-check", "sso", "callback state not compared with the login's state (CSRF)"),
    Fault("accepts-reused-code", "sso", "a replayed callback (same authorization code) yields a new session"),
    Fault("identity-from-body", "sso", "ChuHoSo/DinhDanhCHS taken from the request body, not the SSO session"),
    Fault("no-pkce", "sso", "the authorization request carries no PKCE code_challenge (RFC 7636, RFC 9700 §2.1.1)"),
    Fault("local-logout-only", "sso", "logout ends the province session only, no redirect to the national end-session"),
    # sso flow: the browser side of the code flow (callback, state, iss, error responses, redirects, leaks)
    Fault("accepts-discovery-issuer-mismatch", "sso",
          "a discovery document whose issuer is not the configured national issuer is used anyway"),
    Fault("accepts-missing-state", "sso", "a callback without state is accepted (state compared only when present)"),
    Fault("state-not-bound-to-browser", "sso",
          "the callback finds the login by its state alone: another browser can finish it (login CSRF)"),
    Fault("500-on-error-callback", "sso",
          "an error response of the national side (error=…, no code) crashes the callback"),
    Fault("ignores-iss-parameter", "sso", "the RFC 9207 iss of the authorization response is not checked (mix-up)"),
    Fault("accepts-missing-iss-parameter", "sso",
          "the RFC 9207 iss is compared only when present: a response without it passes"),
    Fault("access-token-in-url", "sso",
          "the session token is handed to the return_to page in its URL (#access_token=)"),
    Fault("leaks-code-via-referer", "sso",
          "the callback page sends no Referrer-Policy: code and state leak via Referer"),
    Fault("open-redirect-after-login", "sso",
          "return_to is not restricted to the province's own paths (open redirect)"),
    # sso: ID-token, JWKS and userinfo rules to the OpenID RP bar (SSO-13 … SSO-28)
    Fault("accepts-missing-sub", "sso", "an ID token without sub is accepted (the identity taken from userinfo alone)"),
    Fault("accepts-missing-aud", "sso", "an ID token without aud is accepted (aud compared only when present)"),
    Fault("accepts-missing-iat", "sso", "an ID token without iat is accepted (iat checked only when present)"),
    Fault("accepts-missing-exp", "sso", "an ID token without exp is accepted (exp checked only when present)"),
    Fault("accepts-missing-iss", "sso", "an ID token without iss is accepted (iss compared only when present)"),
    Fault("accepts-missing-nonce", "sso", "an ID token without nonce is accepted although one was sent"),
    Fault("accepts-aud-list-without-client", "sso",
          "aud compared only when it is a string: an aud array without the province's client_id is accepted"),
    Fault("skips-azp-check", "sso", "several audiences accepted without azp, or with azp naming another client"),
    Fault("accepts-hs256-client-secret", "sso",
          "HS256 ID tokens verified with the client secret (algorithm confusion: anyone holding it forges tokens)"),
    Fault("accepts-any-rsa-alg", "sso",
          "the algorithm is not pinned to the registered RS256: RS384/RS512/PS256… with the national key accepted"),
    Fault("verifies-only-rs256-signatures", "sso",
          "only RS256 signatures are verified: a token in another algorithm (ES256, HS256…) is decoded unverified"),
    Fault("accepts-stale-iat", "sso", "an ID token issued long ago (iat a week old) accepted while exp is valid"),
    Fault("clock-skew-five-minutes", "sso",
          "a 300 s clock leeway instead of the declared skew: tokens expired minutes ago are accepted"),
    Fault("skips-userinfo-sub-check", "sso", "userinfo used although its sub differs from the ID token's sub"),
    Fault("rejects-aud-array", "sso",
          "an aud array, even the one-element [client_id], is refused (aud taken as a string)"),
    Fault("requires-kid", "sso", "an ID token without kid is refused although the national JWKS has a single key"),
    Fault("no-clock-leeway", "sso",
          "no clock leeway: a token expired a second ago or with iat a second ahead is refused"),
    Fault("rejects-lowercase-token-type", "sso", "token_type compared case-sensitively: 'bearer' is refused"),
    Fault("requires-expires-in", "sso", "a token response without expires_in (RECOMMENDED, not required) is refused"),
    Fault("no-jwks-refetch-on-unknown-kid", "sso",
          "the JWKS is cached forever: after a national key rotation (a new kid) every sign-in is refused"),
    Fault("discards-jwks-with-unparseable-key", "sso",
          "a JWKS with one key it cannot parse is dropped whole: the rotated key is never learnt"),
    Fault("fetches-jwks-every-sign-on", "sso", "the JWKS is fetched for every sign-in (no cache: a JWKS storm)"),
    # submission
    Fault("pre-merger-commune-codes", "submission", "pre-merger (63-province) ward codes accepted as MaXa"),
    Fault("500-on-malformed-input", "submission", "malformed JSON or missing fields crash the handler (HTTP 500)"),
    Fault("duplicate-mahoso", "submission", "the MaHoSo sequence is read and written non-atomically: duplicates"),
    Fault(
        "loses-dossiers-under-concurrency",
        "submission",
        "201 before the write is durable, through a racy write-behind buffer: concurrent submits get lost",
    ),
    Fault("invalid-status-transition", "sync",
          "officer actions ignore the transition table (e.g. 1→10): the national history gets invalid transitions"),
    Fault("bad-mahoso-format", "submission",
          "MaHoSo in a home-made format (H26-20261122-1) instead of {agency}-{yyMMdd}-{4 digits}"),
    Fault("draft-commune-codes", "submission",
          "the draft ward-code list was loaded: a few official codes (e.g. 00226) are refused as MaXa"),
    Fault("accepts-other-province-communes", "submission",
          "any current commune code of the country is accepted as MaXa, not only the province's own"),
    Fault("reads-any-dossier", "submission",
          "GET of a dossier (and of its payments) by MaHoSo without an owner check: any citizen reads any dossier"),
    Fault("acts-on-any-dossier", "submission",
          "supplement, withdraw and payment start without an owner check: any citizen acts on any dossier"),
    # payment
    Fault("ignores-callback-checksum", "payment", "payment callback MaXacThuc not verified"),
    Fault("accepts-wrong-amount", "payment", "payment callback amount not compared with the dossier's fee"),
    Fault("double-applies-replayed-callback", "payment", "a replayed callback is applied again (paid twice)"),
    Fault("marks-paid-on-failed-payment", "payment", "a failure callback (MaLoi != 00) marks the dossier paid"),
    Fault("no-paid-flag-sync", "payment", "DuocThanhToanTrucTuyen never reaches the national side as 1"),
    Fault("bad-init-checksum", "payment",
          "INIT MaXacThuc built in a wrong field order (SoTien before MaThamChieu): the platform refuses it"),
    Fault("prefix-checksum-compare", "payment",
          "only the first 32 hex digits of the callback MaXacThuc are compared (a CHAR(32) column)"),
    Fault("case-insensitive-checksum", "payment", "the callback MaXacThuc is compared ignoring letter case"),
    Fault("accepts-missing-checksum", "payment",
          "a callback without MaXacThuc (or with an empty one) is not verified at all"),
    Fault("charges-again-on-new-transaction-id", "payment",
          "callbacks are de-duplicated by MaGiaoDich, not MaThamChieu: a new MaGiaoDich charges a paid fee again"),
    Fault("accepts-unknown-reference", "payment",
          "a callback for a MaThamChieu the province never issued is answered MaLoi 00 (accepted)"),
    # sync
    Fault("no-status-sync", "sync", "only the first state of a dossier is synchronised, later changes never"),
    Fault("late-sync", "sync", "changes are synchronised 30 s late (beyond the SLA)"),
    Fault("sync-missing-fields", "sync", "required fields are dropped from DongBoHoSoMC items"),
    Fault("duplicate-sync", "sync",
          "the outbox sends every delivered batch a second time (a retry without idempotency): duplicates"),
    Fault("gives-up-after-3-attempts", "sync",
          "the outbox drops a change after 3 failed delivery attempts: an outage longer than that loses it"),
    Fault("drops-changes-during-outage", "sync",
          "sync inline, no durable outbox: a change made while the national side is down is never sent"),
    Fault("never-logs-in-again", "sync",
          "the sync client keeps its expired session: after the national side expires it, nothing is delivered"),
    Fault("no-progress-sync", "sync",
          "CapNhatTienDoHoSoMC is never sent: the national portal shows no processing step of any dossier"),
    Fault("utc-timestamps", "sync",
          "the sync adapter writes times in UTC as if Vietnam time: every ThoiGian sent is 7 h behind"),
    # forwarding
    Fault("ignores-forwarded-dossiers", "forwarding", "forwarded dossiers are acknowledged but never stored or synced"),
    Fault("unauthenticated-forwarding", "forwarding",
          "POST /national/forwarded-dossiers accepted without the national forward credential"),
    Fault("accepts-any-forward-token", "forwarding",
          "a forward token the national portal issued to another province (a co-tenant) is accepted"),
    # units
    Fault("wrong-agency-codes", "units", "declares the pre-merger ward list with malformed agency codes"),
    # conversion: the province's export of its converted legacy data (sandbox/province/conversion_export.py)
    Fault("conversion-drops-record", "conversion",
          "the conversion lost a dossier: it is in the old data, not in the converted export"),
    Fault("conversion-silent-split-pick", "conversion",
          "a dossier of a partly merged ward was put in one of its new communes with no recorded decision"),
    Fault("conversion-stale-agency", "conversion",
          "a converted dossier is left with its old agency code (an agency that no longer exists)"),
    Fault("conversion-stale-address", "conversion",
          "a converted dossier's address text names another commune than its new MaXa"),
    Fault("conversion-not-digitised", "conversion",
          "a settled dossier of a dissolved district-level authority has its result not digitised or not reusable"),
    # portal: the closed provincial portal (sandbox/province/old_portal.py)
    Fault("old-portal-still-serves-form", "portal",
          "one old submission page still serves the upload form (200) instead of redirecting to the national portal"),
    Fault("old-portal-redirects-elsewhere", "portal",
          "old procedure pages redirect to the province's own new site, not the National Public Service Portal"),
    Fault("old-portal-redirects-to-home", "portal",
          "old procedure pages redirect to the national portal's home page: the procedure is lost on the way"),
    Fault("old-portal-accepts-submissions", "portal",
          "the old submission POST still creates a dossier (identity taken from the form, no national sign-on)"),
    Fault("old-portal-local-login", "portal",
          "the old sign-in page still serves a username/password form and signs citizens in locally"),
    # document_axis: the National Document Interconnection Axis (sandbox/province/document_axis.py)
    Fault("ack-only-arrived", "document_axis",
          "a delivered document is answered 01 (arrived) but never 03 (accepted): the sender never learns it was "
          "taken"),
    Fault("500-on-malformed-edxml", "document_axis", "a malformed edXML package crashes the receiver (HTTP 500)"),
    Fault("accepts-malformed-edxml", "document_axis",
          "only the envelope is read: a package missing required elements, with a bad DocumentId or a manifest "
          "that does not match its attachments is answered 01"),
    Fault("rejects-optional-edxml-elements", "document_axis",
          "a strict reader refuses valid packages with optional elements (SignerInfo, OtherInfo…) or non-PDF "
          "attachments (02)"),
    Fault("processes-duplicate-document", "document_axis",
          "the same DocumentId delivered twice is processed twice (03 sent again)"),
    Fault("status-out-of-order", "document_axis",
          "officer status changes ignore the legal order: 06 straight after 01, a status going back, after 06"),
    Fault("pre-merger-district-organ-id", "document_axis",
          "documents are sent with the OrganId of a dissolved (pre-merger) district People's Committee"),
    Fault("bad-document-id-format", "document_axis",
          "DocumentId in a home-made format ({OrganId}-{YYYYMMDD}-{number}) instead of {OrganId},{YYYY/MM/DD},"
          "{number}/{notation}"),
    Fault("bad-status-timestamp", "document_axis",
          "status messages carry ISO 8601 timestamps instead of dd/MM/yyyy HH:mm:ss"),
    Fault("stale-agency-directory", "document_axis",
          "the agency directory is fetched once: after a code changes, documents still go to the old code"),
    Fault("ignores-recall", "document_axis",
          "a sender's recall (13) of a delivered document is never answered (no 15 or 16)"),
    Fault("sent-document-lost", "document_axis",
          "the officer's send is answered 202 but the package never reaches the axis (no final status ever)"),
    # consistency: the views of one dossier disagree, an idempotent message takes effect twice, a list ignores
    # its filter, a minimal submission is refused (sandbox/province/consistency_faults.py holds the defects)
    Fault("sync-fee-from-wrong-field", "sync",
          "DongBoHoSoMC DanhSachLePhi Gia filled from SoTienDaThanhToan (the amount paid so far), not the fee"),
    Fault("channel-not-synced", "sync",
          "KenhThucHien is not mapped into the sync item: the national side gets the desk default 1 (direct)"),
    Fault("hen-tra-before-tiep-nhan", "sync",
          "NgayHenTra counted back from the submission (processing days with the wrong sign): before NgayTiepNhan"),
    Fault("double-transition-on-concurrent-action", "sync",
          "the transition table is checked outside the write transaction: two concurrent receives both apply"),
    Fault("list-filter-ignored", "submission",
          "GET /officer/dossiers ignores its TrangThaiHoSo filter (dossiers in every state come back)"),
    Fault("requires-optional-fields", "submission",
          "a submission without the optional SoDienThoai and Email is refused (422)"),
    Fault("wrong-fee-for-free-procedure", "payment",
          "the catalogue import fills an empty fee with a default charge: free procedures cost 20,000 VND"),
    Fault("double-effect-on-concurrent-callback", "payment",
          "the callback's 'already processed?' test reads outside the write transaction: two concurrent "
          "deliveries of one callback both pay"),
    Fault("duplicate-on-concurrent-forward", "forwarding",
          "'already received?' is checked outside the write transaction: two concurrent deliveries of one "
          "forwarded dossier both create it (two 201s, two creations synced)"),
    # the dossier state machine (contracts/schemas/dossier.schema.json x-transitions)
    Fault("officer-actions-on-closed-dossiers", "sync",
          "officer actions on a closed dossier (states 3, 7, 8, 10) are accepted (a withdrawn dossier is received)"),
    Fault("processes-unpaid-dossier", "sync",
          "a dossier waiting for its fee (state 6) can be processed before the fee is paid"),
    Fault("refuses-process-after-payment", "sync",
          "the paid flag is not consulted: a dossier in state 6 can never be processed, even once its fee is paid"),
    Fault("stop-only-while-processing", "sync",
          "stopping (→ 8) is refused outside state 4: a dossier waiting for a supplement or a fee cannot be stopped"),
    Fault("refused-action-still-synced", "sync",
          "a refused officer action is answered 409, but its change is still pushed to the national portal"),
    Fault("transition-refused-with-400", "sync",
          "a transition the table forbids is refused with HTTP 400 instead of the contract's 409"),
    Fault("withdraw-after-decision", "submission",
          "the citizen can still withdraw a decided dossier (states 9, 10)"),
    Fault("supplement-without-request", "submission",
          "a citizen supplement is accepted in any open state (1, 2, 4, 6), not only when requested (5)"),
    Fault("withdraw-refused-while-waiting", "submission",
          "withdrawal is refused while the dossier waits for the citizen (states 5, 6)"),
    # civil status: interconnected procedure groups of Decree 63/2024/NĐ-CP (sandbox/province/civil_status.py)
    Fault("civil-pushes-out-of-order", "civil_status",
          "status pushes of an interconnected dossier leave newest first: 'processing' before 'received'"),
    Fault("civil-push-missing-field", "civil_status", "status pushes carry no nguoiXuLy (the officer is not mapped)"),
    Fault("civil-push-iso-dates", "civil_status",
          "status pushes carry thoiGianThucHien in ISO 8601, not dd/MM/yyyy HH:mm:ss"),
    Fault("civil-closes-on-first-result", "civil_status",
          "the composite dossier is closed (state 9) when the first of its three results is completed"),
    Fault("civil-component-never-completes", "civil_status",
          "the social-insurance result (health-insurance card, funeral allowance) is acknowledged and dropped"),
    Fault("civil-composite-not-synced", "civil_status",
          "the composite state of an interconnected dossier never reaches NPSP (only its creation is synced)"),
    Fault("civil-fee-on-time", "civil_status", "an on-time birth or death registration is charged a fee"),
    Fault("civil-loses-portal-dossier", "civil_status",
          "a dossier delivered by the interconnection portal is acknowledged but never stored"),
    Fault("civil-refuses-death-group", "civil_status",
          "dossiers of group 2 (module LTKT: death registration) are refused; only births are wired up"),
    Fault("civil-unauthenticated-interconnection", "civil_status",
          "/lienthong/dossiers and /lienthong/ket-qua accepted without the interconnection credential: anyone can "
          "deliver a dossier or mark a result issued"),
    # signatures: the signed result documents (sandbox/province/signing.py)
    Fault("result-modified-after-signing", "signatures",
          "the result is changed after signing: an XML text edited, a PDF incremental update rewrites the page"),
    Fault("result-signed-sha1", "signatures", "the XML result is signed with ECDSA-SHA1 and SHA-1 digests"),
    Fault("result-signer-self-signed", "signatures",
          "results are signed with a self-signed certificate in the CA's name shape, not one the CA issued"),
    Fault("result-signer-expired", "signatures", "results are signed with a certificate that has expired"),
    Fault("result-signer-revoked", "signatures",
          "the officer's certificate was revoked (key compromise) and results are still signed with it"),
    Fault("result-signed-before-not-before", "signatures",
          "results are signed with a certificate whose validity has not begun yet"),
    Fault("result-signer-dissolved-agency", "signatures",
          "the signing certificate still names a pre-merger district agency (UBND huyen …)"),
    Fault("result-unsigned", "signatures", "result documents are sent without any signature"),
    # signatures: the edXML packages sent over the document axis (sandbox/province/document_axis.py)
    Fault("edxml-unsigned", "signatures", "edXML packages are sent over the axis without a DigitalSignature"),
    Fault("edxml-modified-after-signing", "signatures",
          "an edXML header field (Subject) is changed after the package was signed"),
]

#: Every fault by id.
FAULTS: dict[str, Fault] = {fault.id: fault for fault in _FAULTS}

#: How late the ``late-sync`` fault delivers (seconds).
LATE_SYNC_DELAY = 30.0
#: Failed delivery attempts after which ``gives-up-after-3-attempts`` drops a change (1 for
#: ``drops-changes-during-outage``: the inline call was the only attempt).
GIVE_UP_ATTEMPTS = {"gives-up-after-3-attempts": 3, "drops-changes-during-outage": 1}
