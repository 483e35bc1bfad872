//! Artifact storage (placeholder until written).
