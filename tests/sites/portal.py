"""An invoice portal behind a sign-in, for workflow tests: log in (a cookie), list the invoices, download
each one's CSV. Served by tests/sites/server.py under /portal/.

  GET  /portal/login               the sign-in form
  POST /portal/login               PORTAL_USER / PORTAL_PASSWORD: sets the session cookie, links to Invoices
  GET  /portal/invoices            the invoices (number, amount, a download link each); needs the cookie
  GET  /portal/invoices/<n>.csv    that invoice as a CSV attachment (number,item,amount); needs the cookie
"""

from __future__ import annotations

import html
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

PORTAL_USER = "ada@example.com"
PORTAL_PASSWORD = "correct horse battery staple"
INVOICES = {"INV-1001": "120.50", "INV-1002": "75.25", "INV-1003": "310.00"}
_COOKIE = "portal_session"
_SESSION = "signed-in"

Reply = tuple[bytes, str, dict[str, str]]  # body, content type, extra headers


def get(path: str, cookie_header: str | None) -> Reply | None:
    """The reply to a GET under /portal/, None for any other path."""
    if not path.startswith("/portal/"):
        return None
    signed_in = _signed_in(cookie_header)
    if path == "/portal/login" or not signed_in:
        return _page("Sign in to the portal", (
            "<h1>Invoice portal</h1><form method='post' action='/portal/login'>"
            "<label>Email <input name='username' autocomplete='username'></label>"
            "<label>Password <input name='password' type='password'></label>"
            "<button type='submit'>Sign in</button></form>")), "text/html", {}
    if path == "/portal/invoices":
        rows = "".join(f"<tr><td>{number}</td><td>{amount}</td><td><a href='/portal/invoices/{number}.csv'>"
                       f"Download {number}</a></td></tr>" for number, amount in INVOICES.items())
        return _page("Invoices", "<h1>Invoices</h1><table aria-label='Invoices'><tr><th>Number</th>"
                                 f"<th>Amount</th><th>File</th></tr>{rows}</table>"), "text/html", {}
    number = path.removeprefix("/portal/invoices/").removesuffix(".csv")
    if number in INVOICES:
        body = f"number,item,amount\n{number},Services,{INVOICES[number]}\n".encode()
        return body, "text/csv", {"Content-Disposition": f'attachment; filename="{number}.csv"'}
    return _page("Not found", "<h1>No such invoice</h1>"), "text/html", {}


def post(path: str, raw_body: str) -> Reply | None:
    if path != "/portal/login":
        return None
    fields = {key: values[-1] for key, values in parse_qs(raw_body, keep_blank_values=True).items()}
    if fields.get("username") != PORTAL_USER or fields.get("password") != PORTAL_PASSWORD:
        return _page("Sign in failed", "<h1>Wrong email or password</h1>"), "text/html", {}
    return (_page("Welcome", f"<h1>Welcome, {html.escape(PORTAL_USER)}</h1>"
                             "<a href='/portal/invoices'>Invoices</a>"),
            "text/html", {"Set-Cookie": f"{_COOKIE}={_SESSION}; Path=/portal; HttpOnly"})


def _signed_in(cookie_header: str | None) -> bool:
    cookie: SimpleCookie = SimpleCookie()
    cookie.load(cookie_header or "")
    return _COOKIE in cookie and cookie[_COOKIE].value == _SESSION


def _page(title: str, body: str) -> bytes:
    return f"<!doctype html><html><head><title>{title}</title></head><body>{body}</body></html>".encode()
