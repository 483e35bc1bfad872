//! Mooring as a user meets it: `helm install` with the defaults (tenant-safe), the controllers
//! running as the chart's own ServiceAccounts with the flags its Deployments pass, a tenant
//! giving its namespace's ServiceAccount rights, then `kubectl` only: apply, wait, follow
//! commits, prune, restore drift, refuse what the tenant may not do, `helm upgrade` to
//! cluster-admin mode with narrower apply rights, delete with each deletionPolicy, `helm
//! uninstall`.

use std::collections::{BTreeMap, BTreeSet};

use mooring_e2e::cluster::{KUSTOMIZE_SERVICE_ACCOUNT, SOURCE_SERVICE_ACCOUNT, chart_dir};
use mooring_e2e::{Cluster, NAMESPACE, Timer, main_revision, sample_repo};
use mooring_testkit::controllers::{KUSTOMIZE_CONTROLLER, SOURCE_CONTROLLER};
use mooring_testkit::examples::example_manifests;
use mooring_testkit::git::{Auth, GitServer, Repo};
use mooring_testkit::tools::workspace_root;

/// Where the example Kustomization applies the sample (its `targetNamespace`), and the tenant
/// whose Kustomizations these are.
const APP: &str = "default";

/// The tenant's ServiceAccount that tenant-safe mode impersonates for Kustomizations naming
/// none (the chart's `tenancy.defaultServiceAccount`).
const TENANT_SERVICE_ACCOUNT: &str = "default";

/// Objects that a tenant with `admin` in [`APP`] may not create: one in another namespace, one
/// cluster-scoped (that would make the tenant cluster-admin).
const ESCAPES: [(&str, &str, &str); 2] = [
    (
        "other-namespace",
        "configmap/escape",
        "apiVersion: v1
kind: ConfigMap
metadata:
  name: escape
  namespace: kube-system
data:
  note: written by a tenant of another namespace
",
    ),
    (
        "cluster-scoped",
        "clusterrolebinding/escape",
        "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: escape
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: cluster-admin
subjects:
  - kind: ServiceAccount
    name: default
    namespace: default
",
    ),
];

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

const SECRET: &str = "apiVersion: v1
kind: Secret
metadata:
  name: sample-secret
stringData:
  key: value
";

/// Apply rights narrowed to what the sample holds (the chart's `rbac.rules`).
const NARROW_RULES: &str = r#"kustomizeController.rbac.rules=[
  {"apiGroups":[""],"resources":["configmaps","serviceaccounts","services"],
   "verbs":["get","list","watch","create","update","patch","delete"]},
  {"apiGroups":["apps"],"resources":["deployments"],
   "verbs":["get","list","watch","create","update","patch","delete"]},
  {"apiGroups":["rbac.authorization.k8s.io"],"resources":["roles"],
   "verbs":["get","list","watch","create","update","patch","delete"]}]"#;

/// The sample's kustomization.yaml listing `resources`.
fn sample_kustomization(resources: &[&str]) -> String {
    let list: String = resources.iter().map(|r| format!("  - {r}\n")).collect();
    format!("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n{list}")
}

fn greeting_config_map(greeting: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: sample-config\ndata:\n  greeting: {greeting}\n"
    )
}

/// Asks for a fetch now (as `flux reconcile` would) and waits until the Kustomization has
/// attempted `sha`; with `applied`, until it has applied it.
fn reconcile_to(cluster: &Cluster, sha: &str, applied: bool, what: &str) {
    cluster.must(
        cluster.request_reconcile("gitrepository/sample", APP, sha),
        "kubectl annotate",
    );
    let field = if applied {
        "lastAppliedRevision"
    } else {
        "lastAttemptedRevision"
    };
    let condition = format!("--for=jsonpath={{.status.{field}}}={}", main_revision(sha));
    cluster.must(
        cluster.wait(&[&condition, "-n", APP, "kustomization/sample"]),
        what,
    );
}

