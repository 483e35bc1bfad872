//! The render: the artifact built with kustomize, substituted, parsed, stamped with the
//! ownership labels, and every namespaced object placed in its one namespace.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use kube::ResourceExt;
use kube::api::DynamicObject;
use mooring_api::constants::RECONCILE_REQUESTED_AT_ANNOTATION;
use mooring_api::kustomization::ResourceInventory;
use mooring_api::{Kustomization, KustomizationSpec};

use crate::apply::{CrdKinds, KindCache, ObjectKey, place};
use crate::build::cache::BuildKey;
use crate::build::lock;
use crate::context::Context;
use crate::decrypt::{self, Keys};
use crate::error::Error;
use crate::inventory::{self, InventoryEntry, ObjectId};
use crate::source::Source;
use crate::state::{hash_json, hash_text};
use crate::steps::gate::SourceArtifact;
use crate::target::Clients;
use crate::{build, manifests, substitute};
use k8s_openapi::api::core::v1::Secret;

/// One rendered object, ready to apply.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    /// Its identity; the namespace is resolved (see [`place_all`]).
    pub id: ObjectId,
    /// The hash of its manifest.
    pub hash: u64,
    /// Its apiVersion.
    pub api_version: String,
    /// The manifest as JSON text. A render is kept between passes for every Kustomization;
    /// as parsed JSON (maps of maps) its objects took several times the bytes of their text.
    manifest: Box<str>,
}

impl Desired {
    /// The rendered `object`, with its identity.
    pub fn new(id: ObjectId, object: &DynamicObject) -> Self {
        // Serializing a parsed object cannot fail; the hash is that of the same text either way.
        let manifest = serde_json::to_string(object).unwrap_or_default();
        Self {
            id,
            hash: hash_text(&manifest),
            api_version: object
                .types
                .as_ref()
                .map(|t| t.api_version.clone())
                .unwrap_or_default(),
            manifest: manifest.into_boxed_str(),
        }
    }

    /// The manifest, parsed again from its text.
    pub fn object(&self) -> DynamicObject {
        #[allow(clippy::expect_used)]
        serde_json::from_str(&self.manifest)
            .expect("the JSON text of a DynamicObject parses back into one")
    }

    /// The manifest's metadata alone, parsed from its text (the rest is skipped, not built):
    /// what a pass's plan reads of every object.
    pub fn metadata(&self) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        #[derive(serde::Deserialize)]
        struct Only {
            #[serde(default)]
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
        }
        #[allow(clippy::expect_used)]
        serde_json::from_str::<Only>(&self.manifest)
            .expect("the JSON text of a DynamicObject parses back into one")
            .metadata
    }
}

/// A render of one revision.
#[derive(Debug, Clone, PartialEq)]
pub struct Render {
    /// Hash of what the render depends on (artifact digest, spec generation, variables).
    pub key: u64,
    /// The source revision.
    pub revision: String,
    /// A hash of the source's provenance (who made and signed the revision, from the artifact's
    /// metadata) it was made for: a render is kept only for the same one. `status.history`
    /// takes the provenance itself from the source, which every render would otherwise copy.
    pub provenance: u64,
    /// sha256 of the rendered objects.
    pub digest: String,
    /// The objects, in render order.
    pub objects: Vec<Desired>,
}

impl Render {
    /// The inventory of the objects, as `status.inventory` records it. Made when asked rather
    /// than kept: every Kustomization's render is remembered, and it would hold each object's
    /// identity a second time, as text.
    pub fn inventory(&self) -> ResourceInventory {
        inventory::inventory_from(self.objects.iter().map(|desired| InventoryEntry {
            id: desired.id.clone(),
            version: desired.api_version.clone(),
        }))
    }

    /// The manifests, for the apply engine.
    pub fn manifests(&self) -> Vec<DynamicObject> {
        self.objects.iter().map(Desired::object).collect()
    }
}

