"""docker-compose.yml agrees with the SPEC and with itself (there is no Docker engine to run it here)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from s3thumbs.config import Settings
from s3thumbs.keys import normalize_prefix

ROOT = Path(__file__).resolve().parents[2]
VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def interpolate(value, env: dict[str, str]):
    """Compose's ${VAR:-default} and $$ escaping, for the strings of a loaded file."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value
    value = VARIABLE.sub(lambda m: env.get(m[1]) or (m[2] or ""), value.replace("$$", "\0"))
    return value.replace("\0", "$")


def compose(env: dict[str, str] | None = None) -> dict:
    return interpolate(yaml.safe_load((ROOT / "docker-compose.yml").read_text()), env or {})


ENVS = [
    {},
    {
        "S3THUMBS_AUTH_TOKEN": "a-real-secret",
        "S3THUMBS_GALLERY_TOKEN": "another-real-secret",
        "S3THUMBS_BUCKET": "photos",
        "MINIO_ROOT_USER": "admin",
        "MINIO_ROOT_PASSWORD": "long-password",
        "S3_ACCESS_KEY_ID": "admin",
        "S3_SECRET_ACCESS_KEY": "long-password",
        "S3THUMBS_INCLUDE_PREFIX": "originals/",
    },
]
# The stack pointed at a store of its own (README, "Deploy on MinIO with docker compose").
ANOTHER_STORE = {
    "S3THUMBS_S3_ENDPOINT_URL": "http://rgw.example.net:7480",
    "S3_ACCESS_KEY_ID": "rgw-access-key",
    "S3_SECRET_ACCESS_KEY": "rgw-secret-key",
    "S3THUMBS_PUBLIC_S3_URL": "https://rgw.example.net",
    "S3THUMBS_AUTH_TOKEN": "a-real-secret",
    "S3THUMBS_GALLERY_TOKEN": "another-real-secret",
}
S3THUMBS_ROLES = ("receiver", "worker", "reconciler")


def webhook_settings(minio: dict) -> dict[str, tuple[str, str]]:
    """MinIO's MINIO_NOTIFY_WEBHOOK_<KEY>_<ID> variables as {KEY: (ID, value)}."""
    found = {}
    for name, value in minio["environment"].items():
        match = re.fullmatch(r"MINIO_NOTIFY_WEBHOOK_([A-Z_]+?)_([A-Z0-9]+)", name)
        if match:
            found[match[1]] = (match[2], str(value))
    return found


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


@pytest.mark.parametrize("env", ENVS)
def test_minio_webhook_points_at_the_receivers_events_path(env):
    services = compose(env)["services"]
    webhook = webhook_settings(services["minio"])
    assert webhook["ENABLE"][1] == "on"
    url = urlsplit(webhook["ENDPOINT"][1])
    assert url.hostname in services
    assert url.hostname == "receiver"
    assert str(url.port) == option(services["receiver"]["command"], "--port")
    assert url.path == "/events"


@pytest.mark.parametrize("env", ENVS)
def test_the_token_is_the_same_on_both_sides(env):
    services = compose(env)["services"]
    token = webhook_settings(services["minio"])["AUTH_TOKEN"][1]
    assert token
    assert len(token.split()) == 1  # one word: MinIO sends "Authorization: Bearer <token>"
    assert token == services["receiver"]["environment"]["S3THUMBS_AUTH_TOKEN"]
    assert token == env.get("S3THUMBS_AUTH_TOKEN", token)


@pytest.mark.parametrize("env", ENVS)
def test_the_gallery_has_a_token_of_its_own_on_the_receiver_only(env):
    services = compose(env)["services"]
    receiver = services["receiver"]["environment"]
    assert receiver["S3THUMBS_GALLERY_TOKEN"] == env.get("S3THUMBS_GALLERY_TOKEN", "s3thumbs-dev-gallery")
    assert receiver["S3THUMBS_GALLERY_TOKEN"] != receiver["S3THUMBS_AUTH_TOKEN"]
    settings = Settings.from_env({k: str(v) for k, v in receiver.items()})
    assert settings.gallery_on(loopback=False)  # served on 0.0.0.0, behind its own password
    for role in ("worker", "reconciler"):
        assert "S3THUMBS_GALLERY_TOKEN" not in services[role]["environment"]