#[test]
fn helm_install_then_kubectl_drives_the_controllers() {
    let mut timer = Timer::new();
    let mut cluster = Cluster::start().expect("control plane");
    timer.step("control plane up (etcd, kube-apiserver, kube-controller-manager)");
    install_chart(&cluster);
    timer.step("helm install; the full chart validated by the API server, restricted Pod Security");
    service_accounts_have_least_privilege(&cluster);
    timer.step("both controllers' rights (tenant-safe) checked with kubectl auth can-i");
    let leases = start_controllers(&mut cluster);
    timer.step("controllers lead through the chart's Lease RBAC, with the chart's flags");
    cluster.must(
        cluster.grant_namespace_admin(APP, TENANT_SERVICE_ACCOUNT),
        "the tenant binds admin to its ServiceAccount",
    );
    let server = GitServer::start().expect("git server");
    let repo = apply_examples(&cluster, &server);
    timer.step("examples applied as the tenant's ServiceAccount; kubectl get shows Ready");
    tenants_stay_in_their_namespace(&cluster, &server);
    timer.step("a tenant's objects in another namespace and cluster-wide refused");
    commits_are_applied_and_removed_files_pruned(&cluster, &repo);
    timer.step("a pushed commit applied, a removed file pruned");
    drift_is_restored(&cluster);
    timer.step("a field changed with kubectl patch restored");
    documented_metrics_are_exported(&cluster);
    timer.step("every metric docs/metrics.md names is exported with its labels, and no other");
    upgrade_to_narrow_apply_rights(&mut cluster, &repo);
    timer.step(
        "helm upgrade to cluster-admin mode, narrow rules: the sample applies, a Secret refused",
    );
    deletion_policies_are_honoured(&cluster);
    timer.step("Kustomizations deleted: MirrorPrune pruned, Orphan kept");
    stop_and_uninstall(&mut cluster, &leases);
    timer.step("Leases released on SIGTERM; helm uninstall");
}

/// `helm install`, and its Deployments (left out: no kubelet runs here) still checked by the
/// API server, under the restricted Pod Security profile.
fn install_chart(cluster: &Cluster) {
    cluster.must(cluster.install_chart(&[]), "helm install");
    cluster.must(
        cluster.wait(&[
            "--for=condition=Established",
            "crd/gitrepositories.source.mooring.dev",
            "crd/kustomizations.kustomize.mooring.dev",
        ]),
        "the chart's CRDs",
    );
    let chart = chart_dir();
    let rendered = cluster.must(
        cluster.helm(&["template", "mooring", &chart, "--namespace", NAMESPACE]),
        "helm template with the Deployments",
    );
    let rendered = cluster.must(cluster.write_file("rendered.yaml", &rendered), "write");
    let rendered = rendered.display().to_string();
    let label = "pod-security.kubernetes.io/warn=restricted";
    cluster.must(
        cluster.kubectl(&["label", "namespace", NAMESPACE, label]),
        "label the namespace for the restricted Pod Security profile",
    );
    let dry_run = [
        "apply",
        "--dry-run=server",
        "-n",
        NAMESPACE,
        "-f",
        &rendered,
    ];
    let warnings = cluster.must(
        cluster.kubectl_warnings(&dry_run),
        "the full chart passes server-side validation",
    );
    assert!(
        !warnings.contains("PodSecurity"),
        "the Deployments break the restricted profile:\n{warnings}"
    );
}