/// Builds the render of `source`, or returns `previous` when nothing it depends on changed.
/// Talks to the artifact server, to the API server for `substituteFrom`, for the
/// `spec.decryption` key Secret and for discovery of kinds not seen before.
pub async fn render(
    ks: &Kustomization,
    ctx: &Context,
    clients: &Clients,
    source: &SourceArtifact,
    default_namespace: &str,
    previous: Option<Arc<Render>>,
) -> Result<Arc<Render>, Error> {
    let ns = ks.namespace().unwrap_or_default();
    let spec = &ks.spec;
    let revision = &source.revision;
    let build_err = |message: String| Error::Build {
        revision: revision.clone(),
        message,
    };
    let vars: BTreeMap<String, String> = match &spec.post_build {
        Some(post_build) => substitute::gather_vars(&clients.local, &ns, post_build)
            .await
            .map_err(|e| build_err(e.to_string()))?,
        None => BTreeMap::new(),
    };
    let keys = match &spec.decryption {
        Some(decryption) => Some(
            read_keys(&clients.local, &ns, decryption)
                .await
                .map_err(build_err)?,
        ),
        None => None,
    };
    let cluster = &clients.target.cluster;
    let key = hash_json(&(
        &source.digest,
        ks.metadata.generation,
        &vars,
        cluster.fingerprint,
        keys.as_ref().map(|k| hex::encode(k.fingerprint())),
    ));
    let provenance = hash_json(&source.provenance);
    if let Some(previous) = previous.filter(|p| p.key == key && p.provenance == provenance) {
        return Ok(previous);
    }
    let mut input = build_input(ctx, spec);
    input.decryption = keys.clone();
    // Kustomizations building the same input share one kustomize run and its output; the
    // artifact is only fetched when it runs.
    let build_key = BuildKey::of(&source.digest, &input);
    // A pass that comes first to a build started ahead of it runs that build as the one ahead
    // would: with the others that come at the same time.
    input.together = lock(&ctx.ahead_keys).contains(&build_key);
    // A build that failed in a way that would repeat is not run again for the same input,
    // unless the pass was asked for: here, nor after waiting for a build of the same input
    // that failed meanwhile.
    let requested = reconcile_requested(ks);
    let known_failure = || ctx.builds.failure(build_key).filter(|_| !requested);
    if let Some(message) = known_failure() {
        return Err(build_err(message.to_string()));
    }
    let built = ctx
        .builds
        .get_or_build(build_key, || async {
            if let Some(message) = known_failure() {
                return Err(build_err(message.to_string()));
            }
            let extracted = ctx
                .artifacts
                .get(&source.url, &source.digest)
                .await
                .map_err(|e| Error::Artifact {
                    revision: revision.clone(),
                    message: e.to_string(),
                })?;
            input.artifact_dir = extracted.dir.clone();
            run_build(ctx, build_key, input).await.map_err(build_err)
        })
        .await?;
    let mut yaml = built.yaml.clone();
    // From here the text may hold decrypted values: errors about it never show them.
    let revealed = &built.revealed;
    let build_err = |message: String| {
        build_err(substitute::scrub(
            &message,
            revealed.iter().map(String::as_str),
        ))
    };
    if let Some(message) = still_encrypted(&yaml, keys.is_some()) {
        return Err(build_err(message));
    }
    let substituted = substitute::should_substitute(spec.post_build.as_ref(), &vars);
    if substituted {
        yaml = substitute::substitute(&yaml, &vars, ctx.settings.strict_substitution)
            .map_err(|e| build_err(hide_revealed_text(e, revealed)))?;
    }
    // The text now holds the variables' values, some perhaps from Secrets: errors about it
    // never show them either.
    let build_err = |message: String| {
        if substituted {
            build_err(substitute::scrub_values(&message, &vars))
        } else {
            build_err(message)
        }
    };
    let limit = ctx.settings.max_render_objects;
    let documents = manifests::split_documents(&yaml).len();
    if limit > 0 && documents > limit {
        return Err(build_err(format!(
            "the render of '{}' has {documents} objects, over the limit of {limit} objects per \
             Kustomization: split it into several Kustomizations",
            spec.path.as_deref().unwrap_or("./")
        )));
    }
    let mut objects = manifests::parse(&yaml).map_err(|e| build_err(e.to_string()))?;
    if objects.is_empty() {
        return Err(build_err(format!(
            "the render of '{}' is empty: refusing to apply, and nothing is pruned",
            spec.path.as_deref().unwrap_or("./")
        )));
    }
    if let Some(common) = &spec.common_metadata {
        manifests::set_common_metadata(&mut objects, common);
    }
    manifests::stamp_owner(&mut objects, &ks.name_any(), &ns);
    let scopes = scopes_of(&clients.target.client, &cluster.kinds, &objects).await;
    place_all(&mut objects, default_namespace, &scopes);
    evict_unused_artifacts(ctx);
    // A render with decrypted Secrets is recorded by a digest keyed with the decryption keys.
    let digest_key = keys.as_ref().map(|k| k.fingerprint().as_slice());
    let digest = inventory::render_digest_keyed(&objects, digest_key)
        .map_err(|e| build_err(e.to_string()))?;
    let objects: Vec<Desired> = objects
        .into_iter()
        .map(|object| {
            let id = ObjectId::of(&object).map_err(|e| build_err(e.to_string()))?;
            Ok(Desired::new(id, &object))
        })
        .collect::<Result<_, Error>>()?;
    if let Some(message) = duplicate(&objects).or_else(|| unrecordable(&objects)) {
        return Err(build_err(message));
    }
    Ok(Arc::new(Render {
        key,
        revision: revision.clone(),
        provenance,
        digest,
        objects,
    }))
}

