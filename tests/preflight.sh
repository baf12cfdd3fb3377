#!/usr/bin/env bash
# Before `make test`: the system programs the tests run for real. Says in one line what
# is missing and how to install it, instead of a FileNotFoundError minutes into pytest.
set -u
missing=()
command -v chronyd >/dev/null || missing+=("chronyd (chrony)")
command -v promtool >/dev/null || missing+=("promtool (prometheus)")
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || missing+=("chromium")
command -v rsync >/dev/null || missing+=("rsync")
command -v ssh >/dev/null || missing+=("ssh (openssh-client)")
command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || missing+=("sshd (openssh-server)")
# the sync bench's smoke test: shifted clocks (libfaketime), a shim built with cc, netns
compgen -G "/usr/lib/*/faketime/libfaketime.so.1" >/dev/null || missing+=("libfaketime")
command -v cc >/dev/null || missing+=("cc (gcc)")
command -v ip >/dev/null || [ -x /usr/sbin/ip ] || missing+=("ip (iproute2)")
# Debian's postgresql keeps its server programs out of PATH, one folder per major version.
for tool in pg_ctl initdb; do
  command -v "$tool" >/dev/null || compgen -G "/usr/lib/postgresql/*/bin/$tool" >/dev/null ||
    missing+=("$tool (postgresql)")
done
if [ ${#missing[@]} -gt 0 ]; then
  list=$(printf '%s, ' "${missing[@]}")
  echo "make test: missing ${list%, }; install them with: sudo apt-get install chrony prometheus chromium postgresql rsync openssh-server openssh-client libfaketime gcc iproute2" >&2
  exit 1
fi
