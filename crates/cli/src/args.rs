//! The command line: kubectl's connection flags on every command, one subcommand per module.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

/// See, audit and steer Mooring's GitRepositories and Kustomizations.
#[derive(Parser, Debug)]
#[command(name = "mooring", version)]
pub struct Cli {
    /// Flags every command takes.
    #[command(flatten)]
    pub global: Global,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// How to reach the cluster and how to print, as kubectl spells them.
#[derive(Args, Debug, Clone, Default)]
pub struct Global {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then the
    /// in-cluster configuration).
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current context).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// The namespace (default: the context's namespace, else `default`).
    #[arg(short = 'n', long, global = true, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// Output format: a human table or text when omitted.
    #[arg(short = 'o', long, global = true, value_enum, value_name = "FORMAT")]
    pub output: Option<Format>,
}

/// A machine-readable output format.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON.
    Json,
    /// YAML.
    Yaml,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// List sources and Kustomizations: readiness, revision, suspension, age, message.
    Get(GetArgs),
    /// Ask the controller to reconcile an object now, and wait for the outcome.
    Reconcile(ReconcileArgs),
    /// Stop reconciling an object (sets `spec.suspend: true`).
    Suspend(TargetArgs),
    /// Reconcile a suspended object again, and wait for the outcome.
    Resume(WaitArgs),
    /// The reconciliations a Kustomization recorded in `status.history`.
    History(KustomizationArgs),
    /// The objects a Kustomization applied, as a tree, with each object's health.
    Tree(KustomizationArgs),
    /// Which Kustomization applied an object, from which source, revision and when.
    Trace(TraceArgs),
    /// The objects a Kustomization would apply from a local checkout, as YAML.
    Build(BuildArgs),
    /// What applying a local checkout (or the current artifact) would change in the cluster.
    Diff(DiffArgs),
    /// Why an object is not Ready: the chain of objects it waits for, down to the cause.
    Why(WhyArgs),
    /// The Events about sources and Kustomizations (or one of them), newest last.
    Events(EventsArgs),
    /// The controllers' logs (from their pods, or a saved file), optionally about one object.
    Logs(LogsArgs),
}

/// What `get` lists.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetWhat {
    /// GitRepositories.
    #[value(alias = "source", alias = "gitrepositories", alias = "gitrepository")]
    Sources,
    /// Kustomizations.
    #[value(alias = "kustomization", alias = "ks")]
    Kustomizations,
    /// Both.
    All,
}

/// `mooring get`.
#[derive(Args, Debug)]
pub struct GetArgs {
    /// What to list.
    #[arg(value_enum)]
    pub what: GetWhat,
    /// List in every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// After listing, print a line for every change until interrupted.
    #[arg(short = 'w', long)]
    pub watch: bool,
}

/// The kind of object a command acts on.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// A GitRepository.
    #[value(alias = "gitrepository", alias = "gitrepo")]
    Source,
    /// A Kustomization.
    #[value(alias = "ks")]
    Kustomization,
}

/// A kind and a name.
#[derive(Args, Debug, Clone)]
pub struct TargetArgs {
    /// The kind.
    #[arg(value_enum)]
    pub kind: TargetKind,
    /// The object's name.
    pub name: String,
}

/// A kind and a name, and how long to wait for the reconciliation.
#[derive(Args, Debug, Clone)]
pub struct WaitArgs {
    /// The object.
    #[command(flatten)]
    pub target: TargetArgs,
    /// How long to wait for the outcome, for example `30s` or `5m`.
    #[arg(long, default_value = "5m", value_parser = parse_timeout)]
    pub timeout: Duration,
}

/// `mooring reconcile`.
#[derive(Args, Debug, Clone)]
pub struct ReconcileArgs {
    /// The object and the timeout.
    #[command(flatten)]
    pub wait: WaitArgs,
    /// For a Kustomization: reconcile its GitRepository first, and wait for it.
    #[arg(long)]
    pub with_source: bool,
}

/// Only Kustomizations.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum KustomizationKind {
    /// A Kustomization.
    #[value(alias = "ks")]
    Kustomization,
}

/// A Kustomization by name.
#[derive(Args, Debug, Clone)]
pub struct KustomizationArgs {
    /// The kind (only `kustomization`).
    #[arg(value_enum)]
    pub kind: KustomizationKind,
    /// The Kustomization's name.
    pub name: String,
}