/// The build input of `spec` as its pass builds it; the build cache's key follows it.
fn build_input(ctx: &Context, spec: &KustomizationSpec) -> build::BuildInput {
    let mut input = build::BuildInput::new("", &ctx.settings.kustomize).with_spec(spec);
    input.allow_remote_bases = ctx.settings.allow_remote_bases;
    input.timeout = spec.timeout().unwrap_or(input.timeout);
    input.work_root = Some(ctx.artifacts.scratch_dir());
    input.max_objects = ctx.settings.max_render_objects;
    input.batcher = Some(ctx.batcher.clone());
    input
}

/// The most builds ahead of their passes at once.
pub const AHEAD: usize = 16;

/// Starts the build of `ks` at `repo`'s new artifact ahead of its pass, into the build cache
/// that the pass reads: the pass then waits for this build (or finds its output) instead of
/// running its own. Builds ahead run outside the pass workers (`--concurrency`), so that they can
/// wait for each other and run several to a kustomize process ([`build::Batcher`]), which a
/// pass cannot without holding a worker. Not for a Kustomization that is suspended, being
/// deleted, decrypts (its keys are read in its pass, as the Kustomization's ServiceAccount), or
/// names a source in another namespace when such references are refused. A build that fails
/// here is not kept: the pass builds again and reports it.
pub fn build_ahead(ctx: &Arc<Context>, ks: &Kustomization, repo: &Source) {
    if ks.spec.suspend || ks.spec.decryption.is_some() || ks.metadata.deletion_timestamp.is_some() {
        return;
    }
    // A reference the pass would refuse builds nothing ahead either.
    if !ctx.settings.allow_cross_namespace_refs && repo.namespace() != ks.namespace() {
        return;
    }
    let Some(artifact) = repo.status.as_ref().and_then(|s| s.artifact.as_ref()) else {
        return;
    };
    let Some(digest) = artifact.digest.clone() else {
        return;
    };
    let url = artifact.url.clone();
    let mut input = build_input(ctx, &ks.spec);
    input.together = true;
    let key = BuildKey::of(&digest, &input);
    if ctx.builds.failure(key).is_some() || !lock(&ctx.ahead_keys).insert(key) {
        return;
    }
    let ctx = ctx.clone();
    let name = format!("{}/{}", ks.namespace().unwrap_or_default(), ks.name_any());
    tokio::spawn(async move {
        let _ahead = AheadKey {
            ctx: ctx.clone(),
            key,
        };
        let Ok(_slot) = ctx.ahead.acquire().await else {
            return;
        };
        let built = ctx
            .builds
            .get_or_build(key, || async {
                if let Some(message) = ctx.builds.failure(key) {
                    return Err(message.to_string());
                }
                let extracted = ctx
                    .artifacts
                    .get(&url, &digest)
                    .await
                    .map_err(|e| e.to_string())?;
                input.artifact_dir = extracted.dir.clone();
                run_build(&ctx, key, input).await
            })
            .await;
        if let Err(error) = built {
            tracing::debug!(kustomization = %name, %error, "a build ahead of the pass failed");
        }
    });
}

