"""deploy/kubernetes/: valid against the Kubernetes API schema (offline, the schemas ship
with ``kubernetes-validate``), every variable set is one wheels-etl reads, no credential
inside, and the worker keeps the old collector's limits."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from etl.config import OPTIONS, OTHER_VARIABLES, TEST_ONLY_VARIABLES
from etl.workers.settings import ENV_VARS

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "kubernetes"
#: Secret keys that must come from a Secret, never from the ConfigMap or a literal.
CREDENTIALS = {"DATABASE_URL", "ETL_BROKER_URL", "ETL_SOURCE_TOKEN", "AWS_SECRET_ACCESS_KEY"}


def documents() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                out.append((path.name, doc))
    return out


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [d for _, d in documents() if d["kind"] == kind]


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec", {})
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return list(spec.get("template", {}).get("spec", {}).get("containers", []))


def test_there_are_manifests() -> None:
    kinds = sorted(d["kind"] for _, d in documents())
    assert kinds == ["ConfigMap", "CronJob", "CronJob", "Deployment", "PersistentVolumeClaim"]


@pytest.mark.parametrize(
    ("name", "doc"), documents(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_valid_against_the_api_schema(name: str, doc: dict[str, Any]) -> None:
    version = kubernetes_validate.latest_version()
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{name}: {exc.message} at {list(exc.path)}")


def variables_read_by_the_code() -> set[str]:
    names = {o.env for o in OPTIONS if o.env} | set(OTHER_VARIABLES) | set(ENV_VARS)
    names |= set(TEST_ONLY_VARIABLES)
    source = "\n".join(p.read_text() for p in (REPO / "etl").rglob("*.py"))
    for name in names:  # the tables are not just words: the code reads each name
        assert f'"{name}"' in source, f"{name} is declared but no module reads it"
    return names


def variables_set() -> dict[str, str]:
    """Every variable a manifest sets -> where (ConfigMap keys and container env)."""
    out: dict[str, str] = {}
    for name, doc in documents():
        if doc["kind"] == "ConfigMap":
            out.update({k: f"{name} data" for k in doc["data"]})
        for c in containers(doc):
            out.update({e["name"]: f"{name} env" for e in c.get("env", [])})
    return out


def test_every_variable_set_is_read_by_the_code() -> None:
    known = variables_read_by_the_code()
    unknown = {k: where for k, where in variables_set().items() if k not in known}
    assert not unknown, f"set but never read by wheels-etl: {unknown}"


def test_credentials_come_from_secrets_only() -> None:
    assert not by_kind("Secret"), "a Secret must be created outside the repository"
    for name, doc in documents():
        if doc["kind"] == "ConfigMap":
            assert not CREDENTIALS & set(doc["data"]), name
            text = " ".join(str(v) for v in doc["data"].values())
            assert not re.search(r"://[^/@\s]+:[^/@\s]+@", text), f"{name}: password in a URL"
        for c in containers(doc):
            for env in c.get("env", []):
                if env["name"] in CREDENTIALS:
                    assert "value" not in env and "secretKeyRef" in env["valueFrom"], (name, env)


def test_worker_keeps_the_collector_limits_and_has_probes() -> None:
    (deployment,) = by_kind("Deployment")
    (worker,) = containers(deployment)
    assert worker["command"][:2] == ["wheels-etl", "worker"]
    assert worker["resources"]["limits"] == {"memory": "512Mi", "cpu": "1"}
    assert worker["livenessProbe"]["exec"]["command"] == ["wheels-etl", "worker", "--healthcheck"]
    assert worker["readinessProbe"]["exec"]["command"] == ["wheels-etl", "worker", "--readiness"]
    names = {e["name"] for e in worker["env"]}
    assert {"DATABASE_URL", "ETL_BROKER_URL"} <= names


def test_cronjobs_run_enqueue_and_reconcile() -> None:
    commands = sorted(tuple(containers(c)[0]["command"]) for c in by_kind("CronJob"))
    assert commands == [("wheels-etl", "enqueue"), ("wheels-etl", "reconcile")]
    for cron in by_kind("CronJob"):
        assert cron["spec"]["concurrencyPolicy"] == "Forbid"
