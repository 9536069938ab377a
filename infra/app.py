"""The CDK app: one stack per stage, `rebook-<stage>`.

    python -m infra.app                      # synthesise dev into cdk.out/
    npx cdk deploy -c stage=prod             # deploy prod (cdk.json runs this module)
    npx cdk deploy -c stage=prod -c portal_origin=https://portal.example.com   # a venue's portal host
    npx cdk deploy -c stage=prod -c hold_back_indexes=venue-refund-list   # one new table index per deploy

The stage comes from the CDK context `stage`, else the environment variable STAGE, else dev.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# Run as a script (`python infra/app.py`), this folder would shadow the Chalice app's `app` module.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO_ROOT / "infra"]
sys.path.insert(0, str(REPO_ROOT))


def main() -> None:
    import aws_cdk as cdk

    app = cdk.App(outdir=os.environ.get("CDK_OUTDIR") or str(REPO_ROOT / "cdk.out"))
    stage = app.node.try_get_context("stage") or os.environ.get("STAGE") or "dev"
    # The models read their table names from configuration on import; name them for this stage.
    os.environ["STAGE"] = stage
    os.environ["TABLE_PREFIX"] = f"rebook-{stage}"

    from infra.stack import RebookStack

    RebookStack(app, stage,
                alarm_email=app.node.try_get_context("alarm_email") or os.environ.get("ALARM_EMAIL"),
                portal_origin=app.node.try_get_context("portal_origin"),
                hold_back_indexes=tuple(name for name in str(app.node.try_get_context("hold_back_indexes") or "")
                                        .split(",") if name),
                env=cdk.Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
                                    region=os.environ.get("CDK_DEFAULT_REGION")))
    app.synth()


if __name__ == "__main__":
    main()
