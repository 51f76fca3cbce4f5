"""The sample issue grown to 20 (or 30) illustrated stories: the size and speed yardstick."""

from __future__ import annotations

import copy
from pathlib import Path

from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "issues" / "sample" / "issue.yaml"
STORIES = 20


def twenty_story_document(stories: int = STORIES) -> dict[str, object]:
    yaml = YAML(typ="safe")
    document = yaml.load(SAMPLE.read_text(encoding="utf-8"))
    articles = [a for section in document["sections"] for a in section["articles"]]
    grown = []
    for number in range(stories):
        article = copy.deepcopy(articles[number % len(articles)])
        article["url"] = f"{article['url']}-{number + 1}"
        article["image"] = {
            "src": f"https://example.org/images/story-{number + 1}.jpg",
            "alt": f"Photo for story {number + 1}: {article['title'][:60]}",
        }
        article["author"] = "Staff reporter"
        article["date"] = "2026-11-30"
        grown.append(article)
    half = stories // 2
    document["sections"] = [
        {"title": "Top story", "layout": "lead", "articles": grown[:1]},
        {"title": "Latest", "layout": "list", "articles": grown[1:half]},
        {"title": "Don't miss", "layout": "grid", "articles": grown[half:]},
    ]
    return document  # type: ignore[no-any-return]


def write_twenty_story_issue(workspace: Path, slug: str = "twenty", stories: int = STORIES) -> Path:
    target = workspace / "issues" / slug / "issue.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    with target.open("w", encoding="utf-8") as handle:
        yaml.dump(twenty_story_document(stories), handle)
    return target
