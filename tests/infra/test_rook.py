"""The Rook component in infra/k8s/rook: schema validation, and how it ties the store to s3thumbs.

How each document is validated:

- CephBucketTopic, CephBucketNotification (ceph.rook.io/v1) and ObjectBucketClaim
  (objectbucket.io/v1alpha1): no package on PyPI, npm or Debian ships these CRDs or models generated
  from them (README, "Deploy on Ceph RGW", lists what was searched). ``rook_schemas.yaml`` beside this
  file restates their openAPIV3Schema from Rook v1.20.6's ``deploy/examples/crds.yaml`` (written here,
  without descriptions or ``status``; compared with that file when written). Each schema is turned
  into a JSON schema the way the API server applies it — a structural schema prunes unknown fields,
  and kubectl's default strict field validation makes them errors — and checked with ``jsonschema``.
  ``metadata`` is checked against Kubernetes' own ObjectMeta (``kubernetes-validate``).
- The base's ConfigMap and Deployments, as this component patches them: ``kubernetes-validate``,
  Kubernetes 1.30, strict, like the base.

The component is applied to the base the way kustomize does (a merge patch for the ConfigMap, a JSON
patch for the Deployments); where kubectl is installed, one test builds it with kustomize and compares.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import jsonschema
import pytest
import yaml
from kubernetes_validate import utils as kubernetes_validate

from s3thumbs.config import Settings
from s3thumbs.notify import EVENTS
from tests.infra.test_k8s import BASE, K8S_DIR, KUBERNETES_VERSION, NAMESPACE, _documents, _kustomization, _merge

ROOK_DIR = K8S_DIR / "rook"
SCHEMAS = yaml.safe_load((Path(__file__).with_name("rook_schemas.yaml")).read_text(encoding="utf-8"))
NOTIFICATION_LABEL = "bucket-notification-{name}"  # Rook's label on an ObjectBucketClaim
OBC_SECRET_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")  # what Rook writes in the claim's Secret


# ---------------------------------------------------------------------------------------------
# Applying the component


def _json_patch(doc: dict[str, Any], operations: list[dict[str, Any]]) -> dict[str, Any]:
    """RFC 6902, the operations this component uses: ``add`` (``-`` appends to a list)."""
    doc = copy.deepcopy(doc)
    for operation in operations:
        assert operation["op"] == "add", f"unsupported JSON patch op {operation['op']}"
        *parents, last = [part.replace("~1", "/").replace("~0", "~") for part in operation["path"].split("/")[1:]]
        node: Any = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node.insert(len(node) if last == "-" else int(last), copy.deepcopy(operation["value"]))
        else:
            node[last] = copy.deepcopy(operation["value"])
    return doc


def _selected(doc: dict[str, Any], target: dict[str, Any]) -> bool:
    group, _, version = doc["apiVersion"].rpartition("/")
    labels = doc["metadata"].get("labels", {})
    wanted = dict(pair.split("=", 1) for pair in target.get("labelSelector", "").split(",") if pair)
    return (
        target.get("kind", doc["kind"]) == doc["kind"]
        and target.get("group", group) == group
        and target.get("version", version) == version
        and target.get("name", doc["metadata"]["name"]) == doc["metadata"]["name"]
        and all(labels.get(key) == value for key, value in wanted.items())
    )


def _apply(base: list[dict[str, Any]], component: Path) -> list[dict[str, Any]]:
    docs = copy.deepcopy(base)
    for entry in _kustomization(component).get("patches", []):
        [patch] = yaml.safe_load_all((component / entry["path"]).read_text(encoding="utf-8"))
        if isinstance(patch, list):  # a JSON patch, applied to every resource its target selects
            hits = [i for i, doc in enumerate(docs) if _selected(doc, entry["target"])]
            assert hits, f"{entry['path']} selects nothing"
            for i in hits:
                docs[i] = _json_patch(docs[i], patch)
        else:  # a merge patch naming its resource
            hits = [
                i
                for i, doc in enumerate(docs)
                if (doc["kind"], doc["metadata"]["name"]) == (patch["kind"], patch["metadata"]["name"])
            ]
            assert len(hits) == 1, f"{entry['path']} matches {len(hits)} resources"
            docs[hits[0]] = _merge(docs[hits[0]], patch)
    return docs + [doc for _, doc in _documents(component, "resources")]


ROOK = _apply(BASE, ROOK_DIR)
CUSTOM = [(path, doc) for path, doc in _documents(ROOK_DIR, "resources")]


def _one(kind: str, docs: list[dict[str, Any]] = ROOK) -> dict[str, Any]:
    [doc] = [doc for doc in docs if doc["kind"] == kind]
    return doc


def _deployments() -> list[dict[str, Any]]:
    return [doc for doc in ROOK if doc["kind"] == "Deployment"]


def _env(deployment: dict[str, Any], claim_secret: dict[str, str]) -> dict[str, str]:
    """The container's environment from envFrom, in order (later sources win), with the claim's Secret
    as Rook would write it."""
    by_name = {(doc["kind"], doc["metadata"]["name"]): doc for doc in ROOK}
    claim = _one("ObjectBucketClaim")["metadata"]["name"]
    env: dict[str, str] = {}
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    for source in container["envFrom"]:
        if "configMapRef" in source:
            env.update(by_name[("ConfigMap", source["configMapRef"]["name"])]["data"])
        elif source["secretRef"]["name"] == claim:
            env.update(claim_secret)
        else:
            env.update(by_name[("Secret", source["secretRef"]["name"])]["stringData"])
    return env


# ---------------------------------------------------------------------------------------------
# The CRD schemas


def _json_schema(node: Any) -> Any:
    """An OpenAPI v3 structural schema as a JSON schema with the API server's rules: ``nullable``
    admits null, and an object with declared properties takes no others unless the schema says
    ``x-kubernetes-preserve-unknown-fields``."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    result = {key: _json_schema(value) for key, value in node.items() if not key.startswith("x-kubernetes-")}
    if result.pop("nullable", False):
        result["type"] = [result["type"], "null"]
    if "properties" in result and not node.get("x-kubernetes-preserve-unknown-fields"):
        result["additionalProperties"] = False
    return result


