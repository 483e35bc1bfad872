//! The Mooring API: the GitRepository, Kustomization and Receiver custom resources, their status
//! conditions, revision and digest formats, and the names (annotations, labels, finalizer, field
//! managers) both controllers share.
//!
//! Field names, types and defaults follow Flux's v1 APIs, so a Flux manifest works after changing
//! only its `apiVersion`. This crate holds types and pure functions only.

pub mod common;
pub mod conditions;
pub mod constants;
pub mod crd;
pub mod digest;
pub mod docs;
pub mod duration;
pub mod fields;
pub mod gitrepository;
pub mod kustomization;
pub mod receiver;
pub mod revision;

pub use common::{Artifact, LocalObjectReference, SecretKeyReference};
pub use crd::{crds, render_crds};
pub use digest::{Digest, DigestAlgorithm, DigestError};
pub use duration::{DurationError, parse_duration};
pub use gitrepository::{
    GitCheckout, GitPerson, GitProvenance, GitProvider, GitRepository, GitRepositoryInclude,
    GitRepositoryRef, GitRepositorySpec, GitRepositoryStatus, GitRepositoryVerification, GitSigner,
    GitVerificationMode,
};
pub use kustomization::{DeletionPolicy, Kustomization, KustomizationSpec, KustomizationStatus};
pub use receiver::{Receiver, ReceiverResource, ReceiverSpec, ReceiverStatus, ReceiverType};
pub use revision::{CommitAlgorithm, Revision, RevisionError};
