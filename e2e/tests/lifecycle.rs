//! Mooring as a user meets it: `helm install`, the controllers running as the chart's own
//! ServiceAccounts, then `kubectl` only: apply, wait, follow commits, prune, restore drift,
//! `helm upgrade` to narrower apply rights, delete with each deletionPolicy, `helm uninstall`.

use std::time::Instant;

use mooring_e2e::cluster::{KUSTOMIZE_SERVICE_ACCOUNT, SOURCE_SERVICE_ACCOUNT};
use mooring_e2e::{Cluster, NAMESPACE, main_revision, sample_repo};
use mooring_testkit::examples::example_manifests;
use mooring_testkit::git::GitServer;

/// Where the example Kustomization applies the sample (its `targetNamespace`).
const APP: &str = "default";

/// Prints how long each step took, so slow steps show in the test output.
struct Timer {
    start: Instant,
    last: Instant,
}

impl Timer {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            last: Instant::now(),
        }
    }

    fn step(&mut self, what: &str) {
        eprintln!(
            "[e2e {:6.1}s, step {:5.1}s] {what}",
            self.start.elapsed().as_secs_f64(),
            self.last.elapsed().as_secs_f64()
        );
        self.last = Instant::now();
    }
}

/// A Kustomization of `./extra` that leaves its objects behind when deleted.
const ORPHAN_KUSTOMIZATION: &str = "apiVersion: kustomize.mooring.dev/v1
kind: Kustomization
metadata:
  name: kept
spec:
  sourceRef:
    kind: GitRepository
    name: sample
  path: ./extra
  prune: true
  deletionPolicy: Orphan
  interval: 5m
  targetNamespace: default
";

const KEPT_CONFIG_MAP: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: kept
data:
  note: stays after its Kustomization is deleted
";

/// The sample's kustomization.yaml with `resources` replaced.
fn sample_kustomization(resources: &[&str]) -> String {
    let list: String = resources.iter().map(|r| format!("  - {r}\n")).collect();
    format!("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n{list}")
}

fn greeting_config_map(greeting: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: sample-config\ndata:\n  greeting: {greeting}\n"
    )
}

/// Apply rights narrowed to what the sample holds (the chart's `rbac.rules`).
const NARROW_RULES: &str = r#"kustomizeController.rbac.rules=[{"apiGroups":[""],"resources":["configmaps","serviceaccounts","services"],"verbs":["get","list","watch","create","update","patch","delete"]},{"apiGroups":["rbac.authorization.k8s.io"],"resources":["roles"],"verbs":["get","list","watch","create","update","patch","delete"]}]"#;

/// `kubectl auth can-i <args>` with `kubeconfig`: whether the answer is yes.
fn can(cluster: &Cluster, kubeconfig: &std::path::Path, args: &[&str]) -> bool {
    let mut all = vec!["auth", "can-i"];
    all.extend_from_slice(args);
    // `can-i` exits 1 for "no".
    cluster.kubectl_as(kubeconfig, &all).is_ok()
}

