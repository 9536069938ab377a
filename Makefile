# `make run` starts the whole product on this machine; `make test` runs every test.
# Both create .venv and install the pinned requirements the first time.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run demo test test-fast infra-check portal-deploy upgrade bench clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check 'pip<26.3'
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

# The API's own processes (as Lambda runs several copies): they use the cores the embedded AWS,
# the pumps and the Stripe stand-in leave. 0 serves everything from one process.
LOCAL_API_PROCESSES ?= 2
run: $(STAMP)
	SEED=$(SEED) LOCAL_API_PROCESSES=$(LOCAL_API_PROCESSES) $(PY) -m infra.local.stack

demo: $(STAMP)
	SEED=1 LOCAL_API_PROCESSES=$(LOCAL_API_PROCESSES) $(PY) -m infra.local.stack

# Test workers: each is a process with its own embedded stack (tests/conftest.py keeps tests that
# share a costly fixture on one worker). TEST_WORKERS=0 runs everything in this process. Three on
# 2 CPUs: a worker waiting on a browser, a child process or a sleep leaves a CPU to the third, and
# each worker's tables hold a third of the run's data, not half (measured: 409 s of CPU and 4:44
# with 3, 477 s and 5:50 with 2, the machine equally loaded).
# Compiled modules (and pytest's rewritten test modules) are written to __pycache__ even where
# PYTHONDONTWRITEBYTECODE is set: otherwise each worker compiles the project and rewrites the
# tests again on every run (~2 s of CPU each).
TEST_WORKERS ?= 3
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	@start=$$(date +%s); PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup; status=$$?; \
	took=$$(( $$(date +%s) - start )); \
	echo "make test: tests took $$((took / 60)) min $$((took % 60)) s ($(TEST_WORKERS) workers, $$(nproc) CPUs)"; \
	exit $$status

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

# The AWS stack, offline: synthesise both stages, lint the templates, assert on them.
CDK_ENV := JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1}
infra-check: $(STAMP)
	@command -v node >/dev/null || { echo "infra-check needs Node.js 20+ (the AWS CDK runs on it)"; exit 1; }
	for stage in dev prod; do $(CDK_ENV) STAGE=$$stage CDK_OUTDIR=cdk.out/$$stage $(PY) -m infra.app || exit 1; done
	$(VENV)/bin/cfn-lint cdk.out/dev/rebook-dev.template.json cdk.out/prod/rebook-prod.template.json
	$(CDK_ENV) $(PY) -m pytest tests/infra

# Upload portal/ to a deployed stage's bucket, pointed at its API (needs the AWS CLI and credentials).
portal-deploy: $(STAMP)
	@case "$(STAGE)" in dev|prod) ;; *) echo "usage: make portal-deploy STAGE=dev|prod"; exit 1;; esac
	@command -v aws >/dev/null || { echo "portal-deploy needs the AWS CLI (aws)"; exit 1; }
	output() { aws cloudformation describe-stacks --stack-name rebook-$(STAGE) --output text \
	    --query "Stacks[0].Outputs[?OutputKey=='$$1'].OutputValue"; }; \
	bucket=$$(output PortalBucketName) && distribution=$$(output PortalDistributionId) && \
	api=$$(output ApiUrl) && url=$$(output PortalUrl) && \
	$(PY) -m infra.portal --api "$$api" --out cdk.out/portal-$(STAGE) && \
	aws s3 sync cdk.out/portal-$(STAGE) "s3://$$bucket" --delete --cache-control no-cache && \
	aws cloudfront create-invalidation --distribution-id "$$distribution" --paths '/*' >/dev/null && \
	echo "portal: $$url/  (a venue's link: $$url/?venue=<venue_id>)"

# Bring a deployed stage's data from the first round up to the second's (docs/deploy.md, "Upgrading
# from the first round"; needs AWS credentials). DRY_RUN=1 only counts; running it again is safe.
upgrade: $(STAMP)
	@case "$(STAGE)" in dev|prod) ;; *) echo "usage: make upgrade STAGE=dev|prod [DRY_RUN=1]"; exit 1;; esac
	STAGE=$(STAGE) TABLE_PREFIX=rebook-$(STAGE) $(PY) -m infra.upgrade $(if $(DRY_RUN),--dry-run)

# Figures, not assertions: calls, request units, cold start, latency and cost -> docs/benchmarks.md.
bench: $(STAMP)
	$(PY) -m bench
	$(PY) -m bench.closure

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .cache chalice.out cdk.out
