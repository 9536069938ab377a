"""Each kind of email rendered from its files in `templates/`: `<kind>.txt` for the text part and
`<kind>.html` for the HTML part, with autoescaping on the HTML (a participant named `<script>`
is text). Imported only by the sender, so no other function pays for jinja2."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from chalicelib.emails import wording

TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True)
class RenderedEmail:
    text: str
    html: str


@lru_cache(maxsize=2)
def _environment(html: bool) -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=html, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    environment.filters["money"] = wording.money
    environment.filters["when"] = wording.when
    return environment


def render(kind: str, facts: dict[str, Any], links: dict[str, str]) -> RenderedEmail:
    if kind not in wording.KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    context = {**facts, "links": links, "kind": kind}
    return RenderedEmail(text=_environment(False).get_template(f"{kind}.txt").render(context),
                         html=_environment(True).get_template(f"{kind}.html").render(context))