def _schema_for(doc: dict[str, Any]) -> dict[str, Any]:
    [entry] = [
        entry
        for entry in SCHEMAS["schemas"].values()
        if (f"{entry['group']}/{entry['version']}", entry["kind"]) == (doc["apiVersion"], doc["kind"])
    ]
    schema: dict[str, Any] = _json_schema(entry["openAPIV3Schema"])
    # Every object has these, whether or not its CRD spells them out; they must name this kind.
    schema["properties"].update(
        apiVersion={"const": f"{entry['group']}/{entry['version']}"},
        kind={"const": entry["kind"]},
        metadata={"type": "object"},
    )
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata"})
    return schema


def _validate(doc: dict[str, Any]) -> None:
    schema = _schema_for(doc)
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
    # ObjectMeta as Kubernetes defines it, through a ConfigMap that carries the same metadata.
    stand_in = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": doc["metadata"]}
    kubernetes_validate.validate(stand_in, KUBERNETES_VERSION, strict=True)


def test_the_schemas_cover_exactly_the_kinds_the_component_adds():
    kinds = {(doc["apiVersion"], doc["kind"]) for _, doc in CUSTOM}
    described = {(f"{e['group']}/{e['version']}", e["kind"]) for e in SCHEMAS["schemas"].values()}
    assert kinds == described
    assert SCHEMAS["rook_version"].startswith("v1.")
    for name, entry in SCHEMAS["schemas"].items():
        assert name.endswith(f".{entry['group']}"), name


@pytest.mark.parametrize("item", CUSTOM, ids=lambda item: f"{item[0]}:{item[1]['kind']}")
def test_rook_resources_validate_against_their_crd_schemas(item):
    _, doc = item
    _validate(doc)


