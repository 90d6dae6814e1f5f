#!/usr/bin/env bash
# Push an albert-edge bundle to a device or emulator, where the demo app and the instrumented
# golden test look for it: /data/local/tmp/albert_edge
#
# usage: push_bundle.sh BUNDLE_DIR [SERIAL]
#   BUNDLE_DIR  a folder written by `albert-edge export` (manifest.json, model_*.pte, spiece.model, goldens.json)
#   SERIAL      the device serial from `adb devices`; optional when one device is attached
#
# When the debug app (org.albertedge.demo) is installed, the bundle is also copied into its files
# folder with `run-as`, which the app prefers.
set -euo pipefail

DEVICE_DIR=/data/local/tmp/albert_edge
APP_ID=org.albertedge.demo

if [[ $# -lt 1 || $# -gt 2 ]]; then
    echo "usage: $0 BUNDLE_DIR [SERIAL]" >&2
    exit 2
fi
bundle_dir=$1
serial=${2:-}

if ! command -v adb >/dev/null 2>&1; then
    echo "error: adb not found on PATH; install the Android SDK platform-tools" >&2
    exit 1
fi
if [[ ! -d "$bundle_dir" ]]; then
    echo "error: $bundle_dir is not a folder" >&2
    exit 1
fi
if [[ ! -f "$bundle_dir/manifest.json" ]]; then
    echo "error: $bundle_dir has no manifest.json; build a bundle with" >&2
    echo "  albert-edge export default --recipe fp32 --recipe int8 --max-seq-len 128 --out out/android-bundle" >&2
    exit 1
fi

adb_cmd=(adb)
if [[ -n "$serial" ]]; then
    adb_cmd+=(-s "$serial")
fi

"${adb_cmd[@]}" shell rm -rf "$DEVICE_DIR"
"${adb_cmd[@]}" shell mkdir -p "$DEVICE_DIR"
shopt -s nullglob
files=("$bundle_dir"/*)
for f in "${files[@]}"; do
    if [[ -f "$f" ]]; then
        "${adb_cmd[@]}" push "$f" "$DEVICE_DIR/"
    fi
done
"${adb_cmd[@]}" shell chmod 755 "$DEVICE_DIR"
"${adb_cmd[@]}" shell "chmod 644 $DEVICE_DIR/*"
echo "pushed $bundle_dir to $DEVICE_DIR:"
"${adb_cmd[@]}" shell ls -l "$DEVICE_DIR"

if "${adb_cmd[@]}" shell pm path "$APP_ID" >/dev/null 2>&1; then
    if "${adb_cmd[@]}" shell run-as "$APP_ID" sh -c "'rm -rf files/albert_edge && mkdir -p files/albert_edge && cp $DEVICE_DIR/* files/albert_edge/'"; then
        echo "also copied into $APP_ID's files/albert_edge (the app looks there first)"
    else
        echo "note: could not copy into $APP_ID's files folder (run-as needs the debug build); the app will read $DEVICE_DIR" >&2
    fi
fi
