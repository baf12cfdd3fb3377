#!/usr/bin/env bash
# Set up a Raspberry Pi (Raspberry Pi OS / Debian) as a camfleet node and/or coordinator.
#
#   sudo deploy/setup-node.sh --role agent --cam-id CAM_L --position left \
#        --coordinator-url http://cam-c.local:8080 --fleet-token "$FLEET_TOKEN" --chrony client
#   sudo deploy/setup-node.sh --role both --cam-id CAM_C --position centre --chrony master
#   sudo deploy/setup-node.sh --role dashcam --cam-id DASH_1      (the USB dashcam mode)
#
# Idempotent: existing configuration and secrets are kept. --root DIR installs under DIR
# (for trying it out, and for the tests); --no-apt, --no-install (the venv) and
# --no-systemctl skip those steps.
set -euo pipefail

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

ROLE="" CAM_ID="" POSITION="other" COORDINATOR_URL="" FLEET_TOKEN="" CHRONY=""
ROOT="" DO_APT=1 DO_SYSTEMCTL=1 DO_INSTALL=1
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

if [ "$DO_INSTALL" = 1 ]; then
  mkdir -p "$OPT"
  [ -x "$OPT/venv/bin/python" ] || python3 -m venv --system-site-packages "$OPT/venv"
  "$OPT/venv/bin/pip" install --quiet "$SRC"
  say "installed camfleet into $OPT/venv"
fi

if [ "$ROLE" = agent ] || [ "$ROLE" = both ]; then
  url="${COORDINATOR_URL:-http://127.0.0.1:8080}"
  node_id="$(echo "$CAM_ID" | tr 'A-Z_' 'a-z-')"
  sed -e "s|^node_id: .*|node_id: $node_id|" -e "s|^cam_id: .*|cam_id: $CAM_ID|" \
      -e "s|^position: [a-z]*|position: $POSITION|" -e "s|^coordinator_url: .*|coordinator_url: $url|" \
      "$SRC/deploy/agent.example.yaml" | write_once "$ETC/agent.yaml" 0644
  if [ -z "$FLEET_TOKEN" ] && [ -e "$ETC/coordinator.env" ]; then
    FLEET_TOKEN="$(sed -n 's/^CAMFLEET_FLEET_TOKEN=//p' "$ETC/coordinator.env")"
  fi
  if [ -z "$FLEET_TOKEN" ] && [ "$ROLE" = both ]; then FLEET_TOKEN="$(token)"; fi
  [ -n "$FLEET_TOKEN" ] || [ -e "$ETC/agent.env" ] || { echo "setup-node: --fleet-token is required (the coordinator's CAMFLEET_FLEET_TOKEN)" >&2; exit 2; }
  printf 'CAMFLEET_FLEET_TOKEN=%s\nCAMFLEET_API_TOKEN=%s\n' "$FLEET_TOKEN" "$(token)" | write_once "$ETC/agent.env" 0600
  install -D -m 0644 "$SRC/deploy/systemd/camfleet-agent.service" "$UNITS/camfleet-agent.service"
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

if [ "$DO_SYSTEMCTL" = 1 ] && [ -z "$ROOT" ]; then
  systemctl daemon-reload
  [ -z "$CHRONY" ] || systemctl restart chrony
  [ -z "$CHRONY" ] || systemctl enable "sync-$CHRONY.service"
  if [ "$ROLE" != agent ]; then systemctl enable --now camfleet-coordinator.service; fi
  if [ "$ROLE" = agent ] || [ "$ROLE" = both ]; then systemctl enable --now camfleet-agent.service; fi
  if [ "$ROLE" = dashcam ]; then systemctl enable --now camfleet-dashcam.service; fi
fi
say "done"
