import { app } from './app.ts';

export { BanditShard } from './bandit.ts';
export { SessionState } from './session.ts';

export default app satisfies ExportedHandler<Env>;
