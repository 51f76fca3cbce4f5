"""`report SLUG --html FILE`: one self-contained page with the click map.

The email is shown as readers saw it (merge tags filled with the preview's sample values)
in a sandboxed frame, each link with a badge of its unique clickers and its share of all
clicks, like Mailchimp's click map; then the funnel and the chart of the first 72 hours.
"""

from __future__ import annotations

from dataclasses import dataclass

import jinja2
from lxml import html as lxml_html
from markupsafe import Markup

from newsletter.build.report_page import SAMPLE_VALUES, for_subscriber
from newsletter.report.chart import hourly_svg
from newsletter.report.links import LinkMap, link_key
from newsletter.report.results import MACHINE_OPEN_CAVEAT, IssueResults, LinkClicks

BADGE_STYLE = (
    "display:inline-block;margin:0 0 0 6px;padding:1px 6px;border-radius:9px;"
    "background:#fde047;color:#111827;font:bold 12px/1.5 Helvetica,Arial,sans-serif;"
    "text-decoration:none;vertical-align:middle;white-space:nowrap"
)


@dataclass(frozen=True)
class Badge:
    unique: int
    total: int
    share: float


def annotated_email(email_html: str, results: IssueResults, links: LinkMap) -> str:
    """The email with a badge after every link that has a known count."""
    document = lxml_html.document_fromstring(for_subscriber(email_html).encode("utf-8"))
    for anchor in document.iter("a"):
        badge = _badge_for(anchor.get("href") or "", results, links)
        if badge is None:
            continue
        anchor.set("data-unique-clicks", str(badge.unique))
        anchor.set("data-total-clicks", str(badge.total))
        mark = lxml_html.fragment_fromstring(
            f'<span class="nl-clickmap" style="{BADGE_STYLE}" data-unique-clicks='
            f'"{badge.unique}">{badge.unique:,} · {badge.share:.1f}%</span>'
        )
        mark.tail = anchor.tail
        anchor.tail = None
        anchor.addnext(mark)
    return str(lxml_html.tostring(document, encoding="unicode", doctype="<!doctype html>"))


def _badge_for(href: str, results: IssueResults, links: LinkMap) -> Badge | None:
    if not href.startswith(("http://", "https://")):
        return None
    found: LinkClicks | None = None
    story = links.story(href)
    if story is not None:
        found = next((item for item in results.stories if item.url == story.url), None)
    elif href == SAMPLE_VALUES["unsubscribe_url"]:
        found = next((i for i in results.other_links if i.kind == "unsubscribe"), None)
    else:
        key = link_key(href)
        found = next(
            (i for i in results.other_links if i.kind != "unsubscribe" and link_key(i.url) == key),
            None,
        )
    if found is None:
        return None if story is None else Badge(0, 0, 0.0)  # no false zero for other links
    share = 100 * found.total / results.clicks_total if results.clicks_total else 0.0
    return Badge(found.unique, found.total, share)


def report_html(subject: str, email_html: str, results: IssueResults, links: LinkMap) -> str:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("newsletter", "report/templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    opened = results.opens_unique + results.opens_machine_only
    of_sent = (
        round(100 * results.delivered / results.sent, 1)
        if results.sent and results.has_events
        else None
    )
    steps = [
        ("sent", results.sent, None),
        ("delivered", results.delivered, of_sent),
        ("opened (people)", results.opens_unique, results.rate(results.opens_unique)),
        ("opened (with machine opens)", opened, results.rate(opened)),
        ("clicked", results.clicks_unique, results.rate(results.clicks_unique)),
    ]
    top = max(results.sent, 1)
    return environment.get_template("results.html").render(
        subject=subject,
        slug=results.issue,
        funnel=[(label, count, rate, 100 * count / top) for label, count, rate in steps],
        chart=Markup(hourly_svg(results.opens_per_hour, results.clicks_per_hour)),
        stories=sorted(results.stories, key=lambda item: -item.unique),
        others=results.other_links,
        email=annotated_email(email_html, results, links),
        caveat=MACHINE_OPEN_CAVEAT,
        rates_of=results.rates_of,
        has_events=results.has_events,
        problems=[
            ("deferred", results.deferred),
            ("bounced (hard)", results.bounced_hard),
            ("bounced (soft)", results.bounced_soft),
            ("dropped", results.dropped),
            ("spam reports", results.spam_reports),
            *((f"unsubscribed ({way})", n) for way, n in sorted(results.unsubscribes.items())),
        ],
        rate=results.rate,
    )
