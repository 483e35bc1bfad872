//! The chart on its own: `helm lint` is clean for the default values and for every optional
//! part, values.schema.json refuses values the templates cannot use, and the rendered objects
//! hold what the values promise (tenancy modes, NetworkPolicies covering every port and the
//! egress of both pods; nothing enforces NetworkPolicy here, so that check is structural).

use mooring_e2e::chart;
use mooring_e2e::cli::run;
use mooring_e2e::cluster::chart_dir;
use mooring_testkit::tools::tool;
use serde_json::{Value, json};

/// `helm <args>` with its cache and config in a temp dir; (success, everything printed).
fn helm(args: &[&str]) -> (bool, String) {
    let home = tempfile::tempdir().expect("temp dir");
    let envs = [
        ("HELM_CACHE_HOME", home.path()),
        ("HELM_CONFIG_HOME", home.path()),
        ("HELM_DATA_HOME", home.path()),
    ];
    let helm = tool("helm").expect("helm: run `make tools`");
    match run(&helm, args, &envs) {
        Ok(out) => (true, out),
        Err(e) => (false, e.to_string()),
    }
}

fn lint(values: &[&str]) -> (bool, String) {
    let chart = chart_dir();
    let mut args = vec!["lint", "--strict", chart.as_str()];
    args.extend_from_slice(values);
    helm(&args)
}

#[test]
fn helm_lint_is_clean_for_defaults_and_every_option() {
    let options: [&[&str]; 6] = [
        &[],
        &[
            "--set",
            "sourceController.receiver.ingress.enabled=true",
            "--set",
            "sourceController.receiver.ingress.host=hooks.example.com",
            "--set",
            "sourceController.receiver.ingress.className=nginx",
            "--set",
            "sourceController.receiver.service.type=LoadBalancer",
            "--set-json",
            r#"sourceController.receiver.from=[{"ipBlock":{"cidr":"192.0.2.0/24"}}]"#,
        ],
        &[
            "--set",
            "sourceController.storage.persistence.enabled=true",
            "--set",
            "serviceMonitor.enabled=true",
            "--set",
            "dashboard.enabled=true",
            "--set",
            "dashboard.namespace=monitoring",
            "--set",
            "networkPolicy.enabled=false",
            "--set",
            "sourceController.watchLabelSelector=shard=a",
            "--set",
            "kustomizeController.watchLabelSelector=shard=a",
        ],
        &[
            "--set",
            "kustomizeController.tenancy.defaultServiceAccount=deployer",
            "--set",
            "kustomizeController.allowCrossNamespaceRefs=false",
            "--set-json",
            r#"networkPolicy.metrics.from=[{"namespaceSelector":{"matchLabels":{"name":"monitoring"}}}]"#,
            "--set-json",
            r#"networkPolicy.dns.to=[{"namespaceSelector":{}}]"#,
            "--set-json",
            r#"networkPolicy.apiServer={"ports":[6443],"to":[{"ipBlock":{"cidr":"192.0.2.1/32"}}]}"#,
            "--set-json",
            r#"networkPolicy.git={"ports":[443],"to":[{"ipBlock":{"cidr":"198.51.100.0/24"}}]}"#,
            "--set-json",
            r#"networkPolicy.extraEgress={"sourceController":[{"ports":[{"port":3128}]}],"kustomizeController":[{"ports":[{"port":443}]}]}"#,
        ],
        &[
            "--set",
            "kustomizeController.tenancy.mode=cluster-admin",
            "--set",
            "kustomizeController.allowCrossNamespaceRefs=true",
        ],
        &[
            "--set",
            "kustomizeController.tenancy.mode=cluster-admin",
            "--set-json",
            r#"kustomizeController.rbac.rules=[{"apiGroups":[""],"resources":["configmaps"],"verbs":["*"]}]"#,
            "--set",
            "deployControllers=false",
        ],
    ];
    for values in options {
        let (ok, out) = lint(values);
        assert!(ok, "helm lint {values:?}:\n{out}");
        assert!(
            !out.contains("[WARNING]") && !out.contains("[ERROR]"),
            "helm lint {values:?}:\n{out}"
        );
    }
}

