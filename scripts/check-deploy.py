#!/usr/bin/env python3
"""Checks of deploy/ that schemas do not make: run by scripts/check-deploy.sh in its venv.

The compose file is parsed by compose-spec (the Rust compose_spec crate's validating parser)
after PyYAML has resolved its anchors and merge keys; then cross-references and the promises the
files make (non-root, read-only root, Redis without persistence, the cluster key where pixgate
looks for it) are checked here, for compose, Kubernetes and the Dockerfile alike. Prints one
line per problem and exits 1 if there was any.

Usage: check-deploy.py REPO [RENDERED_K8S_YAML]
"""

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(sys.argv[1]).resolve()
DEPLOY = REPO / "deploy"
problems = []

# The keys of cache.shared pixgate takes (docs/caching.md).
SHARED_KEYS = {
    "redis", "cluster", "key_file", "key_env", "timeout", "lock_ttl", "lock_wait", "pool",
    "max_entry_bytes", "breaker", "prefix",
}
ADMIN_PORT = 9090


def problem(where, what):
    problems.append(f"{where}: {what}")


def redis_args_keep_nothing(where, args):
    """Redis started with persistence off and a TTL-driven eviction."""
    pairs = {a: args[i + 1] for i, a in enumerate(args[:-1]) if a.startswith("--")}
    for flag, want in [("--save", ""), ("--appendonly", "no"),
                       ("--maxmemory-policy", "volatile-ttl")]:
        if pairs.get(flag) != want:
            problem(where, f"redis needs `{flag} {want!r}` (persistence off), has {pairs.get(flag)!r}")
    if "--maxmemory" not in pairs:
        problem(where, "redis needs --maxmemory")


def pixgate_config(where, text, key_path):
    """A node's pixgate.yaml: valid YAML, the shared tier on with known keys, the cluster key
    at the path the deployment mounts it, the admin listener where the probes look."""
    try:
        cfg = yaml.safe_load(text)
    except yaml.YAMLError as e:
        problem(where, f"not YAML: {e}")
        return
    cache = cfg.get("cache") or {}
    shared = cache.get("shared")
    if not isinstance(shared, dict):
        problem(where, "cache.shared is not set: the nodes would not share a tier")
        return
    unknown = set(shared) - SHARED_KEYS
    if unknown:
        problem(where, f"cache.shared has unknown keys {sorted(unknown)}")
    if shared.get("key_file") != key_path:
        problem(where, f"cache.shared.key_file is {shared.get('key_file')!r}, the key is mounted at {key_path}")
    if cache.get("memory_only_promise") is not True:
        problem(where, "cache.memory_only_promise should be true (Redis without persistence is checked at start)")
    if cache.get("disk", False) not in (False, "off"):  # YAML 1.1 reads `off` as false
        problem(where, "cache.disk must be off in a memory-only deployment")
    listen = (cfg.get("admin") or {}).get("listen", "")
    if listen != f"0.0.0.0:{ADMIN_PORT}":
        problem(where, f"admin.listen is {listen!r}; the probes and Prometheus use 0.0.0.0:{ADMIN_PORT}")
    if not str(cfg.get("listen", "")).startswith("0.0.0.0:"):
        problem(where, "listen must be on 0.0.0.0 in a container")


