#!/usr/bin/env bash
# Checks the Kubernetes manifests, offline (only pip may reach the network, to install
# kubernetes-validate when it is missing):
#   1. every overlay renders with `kubectl kustomize`;
#   2. the renderings (and the example Secrets) validate with
#      `kubernetes-validate --strict` against each Kubernetes version we claim;
#   3. the policy test (k8s/test_policy.py): probes, resources, security, PDBs, rollout,
#      grace periods, readiness names, configuration, NetworkPolicy reachability, the
#      Dockerfile, plus its self-test on broken fixtures.
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

# 2. Validate against the schemas of each version, strictly (unknown fields fail).
for v in "${VERSIONS[@]}"; do
  for o in "${rendered[@]}"; do
    if out=$(kubernetes-validate --strict --quiet -k "$v" "$work/$o.yaml" 2>&1); then
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

finish