#[test]
fn the_values_schema_refuses_what_the_templates_cannot_use() {
    let rules = r#"kustomizeController.rbac.rules=[{"apiGroups":[""],"resources":["configmaps"],"verbs":["*"]}]"#;
    let refused: [&[&str]; 13] = [
        &["--set", "log.format=xml"],
        &["--set", "sourceController.replicas=-1"],
        &["--set", "sourceController.concurrency=0"],
        &["--set", "kustomizeController.unknownSetting=true"],
        &["--set", "kustomizeController.tenancy.mode=shared"],
        // tenant-safe: a tenant sees only its namespace, and the controller applies nothing
        // as itself, so it has no rules to apply with and needs a ServiceAccount to impersonate.
        &["--set", "kustomizeController.allowCrossNamespaceRefs=true"],
        &["--set-json", rules],
        &[
            "--set",
            "kustomizeController.tenancy.defaultServiceAccount=",
        ],
        &[
            "--set",
            "kustomizeController.tenancy.defaultServiceAccount=Not_A_Name",
        ],
        // Replaced by tenancy.mode and rbac.rules.
        &["--set", "kustomizeController.rbac.clusterAdmin=false"],
        // A rule without ports would open every port.
        &["--set-json", "networkPolicy.apiServer.ports=[]"],
        &["--set-json", "networkPolicy.git.ports=[70000]"],
        &["--set", "networkPolicy.extraEgress.everyone=true"],
    ];
    for values in refused {
        let (ok, out) = lint(values);
        assert!(!ok, "helm lint accepted {values:?}:\n{out}");
        assert!(
            out.contains("schema"),
            "refused for another reason {values:?}:\n{out}"
        );
    }
}

/// `helm template` of the chart with the Deployments and `values`, parsed.
fn render(values: &[&str]) -> Vec<Value> {
    let chart = chart_dir();
    let mut args = vec![
        "template",
        "mooring",
        chart.as_str(),
        "--namespace",
        "mooring-system",
    ];
    args.extend_from_slice(values);
    let (ok, out) = helm(&args);
    assert!(ok, "helm template {values:?}:\n{out}");
    chart::parse(&out).expect("helm template prints YAML")
}

/// Whether `selector` (a `matchLabels` podSelector) selects pods labelled `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    assert!(
        selector.get("matchExpressions").is_none(),
        "only matchLabels is checked: {selector}"
    );
    let wanted = selector["matchLabels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    wanted.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn pod_labels(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["metadata"]["labels"]
}

/// The NetworkPolicies that select the pods of `deployment`.
fn policies_of<'a>(objects: &'a [Value], deployment: &'a Value) -> Vec<&'a Value> {
    chart::of_kind(objects, "NetworkPolicy")
        .filter(|p| p["metadata"]["namespace"] == deployment["metadata"]["namespace"])
        .filter(|p| selects(&p["spec"]["podSelector"], pod_labels(deployment)))
        .collect()
}

fn has_type(policy: &Value, policy_type: &str) -> bool {
    policy["spec"]["policyTypes"]
        .as_array()
        .is_some_and(|types| types.iter().any(|t| t == policy_type))
}

/// Whether `rule` (an ingress or egress rule) lets `port` (a number, or a container port's
/// name) over `protocol` through. A rule without ports allows every port.
fn rule_allows_port(rule: &Value, port: &Value, name: Option<&Value>, protocol: &str) -> bool {
    let Some(ports) = rule["ports"].as_array() else {
        return true;
    };
    ports.iter().any(|p| {
        let same_port = &p["port"] == port || name.is_some_and(|n| &p["port"] == n);
        let same_protocol = p["protocol"].as_str().unwrap_or("TCP") == protocol;
        same_port && same_protocol
    })
}

/// The rules of `direction` (`ingress` or `egress`) of `policies` that let `port` through.
fn rules_for<'a>(
    policies: &[&'a Value],
    direction: &str,
    port: u16,
    protocol: &str,
) -> Vec<&'a Value> {
    let policy_type = if direction == "ingress" {
        "Ingress"
    } else {
        "Egress"
    };
    policies
        .iter()
        .filter(|p| has_type(p, policy_type))
        .flat_map(|p| p["spec"][direction].as_array().into_iter().flatten())
        .filter(|rule| rule_allows_port(rule, &Value::from(port), None, protocol))
        .collect()
}

fn container_ports(deployment: &Value) -> Vec<&Value> {
    deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["ports"].as_array().into_iter().flatten())
        .collect()
}

