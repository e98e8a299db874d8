#!/bin/sh
# xvfb-wrapper.sh - runs a GUI test on the display there is, or under a
# virtual X server when there is none; SKIP (77) when xvfb-run is missing.
if [ -n "$DISPLAY" ] || [ -n "$WAYLAND_DISPLAY" ]; then
  exec "$@"
fi
if ! command -v xvfb-run >/dev/null 2>&1; then
  echo "SKIP: no display and no xvfb-run"
  exit 77
fi
exec xvfb-run -a -s "-screen 0 1600x1000x24 -nolisten tcp" "$@"
