#!/usr/bin/env bash
# Checks deploy/ offline (no cluster, no container engine; only the package registries for the
# tools): yamllint on every YAML file; the Kubernetes manifests (rendered by `kubectl kustomize`
# when kubectl is there, else the files kustomization.yaml lists) against the Kubernetes JSON
# schemas, strictly, for the oldest and newest versions checked (kubernetes-validate); the
# compose file with compose-spec's parser and cross-references; the Prometheus config, alert
# rules and their tests (promtool); the load balancer's config (haproxy -c); the Dockerfile
# lightly; and, across all of them, that the node configs use the shared tier with the cluster
# key where it is mounted and keep nothing on disk (scripts/check-deploy.py).
# Installs what it needs when missing: apt packages through scripts/deps.sh test, the Python
# tools (pinned) into a venv under ~/.cache/pixgate. Usage: scripts/check-deploy.sh
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

for bin in yamllint promtool haproxy; do
  command -v "$bin" >/dev/null 2>&1 || { scripts/deps.sh test; break; }
done

VENV="${PIXGATE_DEPLOY_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/pixgate/deploy-venv}"
REQS="kubernetes-validate==1.37.0 compose-spec==0.2.1 PyYAML==6.0.2"
if [ "$(cat "$VENV/.requirements" 2>/dev/null)" != "$REQS" ]; then
  echo "check-deploy: installing $REQS into $VENV" >&2
  rm -rf "$VENV"
  if ! python3 -m venv "$VENV" 2>/dev/null; then
    # Debian's python3 has venv in a package of its own.
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
    rm -rf "$VENV"
    python3 -m venv "$VENV"
  fi
  # shellcheck disable=SC2086
  "$VENV/bin/pip" install -q --disable-pip-version-check $REQS
  echo "$REQS" >"$VENV/.requirements"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "check-deploy: yamllint" >&2
yamllint -s -c deploy/.yamllint.yml deploy/

echo "check-deploy: Kubernetes schemas" >&2
if command -v kubectl >/dev/null 2>&1; then
  kubectl kustomize deploy/k8s >"$work/k8s.yaml"
else
  "$VENV/bin/python" - deploy/k8s >"$work/k8s.yaml" <<'EOF'
import sys, yaml, pathlib
d = pathlib.Path(sys.argv[1])
for r in yaml.safe_load((d / "kustomization.yaml").read_text())["resources"]:
    print("---"); print((d / r).read_text())
EOF
fi
for v in 1.29.0 1.37.0; do
  "$VENV/bin/kubernetes-validate" --strict --quiet -k "$v" "$work/k8s.yaml"
done

echo "check-deploy: Prometheus config, alert rules and their tests" >&2
sed "s#/etc/prometheus/rules/pixgate-alerts.yml#$PWD/deploy/prometheus/pixgate-alerts.yml#" \
  deploy/compose/prometheus.yml >"$work/prometheus.yml"
promtool check config "$work/prometheus.yml" >/dev/null
(cd deploy/prometheus && promtool check rules pixgate-alerts.yml >/dev/null &&
  promtool test rules pixgate-alerts.test.yml >/dev/null)

echo "check-deploy: haproxy config" >&2
# The nodes' names resolve only inside compose's network: those warnings are expected.
haproxy -c -q -f deploy/compose/haproxy.cfg

echo "check-deploy: compose, node configs, Dockerfile, dashboard" >&2
"$VENV/bin/python" scripts/check-deploy.py . "$work/k8s.yaml"

echo "check-deploy: deploy/ OK ($((SECONDS - started)) s)"
