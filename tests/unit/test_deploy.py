"""The Kubernetes examples in deploy/: each pod gets its own shard of N, N matching the pods, no cluster needed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from foot_traffic.config.resolve import load_settings
from foot_traffic.config.settings import Settings
from foot_traffic.errors import ConfigError
from foot_traffic.model.units import Shard, Unit

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
MOUNTED = "/etc/foot-traffic/stores.toml"
"""Where both examples mount their stores file; the tests write the ConfigMap's copy and point there instead."""


def documents(name: str) -> dict[str, dict[str, Any]]:
    """The manifest's documents by kind (each example holds one of each)."""
    docs = list(yaml.safe_load_all((DEPLOY / name).read_text()))
    kinds = {doc["kind"]: doc for doc in docs}
    assert len(kinds) == len(docs), "one document of each kind"
    return kinds


def container_env(pod: dict[str, Any]) -> dict[str, str]:
    """The one container's environment: literal values only (a value from elsewhere would be unchecked here)."""
    (container,) = pod["spec"]["containers"]
    assert container["args"] == ["run"]
    entries = container["env"]
    assert all(set(entry) == {"name", "value"} for entry in entries)
    return {entry["name"]: entry["value"] for entry in entries}


def pod_settings(docs: dict[str, dict[str, Any]], pod: dict[str, Any], tmp_path: Path, **given: str) -> Settings:
    """The settings one pod reads: its container's environment, the variables Kubernetes gives it, the stores file."""
    env = container_env(pod)
    assert env["STORES_FILE"] == MOUNTED
    (volume,) = pod["spec"]["volumes"]
    assert volume["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"]
    stores = tmp_path / "stores.toml"
    stores.write_text(docs["ConfigMap"]["data"]["stores.toml"])
    return load_settings({**env, "STORES_FILE": str(stores), **given})


def assert_every_shard_has_units(shards: list[Settings]) -> None:
    """Each pod's shard owns some of the run's units: no pod idles."""
    for settings in shards:
        assert settings.shard is not None
        stores = [store.store_id for store in settings.store_models()]
        owned = [s for s in stores if settings.shard.owns(Unit(s), settings.fleet_partitions)]
        assert owned or settings.until is not None, f"shard {settings.shard} owns no store"


def test_the_indexed_job_gives_each_pod_its_shard_of_the_completions(tmp_path: Path) -> None:
    """Backfill: an Indexed Job of N completions, all at once; pod i (JOB_COMPLETION_INDEX=i) runs shard i/N."""
    docs = documents("backfill-indexed-job.yaml")
    job = docs["Job"]["spec"]
    assert job["completionMode"] == "Indexed", "only an Indexed Job sets JOB_COMPLETION_INDEX"
    pod = job["template"]
    n = job["completions"]
    assert job["parallelism"] == n
    assert container_env(pod)["SHARD"] == f"auto/{n}"
    assert "JOB_COMPLETION_INDEX" not in container_env(pod), "Kubernetes sets it, per pod"
    shards = [pod_settings(docs, pod, tmp_path, JOB_COMPLETION_INDEX=str(i), HOSTNAME="x") for i in range(n)]
    assert [s.shard for s in shards] == [Shard(i, n) for i in range(n)]
    first = shards[0]
    assert first.seed is not None
    assert first.start is not None, "a bounded run gives START: every shard cuts its first day there"
    assert first.until is not None
    assert first.exactly_once


def test_the_statefulset_gives_each_pod_its_shard_of_the_replicas(tmp_path: Path) -> None:
    """Live: a StatefulSet of N replicas; pod <name>-<i> (its host name) runs shard i/N, and each owns stores."""
    docs = documents("live-statefulset.yaml")
    sts = docs["StatefulSet"]
    pod = sts["spec"]["template"]
    n = sts["spec"]["replicas"]
    assert container_env(pod)["SHARD"] == f"auto/{n}"
    assert "hostname" not in pod["spec"], "a pod's own host name would hide its ordinal"
    assert sts["spec"]["serviceName"] == docs["Service"]["metadata"]["name"]
    assert docs["Service"]["spec"]["clusterIP"] == "None", "a StatefulSet's governing service is headless"
    name = sts["metadata"]["name"]
    shards = [pod_settings(docs, pod, tmp_path, HOSTNAME=f"{name}-{i}") for i in range(n)]
    assert [s.shard for s in shards] == [Shard(i, n) for i in range(n)]
    assert shards[0].until is None
    assert shards[0].seed is not None
    assert_every_shard_has_units(shards)


@pytest.mark.parametrize("name", ["backfill-indexed-job.yaml", "live-statefulset.yaml"])
def test_a_pod_beyond_n_is_refused(name: str, tmp_path: Path) -> None:
    """Scaled past N without changing SHARD, the extra pod stops at once (exit 2) rather than duplicate a shard."""
    docs = documents(name)
    workload = docs.get("Job") or docs["StatefulSet"]
    pod = workload["spec"]["template"]
    n = int(container_env(pod)["SHARD"].split("/")[1])
    extra = {"JOB_COMPLETION_INDEX": str(n)} if "Job" in docs else {"HOSTNAME": f"{workload['metadata']['name']}-{n}"}
    with pytest.raises(ConfigError, match=f"gives shard {n}/{n}; expected an index below N={n}"):
        pod_settings(docs, pod, tmp_path, **extra)
