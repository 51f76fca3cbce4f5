"""One build of an issue in memory: the rendered parts, the check findings, the report data."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from newsletter.build.checks import Finding, errors
from newsletter.build.render import Rendered
from newsletter.issue.model import Issue

EMAIL_HTML, EMAIL_TEXT, WEB_HTML = "email.html", "email.txt", "web.html"


@dataclass
class Build:
    slug: str
    issue: Issue
    rendered: Rendered
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        return not errors(self.findings)

    def files(self) -> dict[str, str]:
        return {
            EMAIL_HTML: self.rendered.email_html,
            EMAIL_TEXT: self.rendered.text,
            WEB_HTML: self.rendered.web_html,
        }

    def report(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "subject": self.issue.subject,
            "preheader": self.issue.preheader,
            "date": self.issue.date.isoformat(),
            "ok": self.ok,
            "errors": sum(f.level == "error" for f in self.findings),
            "warnings": sum(f.level == "warning" for f in self.findings),
            "checks": [finding.as_dict() for finding in self.findings],
            "files": {
                name: {
                    "bytes": len(content.encode("utf-8")),
                    "sha256": hashlib.sha256(content.encode("utf-8")).hexdigest(),
                }
                for name, content in self.files().items()
            },
            "articles": [article.url for article in self.issue.articles()],
        }
