#!/usr/bin/env bash
# Writes crates/runtime/link/hot-text.txt, the list of functions that the release build of both
# controllers lays out together at the start of their code (crates/runtime/link/build.rs says
# why). The list is what the controllers execute in the benchmark (`mooring-bench`, every scenario
# but P6, N=1000 unless HOT_TEXT_N is set) run under valgrind's callgrind: each function of either
# binary that ran, the most executed first.
#
# Usage: hack/hot-text.sh <directory with release/mooring-bench and both controllers>
# (`make hot-text` builds them first). Takes about 5 minutes on 2 cores. With
# HOT_TEXT_PROFILES=<dir>, reads the callgrind profiles of an earlier run from <dir> instead.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/../crates/runtime/link/hot-text.txt"
bin_dir="${1:?usage: hack/hot-text.sh <cargo target directory>}/release"
n="${HOT_TEXT_N:-1000}"

say() { printf '[hot-text] %s\n' "$*" >&2; }
die() { printf '[hot-text] error: %s\n' "$*" >&2; exit 1; }

if ! command -v valgrind >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing valgrind from Debian's packages"
    apt-get install -y -q valgrind >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q valgrind >/dev/null; }
  else
    die "valgrind is not installed (Debian: apt-get install valgrind)"
  fi
fi
for b in mooring-bench mooring-source-controller mooring-kustomize-controller; do
  [ -x "$bin_dir/$b" ] || die "$bin_dir/$b is missing: build the release binaries first"
done

work="$(mktemp -d "${TMPDIR:-/tmp}/mooring-hot-text-XXXXXX")"
trap 'kill "${dumper:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

if [ -n "${HOT_TEXT_PROFILES:-}" ]; then
  # Profiles of an earlier run (callgrind's source.<pid>* and kustomize.<pid>* files).
  profiles="$HOT_TEXT_PROFILES"
else
  profiles="$work"
  # The controllers start themselves again to set glibc's tunables unless these are set, and
  # callgrind would not follow them. Leader election is on, as in the Helm chart, so that its
  # code counts too (the Lease is in the namespace `default`).
  grind="env GLIBC_TUNABLES=glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=131072 \
  valgrind --tool=callgrind --demangle=no --dump-instr=no"
  source_cmd="$grind --callgrind-out-file=$work/source.%p {bin} --leader-elect=true --log-format=json \
  --storage-path={work}/storage --git-cache-path={work}/git-cache \
  --storage-adv-addr=http://127.0.0.1:{artifact_port} --artifact-addr=127.0.0.1:{artifact_port} \
  --receiver-addr=127.0.0.1:{extra_port} --metrics-addr=127.0.0.1:{ops_port}"
  kustomize_cmd="$grind --callgrind-out-file=$work/kustomize.%p {bin} --leader-elect=true --log-format=json \
  --artifact-cache-path={work}/artifacts --kustomize-path={kustomize} --metrics-addr=127.0.0.1:{ops_port}"

  # The bench stops the controllers with a signal that leaves callgrind no time to write its
  # profile, so the profiles are written every 30 s while it runs (each dump starts a new file).
  (
    while sleep 30; do
      for pid in $(pgrep -f "valgrind.*mooring-(source|kustomize)-controller" || true); do
        timeout 20 callgrind_control --dump "$pid" >/dev/null 2>&1 || true
      done
    done
  ) &
  dumper=$!

  say "running the benchmark (N=$n) with both controllers under callgrind"
  if ! "$bin_dir/mooring-bench" --n "$n" --out-dir "$work/results" \
      --source-cmd "$source_cmd" --kustomize-cmd "$kustomize_cmd" >"$work/bench.log" 2>&1; then
    # Slowed down 20-50 times, a scenario may miss its deadline; the profiles still count.
    say "the benchmark failed under callgrind (its log: last lines below); using the profiles"
    tail -5 "$work/bench.log" >&2
  fi
  kill "$dumper" 2>/dev/null || true
  ls "$work"/source.*.* "$work"/kustomize.*.* >/dev/null 2>&1 || die "no profile was written"
fi

# Functions defined in either binary: the list names no other.
for b in mooring-source-controller mooring-kustomize-controller; do
  nm "$bin_dir/$b" | awk '$2 == "t" || $2 == "T" { print $3 }'
done | sort -u >"$work/defined"

# Each profile file: `fn=(id) name` names a function the first time, `fn=(id)` after; the lines
# that follow a `fn=` are its own costs (position, then instructions), except the one line after
# each `calls=`, which is the inclusive cost of a call. Functions only ever called (`cfn=`) ran
# too, and `name'2` is `name` entered recursively. Output: instructions and name of every
# function that ran.
awk -v quote="'" '
  FNR == 1 { delete names; fn = ""; after_call = 0 }
  /^c?fn=/ {
    called = ($0 ~ /^cfn=/)
    id = $0; sub(/^c?fn=\(/, "", id); sub(/\).*/, "", id)
    if (match($0, /\) /)) { names[id] = substr($0, RSTART + 2); sub(quote "[0-9]+$", "", names[id]) }
    ran[names[id]] += 0
    if (!called) fn = names[id]
    next
  }
  /^calls=/ { after_call = 1; next }
  /^[0-9+*-]/ {
    if (after_call) { after_call = 0; next }
    if (fn != "") ran[fn] += $2
  }
  END { for (f in ran) print ran[f], f }
' "$profiles"/source.* "$profiles"/kustomize.* | sort -k1,1nr -k2,2 | awk '{ print $2 }' >"$work/ran"

awk 'NR == FNR { defined[$1] = 1; next } $1 in defined' "$work/defined" "$work/ran" >"$out"
say "$(wc -l <"$out") functions written to ${out#"$here/../"}"