def _unknown_spec_field(docs):
    docs["CephBucketTopic"]["spec"]["endpoint"]["http"]["token"] = "x"


def _misspelt_field(docs):
    docs["CephBucketTopic"]["spec"]["persistant"] = False


def _persistent_as_string(docs):
    docs["CephBucketTopic"]["spec"]["persistent"] = "false"


def _a_status(docs):
    docs["CephBucketTopic"]["status"] = {"phase": "Ready"}


def _no_uri(docs):
    del docs["CephBucketTopic"]["spec"]["endpoint"]["http"]["uri"]


def _an_event_rgw_does_not_know(docs):
    docs["CephBucketNotification"]["spec"]["events"].append("s3:ObjectCreated:Upload")


def _events_as_a_string(docs):
    docs["CephBucketNotification"]["spec"]["events"] = "s3:ObjectCreated:*"


def _empty_topic(docs):
    docs["CephBucketNotification"]["spec"]["topic"] = ""


def _unknown_key_filter(docs):
    docs["CephBucketNotification"]["spec"]["filter"] = {"keyFilters": [{"name": "contains", "value": "x"}]}


def _unknown_claim_field(docs):
    docs["ObjectBucketClaim"]["spec"]["bucket"] = "uploads"


def _claim_name_as_a_number(docs):
    docs["ObjectBucketClaim"]["spec"]["bucketName"] = 7


def _labels_as_a_list(docs):
    docs["ObjectBucketClaim"]["metadata"]["labels"] = ["bucket-notification-s3thumbs"]


def _wrong_kind(docs):
    docs["CephBucketNotification"]["kind"] = "CephBucketTopic"


@pytest.mark.parametrize(
    "mutate",
    [
        _unknown_spec_field,
        _misspelt_field,
        _persistent_as_string,
        _a_status,
        _no_uri,
        _an_event_rgw_does_not_know,
        _events_as_a_string,
        _empty_topic,
        _unknown_key_filter,
        _unknown_claim_field,
        _claim_name_as_a_number,
        _labels_as_a_list,
        _wrong_kind,
    ],
)
def test_the_schema_check_catches_unknown_fields_and_wrong_types(mutate):
    docs = {doc["kind"]: copy.deepcopy(doc) for _, doc in CUSTOM}
    mutate(docs)
    errors = []
    for doc in docs.values():
        try:
            _validate(doc)
        except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as e:
            errors.append(e)
    assert len(errors) == 1, errors


def test_the_json_schema_conversion_keeps_free_form_maps_free():
    claim = copy.deepcopy(_one("ObjectBucketClaim"))
    claim["spec"]["additionalConfig"] = {"maxObjects": "1000", "anything": "goes"}
    _validate(claim)
    claim["spec"]["additionalConfig"] = None
    _validate(claim)


# ---------------------------------------------------------------------------------------------
# Standard resources, as the component changes them


@pytest.mark.parametrize("kind", ["ConfigMap", "Deployment"])
def test_patched_standard_resources_validate_against_kubernetes_schema(kind):
    for doc in ROOK:
        if doc["kind"] == kind:
            assert kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True) == KUBERNETES_VERSION


def test_the_component_adds_only_rook_resources_and_declares_their_namespace():
    assert _kustomization(ROOK_DIR)["kind"] == "Component"
    for _, doc in CUSTOM:
        assert doc["apiVersion"].split("/")[0] in {"ceph.rook.io", "objectbucket.io"}
        # kustomize gives the base's namespace to the base's resources only, not to a component's.
        assert doc["metadata"]["namespace"] == NAMESPACE, doc["kind"]


