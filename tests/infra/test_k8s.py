"""The Kubernetes manifests in infra/k8s: schema validation and the properties that tie them together.

How each document is validated:

- Standard resources (Namespace, ServiceAccount, ConfigMap, Secret, Deployment, Service,
  PodDisruptionBudget) against the Kubernetes 1.30 OpenAPI schemas bundled in the PyPI package
  ``kubernetes-validate``, in strict mode (an unknown or misspelt field is an error).
- KEDA's ScaledObject and TriggerAuthentication: no registry package found ships KEDA's CRD YAML
  itself. ``cloudcoil-models-keda`` (PyPI) ships pydantic models generated from KEDA's CRDs (2.16.1
  here); their JSON schema, tightened to the CRD's rules (no nulls, no unknown fields), is checked
  with ``jsonschema``. (npm's ``@kubernetes-models/keda`` has only compiled validators for Node >= 22.)
- Trigger ``metadata`` is a free-form string map in the CRD, so the keys and values of each trigger
  are checked against small JSON schemas written here from KEDA 2.x's scaler docs (redis, cpu,
  rabbitmq).
- The HPA behaviour: the autoscaling/v2 HorizontalPodAutoscaler that KEDA creates from the
  ScaledObject is rebuilt here and validated with ``kubernetes-validate`` like the rest.

The optional component in infra/k8s/rabbitmq is applied to the base the way kustomize does for these
kinds (a JSON merge patch: maps merge, lists are replaced) and checked the same way. Where kubectl is
installed (it has kustomize built in), one test also builds both with it and compares.
"""

from __future__ import annotations

import copy
import math
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from cloudcoil.models.keda import v1alpha1 as keda_crd
from kubernetes_validate import utils as kubernetes_validate

from s3thumbs.config import Settings

K8S_DIR = Path(__file__).resolve().parents[2] / "infra" / "k8s"
COMPONENT_DIR = K8S_DIR / "rabbitmq"
KUBERNETES_VERSION = "1.30"
KEDA_API = "keda.sh/v1alpha1"
NAME_LABEL = "app.kubernetes.io/name"
COMPONENT_LABEL = "app.kubernetes.io/component"
COMPONENTS = ("receiver", "worker", "reconciler")
QUEUE = "s3thumbs"
TASKS_PER_CORE = 5  # the queue-length target per core (reference/scaling.md, config K)
CPU_TARGET = 63  # % of the request: 0.9 x the ~70 % CPU share of a busy process
SHUTDOWN_MARGIN = 30  # seconds of warm shutdown beyond the task's hard time limit
# A worker process once it has rendered (measured about 90 MiB), and its Celery parent (about 80).
PROCESS_BASELINE = 96 * 2**20
SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "ACCESS_KEY", "CREDENTIAL", "PRIVATE")


# ---------------------------------------------------------------------------------------------
# Loading


