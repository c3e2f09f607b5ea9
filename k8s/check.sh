#!/usr/bin/env bash
# Checks the Kubernetes manifests and the monitoring, offline (only pip may reach the
# network, to install kubernetes-validate when it is missing):
#   1. every overlay renders with `kubectl kustomize`;
#   2. the renderings (and the example Secrets) validate with
#      `kubernetes-validate --strict` against each Kubernetes version we claim; it has no
#      schema for the prometheus-operator's objects (PodMonitor, PrometheusRule), which are
#      left to the policy test, and any other object it has no schema for fails;
#   3. the policy test (k8s/test_policy.py): probes, resources, security, PDBs, rollout,
#      grace periods, readiness names, configuration, NetworkPolicy reachability, the
#      Dockerfile, the metrics port, the PodMonitor and PrometheusRule (shape, selection,
#      runbook sections), the dashboard ConfigMap, plus its self-test on broken fixtures;
#   4. the monitoring (k8s/monitoring/check.py): `promtool check rules` and
#      `promtool test rules` on the PrometheusRule's spec, every alert tested firing, quiet
#      and pending, each case failing against a mutated rule, the dashboard's structure and
#      queries; metrics_used.py's unit tests and its verdict on a fixture scrape.
#      Needs promtool (Debian's `prometheus` package; .ci/run installs it).
# Prints one line per check group and ends with `k8s: N passed, M failed`; exits
# non-zero when anything failed.
#   bash k8s/check.sh
set -uo pipefail
cd "$(dirname "$0")/.."

# The Kubernetes versions the manifests are claimed to work on (k8s/README.md).
# 1.30 is the oldest: the preStop `sleep` action is on by default from there.
VERSIONS=(1.30 1.33 1.36)
OVERLAYS=(dev prod)

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok    $*"; }
bad() { failed=$((failed + 1)); echo "FAIL  $*"; }

finish() {
  echo "k8s: ${passed} passed, ${failed} failed"
  [ "$failed" -eq 0 ]
  exit $?
}

pip_install() {
  python3 -m pip install --quiet --disable-pip-version-check "$@" 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "$@"
}

if ! command -v kubectl >/dev/null; then
  bad "kubectl is not installed (needed for \`kubectl kustomize\`)"
  finish
fi
if ! command -v kubernetes-validate >/dev/null || ! python3 -c 'import yaml, kubernetes_validate' 2>/dev/null; then
  echo "installing kubernetes-validate (pip)"
  pip_install 'kubernetes-validate>=1.36' || { bad "pip install kubernetes-validate"; finish; }
fi
echo "kubernetes-validate $(kubernetes-validate --version 2>&1 | tail -1), $(kubectl version --client 2>/dev/null | grep -i kustomize)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. Render.
rendered=()
for o in "${OVERLAYS[@]}"; do
  if kubectl kustomize "k8s/overlays/$o" >"$work/$o.yaml" 2>"$work/$o.err"; then
    ok "render overlays/$o ($(grep -c '^kind:' "$work/$o.yaml") objects)"
    rendered+=("$o")
  else
    bad "render overlays/$o: $(cat "$work/$o.err")"
  fi
done

# 2. Validate against the schemas of each version, strictly (unknown fields fail). The
#    prometheus-operator's objects have no schema here: test_policy.py checks them.
for o in "${rendered[@]}"; do
  python3 - "$work/$o.yaml" >"$work/$o.core.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
yaml.safe_dump_all([d for d in docs if not d.get("apiVersion", "").startswith("monitoring.coreos.com/")],
                   sys.stdout, sort_keys=False)