KUBECTL = shutil.which("kubectl")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl (which has kustomize built in) is not installed")
def test_kustomize_renders_exactly_what_these_tests_check(tmp_path):
    overlay = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(K8S_DIR, tmp_path)],
        "components": [os.path.relpath(ROOK_DIR, tmp_path)],
    }
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(overlay), encoding="utf-8")
    built = subprocess.run([KUBECTL, "kustomize", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    rendered = {(doc["kind"], doc["metadata"]["name"]): doc for doc in yaml.safe_load_all(built.stdout) if doc}
    expected = {}
    for doc in copy.deepcopy(ROOK):
        if doc["kind"] != "Namespace":
            doc["metadata"]["namespace"] = NAMESPACE
        expected[(doc["kind"], doc["metadata"]["name"])] = doc
    assert sorted(rendered) == sorted(expected)
    for key, doc in rendered.items():
        assert doc == expected[key], key


# ---------------------------------------------------------------------------------------------
# How the pieces fit


def _receiver_service() -> dict[str, Any]:
    [service] = [doc for doc in BASE if doc["kind"] == "Service" and doc["metadata"]["name"].endswith("receiver")]
    return service


def test_the_topic_pushes_to_the_receivers_service_and_events_path():
    uri = urlsplit(_one("CephBucketTopic")["spec"]["endpoint"]["http"]["uri"])
    service = _receiver_service()
    assert uri.scheme == "http"
    assert uri.hostname == f"{service['metadata']['name']}.{NAMESPACE}.svc.cluster.local"
    [port] = service["spec"]["ports"]
    assert (uri.port or 80) == port["port"]
    assert uri.path == "/events"


def test_the_topic_carries_the_senders_token_as_its_basic_password():
    uri = urlsplit(_one("CephBucketTopic")["spec"]["endpoint"]["http"]["uri"])
    [secret] = [doc for doc in BASE if doc["kind"] == "Secret"]
    assert uri.username
    assert unquote(uri.password or "") == secret["stringData"]["S3THUMBS_AUTH_TOKEN"]
    assert unquote(uri.password or "") != secret["stringData"].get("S3THUMBS_GALLERY_TOKEN")


def test_the_topic_is_not_persistent():
    assert _one("CephBucketTopic")["spec"]["persistent"] is False


def test_the_notification_sends_puts_and_deletes_to_the_topic():
    topic, notification = _one("CephBucketTopic"), _one("CephBucketNotification")
    assert notification["spec"]["topic"] == topic["metadata"]["name"]
    assert sorted(notification["spec"]["events"]) == sorted(EVENTS)
    assert "filter" not in notification["spec"]  # the receiver skips thumbnails itself


def test_the_claim_carries_the_notification_label_and_is_an_allowed_bucket():
    claim, notification = _one("ObjectBucketClaim"), _one("CephBucketNotification")
    name = notification["metadata"]["name"]
    assert claim["metadata"]["labels"][NOTIFICATION_LABEL.format(name=name)] == name
    namespaces = {doc["metadata"]["namespace"] for doc in (claim, notification, _one("CephBucketTopic"))}
    assert namespaces == {NAMESPACE}  # Rook requires one namespace for all three
    for deployment in _deployments():
        settings = Settings.from_env(_env(deployment, dict.fromkeys(OBC_SECRET_KEYS, "from-rook")))
        assert claim["spec"]["bucketName"] in settings.buckets


def test_receiver_and_workers_use_the_object_store_with_the_claims_keys():
    spec = _one("CephBucketTopic")["spec"]
    claim = _one("ObjectBucketClaim")["metadata"]["name"]
    rook_keys = {"AWS_ACCESS_KEY_ID": "claim-access-key", "AWS_SECRET_ACCESS_KEY": "claim-secret-key"}
    assert {d["metadata"]["labels"]["app.kubernetes.io/component"] for d in _deployments()} == {
        "receiver",
        "worker",
        "reconciler",
    }
    for deployment in _deployments():
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        sources = [source.get("secretRef", {}).get("name") for source in container["envFrom"]]
        assert sources[-1] == claim, "the claim's Secret must come last, so its keys win"
        env = _env(deployment, rook_keys)
        assert {key: env[key] for key in rook_keys} == rook_keys
        settings = Settings.from_env(env)
        endpoint = urlsplit(settings.s3_endpoint_url)
        assert endpoint.hostname == f"rook-ceph-rgw-{spec['objectStoreName']}.{spec['objectStoreNamespace']}.svc"
