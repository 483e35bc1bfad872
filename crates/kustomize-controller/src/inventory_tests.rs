use super::*;
use serde_json::json;

fn object(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> DynamicObject {
    let mut metadata = json!({ "name": name });
    if let Some(ns) = namespace {
        metadata["namespace"] = json!(ns);
    }
    serde_json::from_value(json!({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": metadata,
    }))
    .expect("object")
}

fn id(namespace: &str, name: &str, group: &str, kind: &str) -> ObjectId {
    ObjectId {
        namespace: namespace.into(),
        name: name.into(),
        group: group.into(),
        kind: kind.into(),
    }
}

#[test]
fn id_format_matches_flux() {
    let service = ObjectId::of(&object("v1", "Service", Some("default"), "podinfo")).expect("id");
    assert_eq!(service.to_string(), "default_podinfo__Service");
    let crd = ObjectId::of(&object(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        None,
        "my-crd.example.com",
    ))
    .expect("id");
    assert_eq!(
        crd.to_string(),
        "_my-crd.example.com_apiextensions.k8s.io_CustomResourceDefinition"
    );
    let deploy = ObjectId::of(&object("apps/v1", "Deployment", Some("app"), "web")).expect("id");
    assert_eq!(deploy.to_string(), "app_web_apps_Deployment");
}

#[test]
fn id_parse_round_trips() {
    for s in [
        "default_podinfo__Service",
        "_my-crd.example.com_apiextensions.k8s.io_CustomResourceDefinition",
        "app_web_apps_Deployment",
    ] {
        let parsed = ObjectId::parse(s).expect("parse");
        assert_eq!(parsed.to_string(), s);
    }
    assert_eq!(
        ObjectId::parse("_team-a__Namespace").expect("parse"),
        id("", "team-a", "", "Namespace")
    );
}

#[test]
fn colons_in_names_are_transcoded() {
    let role = id(
        "",
        "system:metrics",
        "rbac.authorization.k8s.io",
        "ClusterRole",
    );
    assert_eq!(
        role.to_string(),
        "_system__metrics_rbac.authorization.k8s.io_ClusterRole"
    );
    assert_eq!(ObjectId::parse(&role.to_string()).expect("parse"), role);
}

#[test]
fn malformed_ids_are_rejected() {
    for bad in [
        "",
        "nounderscore",
        "a_b",
        "ns_name_group_",
        "ns__group_Kind",
        "a_b_c_d_e",
    ] {
        let err = ObjectId::parse(bad).expect_err(bad);
        assert!(err.to_string().contains(bad), "{err}");
    }
}

#[test]
fn stages_follow_flux() {
    assert_eq!(
        stage_of("apiextensions.k8s.io", "CustomResourceDefinition"),
        Stage::ClusterDefinitions
    );
    assert_eq!(stage_of("", "Namespace"), Stage::ClusterDefinitions);
    assert_eq!(
        stage_of("rbac.authorization.k8s.io", "ClusterRole"),
        Stage::ClusterDefinitions
    );
    assert_eq!(
        stage_of("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        Stage::Rest
    );
    assert_eq!(stage_of("storage.k8s.io", "StorageClass"), Stage::Classes);
    assert_eq!(
        stage_of("networking.k8s.io", "IngressClass"),
        Stage::Classes
    );
    assert_eq!(stage_of("cluster.x-k8s.io", "ClusterClass"), Stage::Classes);
    assert_eq!(stage_of("apps", "Deployment"), Stage::Rest);
    assert_eq!(stage_of("example.com", "Namespace"), Stage::Rest);
    assert!(Stage::ClusterDefinitions < Stage::Classes && Stage::Classes < Stage::Rest);
}

#[test]
fn diff_returns_stale_entries_in_prune_order() {
    let old = ResourceInventory {
        entries: vec![
            ResourceRef {
                id: "_team__Namespace".into(),
                v: "v1".into(),
            },
            ResourceRef {
                id: "_crontabs.example.com_apiextensions.k8s.io_CustomResourceDefinition".into(),
                v: "apiextensions.k8s.io/v1".into(),
            },
            ResourceRef {
                id: "team_web_apps_Deployment".into(),
                v: "apps/v1".into(),
            },
            ResourceRef {
                id: "team_web__Service".into(),
                v: "v1".into(),
            },
            ResourceRef {
                id: "team_cfg__ConfigMap".into(),
                v: "v1".into(),
            },
            ResourceRef {
                id: "_hook_admissionregistration.k8s.io_ValidatingWebhookConfiguration".into(),
                v: "admissionregistration.k8s.io/v1".into(),
            },
            ResourceRef {
                id: "_fast_storage.k8s.io_StorageClass".into(),
                v: "storage.k8s.io/v1".into(),
            },
            ResourceRef {
                id: "team_tab_example.com_CronTab".into(),
                v: "example.com/v1".into(),
            },
        ],
        cluster: None,
    };
    // The ConfigMap stays (under a newer version: versions are not compared).
    let new = vec![object("v1beta9", "ConfigMap", Some("team"), "cfg")];
    let stale = diff(&old, &new).expect("diff");
    let order: Vec<String> = stale.iter().map(|e| e.id.to_string()).collect();
    assert_eq!(
        order,
        vec![
            "_hook_admissionregistration.k8s.io_ValidatingWebhookConfiguration",
            "team_tab_example.com_CronTab",
            "team_web_apps_Deployment",
            "team_web__Service",
            "_fast_storage.k8s.io_StorageClass",
            "_team__Namespace",
            "_crontabs.example.com_apiextensions.k8s.io_CustomResourceDefinition",
        ]
    );
    assert_eq!(stale[2].version, "apps/v1");
}

#[test]
fn diff_is_empty_when_nothing_left() {
    let old = ResourceInventory {
        entries: vec![ResourceRef {
            id: "a_b__ConfigMap".into(),
            v: "v1".into(),
        }],
        cluster: None,
    };
    let new = vec![object("v1", "ConfigMap", Some("a"), "b")];
    assert!(diff(&old, &new).expect("diff").is_empty());
    let bad = ResourceInventory {
        entries: vec![ResourceRef {
            id: "garbage".into(),
            v: "v1".into(),
        }],
        cluster: None,
    };
    assert!(diff(&bad, &new).is_err());
}

#[test]
fn inventory_is_sorted_and_deduplicated() {
    let objects = vec![
        object("v1", "Service", Some("b"), "web"),
        object("v1", "ConfigMap", Some("a"), "cfg"),
        object("v1", "ConfigMap", Some("a"), "cfg"),
    ];
    let inventory = inventory_of(&objects).expect("inventory");
    let ids: Vec<&str> = inventory.entries.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, vec!["a_cfg__ConfigMap", "b_web__Service"]);
}

#[test]
fn render_digest_ignores_order_and_key_order_but_not_content() {
    let a: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "a", "namespace": "x"}, "data": {"k": "1", "j": "2"}
    }))
    .expect("a");
    let b = object("v1", "Service", Some("x"), "b");
    let a_reordered: DynamicObject = serde_json::from_value(json!({
        "data": {"j": "2", "k": "1"}, "kind": "ConfigMap",
        "metadata": {"namespace": "x", "name": "a"}, "apiVersion": "v1"
    }))
    .expect("a");
    let one = render_digest(&[a.clone(), b.clone()]).expect("digest");
    let two = render_digest(&[b.clone(), a_reordered]).expect("digest");
    assert_eq!(one, two);
    assert!(one.starts_with("sha256:") && one.len() == 7 + 64, "{one}");
    let mut changed = a;
    changed.data["data"]["k"] = json!("3");
    assert_ne!(render_digest(&[changed, b]).expect("digest"), one);
}

