"""deploy/kubernetes/: a kustomize base and two overlays (shared-folder, object-storage),
each rendered offline (tests.support.kustomize, which gives what ``kubectl kustomize``
gives for the features these files use) and every rendered manifest validated against the
Kubernetes API schema (the schemas ship with ``kubernetes-validate``: no network).  Then:
every variable set is one wheels-etl reads, credentials only from Secrets, pods that meet
the "restricted" Pod Security Standard, the image named in one place, probes that mean
what they say, and the Secret commands the README gives."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from etl.config import OPTIONS, OTHER_VARIABLES, TEST_ONLY_VARIABLES
from etl.workers.settings import ENV_VARS
from tests.support.kustomize import KNOWN_KEYS, containers, pod_spec, render

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "kubernetes"
OVERLAYS = ("shared-folder", "object-storage")
#: Secret keys that must come from a Secret, never from the ConfigMap or a literal.
CREDENTIALS = {"DATABASE_URL", "ETL_BROKER_URL", "ETL_SOURCE_TOKEN", "AWS_ACCESS_KEY_ID",
               "AWS_SECRET_ACCESS_KEY"}  # fmt: skip
#: Read by the S3 client (pyarrow / botocore) rather than by name in etl/.
S3_VARIABLES = {"AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
Doc = dict[str, Any]


def rendered(overlay: str) -> list[Doc]:
    return render(DEPLOY / "overlays" / overlay)


def by_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def named(docs: list[Doc], kind: str, name: str) -> Doc:
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def all_rendered() -> list[tuple[str, Doc]]:
    return [(o, d) for o in OVERLAYS for d in rendered(o)]


def test_the_layout_is_a_base_and_two_overlays() -> None:
    assert sorted(p.name for p in (DEPLOY / "overlays").iterdir()) == sorted(OVERLAYS)
    assert not list(DEPLOY.glob("*.yaml")), "manifests live in base/ or an overlay"
    for folder in [DEPLOY / "base", *(DEPLOY / "overlays").iterdir()]:
        spec = yaml.safe_load((folder / "kustomization.yaml").read_text())
        assert set(spec) <= KNOWN_KEYS, folder
    kinds = sorted(d["kind"] for d in rendered("shared-folder"))
    assert kinds == ["ConfigMap", "CronJob", "CronJob", "Deployment", "Namespace",
                     "PersistentVolumeClaim", "PodDisruptionBudget", "ServiceAccount"]  # fmt: skip
    assert sorted(d["kind"] for d in rendered("object-storage")) == [
        k for k in kinds if k != "PersistentVolumeClaim"
    ]


@pytest.mark.parametrize(
    ("overlay", "doc"),
    all_rendered(),
    ids=[f"{o}-{d['kind']}-{d['metadata']['name']}" for o, d in all_rendered()],
)
def test_every_rendered_manifest_is_valid_against_the_api_schema(overlay: str, doc: Doc) -> None:
    version = kubernetes_validate.latest_version()
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{overlay} {doc['kind']}: {exc.message} at {list(exc.path)}")


def variables_read_by_the_code() -> set[str]:
    names = {o.env for o in OPTIONS if o.env} | set(OTHER_VARIABLES) | set(ENV_VARS)
    names |= set(TEST_ONLY_VARIABLES)
    source = "\n".join(p.read_text() for p in (REPO / "etl").rglob("*.py"))
    for name in names:  # the tables are not just words: the code reads each name
        assert f'"{name}"' in source, f"{name} is declared but no module reads it"
    return names | S3_VARIABLES


def variables_set(docs: list[Doc]) -> dict[str, str]:
    """Every variable a manifest sets -> where (ConfigMap keys and container env)."""
    out: dict[str, str] = {}
    for doc in docs:
        if doc["kind"] == "ConfigMap":
            out.update({k: f"{doc['metadata']['name']} data" for k in doc["data"]})
        for c in containers(doc):
            out.update({e["name"]: f"{doc['metadata']['name']} env" for e in c.get("env", [])})
    return out


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_variable_set_is_read_by_the_code(overlay: str) -> None:
    known = variables_read_by_the_code()
    unknown = {k: w for k, w in variables_set(rendered(overlay)).items() if k not in known}
    assert not unknown, f"set but never read by wheels-etl: {unknown}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_credentials_come_from_secrets_only(overlay: str) -> None:
    docs = rendered(overlay)
    assert not by_kind(docs, "Secret"), "a Secret must be created outside the repository"
    for doc in docs:
        if doc["kind"] == "ConfigMap":
            assert not CREDENTIALS & set(doc["data"]), doc["data"]
            text = " ".join(str(v) for v in doc["data"].values())
            assert not re.search(r"://[^/@\s]+:[^/@\s]+@", text), "password in a URL"
        for c in containers(doc):
            for env in c.get("env", []):
                if env["name"] in CREDENTIALS:
                    assert "value" not in env and "secretKeyRef" in env["valueFrom"], env


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_meets_the_restricted_standard(overlay: str) -> None:
    docs = rendered(overlay)
    (namespace,) = by_kind(docs, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    workloads = [d for d in docs if pod_spec(d) is not None]
    assert sorted(d["kind"] for d in workloads) == ["CronJob", "CronJob", "Deployment"]
    for doc in workloads:
        spec = pod_spec(doc)
        assert spec is not None
        assert doc["metadata"]["namespace"] == "wheels-etl"
        assert spec["serviceAccountName"] == "wheels-etl"
        assert spec["automountServiceAccountToken"] is False
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] == 1001
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
        temp = [v for v in spec["volumes"] if v["name"] == "tmp"]
        assert temp and "emptyDir" in temp[0], "a writable /tmp beside the read-only root"
        for c in containers(doc):
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"] == {"drop": ["ALL"]}
            assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]


def test_the_image_is_named_in_one_place() -> None:
    base = yaml.safe_load((DEPLOY / "base" / "kustomization.yaml").read_text())
    (image,) = base["images"]
    want = f"{image['newName']}:{image['newTag']}"
    for overlay in OVERLAYS:
        for doc in rendered(overlay):
            for c in containers(doc):
                assert c["image"] == want, (overlay, doc["metadata"]["name"])
    for path in DEPLOY.rglob("*.yaml"):
        if path.name != "kustomization.yaml":
            assert re.findall(r"image: (\S+)", path.read_text()) in ([], ["wheels-etl"]), path


def test_the_worker_keeps_the_collector_limits_and_has_probes() -> None:
    docs = rendered("shared-folder")
    deployment = named(docs, "Deployment", "wheels-etl-worker")
    (worker,) = containers(deployment)
    assert worker["command"][:2] == ["wheels-etl", "worker"]
    assert worker["resources"]["limits"] == {"memory": "512Mi", "cpu": "1"}
    liveness = ["wheels-etl", "worker", "--healthcheck"]
    assert worker["startupProbe"]["exec"]["command"] == liveness
    assert worker["livenessProbe"]["exec"]["command"] == liveness  # never the broker
    assert worker["readinessProbe"]["exec"]["command"] == ["wheels-etl", "worker", "--readiness"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert worker[probe]["timeoutSeconds"] >= 2  # the probes answer within 2 s
    assert {"DATABASE_URL", "ETL_BROKER_URL"} <= {e["name"] for e in worker["env"]}
    pdb = named(docs, "PodDisruptionBudget", "wheels-etl-worker")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_cronjobs_run_enqueue_and_reconcile() -> None:
    cronjobs = by_kind(rendered("shared-folder"), "CronJob")
    commands = sorted(tuple(containers(c)[0]["command"]) for c in cronjobs)
    assert commands == [("wheels-etl", "enqueue"), ("wheels-etl", "reconcile")]
    for cron in cronjobs:
        assert cron["spec"]["concurrencyPolicy"] == "Forbid"


def spool_users(docs: list[Doc]) -> list[Doc]:
    """The containers that read the spool: the workers and reconcile."""
    return [c for d in docs for c in containers(d) if c["command"][1] in ("worker", "reconcile")]


def test_the_shared_folder_overlay_mounts_one_readwritemany_claim() -> None:
    docs = rendered("shared-folder")
    (claim,) = by_kind(docs, "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claim["spec"]["storageClassName"], "a storage class to set"
    assert named(docs, "ConfigMap", "wheels-etl-settings")["data"]["ETL_SPOOL_DIR"] == "/spool"
    for c in spool_users(docs):
        assert {"name": "spool", "mountPath": "/spool"} in c["volumeMounts"], c["name"]


def test_the_object_storage_overlay_has_no_volume_and_its_keys_from_a_secret() -> None:
    docs = rendered("object-storage")
    settings = named(docs, "ConfigMap", "wheels-etl-settings")["data"]
    assert settings["ETL_SPOOL_DIR"].startswith("s3://")
    for doc in docs:
        spec = pod_spec(doc)
        if spec is not None:
            assert [v["name"] for v in spec["volumes"]] == ["tmp"], doc["metadata"]["name"]
    for c in spool_users(docs):
        refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"] if "valueFrom" in e}
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            assert refs[key] == {"name": "wheels-etl-object-store", "key": key}, c["name"]


def test_the_readme_gives_the_secret_commands() -> None:
    readme = " ".join((REPO / "README.md").read_text().split())
    for command in (
        "kubectl -n wheels-etl create secret generic wheels-etl-secrets",
        "kubectl -n wheels-etl create secret generic wheels-etl-object-store "
        "--from-literal=AWS_ACCESS_KEY_ID=",
        "kubectl apply -k deploy/kubernetes/overlays/shared-folder",
        "kubectl apply -k deploy/kubernetes/overlays/object-storage",
    ):
        assert command in readme.replace("\\ ", ""), command
