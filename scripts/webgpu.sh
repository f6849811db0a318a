#!/usr/bin/env bash
# The Vulkan driver Dawn (the `webgpu` package) runs WebGPU on.
#
#   start   make a driver available: keep a working one (a real GPU's wins), else install the Vulkan
#           loader and SwiftShader (Debian's chromium ships it) with apt. Needs root to install.
#   status  one line naming the driver Dawn will use; exit 0 when Dawn gets an adapter, 3 when not.
#   stop    nothing runs in the background, so nothing to stop.
#   env     `export VK_ICD_FILENAMES=...` when only SwiftShader gives an adapter, for tools that do
#           not go through core/gpu/dawn.ts (which picks SwiftShader by itself).
#
# Driver choice lives in core/gpu/dawn.ts; this script asks it, so the two cannot disagree.
# Mesa's lavapipe from bookworm is not installed: Dawn rejects it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SWIFTSHADER_ICD=/usr/lib/chromium/vk_swiftshader_icd.json
EXIT_NO_ADAPTER=3

# Runs dawn.ts's driver selection in a fresh Node process and prints one line.
# $1 = 'auto' (system driver, else SwiftShader) or 'system' (no SwiftShader fallback).
probe() {
  local mode=$1 err rc=0 unset=()
  # 'system' asks what the machine's own drivers give, whatever the caller's environment says.
  [[ $mode == system ]] && unset=(-u VK_ICD_FILENAMES -u VK_DRIVER_FILES)
  err="$(mktemp)"
  (cd "$ROOT" && env "${unset[@]}" node --import tsx --input-type=module -e "
    import { releaseDawnDevice, requestDawnDevice } from './core/gpu/dawn.ts';
    try {
      const { driver, adapterInfo: a } = await requestDawnDevice({ allowSwiftShader: '$mode' === 'auto' });
      const name = [a.description, a.vendor + '/' + a.architecture].filter((s) => s && s !== '/').join(', ');
      const via = driver === 'swiftshader' ? ' via VK_ICD_FILENAMES=' + process.env.VK_ICD_FILENAMES : '';
      console.log('webgpu: ' + driver + ' Vulkan driver (' + name + ')' + via);
      await releaseDawnDevice();
    } catch (e) {
      console.log('webgpu: ' + (e instanceof Error ? e.message : String(e)));
      process.exitCode = $EXIT_NO_ADAPTER;
    }
  ") 2>"$err" || rc=$?
  # Dawn's own warnings ("Found no drivers!") are noise here; anything else that failed is not.
  if [[ $rc -ne 0 && $rc -ne $EXIT_NO_ADAPTER ]]; then cat "$err" >&2; fi
  rm -f "$err"
  return "$rc"
}

has_vulkan_loader() {
  ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 '
}

cmd_status() {
  probe auto
}

cmd_start() {
  local line
  if line="$(probe auto)"; then
    echo "$line"
    return 0
  fi
  local packages=()
  has_vulkan_loader || packages+=(libvulkan1)
  [[ -f $SWIFTSHADER_ICD ]] || packages+=(chromium)
  if [[ ${#packages[@]} -eq 0 ]]; then
    echo "webgpu: libvulkan1 and SwiftShader are installed but Dawn still gets no adapter (see above)" >&2
    return "$EXIT_NO_ADAPTER"
  fi
  if [[ $(id -u) -ne 0 ]]; then
    echo "webgpu: installing ${packages[*]} needs root: sudo bash scripts/webgpu.sh start" >&2
    return 1
  fi
  echo "webgpu: installing ${packages[*]} with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Waits for another apt run (e.g. a parallel setup script) instead of failing on the lock.
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  # chromium's recommends (fonts, sandbox, desktop helpers) are not needed for its SwiftShader.
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  probe auto
}

cmd_env() {
  if probe system >/dev/null; then
    echo "# webgpu: a system Vulkan driver gives an adapter; nothing to export"
  elif [[ -f $SWIFTSHADER_ICD ]]; then
    echo "export VK_ICD_FILENAMES=$SWIFTSHADER_ICD"
  else
    echo "webgpu: no Vulkan driver gives an adapter and SwiftShader is not installed: run bash scripts/webgpu.sh start" >&2
    return "$EXIT_NO_ADAPTER"
  fi
}

case "${1:-}" in
  start) cmd_start ;;
  status) cmd_status ;;
  stop) exit 0 ;;
  env) cmd_env ;;
  *)
    echo "usage: $0 start|status|stop|env" >&2
    exit 2
    ;;
esac
