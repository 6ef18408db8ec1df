#!/usr/bin/env bash
# Set up the project's .venv and run the app or the tests.
#
#   ./dev.sh app  [app.py args]    set up, then serve the offline default model (or --model ...)
#   ./dev.sh test [pytest args]    set up (plus test tools and Debian chromium), then run pytest
#   ./dev.sh setup                 set up only
#
# Set-up is incremental: packages are reinstalled only when a requirements file changes.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3.11}
VENV=.venv

setup_venv() {
  local reqs=("$@") stamp="$VENV/.requirements.sha256" want
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  want=$(cat "${reqs[@]}" | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "Installing Python packages into $VENV (first run takes a few minutes)..."
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    local args=()
    for r in "${reqs[@]}"; do args+=(-r "$r"); done
    "$VENV/bin/python" -m pip install --quiet "${args[@]}"
    echo "$want" >"$stamp"
  fi
}

setup_chromium() {
  command -v chromium >/dev/null && return
  echo "Installing Debian chromium for the browser tests..."
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
}

offline_env() {
  export HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False PYTHONPATH=.
}

app_env() {  # offline unless a Hub model was asked for
  export GRADIO_ANALYTICS_ENABLED=False PYTHONPATH=.
  case " $* " in *" --model"*) return ;; esac
  [ -n "${EMOTION_MODEL:-}" ] || export HF_HUB_OFFLINE=1
}

cmd=${1:-help}
shift || true
case "$cmd" in
  setup)
    setup_venv requirements.txt
    ;;
  app)
    setup_venv requirements.txt
    app_env "$@"
    exec "$VENV/bin/python" app.py "$@"
    ;;
  test)
    setup_venv requirements.txt requirements-test.txt
    setup_chromium
    offline_env
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  *)
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
    [ "$cmd" = help ] || exit 2
    ;;
esac