def _load(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def _kustomization(directory: Path) -> dict[str, Any]:
    [doc] = _load(directory / "kustomization.yaml")
    return doc


def _referenced(directory: Path) -> list[Path]:
    """Every file or folder a kustomization names: resources, components and patches."""
    kustomization = _kustomization(directory)
    names = [*kustomization.get("resources", []), *kustomization.get("components", [])]
    names += [patch["path"] for patch in kustomization.get("patches", []) if "path" in patch]
    return [(directory / name).resolve() for name in names]


def _documents(directory: Path, key: str) -> list[tuple[str, dict[str, Any]]]:
    """(file, document) for the files a kustomization lists under ``key``, in order."""
    kustomization = _kustomization(directory)
    entries = kustomization.get(key, [])
    paths = [entry["path"] if isinstance(entry, dict) else entry for entry in entries]
    # A listed file that is missing fails test_kustomizations_list_every_file_and_only_existing_ones.
    return [(path, doc) for path in paths if (directory / path).is_file() for doc in _load(directory / path)]


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: what kustomize does for a Secret's maps and for custom resources."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


def _apply_component(base: list[dict[str, Any]], component: Path) -> list[dict[str, Any]]:
    docs = copy.deepcopy(base)
    for _, patch in _documents(component, "patches"):
        matches = [
            i
            for i, doc in enumerate(docs)
            if (doc["kind"], doc["metadata"]["name"]) == (patch["kind"], patch["metadata"]["name"])
        ]
        assert len(matches) == 1, f"patch {patch['kind']}/{patch['metadata']['name']} matches {len(matches)} resources"
        docs[matches[0]] = _merge(docs[matches[0]], patch)
    return docs + [doc for _, doc in _documents(component, "resources")]


BASE_FILES = _documents(K8S_DIR, "resources")
BASE = [doc for _, doc in BASE_FILES]
RABBITMQ = _apply_component(BASE, COMPONENT_DIR)
NAMESPACE = _kustomization(K8S_DIR).get("namespace", "default")


def _one(docs: list[dict[str, Any]], kind: str, component: str | None = None) -> dict[str, Any]:
    found = [
        doc
        for doc in docs
        if doc["kind"] == kind
        and (component is None or doc["metadata"].get("labels", {}).get(COMPONENT_LABEL) == component)
    ]
    assert len(found) == 1, f"expected one {kind} {component or ''}, found {len(found)}"
    return found[0]


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return container


def _pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    return deployment["spec"]["template"]["metadata"]["labels"]


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels, matchExpressions) against labels; a Service's plain selector map
    counts as matchLabels. An empty selector never matches: it would select everything."""
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        selector = {"matchLabels": selector}
    match_labels, expressions = selector.get("matchLabels") or {}, selector.get("matchExpressions") or []
    if not match_labels and not expressions:
        return False
    if any(labels.get(key) != value for key, value in match_labels.items()):
        return False
    for expression in expressions:
        key, values = expression["key"], expression.get("values", [])
        ok = {
            "In": labels.get(key) in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[expression["operator"]]
        if not ok:
            return False
    return True


def _cores(quantity: str | int | float) -> float:
    text = str(quantity)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def _bytes(quantity: str | int) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]i|[kMGT])?", str(quantity))
    assert match, f"unsupported memory quantity {quantity!r}"
    return int(float(match.group(1)) * _UNITS.get(match.group(2) or "", 1))


def _option(args: list[str], *names: str) -> str | None:
    """The value of a command-line option given as ``--name value`` or ``--name=value``."""
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def _env(docs: list[dict[str, Any]], deployment: dict[str, Any]) -> dict[str, str]:
    """The environment a container gets from envFrom (later sources win) and env."""
    by_name = {(doc["kind"], doc["metadata"]["name"]): doc for doc in docs}
    env: dict[str, str] = {}
    container = _container(deployment)
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(by_name[("ConfigMap", source["configMapRef"]["name"])].get("data", {}))
        if "secretRef" in source:
            env.update(by_name[("Secret", source["secretRef"]["name"])].get("stringData", {}))
    env.update({item["name"]: item["value"] for item in container.get("env", []) if "value" in item})
    return env


def _settings(docs: list[dict[str, Any]], component: str) -> Settings:
    return Settings.from_env(_env(docs, _one(docs, "Deployment", component)))


def _trigger(scaled_object: dict[str, Any], kind: str) -> dict[str, Any]:
    [trigger] = [t for t in scaled_object["spec"]["triggers"] if t["type"] == kind]
    return trigger


def _worker_cores(docs: list[dict[str, Any]]) -> float:
    return _cores(_container(_one(docs, "Deployment", "worker"))["resources"]["limits"]["cpu"])


def _doc_id(item: tuple[str, dict[str, Any]]) -> str:
    path, doc = item
    return f"{path}:{doc['kind']}/{doc['metadata']['name']}"


# ---------------------------------------------------------------------------------------------
# The kustomizations


def test_kustomizations_list_every_file_and_only_existing_ones():
    kustomizations = sorted(K8S_DIR.rglob("kustomization.yaml"))
    assert K8S_DIR / "kustomization.yaml" in kustomizations
    listed: set[Path] = set()
    for path in kustomizations:
        kustomization = _kustomization(path.parent)
        assert (kustomization["apiVersion"], kustomization["kind"]) in {
            ("kustomize.config.k8s.io/v1beta1", "Kustomization"),
            ("kustomize.config.k8s.io/v1alpha1", "Component"),
        }, path
        for target in _referenced(path.parent):
            assert target.exists(), f"{path} lists {target}, which does not exist"
            listed.add(target)
    files = {path.resolve() for path in K8S_DIR.rglob("*") if path.is_file()}
    unlisted = files - listed - {path.resolve() for path in kustomizations}
    assert not unlisted, f"files no kustomization lists: {sorted(map(str, unlisted))}"


def test_the_base_declares_its_namespace_consistently():
    namespace = _one(BASE, "Namespace")
    assert namespace["metadata"]["name"] == NAMESPACE
    for doc in RABBITMQ:
        assert doc["metadata"].get("namespace", NAMESPACE) == NAMESPACE, doc["metadata"]["name"]
    # kustomize gives the base's namespace to the base's resources only, not to a component's.
    for _, doc in _documents(COMPONENT_DIR, "resources"):
        assert doc["metadata"].get("namespace") == NAMESPACE, doc["metadata"]["name"]


KUBECTL = shutil.which("kubectl")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl (which has kustomize built in) is not installed")
@pytest.mark.parametrize("variant", ["redis", "rabbitmq"])
def test_kustomize_renders_exactly_what_these_tests_check(variant, tmp_path):
    """The real kustomize builds the base (and the base + component) into the documents checked here."""
    overlay = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(K8S_DIR, tmp_path)],
    }
    if variant == "rabbitmq":
        overlay["components"] = [os.path.relpath(COMPONENT_DIR, tmp_path)]
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(overlay), encoding="utf-8")
    built = subprocess.run([KUBECTL, "kustomize", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    rendered = {(doc["kind"], doc["metadata"]["name"]): doc for doc in yaml.safe_load_all(built.stdout) if doc}
    expected = {}
    for doc in RABBITMQ if variant == "rabbitmq" else BASE:
        doc = copy.deepcopy(doc)
        if doc["kind"] != "Namespace":
            doc["metadata"]["namespace"] = NAMESPACE
        expected[(doc["kind"], doc["metadata"]["name"])] = doc
    assert sorted(rendered) == sorted(expected)
    for key, doc in rendered.items():
        assert doc == expected[key], key


# ---------------------------------------------------------------------------------------------
# Schema validation


STANDARD = [(path, doc) for path, doc in BASE_FILES if not doc["apiVersion"].startswith("keda.sh/")]
STANDARD += [("rabbitmq/secret-patch.yaml", _one(RABBITMQ, "Secret"))]
KEDA = [(path, doc) for path, doc in BASE_FILES if doc["apiVersion"].startswith("keda.sh/")]
KEDA += [
    ("rabbitmq/scaledobject-patch.yaml", _one(RABBITMQ, "ScaledObject")),
    ("rabbitmq/triggerauthentication.yaml", _one(RABBITMQ, "TriggerAuthentication")),
]


@pytest.mark.parametrize("item", STANDARD, ids=_doc_id)
def test_standard_resources_validate_against_kubernetes_schema(item):
    _, doc = item
    assert kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True) == KUBERNETES_VERSION


def test_every_resource_is_validated():
    validated = {id(doc) for _, doc in STANDARD + KEDA}
    assert all(id(doc) in validated for doc in BASE)
    assert {doc["apiVersion"] for _, doc in KEDA} == {KEDA_API}


def _tighten(node: Any) -> Any:
    """The CRD's rules on top of the pydantic-generated schema: fields are never null, unknown
    fields are errors (the API server rejects them with strict field validation)."""
    if isinstance(node, list):
        return [_tighten(item) for item in node]
    if not isinstance(node, dict):
        return node
    options = node.get("anyOf")
    if options and {"type": "null"} in options and len(options) == 2:
        [kept] = [option for option in options if option != {"type": "null"}]
        return _tighten(kept)
    result = {key: _tighten(value) for key, value in node.items()}
    if "properties" in result and "additionalProperties" not in result:
        result["additionalProperties"] = False
    return result


def _crd_schema(kind: str) -> dict[str, Any]:
    model = getattr(keda_crd, kind)
    schema: dict[str, Any] = _tighten(model.model_json_schema(by_alias=True))
    return schema


@pytest.mark.parametrize("item", KEDA, ids=_doc_id)
def test_keda_resources_validate_against_keda_crd_schema(item):
    _, doc = item
    schema = _crd_schema(doc["kind"])
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)


def _unknown_field(doc):
    doc["spec"]["minReplicas"] = 1


def _string_interval(doc):
    doc["spec"]["pollingInterval"] = "15"


def _no_target_name(doc):
    del doc["spec"]["scaleTargetRef"]["name"]


def _window_too_long(doc):
    behavior = doc["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    behavior["scaleDown"]["stabilizationWindowSeconds"] = 7200


@pytest.mark.parametrize("breakage", [_unknown_field, _string_interval, _no_target_name, _window_too_long])
def test_crd_schema_rejects_what_the_api_server_would(breakage):
    """The tightened schema is not a blind pass: it catches the mistakes it is here for."""
    broken = copy.deepcopy(_one(BASE, "ScaledObject"))
    breakage(broken)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, _crd_schema("ScaledObject"), cls=jsonschema.Draft202012Validator)


_INT = {"type": "string", "pattern": r"^[0-9]+$"}
_BOOL = {"type": "string", "enum": ["true", "false"]}
_NAME = {"type": "string", "minLength": 1}
# Trigger metadata, from KEDA 2.x's scaler docs (keda.sh/docs/2.16/scalers/*). All values are strings.
TRIGGER_METADATA = {
    "redis": {
        "type": "object",
        "additionalProperties": False,
        "required": ["listName", "listLength"],
        "properties": {
            "address": {"type": "string", "pattern": r"^[^:/\s]+:[0-9]+$"},
            "host": _NAME,
            "port": _INT,
            "addressFromEnv": _NAME,
            "hostFromEnv": _NAME,
            "portFromEnv": _NAME,
            "usernameFromEnv": _NAME,
            "passwordFromEnv": _NAME,
            "listName": _NAME,
            "listLength": _INT,
            "activationListLength": _INT,
            "databaseIndex": _INT,
            "enableTLS": _BOOL,
            "unsafeSsl": _BOOL,
        },
        "oneOf": [
            {"required": ["address"]},
            {"required": ["addressFromEnv"]},
            {"required": ["host", "port"]},
            {"required": ["hostFromEnv", "portFromEnv"]},
        ],
    },
    "cpu": {
        "type": "object",
        "additionalProperties": False,
        "required": ["value"],
        "properties": {"value": _INT, "containerName": {"type": "string"}},
    },
    "rabbitmq": {
        "type": "object",
        "additionalProperties": False,
        "required": ["queueName", "mode", "value"],
        "properties": {
            "host": _NAME,
            "hostFromEnv": _NAME,
            "usernameFromEnv": _NAME,
            "passwordFromEnv": _NAME,
            "protocol": {"enum": ["auto", "amqp", "http"]},
            "mode": {
                "enum": [
                    "QueueLength",
                    "MessageRate",
                    "DeliverGetRate",
                    "PublishedToDeliveredRatio",
                    "ExpectedQueueConsumptionTime",
                ]
            },
            "value": {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"},
            "activationValue": {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"},
            "queueName": _NAME,
            "vhostName": _NAME,
            "useRegex": _BOOL,
            "excludeUnacknowledged": _BOOL,
            "pageSize": _INT,
            "operation": {"enum": ["sum", "max", "avg"]},
            "timeout": _INT,
            "unsafeSsl": _BOOL,
        },
    },
}


@pytest.mark.parametrize("docs", [BASE, RABBITMQ], ids=["redis", "rabbitmq"])
def test_trigger_metadata_matches_keda_docs(docs):
    scaled_object = _one(docs, "ScaledObject")
    for trigger in scaled_object["spec"]["triggers"]:
        assert trigger["type"] in TRIGGER_METADATA, f"no documented schema for trigger {trigger['type']}"
        jsonschema.validate(trigger["metadata"], TRIGGER_METADATA[trigger["type"]])
        if trigger["type"] == "cpu":
            # metadata.type is deprecated; the trigger-level metricType replaces it.
            assert trigger.get("metricType") == "Utilization"
    auth_refs = [t["authenticationRef"]["name"] for t in scaled_object["spec"]["triggers"] if "authenticationRef" in t]
    auths = {doc["metadata"]["name"] for doc in docs if doc["kind"] == "TriggerAuthentication"}
    assert set(auth_refs) <= auths


def _keda_hpa(scaled_object: dict[str, Any]) -> dict[str, Any]:
    """The autoscaling/v2 HPA that KEDA creates and keeps in sync from this ScaledObject."""
    spec, name = scaled_object["spec"], scaled_object["metadata"]["name"]
    metrics = []
    for index, trigger in enumerate(spec["triggers"]):
        if trigger["type"] == "cpu":
            metrics.append(
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": trigger["metricType"],
                            "averageUtilization": int(trigger["metadata"]["value"]),
                        },
                    },
                }
            )
        else:
            target = trigger["metadata"].get("listLength") or trigger["metadata"]["value"]
            metrics.append(
                {
                    "type": "External",
                    "external": {
                        "metric": {
                            "name": f"s{index}-{trigger['type']}-{QUEUE}",
                            "selector": {"matchLabels": {"scaledobject.keda.sh/name": name}},
                        },
                        "target": {"type": "AverageValue", "averageValue": target},
                    },
                }
            )
    config = spec.get("advanced", {}).get("horizontalPodAutoscalerConfig", {})
    hpa_spec: dict[str, Any] = {
        "scaleTargetRef": {key: spec["scaleTargetRef"][key] for key in ("apiVersion", "kind", "name")},
        "minReplicas": spec["minReplicaCount"],
        "maxReplicas": spec["maxReplicaCount"],
        "metrics": metrics,
    }
    if "behavior" in config:
        hpa_spec["behavior"] = config["behavior"]
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": config.get("name", f"keda-hpa-{name}"), "namespace": NAMESPACE},
        "spec": hpa_spec,
    }


@pytest.mark.parametrize("docs", [BASE, RABBITMQ], ids=["redis", "rabbitmq"])
def test_keda_hpa_validates_against_autoscaling_v2(docs):
    hpa = _keda_hpa(_one(docs, "ScaledObject"))
    assert kubernetes_validate.validate(hpa, KUBERNETES_VERSION, strict=True) == KUBERNETES_VERSION


# ---------------------------------------------------------------------------------------------
# Labels, references and security


def test_everything_carries_the_s3thumbs_labels():
    for doc in RABBITMQ:
        labels = doc["metadata"].get("labels", {})
        assert labels.get(NAME_LABEL) == "s3thumbs", f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] in ("Deployment", "Service", "PodDisruptionBudget", "ScaledObject", "TriggerAuthentication"):
            assert labels.get(COMPONENT_LABEL) in COMPONENTS, f"{doc['kind']}/{doc['metadata']['name']}"
    for component in COMPONENTS:
        deployment = _one(BASE, "Deployment", component)
        pod_labels = _pod_labels(deployment)
        assert pod_labels[NAME_LABEL] == "s3thumbs" and pod_labels[COMPONENT_LABEL] == component
        assert deployment["spec"]["selector"]["matchLabels"] == {NAME_LABEL: "s3thumbs", COMPONENT_LABEL: component}


def test_pods_reference_resources_that_exist_and_let_the_secret_override_the_configmap():
    names = {(doc["kind"], doc["metadata"]["name"]) for doc in BASE}
    for component in COMPONENTS:
        deployment = _one(BASE, "Deployment", component)
        pod = deployment["spec"]["template"]["spec"]
        assert ("ServiceAccount", pod["serviceAccountName"]) in names
        sources = _container(deployment)["envFrom"]
        kinds = [
            ("ConfigMap", s["configMapRef"]["name"]) if "configMapRef" in s else ("Secret", s["secretRef"]["name"])
            for s in sources
        ]
        assert all(kind in names for kind in kinds)
        assert [kind for kind, _ in kinds] == ["ConfigMap", "Secret"], "the Secret must come last to override"
        assert _container(deployment)["image"].split(":")[0].rsplit("/", 1)[-1] == "s3thumbs"


@pytest.mark.parametrize("component", COMPONENTS)
def test_pods_run_locked_down(component):
    deployment = _one(BASE, "Deployment", component)
    pod = deployment["spec"]["template"]["spec"]
    container = _container(deployment)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"].get("runAsUser", 10001) == 10001  # the image's user
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"] and not context["capabilities"].get("add")
    # A read-only root needs a writable /tmp, on disk: spooled sources must not count as memory.
    [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert "emptyDir" in volume and volume["emptyDir"].get("medium") != "Memory"
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind])


# ---------------------------------------------------------------------------------------------
# Receiver


def test_probes_hit_health_endpoints_on_the_container_port():
    deployment = _one(BASE, "Deployment", "receiver")
    container = _container(deployment)
    ports = {port.get("name"): port["containerPort"] for port in container["ports"]}
    [listening] = set(ports.values())
    assert int(_option(container["args"], "--port") or 8080) == listening
    assert _option(container["args"], "--host") == "0.0.0.0"

    def port_of(probe: dict[str, Any]) -> int:
        port = probe["httpGet"]["port"]
        return ports[port] if isinstance(port, str) else port

    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert port_of(container["readinessProbe"]) == listening
    assert port_of(container["livenessProbe"]) == listening
    # /readyz waits up to ~3 s for the broker before answering 503: the probe must wait longer.
    assert container["readinessProbe"].get("timeoutSeconds", 1) > 3


def test_service_selects_the_receiver_pods_only():
    service = _one(BASE, "Service", "receiver")
    receiver, worker = _one(BASE, "Deployment", "receiver"), _one(BASE, "Deployment", "worker")
    assert _matches(service["spec"]["selector"], _pod_labels(receiver))
    assert not _matches(service["spec"]["selector"], _pod_labels(worker))
    container = _container(receiver)
    named = {port["name"]: port["containerPort"] for port in container["ports"]}
    for port in service["spec"]["ports"]:
        target = port.get("targetPort", port["port"])
        assert (named[target] if isinstance(target, str) else target) in named.values()


def test_receiver_is_redundant_and_would_start():
    receiver = _one(BASE, "Deployment", "receiver")
    assert receiver["spec"]["replicas"] >= 2
    settings = _settings(BASE, "receiver")
    # On 0.0.0.0 the receiver refuses to start without a token unless explicitly opened.
    assert settings.auth_token or settings.allow_open


def test_the_gallery_has_a_token_of_its_own():
    settings = _settings(BASE, "receiver")
    # Without one the receiver serves no gallery; the same token as the senders' would not start.
    assert settings.gallery_on(loopback=False)
    assert settings.gallery_token != settings.auth_token


# ---------------------------------------------------------------------------------------------
# Worker


def test_worker_grace_period_outlasts_the_task_time_limit():
    worker = _one(BASE, "Deployment", "worker")
    limit = _settings(BASE, "worker").task_time_limit  # the ConfigMap's, or the default 120 s
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > limit + SHUTDOWN_MARGIN


def test_worker_concurrency_equals_its_cpu_limit():
    worker = _one(BASE, "Deployment", "worker")
    container = _container(worker)
    concurrency = _option(container["args"], "--concurrency", "-c")
    assert concurrency is not None, "pass --concurrency explicitly: Celery's default counts the node's cores"
    resources = container["resources"]
    assert int(concurrency) == _cores(resources["limits"]["cpu"])
    assert _cores(resources["requests"]["cpu"]) == _cores(resources["limits"]["cpu"])
    assert "--autoscale" not in " ".join(container["args"]), "Celery's autoscaler fights KEDA"


@pytest.mark.parametrize("component", ["worker", "reconciler"])
def test_worker_memory_covers_the_decode_budget_in_every_process(component):
    container = _container(_one(BASE, "Deployment", component))
    processes = int(_option(container["args"], "--concurrency", "-c") or 0)
    per_process = _settings(BASE, component).max_decode_mib * 2**20 + PROCESS_BASELINE
    needed = processes * per_process + PROCESS_BASELINE  # + the Celery parent
    limit = _bytes(container["resources"]["limits"]["memory"])
    assert limit >= needed, f"{limit / 2**20:.0f} MiB < {needed / 2**20:.0f} MiB"
    assert _bytes(container["resources"]["requests"]["memory"]) == limit


def test_exactly_one_reconciler_schedules_the_reconciliation():
    reconciler = _one(BASE, "Deployment", "reconciler")
    container = _container(reconciler)
    assert reconciler["spec"]["replicas"] == 1
    assert reconciler["spec"]["strategy"]["type"] == "Recreate", "a rolling update would run two schedules"
    assert "--beat" in container["args"]
    assert int(_option(container["args"], "--concurrency", "-c") or 0) == _cores(
        container["resources"]["limits"]["cpu"]
    )
    settings = _settings(BASE, "reconciler")
    assert settings.reconcile_interval and settings.buckets
    for other in ("worker", "receiver"):
        assert "--beat" not in _container(_one(BASE, "Deployment", other)).get("args", [])
    scaled = _one(BASE, "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] != reconciler["metadata"]["name"]


def test_worker_replicas_are_left_to_keda():
    worker = _one(BASE, "Deployment", "worker")
    assert "replicas" not in worker["spec"], "a fixed replica count is reset on every apply, fighting the HPA"


# ---------------------------------------------------------------------------------------------
# Autoscaling


def test_scaled_object_scales_the_worker_on_the_celery_queue():
    scaled_object = _one(BASE, "ScaledObject")
    worker = _one(BASE, "Deployment", "worker")
    spec = scaled_object["spec"]
    assert spec["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
    assert spec["scaleTargetRef"].get("apiVersion", "apps/v1") == "apps/v1"
    assert spec["scaleTargetRef"]["name"] == worker["metadata"]["name"]
    # Never 0 on Redis: only a running worker returns a dead worker's unacked tasks to the list.
    assert spec["minReplicaCount"] >= 1
    assert spec["maxReplicaCount"] > spec["minReplicaCount"]
    assert spec["pollingInterval"] == 15
    redis_trigger = _trigger(scaled_object, "redis")["metadata"]
    assert redis_trigger["listName"] == QUEUE
    assert int(redis_trigger["listLength"]) == TASKS_PER_CORE * _worker_cores(BASE)


def test_scaled_object_reads_the_list_the_workers_consume():
    """Same Redis server and db as the broker URL; the address is the Service's full name, since
    KEDA's operator resolves short names in its own namespace."""
    broker = urlsplit(_settings(BASE, "worker").broker_url)
    assert broker.scheme in ("redis", "rediss")
    metadata = _trigger(_one(BASE, "ScaledObject"), "redis")["metadata"]
    host, port = metadata["address"].rsplit(":", 1)
    assert host in (f"{broker.hostname}.{NAMESPACE}.svc.cluster.local", f"{broker.hostname}.{NAMESPACE}.svc")
    assert int(port) == (broker.port or 6379)
    assert int(metadata.get("databaseIndex", "0")) == int(broker.path.lstrip("/") or 0)
    assert (metadata.get("enableTLS") == "true") == (broker.scheme == "rediss")