def test_every_webhook_variable_names_the_same_target():
    ids = {target for target, _ in webhook_settings(compose()["services"]["minio"]).values()}
    assert ids == {"S3THUMBS"}


def test_events_survive_a_receiver_outage_in_a_queue_dir_on_a_volume():
    config = compose()
    minio = config["services"]["minio"]
    queue_dir = webhook_settings(minio)["QUEUE_DIR"][1]
    assert queue_dir.startswith("/")
    mounts = {m.split(":")[1]: m.split(":")[0] for m in minio["volumes"]}
    assert queue_dir in mounts
    assert mounts[queue_dir] in config["volumes"]


@pytest.mark.parametrize("env", ENVS)
def test_the_bucket_is_subscribed_to_put_and_delete_only(env):
    services = compose(env)["services"]
    init = services["minio-init"]
    script = init["command"][0]
    shell_env = dict(init["environment"])
    words = shlex.split(
        re.sub(r"\$\{INCLUDE_PREFIX:\+([^}]*)\}", lambda m: m[1] if shell_env["INCLUDE_PREFIX"] else "", script)
    )
    words = [re.sub(r"\$(\w+)", lambda m: shell_env[m[1]], w) for w in words]
    add = words[words.index("add") - 1 :]
    assert add[:2] == ["event", "add"]
    bucket = add[2].removeprefix("local/")
    assert add[3] == f"arn:minio:sqs::{webhook_settings(services['minio'])['ENABLE'][0]}:webhook"
    assert option(add, "--event") == "put,delete"
    assert add.count("--event") == 1
    assert f"local/{bucket}" == option(words, "--ignore-existing")  # `mc mb --ignore-existing local/<bucket>`
    assert bucket in services["receiver"]["environment"]["S3THUMBS_BUCKETS"].split(",")
    if env.get("S3THUMBS_INCLUDE_PREFIX"):
        assert option(add, "--prefix") == env["S3THUMBS_INCLUDE_PREFIX"]
    else:
        assert "--prefix" not in add


def test_mc_talks_to_the_minio_service_with_the_root_credentials():
    services = compose(ENVS[1])["services"]
    url = urlsplit(services["minio-init"]["environment"]["MC_HOST_local"])
    assert (url.hostname, url.port) == ("minio", 9000)
    assert (url.username, url.password) == ("admin", "long-password")
    assert services["minio-init"]["depends_on"]["minio"]["condition"] == "service_healthy"


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("role", S3THUMBS_ROLES)
def test_receiver_and_worker_settings_are_valid_and_use_minio_by_default(env, role):
    services = compose(env)["services"]
    environment = services[role]["environment"]
    settings = Settings.from_env({k: str(v) for k, v in environment.items()})
    assert (urlsplit(settings.s3_endpoint_url).hostname, urlsplit(settings.s3_endpoint_url).port) == ("minio", 9000)
    assert urlsplit(settings.broker_url).hostname == "redis"
    minio = services["minio"]["environment"]
    assert environment["AWS_ACCESS_KEY_ID"] == minio["MINIO_ROOT_USER"]
    assert environment["AWS_SECRET_ACCESS_KEY"] == minio["MINIO_ROOT_PASSWORD"]
    assert normalize_prefix(env.get("S3THUMBS_INCLUDE_PREFIX") or "x") != settings.output_prefix


@pytest.mark.parametrize("role", S3THUMBS_ROLES)
def test_another_store_takes_the_endpoint_keys_and_public_url_from_env(role):
    environment = compose(ANOTHER_STORE)["services"][role]["environment"]
    settings = Settings.from_env({k: str(v) for k, v in environment.items()})
    assert settings.s3_endpoint_url == ANOTHER_STORE["S3THUMBS_S3_ENDPOINT_URL"]
    assert environment["AWS_ACCESS_KEY_ID"] == ANOTHER_STORE["S3_ACCESS_KEY_ID"]
    assert environment["AWS_SECRET_ACCESS_KEY"] == ANOTHER_STORE["S3_SECRET_ACCESS_KEY"]
    if role == "receiver":  # the gallery's links
        assert environment["S3THUMBS_PUBLIC_S3_URL"] == ANOTHER_STORE["S3THUMBS_PUBLIC_S3_URL"]
        assert environment["S3THUMBS_AUTH_TOKEN"] == ANOTHER_STORE["S3THUMBS_AUTH_TOKEN"]


