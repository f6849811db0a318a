// The key the edge tests' second core requires (test/edge/core-setup.ts starts it with
// KESTREL_API_KEYS) and the Worker presents as its CORE_API_KEY secret (vitest.config.ts binds it).
// The first core has no keys and ignores the header, so every edge test runs with the secret set.
export const TEST_CORE_API_KEY = 'kestrel-edge-tests-core-key-0001';
