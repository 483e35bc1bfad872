//! Real components for Mooring's tests: a Kubernetes control plane (etcd + kube-apiserver) and a
//! git server (git http-backend over HTTP/HTTPS, sshd), all on 127.0.0.1.

pub mod git;
pub mod process;
