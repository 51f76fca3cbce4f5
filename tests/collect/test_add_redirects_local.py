"""`add` must not carry a public page's redirect into the editor's own network (SSRF).

A "public" start address is needed offline: the test server doubles as an HTTP proxy
(HTTP_PROXY), so `http://93.184.216.34/story` -- a public IP literal, no DNS -- is answered by
127.0.0.1 while `add` sees exactly what it would see on the internet. The redirect target is
on 127.0.0.1 (listed in NO_PROXY, so it would be fetched directly) and must never be asked.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.collect.fetch import RedirectGuard, internal_address
from tests._cli import run
from tests._local_site import Route, local_site
from tests.collect.test_add_cli import make_issue, sections_of

PUBLIC = "http://93.184.216.34/story"
SECRET = (
    b"<html><head><title>Internal admin page</title>"
    b'<link rel="canonical" href="https://intranet.example.org/admin"></head>'
    b"<body><p>root password and other secrets of the office network</p></body></html>"
)
PAGE = (
    b"<html><head><title>Public story</title>"
    b'<link rel="canonical" href="https://news.example.org/story"></head>'
    b"<body><p>A public story long enough to be a teaser for the card.</p></body></html>"
)


@pytest.mark.parametrize("target_host", ["127.0.0.1", "localhost"])
def test_public_page_redirecting_to_loopback_is_refused(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, target_host: str
) -> None:
    path = make_issue(workspace, "fresh")
    before = path.read_bytes()
    with local_site({"/secret": Route(SECRET)}) as site:
        target = site.url("/secret").replace("127.0.0.1", target_host)
        site.routes[PUBLIC] = Route(status=302, headers={"Location": target})
        monkeypatch.setenv("HTTP_PROXY", site.base)
        result = run(workspace, "add", "fresh", PUBLIC, "--timeout", "5")
    assert result.exit_code == 1
    shown = target if target_host == "127.0.0.1" else f"{target} (localhost is 127.0.0.1)"
    assert result.stderr == (
        f"error: {PUBLIC}: redirects to {shown}, a local or private network address;"
        " not followed — give the address of the article itself if you trust it\n"
    )
    assert [r["path"] for r in site.requests] == [PUBLIC], "the internal page was never asked"
    assert path.read_bytes() == before


def test_public_page_redirecting_to_another_public_host_is_followed(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_issue(workspace, "fresh")
    moved = "http://93.184.216.35/moved"
    with local_site({}) as site:
        site.routes[PUBLIC] = Route(status=301, headers={"Location": moved})
        site.routes[moved] = Route(PAGE)
        monkeypatch.setenv("HTTP_PROXY", site.base)
        result = run(workspace, "add", "fresh", PUBLIC, "--timeout", "5")
    assert result.exit_code == 0, result.stderr
    assert sections_of(path)[0]["articles"][0][:2] == (
        "Public story",
        "https://news.example.org/story",
    )


def test_local_address_may_redirect_to_another_local_port(workspace: Path) -> None:
    """The editor's own local or intranet address: its redirects are the editor's business."""
    path = make_issue(workspace, "fresh")
    with local_site({"/story": Route(PAGE)}) as target, local_site({}) as start:
        start.routes["/r"] = Route(status=302, headers={"Location": target.url("/story")})
        result = run(workspace, "add", "fresh", start.url("/r"), "--timeout", "5")
    assert result.exit_code == 0, result.stderr
    assert sections_of(path)[0]["articles"][0][0] == "Public story"


@pytest.mark.parametrize(
    ("address", "internal"),
    [
        ("127.0.0.1", True),
        ("10.0.0.7", True),
        ("172.16.5.4", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),
        ("0.0.0.0", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("fe80::1", True),
        ("fd12::1", True),
        ("93.184.216.34", False),
        ("2606:2800:220:1::", False),
    ],
)
def test_which_addresses_are_internal(address: str, internal: bool) -> None:
    url = f"http://[{address}]/" if ":" in address else f"http://{address}/"
    assert (internal_address(url) is not None) is internal


def test_names_are_resolved_and_an_internal_origin_allows_everything() -> None:
    names = {"news.example": ["93.184.216.34"], "intranet.example": ["10.0.0.7"]}

    def resolve(host: str) -> list[str]:
        return names.get(host, [])

    assert internal_address("http://intranet.example/x", resolve) == "10.0.0.7"
    assert internal_address("http://unknown.example/x", resolve) is None
    assert RedirectGuard("http://intranet.example/", resolve).origin_internal
    assert not RedirectGuard("http://news.example/", resolve).origin_internal
