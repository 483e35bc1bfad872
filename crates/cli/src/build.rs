//! `mooring build kustomization NAME --path DIR`: the objects the Kustomization would apply from
//! a local checkout of its source, as the controller renders them.

use mooring_api::Kustomization;

use crate::args::{BuildArgs, Format, Global};
use crate::client::connect;
use crate::error::Error;
use crate::kinds::fetch;
use crate::output::{print_structured, write_stdout};
use crate::render::{Origin, render};

/// Runs `build`.
pub async fn run(global: &Global, args: BuildArgs) -> Result<(), Error> {
    let cluster = connect(global).await?;
    let ks: Kustomization = fetch(&cluster, &cluster.namespace, &args.name).await?;
    let origin = Origin::Local(args.path.clone());
    let rendered = render(
        &cluster,
        &ks,
        &origin,
        &args.render.kustomize,
        args.render.strict_substitution,
    )
    .await?;
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": rendered.objects});
    match global.output {
        Some(Format::Json) => print_structured(Format::Json, &list),
        Some(Format::Yaml) => print_structured(Format::Yaml, &list),
        None => {
            let mut text = String::new();
            for object in &rendered.objects {
                let yaml =
                    serde_saphyr::to_string(object).map_err(|e| Error::Output(e.to_string()))?;
                text.push_str("---\n");
                text.push_str(&yaml);
            }
            write_stdout(&text)
        }
    }
}
