//! `mooring suspend|resume source|kustomization NAME`: `spec.suspend`, and for `resume` a
//! reconcile request in the same write, waited for like `mooring reconcile`.

use kube::api::{Api, Patch, PatchParams};
use mooring_api::{GitRepository, Kustomization};
use serde::Serialize;

use crate::args::{Global, TargetArgs, TargetKind, WaitArgs};
use crate::client::{Cluster, connect};
use crate::error::Error;
use crate::kinds::{fetch, kind_name};
use crate::output::{print_structured, write_stdout};
use crate::reconcile::{FIELD_MANAGER, Reconcilable, report, request};

/// What `suspend -o json|yaml` prints.
#[derive(Debug, Serialize)]
struct Suspended<'a> {
    kind: &'a str,
    namespace: &'a str,
    name: &'a str,
    suspended: bool,
}

/// Runs `suspend`.
pub async fn suspend(global: &Global, args: TargetArgs) -> Result<(), Error> {
    let cluster = connect(global).await?;
    match args.kind {
        TargetKind::Source => set_suspended::<GitRepository>(&cluster, &args.name).await?,
        TargetKind::Kustomization => set_suspended::<Kustomization>(&cluster, &args.name).await?,
    }
    let kind = kind_name(args.kind);
    let result = Suspended {
        kind,
        namespace: &cluster.namespace,
        name: &args.name,
        suspended: true,
    };
    match global.output {
        Some(format) => print_structured(format, &result),
        None => write_stdout(&format!(
            "✔ {kind} {}/{} suspended\n",
            cluster.namespace, args.name
        )),
    }
}

async fn set_suspended<K: Reconcilable>(cluster: &Cluster, name: &str) -> Result<(), Error> {
    // Read first, so that a missing object is "not found" rather than a failed patch.
    let _: K = fetch(cluster, &cluster.namespace, name).await?;
    let api: Api<K> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..Default::default()
    };
    let patch = serde_json::json!({"spec": {"suspend": true}});
    api.patch(name, &params, &Patch::Merge(&patch))
        .await
        .map_err(Error::api(format!(
            "suspending {} {}/{name}",
            K::kind(&()),
            cluster.namespace
        )))?;
    Ok(())
}

/// Runs `resume`: unsuspends and requests a reconcile in one write, then waits for it.
pub async fn resume(global: &Global, args: WaitArgs) -> Result<(), Error> {
    let cluster = connect(global).await?;
    let namespace = cluster.namespace.clone();
    let name = &args.target.name;
    let outcome = match args.target.kind {
        TargetKind::Source => {
            request::<GitRepository>(&cluster, &namespace, name, &args, "resumed and ", None)
                .await?
        }
        TargetKind::Kustomization => {
            request::<Kustomization>(&cluster, &namespace, name, &args, "resumed and ", None)
                .await?
        }
    };
    report(global.output, &[outcome])
}
