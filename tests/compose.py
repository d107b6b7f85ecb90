"""docker-compose.yml as docker compose would resolve it, for the deployment tests.

``docker compose config`` is used when the compose plugin is installed; otherwise the file is read with
PyYAML and its ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}`` references are interpolated here the
way compose does it, so the tests check the same resolved configuration either way.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
_REFERENCE = re.compile(r"\$(?:\$|\{(?P<braced>[^}]+)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")
_BRACED = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>.*))?$", re.S)


class ComposeError(Exception):
    """What docker compose would refuse the file with (e.g. a required variable is unset)."""


def interpolate(text: str, env: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        if match.group("plain"):
            return env.get(match.group("plain"), "")
        parts = _BRACED.match(match.group("braced"))
        if parts is None:
            raise ComposeError(f"invalid interpolation format: {match.group(0)}")
        name, op, arg = parts.group("name"), parts.group("op"), parts.group("arg") or ""
        value = env.get(name)
        unset = value is None or (op is not None and op.startswith(":") and value == "")
        if op in ("-", ":-"):
            return interpolate(arg, env) if unset else value  # type: ignore[return-value]
        if op in ("?", ":?"):
            if unset:
                raise ComposeError(f"required variable {name} is missing a value: {arg}")
            return value  # type: ignore[return-value]
        return value or ""

    return _REFERENCE.sub(replace, text)


def _interpolate_tree(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {key: _interpolate_tree(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [_interpolate_tree(value, env) for value in node]
    if isinstance(node, str):
        return interpolate(node, env)
    return node


def docker_compose_available() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0


def compose_config(env: dict[str, str]) -> dict[str, Any]:
    """The resolved compose model for this environment (only ``env``: no .env file, no shell variables)."""
    if docker_compose_available():
        done = subprocess.run(
            ["docker", "compose", "-f", str(COMPOSE_FILE), "config", "--format", "json"],
            cwd=ROOT, env={"PATH": "/usr/bin:/bin:/usr/local/bin", **env}, capture_output=True, text=True,
        )
        if done.returncode != 0:
            raise ComposeError(done.stderr)
        return json.loads(done.stdout)
    return _interpolate_tree(yaml.safe_load(COMPOSE_FILE.read_text()), env)


def service_environment(config: dict[str, Any], service: str) -> dict[str, str]:
    environment = config["services"][service].get("environment") or {}
    if isinstance(environment, list):  # the KEY=value form
        environment = dict(item.split("=", 1) for item in environment)
    return {key: "" if value is None else str(value) for key, value in environment.items()}


def command_text(config: dict[str, Any], service: str) -> str:
    command = config["services"][service].get("command") or ""
    return " ".join(command) if isinstance(command, list) else command


def published_ports(config: dict[str, Any], service: str) -> list[str]:
    """``HOST_IP:PUBLISHED:TARGET`` for each published port (compose's long and short syntax alike)."""
    found = []
    for port in config["services"][service].get("ports") or []:
        if isinstance(port, dict):
            found.append(f"{port.get('host_ip', '')}:{port.get('published', '')}:{port['target']}")
        else:
            parts = str(port).split(":")
            found.append(":".join([""] * (3 - len(parts)) + parts))
    return found


def depends_on(config: dict[str, Any], service: str) -> dict[str, str]:
    """``{service: condition}``; a plain list means ``service_started``."""
    needs = config["services"][service].get("depends_on") or {}
    if isinstance(needs, list):
        return {name: "service_started" for name in needs}
    return {name: spec.get("condition", "service_started") for name, spec in needs.items()}
