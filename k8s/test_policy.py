#!/usr/bin/env python3
"""Policy test for the rendered Kubernetes manifests of Game Rewards.

    python3 k8s/test_policy.py                      # renders k8s/overlays/* with kubectl
    python3 k8s/test_policy.py dev=dev.yaml prod=prod.yaml [--summary FILE]

Every check is one line; a failing one says what is wrong and where. The self-test at the
end feeds the checker broken manifests (k8s/testdata/) and fails unless it reports each
planted fault, so a checker that silently passes everything cannot go unnoticed.
Exit status: 0 when nothing failed. `--summary FILE` writes "passed failed" for check.sh.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

K8S = Path(__file__).resolve().parent
REPO = K8S.parent
MONITORING = K8S / "monitoring"

# The contract of the services (see k8s/README.md).
READINESS = {
    "mission": "game.mission.v1.MissionService",
    "reward": "game.reward.v1.RewardService",
    "wallet": "game.wallet.v1.WalletService",
    "mypage": "game.mypage.v1.MyPageService",
    "gift": "game.gift.v1.GiftService",
    "notification": "game.notification.v1.NotificationService",
    "auth": "game.auth.v1.AuthService",
    "gateway": "game.gateway.v1.Gateway",
    "ops": "game.admin.v1.DeadLetterService",
}
SERVICES = set(READINESS)
RELATIONAL = {"mission", "reward", "wallet", "gift", "notification", "auth"}
HPA_SCALED = {"gateway", "mypage"}
# The services that talk to NATS, each its own user on the bus (nats_adapter::roles), and
# the operator's user for people.
NATS_ROLES = {"mission", "reward", "wallet", "gift", "notification", "mypage", "ops"}
# The role that sends dead letters back (gamectl serve ops): it alone may publish events
# of other roles, and it may create, purge or remove no stream.
REDRIVER = "ops"
NATS_USERS = NATS_ROLES | {"operator"}
# Settings naming a file that holds a secret: it must be on a Secret volume.
SECRET_FILES = {"ADMIN_PASSWORD_FILE", "SERVICE_ACCOUNTS_FILE", "SERVICE_CLIENT_SECRET_FILE",
                "REVOCATION_KEY_FILE"}
# The one image every Deployment runs, in its role (`args: ["serve", "<role>"]`).
SERVER_IMAGE = "server"
# Defaults of the binaries when the variable is unset.
DEFAULT_DRAIN, DEFAULT_GRACE = 0.0, 10.0

COMMON_ENV = {
    "LISTEN_ADDR", "NATS_URL", "STREAM_REPLICAS", "CONSUMER_MAX_DELIVER",
    "CONSUMER_ACK_WAIT_SECONDS", "DRAIN_SECONDS", "SHUTDOWN_GRACE_SECONDS",
    "READINESS_INTERVAL_SECONDS", "LOG_FORMAT", "RUST_LOG",
    "JWT_ISSUERS", "JWT_AUDIENCE", "JWKS_URLS", "REVOCATION_URLS", "REVOCATION_KEY_FILE", "METRICS_ADDR",
}
# The auth service's internal port (INTERNAL_ADDR: JWKS, revocations, customer lookup,
# service tokens), which every pod of ours reaches; its public one (8080) is the gateway's.
AUTH_INTERNAL_PORT = 8081
# Prometheus scrapes every role here (container port `metrics`, METRICS_ADDR).
METRICS_PORT = 9464
# The job label the alerts select (the PodMonitor's jobLabel names a pod label with it).
METRICS_JOB = "game-rewards"
REQUIRED_ENV = {
    "mission": {"DATABASE_URL", "CUSTOMERS_URL"},
    "reward": {"DATABASE_URL"},
    "gift": {"DATABASE_URL"},
    "wallet": {"DATABASE_URL", "GIFT_URL", "GIFT_DEADLINE_MS", "GIFT_MAX_IN_FLIGHT",
               "SERVICE_CLIENT_ID", "SERVICE_CLIENT_SECRET_FILE", "AUTH_URL",
               "BREAKER_FAILURE_RATE", "BREAKER_SLOW_CALL_RATE", "BREAKER_SLOW_CALL_MS",
               "BREAKER_WINDOW", "BREAKER_MIN_CALLS", "BREAKER_OPEN_SECONDS",
               "BREAKER_HALF_OPEN_CALLS"},
    "mypage": {"MYPAGE_BUCKET"},
    "ops": set(),
    "notification": {"DATABASE_URL", "MAILBOX_DIR", "MAIL_FROM", "RECIPIENT_DOMAIN"},
    "auth": {"DATABASE_URL", "INTERNAL_ADDR", "AUTH_ISSUER", "AUTH_AUDIENCE", "AUTH_KEYS_DIR",
             "TOKEN_TTL_SECONDS", "ADMIN_PASSWORD_FILE", "SERVICE_ACCOUNTS_FILE",
             "TRUSTED_FORWARDERS", "PASSWORD_HASH_MEMORY_MIB"},
    "gateway": {"MISSION_URL", "REWARD_URL", "WALLET_URL", "MYPAGE_URL", "GIFT_URL",
                "NOTIFICATION_URL", "AUTH_URL", "OPS_URL", "RATE_LIMIT_PER_SECOND",
                "RATE_LIMIT_BURST", "CORS_ALLOWED_ORIGINS", "TRUSTED_PROXIES",
                "SERVICE_CLIENT_ID", "SERVICE_CLIENT_SECRET_FILE"},
}


@dataclass
class Result:
    subject: str
    code: str
    ok: bool
    detail: str = ""


@dataclass
class Results:
    items: list[Result] = field(default_factory=list)

    def add(self, subject: str, code: str, problems: list[str] | str | None) -> None:
        if isinstance(problems, str):
            problems = [problems]
        problems = [p for p in (problems or []) if p]
        self.items.append(Result(subject, code, not problems, "; ".join(problems)))

    def failures(self) -> list[Result]:
        return [r for r in self.items if not r.ok]


# --------------------------------------------------------------------------- helpers

def load_docs(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if isinstance(d, dict) and d.get("kind")]


def render(overlay: Path) -> list[dict]:
    out = subprocess.run(["kubectl", "kustomize", str(overlay)], check=True,
                         capture_output=True, text=True).stdout
    return load_docs(out)


def ns(obj: dict) -> str:
    return obj.get("metadata", {}).get("namespace", "default")


def name(obj: dict) -> str:
    return obj["metadata"]["name"]


def of_kind(docs: list[dict], *kinds: str) -> list[dict]:
    return [d for d in docs if d["kind"] in kinds]


def selector_matches(selector: dict | None, labels: dict) -> bool:
    """A LabelSelector against labels; an empty selector matches everything."""
    selector = selector or {}
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def image_service(image: str) -> str | None:
    """`registry/game-rewards/server:1.0` -> `server` (None for other images)."""
    m = re.search(r"(?:^|/)game-rewards/([a-z0-9-]+)(?::[^/]*)?$", image)
    return m.group(1) if m else None


def container_service(c: dict) -> str | None:
    """The role a container of our image runs: `args: ["serve", "mission"]` -> `mission`;
    `?` for our image without a role (or another of ours); None for other images."""
    image = image_service(c.get("image", ""))
    if image is None:
        return None
    args = [str(a) for a in (c.get("args") or [])]
    if image == SERVER_IMAGE and len(args) == 2 and args[0] == "serve":
        return args[1]
    return "?"


def containers(workload: dict) -> list[dict]:
    spec = workload["spec"]["template"]["spec"]
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])


@dataclass
class Secret:
    name: str
    key: str


def resolve_env(container: dict, configmaps: dict[str, dict]) -> dict[str, object]:
    """The container's environment: envFrom ConfigMaps in order, then `env` entries."""
    env: dict[str, object] = {}
    for src in container.get("envFrom") or []:
        ref = src.get("configMapRef")
        if ref and ref["name"] in configmaps:
            env.update(configmaps[ref["name"]].get("data") or {})
    for e in container.get("env") or []:
        if "value" in e:
            env[e["name"]] = e["value"]
        elif (e.get("valueFrom") or {}).get("secretKeyRef"):
            r = e["valueFrom"]["secretKeyRef"]
            env[e["name"]] = Secret(r["name"], r["key"])
        else:
            env[e["name"]] = object()
    return env