/// Both controllers, as their own tokens see them in tenant-safe mode: what they need and
/// nothing more.
fn service_accounts_have_least_privilege(cluster: &Cluster) {
    let source = cluster.must(
        cluster.service_account_kubeconfig(SOURCE_SERVICE_ACCOUNT),
        "token for the source-controller",
    );
    let who = [
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ];
    let who = cluster.must(cluster.kubectl_as(&source, &who), "whoami");
    assert_eq!(
        who,
        format!("system:serviceaccount:{NAMESPACE}:{SOURCE_SERVICE_ACCOUNT}")
    );
    let repos = "gitrepositories.source.mooring.dev";
    let can = |args: &[&str]| cluster.can_i(&source, args);
    assert!(can(&["watch", repos, "-A"]));
    assert!(can(&["patch", repos, "--subresource=status", "-n", APP]));
    assert!(can(&["get", "secrets", "-n", APP]));
    assert!(can(&["patch", "leases", "-n", NAMESPACE]));
    // The Secrets of spec.verify are watched (metadata only) so that a key change is
    // verified at once; writing them is still not allowed.
    assert!(
        can(&["watch", "secrets", "-n", APP]),
        "verification keys are watched"
    );
    assert!(
        !can(&["update", "secrets", "-n", APP]),
        "Secrets are read-only"
    );
    assert!(
        !can(&["create", "configmaps", "-n", APP]),
        "applies nothing"
    );
    assert!(
        !can(&["patch", "leases", "-n", APP]),
        "Leases only in its namespace"
    );
    assert!(
        !can(&["patch", "customresourcedefinitions"]),
        "no CRD writes"
    );

    // The kustomize-controller applies every Kustomization as a ServiceAccount of its
    // namespace: its own token reads, watches, writes status and impersonates, and that is all.
    let kustomize = cluster.must(
        cluster.service_account_kubeconfig(KUSTOMIZE_SERVICE_ACCOUNT),
        "token for the kustomize-controller",
    );
    let can = |args: &[&str]| cluster.can_i(&kustomize, args);
    let kustomizations = "kustomizations.kustomize.mooring.dev";
    assert!(can(&["watch", kustomizations, "-A"]));
    assert!(can(&[
        "patch",
        kustomizations,
        "--subresource=status",
        "-n",
        APP
    ]));
    assert!(can(&["watch", repos, "-A"]));
    assert!(can(&["impersonate", "serviceaccounts", "-n", APP]));
    assert!(can(&["create", "events.events.k8s.io", "-n", APP]));
    assert!(can(&["patch", "leases", "-n", NAMESPACE]));
    for kind in ["configmaps", "deployments.apps", "clusterrolebindings"] {
        assert!(can(&["list", kind, "-A"]), "the live view lists {kind}");
        assert!(can(&["watch", kind, "-A"]), "the live view watches {kind}");
    }
    for verb in ["create", "patch", "delete"] {
        assert!(!can(&[verb, "configmaps", "-n", APP]), "{verb} configmaps");
    }
    assert!(!can(&["get", "secrets", "-n", APP]), "no get on Secrets");
    assert!(
        !can(&["get", "configmaps", "-n", APP]),
        "no get on ConfigMaps"
    );
    assert!(
        !can(&["create", "clusterrolebindings"]),
        "no cluster writes"
    );
    assert!(!can(&["impersonate", "users"]), "only ServiceAccounts");
    assert!(
        !can(&["impersonate", "groups"]),
        "no groups (system:masters)"
    );
    assert!(
        !can(&["patch", "customresourcedefinitions"]),
        "no CRD writes"
    );
}

