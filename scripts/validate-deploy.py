#!/usr/bin/env python3
"""Checks Tern's deployment files offline; run with the virtualenv scripts/deploy-tools.sh makes.

- deploy/k8s: every overlay renders (`kubectl kustomize`, kustomize v5) and every object validates,
  strictly (no unknown field), against the Kubernetes API's schemas of the versions below; then what the
  schemas cannot see: every container has probes on its metrics port, resource requests and a non-root
  user; selectors match their pods; the region an overlay names is in the topology, which gives an
  address to each node pod's hostname.
- deploy/compose: the files are what deploy/compose/generate.py writes, and docker-compose accepts them.
- deploy/grafana: the dashboard is valid JSON and every metric it queries is one Tern exports.
Prints what it checked; exits 1 with every problem found.
"""

import json
import pathlib
import re
import shutil
import subprocess
import sys
import tomllib

import kubernetes_validate
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
KUBERNETES_VERSIONS = ["1.30", "1.37"]
problems = []


def problem(text):
    problems.append(text)


def kubectl():
    here = pathlib.Path(sys.executable).parent / "kubectl"
    return str(here) if here.exists() else shutil.which("kubectl")


def containers(obj):
    spec = obj.get("spec", {}).get("template", {}).get("spec", {})
    return spec, spec.get("containers", [])


def check_workload(name, obj):
    pod_spec, pod_containers = containers(obj)
    selector = obj["spec"]["selector"]["matchLabels"]
    labels = obj["spec"]["template"]["metadata"].get("labels", {})
    if any(labels.get(k) != v for k, v in selector.items()):
        problem(f"{name}: the selector {selector} does not match the pod's labels {labels}")
    security = pod_spec.get("securityContext", {})
    if not security.get("runAsNonRoot") or not security.get("runAsUser"):
        problem(f"{name}: pods must run as a non-root user")
    for container in pod_containers:
        where = f"{name}/{container['name']}"
        ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        for probe in ("readinessProbe", "livenessProbe"):
            get = container.get(probe, {}).get("httpGet")
            if not get or get.get("path") != "/metrics" or get.get("port") not in ("metrics", ports.get("metrics")):
                problem(f"{where}: {probe} must ask /metrics on the metrics port")
        listen = [a for a in container.get("args", []) if a.startswith("--metrics-listen=")]
        if not listen or not listen[0].endswith(f":{ports.get('metrics')}"):
            problem(f"{where}: --metrics-listen must serve the metrics port {ports.get('metrics')}")
        requests = container.get("resources", {}).get("requests", {})
        if "cpu" not in requests or "memory" not in requests:
            problem(f"{where}: resource requests for cpu and memory are required")


def check_overlay(overlay):
    rendered = subprocess.run([kubectl(), "kustomize", str(overlay)], capture_output=True, text=True)
    if rendered.returncode != 0:
        problem(f"{overlay}: kustomize failed: {rendered.stderr.strip()}")
        return 0
    objects = [o for o in yaml.safe_load_all(rendered.stdout) if o]
    by_kind = {}
    for obj in objects:
        name = f"{overlay.name}: {obj['kind']}/{obj['metadata']['name']}"
        by_kind.setdefault(obj["kind"], []).append(obj)
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                problem(f"{name} (Kubernetes {version}): {'.'.join(map(str, e.path))}: {e.message}")
            except kubernetes_validate.SchemaNotFoundError as e:
                problem(f"{name} (Kubernetes {version}): {e}")
        if obj["kind"] in ("StatefulSet", "Deployment"):
            check_workload(name, obj)
    config = {c["metadata"]["name"].rsplit("-", 1)[0]: c for c in by_kind.get("ConfigMap", [])}
    region = config.get("tern-region", {}).get("data", {}).get("region")
    topology = tomllib.loads(config.get("tern-topology", {}).get("data", {}).get("topology.toml", ""))
    if region not in topology.get("regions", {}):
        problem(f"{overlay.name}: region {region!r} is not in the topology")
        return len(objects)
    namespace = objects[0]["metadata"].get("namespace") or objects[0]["metadata"]["name"]
    for node in by_kind.get("StatefulSet", []):
        service = node["spec"]["serviceName"]
        hosts = [a.split(":")[0] for a in topology["regions"][region]["nodes"].values()]
        for ordinal in range(node["spec"]["replicas"]):
            expected = f"{node['metadata']['name']}-{ordinal}.{service}.{namespace}.svc.cluster.local"
            if expected not in hosts:
                problem(f"{overlay.name}: pod {expected} has no node in the topology of {region}")
        budget = [b for b in by_kind.get("PodDisruptionBudget", [])
                  if b["spec"]["selector"]["matchLabels"].items() <= node["spec"]["template"]["metadata"]["labels"].items()]
        if not budget or budget[0]["spec"].get("minAvailable", 0) <= node["spec"]["replicas"] // 2:
            problem(f"{overlay.name}: the nodes need a PodDisruptionBudget that keeps a majority")
    return len(objects)


def check_compose():
    generated = subprocess.run([sys.executable, str(ROOT / "deploy/compose/generate.py"), "--check"],
                               capture_output=True, text=True)
    if generated.returncode != 0:
        problem(generated.stderr.strip() or generated.stdout.strip())
    checked = 0
    if not shutil.which("docker-compose"):
        problem("docker-compose is missing: the compose files cannot be checked")
        return 0
    for compose in sorted((ROOT / "deploy/compose").glob("*/docker-compose.yml")):
        checked += 1
        config = subprocess.run(["docker-compose", "-f", str(compose), "config", "-q"], capture_output=True, text=True,
                                env={"PATH": "/usr/bin:/bin", "TERN_CLOCKS": "/tmp"})
        if config.returncode != 0:
            problem(f"{compose}: docker-compose rejects it: {config.stderr.strip()}")
    return checked


def check_grafana():
    dashboards = sorted((ROOT / "deploy/grafana").glob("*.json"))
    # Names in the metrics macros, and counters (`*_total`) named where they are chosen between.
    source = "\n".join(p.read_text() for p in (ROOT / "node/src").rglob("*.rs"))
    exported = set(re.findall(r'(?:counter|gauge|histogram)!\(\s*"(tern_[a-z_]+)"', source))
    exported |= set(re.findall(r'"(tern_[a-z_]+_total)"', source))
    for dashboard in dashboards:
        try:
            panels = json.loads(dashboard.read_text())["panels"]
        except (ValueError, KeyError) as e:
            problem(f"{dashboard}: not a dashboard: {e}")
            continue
        for panel in panels:
            for target in panel.get("targets", []):
                for metric in re.findall(r"\b(tern_[a-z_]+?)(?:_bucket|_count|_sum)?\b", target.get("expr", "")):
                    if metric not in exported:
                        problem(f"{dashboard.name}: panel {panel.get('title')!r} queries {metric}, which Tern does not export")
    return len(dashboards)


def main():
    overlays = sorted((ROOT / "deploy/k8s/overlays").iterdir())
    objects = sum(check_overlay(o) for o in overlays)
    composes = check_compose()
    dashboards = check_grafana()
    print(f"checked {len(overlays)} Kubernetes overlays ({objects} objects, Kubernetes {', '.join(KUBERNETES_VERSIONS)}), "
          f"{composes} compose files, {dashboards} dashboards")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
