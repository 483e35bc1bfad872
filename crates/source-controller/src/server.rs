//! Artifact HTTP server (placeholder until written).
