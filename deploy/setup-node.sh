#!/usr/bin/env bash
# Set up a Raspberry Pi (Raspberry Pi OS / Debian) as a camfleet node and/or coordinator.
#
#   sudo deploy/setup-node.sh --role agent --cam-id CAM_L --position left \
#        --fleet-token "$FLEET_TOKEN" --chrony client   (finds the coordinator over mDNS;
#        or --coordinator-url http://cam-c.local:8080)
#   sudo deploy/setup-node.sh --role both --cam-id CAM_C --position centre --chrony master
#   sudo deploy/setup-node.sh --role dashcam --cam-id DASH_1      (the USB dashcam mode)
#
# Idempotent: existing configuration, secrets and installed versions are kept. Units are
# installed and systemd reloaded, but enabled and started only with --enable. --root DIR
# installs under DIR (for trying it out, and for the tests; systemctl is then not run
# unless --systemctl is given); --no-apt, --no-install (the venvs) and --no-systemctl
# skip those steps. PYTHON=... picks the interpreter (default python3, 3.11 or newer).
set -euo pipefail

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

ROLE="" CAM_ID="" POSITION="other" COORDINATOR_URL="" FLEET_TOKEN="" CHRONY=""
ROOT="" DO_APT=1 DO_SYSTEMCTL="" DO_INSTALL=1 DO_ENABLE=0
PYTHON="${PYTHON:-python3}"
SRC="$(cd "$(dirname "$0")/.." && pwd)"
while [ $# -gt 0 ]; do
  case "$1" in
    --role) ROLE="$2"; shift 2 ;;
    --cam-id) CAM_ID="$2"; shift 2 ;;
    --position) POSITION="$2"; shift 2 ;;
    --coordinator-url) COORDINATOR_URL="$2"; shift 2 ;;
    --fleet-token) FLEET_TOKEN="$2"; shift 2 ;;
    --chrony) CHRONY="$2"; shift 2 ;;
    --root) ROOT="$2"; shift 2 ;;
    --no-apt) DO_APT=0; shift ;;
    --no-systemctl) DO_SYSTEMCTL=0; shift ;;
    --systemctl) DO_SYSTEMCTL=1; shift ;;
    --enable) DO_ENABLE=1; shift ;;
    --no-install) DO_INSTALL=0; shift ;;
    -h|--help) usage ;;
    *) echo "setup-node: unknown option $1" >&2; usage ;;
  esac
done

case "$ROLE" in agent|coordinator|both|dashcam) ;; *) echo "setup-node: --role agent|coordinator|both|dashcam is required" >&2; exit 2 ;; esac
case "$CHRONY" in ""|master|client) ;; *) echo "setup-node: --chrony master|client" >&2; exit 2 ;; esac
if [ "$ROLE" != coordinator ]; then
  [[ "$CAM_ID" =~ ^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$ ]] || { echo "setup-node: --cam-id like CAM_L is required" >&2; exit 2; }
fi

ETC="$ROOT/etc/camfleet"
OPT="$ROOT/opt/camfleet"
UNITS="$ROOT/etc/systemd/system"
token() { python3 -c 'import secrets; print(secrets.token_urlsafe(24))'; }
say() { printf 'setup-node: %s\n' "$*"; }

[ -n "$DO_SYSTEMCTL" ] || { if [ -z "$ROOT" ]; then DO_SYSTEMCTL=1; else DO_SYSTEMCTL=0; fi; }
VERSION="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$SRC/pyproject.toml")"
[[ "$VERSION" =~ ^[0-9][0-9A-Za-z._-]{0,63}$ ]] || { echo "setup-node: no version in $SRC/pyproject.toml" >&2; exit 1; }

printf '%s\n' "================================================================" \
  "  camfleet $VERSION: node setup (role $ROLE${CAM_ID:+, $CAM_ID})" \
  "================================================================"

