import { cloudflareTest } from '@cloudflare/vitest-pool-workers';
import { defineConfig } from 'vitest/config';
import { TEST_CORE_API_KEY } from './test/edge/core-key.ts';

export default defineConfig({
  test: {
    projects: [
      {
        // Node-side suites: core, training, kernels and the adapters against real servers.
        test: {
          name: 'node',
          include: ['test/**/*.test.ts'],
          exclude: ['test/edge/**'],
          globalSetup: ['test/setup/infra.ts'],
          testTimeout: 60_000,
          hookTimeout: 300_000,
          // Milvus, Kafka and Dawn share two cores with the tests; running files one at a time
          // keeps timeouts meaningful.
          fileParallelism: false,
        },
      },
      {
        // The edge Worker, inside workerd through the Workers pool.
        // CORE_API_KEY stands for the secret a deployment sets with `wrangler secret put`.
        plugins: [cloudflareTest({ wrangler: { configPath: './wrangler.toml' }, miniflare: { bindings: { CORE_API_KEY: TEST_CORE_API_KEY } } })],
        test: {
          name: 'edge',
          include: ['test/edge/**/*.test.ts'],
          // Trains a small model and runs `kestrel serve` for the Worker to talk to; its URL reaches
          // the tests through provide/inject.
          globalSetup: ['test/edge/core-setup.ts'],
          testTimeout: 30_000,
        },
      },
    ],
  },
});