def check_compose():
    import compose_spec

    path = DEPLOY / "compose" / "docker-compose.yml"
    where = str(path.relative_to(REPO))
    doc = yaml.safe_load(path.read_text())
    try:
        compose_spec.PyCompose.from_json(json.dumps(doc))
    except ValueError as e:
        problem(where, f"not a valid compose file: {e}")
        return
    services = doc.get("services", {})
    secrets = doc.get("secrets", {})
    for name, svc in services.items():
        deps = svc.get("depends_on", [])
        for dep in deps if isinstance(deps, list) else deps.keys():
            if dep not in services:
                problem(where, f"service {name} depends on unknown service {dep}")
        for s in svc.get("secrets", []):
            s = s if isinstance(s, str) else s.get("source")
            if s not in secrets:
                problem(where, f"service {name} uses undeclared secret {s}")
        for v in svc.get("volumes", []):
            src = v.split(":")[0] if isinstance(v, str) else v.get("source", "")
            if src.startswith((".", "/")) and not (path.parent / src).exists():
                problem(where, f"service {name} mounts {src}, which does not exist")
    nodes = [n for n, s in services.items() if "pixgate" in str(s.get("command", ""))
             or n.startswith("pixgate")]
    if len(nodes) < 3:
        problem(where, f"expected 3 pixgate nodes, found {nodes}")
    for n in nodes:
        s = services[n]
        if s.get("read_only") is not True:
            problem(where, f"{n}: read_only: true is missing")
        if not str(s.get("user", "")).startswith("10001"):
            problem(where, f"{n}: should run as user 10001")
        if not any(str(t).startswith("/tmp") for t in s.get("tmpfs", [])):
            problem(where, f"{n}: /tmp must be a tmpfs (the upgrade socket's directory)")
        mounted = {v.split(":")[1]: v.split(":")[0] for v in s.get("volumes", []) if isinstance(v, str)}
        cfg_src = mounted.get("/etc/pixgate/pixgate.yaml")
        if not cfg_src:
            problem(where, f"{n}: no /etc/pixgate/pixgate.yaml mounted")
            continue
        secret = next(iter(s.get("secrets", [])), None)
        pixgate_config(f"{where} ({n}: {cfg_src})", (path.parent / cfg_src).read_text(),
                       f"/run/secrets/{secret}")
    redis = services.get("redis")
    if not redis:
        problem(where, "no redis service")
    else:
        cmd = redis.get("command", [])
        redis_args_keep_nothing(f"{where} (redis)", cmd if isinstance(cmd, list) else cmd.split())


def check_k8s(rendered):
    docs = [d for d in yaml.safe_load_all(Path(rendered).read_text()) if d]
    by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    where = "deploy/k8s"
    dep = by.get(("Deployment", "pixgate"))
    cm = by.get(("ConfigMap", "pixgate-config"))
    if not dep or not cm:
        problem(where, "the pixgate Deployment or its ConfigMap pixgate-config is missing")
        return
    for kind in ["Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Secret"]:
        if not any(k == kind for k, _ in by):
            problem(where, f"no {kind}")
    spec = dep["spec"]["template"]["spec"]
    if dep["spec"].get("replicas") != 3:
        problem(where, "the pixgate Deployment should have 3 replicas")
    if spec.get("securityContext", {}).get("runAsNonRoot") is not True:
        problem(where, "pod securityContext.runAsNonRoot must be true")
    main = next((c for c in spec["containers"] if c["name"] == "pixgate"), None)
    if not main:
        problem(where, "no container named pixgate")
        return
    for c in spec["containers"] + spec.get("initContainers", []):
        sc = c.get("securityContext", {})
        if sc.get("readOnlyRootFilesystem") is not True or sc.get("allowPrivilegeEscalation") is not False:
            problem(where, f"container {c['name']}: readOnlyRootFilesystem true and allowPrivilegeEscalation false required")
    admin = {p["name"]: p["containerPort"] for p in main.get("ports", [])}.get("admin")
    if admin != ADMIN_PORT:
        problem(where, f"the admin port should be {ADMIN_PORT}, is {admin}")
    for probe, path in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")]:
        got = main.get(probe, {}).get("httpGet", {})
        if got.get("path") != path or got.get("port") not in ("admin", ADMIN_PORT):
            problem(where, f"{probe} should GET {path} on the admin port, is {got}")
    if not main.get("resources", {}).get("requests", {}).get("cpu"):
        problem(where, "pixgate needs a CPU request (the HPA scales on CPU utilisation)")
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    mounts = {m["mountPath"]: m["name"] for m in main.get("volumeMounts", [])}
    tmp = vols.get(mounts.get("/tmp", ""), {})
    if tmp.get("emptyDir", {}).get("medium") != "Memory":
        problem(where, "/tmp must be an emptyDir with medium: Memory")
    # Where the cluster key lands: the secret volume's mount path and item path.
    key_path = None
    for mount_path, name in mounts.items():
        sec = vols.get(name, {}).get("secret")
        if sec:
            for item in sec.get("items", []):
                if item["key"] == "cluster-key":
                    key_path = f"{mount_path.rstrip('/')}/{item['path']}"
    text = cm["data"]["pixgate.yaml"]
    pixgate_config(f"{where} ConfigMap pixgate-config", text, key_path)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        f.write(text)
        f.flush()
        out = subprocess.run(["yamllint", "-c", str(DEPLOY / ".yamllint.yml"), f.name],
                             capture_output=True, text=True)
        if out.returncode != 0:
            problem(f"{where} ConfigMap pixgate-config", "yamllint:\n" + out.stdout)
    redis = by.get(("Deployment", "redis"))
    if redis:
        c = redis["spec"]["template"]["spec"]["containers"][0]
        redis_args_keep_nothing(f"{where} redis", c.get("command", []) + c.get("args", []))


