"""The one table of readiness criteria and profile capabilities.

The conformance registry (criterion of a check, id prefix), the profile schema check (which capabilities a
profile may declare), the reports (one verdict per criterion, in checklist order) and the sandbox self-test all
derive from it, so a new criterion or capability is added here once.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ALL_CAPABILITIES", "CAPABILITIES", "CRITERIA", "CRITERION_TABLE", "DERIVED_CAPABILITIES", "Criterion"]


@dataclass(frozen=True)
class Criterion:
    """A column of the national readiness checklist (plus contract fuzzing)."""

    id: str
    label: str
    #: check ids of this criterion look like ``{prefix}-01``
    prefix: str


#: In the order of the national readiness checklist.
CRITERION_TABLE: tuple[Criterion, ...] = (
    Criterion("sso", "Single sign-on from the National Public Service Portal", "SSO"),
    Criterion("submission", "Online submission, every commune, ward and special zone", "SUB"),
    Criterion("sync", "Dossier settlement records synchronised to the national portal", "SYNC"),
    Criterion("payment", "Online payment", "PAY"),
    Criterion("forwarding", "Dossiers forwarded from the national portal received and processed", "FWD"),
    Criterion("units", "Administrative units and agency identification codes", "UNIT"),
    Criterion("portal", "Interface of the provincial portal closed", "PORT"),
    Criterion("civil_status", "Civil-status interconnection (Decree 63/2024)", "CIV"),
    Criterion("conversion", "Legacy data converted completely and accurately", "CONV"),
    Criterion("document_axis", "Agency codes published on the national portal and the document interconnection axis",
              "AXIS"),
    Criterion("signatures", "Documents and results carry a valid specialised digital signature", "SIG"),
    Criterion("fuzzing", "Contract conformance under generated input", "FUZZ"),
)
#: criterion id → label, in checklist order
CRITERIA: dict[str, str] = {c.id: c.label for c in CRITERION_TABLE}
#: What a profile may declare: one capability per criterion, plus the seams checks need beyond a criterion.
CAPABILITIES: tuple[str, ...] = (*CRITERIA, "officer_api")
#: Derived from the profile, never declared: ``back_office`` — officer actions can be carried out (any back office,
#: haicap/back_office.py); ``submission_channel`` — dossiers can be brought in (the citizen submission API, or
#: haicap forwarding them as the national portal).
DERIVED_CAPABILITIES: frozenset[str] = frozenset({"back_office", "submission_channel"})
#: Everything a target can have (the embedded sandbox has it all).
ALL_CAPABILITIES: frozenset[str] = frozenset(CAPABILITIES) | DERIVED_CAPABILITIES