/// Starts both binaries with TokenRequest tokens of the chart's ServiceAccounts and leader
/// election on, and waits until each holds its Lease. Returns (Lease, holder) pairs.
fn start_controllers(cluster: &mut Cluster) -> [(&'static str, String); 2] {
    let flags = cluster.must(cluster.chart_kustomize_flags(), "the chart's flags");
    for flag in [
        "--default-service-account=default",
        "--allow-cross-namespace-refs=false",
    ] {
        assert!(flags.iter().any(|f| f == flag), "{flag} not in {flags:?}");
    }
    // The Leases are named after the controllers, as are the chart's ServiceAccounts.
    let started = cluster.start_controllers().map(|c| {
        [
            (SOURCE_SERVICE_ACCOUNT, c.source_identity().to_string()),
            (
                KUSTOMIZE_SERVICE_ACCOUNT,
                c.kustomize_identity().to_string(),
            ),
        ]
    });
    let leases = cluster.must(started, "start the controllers");
    for (lease, identity) in &leases {
        let lease = format!("lease/{lease}");
        let created = cluster.wait(&["--for=create", "-n", NAMESPACE, &lease]);
        cluster.must(created, "Lease created");
        let holder = format!("--for=jsonpath={{.spec.holderIdentity}}={identity}");
        cluster.must(
            cluster.wait(&[&holder, "-n", NAMESPACE, &lease]),
            "Lease held",
        );
    }
    leases
}

/// The examples pointed at a local git server, plus a Kustomization with `deletionPolicy:
/// Orphan`; `kubectl get` answers "what is applied, and is it healthy".
fn apply_examples(cluster: &Cluster, server: &GitServer) -> Repo {
    let (repo, _) = sample_repo(server, "sample").expect("sample repository");
    let head = repo
        .commit(&[("extra/kept.yaml", KEPT_CONFIG_MAP)], "an object to keep")
        .expect("commit");
    let manifests = example_manifests(repo.http_url()).expect("examples");
    cluster.must(
        cluster.apply("examples.json", &manifests, APP),
        "apply the examples",
    );
    cluster.must(
        cluster.apply("kept.yaml", ORPHAN_KUSTOMIZATION, APP),
        "apply kept",
    );
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
    let revision = main_revision(&head);
    let listing = cluster.must(cluster.kubectl(&["get", "gitrepo,ks", "-n", APP]), "get");
    for name in [
        "gitrepository.source.mooring.dev/sample",
        "kustomization.kustomize.mooring.dev/sample",
    ] {
        let line = listing.lines().find(|l| l.starts_with(name)).unwrap_or("");
        assert!(
            line.contains("True") && line.contains(&revision),
            "{name}:\n{listing}"
        );
    }
    let objects = [
        "configmap/sample-config",
        "serviceaccount/sample",
        "service/sample",
        "deployment/sample",
        "role/sample-config-reader",
        "configmap/kept",
    ];
    let mut get = vec!["get", "-n", APP];
    get.extend_from_slice(&objects);
    cluster.must(cluster.kubectl(&get), "the sample's objects exist");
    repo
}

/// The message of a Kustomization's Ready condition.
fn ready_message(cluster: &Cluster, kustomization: &str) -> String {
    let path = r#"{.status.conditions[?(@.type=="Ready")].message}"#;
    let message = cluster.jsonpath(&format!("kustomization/{kustomization}"), APP, path);
    cluster.must(message, "the Ready message")
}

/// A Kustomization of the tenant whose repository holds an object outside the tenant's
/// namespace is refused, saying which object, and the object is not created. Each escape is a
/// directory of its own repository, applied by a Kustomization named after it.
fn tenants_stay_in_their_namespace(cluster: &Cluster, server: &GitServer) {
    let repo = server
        .create_repo("escape", Auth::None)
        .expect("repository");
    let mut files = Vec::new();
    for (dir, _, manifest) in ESCAPES {
        files.push((format!("{dir}/object.yaml"), manifest.to_string()));
        let listing = sample_kustomization(&["object.yaml"]);
        files.push((format!("{dir}/kustomization.yaml"), listing));
    }
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let sha = repo
        .commit(&files, "objects outside the tenant's namespace")
        .expect("commit");
    let source = format!(
        "apiVersion: source.mooring.dev/v1
kind: GitRepository
metadata:
  name: escape
spec:
  url: {}
  interval: 5m
  ref:
    branch: main
",
        repo.http_url()
    );
    cluster.must(cluster.apply("escape-source.yaml", &source, APP), "apply");
    for (dir, object, _) in ESCAPES {
        let kustomization = format!(
            "apiVersion: kustomize.mooring.dev/v1
kind: Kustomization
metadata:
  name: {dir}
spec:
  sourceRef:
    kind: GitRepository
    name: escape
  path: ./{dir}
  prune: true
  interval: 5m
"
        );
        let file = format!("{dir}.yaml");
        cluster.must(cluster.apply(&file, &kustomization, APP), "apply");
        let resource = format!("kustomization/{dir}");
        let attempted = format!(
            "--for=jsonpath={{.status.lastAttemptedRevision}}={}",
            main_revision(&sha)
        );
        cluster.must(
            cluster.wait(&[&attempted, "-n", APP, &resource]),
            "attempted",
        );
        let refused = ["--for=condition=Ready=false", "-n", APP, resource.as_str()];
        cluster.must(cluster.wait(&refused), "refused");
        let message = ready_message(cluster, dir);
        let identity = format!("system:serviceaccount:{APP}:{TENANT_SERVICE_ACCOUNT}");
        assert!(
            message.contains("escape") && message.contains(&identity),
            "{dir}: {message}"
        );
        if dir == "other-namespace" {
            assert!(message.contains("kube-system"), "{message}");
        }
        let get = [
            "get",
            object,
            "-n",
            "kube-system",
            "--ignore-not-found",
            "-o",
            "name",
        ];
        let found = cluster.must(cluster.kubectl(&get), "look for the object");
        assert_eq!(found.trim(), "", "{object} was created");
    }
    // Gone again, so that later steps see only the sample. With prune: the inventory lists the
    // refused objects (the intent written before applying) and the tenant may not even read
    // them, yet the deletion completes, since the live view shows they never came to exist.
    let mut delete = vec!["delete", "-n", APP, "gitrepository/escape", "--timeout=60s"];
    let names: Vec<String> = ESCAPES
        .iter()
        .map(|(dir, _, _)| format!("kustomization/{dir}"))
        .collect();
    delete.extend(names.iter().map(String::as_str));
    cluster.must(
        cluster.kubectl(&delete),
        "delete the refused Kustomizations",
    );
}

fn commits_are_applied_and_removed_files_pruned(cluster: &Cluster, repo: &Repo) {
    let file = ("deploy/configmap.yaml", greeting_config_map("bonjour"));
    let sha = repo
        .commit(&[(file.0, &file.1)], "greet in French")
        .expect("commit");
    reconcile_to(cluster, &sha, true, "a new commit applied");
    let greeting = cluster.jsonpath("configmap/sample-config", APP, "{.data.greeting}");
    assert_eq!(cluster.must(greeting, "read the ConfigMap"), "bonjour");

    // Each commit builds: first stop listing the Role (a named API group), then remove it.
    let listing = sample_kustomization(&[
        "configmap.yaml",
        "serviceaccount.yaml",
        "service.yaml",
        "deployment.yaml",
    ]);
    repo.commit(
        &[("deploy/kustomization.yaml", &listing)],
        "stop listing the Role",
    )
    .expect("commit");
    let sha = repo
        .remove(&["deploy/role.yaml"], "remove the Role")
        .expect("commit");
    reconcile_to(cluster, &sha, true, "the removal applied");
    let pruned = cluster.wait(&["--for=delete", "-n", APP, "role/sample-config-reader"]);
    cluster.must(pruned, "the Role pruned");
}

fn drift_is_restored(cluster: &Cluster) {
    let edit = r#"{"data":{"greeting":"edited"}}"#;
    let patch = [
        "patch",
        "-n",
        APP,
        "configmap/sample-config",
        "--type=merge",
        "-p",
        edit,
    ];
    cluster.must(cluster.kubectl(&patch), "kubectl patch");
    let restored = "--for=jsonpath={.data.greeting}=bonjour";
    let wait = cluster.wait(&[restored, "-n", APP, "configmap/sample-config"]);
    cluster.must(wait, "drift restored");
}

/// docs/metrics.md is a claim about `/metrics`: each metric its tables name is exported by the
/// controller it belongs to, with the labels the table gives (`none`: no labels), and each
/// `mooring_*` metric the controllers export is in a table.
fn documented_metrics_are_exported(cluster: &Cluster) {
    let doc =
        std::fs::read_to_string(workspace_root().join("docs/metrics.md")).expect("metrics.md");
    let documented: BTreeMap<String, BTreeSet<String>> = doc
        .lines()
        .filter_map(|line| {
            let mut cells = line.strip_prefix("| `mooring_")?.split('|');
            let name = format!("mooring_{}", cells.next()?.trim().trim_end_matches('`'));
            let labels = cells
                .nth(1)?
                .split(',')
                .map(|l| l.trim().trim_matches('`').to_string())
                .filter(|l| !l.is_empty() && l != "none")
                .collect();
            Some((name, labels))
        })
        .collect();
    assert!(
        documented.len() >= 8,
        "metric tables found in metrics.md: {documented:?}"
    );
    let controllers = cluster.controllers().expect("controllers running");
    let mut exported: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for name in [SOURCE_CONTROLLER, KUSTOMIZE_CONTROLLER] {
        let text = cluster.must(
            controllers.metrics(name).map_err(Into::into),
            "scrape /metrics",
        );
        for sample in text.lines().filter(|l| l.starts_with("mooring_")) {
            let series = sample.split_whitespace().next().unwrap_or_default();
            let (metric, labels) = series.split_once('{').unwrap_or((series, ""));
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| {
                    let base = metric.strip_suffix(suffix)?;
                    text.contains(&format!("# TYPE {base} histogram"))
                        .then_some(base)
                })
                .unwrap_or(metric);
            let keys = labels
                .trim_end_matches('}')
                .split(',')
                .filter_map(|pair| pair.split_once('=').map(|(k, _)| k.to_string()))
                .filter(|k| k != "le");
            exported.entry(family.to_string()).or_default().extend(keys);
        }
    }
    for (name, labels) in &documented {
        let found = exported.get(name);
        // A series per object (labels `namespace`, `name`) exists only for the objects that
        // have something to report; when there is none, there is no series to check.
        if found.is_none() && labels.contains("name") {
            continue;
        }
        assert_eq!(
            found,
            Some(labels),
            "docs/metrics.md documents {name} with labels {labels:?}; exported: {found:?}"
        );
    }
    let undocumented: Vec<_> = exported
        .keys()
        .filter(|n| !documented.contains_key(*n))
        .collect();
    assert!(
        undocumented.is_empty(),
        "exported but not in docs/metrics.md: {undocumented:?}"
    );
}

