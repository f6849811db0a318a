import { app } from './app.ts';

export { SessionState } from './session.ts';

export default app satisfies ExportedHandler<Env>;