def seconds(v: object, default: float) -> float:
    try:
        return float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default


# --------------------------------------------------------------------------- workloads

def check_workloads(docs: list[dict], res: Results, where: str) -> None:
    configmaps = {(ns(c), name(c)): c for c in of_kind(docs, "ConfigMap")}
    pdbs = of_kind(docs, "PodDisruptionBudget")
    services = of_kind(docs, "Service")
    accounts = {(ns(a), name(a)): a for a in of_kind(docs, "ServiceAccount")}
    pvcs = {(ns(p), name(p)): p for p in of_kind(docs, "PersistentVolumeClaim")}
    hpas = of_kind(docs, "HorizontalPodAutoscaler")

    for w in of_kind(docs, "Deployment", "StatefulSet"):
        subj = f"{where}/{w['kind']}/{name(w)}"
        pod = w["spec"]["template"]["spec"]
        labels = w["spec"]["template"].get("metadata", {}).get("labels") or {}
        cms = {n: c for (space, n), c in configmaps.items() if space == ns(w)}
        replicas = w["spec"].get("replicas", 1)

        for c in containers(w):
            csubj = f"{subj}/{c['name']}"
            res.add(csubj, "probes", [f"no {p}" for p in ("livenessProbe", "readinessProbe")
                                      if not c.get(p)])
            r = c.get("resources") or {}
            res.add(csubj, "resources", [f"no {kind}.{what}" for kind in ("requests", "limits")
                                         for what in ("cpu", "memory")
                                         if what not in (r.get(kind) or {})])
            res.add(csubj, "security", security_problems(pod, c))

            svc = container_service(c)
            if svc is None:
                continue
            env = resolve_env(c, cms)
            check_service_container(res, csubj, svc, c, pod, env)

        # A PodDisruptionBudget selects the pods and still lets a node drain proceed.
        matching = [p for p in pdbs if ns(p) == ns(w)
                    and selector_matches(p["spec"].get("selector"), labels)]
        problems = [] if matching else ["no PodDisruptionBudget selects its pods"]
        for p in matching:
            ma = p["spec"].get("minAvailable")
            if isinstance(ma, int) and ma >= replicas and not any(
                    h["spec"]["scaleTargetRef"]["name"] == name(w) for h in hpas):
                problems.append(f"PDB {name(p)} minAvailable {ma} >= replicas {replicas}: "
                                "no pod can ever be evicted")
        res.add(subj, "pdb", problems)

        if w["kind"] == "Deployment":
            strategy = w["spec"].get("strategy")
            if not strategy:
                res.add(subj, "max-unavailable", "no strategy: the default RollingUpdate "
                        "has maxUnavailable 25%")
            elif strategy.get("type", "RollingUpdate") == "RollingUpdate":
                mu = (strategy.get("rollingUpdate") or {}).get("maxUnavailable", "25%")
                res.add(subj, "max-unavailable",
                        None if str(mu) in ("0", "0%") else f"maxUnavailable is {mu}, not 0")
            # ReadWriteOnce volumes and a surge pod do not mix.
            claims = [v["persistentVolumeClaim"]["claimName"] for v in pod.get("volumes") or []
                      if v.get("persistentVolumeClaim")]
            if claims:
                problems = []
                if (strategy or {}).get("type") != "Recreate":
                    problems.append(f"mounts PVC {claims} but does not use Recreate")
                if replicas > 1:
                    problems.append(f"mounts PVC {claims} with {replicas} replicas")
                for cl in claims:
                    if (ns(w), cl) not in pvcs:
                        problems.append(f"PVC {cl} is not part of the manifests")
                res.add(subj, "rwo-rollout", problems)

        app = labels.get("app.kubernetes.io/name")
        if app in SERVICES:
            # Service: port 8080 named grpc, appProtocol grpc, selecting these pods.
            svc_obj = [s for s in services if ns(s) == ns(w) and name(s) == app]
            problems = []
            if not svc_obj:
                problems.append(f"no Service {app}")
            else:
                s = svc_obj[0]
                if not selector_matches({"matchLabels": s["spec"].get("selector") or {}}, labels):
                    problems.append("Service selector does not match the pods")
                if not any(p.get("port") == 8080 and p.get("name") == "grpc"
                           and p.get("appProtocol") == "grpc" for p in s["spec"]["ports"]):
                    problems.append("no port 8080 named grpc with appProtocol grpc")
            res.add(subj, "service", problems)

            sa = pod.get("serviceAccountName")
            acct = accounts.get((ns(w), sa or ""))
            problems = []
            if not sa or acct is None:
                problems.append(f"ServiceAccount {sa!r} missing")
            elif acct.get("automountServiceAccountToken") is not False:
                problems.append("ServiceAccount mounts its token")
            if pod.get("automountServiceAccountToken") is not False:
                problems.append("pod does not set automountServiceAccountToken: false")
            res.add(subj, "serviceaccount", problems)


