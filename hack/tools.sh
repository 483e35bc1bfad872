#!/usr/bin/env bash
# Builds the pinned test tools (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl,
# etcd, kustomize, helm, sops, age, age-keygen, kwok) from their upstream Go modules into $MOORING_TOOLS_DIR (default
# ~/.cache/mooring/tools).
# A tool that is already built at the pinned version is skipped.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tool-versions.env
source "$here/tool-versions.env"

tools_dir="${MOORING_TOOLS_DIR:-$HOME/.cache/mooring/tools}"
bin_dir="$tools_dir/bin"
stamp_dir="$tools_dir/stamps"
mkdir -p "$bin_dir" "$stamp_dir"

say() { printf '[tools] %s\n' "$*" >&2; }
die() { printf '[tools] error: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || die "Go is not installed (needed only to build the test tools; install Go >= 1.26 and retry)"
go_minor="$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')"
[ "${go_minor:-0}" -ge 26 ] || die "Go $(go env GOVERSION) is too old: the pinned tools need Go >= 1.26"

# Checked once, only when something has to be built: cached tools need no network.
proxy_checked=""
check_proxy() {
  [ -n "$proxy_checked" ] && return
  proxy_checked=1
  local proxy
  proxy="$(go env GOPROXY | cut -d, -f1)"
  if [ "$proxy" != "off" ] && [ "$proxy" != "direct" ] && command -v curl >/dev/null 2>&1; then
    curl -fsS --max-time 20 -o /dev/null "$proxy/k8s.io/kubernetes/@v/$KUBERNETES_VERSION.info" \
      || die "the Go module proxy $proxy cannot be reached (or does not serve k8s.io/kubernetes $KUBERNETES_VERSION)"
  fi
}

export CGO_ENABLED=0 GOFLAGS="-buildvcs=false -trimpath"
ldflags="-s -w"

# is_built NAME VERSION: the binary exists and was built at this version.
is_built() { [ -x "$bin_dir/$1" ] && [ "$(cat "$stamp_dir/$1" 2>/dev/null)" = "$2" ]; }
mark_built() { echo "$2" >"$stamp_dir/$1"; }

build_kubernetes() {
  local want=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd) missing=()
  for t in "${want[@]}"; do
    local v="$KUBERNETES_VERSION"; [ "$t" = etcd ] && v="$ETCD_VERSION"
    is_built "$t" "$v" || missing+=("$t")
  done
  [ ${#missing[@]} -eq 0 ] && { say "kubernetes $KUBERNETES_VERSION and etcd $ETCD_VERSION: already built"; return; }
  check_proxy

  # k8s.io/kubernetes requires its staging modules at v0.0.0 and cannot be `go install`ed, so it is
  # built from a throwaway module that replaces each staging module with its published v0.Y.Z.
  local staging_version="v0${KUBERNETES_VERSION#v1}"
  local work="$tools_dir/src/kubernetes-$KUBERNETES_VERSION"
  mkdir -p "$work"
  if [ ! -f "$work/go.sum" ]; then
    say "preparing a build module for k8s.io/kubernetes $KUBERNETES_VERSION (staging modules at $staging_version)"
    local upstream_mod
    upstream_mod="$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
    [ -f "$upstream_mod" ] || die "could not download k8s.io/kubernetes $KUBERNETES_VERSION"
    {
      echo "module mooring.dev/tools/kubernetes"
      echo
      echo "go 1.26.0"
      echo
      echo "require ("
      echo "	k8s.io/kubernetes $KUBERNETES_VERSION"
      echo "	go.etcd.io/etcd/server/v3 $ETCD_VERSION"
      echo ")"
      echo
      echo "replace ("
      grep -E '^\s*k8s\.io/[a-z0-9-]+ v0\.0\.0$' "$upstream_mod" | awk -v v="$staging_version" '{print "\t" $1 " => " $1 " " v}' | sort -u
      echo ")"
    } >"$work/go.mod"
  fi
  # Rewritten every time, so that a build module prepared before a tool was added learns of it.
  local tools_go
  tools_go="$(cat <<'GO'
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
)"
  if [ ! -f "$work/go.sum" ] || [ "$(cat "$work/tools.go" 2>/dev/null)" != "$tools_go" ]; then
    printf '%s\n' "$tools_go" >"$work/tools.go"
    say "resolving module graph (go mod tidy; downloads a few hundred MB the first time)"
    (cd "$work" && go mod tidy -e >/dev/null) || die "go mod tidy failed for the kubernetes build module"
  fi
  for t in "${missing[@]}"; do
    local pkg="k8s.io/kubernetes/cmd/$t" v="$KUBERNETES_VERSION"
    [ "$t" = etcd ] && { pkg="go.etcd.io/etcd/server/v3"; v="$ETCD_VERSION"; }
    say "building $t $v (several minutes on 2 cores the first time)"
    local start=$SECONDS
    (cd "$work" && go build -ldflags "$ldflags" -o "$bin_dir/$t.tmp" "$pkg") || die "building $t failed"
    mv "$bin_dir/$t.tmp" "$bin_dir/$t"
    mark_built "$t" "$v"
    say "built $t in $((SECONDS - start))s"
  done
}

go_install_tool() { # NAME MODULE_PACKAGE VERSION
  local name="$1" pkg="$2" v="$3"
  if is_built "$name" "$v"; then say "$name $v: already built"; return; fi
  check_proxy
  say "building $name $v"
  local start=$SECONDS
  GOBIN="$bin_dir" go install -ldflags "$ldflags" "$pkg@$v" || die "go install $pkg@$v failed"
  mark_built "$name" "$v"
  say "built $name in $((SECONDS - start))s"
}

go_install_tool kustomize sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION"
go_install_tool helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION"
go_install_tool sops github.com/getsops/sops/v3/cmd/sops "$SOPS_VERSION"
go_install_tool age filippo.io/age/cmd/age "$AGE_VERSION"
go_install_tool age-keygen filippo.io/age/cmd/age-keygen "$AGE_VERSION"
# kwok simulates nodes and pod lifecycles; it is its own module (with its own k8s.io/* versions).
go_install_tool kwok sigs.k8s.io/kwok/cmd/kwok "$KWOK_VERSION"
build_kubernetes
say "tools ready in $bin_dir"
