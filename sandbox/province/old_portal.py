"""The reference province's old public-service portal under ``/portal``, closed as of 1 July 2025.

Its procedure and submission pages redirect to the same procedure on the National Public Service Portal (the
counterpart plays it: ``config.national_url``), with the variety a real closing shows (301, 302, 303, 307, 308; a
trailing-slash hop; a relative Location); its old submission POST answers 410 Gone and creates nothing; its old
sign-in page redirects to the province's own single sign-on start (``/auth/login``, which goes to the national
identity provider); the look-up page remains, with a GET search form only. :func:`reference_portal` says which
URLs a check should probe (the embedded target and the rehearsal profile both use it).

Faults acting here: ``old-portal-still-serves-form`` (one submission page still serves the upload form),
``old-portal-redirects-elsewhere`` (procedure pages redirect to a host that is not the national portal),
``old-portal-redirects-to-home`` (to the national home page, the procedure lost), ``old-portal-accepts-submissions``
(the old POST still creates a dossier, identity taken from the form) and ``old-portal-local-login`` (the old
sign-in form with a password field, and a POST that signs in locally).
"""

from __future__ import annotations

import html
import secrets
from typing import Any
from urllib.parse import parse_qsl, quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from haicap.portal import OldPage, PortalSettings
from haicap.sandbox.province import dossiers as d
from haicap.sandbox.province.context import ProvinceContext
from haicap.sandbox.province.dossier_api import DossierApi
from haicap.sandbox.province.problems import Problem
from haicap.sandbox.province.sessions import CitizenSession

__all__ = ["OldPortal", "reference_portal"]

#: NPSP's page of a procedure [I: the public page URL carries ma_thu_tuc]
NATIONAL_PROCEDURE_PAGE = "/p/home/dvc-tthc-thu-tuc-hanh-chinh-chi-tiet.html?ma_thu_tuc="
#: where ``old-portal-redirects-elsewhere`` sends citizens: the province's own new site, not NPSP
ELSEWHERE = "https://dichvucong-moi.example.gov.vn"
#: the procedures whose old pages the reference portal (and its probes) cover
PROBED_PROCEDURES = ("1.001193", "1.000656", "1.004222")

_PAGE = "<!doctype html><html lang=vi><head><meta charset=utf-8><title>{title}</title></head><body>{body}</body></html>"


def reference_portal(province_url: str, national_url: str) -> PortalSettings:
    """The URLs of the reference old portal a run probes, and the national portal they must lead to."""
    base = province_url.rstrip("/") + "/portal"
    pages = [OldPage(f"{base}/thu-tuc/{code}", code) for code in PROBED_PROCEDURES]
    pages += [OldPage(f"{base}/nop-ho-so/{code}", code) for code in PROBED_PROCEDURES]
    return PortalSettings(
        national_portal=national_url.rstrip("/"), old_urls=(*pages, OldPage(f"{base}/")),
        submission_urls=tuple(f"{base}/nop-ho-so/{code}" for code in PROBED_PROCEDURES[:2]),
        login_urls=(f"{base}/dang-nhap",), lookup_urls=(f"{base}/tra-cuu",), national_idp=national_url.rstrip("/"),
    )


def _page(title: str, body: str, status: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=html.escape(title), body=body), status_code=status, headers=headers)


async def _form_fields(request: Request) -> dict[str, str]:
    """An urlencoded form body (what the old forms posted), read without a multipart parser."""
    body = (await request.body())[:65536].decode("utf-8", errors="replace")
    return dict(parse_qsl(body, keep_blank_values=True))


