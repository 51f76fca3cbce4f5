"""The URL path against a real server on 127.0.0.1: redirects, errors, stalls, wrong types."""

from __future__ import annotations

import pytest

from newsletter.collect.fetch import USER_AGENT, fetch
from newsletter.collect.readers.base import ReadOptions
from newsletter.collect.readers.registry import read_source
from newsletter.errors import SourceError
from tests._local_site import Route, closed_port_url, local_site
from tests._paths import fixture

CNN = fixture("pages/cnn_article.html").read_bytes()
RSS = fixture("feeds/rss2sample.xml").read_bytes()


def test_fetch_follows_redirects_and_reports_the_final_address() -> None:
    routes = {
        "/old": Route(status=301, headers={"Location": "/moved"}),
        "/moved": Route(status=302, headers={"Location": "/story"}),
        "/story": Route(CNN),
    }
    with local_site(routes) as site:
        fetched = fetch(site.url("/old"), timeout=5)
    assert fetched.url == site.url("/story")
    assert fetched.content == CNN
    assert fetched.content_type == "text/html"
    assert fetched.charset == "utf-8"


def test_fetch_sends_a_clear_user_agent() -> None:
    with local_site({"/story": Route(CNN)}) as site:
        fetch(site.url("/story"), timeout=5)
    assert site.requests[0]["User-Agent"] == USER_AGENT
    assert USER_AGENT.startswith("newsletter/")


def test_redirect_loop_is_one_clear_error() -> None:
    routes = {
        "/a": Route(status=302, headers={"Location": "/b"}),
        "/b": Route(status=302, headers={"Location": "/a"}),
    }
    with local_site(routes) as site, pytest.raises(SourceError) as caught:
        fetch(site.url("/a"), timeout=5)
    assert caught.value.line() == (
        f"{site.url('/a')}: more than 5 redirects "
        "— open the address in a browser and give the final one"
    )


def test_404_names_the_status_and_the_fix() -> None:
    with local_site({}) as site, pytest.raises(SourceError) as caught:
        fetch(site.url("/gone"), timeout=5)
    assert caught.value.line() == (
        f"{site.url('/gone')}: HTTP 404 Not Found — check the address; "
        "the page may have moved or been removed"
    )


def test_slow_server_times_out_with_the_configured_limit() -> None:
    with local_site({"/slow": Route(CNN, delay=2.0)}) as site, pytest.raises(SourceError) as caught:
        fetch(site.url("/slow"), timeout=0.3)
    assert caught.value.line() == (
        f"{site.url('/slow')}: no answer within 0.3 s — try again later, or allow more time "
        "with --timeout or NEWSLETTER_HTTP_TIMEOUT"
    )


def test_timeout_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_HTTP_TIMEOUT", "0.2")
    with local_site({"/slow": Route(CNN, delay=2.0)}) as site, pytest.raises(SourceError) as caught:
        fetch(site.url("/slow"))
    assert "no answer within 0.2 s" in caught.value.line()


def test_unreachable_host_is_connection_refused() -> None:
    url = closed_port_url()
    with pytest.raises(SourceError) as caught:
        fetch(url, timeout=2)
    assert caught.value.line() == (
        f"{url}: cannot connect (Connection refused) "
        "— check the address and your network connection"
    )


def test_size_cap_stops_huge_downloads() -> None:
    with (
        local_site({"/huge": Route(b"<p>" + b"x" * 2048)}) as site,
        pytest.raises(SourceError) as caught,
    ):
        fetch(site.url("/huge"), timeout=5, max_bytes=1024)
    assert "larger than" in caught.value.line()


def test_page_served_as_html_becomes_an_article() -> None:
    with local_site({"/story": Route(CNN)}) as site:
        collected = read_source(site.url("/story"), ReadOptions(timeout=5))
    [found] = collected.found
    assert found.article.title == "After storm, forecasters see smooth sailing for Thanksgiving"
    assert (
        found.article.url == "http://www.cnn.com/2013/11/27/travel/weather-thanksgiving/index.html"
    )


def test_feed_is_recognised_by_content_whatever_the_declared_type() -> None:
    with local_site({"/feed/": Route(RSS, content_type="text/html")}) as site:
        collected = read_source(site.url("/feed/"), ReadOptions(timeout=5))
    assert [f.article.title for f in collected.found][:1] == ["Star City"]


def test_page_without_canonical_uses_the_final_address() -> None:
    page = (
        b"<html><head><title>Local story</title></head><body><p>"
        + b"word " * 20
        + b"</p></body></html>"
    )
    routes = {"/r": Route(status=301, headers={"Location": "/local"}), "/local": Route(page)}
    with local_site(routes) as site:
        collected = read_source(site.url("/r"), ReadOptions(timeout=5))
    assert collected.found[0].article.url == site.url("/local")


@pytest.mark.parametrize(
    ("content_type", "body", "message"),
    [
        ("application/pdf", b"%PDF-1.4 binary", "a PDF document, not a page, feed or text"),
        ("image/png", b"\x89PNG\r\n\x1a\n\x00\x00", "a PNG image, not a page, feed or text"),
        (
            "application/octet-stream",
            b"\x00\x01\x02\x03 random",
            "a binary file, not a page, feed or text",
        ),
        ("video/mp4", b"....ftypisom", "not a web page or feed (Content-Type: video/mp4)"),
    ],
)
def test_non_html_responses_are_refused(content_type: str, body: bytes, message: str) -> None:
    with (
        local_site({"/file": Route(body, content_type=content_type)}) as site,
        pytest.raises(SourceError) as caught,
    ):
        read_source(site.url("/file"), ReadOptions(timeout=5))
    assert caught.value.line() == (
        f"{site.url('/file')}: {message} — give an article URL, an .html page, a feed, "
        "a Markdown (.md) or a text (.txt) file"
    )


def test_html_declared_as_a_feed_is_not_a_feed() -> None:
    body = fixture("feeds/notafeed.html").read_bytes()
    with (
        local_site({"/rss": Route(body, content_type="application/rss+xml")}) as site,
        pytest.raises(SourceError) as caught,
    ):
        read_source(site.url("/rss"), ReadOptions(timeout=5))
    assert caught.value.line().startswith(f"{site.url('/rss')}: not an RSS or Atom feed (")
    assert caught.value.line().endswith(
        "— give the feed's address (often /feed/ or /rss) or an article page"
    )


def test_other_schemes_are_refused() -> None:
    with pytest.raises(SourceError) as caught:
        read_source("ftp://example.org/story.html")
    assert caught.value.line().startswith("ftp://example.org/story.html: only http:// and https://")


def test_html_served_as_plain_text_is_still_read_as_a_page() -> None:
    with local_site({"/story": Route(CNN, content_type="text/plain")}) as site:
        collected = read_source(site.url("/story"), ReadOptions(timeout=5))
    assert collected.found[0].article.title == (
        "After storm, forecasters see smooth sailing for Thanksgiving"
    )