def check_dockerfile():
    path = DEPLOY / "docker" / "Dockerfile"
    where = str(path.relative_to(REPO))
    text = path.read_text()
    lines = [ln.strip() for ln in re.sub(r"\\\n", " ", text).splitlines()
             if ln.strip() and not ln.strip().startswith("#")]
    froms = [ln for ln in lines if ln.upper().startswith("FROM ")]
    if len(froms) < 2:
        problem(where, "expected a multi-stage build (a build stage and a runtime stage)")
    runtime = lines[lines.index(froms[-1]):] if froms else []
    users = [ln.split()[1] for ln in runtime if ln.upper().startswith("USER ")]
    if not users or users[-1].split(":")[0] in ("0", "root"):
        problem(where, "the runtime stage must end as a non-root USER")
    if not any(ln.upper().startswith("HEALTHCHECK ") for ln in runtime):
        problem(where, "no HEALTHCHECK")
    hc = next((ln for ln in runtime if ln.upper().startswith("HEALTHCHECK ")), "")
    if str(ADMIN_PORT) not in hc or "/healthz" not in hc:
        problem(where, f"the HEALTHCHECK should ask /healthz on the admin port {ADMIN_PORT}")
    for ln in runtime:
        if re.match(r"(?i)(ENTRYPOINT|CMD)\s", ln) and not ln.split(None, 1)[1].startswith("["):
            problem(where, f"use the exec form (JSON array): {ln}")
    for ln in lines:
        if re.match(r"(?i)FROM\s+\S+:latest\b", ln):
            problem(where, f"pin the base image: {ln}")
        if re.match(r"(?i)ADD\s+https?://", ln):
            problem(where, f"no remote ADD: {ln}")
        m = re.match(r"(?i)COPY\s+(?!--from)(\S+)\s", ln)
        if m and m.group(1) != "." and not (REPO / m.group(1)).exists():
            problem(where, f"COPY source {m.group(1)} does not exist")
    ignore = (REPO / ".dockerignore").read_text().split() if (REPO / ".dockerignore").exists() else []
    if "target/" not in ignore:
        problem(".dockerignore", "target/ must be excluded from the build context")


def check_dashboard():
    path = DEPLOY / "grafana" / "pixgate-dashboard.json"
    where = str(path.relative_to(REPO))
    d = json.loads(path.read_text())
    ids = [p["id"] for p in d["panels"]]
    if len(ids) != len(set(ids)):
        problem(where, f"panel ids repeat: {ids}")
    cells = {}
    for p in d["panels"]:
        if "targets" not in p:
            problem(where, f"panel {p['id']} has no targets list (tests/deploy.rs reads every panel's)")
        g = p["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                if (x, y) in cells:
                    problem(where, f"panels {cells[(x, y)]} and {p['id']} overlap")
                    break
                cells[(x, y)] = p["id"]
            else:
                continue
            break
    if not any(p["type"] == "row" and "Shared tier" in p["title"] for p in d["panels"]):
        problem(where, 'no "Shared tier (Redis)" row')


check_compose()
if len(sys.argv) > 2:
    check_k8s(sys.argv[2])
check_dockerfile()
check_dashboard()
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