def test_scaled_object_has_a_utilisation_signal_and_fast_hpa_behaviour():
    scaled_object = _one(BASE, "ScaledObject")
    cpu = _trigger(scaled_object, "cpu")
    assert cpu["metricType"] == "Utilization" and int(cpu["metadata"]["value"]) == CPU_TARGET
    behavior = scaled_object["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 30
    scale_up = behavior["scaleUp"]
    assert scale_up.get("selectPolicy", "Max") == "Max"
    assert scale_up.get("stabilizationWindowSeconds", 0) == 0
    policies = {(p["type"], p["value"], p["periodSeconds"]) for p in scale_up["policies"]}
    assert {("Percent", 1000, 15), ("Pods", 50, 15)} <= policies


def test_rabbitmq_component_swaps_the_queue_trigger_and_broker():
    scaled_object = _one(RABBITMQ, "ScaledObject")
    assert {t["type"] for t in scaled_object["spec"]["triggers"]} == {"rabbitmq", "cpu"}
    trigger = _trigger(scaled_object, "rabbitmq")
    metadata = trigger["metadata"]
    assert (metadata["protocol"], metadata["mode"], metadata["queueName"]) == ("http", "QueueLength", QUEUE)
    assert float(metadata["value"]) == TASKS_PER_CORE * _worker_cores(RABBITMQ)
    auth = _one(RABBITMQ, "TriggerAuthentication")
    assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
    secret = _one(RABBITMQ, "Secret")
    [host] = [ref for ref in auth["spec"]["secretTargetRef"] if ref["parameter"] == "host"]
    assert host["name"] == secret["metadata"]["name"]
    management = urlsplit(secret["stringData"][host["key"]])
    assert management.scheme in ("http", "https") and management.hostname.endswith(f".{NAMESPACE}.svc.cluster.local")
    for component in COMPONENTS:
        assert _settings(RABBITMQ, component).broker_url.startswith("amqp://")


# ---------------------------------------------------------------------------------------------
# Disruption budgets


def test_disruption_budgets_select_exactly_their_pods():
    deployments = {c: _one(BASE, "Deployment", c) for c in COMPONENTS}
    for component in COMPONENTS:
        budget = _one(BASE, "PodDisruptionBudget", component)
        selected = [c for c, d in deployments.items() if _matches(budget["spec"]["selector"], _pod_labels(d))]
        assert selected == [component]
    receiver_budget = _one(BASE, "PodDisruptionBudget", "receiver")["spec"]
    assert receiver_budget["minAvailable"] == 1 < deployments["receiver"]["spec"]["replicas"]
    worker_budget = _one(BASE, "PodDisruptionBudget", "worker")["spec"]
    assert "maxUnavailable" in worker_budget and "minAvailable" not in worker_budget
    assert worker_budget["maxUnavailable"] not in (0, "0%")
    # Spreading constraints count the deployment's own pods.
    for component, deployment in deployments.items():
        for constraint in deployment["spec"]["template"]["spec"].get("topologySpreadConstraints", []):
            assert _matches(constraint["labelSelector"], _pod_labels(deployment)), component


# ---------------------------------------------------------------------------------------------
# Configuration


def test_configmap_holds_no_secrets():
    for doc in RABBITMQ:
        if doc["kind"] != "ConfigMap":
            continue
        for key, value in doc["data"].items():
            assert not any(word in key.upper() for word in SECRET_WORDS), key
            assert not re.search(r"://[^/@\s]*:[^/@\s]*@", value), f"{key} carries a password"


@pytest.mark.parametrize("component", COMPONENTS)
def test_configmap_settings_pass_the_projects_own_validation(component):
    config = _one(BASE, "ConfigMap")["data"]
    assert all(isinstance(value, str) for value in config.values()), "ConfigMap values must be strings"
    assert any(key.startswith("S3THUMBS_") for key in config)
    unknown = {key for key in config if key.startswith("S3THUMBS_")} - _known_variables()
    assert not unknown, f"not S3THUMBS variables the project reads: {sorted(unknown)}"
    Settings.from_env(config)  # raises ConfigError naming the variable
    settings = _settings(BASE, component)
    assert settings.broker_url == config["S3THUMBS_BROKER_URL"]


def _known_variables() -> set[str]:
    """S3THUMBS_* names the project reads, taken from config.py's own reader calls."""
    source = Path(Settings.from_env.__code__.co_filename).read_text(encoding="utf-8")
    names = re.findall(r'env\.\w+\("([A-Z_]+)"', source)
    assert len(names) > 10
    return {f"S3THUMBS_{name}" for name in names}


def test_cpu_and_memory_quantities_parse():
    assert _cores("2") == 2 and _cores("1500m") == 1.5 and _cores(2) == 2
    assert _bytes("2Gi") == 2 * 2**30 and _bytes("512Mi") == 2**29 and _bytes("1G") == 10**9
    assert math.isclose(_cores("250m"), 0.25)
