#!/usr/bin/env bash
# Makes sure the system programs the tests use are present: git (with git-http-backend),
# OpenSSH's sshd, ssh and ssh-keygen, and GnuPG: gpg and its agent (OpenPGP keys of the SOPS
# tests, signed commits and tags of the verification tests; the controllers themselves never run
# gpg). Installs them from Debian's packages when running as root with apt-get.
set -euo pipefail

missing=()
command -v git >/dev/null 2>&1 || missing+=(git)
[ -x /usr/sbin/sshd ] || command -v sshd >/dev/null 2>&1 || missing+=(openssh-server)
command -v ssh >/dev/null 2>&1 || missing+=(openssh-client)
command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v gpg >/dev/null 2>&1 || missing+=(gnupg)
command -v gpg-agent >/dev/null 2>&1 || missing+=(gnupg)
command -v gpgconf >/dev/null 2>&1 || missing+=(gnupg)

[ ${#missing[@]} -eq 0 ] && exit 0

# Deduplicate.
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "[deps] installing ${missing[*]} from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; } \
    || { echo "[deps] error: apt-get could not install ${missing[*]}" >&2; exit 1; }
else
  echo "[deps] error: the tests need these packages: ${missing[*]} (install them, e.g. apt-get install ${missing[*]})" >&2
  exit 1
fi