def security_problems(pod: dict, c: dict) -> list[str]:
    psc, csc = pod.get("securityContext") or {}, c.get("securityContext") or {}

    def eff(key: str):
        return csc.get(key, psc.get(key))

    problems = []
    if eff("runAsNonRoot") is not True:
        problems.append("runAsNonRoot is not true")
    if eff("runAsUser") == 0:
        problems.append("runs as uid 0")
    if csc.get("readOnlyRootFilesystem") is not True:
        problems.append("readOnlyRootFilesystem is not true")
    if csc.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation is not false")
    if "ALL" not in ((csc.get("capabilities") or {}).get("drop") or []):
        problems.append("capabilities do not drop ALL")
    if (eff("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
        problems.append("no RuntimeDefault seccompProfile")
    return problems


def check_service_container(res: Results, subj: str, svc: str, c: dict, pod: dict,
                            env: dict[str, object]) -> None:
    want = READINESS.get(svc)
    if want is None:
        res.add(subj, "image", f"image {c.get('image')} with args {c.get('args')}: not "
                f"game-rewards/{SERVER_IMAGE} serving one of the roles {sorted(READINESS)}")
        return
    image = c["image"]
    tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else None
    res.add(subj, "image", None if tag and tag != "latest"
            else f"image {image} has no pinned tag (set it in the overlay's images:)")

    # Readiness: the service's own name over native gRPC on the serving port.
    rp = (c.get("readinessProbe") or {}).get("grpc")
    res.add(subj, "readiness-name",
            None if rp and rp.get("port") == 8080 and rp.get("service") == want
            else f"readinessProbe must be grpc {{port: 8080, service: {want}}}, "
                 f"is {c.get('readinessProbe')}")
    # Liveness: the overall service "" (only the process, never the dependencies).
    lp = c.get("livenessProbe") or {}
    live_ok = (lp.get("grpc") or {}).get("service", "") == "" and "grpc" in lp
    want_live = 'grpc service ""'
    res.add(subj, "liveness", None if live_ok else
            f"livenessProbe must be {want_live}, is {lp or None}")
    sp = (c.get("startupProbe") or {})
    budget = sp.get("periodSeconds", 10) * sp.get("failureThreshold", 3)
    res.add(subj, "startup",
            None if (sp.get("grpc") or {}).get("service") == want and budget >= 60
            else f"startupProbe must check {want} for at least 60 s (migrations), is {sp or None}")

    # Shutdown: preStop + drain + grace must fit in the grace period.
    pre = ((c.get("lifecycle") or {}).get("preStop") or {}).get("sleep", {}).get("seconds", 0)
    drain = seconds(env.get("DRAIN_SECONDS"), DEFAULT_DRAIN)
    grace = seconds(env.get("SHUTDOWN_GRACE_SECONDS"), DEFAULT_GRACE)
    tgps = pod.get("terminationGracePeriodSeconds", 30)
    res.add(subj, "grace", None if tgps > pre + drain + grace and drain > 0 else
            f"terminationGracePeriodSeconds {tgps} must exceed preStop {pre} + "
            f"DRAIN_SECONDS {drain} + SHUTDOWN_GRACE_SECONDS {grace} (and DRAIN_SECONDS > 0)")

    # Metrics: a TCP port named `metrics` that METRICS_ADDR listens on (the PodMonitor
    # scrapes it by that name, the NetworkPolicy opens it by number).
    m = next((p for p in c.get("ports") or [] if p.get("name") == "metrics"), None)
    problems = []
    if not m or m.get("containerPort") != METRICS_PORT or m.get("protocol", "TCP") != "TCP":
        problems.append(f"no TCP container port named metrics on {METRICS_PORT} (has {m})")
    if env.get("METRICS_ADDR") != f"0.0.0.0:{METRICS_PORT}":
        problems.append(f"METRICS_ADDR is {env.get('METRICS_ADDR')!r}, not 0.0.0.0:{METRICS_PORT}")
    res.add(subj, "metrics-port", problems)
    # Files of secrets (the first admin's password, service accounts) come from Secrets.
    secret_volumes = {v["name"] for v in pod.get("volumes") or [] if v.get("secret")}
    secret_mounts = [m["mountPath"].rstrip("/") + "/" for m in c.get("volumeMounts") or []
                     if m["name"] in secret_volumes]
    res.add(subj, "secret-files", [
        f"{key} {value} is not on a Secret volume" for key, value in sorted(env.items())
        if key in SECRET_FILES and isinstance(value, str)
        and not any(value.startswith(m) for m in secret_mounts)])

    missing = sorted((COMMON_ENV | REQUIRED_ENV[svc]) - set(env))
    problems = [f"missing {', '.join(missing)}"] if missing else []
    if env.get("LISTEN_ADDR") not in (None, "0.0.0.0:8080"):
        problems.append(f"LISTEN_ADDR {env.get('LISTEN_ADDR')} is not 0.0.0.0:8080")
    res.add(subj, "config", problems)


# --------------------------------------------------------------------------- overlays

# The services reading an economy catalog file: the setting and the file's name.
CATALOGS = {"mission": ("MISSION_CATALOG", "missions.toml"), "gift": ("GIFT_CATALOG", "gifts.toml")}


def env_of(docs: list[dict], svc: str) -> tuple[dict, dict, dict]:
    """(deployment, container, resolved env) of one of our services."""
    d = next(d for d in of_kind(docs, "Deployment") if name(d) == svc)
    cms = {name(c): c for c in of_kind(docs, "ConfigMap") if ns(c) == ns(d)}
    c = next(c for c in d["spec"]["template"]["spec"]["containers"]
             if container_service(c) == svc)
    return d, c, resolve_env(c, cms)


def check_overlay(docs: list[dict], res: Results, where: str, profile: str) -> None:
    deployments = {name(d): d for d in of_kind(docs, "Deployment")}
    res.add(where, "services", [f"no Deployment {s}" for s in sorted(SERVICES - set(deployments))])
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind(docs, "HorizontalPodAutoscaler")}
    nats = [s for s in of_kind(docs, "StatefulSet") if name(s) == "nats"]
    res.add(where, "nats", None if nats else "no NATS StatefulSet")
    nats_replicas = nats[0]["spec"].get("replicas", 1) if nats else 0
    namespaces = of_kind(docs, "Namespace")
    res.add(where, "namespace", None if namespaces and all(
        (n["metadata"].get("labels") or {}).get("pod-security.kubernetes.io/enforce") == "restricted"
        for n in namespaces) else "Namespace missing or not enforcing the restricted Pod Security Standard")

    for svc in sorted(SERVICES & set(deployments)):
        subj = f"{where}/Deployment/{svc}"
        d, c, env = env_of(docs, svc)
        replicas = d["spec"].get("replicas")
        problems = []
        if profile == "dev":
            if svc in hpas:
                problems.append("dev has an HPA")
            if replicas != 1:
                problems.append(f"replicas {replicas}, dev runs one of each")
        else:
            if svc in HPA_SCALED:
                h = hpas.get(svc)
                if h is None:
                    problems.append("no HorizontalPodAutoscaler")
                else:
                    metrics = [m.get("resource", {}).get("name") for m in h["spec"].get("metrics", [])]
                    if h["apiVersion"] != "autoscaling/v2" or "cpu" not in metrics:
                        problems.append("HPA is not autoscaling/v2 on CPU")
                    if h["spec"].get("minReplicas", 1) < 2:
                        problems.append("HPA minReplicas < 2")
                    if replicas is not None:
                        problems.append("spec.replicas set although the HPA owns it")
            elif (replicas or 1) < 2:
                problems.append(f"replicas {replicas}, prod runs at least 2")
        res.add(subj, "replicas", problems)

        # Stream replicas follow the NATS cluster size.
        want_sr = 1 if profile == "dev" else 3
        sr = env.get("STREAM_REPLICAS")
        res.add(subj, "stream-replicas", None if str(sr) == str(want_sr) and want_sr <= nats_replicas
                else f"STREAM_REPLICAS {sr} (want {want_sr}, NATS has {nats_replicas} servers)")

        if svc in RELATIONAL:
            url = env.get("DATABASE_URL")
            problems = []
            if profile == "dev":
                if url != f"sqlite:///data/{svc}.db":
                    problems.append(f"DATABASE_URL {url!r} is not sqlite:///data/{svc}.db")
                pod = d["spec"]["template"]["spec"]
                data = [v for v in pod.get("volumes") or [] if v["name"] == "data"]
                mounted = any(m["mountPath"] == "/data" and m["name"] == "data"
                              for m in c.get("volumeMounts") or [])
                if not (data and data[0].get("persistentVolumeClaim") and mounted):
                    problems.append("/data is not a PersistentVolumeClaim")
            else:
                if not (isinstance(url, Secret) and url.key == "DATABASE_URL"):
                    problems.append("DATABASE_URL does not come from a Secret")
                if isinstance(url, str) and "postgres" in url:
                    problems.append("a PostgreSQL URL (password) is in plain configuration")
            res.add(subj, "database", problems)

        # The economy's catalogs: the setting names a file of a ConfigMap mounted read-only.
        if svc in CATALOGS:
            var, file = CATALOGS[svc]
            path = env.get(var)
            pod = d["spec"]["template"]["spec"]
            cms = {name(x): x for x in of_kind(docs, "ConfigMap") if ns(x) == ns(d)}
            problems = []
            mount = next((m for m in c.get("volumeMounts") or []
                          if isinstance(path, str) and path == f"{m['mountPath'].rstrip('/')}/{file}"), None)
            volume = next((v for v in pod.get("volumes") or [] if mount and v["name"] == mount["name"]), None)
            cm = cms.get(((volume or {}).get("configMap") or {}).get("name"))
            if mount is None:
                problems.append(f"{var} {path!r} is not {file} in a mounted volume")
            elif not mount.get("readOnly"):
                problems.append(f"the {file} volume is not mounted read-only")
            elif cm is None or file not in (cm.get("data") or {}):
                problems.append(f"{var}: no ConfigMap volume holding {file}")
            res.add(subj, "catalog", problems)

        # Every in-cluster address a service is configured with exists as a Service port.
        services = {name(s): s for s in of_kind(docs, "Service") if ns(s) == ns(d)}
        problems = []
        for key, value in sorted(env.items()):
            if not isinstance(value, str) or not re.search(r"_URLS?$", key):
                continue
            for host, port in re.findall(r"(?:http|nats)://([a-z0-9-]+):(\d+)", value):
                s = services.get(host)
                if s is None or not any(p["port"] == int(port) for p in s["spec"]["ports"]):
                    problems.append(f"{key} points at {host}:{port}, which no Service serves")
        res.add(subj, "addresses", problems)

        # Auth's public port is the gateway's alone (the NetworkPolicy): everything else
        # a service asks of auth (JWKS, revocations, customer lookup, service tokens) is on
        # its internal port, and auth listens there.
        problems = []
        for key, value in sorted(env.items()):
            if not isinstance(value, str) or not re.search(r"_URLS?$", key):
                continue
            for host, port in re.findall(r"http://(auth(?:-pods)?):(\d+)", value):
                public_ok = svc == "gateway" and key == "AUTH_URL"
                if int(port) != (8080 if public_ok else AUTH_INTERNAL_PORT):
                    problems.append(f"{key} points at {host}:{port}, not auth's "
                                    f"{'public' if public_ok else 'internal'} port")
        if svc == "auth":
            if env.get("INTERNAL_ADDR") != f"0.0.0.0:{AUTH_INTERNAL_PORT}":
                problems.append(f"INTERNAL_ADDR is {env.get('INTERNAL_ADDR')!r}, "
                                f"not 0.0.0.0:{AUTH_INTERNAL_PORT}")
            if not any(p.get("name") == "internal" and p.get("containerPort") == AUTH_INTERNAL_PORT
                       for p in c.get("ports") or []):
                problems.append(f"no container port named internal on {AUTH_INTERNAL_PORT}")
        res.add(subj, "auth-ports", problems)

    check_network(docs, res, where)
    check_monitoring(docs, res, where, profile)
    check_bus(docs, res, where, profile)


# --------------------------------------------------------------------------- the bus

def parse_nats_conf(text: str) -> dict:
    """The Helm chart's nats.conf: JSON but for bare values (`10Gi`, `$VAR`)."""
    def quote(m: re.Match) -> str:
        v = m.group(2)
        if re.fullmatch(r"-?\d+(\.\d+)?|true|false|null", v):
            return m.group(0)
        return m.group(1) + json.dumps(v)
    return json.loads(re.sub(r'(":\s*)([^"\s\[\]{},][^\s,\]}]*)', quote, text))


def seed_problems(svc: str, c: dict, pod: dict, seed: object) -> list[str]:
    """Where a service's NATS_NKEY_SEED_FILE comes from: its own Secret, read-only."""
    if not isinstance(seed, str):
        return ["no NATS_NKEY_SEED_FILE: it would connect anonymously and be refused"]
    mounts = [m for m in c.get("volumeMounts") or [] if seed.startswith(m["mountPath"].rstrip("/") + "/")]
    if not mounts:
        return [f"NATS_NKEY_SEED_FILE {seed} is on no mounted volume"]
    m = mounts[0]
    volume = next((v for v in pod.get("volumes") or [] if v["name"] == m["name"]), {})
    secret = volume.get("secret")
    problems = [] if m.get("readOnly") else [f"{m['mountPath']} is not mounted read-only"]
    if not secret:
        return problems + [f"volume {m['name']} is not a Secret"]
    if secret.get("secretName") != f"nats-{svc}":
        problems.append(f"the seed comes from Secret {secret.get('secretName')}, not nats-{svc}")
    rel = seed[len(m["mountPath"].rstrip("/")) + 1:]
    items = secret.get("items")
    item = next((i for i in items or [] if i["path"] == rel), None)
    key = item["key"] if item else (None if items else rel)
    if key != "seed":
        problems.append(f"{seed} is not the key `seed` of the Secret")
    mode = (item or {}).get("mode", secret.get("defaultMode", 0o644))
    if mode & 0o007:
        problems.append(f"the seed file is readable by others (mode {mode:o})")
    return problems


def check_bus(docs: list[dict], res: Results, where: str, profile: str) -> None:
    """Prod: every service on the bus has its own key, NATS admits users with keys only,
    each service's user limited to its own subjects. (Dev runs an open NATS.)"""
    if profile != "prod":
        return
    deployments = {name(d) for d in of_kind(docs, "Deployment")}
    for svc in sorted(SERVICES & deployments):
        d, c, env = env_of(docs, svc)
        pod = d["spec"]["template"]["spec"]
        seed = env.get("NATS_NKEY_SEED_FILE")
        if svc in NATS_ROLES:
            problems = seed_problems(svc, c, pod, seed)
        else:
            nats_volumes = [v["name"] for v in pod.get("volumes") or []
                            if (v.get("secret") or {}).get("secretName", "").startswith("nats-")]
            problems = [] if seed is None and not nats_volumes else [f"{svc} does not use NATS but gets a key"]
        res.add(f"{where}/Deployment/{svc}", "bus-credentials", problems)

    subj = f"{where}/StatefulSet/nats"
    sts = next((s for s in of_kind(docs, "StatefulSet") if name(s) == "nats"), None)
    if sts is None:
        res.add(subj, "bus-auth", "no NATS StatefulSet")
        return
    pod = sts["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == "nats")
    cm_names = [v["configMap"]["name"] for v in pod.get("volumes") or [] if v.get("configMap")]
    cms = [c for c in of_kind(docs, "ConfigMap") if name(c) in cm_names and "nats.conf" in (c.get("data") or {})]
    if not cms:
        res.add(subj, "bus-auth", "no nats.conf")
        return
    conf = parse_nats_conf(cms[0]["data"]["nats.conf"])
    env = resolve_env(container, {})
    problems = []
    for key in ("no_auth_user", "authorization"):
        if key in conf:
            problems.append(f"nats.conf has `{key}`: clients outside the accounts' users")
    users = [u for a in (conf.get("accounts") or {}).values() for u in (a.get("users") or [])]
    seen = set()
    for u in users:
        m = re.fullmatch(r"\$NATS_NKEY_([A-Z]+)", str(u.get("nkey", "")))
        if not m or "password" in u:
            problems.append(f"a user without a public key from the environment: {u.get('nkey') or u}")
            continue
        user = m.group(1).lower()
        seen.add(user)
        src = env.get(f"NATS_NKEY_{m.group(1)}")
        if not (isinstance(src, Secret) and src.name == f"nats-{user}" and src.key == "nkey"):
            problems.append(f"NATS_NKEY_{m.group(1)} does not come from Secret nats-{user}, key nkey")
        if user == "operator":
            continue
        perms = u.get("permissions") or {}
        pub = (perms.get("publish") or {}).get("allow")
        sub = (perms.get("subscribe") or {}).get("allow")
        if not pub or not sub:
            problems.append(f"{user} may publish or subscribe to anything")
            continue
        for pattern in pub:
            other = re.match(r"game\.([a-z]+)\.v1\.", pattern)
            redrive = user == REDRIVER and other is not None
            if pattern in (">", "game.>", "$JS.API.>") or (other and other.group(1) != user and not redrive):
                problems.append(f"{user} may publish {pattern}")
            if user == REDRIVER and re.match(r"\$JS\.API\.(STREAM\.(CREATE|UPDATE|DELETE|PURGE)|CONSUMER)\.", pattern):
                problems.append(f"{user} may publish {pattern}")
        if sub != [f"_INBOX.{user}.>"]:
            problems.append(f"{user} subscribes to {sub}, not only its own inbox")
    missing = sorted(NATS_USERS - seen)
    if missing:
        problems.append(f"no NATS user for {', '.join(missing)}")
    res.add(subj, "bus-auth", problems)


# --------------------------------------------------------------------------- network

EXTERNAL = {"__external__": "true"}


def pods(docs: list[dict]) -> dict[str, dict]:
    out = {}
    for w in of_kind(docs, "Deployment", "StatefulSet"):
        labels = w["spec"]["template"].get("metadata", {}).get("labels") or {}
        out[labels.get("app.kubernetes.io/name", name(w))] = {"labels": labels, "ns": ns(w)}
    return out


def peer_matches(peers: list[dict] | None, other: dict | None, here_ns: str) -> bool:
    """`from`/`to` of a rule; `other` is None for an address outside the cluster."""
    if not peers:
        return True
    for p in peers:
        if "ipBlock" in p:
            if other is None:
                return True
            continue
        if other is None:
            continue
        if "namespaceSelector" in p:
            # Only the namespace of the manifests is known here.
            if not selector_matches(p["namespaceSelector"], {"kubernetes.io/metadata.name": other["ns"]}):
                continue
        elif other["ns"] != here_ns:
            continue
        if selector_matches(p.get("podSelector"), other["labels"]):
            return True
    return False


def port_matches(ports: list[dict] | None, port: int) -> bool:
    return not ports or any(p.get("port") == port for p in ports)


def allowed(policies: list[dict], src: dict | None, dst: dict | None, port: int) -> bool:
    """Whether src may open a connection to dst:port (None = outside the cluster)."""
    for side, me, other, direction, peers_key in (("egress", src, dst, "Egress", "to"),
                                                  ("ingress", dst, src, "Ingress", "from")):
        if me is None:
            continue
        selecting = [p for p in policies if ns(p) == me["ns"]
                     and direction in p["spec"].get("policyTypes", ["Ingress"])
                     and selector_matches(p["spec"].get("podSelector"), me["labels"])]
        if not selecting:
            continue
        if not any(peer_matches(rule.get(peers_key), other, me["ns"])
                   and port_matches(rule.get("ports"), port)
                   for p in selecting for rule in p["spec"].get(side) or []):
            return False
    return True


def check_network(docs: list[dict], res: Results, where: str) -> None:
    policies = of_kind(docs, "NetworkPolicy")
    res.add(where, "netpol-default-deny", None if any(
        p["spec"].get("podSelector") in ({}, None)
        and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress") and not p["spec"].get("egress")
        for p in policies) else "no default-deny NetworkPolicy (Ingress and Egress)")

    ps = pods(docs)
    need = SERVICES | {"nats"}
    if not need <= set(ps):
        res.add(where, "netpol-reach", f"pods missing for the reachability test: {sorted(need - set(ps))}")
        return
    public = {"mission", "reward", "wallet", "mypage", "notification"}
    services = SERVICES - {"gateway"}
    expectations: list[tuple[str, str | None, str | None, int, bool]] = []
    for s in sorted(SERVICES):
        expectations.append((f"outside -> {s}", None, s, 8080, s == "gateway"))
        expectations.append((f"{s} -> auth's public port", s, "auth", 8080, s == "gateway"))
        expectations.append((f"{s} -> auth's internal port (JWKS, revocations)", s, "auth",
                             AUTH_INTERNAL_PORT, True))
        expectations.append((f"{s} -> DNS", s, None, 53, True))
        expectations.append((f"{s} -> NATS", s, "nats", 4222, s in services))
        expectations.append((f"{s} -> PostgreSQL", s, None, 5432, s in RELATIONAL))
        expectations.append((f"{s} -> outside https", s, None, 443, False))
        expectations.append((f"{s} -> gift", s, "gift", 8080, s in ("gateway", "wallet")))
    for s in sorted(public | {"gift", "auth"}):
        expectations.append((f"gateway -> {s}", "gateway", s, 8080, True))
    for a in sorted(services):
        for b in sorted(public):
            if a != b:
                expectations.append((f"{a} -> {b}", a, b, 8080, False))
    expectations.append(("outside -> NATS", None, "nats", 4222, False))
    expectations.append(("outside -> auth's internal port", None, "auth", AUTH_INTERNAL_PORT, False))
    expectations.append(("NATS -> NATS routes", "nats", "nats", 6222, True))

    # Prometheus (kube-prometheus-stack: namespace monitoring, its pods' name label) may
    # reach the metrics port of every role where the overlay ships the monitoring, and
    # nothing else; nobody else may reach the metrics port.
    monitored = bool(of_kind(docs, "PodMonitor"))
    ps = ps | {
        "prometheus": {"labels": {"app.kubernetes.io/name": "prometheus"}, "ns": "monitoring"},
        "grafana": {"labels": {"app.kubernetes.io/name": "grafana"}, "ns": "monitoring"},
        "prometheus-elsewhere": {"labels": {"app.kubernetes.io/name": "prometheus"}, "ns": "other"},
    }
    for s in sorted(SERVICES):
        expectations.append((f"Prometheus -> {s} metrics", "prometheus", s, METRICS_PORT, monitored))
        expectations.append((f"Prometheus -> {s} gRPC", "prometheus", s, 8080, s == "gateway"))
        expectations.append((f"grafana (monitoring namespace) -> {s} metrics", "grafana", s,
                             METRICS_PORT, False))
        expectations.append((f"a Prometheus in another namespace -> {s} metrics",
                             "prometheus-elsewhere", s, METRICS_PORT, False))
        expectations.append((f"outside -> {s} metrics", None, s, METRICS_PORT, False))
        for b in ("gateway", "mission"):
            if s != b:
                expectations.append((f"{s} -> {b} metrics", s, b, METRICS_PORT, False))
    expectations.append(("Prometheus -> NATS", "prometheus", "nats", 4222, False))

    for label, a, b, port, want in expectations:
        got = allowed(policies, ps[a] if a else None, ps[b] if b else None, port)
        res.add(f"{where}/network", "netpol-reach",
                None if got == want else f"{label}:{port} is {'allowed' if got else 'denied'}, "
                                         f"must be {'allowed' if want else 'denied'}")


# --------------------------------------------------------------------------- monitoring

# The fields of the prometheus-operator's CRDs (monitoring.coreos.com/v1) we may use:
# kubernetes-validate has no schema for them, so a misspelt field is caught here.
PODMONITOR_SPEC = {
    "jobLabel", "podTargetLabels", "podMetricsEndpoints", "selector", "namespaceSelector",
    "sampleLimit", "targetLimit", "labelLimit", "labelNameLengthLimit",
    "labelValueLengthLimit", "keepDroppedTargets", "attachMetadata", "scrapeClass",
    "scrapeProtocols", "bodySizeLimit",
}
POD_ENDPOINT = {
    "port", "portNumber", "targetPort", "path", "scheme", "params", "interval",
    "scrapeTimeout", "honorLabels", "honorTimestamps", "trackTimestampsStaleness",
    "metricRelabelings", "relabelings", "proxyUrl", "followRedirects", "enableHttp2",
    "filterRunning", "basicAuth", "oauth2", "authorization", "bearerTokenSecret", "tlsConfig",
}
RELABEL = {"sourceLabels", "separator", "targetLabel", "regex", "modulus", "replacement",
           "action"}
RULE_GROUP = {"name", "interval", "rules", "partial_response_strategy", "limit",
              "query_offset", "labels"}
RULE = {"record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
SEVERITIES = {"critical", "warning"}


def unknown(obj: dict, allowed: set[str], where: str) -> list[str]:
    return [f"unknown field {where}.{k}" for k in sorted(set(obj) - allowed)]


def runbook_anchors(text: str) -> dict[str, str]:
    """GitHub's anchors of the Markdown headings: {anchor: heading}."""
    out = {}
    for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.M):
        heading = m.group(1)
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        out[slug] = heading
    return out


def check_monitoring(docs: list[dict], res: Results, where: str, profile: str) -> None:
    monitors = of_kind(docs, "PodMonitor", "ServiceMonitor")
    rules = of_kind(docs, "PrometheusRule")
    dashboards = [c for c in of_kind(docs, "ConfigMap")
                  if (c["metadata"].get("labels") or {}).get("grafana_dashboard") == "1"]
    if profile == "dev" and not (monitors or rules or dashboards):
        return  # dev ships no monitoring (no prometheus-operator needed there)
    res.add(where, "monitoring", [f"no {what}" for what, objs in (
        ("PodMonitor", monitors), ("PrometheusRule", rules),
        ("Grafana dashboard ConfigMap (label grafana_dashboard=1)", dashboards)) if not objs])
    for m in monitors:
        check_podmonitor(m, docs, res, where)
    for r in rules:
        check_prometheusrule(r, res, where)
    source = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    for c in dashboards:
        data = c.get("data") or {}
        problems = []
        if list(data) != ["game-rewards.json"]:
            problems.append(f"data keys {sorted(data)}, want one game-rewards.json")
        for key, value in data.items():
            try:
                if json.loads(value) != source:
                    problems.append(f"{key} differs from k8s/monitoring/grafana-dashboard.json")
            except ValueError as e:
                problems.append(f"{key} is not JSON: {e}")
        res.add(f"{where}/ConfigMap/{name(c)}", "dashboard", problems)


def check_podmonitor(m: dict, docs: list[dict], res: Results, where: str) -> None:
    subj = f"{where}/{m['kind']}/{name(m)}"
    problems = []
    if m.get("apiVersion") != "monitoring.coreos.com/v1" or m["kind"] != "PodMonitor":
        problems.append(f"{m.get('apiVersion')} {m['kind']} is not a monitoring.coreos.com/v1 "
                        "PodMonitor (the metrics port is on the pods, not on the Services)")
    spec = m.get("spec") or {}
    problems += unknown(spec, PODMONITOR_SPEC, "spec")
    endpoints = spec.get("podMetricsEndpoints") or []
    if not endpoints:
        problems.append("no podMetricsEndpoints")
    for i, e in enumerate(endpoints):
        problems += unknown(e, POD_ENDPOINT, f"podMetricsEndpoints[{i}]")
        for j, r in enumerate(e.get("relabelings") or []):
            problems += unknown(r, RELABEL, f"podMetricsEndpoints[{i}].relabelings[{j}]")
        if not any(r.get("targetLabel") == "role" and r.get("action", "replace") == "replace"
                   and r.get("sourceLabels") == ["__meta_kubernetes_pod_label_app_kubernetes_io_name"]
                   for r in e.get("relabelings") or []):
            problems.append(f"podMetricsEndpoints[{i}] does not set `role` from the pod's "
                            "app.kubernetes.io/name (the alerts group by it)")
    names = (spec.get("namespaceSelector") or {}).get("matchNames")
    if not (spec.get("namespaceSelector") or {}).get("any") and names is not None \
            and ns(m) not in names:
        problems.append(f"namespaceSelector {names} leaves out its own namespace {ns(m)}")
    selected = {}
    for w in of_kind(docs, "Deployment", "StatefulSet"):
        labels = w["spec"]["template"].get("metadata", {}).get("labels") or {}
        if ns(w) == ns(m) and selector_matches(spec.get("selector"), labels):
            selected[labels.get("app.kubernetes.io/name", name(w))] = (w, labels)
    if spec.get("selector") in (None, {}):
        problems.append("selector is empty (it would select every pod of the namespace)")
    problems += [f"does not select the pods of {s}" for s in sorted(SERVICES - set(selected))]
    problems += [f"selects {s}, which has no metrics port" for s in sorted(set(selected) - SERVICES)]
    for s, (w, labels) in sorted(selected.items()):
        ports = {p.get("name") for c in containers(w) for p in c.get("ports") or []}
        for e in endpoints:
            if e.get("port") not in ports:
                problems.append(f"{s}'s pods have no container port named {e.get('port')!r}")
        job = spec.get("jobLabel")
        if labels.get(job or "") != METRICS_JOB:
            problems.append(f"jobLabel {job!r} does not give {s}'s series job={METRICS_JOB} "
                            "(the alerts select it)")
    res.add(subj, "podmonitor", problems)


def check_prometheusrule(r: dict, res: Results, where: str) -> None:
    subj = f"{where}/PrometheusRule/{name(r)}"
    problems = []
    if r.get("apiVersion") != "monitoring.coreos.com/v1":
        problems.append(f"apiVersion {r.get('apiVersion')}, not monitoring.coreos.com/v1")
    spec = r.get("spec") or {}
    problems += unknown(spec, {"groups"}, "spec")
    groups = spec.get("groups") or []
    if not groups:
        problems.append("no rule groups")
    if len({g.get("name") for g in groups}) != len(groups):
        problems.append("rule group names repeat")
    runbook = MONITORING / "RUNBOOK.md"
    anchors = runbook_anchors(runbook.read_text()) if runbook.exists() else {}
    used_anchors = set()
    for gi, g in enumerate(groups):
        problems += unknown(g, RULE_GROUP, f"groups[{gi}]")
        for ri, rule in enumerate(g.get("rules") or []):
            at = f"groups[{gi}].rules[{ri}]"
            problems += unknown(rule, RULE, at)
            if ("alert" in rule) == ("record" in rule):
                problems.append(f"{at}: needs exactly one of alert and record")
            if not str(rule.get("expr") or "").strip():
                problems.append(f"{at}: no expr")
            if "alert" not in rule:
                continue
            a = rule["alert"]
            labels, notes = rule.get("labels") or {}, rule.get("annotations") or {}
            bad = []
            if labels.get("severity") not in SEVERITIES:
                bad.append(f"severity {labels.get('severity')!r} is not one of {sorted(SEVERITIES)}")
            bad += [f"no {k} annotation" for k in ("summary", "description")
                    if not str(notes.get(k) or "").strip()]
            url = str(notes.get("runbook_url") or "")
            mm = re.search(r"/k8s/monitoring/RUNBOOK\.md#([\w-]+)$", url)
            if not mm:
                bad.append(f"runbook_url {url!r} does not point at a section of "
                           "k8s/monitoring/RUNBOOK.md")
            elif mm.group(1) not in anchors:
                bad.append(f"RUNBOOK.md has no section #{mm.group(1)}")
            else:
                used_anchors.add(mm.group(1))
            res.add(f"{subj}/{a}", "alert", bad)
    # Sections of alerts that no longer exist mislead whoever is paged.
    stale = [h for slug, h in anchors.items()
             if slug not in used_anchors and slug not in ("game-rewards-runbook", "before-you-start")]
    res.add("k8s/monitoring/RUNBOOK.md", "runbook",
            [f"section {h!r} belongs to no alert" for h in stale])
    # One source: the overlay ships k8s/monitoring/prometheusrule.yaml unchanged, the file
    # whose spec promtool tests (k8s/monitoring/check.py).
    source = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    if spec != source.get("spec"):
        problems.append("spec differs from k8s/monitoring/prometheusrule.yaml, "
                        "the file promtool tests")
    res.add(subj, "prometheusrule", problems)


# --------------------------------------------------------------------------- build

def server_roles() -> set[str]:
    """The roles `gamectl serve` runs: the lines of its registry (gamectl/src/serve.rs,
    `registry! { Variant => roles::<role>::ROLE, <crate>; ... }`), one per row of the role
    table in contracts/src/roles/."""
    path = REPO / "gamectl/src/serve.rs"
    source = path.read_text() if path.exists() else ""
    m = re.search(r"^registry!\s*\{(.*?)^\}", source, re.S | re.M)
    return set(re.findall(r"=>\s*roles::([a-z_]+)::ROLE", m.group(1))) if m else set()


def workspace_binaries() -> set[str]:
    root = tomllib.loads((REPO / "Cargo.toml").read_text())
    bins = set()
    for member in root.get("workspace", {}).get("members", []):
        manifest = REPO / member / "Cargo.toml"
        if not manifest.exists():
            continue
        cargo = tomllib.loads(manifest.read_text())
        bins |= {b["name"] for b in cargo.get("bin", [])}
        if (REPO / member / "src/main.rs").exists():
            bins.add(cargo["package"]["name"])
    return bins


def check_build(res: Results) -> None:
    bins = workspace_binaries()
    res.add("workspace", "binary", None if "gamectl" in bins
            else f"image game-rewards/{SERVER_IMAGE} needs the binary 'gamectl' in the workspace")
    roles = server_roles()
    for svc in sorted(SERVICES):
        res.add("workspace", "role", None if svc in roles
                else f"`gamectl serve` has no role {svc!r} (gamectl/src/serve.rs registry: {sorted(roles)})")

    dockerfile = (REPO / "Dockerfile").read_text() if (REPO / "Dockerfile").exists() else ""
    problems = [f"Dockerfile lacks {what}" for what, pattern in (
        ("a rust:*-bookworm builder", r"FROM rust:\S*bookworm\S* AS builder"),
        ("`cargo build --release --locked -p gamectl`",
         r"cargo build --release --locked -p gamectl"),
        ("USER 65532", r"USER 65532"),
        ("EXPOSE 8080", r"EXPOSE 8080"),
        ("an ENTRYPOINT", r"ENTRYPOINT \["),
    ) if not re.search(pattern, dockerfile)]
    res.add("Dockerfile", "dockerfile", problems)
    ignore = (REPO / ".dockerignore").read_text().split() if (REPO / ".dockerignore").exists() else []
    res.add(".dockerignore", "dockerignore",
            [f"does not exclude {p}" for p in ("target", "data", ".git")
             if not any(x.strip("/") == p for x in ignore)])


# --------------------------------------------------------------------------- self-test

def self_test(res: Results, good: dict[str, list[dict]]) -> None:
    """The checker must report every fault planted in the fixtures."""
    broken = load_docs((K8S / "testdata" / "broken.yaml").read_text())
    found = Results()
    check_workloads(broken, found, "fixture")
    reported = {(r.subject.split("/")[2], r.code) for r in found.failures()}
    planted = {
        ("mission", "probes"), ("mission", "resources"), ("mission", "security"),
        ("mission", "pdb"), ("mission", "max-unavailable"), ("mission", "grace"),
        ("mission", "readiness-name"), ("mission", "startup"), ("mission", "config"),
        ("mission", "metrics-port"),
        ("mission", "service"), ("mission", "serviceaccount"), ("mission", "image"),
        ("wallet", "readiness-name"), ("wallet", "liveness"), ("wallet", "resources"),
        ("wallet", "security"), ("wallet", "rwo-rollout"), ("wallet", "pdb"),
        ("nats", "probes"), ("nats", "security"),
    }
    for subject, code in sorted(planted):
        res.add(f"self-test/{subject}", code, None if (subject, code) in reported else
                f"the checker did not report the planted '{code}' fault of {subject}")
    # The good parts of the fixture must not be reported.
    res.add("self-test/gift", "no-false-alarm",
            [f"{r.code}: {r.detail}" for r in found.failures() if "/gift" in r.subject])

    # Overlay-level faults, planted into a copy of a good rendering.
    if "prod" in good:
        docs = copy.deepcopy(good["prod"])
        for d in docs:
            if d["kind"] == "Deployment" and name(d) == "mission":
                c = d["spec"]["template"]["spec"]["containers"][0]
                c["env"] = [{"name": "DATABASE_URL", "value": "postgres://u:secret@db/mission"}]
                d["spec"]["replicas"] = 1
            if d["kind"] == "NetworkPolicy" and name(d) == "default-deny-all":
                d["spec"]["ingress"] = [{}]  # allow all ingress
                d["spec"]["egress"] = [{}]
            if d["kind"] == "Deployment" and name(d) == "wallet":
                for v in d["spec"]["template"]["spec"]["volumes"]:
                    if (v.get("secret") or {}).get("secretName") == "nats-wallet":
                        v["secret"]["secretName"] = "nats-reward"  # another service's key
                    if v["name"] == "service-account":
                        v.pop("secret")
                        v["emptyDir"] = {}
            if d["kind"] == "Deployment" and name(d) == "mypage":
                for c in d["spec"]["template"]["spec"]["containers"]:
                    c["env"] = [e for e in c.get("env") or [] if e["name"] != "NATS_NKEY_SEED_FILE"]
            if d["kind"] == "ConfigMap" and "nats.conf" in (d.get("data") or {}):
                d["data"]["nats.conf"] = d["data"]["nats.conf"].replace("{", '{"no_auth_user": "x",', 1)
        found = Results()
        check_overlay(docs, found, "fixture", "prod")
        check_workloads(docs, found, "fixture")
        reported = {(r.subject, r.code) for r in found.failures()}
        for subject, code in (("fixture/Deployment/mission", "database"),
                              ("fixture/Deployment/wallet/wallet", "secret-files"),
                              ("fixture/Deployment/mission", "replicas"),
                              ("fixture", "netpol-default-deny"),
                              ("fixture/network", "netpol-reach"),
                              ("fixture/Deployment/wallet", "bus-credentials"),
                              ("fixture/Deployment/mypage", "bus-credentials"),
                              ("fixture/StatefulSet/nats", "bus-auth")):
            res.add(f"self-test/{subject}", code, None if (subject, code) in reported else
                    f"the checker did not report the planted '{code}' fault")
        self_test_monitoring(res, good["prod"])


def self_test_monitoring(res: Results, prod: list[dict]) -> None:
    """Faults of the monitoring, each planted alone into a copy of the prod rendering."""
    def obj(docs: list[dict], kind: str, n: str | None = None) -> dict:
        return next(d for d in docs if d["kind"] == kind and (n is None or name(d) == n))

    def no_metrics_port(docs):
        c = obj(docs, "Deployment", "mission")["spec"]["template"]["spec"]["containers"][0]
        c["ports"] = [p for p in c["ports"] if p["name"] != "metrics"]

    def selects_everything(docs):
        obj(docs, "PodMonitor")["spec"]["selector"] = {}

    def misspelt_field(docs):
        pm = obj(docs, "PodMonitor")["spec"]
        pm["podMetricEndpoints"] = pm.pop("podMetricsEndpoints")

    def alert_without_runbook(docs):
        rules = [r for g in obj(docs, "PrometheusRule")["spec"]["groups"] for r in g["rules"]]
        a = next(r for r in rules if r.get("alert") == "BreakerOpen")
        del a["annotations"]["description"]
        a["annotations"]["runbook_url"] = a["annotations"]["runbook_url"].split("#")[0] + "#nowhere"

    def stale_dashboard(docs):
        c = next(d for d in docs if d["kind"] == "ConfigMap"
                 and (d["metadata"].get("labels") or {}).get("grafana_dashboard") == "1")
        c["data"]["game-rewards.json"] = json.dumps({"title": "old"})

    def metrics_open_to_all(docs):
        obj(docs, "NetworkPolicy", "metrics-from-prometheus")["spec"]["ingress"][0].pop("from")

    def no_podmonitor(docs):
        docs.remove(obj(docs, "PodMonitor"))

    def auth_open_to_every_pod(docs):
        # One port for everything again: auth's public port open to every pod of ours.
        ingress = obj(docs, "NetworkPolicy", "auth-public-from-gateway")["spec"]["ingress"][0]
        ingress["from"][0]["podSelector"] = {}
        egress = obj(docs, "NetworkPolicy", "services-to-auth-and-nats")["spec"]["egress"][0]
        egress["ports"][0]["port"] = 8080

    def jwks_from_the_public_port(docs):
        cm = obj(docs, "ConfigMap", next(name(d) for d in docs if d["kind"] == "ConfigMap"
                                         and "JWKS_URLS" in (d.get("data") or {})))
        cm["data"]["JWKS_URLS"] = cm["data"]["JWKS_URLS"].replace(":8081/", ":8080/")

    pm, rule = "fixture/PodMonitor/game-rewards", "fixture/PrometheusRule/game-rewards"
    for fault, plant, expected in (
        ("no metrics port", no_metrics_port,
         [("fixture/Deployment/mission/mission", "metrics-port"), (pm, "podmonitor")]),
        ("PodMonitor selects everything", selects_everything, [(pm, "podmonitor")]),
        ("misspelt PodMonitor field", misspelt_field, [(pm, "podmonitor")]),
        ("alert without description and runbook section", alert_without_runbook,
         [(f"{rule}/BreakerOpen", "alert"), (rule, "prometheusrule")]),
        ("stale dashboard ConfigMap", stale_dashboard,
         [("fixture/ConfigMap/game-rewards-grafana-dashboard", "dashboard")]),
        ("metrics port open to all", metrics_open_to_all, [("fixture/network", "netpol-reach")]),
        ("no PodMonitor", no_podmonitor, [("fixture", "monitoring")]),
        ("auth's public port open to every pod", auth_open_to_every_pod,
         [("fixture/network", "netpol-reach")]),
        ("JWKS fetched from auth's public port", jwks_from_the_public_port,
         [("fixture/Deployment/mission", "auth-ports")]),
    ):
        docs = copy.deepcopy(prod)
        plant(docs)
        found = Results()
        check_workloads(docs, found, "fixture")
        check_overlay(docs, found, "fixture", "prod")
        reported = {(r.subject, r.code) for r in found.failures()}
        for subject, code in expected:
            res.add(f"self-test/{fault}", code, None if (subject, code) in reported else
                    f"the checker did not report the planted fault ({subject} [{code}])")


# --------------------------------------------------------------------------- main

def main(argv: list[str]) -> int:
    summary = None
    if "--summary" in argv:
        i = argv.index("--summary")
        summary = argv[i + 1]
        del argv[i:i + 2]
    rendered: dict[str, list[dict]] = {}
    if argv:
        for arg in argv:
            overlay, _, path = arg.partition("=")
            rendered[overlay] = load_docs(Path(path).read_text())
    else:
        for overlay in sorted(p.name for p in (K8S / "overlays").iterdir() if p.is_dir()):
            rendered[overlay] = render(K8S / "overlays" / overlay)

    res = Results()
    for overlay, docs in rendered.items():
        check_workloads(docs, res, overlay)
        check_overlay(docs, res, overlay, "dev" if overlay == "dev" else "prod")
    check_build(res)
    self_test(res, rendered)

    for r in res.items:
        if not r.ok:
            print(f"FAIL {r.subject} [{r.code}]: {r.detail}")
    passed, failed = len(res.items) - len(res.failures()), len(res.failures())
    print(f"policy: {passed} checks ok, {failed} failing")
    if summary:
        Path(summary).write_text(f"{passed} {failed}\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