# Prerequisites. The programs need Python 3.11 or newer; the packages come from apt,
# so the apt step needs Debian or Raspberry Pi OS (ID or ID_LIKE debian).
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
  found="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo none)"
  echo "setup-node: camfleet needs Python 3.11 or newer; $PYTHON is $found (Raspberry Pi OS bookworm has 3.11; or set PYTHON=...)" >&2
  exit 1
fi
say "python: $("$PYTHON" -c 'import sys; print(sys.version.split()[0])')"
if [ "$DO_APT" = 1 ]; then
  os_id="$( (. "${OS_RELEASE:-/etc/os-release}" 2>/dev/null && echo "$ID $ID_LIKE") || true)"
  case " $os_id " in
    *" debian "*|*" raspbian "*) say "os: $os_id" ;;
    *) echo "setup-node: the apt step needs Debian or Raspberry Pi OS (this is '${os_id:-unknown}'); install python3-venv, python3-pip and chrony yourself and re-run with --no-apt" >&2; exit 1 ;;
  esac
  command -v apt-get >/dev/null || { echo "setup-node: apt-get is not installed; re-run with --no-apt" >&2; exit 1; }
fi

# Write a file only if it is not there yet (configuration and secrets survive re-runs).
write_once() {
  local path="$1" mode="$2"
  if [ -e "$path" ]; then say "keeping $path"; cat >/dev/null; return; fi
  mkdir -p "$(dirname "$path")"
  local tmp="$path.tmp.$$"
  (umask 077; cat >"$tmp")
  chmod "$mode" "$tmp"
  sync "$tmp" 2>/dev/null || true
  mv -f "$tmp" "$path"
  say "wrote $path"
}

if [ "$DO_APT" = 1 ]; then
  apt-get update -qq
  apt-get install -y -qq python3-venv python3-pip chrony
  # picamera2 comes from Raspberry Pi OS; the venv sees it through --system-site-packages
  apt-get install -y -qq python3-picamera2 || say "python3-picamera2 not available (not a Pi?)"
  # the dashcam: USB hub ports, the upload to the NAS (lifepo4wered-cli comes from its maker)
  if [ "$ROLE" = dashcam ]; then apt-get install -y -qq uhubctl rsync openssh-client; fi
fi

if [ -z "$ROOT" ]; then
  id camfleet >/dev/null 2>&1 || useradd --system --home /var/lib/camfleet --create-home --groups video camfleet
  install -d -o camfleet -g camfleet /var/lib/camfleet /var/lib/camfleet-coordinator
fi

# The install layout the updater works on (docs/updates.md): base/ is a venv holding the
# third-party dependencies; versions/VERSION/venv holds one camfleet and sees base's
# packages through a .pth file; current -> versions/VERSION is what the units run. An
# update adds a folder beside it and swaps the link, so the old version stays whole.
if [ "$DO_INSTALL" = 1 ]; then
  mkdir -p "$OPT/versions"
  # --system-site-packages: python3-picamera2 from Raspberry Pi OS is importable
  [ -x "$OPT/base/bin/python" ] || "$PYTHON" -m venv --system-site-packages "$OPT/base"
  # A venv cannot be moved (its scripts name their interpreter by absolute path), so a
  # version is built in place and counts as installed only once .complete is written.
  DEST="$OPT/versions/$VERSION"
  if [ -e "$DEST/.complete" ] && [ -x "$DEST/venv/bin/camfleet" ]; then
    say "keeping $DEST (camfleet $VERSION is installed)"
  else
    wheels="$(mktemp -d)"
    # built from a copy: setuptools builds in the tree it is given (build/, *.egg-info)
    mkdir "$wheels/src"
    tar -C "$SRC" --exclude=./.git --exclude=./.venv --exclude=./build -cf - . | tar -C "$wheels/src" -xf -
    "$OPT/base/bin/pip" wheel --quiet --no-deps -w "$wheels" "$wheels/src"
    "$OPT/base/bin/pip" install --quiet "$wheels"/camfleet-*.whl   # the dependencies, into base
    "$OPT/base/bin/pip" uninstall --quiet -y camfleet   # the program lives per version
    rm -rf "$DEST"
    "$PYTHON" -m venv --system-site-packages "$DEST/venv"
    base_site="$("$OPT/base/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    own_site="$("$DEST/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    printf '%s\n' "$base_site" >"$own_site/camfleet-base.pth"
    "$DEST/venv/bin/pip" install --quiet --no-index --no-deps "$wheels"/camfleet-*.whl
    "$DEST/venv/bin/pip" check >/dev/null
    rm -rf "$wheels"
    printf '%s\n' "$VERSION" >"$DEST/.complete"
    sync
    say "installed camfleet $VERSION into $DEST"
  fi
  if [ "$(readlink "$OPT/current" 2>/dev/null)" != "versions/$VERSION" ]; then
    ln -sfn "versions/$VERSION" "$OPT/current.tmp"
    mv -Tf "$OPT/current.tmp" "$OPT/current"
    say "$OPT/current -> versions/$VERSION"
  fi
  # The agent runs as camfleet and installs updates here
  [ -n "$ROOT" ] || chown -R camfleet:camfleet "$OPT"
