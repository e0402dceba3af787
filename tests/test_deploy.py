"""The deployment files agree with the app: every variable they set is one fairdrop reads,
their probes and ports are the app's, and the proxies stream the path the app streams.

No Docker engine or Kubernetes cluster runs here, so these checks are what keeps the
files from drifting away from the code.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.infra.settings import ENV_VARS, from_env
from service.web.app import create_app

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
KNOWN = set(ENV_VARS.values())
# Set for the Postgres and Redis images, not for fairdrop.
NOT_OURS = {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "POD_NAME"}


class _Loader(yaml.SafeLoader):
    """Compose's merge tags (`!override`, `!reset`) read as the value they tag."""


for _tag in ("!override", "!reset"):
    _Loader.add_constructor(
        _tag,
        lambda loader, node: (
            loader.construct_mapping(node)
            if isinstance(node, yaml.MappingNode)
            else loader.construct_sequence(node)
            if isinstance(node, yaml.SequenceNode)
            else loader.construct_scalar(node)
        ),
    )


def _documents(path: Path) -> list[Any]:
    return [d for d in yaml.load_all(path.read_text(), Loader=_Loader) if d is not None]


def _manifests() -> list[dict[str, Any]]:
    return [d for p in sorted((DEPLOY / "kubernetes").glob("*.yaml")) for d in _documents(p)]


def _app_paths() -> set[str]:
    app = create_app()
    return {route.path for route in app.routes}


@pytest.mark.parametrize(
    "path", sorted(DEPLOY.glob("*.yaml")) + sorted(DEPLOY.glob("kubernetes/*.yaml"))
)
def test_every_deploy_file_parses(path: Path) -> None:
    assert _documents(path), f"{path.name} is empty"


def test_compose_sets_only_variables_fairdrop_reads() -> None:
    for name in ("compose.yaml", "compose.cluster.yaml"):
        (compose,) = _documents(DEPLOY / name)
        for key, value in compose.items():
            if key.startswith("x-") and isinstance(value, dict):
                env = value.get("environment", {})
                assert set(env) - NOT_OURS <= KNOWN, (name, key, set(env) - KNOWN)
        for service, spec in compose["services"].items():
            env = spec.get("environment", {}) if isinstance(spec, dict) else {}
            assert set(env) - NOT_OURS <= KNOWN, (name, service, set(env) - KNOWN)


def test_kubernetes_config_and_probes_match_the_app() -> None:
    docs = _manifests()
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "ConfigMap", "Job", "StatefulSet", "Ingress"} <= kinds
    (config,) = [d for d in docs if d["kind"] == "ConfigMap"]
    assert set(config["data"]) <= KNOWN, set(config["data"]) - KNOWN
    assert config["data"]["FAIRDROP_REDIS_CLUSTER"] == "1"
    (app,) = [d for d in docs if d["kind"] == "Deployment"]
    (container,) = app["spec"]["template"]["spec"]["containers"]
    (port,) = container["ports"]
    assert str(port["containerPort"]) == config["data"]["FAIRDROP_PORT"]
    routes = _app_paths()
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["path"] in routes, probe
    assert container["args"] == ["serve"]
    (job,) = [d for d in docs if d["kind"] == "Job" and d["metadata"]["name"].endswith("migrate")]
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]


def _streamed_paths() -> list[str]:
    """The paths whose handlers answer with a server-sent-event stream."""
    return [
        route.path
        for route in create_app().routes
        for handler in getattr(route, "route_handlers", [])
        if "ServerSentEvent" in str(handler.fn.__annotations__.get("return"))
    ]


def test_the_proxies_stream_the_apps_event_route() -> None:
    (events,) = _streamed_paths()
    example = re.sub(r"\{[^}]+\}", "iphone-17", events)
    nginx = (DEPLOY / "nginx.conf").read_text()
    streamed = [
        pattern
        for pattern in re.findall(r"location ~ (\S+) \{", nginx)
        if re.fullmatch(pattern.strip("^$"), example)
    ]
    assert streamed, example
    (block,) = re.findall(r"location ~ " + re.escape(streamed[0]) + r" \{(.*?)\}", nginx, re.S)
    assert "proxy_buffering off;" in block
    (ingress,) = [
        d for d in _manifests() if d["kind"] == "Ingress" and d["metadata"]["name"].endswith("events")
    ]
    (path,) = ingress["spec"]["rules"][0]["http"]["paths"]
    assert re.fullmatch(path["path"], example), (path["path"], example)
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"


def test_the_apps_believe_the_shipped_proxy_and_it_says_whom_it_forwards_for() -> None:
    (compose,) = _documents(DEPLOY / "compose.yaml")
    proxies = compose["x-app"]["environment"]["FAIRDROP_TRUSTED_PROXIES"]
    trusted = from_env({"FAIRDROP_TRUSTED_PROXIES": proxies}).trusted_networks
    nginx = compose["services"]["nginx"]["networks"]["default"]["ipv4_address"]
    (subnet,) = compose["networks"]["default"]["ipam"]["config"]
    assert ipaddress.ip_address(nginx) in ipaddress.ip_network(subnet["subnet"])
    assert any(ipaddress.ip_address(nginx) in n for n in trusted)
    (config,) = [d for d in _manifests() if d["kind"] == "ConfigMap"]
    assert from_env(config["data"]).trusted_networks, "the ingress controller's pods"
    shipped = (DEPLOY / "nginx.conf").read_text()
    assert re.search(r"proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;", shipped)