/// `mooring trace`.
#[derive(Args, Debug, Clone)]
pub struct TraceArgs {
    /// The object's kind, resource or `kind.group`, as kubectl takes it: `ConfigMap`,
    /// `configmaps`, `deployment.apps`.
    pub kind: String,
    /// The object's name.
    pub name: String,
}

/// `mooring why`.
#[derive(Args, Debug, Clone)]
pub struct WhyArgs {
    /// `source` (or `gitrepository`), `kustomization` (or `ks`), or the kind of an object a
    /// Kustomization manages, as kubectl takes it: `ConfigMap`, `deployment.apps`.
    pub kind: String,
    /// The object's name.
    pub name: String,
}

/// `mooring events`.
#[derive(Args, Debug, Clone)]
pub struct EventsArgs {
    /// The kind of the one object whose Events to show (with its name).
    #[arg(value_enum, requires = "name")]
    pub kind: Option<TargetKind>,
    /// The object's name.
    pub name: Option<String>,
    /// The Events of every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// After listing, print each new or repeated Event until interrupted.
    #[arg(short = 'w', long)]
    pub watch: bool,
}

/// `mooring logs`.
#[derive(Args, Debug, Clone)]
pub struct LogsArgs {
    /// The kind of the one object whose lines to keep (with its name; `-n` is its namespace).
    #[arg(value_enum, requires = "name")]
    pub kind: Option<TargetKind>,
    /// The object's name.
    pub name: Option<String>,
    /// Read the logs from this file (saved with `kubectl logs`) instead of the pods.
    #[arg(long, value_name = "PATH")]
    pub from_file: Option<PathBuf>,
    /// The namespace of the controller pods (default: look in every namespace).
    #[arg(long, value_name = "NAMESPACE")]
    pub controller_namespace: Option<String>,
    /// Read only the last N lines of each pod's log.
    #[arg(long, value_name = "N")]
    pub tail: Option<i64>,
}

/// How to render: the kustomize binary and the substitution mode.
#[derive(Args, Debug, Clone)]
pub struct RenderArgs {
    /// The kustomize binary (the controller's is pinned; use the same version).
    #[arg(long, default_value = "kustomize", value_name = "PATH")]
    pub kustomize: PathBuf,
    /// Fail on a `postBuild` variable with no value and no default, as the controller does
    /// when run with `--strict-substitution=true`.
    #[arg(long)]
    pub strict_substitution: bool,
}

/// `mooring build`.
#[derive(Args, Debug, Clone)]
pub struct BuildArgs {
    /// The kind (only `kustomization`).
    #[arg(value_enum)]
    pub kind: KustomizationKind,
    /// The Kustomization's name.
    pub name: String,
    /// A local checkout of the source (its root), used in place of the artifact; `spec.path`
    /// is resolved inside it.
    #[arg(long, value_name = "DIR")]
    pub path: PathBuf,
    /// Rendering options.
    #[command(flatten)]
    pub render: RenderArgs,
}

/// `mooring diff`.
#[derive(Args, Debug, Clone)]
pub struct DiffArgs {
    /// The kind (only `kustomization`).
    #[arg(value_enum)]
    pub kind: KustomizationKind,
    /// The Kustomization's name.
    pub name: String,
    /// A local checkout of the source (its root), used in place of the artifact; `spec.path`
    /// is resolved inside it. Without it, the current artifact of the Kustomization's source is
    /// downloaded (its URL must be reachable from here).
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// Rendering options.
    #[command(flatten)]
    pub render: RenderArgs,
}

/// A `--timeout` value, in the duration syntax of the API (`30s`, `5m`, `1h`).
fn parse_timeout(value: &str) -> Result<Duration, String> {
    mooring_api::parse_duration(value).map_err(|e| e.to_string())
}

/// The process arguments, parsed into [`Cli`] with the program named as it was run: `kubectl
/// mooring` when kubectl ran us as its plugin.
pub fn program_args() -> Cli {
    let args: Vec<OsString> = std::env::args_os().collect();
    let plugin = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .is_some_and(|n| n == "kubectl-mooring");
    let mut command = Cli::command();
    if plugin {
        command = command.bin_name("kubectl mooring");
    }
    let matches = command.get_matches_from(args);
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}