class OldPortal:
    def __init__(self, ctx: ProvinceContext, dossiers: DossierApi) -> None:
        self.ctx = ctx
        self.dossiers = dossiers
        self.national = ctx.config.national_url.rstrip("/")

    def routes(self) -> list[Route]:
        return [
            Route("/portal/", self.home, methods=["GET"]),
            Route("/portal/thu-tuc/{code}", self.procedure, methods=["GET"]),
            Route("/portal/thu-tuc/{code}/", self.procedure_slash, methods=["GET"]),
            Route("/portal/nop-ho-so/{code}", self.submission_page, methods=["GET"]),
            Route("/portal/nop-ho-so/{code}", self.submit, methods=["POST"]),
            Route("/portal/dang-nhap", self.login_page, methods=["GET"]),
            Route("/portal/dang-nhap", self.login_post, methods=["POST"]),
            Route("/portal/tra-cuu", self.lookup, methods=["GET"]),
        ]

    def _procedure_url(self, code: str) -> str:
        if self.ctx.has("old-portal-redirects-elsewhere"):  # the defect: the province's own new site
            return f"{ELSEWHERE}/thu-tuc/{quote(code)}"
        if self.ctx.has("old-portal-redirects-to-home"):  # the defect: the procedure is lost on the way
            return self.national + "/"
        return self.national + NATIONAL_PROCEDURE_PAGE + quote(code)

    async def home(self, request: Request) -> Response:
        return RedirectResponse(self.national + "/", status_code=301)

    async def procedure(self, request: Request) -> Response:
        code = request.path_params["code"]
        if code == PROBED_PROCEDURES[1]:  # an old CMS route: a trailing-slash hop first, relative
            return Response(status_code=301, headers={"Location": f"{code}/"})
        return RedirectResponse(self._procedure_url(code), status_code=301)

    async def procedure_slash(self, request: Request) -> Response:
        return RedirectResponse(self._procedure_url(request.path_params["code"]), status_code=308)

    async def submission_page(self, request: Request) -> Response:
        code = request.path_params["code"]
        if self.ctx.has("old-portal-still-serves-form") and code == PROBED_PROCEDURES[0]:  # the defect
            return _page("Nộp hồ sơ trực tuyến", self._old_form(code))
        status = 302 if code == PROBED_PROCEDURES[0] else 307 if code == PROBED_PROCEDURES[1] else 303
        return RedirectResponse(self._procedure_url(code), status_code=status)

    @staticmethod
    def _old_form(code: str) -> str:
        return (f'<form method="post" action="/portal/nop-ho-so/{html.escape(code)}" enctype="multipart/form-data">'
                '<input name="ChuHoSo"><input name="SoDinhDanh"><input name="MaXa"><input name="TrichYeuHoSo">'
                '<input type="file" name="TaiLieuNop"><button type="submit">Nộp hồ sơ</button></form>')

    async def submit(self, request: Request) -> Response:
        code = request.path_params["code"]
        if not self.ctx.has("old-portal-accepts-submissions"):
            return _page("Cổng đã đóng", "<p>Cổng dịch vụ công của tỉnh đã dừng tiếp nhận hồ sơ. Vui lòng nộp hồ sơ "
                         f'trên <a href="{html.escape(self._procedure_url(code))}">Cổng Dịch vụ công quốc gia</a>.</p>',
                         status=410)
        stored = await self._create_from_form(code, request)  # the defect: a local submission, no SSO
        return RedirectResponse(f"/portal/tra-cuu?MaHoSo={quote(stored['MaHoSo'])}", status_code=303)

    async def _create_from_form(self, code: str, request: Request) -> dict[str, Any]:
        fields = await _form_fields(request)
        body = {"MaTTHC": code, "MaXa": fields.get("MaXa", ""), "TrichYeuHoSo": fields.get("TrichYeuHoSo") or code}
        if not fields.get("SoDinhDanh") or not fields.get("ChuHoSo"):
            raise Problem(400, "Bad request", "ChuHoSo and SoDinhDanh are required")
        session = CitizenSession(fields["SoDinhDanh"], fields["ChuHoSo"], "", 0.0)
        doc, agency = self.dossiers.new_dossier(body, session)
        policy, day = self.ctx.policy, d.day_code()
        return await self.ctx.store.write(lambda c: d.op_create(c, policy, doc, agency, day))

    async def login_page(self, request: Request) -> Response:
        if self.ctx.has("old-portal-local-login"):  # the defect: the old local sign-in form
            return _page("Đăng nhập", '<form method="post" action="/portal/dang-nhap"><input name="username">'
                                      '<input type="password" name="password"><button>Đăng nhập</button></form>')
        return RedirectResponse("/auth/login", status_code=302)

    async def login_post(self, request: Request) -> Response:
        if not self.ctx.has("old-portal-local-login"):
            raise Problem(405, "Method not allowed", "sign in on the National Public Service Portal",
                          headers={"Allow": "GET"})
        await _form_fields(request)
        return RedirectResponse("/portal/tra-cuu", status_code=303,
                                headers={"Set-Cookie": f"old_portal_session={secrets.token_urlsafe(16)}; HttpOnly"})

    async def lookup(self, request: Request) -> Response:
        national = html.escape(self.national + "/")
        return _page("Tra cứu hồ sơ", '<form method="get" action="/portal/tra-cuu"><input name="MaHoSo">'
                                      '<button>Tra cứu</button></form>'
                                      f'<p><a href="{national}">Nộp hồ sơ trên Cổng Dịch vụ công quốc gia</a></p>')