/// A build ahead of its pass, known to passes until it ends.
struct AheadKey {
    ctx: Arc<Context>,
    key: BuildKey,
}

impl Drop for AheadKey {
    fn drop(&mut self) {
        lock(&self.ctx.ahead_keys).remove(&self.key);
    }
}

/// The message of a substitution error, without the text it quotes when that text may be part
/// of a decrypted value: a syntax error quotes up to 40 characters of the rendered text, which
/// may start inside a value and so never hold it whole for [`substitute::scrub`] to find. Any
/// 4 characters in common with a revealed text hide the quote (a false alarm only costs the
/// quote).
fn hide_revealed_text(error: substitute::SubstituteError, revealed: &[String]) -> String {
    if let substitute::SubstituteError::Expand {
        object,
        source: substitute::ExpandError::Syntax { position, problem },
    } = &error
    {
        let chars: Vec<char> = position.chars().collect();
        let shared = chars.windows(4).any(|window| {
            let piece: String = window.iter().collect();
            revealed.iter().any(|text| text.contains(&piece))
        });
        if shared {
            return format!(
                "substitution in {object} failed: bad substitution: {problem} (the text is not \
                 shown: it may be part of a decrypted value)"
            );
        }
    }
    error.to_string()
}

/// Reads the keys of `spec.decryption.secretRef` with the Kustomization's identity (`client`).
/// Talks to the API server. Errors name the Secret and the key, never key material.
pub async fn read_keys(
    client: &kube::Client,
    namespace: &str,
    decryption: &mooring_api::kustomization::Decryption,
) -> Result<Arc<Keys>, String> {
    let Some(secret_ref) = &decryption.secret_ref else {
        // Without a Secret nothing can be decrypted: an encrypted file fails naming its
        // recipients.
        return Ok(Arc::new(Keys::default()));
    };
    let name = &secret_ref.name;
    let api: kube::Api<Secret> = kube::Api::namespaced(client.clone(), namespace);
    let secret = api
        .get_opt(name)
        .await
        .map_err(|e| format!("reading the decryption Secret '{name}' failed: {e}"))?
        .ok_or_else(|| {
            format!("the decryption Secret '{name}' (spec.decryption.secretRef) was not found")
        })?;
    let data: BTreeMap<String, Vec<u8>> = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    let keys = Keys::from_secret_data(&data)
        .map_err(|e| format!("the decryption Secret '{name}': {e}"))?;
    if keys.is_empty() {
        return Err(format!(
            "the decryption Secret '{name}' holds no key named *.agekey (age) or *.asc (OpenPGP)"
        ));
    }
    Ok(Arc::new(keys))
}

/// A message naming the first document of the render that still carries SOPS metadata: it
/// was not decrypted (no `spec.decryption`, or it does not come from a file of the artifact)
/// and must not be applied as it is.
pub fn still_encrypted(yaml: &str, decryption: bool) -> Option<String> {
    let document = manifests::split_documents(yaml)
        .into_iter()
        .find(|d| decrypt::is_encrypted_document(d))?;
    let object: serde_json::Value = serde_saphyr::from_str(document).unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or("object");
    let name = object["metadata"]["name"].as_str().unwrap_or("?");
    Some(if decryption {
        format!(
            "{kind}/{name} is still SOPS-encrypted after the build: only the files of the \
             artifact that kustomize reads are decrypted"
        )
    } else {
        format!(
            "{kind}/{name} is SOPS-encrypted: set spec.decryption to decrypt it; refusing to \
             apply it encrypted"
        )
    })
}