fi

if [ "$ROLE" = agent ] || [ "$ROLE" = both ]; then
  # An agent without --coordinator-url finds the coordinator over mDNS (docs/discovery.md);
  # the centre camera's agent talks to its own coordinator.
  url="$COORDINATOR_URL"
  if [ -z "$url" ] && [ "$ROLE" = both ]; then url="http://127.0.0.1:8080"; fi
  url_line="# coordinator_url: found over mDNS (discovery)"
  [ -z "$url" ] || url_line="coordinator_url: $url"
  node_id="$(echo "$CAM_ID" | tr 'A-Z_' 'a-z-')"
  sed -e "s|^node_id: .*|node_id: $node_id|" -e "s|^cam_id: .*|cam_id: $CAM_ID|" \
      -e "s|^position: [a-z]*|position: $POSITION|" -e "s|^coordinator_url: .*|$url_line|" \
      "$SRC/deploy/agent.example.yaml" | write_once "$ETC/agent.yaml" 0644
  if [ -z "$FLEET_TOKEN" ] && [ -e "$ETC/coordinator.env" ]; then
    FLEET_TOKEN="$(sed -n 's/^CAMFLEET_FLEET_TOKEN=//p' "$ETC/coordinator.env")"
  fi
  if [ -z "$FLEET_TOKEN" ] && [ "$ROLE" = both ]; then FLEET_TOKEN="$(token)"; fi
  [ -n "$FLEET_TOKEN" ] || [ -e "$ETC/agent.env" ] || { echo "setup-node: --fleet-token is required (the coordinator's CAMFLEET_FLEET_TOKEN)" >&2; exit 2; }
  printf 'CAMFLEET_FLEET_TOKEN=%s\nCAMFLEET_API_TOKEN=%s\n' "$FLEET_TOKEN" "$(token)" | write_once "$ETC/agent.env" 0600
  install -D -m 0644 "$SRC/deploy/systemd/camfleet-agent.service" "$UNITS/camfleet-agent.service"
  install -D -m 0644 "$SRC/deploy/systemd/camfleet-update@.service" "$UNITS/camfleet-update@.service"
  # the agent runs as camfleet: poweroff, its own restart and the update's finisher only
  install -D -m 0644 "$SRC/deploy/polkit/50-camfleet.rules" "$ROOT/etc/polkit-1/rules.d/50-camfleet.rules"
fi

if [ "$ROLE" = coordinator ] || [ "$ROLE" = both ]; then
  write_once "$ETC/coordinator.yaml" 0644 <"$SRC/deploy/coordinator.example.yaml"
  printf 'CAMFLEET_OPERATOR_TOKEN=%s\nCAMFLEET_FLEET_TOKEN=%s\n' "$(token)" "${FLEET_TOKEN:-$(token)}" \
    | write_once "$ETC/coordinator.env" 0600
  install -D -m 0644 "$SRC/deploy/systemd/camfleet-coordinator.service" "$UNITS/camfleet-coordinator.service"
fi

