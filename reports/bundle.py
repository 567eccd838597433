"""The signed certification bundle: a run folder as one zip anyone can verify offline.

``bundle.zip`` holds the evidence of a ``haicap certify`` run (results.json, report.html, junit.xml,
allure-results/, the redacted profile, and with ``certify --load-summary`` the summary.json of the province's
load run as ``load-summary.json``), ``versions.json`` (haicap's version, the contracts' SHA-256, one hash
per check's code, per check module's shared code and over haicap's shared code, so a later run can tell what
changed), and ``manifest.json``: the SHA-256 of every other
member. ``manifest.sig`` is an Ed25519 signature (cryptography) over the manifest's exact bytes, and
``signer.pub`` the public key that made it. The province signs with its own key (``--signing-key`` /
``signing_key_file`` in the profile); without one, a key is generated for the run and its public half is written
next to the bundle, so the bundle still proves it was not altered since.

:func:`verify_bundle` checks, offline: the signature over the manifest with the bundle's key, and that key
against a trusted one when given (``--trust``); every member listed with its hash, none missing, none extra, none
changed. Each problem names the member.

Example::

    key = Ed25519PrivateKey.generate()
    write_bundle(Path("haicap-certify"), key)
    problems, info = verify_bundle(Path("haicap-certify/bundle.zip"), trusted=key.public_key())
"""

from __future__ import annotations

import base64
import functools
import hashlib
import inspect
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from haicap import __version__
from haicap.errors import HaicapError

__all__ = ["BUNDLE", "BundleInfo", "key_id", "load_private_key", "load_public_key", "read_bundle", "verify_bundle",
           "verify_members", "write_bundle"]

BUNDLE = "bundle.zip"
MANIFEST, SIGNATURE, SIGNER = "manifest.json", "manifest.sig", "signer.pub"
#: Run-folder files a bundle carries when present (allure-results/ and the redacted profile are added apart).
EVIDENCE = ("results.json", "report.html", "junit.xml", "load-summary.json")


@dataclass(frozen=True)
class BundleInfo:
    """What a verified bundle says about itself."""

    key_id: str
    created: str
    province: str | None
    readiness: str | None
    files: int


def key_id(public: Ed25519PublicKey) -> str:
    """A short fingerprint: the first 16 hex digits of SHA-256 over the raw public key."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise HaicapError(f"signing key {path}: cannot read: {exc.strerror or exc}") from None
    except (ValueError, TypeError) as exc:
        raise HaicapError(f"signing key {path}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise HaicapError(f"signing key {path}: expected an Ed25519 key, got {type(key).__name__}")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as exc:
        raise HaicapError(f"--trust {path}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise HaicapError(f"--trust {path}: not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise HaicapError(f"--trust {path}: expected an Ed25519 public key, got {type(key).__name__}")
    return key


def versions() -> dict[str, Any]:
    """haicap's version, the contracts' digest and a hash of each check's code (what a re-run compares).

    Computed once per process (the code a process runs does not change under it; ``scoreboard --demo`` certifies
    many provinces in one worker)."""
    return json.loads(_versions_json())


@functools.cache
def _versions_json() -> str:
    from haicap.conformance.registry import all_checks
    from haicap.contract_registry import contracts_digest

    checks = {}
    for spec in all_checks():
        try:
            source = inspect.getsource(spec.func)
        except (OSError, TypeError):
            source = spec.func.__qualname__
        checks[spec.id] = hashlib.sha256(f"{spec.rule}\n{spec.title}\n{source}".encode()).hexdigest()
    return json.dumps({"haicap": __version__, "contracts_sha256": contracts_digest(), "checks": checks,
                       "check_modules": _check_module_digests(), "shared_sha256": _shared_code_digest()})


#: The packages whose code decides a check's outcome besides the check itself (runner, clients, sandbox, data).
SHARED_PACKAGES = ("haicap", "haicap.conformance", "haicap.sandbox", "haicap.data_generators")


def _shared_code_digest() -> str:
    """SHA-256 over the source of :data:`SHARED_PACKAGES`, the check modules aside (they are hashed per check and
    per module): a change there may change any check's outcome, so ``certify --since`` re-runs everything."""
    import importlib.util

    digest = hashlib.sha256()
    for name in SHARED_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            continue
        root = Path(next(iter(spec.submodule_search_locations)))
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            if "__pycache__" in rel or (name == "haicap.conformance" and rel.startswith("checks/")):
                continue
            digest.update(f"{name}/{rel}\0".encode() + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _check_module_digests() -> dict[str, str]:
    """Per check module, SHA-256 of its code without the ``@check`` functions: the helpers and constants its
    checks share (a check's own function is in its per-check hash)."""
    import ast
    import sys

    from haicap.conformance.registry import all_checks

    out: dict[str, str] = {}
    for module_name in sorted({spec.func.__module__ for spec in all_checks()}):
        try:
            tree = ast.parse(inspect.getsource(sys.modules[module_name]))
        except (OSError, TypeError, KeyError, SyntaxError):
            out[module_name] = "unreadable"
            continue
        tree.body = [node for node in tree.body if not _is_check(node)]
        out[module_name] = hashlib.sha256(ast.unparse(tree).encode()).hexdigest()
    return out


def _is_check(node: object) -> bool:
    import ast

    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return False
    return any(isinstance(d, ast.Call) and getattr(d.func, "id", getattr(d.func, "attr", None)) == "check"
               for d in node.decorator_list)


def _members(run_dir: Path) -> list[tuple[str, Path]]:
    members = [(name, run_dir / name) for name in EVIDENCE if (run_dir / name).is_file()]
    allure = run_dir / "allure-results"
    if allure.is_dir():
        members += [(f"allure-results/{p.relative_to(allure).as_posix()}", p)
                    for p in sorted(allure.rglob("*")) if p.is_file()]
    return members


def _write(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0))  # member times are not evidence: `created` is
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