def _needs(services: dict, name: str) -> set[str]:
    """Every service ``docker compose up name`` starts with it, through depends_on."""
    found, todo = set(), [name]
    while todo:
        current = todo.pop()
        if current not in found:
            found.add(current)
            todo.extend(services[current].get("depends_on", {}))
    return found


def test_the_s3thumbs_services_start_without_minio():
    """`docker compose up redis receiver worker reconciler` brings up no MinIO, for another store."""
    services = compose()["services"]
    for role in S3THUMBS_ROLES:
        assert _needs(services, role) & {"minio", "minio-init"} == set(), role


@pytest.mark.parametrize("env", [{}, {"S3THUMBS_NETWORK": "thumbs-net"}])
def test_stores_outside_this_file_can_join_the_network_and_reach_the_receiver(env):
    config = compose(env)
    assert config["networks"]["default"]["name"] == env.get("S3THUMBS_NETWORK", "s3thumbs")
    receiver = config["services"]["receiver"]
    assert "networks" not in receiver  # on the default network, as `receiver`
    assert option(receiver["command"], "--port") == "8080"
    assert "8080:8080" in receiver["ports"]  # and on this host's port 8080
    assert "http://receiver:8080/events" in (ROOT / "README.md").read_text()


def test_env_example_pairs_minio_with_the_keys_s3thumbs_uses():
    example = dict(
        line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines() if line and line[0] != "#"
    )
    assert example["S3THUMBS_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert (example["S3_ACCESS_KEY_ID"], example["S3_SECRET_ACCESS_KEY"]) == (
        example["MINIO_ROOT_USER"],
        example["MINIO_ROOT_PASSWORD"],
    )
    assert compose(example) == compose()  # the example is the defaults, spelt out


def test_the_file_says_where_minio_stands():
    text = (ROOT / "docker-compose.yml").read_text()
    header = text.split("\nx-s3thumbs:", 1)[0]
    for fact in ("source-only", "Docker Hub", "quay.io", "S3THUMBS_S3_ENDPOINT_URL", "S3_ACCESS_KEY_ID"):
        assert fact in header, fact


def test_receiver_and_worker_share_one_image_and_the_worker_scales():
    services = compose()["services"]
    assert services["receiver"]["image"] == services["worker"]["image"]
    dockerfiles = {services[role]["build"]["dockerfile"] for role in ("receiver", "worker")}
    assert dockerfiles == {"infra/Dockerfile"}
    assert (ROOT / "infra" / "Dockerfile").is_file()
    assert services["worker"]["command"][0] == "worker"
    assert "container_name" not in services["worker"]
    assert "ports" not in services["worker"]


def test_minio_is_pinned_from_quay_with_a_healthcheck_that_works_in_its_image():
    services = compose()["services"]
    for name in ("minio", "minio-init"):
        image = services[name]["image"]
        assert image.startswith("quay.io/minio/")
        assert re.search(r":RELEASE\.\d{4}-\d{2}-\d{2}T", image)
    assert services["minio"]["healthcheck"]["test"] == ["CMD", "mc", "ready", "local"]
    assert "--console-address" in services["minio"]["command"]
    assert "9001:9001" in services["minio"]["ports"]


def test_redis_keeps_queued_tasks():
    command = compose()["services"]["redis"]["command"].split()
    assert option(command, "--appendonly") == "yes"
    assert option(command, "--maxmemory-policy") == "noeviction"


def test_flower_is_optional():
    assert compose()["services"]["flower"]["profiles"] == ["flower"]


def test_every_variable_has_a_default_and_env_example_covers_them():
    text = (ROOT / "docker-compose.yml").read_text()
    used = {m[1] for m in VARIABLE.finditer(text)}
    assert all(m[2] is not None for m in VARIABLE.finditer(text)), "a ${VAR} without a :-default"
    example = (ROOT / ".env.example").read_text()
    documented = {line.split("=", 1)[0] for line in example.splitlines() if line and not line.startswith("#")}
    assert used == documented
