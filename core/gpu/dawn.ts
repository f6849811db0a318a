// WebGPU in Node through Dawn (the `webgpu` package), on whatever Vulkan driver the machine has.
//
// Driver selection, in order:
//   1. VK_ICD_FILENAMES / VK_DRIVER_FILES already set: the caller chose the driver; use it as is.
//   2. The Vulkan loader's search folders hold an ICD manifest (a real GPU driver, or lavapipe):
//      ask Dawn for an adapter on it.
//   3. No adapter (no manifest, or Dawn rejects the driver, as it does bookworm's lavapipe) and
//      SwiftShader is installed: point VK_ICD_FILENAMES at it and ask a fresh Dawn instance again.
// The Vulkan loader reads VK_ICD_FILENAMES each time an instance is created, and every create()
// makes a new one, so setting the variable from here after `webgpu` has loaded takes effect (checked
// with webgpu 0.6.2; it also works after a failed first try). Step 2 is skipped when no manifest
// exists because a doomed probe prints "vkCreateInstance: Found no drivers!" on every start.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { create, globals } from 'webgpu';
import type { ComputeProgram } from '../../shaders/index.ts';

/** Where Debian's `chromium` package installs SwiftShader's Vulkan ICD manifest. */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const FIX_COMMAND = 'bash scripts/webgpu.sh start';

export type VulkanDriver = 'system' | 'swiftshader';

export interface DawnAdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
}

export interface DawnDevice {
  device: GPUDevice;
  adapterInfo: DawnAdapterInfo;
  driver: VulkanDriver;
}

export interface DawnDeviceOptions {
  powerPreference?: GPUPowerPreference;
  /** Fall back to SwiftShader when no system driver gives an adapter. Default true. */
  allowSwiftShader?: boolean;
  /** SwiftShader ICD manifest to fall back to. Default {@link SWIFTSHADER_ICD}. */
  swiftShaderIcd?: string;
}

interface OpenDevice extends DawnDevice {
  /** Keeps the Dawn instance alive exactly as long as the cached device. */
  gpu: GPU;
}

let opened: Promise<OpenDevice> | undefined;
let openedDevice: GPUDevice | undefined;

/**
 * The process's Dawn device, created on first call and cached; later calls get the same device
 * whatever their options. Call {@link releaseDawnDevice} before exit in tests and benches.
 */
export async function requestDawnDevice(options: DawnDeviceOptions = {}): Promise<DawnDevice> {
  opened ??= openDevice(options).catch((err: unknown) => {
    opened = undefined;
    throw err;
  });
  const { device, adapterInfo, driver } = await opened;
  return { device, adapterInfo, driver };
}

/** Destroys the cached device and drops the Dawn instance, so the next request starts afresh. */
export async function releaseDawnDevice(): Promise<void> {
  const pending = opened;
  opened = undefined;
  openedDevice = undefined;
  if (pending === undefined) return;
  try {
    (await pending).device.destroy();
  } catch {
    // Opening failed: there is nothing to release.
  }
}

async function openDevice(options: DawnDeviceOptions): Promise<OpenDevice> {
  installGlobals();
  const powerPreference = options.powerPreference ?? 'high-performance';
  const icd = options.swiftShaderIcd ?? SWIFTSHADER_ICD;
  const driverChosen = process.env.VK_ICD_FILENAMES !== undefined || process.env.VK_DRIVER_FILES !== undefined;
  const manifests = driverChosen ? [] : systemIcdManifests();

  let gpu: GPU | undefined;
  let adapter: GPUAdapter | null = null;
  if (driverChosen || manifests.length > 0) {
    gpu = create([]);
    adapter = await gpu.requestAdapter({ powerPreference });
  }
  if (adapter === null && !driverChosen && options.allowSwiftShader !== false && existsSync(icd)) {
    process.env.VK_ICD_FILENAMES = icd;
    gpu = create([]);
    adapter = await gpu.requestAdapter({ powerPreference });
  }
  if (adapter === null || gpu === undefined) throw new Error(noAdapterMessage(driverChosen, manifests, icd, options));

  const device = await adapter.requestDevice({
    label: 'kestrel',
    // Item matrices are large (1M x 64 floats = 256 MiB); take what the adapter offers rather
    // than WebGPU's 128 MiB default binding size.
    requiredLimits: {
      maxBufferSize: adapter.limits.maxBufferSize,
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
    },
  });
  void device.lost.then((info) => {
    if (info.reason !== 'destroyed') console.error(`kestrel: GPU device lost: ${info.message}`);
    // A lost device cannot come back; let the next request open a new one.
    if (openedDevice === device) {
      opened = undefined;
      openedDevice = undefined;
    }
  });
  openedDevice = device;
  const { vendor, architecture, device: deviceName, description, isFallbackAdapter } = adapter.info;
  const adapterInfo = { vendor, architecture, device: deviceName, description, isFallbackAdapter };
  return { gpu, device, adapterInfo, driver: isSwiftShader(adapterInfo) ? 'swiftshader' : 'system' };
}

