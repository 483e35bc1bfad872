//! Real components for Mooring's tests: a Kubernetes control plane (etcd + kube-apiserver) and a
//! git server (git http-backend over HTTP/HTTPS, sshd), all on 127.0.0.1.

pub mod certs;
pub mod control_plane;
pub mod controllers;
pub mod env;
pub mod examples;
pub mod faults;
pub mod git;
pub mod process;
pub mod props;
pub mod proxy;
pub mod sops;
pub mod tools;
pub mod wait;

pub use env::{TestEnv, shared_control_plane, test_env, test_env_on, test_env_with};