#[test]
fn a_keyed_render_digest_depends_on_the_key_and_is_not_the_plain_one() {
    let objects = [object("v1", "Secret", Some("x"), "s")];
    let plain = render_digest(&objects).expect("digest");
    let keyed = render_digest_keyed(&objects, Some(b"key one")).expect("digest");
    assert!(
        keyed.starts_with("sha256:") && keyed.len() == 7 + 64,
        "{keyed}"
    );
    assert_ne!(keyed, plain);
    assert_eq!(
        render_digest_keyed(&objects, Some(b"key one")).expect("digest"),
        keyed
    );
    assert_ne!(
        render_digest_keyed(&objects, Some(b"key two")).expect("digest"),
        keyed
    );
    assert_eq!(render_digest_keyed(&objects, None).expect("digest"), plain);
}

#[test]
fn prune_sort_reverses_apply_order() {
    let mut ids = vec![
        id("", "ns", "", "Namespace"),
        id("a", "d", "apps", "Deployment"),
        id("a", "s", "", "ServiceAccount"),
        id("", "c", "apiextensions.k8s.io", "CustomResourceDefinition"),
    ];
    sort_for_prune(&mut ids);
    let kinds: Vec<&str> = ids.iter().map(|i| i.kind.as_str()).collect();
    assert_eq!(
        kinds,
        vec![
            "Deployment",
            "ServiceAccount",
            "Namespace",
            "CustomResourceDefinition"
        ]
    );
    assert_eq!(ids[0].subject(), "Deployment/a/d");
    assert_eq!(ids[3].subject(), "CustomResourceDefinition/c");
}
