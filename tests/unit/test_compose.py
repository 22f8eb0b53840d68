"""docker-compose.yml: the services the docs promise, and settings vidwatch accepts."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import missing
from vidwatch.config import load_config

ROOT = Path(__file__).resolve().parents[2]


def test_compose_services_and_their_configuration() -> None:
    try:
        import yaml
    except ImportError:
        missing("PyYAML (to read docker-compose.yml)", "pip install pyyaml")
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) >= {"daemon", "worker", "rabbitmq", "redis", "redisinsight"}
    assert "management" in services["rabbitmq"]["image"]
    for name in ("daemon", "worker"):
        environ = {k: str(v) for k, v in services[name]["environment"].items()}
        config = load_config(None, environ=environ)  # refused if a key or value were wrong
        assert config.watch.roots == [Path("/data/inbox")]
        assert any(volume.endswith(":/data/inbox:ro") for volume in services[name]["volumes"])
    assert load_config(None, environ=services["daemon"]["environment"]).api.listen == "0.0.0.0:8787"
    for service in services.values():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), port