def write_bundle(run_dir: Path, key: Ed25519PrivateKey, *, profile: dict[str, Any] | None = None,
                 created: str, out: Path | None = None) -> Path:
    """Write ``run_dir/bundle.zip`` (or ``out``) over the run's evidence, signed with ``key``."""
    target = out or run_dir / BUNDLE
    contents: dict[str, bytes] = {name: path.read_bytes() for name, path in _members(run_dir)}
    if "results.json" not in contents:
        raise HaicapError(f"{run_dir}: no results.json to bundle")
    if profile is not None:
        contents["profile.redacted.json"] = json.dumps(profile, ensure_ascii=False, indent=1).encode()
    contents["versions.json"] = json.dumps(versions(), indent=1).encode()
    results = json.loads(contents["results.json"])
    manifest = {
        "format": "haicap-bundle/1", "created": created, "signer": key_id(key.public_key()),
        "province": (results.get("target") or {}).get("province"),
        "readiness": (results.get("summary") or {}).get("readiness"),
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(contents.items())},
    }
    manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True).encode()
    partial = target.with_name(target.name + ".part")
    with zipfile.ZipFile(partial, "w") as zf:
        for name, data in sorted(contents.items()):
            _write(zf, name, data)
        _write(zf, MANIFEST, manifest_bytes)
        _write(zf, SIGNATURE, base64.b64encode(key.sign(manifest_bytes)) + b"\n")
        _write(zf, SIGNER, _pem(key.public_key()))
    partial.replace(target)
    return target


def _read(path: Path) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if not n.endswith("/")]  # a re-zip adds folder entries: not evidence
            if len(names) != len(set(names)):
                raise HaicapError(f"{path}: a member name appears twice in the zip")
            return {name: zf.read(name) for name in names}
    except FileNotFoundError:
        raise HaicapError(f"{path}: no such bundle") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise HaicapError(f"{path}: not a readable zip ({exc})") from None


def verify_bundle(path: Path, trusted: Ed25519PublicKey | None = None) -> tuple[list[str], BundleInfo | None]:
    """(problems, info): empty problems when the bundle is intact and signed by ``trusted`` (if given)."""
    return verify_members(_read(path), trusted)


def read_bundle(path: Path) -> dict[str, bytes]:
    """Every member of the zip at ``path`` (verify them with :func:`verify_members` before trusting one)."""
    return _read(path)


def verify_members(members: dict[str, bytes],
                   trusted: Ed25519PublicKey | None = None) -> tuple[list[str], BundleInfo | None]:
    """:func:`verify_bundle` over members already read, so what was verified is exactly what is used."""
    missing_meta = [m for m in (MANIFEST, SIGNATURE, SIGNER) if m not in members]
    if missing_meta:
        return [f"missing {', '.join(missing_meta)}: not a signed haicap bundle"], None
    try:
        signer = serialization.load_pem_public_key(members[SIGNER])
        signature = base64.b64decode(members[SIGNATURE].strip(), validate=True)
        manifest = json.loads(members[MANIFEST])
        files = dict(manifest["files"])
    except (ValueError, KeyError, TypeError) as exc:
        return [f"{SIGNER}, {SIGNATURE} or {MANIFEST} is malformed ({type(exc).__name__})"], None
    if not isinstance(signer, Ed25519PublicKey):
        return [f"{SIGNER} is not an Ed25519 public key"], None
    problems: list[str] = []
    try:
        signer.verify(signature, members[MANIFEST])
    except InvalidSignature:
        problems.append(f"{MANIFEST}: the signature does not verify with the bundle's key {key_id(signer)} "
                        "(the manifest or the signature was changed)")
    if trusted is not None and key_id(trusted) != key_id(signer):
        problems.append(f"{SIGNER}: signed by key {key_id(signer)}, not the trusted key {key_id(trusted)}")
    evidence = {n: d for n, d in members.items() if n not in (MANIFEST, SIGNATURE, SIGNER)}
    problems += [f"{name}: listed in the manifest but missing from the bundle"
                 for name in sorted(set(files) - set(evidence))]
    problems += [f"{name}: in the bundle but not in the manifest (an extra file)"
                 for name in sorted(set(evidence) - set(files))]
    problems += [f"{name}: changed (SHA-256 {hashlib.sha256(evidence[name]).hexdigest()[:12]}…, the manifest says "
                 f"{str(files[name])[:12]}…)" for name in sorted(set(files) & set(evidence))
                 if hashlib.sha256(evidence[name]).hexdigest() != files[name]]
    info = BundleInfo(key_id(signer), str(manifest.get("created")), manifest.get("province"),
                      manifest.get("readiness"), len(files))
    return problems, info