function isSwiftShader(info: DawnAdapterInfo): boolean {
  return /swiftshader/i.test(`${info.architecture} ${info.description}`);
}

/** GPUBufferUsage, GPUMapMode and friends, which browsers define and Node does not. */
function installGlobals(): void {
  for (const [name, value] of Object.entries(globals)) {
    if (!(name in globalThis)) Object.defineProperty(globalThis, name, { value, configurable: true, writable: true });
  }
}

/** ICD manifests in the folders the Linux Vulkan loader searches when no variable overrides it. */
function systemIcdManifests(): string[] {
  const env = process.env;
  const configDirs = (env.XDG_CONFIG_DIRS ?? '/etc/xdg').split(':');
  const dataDirs = (env.XDG_DATA_DIRS ?? '/usr/local/share:/usr/share').split(':');
  const dataHome = env.XDG_DATA_HOME ?? join(homedir(), '.local/share');
  const folders = [...configDirs, '/usr/local/etc', '/etc', dataHome, ...dataDirs]
    .filter((dir) => dir !== '')
    .map((dir) => join(dir, 'vulkan/icd.d'));
  return folders.flatMap((folder) => {
    try {
      return readdirSync(folder).filter((f) => f.endsWith('.json')).map((f) => join(folder, f));
    } catch {
      return [];
    }
  });
}

function noAdapterMessage(
  driverChosen: boolean,
  manifests: string[],
  icd: string,
  options: DawnDeviceOptions,
): string {
  const named = process.env.VK_ICD_FILENAMES ?? process.env.VK_DRIVER_FILES;
  const tried = driverChosen
    ? `the Vulkan driver named by VK_ICD_FILENAMES/VK_DRIVER_FILES (${named})`
    : manifests.length > 0
      ? `the system Vulkan drivers (${manifests.join(', ')})`
      : 'no system Vulkan driver (no ICD manifest in the loader search folders)';
  const swiftShader = existsSync(icd) ? 'gave no adapter either (is libvulkan1 installed?)' : 'is not installed';
  const fallback = driverChosen
    ? 'unset it to let Kestrel pick a driver, or'
    : options.allowSwiftShader === false
      ? 'SwiftShader fallback was disabled;'
      : `SwiftShader (${icd}) ${swiftShader};`;
  return (
    `Dawn found no WebGPU adapter: tried ${tried}; ${fallback} run \`${FIX_COMMAND}\` (as root) ` +
    "to install a software Vulkan driver, or install your GPU's Vulkan driver"
  );
}

// ---- programs ----------------------------------------------------------------------------------

const wgslSources = new Map<string, string>();
const pipelines = new WeakMap<GPUDevice, Map<string, Promise<GPUComputePipeline>>>();

/** The compute pipeline for `program` on `device`, compiled once per device and cache key. */
export function computePipeline(device: GPUDevice, program: ComputeProgram): Promise<GPUComputePipeline> {
  let byKey = pipelines.get(device);
  if (byKey === undefined) {
    byKey = new Map();
    pipelines.set(device, byKey);
  }
  let pipeline = byKey.get(program.key);
  if (pipeline === undefined) {
    pipeline = compile(device, program);
    byKey.set(program.key, pipeline);
    pipeline.catch(() => byKey.delete(program.key));
  }
  return pipeline;
}

async function compile(device: GPUDevice, program: ComputeProgram): Promise<GPUComputePipeline> {
  const module = device.createShaderModule({ label: program.label, code: wgslSource(program.source) });
  const bindGroupLayout = device.createBindGroupLayout({
    label: `${program.label}.bindings`,
    entries: program.bindings.map(({ binding, type }) => ({
      binding,
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type },
    })),
  });
  return device.createComputePipelineAsync({
    label: program.label,
    layout: device.createPipelineLayout({ label: `${program.label}.layout`, bindGroupLayouts: [bindGroupLayout] }),
    compute: { module, entryPoint: program.entryPoint, constants: { ...program.constants } },
  });
}

function wgslSource(url: URL): string {
  let code = wgslSources.get(url.href);
  if (code === undefined) {
    code = readFileSync(fileURLToPath(url), 'utf8');
    wgslSources.set(url.href, code);
  }
  return code;
}