fn deployment<'a>(objects: &'a [Value], component: &str) -> &'a Value {
    chart::find(objects, "Deployment", &format!("mooring-{component}"))
        .unwrap_or_else(|| panic!("no {component} Deployment"))
}

/// What every render with the policies on must hold: each container port of each Deployment
/// is let in by an explicit ingress rule of a policy selecting its pods, and each pod has an
/// Egress policy letting out DNS and the API server.
fn assert_every_port_and_egress_covered(objects: &[Value], api_server_ports: &[u16]) {
    let deployments: Vec<&Value> = chart::of_kind(objects, "Deployment").collect();
    assert_eq!(deployments.len(), 2, "both controllers rendered");
    for deployment in deployments {
        let name = &deployment["metadata"]["name"];
        let policies = policies_of(objects, deployment);
        let ports = container_ports(deployment);
        assert!(!ports.is_empty(), "{name} listens on no port");
        for port in ports {
            let protocol = port["protocol"].as_str().unwrap_or("TCP");
            let allowed = policies.iter().filter(|p| has_type(p, "Ingress")).any(|p| {
                p["spec"]["ingress"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|rule| {
                        rule["ports"].is_array()
                            && rule_allows_port(
                                rule,
                                &port["containerPort"],
                                port.get("name"),
                                protocol,
                            )
                    })
            });
            assert!(allowed, "{name}: no ingress rule names port {port}");
        }
        assert!(
            policies.iter().any(|p| has_type(p, "Egress")),
            "{name}: no Egress policy"
        );
        for protocol in ["UDP", "TCP"] {
            assert!(
                !rules_for(&policies, "egress", 53, protocol).is_empty(),
                "{name}: no DNS over {protocol}"
            );
        }
        for port in api_server_ports {
            assert!(
                !rules_for(&policies, "egress", *port, "TCP").is_empty(),
                "{name}: the API server on {port} unreachable"
            );
        }
    }
}

/// The source-controller's container port named `http` (the artifact server).
fn artifact_port(objects: &[Value]) -> u16 {
    let source = deployment(objects, "source-controller");
    container_ports(source)
        .into_iter()
        .find(|p| p["name"] == "http")
        .and_then(|p| p["containerPort"].as_u64())
        .and_then(|p| u16::try_from(p).ok())
        .expect("the source-controller's http port")
}

#[test]
fn network_policies_cover_every_port_and_the_egress_of_both_pods() {
    let objects = render(&[]);
    assert_every_port_and_egress_covered(&objects, &[443, 6443]);
    let source = deployment(&objects, "source-controller");
    let kustomize = deployment(&objects, "kustomize-controller");
    let artifacts = artifact_port(&objects);

    // Artifacts only from the kustomize-controller's pods.
    let source_policies = policies_of(&objects, source);
    let artifact_rules = rules_for(&source_policies, "ingress", artifacts, "TCP");
    assert!(!artifact_rules.is_empty());
    for rule in artifact_rules {
        let peers = rule["from"].as_array().expect("artifact peers are listed");
        assert!(!peers.is_empty(), "{rule}");
        for peer in peers {
            assert!(peer.get("namespaceSelector").is_none() && peer.get("ipBlock").is_none());
            assert!(
                selects(&peer["podSelector"], pod_labels(kustomize)),
                "{peer}"
            );
            assert!(!selects(&peer["podSelector"], pod_labels(source)), "{peer}");
        }
    }
    // Metrics from any namespace's pods by default (a Prometheus wherever it runs).
    for deployment in [source, kustomize] {
        let rules = rules_for(&policies_of(&objects, deployment), "ingress", 8080, "TCP");
        assert_eq!(rules.len(), 1, "{rules:?}");
        assert_eq!(rules[0]["from"], json!([{"namespaceSelector": {}}]));
    }
    // The kustomize-controller reaches the artifact server's pods, the source-controller git.
    let kustomize_policies = policies_of(&objects, kustomize);
    let to_artifacts = rules_for(&kustomize_policies, "egress", artifacts, "TCP");
    assert!(
        to_artifacts.iter().any(|rule| rule["to"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|peer| selects(&peer["podSelector"], pod_labels(source)))),
        "{to_artifacts:?}"
    );
    for port in [443, 22, 80] {
        assert!(
            !rules_for(&source_policies, "egress", port, "TCP").is_empty(),
            "git on {port}"
        );
    }
    assert!(
        rules_for(&kustomize_policies, "egress", 22, "TCP").is_empty(),
        "the kustomize-controller talks to no git server"
    );
}

