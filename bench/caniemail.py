"""caniemail.com support of the built email, per client family: unique features not supported.

    python bench/caniemail.py [--details]

Uses npm's `@jsx-email/doiuse-email` (installed on first use into bench/.doiuse) on the
sample's email.html and on the 20-story illustrated issue. A feature counts once per
family however many of the family's clients lack it. Not part of CI.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.twenty_stories import write_twenty_story_issue  # noqa: E402
from newsletter.build.output import make_build  # noqa: E402
from newsletter.config import load_settings  # noqa: E402

TOOL_DIR = REPO / "bench" / ".doiuse"
PACKAGE = "@jsx-email/doiuse-email@1.0.4"
FAMILIES = {"Gmail": "gmail.*", "Outlook": "outlook.*", "Yahoo": "yahoo.*", "Apple": "apple-mail.*"}
# Unique errors of the sample before issue 13 (the bar: no family may get worse).
BASELINE = {"Gmail": 9, "Outlook": 11, "Yahoo": 7, "Apple": 0}
COUNT_SCRIPT = """
import { doIUseEmail } from '@jsx-email/doiuse-email';
import { readFileSync } from 'node:fs';
const html = readFileSync(process.argv[2], 'utf8');
const families = JSON.parse(process.argv[3]);
const out = {};
for (const [name, glob] of Object.entries(families)) {
  const result = doIUseEmail(html, { emailClients: [glob] });
  const errors = result.success ? [] : result.errors;
  const features = new Set(errors.map(e => (e.match(/`([^`]+)`/) || [e, e])[1]));
  out[name] = [...features].sort();
}
console.log(JSON.stringify(out));
"""


def install() -> Path:
    script = TOOL_DIR / "count.mjs"
    if not (TOOL_DIR / "node_modules" / "@jsx-email" / "doiuse-email").is_dir():
        TOOL_DIR.mkdir(exist_ok=True)
        (TOOL_DIR / "package.json").write_text('{"name": "caniemail-bench", "private": true}\n')
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", PACKAGE], cwd=TOOL_DIR, check=True
        )
    script.write_text(COUNT_SCRIPT, encoding="utf-8")
    return script


def unsupported(script: Path, html: str) -> dict[str, list[str]]:
    with tempfile.NamedTemporaryFile("w", suffix=".html", encoding="utf-8") as handle:
        handle.write(html)
        handle.flush()
        result = subprocess.run(
            ["node", str(script), handle.name, json.dumps(FAMILIES)],
            cwd=TOOL_DIR,
            check=True,
            capture_output=True,
            text=True,
        )
    features: dict[str, list[str]] = json.loads(result.stdout)
    return features


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--details", action="store_true", help="list the features")
    details = parser.parse_args().details
    script = install()
    worse = False
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        shutil.copy(REPO / "newsletter.toml", root / "newsletter.toml")
        shutil.copytree(REPO / "issues" / "sample", root / "issues" / "sample")
        write_twenty_story_issue(root)
        settings = load_settings(root, environ={})
        for slug in ("sample", "twenty"):
            features = unsupported(script, make_build(settings, slug).rendered.email_html)
            print(f"\n{slug}: unique unsupported features per client family")
            for family, names in features.items():
                bar = f"  (before: {BASELINE[family]})" if slug == "sample" else ""
                print(f"  {family:<8}{len(names):3d}{bar}")
                if details:
                    print("          " + ", ".join(names))
                worse |= slug == "sample" and len(names) > BASELINE[family]
    return 1 if worse else 0


if __name__ == "__main__":
    sys.exit(main())