PY
done
for v in "${VERSIONS[@]}"; do
  for o in "${rendered[@]}"; do
    if out=$(kubernetes-validate --strict --quiet -k "$v" "$work/$o.core.yaml" 2>&1) \
        && ! grep -q "find schema" <<<"$out"; then
      ok "validate overlays/$o against Kubernetes $v"
    else
      bad "validate overlays/$o against Kubernetes $v:"$'\n'"$out"
    fi
  done
  if out=$(kubernetes-validate --strict --quiet -k "$v" k8s/overlays/prod/secrets.example.yaml 2>&1); then
    ok "validate overlays/prod/secrets.example.yaml against Kubernetes $v"
  else
    bad "validate overlays/prod/secrets.example.yaml against Kubernetes $v:"$'\n'"$out"
  fi
done

# 3. Policy test (each of its checks counts).
if [ "${#rendered[@]}" -gt 0 ]; then
  args=()
  for o in "${rendered[@]}"; do args+=("$o=$work/$o.yaml"); done
  python3 k8s/test_policy.py --summary "$work/policy.counts" "${args[@]}"
  status=$?
  if [ -s "$work/policy.counts" ]; then
    read -r p f <"$work/policy.counts"
    passed=$((passed + p))
    failed=$((failed + f))
    [ "$status" -eq 0 ] || [ "$f" -gt 0 ] || bad "policy test exited with $status"
  else
    bad "policy test crashed (exit $status)"
  fi
fi

# 4. Monitoring: rules, alert tests, dashboard (each of its checks counts), and the
#    metric-name checker on its fixture scrape.
out=$(python3 k8s/monitoring/check.py check 2>&1)
printf '%s\n' "$out" | grep -v '^monitoring: '
if counts=$(grep -E '^monitoring: [0-9]+ passed, [0-9]+ failed$' <<<"$out"); then
  read -r _ p _ f _ <<<"$counts"
  passed=$((passed + p))
  failed=$((failed + f))
else
  bad "k8s/monitoring/check.py crashed"
fi
if out=$(python3 -m unittest k8s/monitoring/test_metrics_used.py k8s/monitoring/test_check.py 2>&1); then
  ok "unit tests of metrics_used.py and check.py ($(grep -oE 'Ran [0-9]+ tests' <<<"$out"))"
else
  bad "unit tests of metrics_used.py and check.py:"$'\n'"$out"
fi
if out=$(python3 k8s/monitoring/metrics_used.py k8s/monitoring/testdata/scrape.prom 2>&1); then
  ok "metrics_used.py finds every used metric in the fixture scrape ($(tail -1 <<<"$out"))"
else
  bad "metrics_used.py on the fixture scrape:"$'\n'"$out"
fi

# 5. One NATS release everywhere, past the releases known to lose data: every manifest's
#    nats image and the Helm values' tag name the same version, NATS_PINNED (the one
#    .ci/run installs for the tests), at least NATS_MINIMUM (2.10.20-2.10.22 lost whole
#    streams after process crashes, fixed in 2.10.23); both from config/nats-version.
. config/nats-version
nats_versions=$( { grep -rhoE 'image: *nats:[0-9][0-9.]*' k8s/base k8s/overlays | sed -E 's/.*nats://'
                   grep -hoE '^ *tag: *[0-9][0-9.]*' k8s/overlays/prod/nats-values.yaml | sed -E 's/.*tag: *//'; } | sort -u)
if [ "$(wc -l <<<"$nats_versions")" -ne 1 ] || [ -z "$nats_versions" ]; then
  bad "NATS: manifests and Helm values name different releases: $(tr '\n' ' ' <<<"$nats_versions")"
elif [ "$(printf '%s\n%s\n' "$NATS_MINIMUM" "$nats_versions" | sort -V | head -1)" != "$NATS_MINIMUM" ]; then
  bad "NATS: $nats_versions is older than $NATS_MINIMUM"
elif [ "$nats_versions" != "$NATS_PINNED" ]; then
  bad "NATS: the manifests pin $nats_versions, config/nats-version $NATS_PINNED (the tests' release)"
else
  ok "NATS: every manifest and the Helm values pin $nats_versions (>= $NATS_MINIMUM)"
fi

finish