#[test]
fn network_policy_values_change_peers_ports_and_extra_egress() {
    let objects = render(&[
        "--set-json",
        r#"networkPolicy.metrics.from=[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"monitoring"}}}]"#,
        "--set-json",
        "networkPolicy.apiServer.ports=[8443]",
        "--set-json",
        "networkPolicy.git.ports=[2222]",
        "--set-json",
        r#"networkPolicy.extraEgress.kustomizeController=[{"to":[{"ipBlock":{"cidr":"192.0.2.0/24"}}],"ports":[{"port":8081,"protocol":"TCP"}]}]"#,
    ]);
    assert_every_port_and_egress_covered(&objects, &[8443]);
    let source = policies_of(&objects, deployment(&objects, "source-controller"));
    let kustomize = policies_of(&objects, deployment(&objects, "kustomize-controller"));
    for policies in [&source, &kustomize] {
        let rules = rules_for(policies, "ingress", 8080, "TCP");
        assert_eq!(
            rules[0]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
            "monitoring"
        );
        assert!(
            rules_for(policies, "egress", 6443, "TCP").is_empty(),
            "ports replaced"
        );
    }
    assert!(!rules_for(&source, "egress", 2222, "TCP").is_empty());
    assert!(rules_for(&source, "egress", 22, "TCP").is_empty());
    let extra = rules_for(&kustomize, "egress", 8081, "TCP");
    assert_eq!(extra.len(), 1);
    assert_eq!(extra[0]["to"][0]["ipBlock"]["cidr"], "192.0.2.0/24");
    assert!(
        rules_for(&source, "egress", 8081, "TCP").is_empty(),
        "per controller"
    );

    let off = render(&["--set", "networkPolicy.enabled=false"]);
    assert_eq!(chart::of_kind(&off, "NetworkPolicy").count(), 0);
}

/// The kustomize-controller's ClusterRoleBindings' roles, by name.
fn kustomize_bound_roles(objects: &[Value]) -> Vec<String> {
    chart::of_kind(objects, "ClusterRoleBinding")
        .filter(|b| {
            b["subjects"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|s| s["name"] == "mooring-kustomize-controller")
        })
        .filter_map(|b| b["roleRef"]["name"].as_str().map(str::to_string))
        .collect()
}

/// Whether a rule of `role` grants `verb` on `resource` of the core group.
fn grants(role: &Value, verb: &str, resource: &str) -> bool {
    let has = |list: &Value, item: &str| {
        list.as_array()
            .into_iter()
            .flatten()
            .any(|v| v == item || v == "*")
    };
    role["rules"].as_array().into_iter().flatten().any(|rule| {
        has(&rule["apiGroups"], "")
            && has(&rule["resources"], resource)
            && has(&rule["verbs"], verb)
    })
}

#[test]
fn tenant_safe_is_the_default_and_cluster_admin_is_opt_in() {
    let objects = render(&[]);
    let flags = chart::kustomize_flags(&objects, "mooring-kustomize-controller").expect("flags");
    assert!(
        flags.contains(&"--default-service-account=default".to_string()),
        "{flags:?}"
    );
    assert!(
        flags.contains(&"--allow-cross-namespace-refs=false".to_string()),
        "{flags:?}"
    );
    assert_eq!(
        kustomize_bound_roles(&objects),
        ["mooring-kustomize-controller"]
    );
    let role = chart::find(&objects, "ClusterRole", "mooring-kustomize-controller").expect("role");
    assert!(grants(role, "impersonate", "serviceaccounts"));
    assert!(
        grants(role, "list", "secrets") && grants(role, "watch", "configmaps"),
        "the live view"
    );
    for verb in [
        "get",
        "create",
        "patch",
        "update",
        "delete",
        "deletecollection",
    ] {
        for resource in ["secrets", "configmaps", "serviceaccounts"] {
            assert!(!grants(role, verb, resource), "{verb} {resource}");
        }
    }
    assert!(!grants(role, "impersonate", "groups") && !grants(role, "impersonate", "users"));

    let admin = render(&["--set", "kustomizeController.tenancy.mode=cluster-admin"]);
    let flags = chart::kustomize_flags(&admin, "mooring-kustomize-controller").expect("flags");
    assert!(
        !flags
            .iter()
            .any(|f| f.starts_with("--default-service-account")),
        "{flags:?}"
    );
    assert!(
        flags.contains(&"--allow-cross-namespace-refs=true".to_string()),
        "{flags:?}"
    );
    let mut roles = kustomize_bound_roles(&admin);
    roles.sort();
    assert_eq!(roles, ["cluster-admin", "mooring-kustomize-controller"]);

    let narrow = render(&[
        "--set",
        "kustomizeController.tenancy.mode=cluster-admin",
        "--set",
        "kustomizeController.allowCrossNamespaceRefs=false",
        "--set-json",
        r#"kustomizeController.rbac.rules=[{"apiGroups":[""],"resources":["configmaps"],"verbs":["*"]}]"#,
    ]);
    let flags = chart::kustomize_flags(&narrow, "mooring-kustomize-controller").expect("flags");
    assert!(
        flags.contains(&"--allow-cross-namespace-refs=false".to_string()),
        "{flags:?}"
    );
    let mut roles = kustomize_bound_roles(&narrow);
    roles.sort();
    assert_eq!(
        roles,
        [
            "mooring-kustomize-controller",
            "mooring-kustomize-controller-apply"
        ]
    );

    let named = render(&[
        "--set",
        "kustomizeController.tenancy.defaultServiceAccount=deployer",
    ]);
    let flags = chart::kustomize_flags(&named, "mooring-kustomize-controller").expect("flags");
    assert!(
        flags.contains(&"--default-service-account=deployer".to_string()),
        "{flags:?}"
    );
}