#[test]
fn helm_install_then_kubectl_drives_the_controllers() {
    let mut timer = Timer::new();
    let mut cluster = Cluster::start().expect("control plane");
    timer.step("control plane up (etcd, kube-apiserver, kube-controller-manager)");

    // The chart: CRDs, ServiceAccounts, RBAC, Service. Its Deployments (left out: no kubelet)
    // are still checked by the API server.
    cluster.must(cluster.install_chart(&[]), "helm install");
    cluster.must(
        cluster.wait(&[
            "--for=condition=Established",
            "crd/gitrepositories.source.mooring.dev",
            "crd/kustomizations.kustomize.mooring.dev",
        ]),
        "the chart's CRDs",
    );
    let chart = mooring_e2e::cluster::chart_dir();
    let rendered = cluster.must(
        cluster.helm(&["template", "mooring", &chart, "--namespace", NAMESPACE]),
        "helm template with the Deployments",
    );
    let rendered = cluster.must(cluster.write_file("rendered.yaml", &rendered), "write");
    let rendered = rendered.display().to_string();
    cluster.must(
        cluster.kubectl(&[
            "label",
            "namespace",
            NAMESPACE,
            "pod-security.kubernetes.io/warn=restricted",
        ]),
        "label the namespace for the restricted Pod Security profile",
    );
    let warnings = cluster.must(
        cluster.kubectl_warnings(&[
            "apply",
            "--dry-run=server",
            "-n",
            NAMESPACE,
            "-f",
            &rendered,
        ]),
        "the full chart passes server-side validation",
    );
    assert!(
        !warnings.contains("PodSecurity"),
        "the Deployments break the restricted profile:\n{warnings}"
    );
    timer.step("helm install; the full chart validated by the API server, restricted Pod Security");

    // Least privilege, as the ServiceAccounts themselves see it.
    let source = cluster.must(
        cluster.service_account_kubeconfig(SOURCE_SERVICE_ACCOUNT),
        "token for the source-controller",
    );
    let who = cluster.must(
        cluster.kubectl_as(
            &source,
            &[
                "auth",
                "whoami",
                "-o",
                "jsonpath={.status.userInfo.username}",
            ],
        ),
        "whoami",
    );
    assert_eq!(
        who,
        format!("system:serviceaccount:{NAMESPACE}:{SOURCE_SERVICE_ACCOUNT}")
    );
    assert!(can(
        &cluster,
        &source,
        &["watch", "gitrepositories.source.mooring.dev", "-A"]
    ));
    assert!(can(
        &cluster,
        &source,
        &[
            "patch",
            "gitrepositories.source.mooring.dev",
            "--subresource=status",
            "-n",
            APP
        ]
    ));
    assert!(can(&cluster, &source, &["get", "secrets", "-n", APP]));
    assert!(can(
        &cluster,
        &source,
        &["patch", "leases", "-n", NAMESPACE]
    ));
    assert!(
        !can(&cluster, &source, &["list", "secrets", "-n", APP]),
        "the source side only gets named Secrets"
    );
    assert!(
        !can(&cluster, &source, &["create", "configmaps", "-n", APP]),
        "the source side applies nothing"
    );
    assert!(
        !can(&cluster, &source, &["patch", "leases", "-n", APP]),
        "Leases only in its own namespace"
    );
    assert!(
        !can(&cluster, &source, &["patch", "customresourcedefinitions"]),
        "no CRD writes"
    );
    timer.step("the ServiceAccounts' rights checked with kubectl auth can-i");

    // The controller binaries, authenticated with TokenRequest tokens, with leader election.
    let started = cluster.start_controllers().map(|c| {
        [
            (SOURCE_SERVICE_ACCOUNT, c.source_identity().to_string()),
            (
                KUSTOMIZE_SERVICE_ACCOUNT,
                c.kustomize_identity().to_string(),
            ),
        ]
    });
    // The Leases are named after the controllers, which the chart names the same way.
    let identities = cluster.must(started, "start the controllers");
    for (lease, identity) in &identities {
        let lease = format!("lease/{lease}");
        cluster.must(
            cluster.wait(&["--for=create", "-n", NAMESPACE, &lease]),
            "Lease created",
        );
        let holder = format!("--for=jsonpath={{.spec.holderIdentity}}={identity}");
        cluster.must(
            cluster.wait(&[&holder, "-n", NAMESPACE, &lease]),
            "Lease held",
        );
    }
    timer.step("controllers lead through the chart's Lease RBAC");

    // The examples, pointed at a local git server, plus an Orphan Kustomization.
    let server = GitServer::start().expect("git server");
    let (repo, _) = sample_repo(&server, "sample").expect("sample repository");
    let first = repo
        .commit(&[("extra/kept.yaml", KEPT_CONFIG_MAP)], "an object to keep")
        .expect("commit");
    let manifests = example_manifests(repo.http_url()).expect("examples");
    let manifests = cluster.must(cluster.write_file("examples.json", &manifests), "write");
    let kept = cluster.must(
        cluster.write_file("kept.yaml", ORPHAN_KUSTOMIZATION),
        "write",
    );
    for file in [&manifests, &kept] {
        let file = file.display().to_string();
        cluster.must(
            cluster.kubectl(&["apply", "-n", APP, "-f", &file]),
            "kubectl apply",
        );
    }
    cluster.must(
        cluster.wait(&[
            "--for=condition=Ready",
            "-n",
            APP,
            "gitrepository/sample",
            "kustomization/sample",
            "kustomization/kept",
        ]),
        "the examples become Ready",
    );
    let revision = main_revision(&first);
    let listing = cluster.must(
        cluster.kubectl(&["get", "gitrepo,ks", "-n", APP]),
        "kubectl get",
    );
    for name in [
        "gitrepository.source.mooring.dev/sample",
        "kustomization.kustomize.mooring.dev/sample",
    ] {
        let line = listing
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_default();
        assert!(
            line.contains("True") && line.contains(&revision),
            "{name}:\n{listing}"
        );
    }
    cluster.must(
        cluster.kubectl(&[
            "get",
            "-n",
            APP,
            "configmap/sample-config",
            "serviceaccount/sample",
            "service/sample",
            "role/sample-config-reader",
            "configmap/kept",
        ]),
        "the sample's objects exist",
    );
    timer.step("examples applied; kubectl get shows Ready and the revision");

    // A new commit is applied.
    let second = repo
        .commit(
            &[("deploy/configmap.yaml", &greeting_config_map("bonjour"))],
            "greet in French",
        )
        .expect("commit");
    cluster.must(
        cluster.request_reconcile("gitrepository/sample", APP, "second"),
        "annotate",
    );
    let applied = format!(
        "--for=jsonpath={{.status.lastAppliedRevision}}={}",
        main_revision(&second)
    );
    cluster.must(
        cluster.wait(&[&applied, "-n", APP, "kustomization/sample"]),
        "second commit applied",
    );
    let greeting = cluster.must(
        cluster.kubectl(&[
            "get",
            "-n",
            APP,
            "configmap/sample-config",
            "-o",
            "jsonpath={.data.greeting}",
        ]),
        "read the ConfigMap",
    );
    assert_eq!(greeting, "bonjour");
    timer.step("a pushed commit applied");

    // A removed file is pruned: first stop listing it, then remove it (each commit builds).
    repo.commit(
        &[(
            "deploy/kustomization.yaml",
            &sample_kustomization(&["configmap.yaml", "serviceaccount.yaml", "service.yaml"]),
        )],
        "stop listing the Role",
    )
    .expect("commit");
    let third = repo
        .remove(&["deploy/role.yaml"], "remove the Role")
        .expect("commit");
    cluster.must(
        cluster.request_reconcile("gitrepository/sample", APP, "third"),
        "annotate",
    );
    let applied = format!(
        "--for=jsonpath={{.status.lastAppliedRevision}}={}",
        main_revision(&third)
    );
    cluster.must(
        cluster.wait(&[&applied, "-n", APP, "kustomization/sample"]),
        "third commit applied",
    );
    cluster.must(
        cluster.wait(&["--for=delete", "-n", APP, "role/sample-config-reader"]),
        "Role pruned",
    );
    timer.step("a removed file pruned");

    // A managed field changed by hand is put back.
    cluster.must(
        cluster.kubectl(&[
            "patch",
            "-n",
            APP,
            "configmap/sample-config",
            "--type=merge",
            "-p",
            r#"{"data":{"greeting":"edited"}}"#,
        ]),
        "kubectl patch",
    );
    cluster.must(
        cluster.wait(&[
            "--for=jsonpath={.data.greeting}=bonjour",
            "-n",
            APP,
            "configmap/sample-config",
        ]),
        "drift restored",
    );
    timer.step("a field changed with kubectl patch restored");

    // helm upgrade: narrow the kustomize side's apply rights from cluster-admin to a list.
    cluster.must(
        cluster.upgrade_chart(&[
            "--set",
            "kustomizeController.rbac.clusterAdmin=false",
            "--set-json",
            NARROW_RULES,
        ]),
        "helm upgrade",
    );
    let kustomize = cluster.must(
        cluster.service_account_kubeconfig(KUSTOMIZE_SERVICE_ACCOUNT),
        "token for the kustomize-controller",
    );
    assert!(can(
        &cluster,
        &kustomize,
        &["patch", "configmaps", "-n", APP]
    ));
    assert!(
        !can(&cluster, &kustomize, &["create", "secrets", "-n", APP]),
        "no longer cluster-admin"
    );
    // Still enough for the sample ...
    let fourth = repo
        .commit(
            &[("deploy/configmap.yaml", &greeting_config_map("hallo"))],
            "greet in German",
        )
        .expect("commit");
    cluster.must(
        cluster.request_reconcile("gitrepository/sample", APP, "fourth"),
        "annotate",
    );
    let applied = format!(
        "--for=jsonpath={{.status.lastAppliedRevision}}={}",
        main_revision(&fourth)
    );
    cluster.must(
        cluster.wait(&[&applied, "-n", APP, "kustomization/sample"]),
        "applied with narrow rights",
    );
    // ... but a Secret is refused, and said so in Ready.
    let secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: sample-secret\nstringData:\n  key: value\n";
    let fifth = repo
        .commit(
            &[
                ("deploy/secret.yaml", secret),
                (
                    "deploy/kustomization.yaml",
                    &sample_kustomization(&[
                        "configmap.yaml",
                        "serviceaccount.yaml",
                        "service.yaml",
                        "secret.yaml",
                    ]),
                ),
            ],
            "add a Secret",
        )
        .expect("commit");
    cluster.must(
        cluster.request_reconcile("gitrepository/sample", APP, "fifth"),
        "annotate",
    );
    let attempted = format!(
        "--for=jsonpath={{.status.lastAttemptedRevision}}={}",
        main_revision(&fifth)
    );
    cluster.must(
        cluster.wait(&[&attempted, "-n", APP, "kustomization/sample"]),
        "fifth commit attempted",
    );
    cluster.must(
        cluster.wait(&[
            "--for=condition=Ready=false",
            "-n",
            APP,
            "kustomization/sample",
        ]),
        "not Ready",
    );
    let message = cluster.must(
        cluster.kubectl(&[
            "get",
            "-n",
            APP,
            "kustomization/sample",
            "-o",
            r#"jsonpath={.status.conditions[?(@.type=="Ready")].message}"#,
        ]),
        "Ready message",
    );
    assert!(
        message.to_lowercase().contains("forbidden") && message.contains("sample-secret"),
        "{message}"
    );
    repo.commit(
        &[(
            "deploy/kustomization.yaml",
            &sample_kustomization(&["configmap.yaml", "serviceaccount.yaml", "service.yaml"]),
        )],
        "stop listing the Secret",
    )
    .expect("commit");
    let sixth = repo
        .remove(&["deploy/secret.yaml"], "drop the Secret")
        .expect("commit");
    cluster.must(
        cluster.request_reconcile("gitrepository/sample", APP, "sixth"),
        "annotate",
    );
    let applied = format!(
        "--for=jsonpath={{.status.lastAppliedRevision}}={}",
        main_revision(&sixth)
    );
    cluster.must(
        cluster.wait(&[&applied, "-n", APP, "kustomization/sample"]),
        "back to Ready",
    );
    cluster.must(
        cluster.wait(&["--for=condition=Ready", "-n", APP, "kustomization/sample"]),
        "Ready",
    );
    timer.step("helm upgrade to narrow apply rights: enough for the sample, a Secret refused");

    // Deleting the Kustomizations: MirrorPrune with prune deletes, Orphan keeps.
    cluster.must(
        cluster.kubectl(&[
            "delete",
            "-n",
            APP,
            "kustomization/sample",
            "kustomization/kept",
            "--timeout=60s",
        ]),
        "kubectl delete (waits for the finalizer)",
    );
    cluster.must(
        cluster.wait(&[
            "--for=delete",
            "-n",
            APP,
            "configmap/sample-config",
            "serviceaccount/sample",
            "service/sample",
        ]),
        "MirrorPrune deleted the sample",
    );
    cluster.must(
        cluster.kubectl(&["get", "-n", APP, "configmap/kept"]),
        "Orphan kept its object",
    );
    timer.step("Kustomizations deleted: MirrorPrune pruned, Orphan kept");

    // Graceful stop releases the Leases; helm uninstall removes the chart's objects but not the
    // CRDs (Helm never deletes them) nor the users' objects.
    cluster.stop_controllers();
    for (lease, _) in &identities {
        let holder = cluster.must(
            cluster.kubectl(&[
                "get",
                "-n",
                NAMESPACE,
                "lease",
                lease,
                "-o",
                "jsonpath={.spec.holderIdentity}",
            ]),
            "read the Lease",
        );
        assert_eq!(holder, "", "{lease} released on SIGTERM");
    }
    cluster.must(
        cluster.helm(&["uninstall", "mooring", "--namespace", NAMESPACE, "--wait"]),
        "helm uninstall",
    );
    let left = cluster.must(
        cluster.kubectl(&[
            "get",
            "serviceaccounts,roles,rolebindings,services",
            "-n",
            NAMESPACE,
            "-l",
            "app.kubernetes.io/part-of=mooring",
            "-o",
            "name",
        ]),
        "list the chart's namespaced objects",
    );
    assert_eq!(left.trim(), "", "helm uninstall left: {left}");
    let cluster_wide = cluster.must(
        cluster.kubectl(&[
            "get",
            "clusterroles,clusterrolebindings",
            "-l",
            "app.kubernetes.io/part-of=mooring",
            "-o",
            "name",
        ]),
        "list the chart's cluster-wide objects",
    );
    assert_eq!(
        cluster_wide.trim(),
        "",
        "helm uninstall left: {cluster_wide}"
    );
    cluster.must(
        cluster.kubectl(&[
            "get",
            "crd/gitrepositories.source.mooring.dev",
            "-n",
            APP,
            "gitrepository/sample",
        ]),
        "CRDs and GitRepositories stay",
    );
    timer.step("Leases released; helm uninstall");
}