/// The first object the render holds twice (kustomize refuses duplicates, but substitution or
/// namespace placement can still make two documents one object: applying both would let one
/// silently win), as a message naming it and both documents.
fn duplicate(objects: &[Desired]) -> Option<String> {
    let mut seen: BTreeMap<&ObjectId, usize> = BTreeMap::new();
    for (index, desired) in objects.iter().enumerate() {
        if let Some(first) = seen.insert(&desired.id, index) {
            return Some(format!(
                "the render holds {} twice (documents {first} and {index}, after \
                 substitution): refusing to apply either",
                desired.id.subject()
            ));
        }
    }
    None
}

/// The first object whose inventory id would not read back as itself (a name holding `_`,
/// which separates the fields of an id): recorded in `status.inventory`, it would make every
/// later pass fail on reading the inventory.
fn unrecordable(objects: &[Desired]) -> Option<String> {
    objects.iter().find_map(|desired| {
        let id = desired.id.to_string();
        (ObjectId::parse(&id).ok().as_ref() != Some(&desired.id)).then(|| {
            format!(
                "{}: the name cannot be recorded in status.inventory (its ids are \
                 <namespace>_<name>_<group>_<kind>, so a name holds no '_'): rename the object",
                desired.id.subject()
            )
        })
    })
}

/// Per (apiVersion, kind): whether its objects are namespaced, for the kinds that discovery or
/// a CRD in the set defines; a kind neither knows is left out (the apply names it). Talks to
/// the API server for group-versions not cached yet.
pub async fn scopes_of(
    client: &kube::Client,
    kinds: &KindCache,
    objects: &[DynamicObject],
) -> BTreeMap<(String, String), bool> {
    let crds = CrdKinds::from_objects(objects);
    let wanted: HashSet<(String, String)> = objects
        .iter()
        .filter_map(|o| o.types.as_ref())
        .map(|t| (t.api_version.clone(), t.kind.clone()))
        .collect();
    let mut scopes = BTreeMap::new();
    for (api_version, kind) in wanted {
        let served = kinds
            .resolve(client, &api_version, &kind)
            .await
            .ok()
            .flatten();
        let namespaced = match served {
            Some(resolved) => Some(resolved.namespaced()),
            None => {
                let (group, version) = crate::apply::split_api_version(&api_version);
                crds.resolve(group, version, &kind)
                    .map(|(resolved, _)| resolved.namespaced())
            }
        };
        if let Some(namespaced) = namespaced {
            scopes.insert((api_version, kind), namespaced);
        }
    }
    scopes
}

/// Fixes the namespace of every object whose scope is known: a namespaced object keeps its own
/// namespace or gets `default_namespace` (kustomize has already written `targetNamespace` into
/// every namespaced object); a cluster-scoped one has none. Apply, inventory, drift, health and
/// prune all use this one value.
pub fn place_all(
    objects: &mut [DynamicObject],
    default_namespace: &str,
    scopes: &BTreeMap<(String, String), bool>,
) {
    for obj in objects {
        let Some(key) = ObjectKey::of(obj) else {
            continue;
        };
        if let Some(&namespaced) = scopes.get(&(key.api_version(), key.kind)) {
            place(obj, namespaced, default_namespace);
        }
    }
}

/// Removes extracted artifacts that no source points at any more; asked for after each render,
/// so the cache holds about one tree per source, and run at most once per
/// [`crate::context::ARTIFACT_EVICTION_SPACING`]: each run reads every source and the cache
/// directory, which at one run per render grew with the square of the number of
/// Kustomizations.
fn evict_unused_artifacts(ctx: &Context) {
    let sources = ctx.sources.clone();
    let artifacts = ctx.artifacts.clone();
    ctx.artifact_evictions.request(async move {
        let keep: HashSet<String> = sources
            .state()
            .iter()
            .filter_map(|s| s.status.as_ref()?.artifact.as_ref()?.digest.clone())
            .collect();
        match artifacts.retain(&keep).await {
            Ok(0) => {}
            Ok(evicted) => tracing::debug!(evicted, "evicted unused artifacts"),
            Err(e) => tracing::warn!(error = %e, "evicting unused artifacts failed"),
        }
    });
}