/// Every volume that is not a PersistentVolumeClaim: each must be an emptyDir with a size
/// limit, so that a big repository or a runaway build cannot fill the node's disk.
#[test]
fn size_limits_and_controller_limits_are_set_from_the_values() {
    let defaults = render(&[]);
    for component in ["source-controller", "kustomize-controller"] {
        let volumes = deployment(&defaults, component)["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(!volumes.is_empty(), "{component} has volumes");
        for volume in &volumes {
            let limit = volume["emptyDir"]["sizeLimit"].as_str();
            assert!(
                limit.is_some_and(|l| !l.is_empty()),
                "{component} volume {} has no emptyDir sizeLimit: {volume}",
                volume["name"]
            );
        }
    }
    let set = render(&[
        "--set",
        "sourceController.sizeLimits.cache=7Gi",
        "--set",
        "sourceController.maxGitTimeout=90s",
    ]);
    let source = deployment(&set, "source-controller");
    let cache = source["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["name"] == "cache"))
        .expect("the cache volume");
    assert_eq!(cache["emptyDir"]["sizeLimit"], "7Gi");
    let args = source["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        args.iter().any(|a| a == "--max-git-timeout=90s"),
        "{args:?}"
    );
    let limited = render(&["--set", "kustomizeController.maxRenderObjects=500"]);
    let args = deployment(&limited, "kustomize-controller")["spec"]["template"]["spec"]
        ["containers"][0]["args"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        args.iter().any(|a| a == "--max-render-objects=500")
            && args.iter().any(|a| a == "--max-artifact-size=536870912"),
        "{args:?}"
    );
    let (ok, out) = lint(&["--set", "kustomizeController.maxRenderObjects=-1"]);
    assert!(!ok && out.contains("schema"), "{out}");
    let (ok, out) = lint(&["--set", "sourceController.sizeLimits.tmp=lots"]);
    assert!(!ok && out.contains("schema"), "{out}");
}

/// The artifact URLs the source-controller publishes name the Service's port, so that a port
/// other than 80 still reaches the artifacts.
#[test]
fn advertised_artifact_address_follows_the_service_port() {
    let adv_addr = |values: &[&str]| {
        let rendered = render(values);
        let args =
            deployment(&rendered, "source-controller")["spec"]["template"]["spec"]["containers"][0]
                ["args"]
                .as_array()
                .cloned()
                .unwrap_or_default();
        args.iter()
            .filter_map(|a| a.as_str())
            .find_map(|a| a.strip_prefix("--storage-adv-addr="))
            .map(str::to_string)
            .expect("--storage-adv-addr is passed")
    };
    let default = adv_addr(&[]);
    assert!(default.ends_with(".svc.cluster.local."), "{default}");
    let moved = adv_addr(&["--set", "sourceController.service.port=8081"]);
    assert!(moved.ends_with(".svc.cluster.local.:8081"), "{moved}");
}
