// An ES module handler (package.json says "type": "module"): `index.handler`.
import { hostname } from 'node:os';

// Top-level await finishes before the first event, once per worker.
const startedAt = await Promise.resolve(new Date().toISOString());

export const handler = async (event, context) => {
  const name = event.name ?? 'world';
  console.info(`greeting ${name}`);
  return {
    message: `hello, ${name}`,
    function: context.functionName,
    host: hostname(),
    worker_started_at: startedAt,
  };
};
