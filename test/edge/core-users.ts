// What the edge tests ask the core directly (test/edge/core-setup.ts's core): whether the events the
// edge forwarded have arrived.

/** How long forwarded events may take to reach the core's catalog (outbox, bus, projector). */
export const ARRIVAL_WAIT_MS = 15_000;

/** Waits until the core at `coreUrl` knows `userId` (created by the projector from the events that name it); the last status. */
export async function waitForCoreUser(coreUrl: string, userId: string, headers: Record<string, string> = {}): Promise<number> {
  const deadline = Date.now() + ARRIVAL_WAIT_MS;
  let status = 0;
  while (Date.now() < deadline) {
    status = (await fetch(`${coreUrl}/v1/users/${encodeURIComponent(userId)}`, { headers })).status;
    if (status === 200) return status;
    await new Promise((r) => setTimeout(r, 100));
  }
  return status;
}
