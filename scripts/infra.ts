// Node-side handle on the scripts that start Kestrel's real servers. Each `scripts/<name>.sh`
// has `start`, `stop` and `status`; `status` exits 0 when the server answers, 3 when it is down.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const infraServices = ['webgpu', 'milvus', 'kafka'] as const;
export type InfraService = (typeof infraServices)[number];

export const infraDescriptions: Record<InfraService, string> = {
  webgpu: 'Vulkan driver for Dawn (SwiftShader from Debian chromium when there is no GPU)',
  milvus: 'Milvus vector database on 127.0.0.1:19530',
  kafka: 'Apache Kafka broker (KRaft) on 127.0.0.1:9092',
};

const scriptsDir = fileURLToPath(new URL('.', import.meta.url));

export interface ScriptResult {
  code: number;
  output: string;
}

/** Runs `scripts/<service>.sh <verb>`; streams lines to `onLine` and also returns the output. */
export function runServiceScript(service: InfraService, verb: 'start' | 'stop' | 'status', onLine?: (line: string) => void): Promise<ScriptResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [`${scriptsDir}${service}.sh`, verb], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let pending = '';
    const take = (chunk: Buffer) => {
      const text = chunk.toString();
      output += text;
      pending += text;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) onLine?.(`${service}: ${line}`);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', reject);
    child.on('close', (code) => {
      if (pending) onLine?.(`${service}: ${pending}`);
      resolve({ code: code ?? 1, output: output.trim() });
    });
  });
}

export async function serviceStatus(service: InfraService): Promise<{ running: boolean; line: string }> {
  const { code, output } = await runServiceScript(service, 'status');
  return { running: code === 0, line: output.split('\n').pop() ?? '' };
}

export async function startService(service: InfraService, onLine?: (line: string) => void): Promise<void> {
  const { code, output } = await runServiceScript(service, 'start', onLine);
  if (code !== 0) throw new Error(`scripts/${service}.sh start failed (exit ${code}):\n${output}`);
}

export async function stopService(service: InfraService, onLine?: (line: string) => void): Promise<void> {
  const { code, output } = await runServiceScript(service, 'stop', onLine);
  if (code !== 0) throw new Error(`scripts/${service}.sh stop failed (exit ${code}):\n${output}`);
}