/// Runs the build of `key` (counted in `builds_total`) and keeps its failure when running it
/// again would fail the same way ([`build::BuildError::repeats`]).
async fn run_build(
    ctx: &Context,
    key: BuildKey,
    input: build::BuildInput,
) -> Result<build::Built, String> {
    let allow_remote = input.allow_remote_bases;
    ctx.metrics.builds.inc();
    build::build_revealing(input).await.map_err(|e| {
        let message = e.to_string();
        if e.repeats(allow_remote) {
            ctx.builds.failed(key, &message);
        }
        message
    })
}

/// Whether `ks` carries a reconcile request its status has not answered yet.
fn reconcile_requested(ks: &Kustomization) -> bool {
    let handled = ks
        .status
        .as_ref()
        .and_then(|s| s.last_handled_reconcile_at.as_deref());
    ks.annotations()
        .get(RECONCILE_REQUESTED_AT_ANNOTATION)
        .is_some_and(|asked| handled != Some(asked.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(value: serde_json::Value) -> DynamicObject {
        serde_json::from_value(value).expect("object")
    }

    fn desired(name: &str) -> Desired {
        let object = obj(json!({"apiVersion": "v1", "kind": "ConfigMap",
                                "metadata": {"name": name, "namespace": "apps"}}));
        Desired::new(ObjectId::of(&object).expect("id"), &object)
    }

    #[test]
    fn a_renders_inventory_is_the_one_its_objects_record() {
        let objects = vec![
            obj(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                       "metadata": {"name": "web", "namespace": "apps"}})),
            obj(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}})),
            obj(json!({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "a", "namespace": "apps"}})),
        ];
        let render = Render {
            key: 1,
            revision: "main@sha1:0".into(),
            provenance: Default::default(),
            digest: "sha256:0".into(),
            objects: objects
                .iter()
                .map(|o| Desired::new(ObjectId::of(o).expect("id"), o))
                .collect(),
        };
        let inventory = render.inventory();
        assert_eq!(
            inventory,
            inventory::inventory_of(&objects).expect("inventory")
        );
        let entries: Vec<(&str, &str)> = inventory
            .entries
            .iter()
            .map(|e| (e.id.as_str(), e.v.as_str()))
            .collect();
        assert_eq!(
            entries,
            [
                ("_apps__Namespace", "v1"),
                ("apps_a__ConfigMap", "v1"),
                ("apps_web_apps_Deployment", "apps/v1"),
            ]
        );
    }

    #[test]
    fn one_object_twice_is_refused_naming_it() {
        assert_eq!(duplicate(&[desired("a"), desired("b")]), None);
        let message = duplicate(&[desired("a"), desired("b"), desired("a")]).expect("twice");
        assert!(message.contains("ConfigMap/apps/a twice"), "{message}");
        assert!(message.contains("documents 0 and 2"), "{message}");
    }

    #[test]
    fn names_the_inventory_cannot_hold_are_refused_naming_them() {
        assert_eq!(unrecordable(&[desired("a-b"), desired("system:x")]), None);
        let message = unrecordable(&[desired("a"), desired("Not_Valid")]).expect("unrecordable");
        assert!(
            message.starts_with("ConfigMap/apps/Not_Valid:"),
            "{message}"
        );
    }

    #[test]
    fn namespaces_are_fixed_once_by_scope() {
        let mut objects = vec![
            obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}})),
            obj(json!({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "b", "namespace": "own"}})),
            obj(
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                       "metadata": {"name": "c", "namespace": "stamped"}}),
            ),
            obj(
                json!({"apiVersion": "example.com/v1", "kind": "Unknown", "metadata": {"name": "d"}}),
            ),
        ];
        let scopes = BTreeMap::from([
            (("v1".to_string(), "ConfigMap".to_string()), true),
            (
                (
                    "rbac.authorization.k8s.io/v1".to_string(),
                    "ClusterRole".to_string(),
                ),
                false,
            ),
        ]);
        place_all(&mut objects, "apps", &scopes);
        let namespaces: Vec<Option<&str>> = objects
            .iter()
            .map(|o| o.metadata.namespace.as_deref())
            .collect();
        assert_eq!(namespaces, vec![Some("apps"), Some("own"), None, None]);
        let id = ObjectId::of(&objects[0]).expect("id");
        assert_eq!(id.to_string(), "apps_a__ConfigMap");
    }
}
