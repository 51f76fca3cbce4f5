"""Signed unsubscribe links: a token works for its own address and list, and nothing else."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from newsletter.audience.unsubscribe import UnsubscribeLinks
from newsletter.errors import ConfigError
from tests._workspace import SECRET, links


def _query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def test_the_link_names_list_and_address_and_carries_a_verifiable_token() -> None:
    signer = links()
    url = signer.url("Ann.Smith@Example.org")
    assert url.startswith("https://example.org/unsubscribe?list=balkan-brief&email=")
    query = _query(url)
    assert query["email"] == "Ann.Smith@Example.org"
    assert query["list"] == "balkan-brief"
    assert signer.verify(query["email"], query["token"])


def test_letter_case_and_surrounding_space_do_not_change_the_token() -> None:
    signer = links()
    assert signer.token("ann@example.org") == signer.token("  ANN@Example.ORG ")


def test_a_token_for_one_address_cannot_unsubscribe_another() -> None:
    signer = links()
    token = signer.token("ann@example.org")
    assert not signer.verify("bob@example.org", token)
    assert not signer.verify("ann@example.org.evil", token)
    assert not signer.verify("nn@example.org", token)


def test_a_tampered_token_is_refused() -> None:
    signer = links()
    token = signer.token("ann@example.org")
    for i in range(len(token)):
        flipped = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]
        assert not signer.verify("ann@example.org", flipped)
    assert not signer.verify("ann@example.org", token[:-1])
    assert not signer.verify("ann@example.org", "")
    assert not signer.verify("ann@example.org", token + "A")
    assert not signer.verify("ann@example.org", "ä" * len(token))


def test_tokens_depend_on_the_list_and_the_secret() -> None:
    token = links().token("ann@example.org")
    assert not links("other-list").verify("ann@example.org", token)
    other_secret = UnsubscribeLinks("https://example.org/u", "balkan-brief", SECRET + "x")
    assert not other_secret.verify("ann@example.org", token)


def test_an_address_cannot_smuggle_query_parameters() -> None:
    url = links().url("a&token=x@example.org")
    query = _query(url)
    assert query["email"] == "a&token=x@example.org"
    assert list(query) == ["list", "email", "token"]


def test_a_base_url_with_a_query_gets_more_parameters() -> None:
    signer = UnsubscribeLinks("https://example.org/u?site=1", "news", SECRET)
    assert signer.url("a@example.org").startswith("https://example.org/u?site=1&list=news&")


@pytest.mark.parametrize(
    ("base", "secret", "message"),
    [
        ("ftp://example.org/u", SECRET, "is not an http(s) URL"),
        ("https://example.org/u", "short", "shorter than 16 characters"),
    ],
)
def test_bad_settings_are_refused(base: str, secret: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        UnsubscribeLinks(base, "news", secret)
