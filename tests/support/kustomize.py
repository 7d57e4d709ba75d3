"""Render a kustomization offline, as ``kubectl kustomize`` does, for the subset the
manifests in ``deploy/kubernetes/`` use (and nothing more: a key or patch operation this
does not know is an error, so the files cannot drift beyond what the tests render):

* ``resources``: files (several documents each) and folders with a kustomization;
* ``patches``: RFC 6902 JSON patches (``add``, ``replace``, ``remove``) from a file,
  applied to the one resource the ``target`` names;
* ``images``: ``name`` -> ``newName:newTag`` in every container;
* ``namespace``: set on every namespaced resource.

``python -m tests.support.kustomize FOLDER`` prints the rendered documents as YAML.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import yaml

KNOWN_KEYS = {"apiVersion", "kind", "namespace", "resources", "patches", "images"}
CLUSTER_SCOPED = {"Namespace", "PersistentVolume", "StorageClass", "ClusterRole",
                  "ClusterRoleBinding", "CustomResourceDefinition"}  # fmt: skip
Doc = dict[str, Any]


def render(folder: Path) -> list[Doc]:
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unknown = set(spec) - KNOWN_KEYS
    if unknown:
        raise ValueError(f"{folder}: kustomization keys this renderer does not know: {unknown}")
    docs: list[Doc] = []
    for resource in spec.get("resources", []):
        path = folder / resource
        if path.is_dir():
            docs += render(path)
        else:
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    for patch in spec.get("patches", []):
        targets = [d for d in docs if _matches(d, patch["target"])]
        if len(targets) != 1:
            raise ValueError(f"{folder}: patch {patch['path']} matches {len(targets)} resources")
        operations = yaml.safe_load((folder / patch["path"]).read_text())
        for op in operations:
            apply_operation(targets[0], op)
    for image in spec.get("images", []):
        for doc in docs:
            for container in containers(doc):
                if container["image"].split(":")[0] == image["name"]:
                    container["image"] = f"{image['newName']}:{image['newTag']}"
    if "namespace" in spec:
        for doc in docs:
            if doc["kind"] not in CLUSTER_SCOPED:
                doc["metadata"]["namespace"] = spec["namespace"]
    return docs


def _matches(doc: Doc, target: dict[str, str]) -> bool:
    group, _, version = doc["apiVersion"].rpartition("/")
    want = {"group": group, "version": version, "kind": doc["kind"],
            "name": doc["metadata"]["name"]}  # fmt: skip
    return all(want[key] == value for key, value in target.items())


def pod_spec(doc: Doc) -> Doc | None:
    spec = doc.get("spec", {})
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    template = spec.get("template")
    return template["spec"] if template else None


def containers(doc: Doc) -> list[Doc]:
    spec = pod_spec(doc)
    return list(spec.get("containers", [])) if spec else []


def _walk(doc: Any, pointer: str) -> tuple[Any, str]:
    """The parent of ``pointer`` (which must exist) and the last token."""
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]
    node = doc
    for token in tokens[:-1]:
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node, tokens[-1]


def apply_operation(doc: Doc, op: Doc) -> None:
    parent, last = _walk(doc, op["path"])
    kind = op["op"]
    if kind == "add":
        value = copy.deepcopy(op["value"])
        if isinstance(parent, list):
            parent.insert(len(parent) if last == "-" else int(last), value)
        else:
            parent[last] = value
    elif kind == "replace":
        if isinstance(parent, list):
            parent[int(last)] = copy.deepcopy(op["value"])
        else:
            if last not in parent:
                raise KeyError(f"replace of a missing {op['path']}")
            parent[last] = copy.deepcopy(op["value"])
    elif kind == "remove":
        del parent[int(last) if isinstance(parent, list) else last]
    else:
        raise ValueError(f"patch operation this renderer does not know: {kind}")


if __name__ == "__main__":
    print(yaml.safe_dump_all(render(Path(sys.argv[1])), sort_keys=False), end="")
