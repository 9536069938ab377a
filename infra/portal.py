"""The files `make portal-deploy` uploads: portal/ as it is, except that each page's
`<meta name="rebook-api">` names the stage's API, since the hosted portal is on another origin;
and the security headers every portal page is served with, by CloudFront and by the local stack.

    python -m infra.portal --api https://<id>.execute-api.<region>.amazonaws.com/v --out cdk.out/portal-dev
"""
from __future__ import annotations

import argparse
import html
import re
import shutil
from pathlib import Path

PORTAL_DIR = Path(__file__).resolve().parent.parent / "portal"
API_META = re.compile(r'(<meta name="rebook-api" content=")[^"]*(">)')
API_BASE = re.compile(r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~-]+)*/?")


# Sent with every portal file, in AWS by the distribution's response headers policy and locally
# by the front (with the CSP below); infra/stack.py and the tests read them from here.
FRAME_OPTIONS = "DENY"
REFERRER_POLICY = "no-referrer"
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=()"


def portal_csp(connect_src: str) -> str:
    """The portal loads only its own files (no inline script or style) and calls only the API."""
    return "; ".join([
        "default-src 'self'", "img-src 'self' data:", f"connect-src {connect_src}", "object-src 'none'",
        "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
    ])


def portal_headers(connect_src: str) -> dict[str, str]:
    """The headers of a portal page whose API is at `connect_src` (locally: its own origin)."""
    return {"Content-Security-Policy": portal_csp(connect_src), "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": FRAME_OPTIONS, "Referrer-Policy": REFERRER_POLICY,
            "Permissions-Policy": PERMISSIONS_POLICY}


def hosted_copy(destination: Path, api_base: str, source: Path = PORTAL_DIR) -> list[Path]:
    """Copies the portal into `destination` (replacing it) pointed at `api_base`; returns the pages."""
    if not API_BASE.fullmatch(api_base):
        raise ValueError(f"the API base must be an https URL such as https://api.example.com/v, not {api_base!r}")
    shutil.rmtree(destination, ignore_errors=True)
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns("README.md"))
    pages = sorted(destination.glob("*.html"))
    for page in pages:
        pointed, found = API_META.subn(lambda m: m[1] + html.escape(api_base.rstrip("/")) + m[2], page.read_text())
        if found != 1:
            raise ValueError(f'{page.name} must have exactly one <meta name="rebook-api" content="..."> tag')
        page.write_text(pointed)
    return pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", required=True, help="the stage's ApiUrl output")
    parser.add_argument("--out", required=True, type=Path)
    arguments = parser.parse_args()
    pages = hosted_copy(arguments.out, arguments.api)
    print(f"{arguments.out}: {len(pages)} pages pointed at {arguments.api}")


if __name__ == "__main__":
    main()