if [ "$ROLE" = dashcam ]; then
  # One loop per camera: camfleet-dashcam.service runs it (as root: uhubctl, sysfs, mount);
  # the agent unit is not installed beside it, so the USB port has one owner.
  node_id="$(echo "$CAM_ID" | tr 'A-Z_' 'a-z-')"
  sed -e "s|^node_id: .*|node_id: $node_id|" -e "s|^cam_id: .*|cam_id: $CAM_ID|" \
      "$SRC/deploy/dashcam.example.yaml" | write_once "$ETC/agent.yaml" 0600
  printf 'CAMFLEET_API_TOKEN=%s\n' "$(token)" | write_once "$ETC/agent.env" 0600
  install -D -m 0644 "$SRC/deploy/systemd/camfleet-dashcam.service" "$UNITS/camfleet-dashcam.service"
  install -D -m 0644 "$SRC/deploy/logrotate/camfleet" "$ROOT/etc/logrotate.d/camfleet"
  install -d -m 0700 "$ROOT/var/lib/camera_service/staging"
  install -d -m 0755 "$ROOT/var/log/camfleet"
  say "dashcam: put the NAS's upload key at the ssh_key path in $ETC/agent.yaml (chmod 600),"
  say "then try it with: camfleet dashcam --config $ETC/agent.yaml --dry-run --once"
fi

if [ -n "$CHRONY" ]; then
  # The default rendering; sync-$CHRONY.service renders it again from agent.yaml at boot.
  install -D -m 0644 "$SRC/deploy/chrony/chrony-$CHRONY.conf" "$ROOT/etc/chrony/conf.d/camfleet.conf"
  install -D -m 0644 "$SRC/deploy/systemd/sync-$CHRONY.service" "$UNITS/sync-$CHRONY.service"
  say "chrony: $CHRONY configuration in /etc/chrony/conf.d/camfleet.conf (sync-$CHRONY.service)"
fi

UNITS_NOW=()
if [ "$ROLE" != agent ] && [ "$ROLE" != dashcam ]; then UNITS_NOW+=(camfleet-coordinator); fi
if [ "$ROLE" = agent ] || [ "$ROLE" = both ]; then UNITS_NOW+=(camfleet-agent); fi
if [ "$ROLE" = dashcam ]; then UNITS_NOW+=(camfleet-dashcam); fi

if [ "$DO_SYSTEMCTL" = 1 ]; then
  systemctl daemon-reload
  [ -z "$CHRONY" ] || systemctl restart chrony
  if [ "$DO_ENABLE" = 1 ]; then
    [ -z "$CHRONY" ] || systemctl enable "sync-$CHRONY.service"
    for unit in "${UNITS_NOW[@]}"; do systemctl enable --now "$unit.service"; done
    say "enabled and started: ${UNITS_NOW[*]}"
  fi
fi

printf '%s\n' "----------------------------------------------------------------" \
  "  camfleet $VERSION is set up." \
  "  settings: $ETC/ (yaml: settings; env: secrets, mode 0600)" \
  "  program:  $OPT/current -> $(readlink "$OPT/current" 2>/dev/null || echo 'not installed (--no-install)')" \
  "  data:     /var/lib/camfleet (the agent), /var/lib/camfleet-coordinator"
if [ "$DO_ENABLE" != 1 ]; then
  echo "  Next steps (the units are installed, not enabled):"
  [ -z "$CHRONY" ] || echo "    sudo systemctl enable sync-$CHRONY.service"
  for unit in "${UNITS_NOW[@]}"; do
    echo "    start:          sudo systemctl start $unit"
    echo "    start at boot:  sudo systemctl enable $unit"
  done
  echo "    (or run this script again with --enable)"
else
  echo "  Next steps:"
fi
for unit in "${UNITS_NOW[@]}"; do
  echo "    logs:           journalctl -u $unit -f"
  if [ "$unit" = camfleet-agent ]; then
    echo "    reload config:  sudo systemctl reload $unit   (what cannot apply live is logged)"
  else
    echo "    apply config:   sudo systemctl restart $unit"
  fi
done
echo "----------------------------------------------------------------"
say "done"