/// `helm upgrade` to cluster-admin mode with listed rules instead of cluster-admin: the
/// Kustomizations, which name no ServiceAccount, now apply with the controller's own identity
/// (restarted with the flags the upgraded chart passes); the rules are enough for the sample,
/// and a Secret they do not allow is refused, saying so in Ready.
fn upgrade_to_narrow_apply_rights(cluster: &mut Cluster, repo: &Repo) {
    let upgrade = [
        "--set",
        "kustomizeController.tenancy.mode=cluster-admin",
        "--set-json",
        NARROW_RULES,
    ];
    cluster.must(cluster.upgrade_chart(&upgrade), "helm upgrade");
    let flags = cluster.must(cluster.chart_kustomize_flags(), "the chart's flags");
    assert!(
        !flags
            .iter()
            .any(|f| f.starts_with("--default-service-account")),
        "{flags:?}"
    );
    let started = cluster.start_controllers().map(|_| ());
    cluster.must(
        started,
        "restart the controllers with the upgraded chart's flags",
    );
    let kustomize = cluster.must(
        cluster.service_account_kubeconfig(KUSTOMIZE_SERVICE_ACCOUNT),
        "token for the kustomize-controller",
    );
    assert!(cluster.can_i(&kustomize, &["patch", "configmaps", "-n", APP]));
    assert!(
        !cluster.can_i(&kustomize, &["create", "secrets", "-n", APP]),
        "narrowed"
    );
    assert!(
        !cluster.can_i(&kustomize, &["create", "clusterrolebindings"]),
        "no cluster-admin"
    );

    let file = ("deploy/configmap.yaml", greeting_config_map("hallo"));
    let sha = repo
        .commit(&[(file.0, &file.1)], "greet in German")
        .expect("commit");
    reconcile_to(cluster, &sha, true, "applied with narrow rights");

    let with_secret = sample_kustomization(&[
        "configmap.yaml",
        "serviceaccount.yaml",
        "service.yaml",
        "deployment.yaml",
        "secret.yaml",
    ]);
    let files = [
        ("deploy/secret.yaml", SECRET),
        ("deploy/kustomization.yaml", with_secret.as_str()),
    ];
    let sha = repo.commit(&files, "add a Secret").expect("commit");
    reconcile_to(cluster, &sha, false, "the Secret commit attempted");
    let not_ready = [
        "--for=condition=Ready=false",
        "-n",
        APP,
        "kustomization/sample",
    ];
    cluster.must(cluster.wait(&not_ready), "not Ready");
    let message = ready_message(cluster, "sample");
    let identity = format!("system:serviceaccount:{NAMESPACE}:{KUSTOMIZE_SERVICE_ACCOUNT}");
    assert!(
        message.to_lowercase().contains("forbidden")
            && message.contains("sample-secret")
            && message.contains(&identity),
        "{message}"
    );

    // Back to what applies, with the Role again, so that deletion meets a named API group.
    let role = workspace_root().join("examples/sample-app/deploy/role.yaml");
    let role = std::fs::read_to_string(role).expect("the sample's Role");
    let listing = sample_kustomization(&[
        "configmap.yaml",
        "serviceaccount.yaml",
        "service.yaml",
        "deployment.yaml",
        "role.yaml",
    ]);
    let files = [
        ("deploy/kustomization.yaml", listing.as_str()),
        ("deploy/role.yaml", role.as_str()),
    ];
    repo.commit(&files, "the Role back instead of the Secret")
        .expect("commit");
    let sha = repo
        .remove(&["deploy/secret.yaml"], "drop the Secret")
        .expect("commit");
    reconcile_to(cluster, &sha, true, "back to an applicable commit");
    let ready = ["--for=condition=Ready", "-n", APP, "kustomization/sample"];
    cluster.must(cluster.wait(&ready), "Ready again");
}

