"""One synthesis of each stage per test session: packaging the Chalice app takes seconds."""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

if shutil.which("node") is None:  # as the browser tests without Chromium: a failure, never a skip
    pytest.fail("the infrastructure tests need Node.js 20+ (the AWS CDK runs on it): install it "
                "(`apt-get install -y nodejs npm`, as .ci/run does). These tests do not skip.", pytrace=False)

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


@dataclass
class Synthesised:
    stage: str
    stack: Any
    template: Any  # aws_cdk.assertions.Template
    json: dict[str, Any]

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.json["Resources"].items() if v["Type"] == resource_type}

    def function(self, logical_id: str) -> dict[str, Any]:
        return self.json["Resources"][logical_id]["Properties"]


VENUE_PORTAL_ORIGIN = "https://portal.venue.example"
ENV = {"account": "123456789012", "region": "eu-west-1"}


@contextmanager
def _synthesis() -> Iterator[Path]:
    workdir = Path(tempfile.mkdtemp(prefix="rebook-infra-"))
    previous = os.getcwd()
    os.chdir(workdir)  # chalice.cdk writes chalice.out/ into the working directory
    try:
        yield workdir
    finally:
        os.chdir(previous)
        shutil.rmtree(workdir, ignore_errors=True)


def _synthesised(stage: str, stack: Any) -> Synthesised:
    from aws_cdk.assertions import Template

    template = Template.from_stack(stack)
    return Synthesised(stage, stack, template, template.to_json())


@pytest.fixture(scope="session")
def synthesised() -> Iterator[dict[str, Synthesised]]:
    import aws_cdk as cdk

    from infra.stack import RebookStack

    with _synthesis() as workdir:
        app = cdk.App(outdir=str(workdir / "cdk.out"))
        stacks = {stage: RebookStack(app, stage, env=cdk.Environment(**ENV)) for stage in ("dev", "prod")}
        yield {stage: _synthesised(stage, stack) for stage, stack in stacks.items()}


@pytest.fixture(scope="session")
def venue_portal() -> Iterator[Synthesised]:
    """dev, deployed with `-c portal_origin=...`: a venue serves the portal from its own host."""
    import aws_cdk as cdk

    from infra.stack import RebookStack

    with _synthesis() as workdir:
        app = cdk.App(outdir=str(workdir / "cdk.out"))
        stack = RebookStack(app, "dev", portal_origin=VENUE_PORTAL_ORIGIN, env=cdk.Environment(**ENV))
        yield _synthesised("dev", stack)


@pytest.fixture(scope="session")
def dev(synthesised: dict[str, Synthesised]) -> Synthesised:
    return synthesised["dev"]


@pytest.fixture(scope="session")
def prod(synthesised: dict[str, Synthesised]) -> Synthesised:
    return synthesised["prod"]
