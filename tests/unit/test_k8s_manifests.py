"""deploy/k8s: the manifests parse, hold together and say what vidwatch needs.

No Kubernetes API server is reachable here (``kubectl --dry-run=client`` needs one for its schema),
so this is a schema test: every object's kind and apiVersion, only known keys where a typo would
pass silently (containers, pod specs), every reference resolved (ConfigMap, Secret keys, PVC,
volumes, the KEDA target), the worker's grace period above the task hard limit read from the
ConfigMap's vidwatch.toml, which itself loads with vidwatch's own validation. Where ``kubectl`` is
installed, ``kubectl kustomize`` renders the kustomization as well.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from vidwatch.config import load_config
from vidwatch.tasks.app import QUEUES

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"

API_VERSIONS = {  # kind: apiVersion
    "ConfigMap": "v1",
    "Secret": "v1",
    "Service": "v1",
    "PersistentVolumeClaim": "v1",
    "StatefulSet": "apps/v1",
    "Deployment": "apps/v1",
    "ScaledObject": "keda.sh/v1alpha1",
    "TriggerAuthentication": "keda.sh/v1alpha1",
}
CONTAINER_KEYS = {"name", "image", "args", "command", "env", "envFrom", "ports", "resources", "volumeMounts",
                  "livenessProbe", "readinessProbe", "startupProbe", "securityContext", "lifecycle", "workingDir",
                  "imagePullPolicy"}
POD_KEYS = {"containers", "initContainers", "volumes", "terminationGracePeriodSeconds", "securityContext",
            "nodeSelector", "tolerations", "affinity", "serviceAccountName", "priorityClassName"}
SCALED_OBJECT_KEYS = {"scaleTargetRef", "minReplicaCount", "maxReplicaCount", "pollingInterval", "cooldownPeriod",
                      "idleReplicaCount", "advanced", "fallback", "triggers"}
RABBITMQ_TRIGGER_KEYS = {"protocol", "queueName", "mode", "value", "activationValue", "vhostName", "hostFromEnv",
                         "host"}


def objects() -> list[dict[str, Any]]:
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        found += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {obj["metadata"]["name"]: obj for obj in objects() if obj["kind"] == kind}


def workloads() -> list[dict[str, Any]]:
    return [*by_kind("Deployment").values(), *by_kind("StatefulSet").values()]


def test_every_object_has_a_known_kind_api_version_and_name() -> None:
    found = objects()
    assert {obj["kind"] for obj in found} == set(API_VERSIONS)
    for obj in found:
        assert obj["apiVersion"] == API_VERSIONS[obj["kind"]], obj["metadata"]
        assert obj["metadata"]["name"]
        assert set(obj) <= {"apiVersion", "kind", "metadata", "spec", "data", "stringData", "type"}


def test_the_kustomization_lists_every_file() -> None:
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


@pytest.mark.parametrize("workload", workloads(), ids=lambda w: w["metadata"]["name"])
def test_workloads_are_well_formed_and_their_references_resolve(workload: dict[str, Any]) -> None:
    spec = workload["spec"]
    template = spec["template"]
    assert spec["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    pod = template["spec"]
    assert set(pod) <= POD_KEYS, set(pod) - POD_KEYS
    volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
    volumes |= {claim["metadata"]["name"]: claim for claim in spec.get("volumeClaimTemplates", [])}
    secrets = by_kind("Secret")
    for volume in volumes.values():
        if "configMap" in volume:
            assert volume["configMap"]["name"] in by_kind("ConfigMap")
        if "persistentVolumeClaim" in volume:
            assert volume["persistentVolumeClaim"]["claimName"] in by_kind("PersistentVolumeClaim")
    for container in pod["containers"]:
        assert set(container) <= CONTAINER_KEYS, set(container) - CONTAINER_KEYS
        assert container["name"] and container["image"]
        assert container["args"][:2] in (["vidwatch", "daemon"], ["vidwatch", "worker"])
        for mount in container.get("volumeMounts", []):
            assert mount["name"] in volumes, f"{container['name']}: no volume {mount['name']}"
        for variable in container.get("env", []):
            assert variable["name"].startswith("VIDWATCH_")
            ref = variable["valueFrom"]["secretKeyRef"]
            assert ref["key"] in secrets[ref["name"]]["stringData"]


def packaged_config(tmp_path: Path) -> Any:
    text = by_kind("ConfigMap")["vidwatch-config"]["data"]["vidwatch.toml"]
    path = tmp_path / "vidwatch.toml"
    path.write_text(text)
    return load_config(path, environ={})


def test_the_configmap_is_a_valid_vidwatch_config(tmp_path: Path) -> None:
    config = packaged_config(tmp_path)
    assert config.broker.quorum_queues
    assert config.redis.mode == "sentinel" and config.redis.service
    mounts = {m["mountPath"] for w in workloads() for c in w["spec"]["template"]["spec"]["containers"]
              for m in c["volumeMounts"]}
    assert str(config.paths.spool) in mounts and str(config.paths.state_dir) in mounts
    assert all(str(root) in mounts for root in config.watch.roots)


def test_workers_get_a_gpu_and_a_grace_period_above_the_task_hard_limit(tmp_path: Path) -> None:
    hard_limit_s = packaged_config(tmp_path).worker.task_time_limit_seconds
    workers = [w for w in workloads() if w["spec"]["template"]["spec"]["containers"][0]["args"][1] == "worker"]
    assert workers
    for worker in workers:
        pod = worker["spec"]["template"]["spec"]
        assert pod["terminationGracePeriodSeconds"] > hard_limit_s
        assert int(pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]) == 1
        spool = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "spool")
        assert spool["readOnly"] is True  # workers only read the daemon's normalized copies


def test_keda_scales_the_workers_on_the_rabbitmq_queues() -> None:
    scaled = by_kind("ScaledObject")["vidwatch-worker-gpu"]["spec"]
    assert set(scaled) <= SCALED_OBJECT_KEYS
    assert scaled["scaleTargetRef"]["name"] in by_kind("Deployment")
    assert 1 <= scaled["minReplicaCount"] <= scaled["maxReplicaCount"]
    auth = by_kind("TriggerAuthentication")
    secrets = by_kind("Secret")
    for trigger in scaled["triggers"]:
        assert trigger["type"] == "rabbitmq"
        assert set(trigger["metadata"]) <= RABBITMQ_TRIGGER_KEYS
        assert trigger["metadata"]["queueName"] in QUEUES
        assert trigger["metadata"]["mode"] == "QueueLength" and int(trigger["metadata"]["value"]) >= 1
        for ref in auth[trigger["authenticationRef"]["name"]]["spec"]["secretTargetRef"]:
            assert ref["key"] in secrets[ref["name"]]["stringData"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_kustomize_renders_the_manifests() -> None:
    rendered = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60,
                              check=True).stdout
    assert len([doc for doc in yaml.safe_load_all(rendered) if doc]) == len(objects())