/// `kubectl delete` waits for the finalizer: MirrorPrune (with prune) deletes the objects,
/// Orphan leaves them.
fn deletion_policies_are_honoured(cluster: &Cluster) {
    let delete = [
        "delete",
        "-n",
        APP,
        "kustomization/sample",
        "kustomization/kept",
        "--timeout=60s",
    ];
    cluster.must(cluster.kubectl(&delete), "kubectl delete");
    let gone = [
        "--for=delete",
        "-n",
        APP,
        "configmap/sample-config",
        "serviceaccount/sample",
        "service/sample",
        "deployment/sample",
        "role/sample-config-reader",
    ];
    cluster.must(cluster.wait(&gone), "MirrorPrune deleted the sample");
    let kept = cluster.kubectl(&["get", "-n", APP, "configmap/kept"]);
    cluster.must(kept, "Orphan kept its object");
}

/// A graceful stop releases the Leases; `helm uninstall` removes the chart's objects but
/// neither the CRDs (Helm never deletes them) nor the users' objects.
fn stop_and_uninstall(cluster: &mut Cluster, leases: &[(&str, String)]) {
    cluster.stop_controllers();
    for (lease, _) in leases {
        let holder = cluster.jsonpath(
            &format!("lease/{lease}"),
            NAMESPACE,
            "{.spec.holderIdentity}",
        );
        assert_eq!(
            cluster.must(holder, "read the Lease"),
            "",
            "{lease} released"
        );
    }
    let uninstall = ["uninstall", "mooring", "--namespace", NAMESPACE, "--wait"];
    cluster.must(cluster.helm(&uninstall), "helm uninstall");
    let chart_objects = "app.kubernetes.io/part-of=mooring";
    let kinds = "serviceaccounts,roles,rolebindings,services,clusterroles,clusterrolebindings";
    let left = cluster.kubectl(&["get", kinds, "-A", "-l", chart_objects, "-o", "name"]);
    let left = cluster.must(left, "list the chart's objects");
    assert_eq!(left.trim(), "", "helm uninstall left objects behind");
    let kept = [
        "get",
        "crd/gitrepositories.source.mooring.dev",
        "-n",
        APP,
        "gitrepository/sample",
    ];
    cluster.must(cluster.kubectl(&kept), "CRDs and GitRepositories stay");
}
