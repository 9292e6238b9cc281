/**
 * Side-effect entry: `node --import @routewatch/instrumentation/register app.js`.
 * Registers the ESM loader hook, starts the SDK, flushes on exit. Never crashes the host.
 */
import { register } from 'node:module';
import { diag } from '@opentelemetry/api';
import { registerRoutewatch } from './sdk.js';
import type { RoutewatchHandle } from './types.js';

/** Upper bound on the time a signal waits for the last export before the process exits. */
const SHUTDOWN_TIMEOUT_MS = 5_000;

let warned = false;
function warnOnce(message: string, error: unknown): void {
  diag.error(message, error);
  if (warned) return;
  warned = true;
  console.warn(`[routewatch] ${message}:`, error instanceof Error ? error.message : error);
}

try {
  // Resolved from our own dependency, never from the app's node_modules: an older hoisted copy of
  // import-in-the-middle can crash the app at import. Only `openai` is wrapped, so the rest of the
  // app's modules load untouched.
  register('@opentelemetry/instrumentation/hook.mjs', import.meta.url, {
    data: { include: ['openai'] },
  });
} catch (error) {
  warnOnce(
    'routewatch: could not register the ESM loader hook (ESM imports stay unpatched)',
    error,
  );
}

try {
  installShutdownHooks(registerRoutewatch());
} catch (error) {
  warnOnce('routewatch: could not start the instrumentation', error);
}

function installShutdownHooks(handle: RoutewatchHandle): void {
  const shutdown = (): Promise<void> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, SHUTDOWN_TIMEOUT_MS);
      timer.unref();
    });
    return Promise.race([
      handle.shutdown().catch((error: unknown) => diag.error('routewatch: shutdown failed', error)),
      timeout,
    ]).finally(() => clearTimeout(timer));
  };

  const onSignal = (signal: NodeJS.Signals): void => {
    // `once` has removed our listener: any listener left is the app's, and it decides about
    // exiting; we only flush. A second signal while we flush gets the default behaviour.
    const appHandlesIt = process.listenerCount(signal) > 0;
    void shutdown().finally(() => {
      if (appHandlesIt) return;
      // Re-raise with no listener left: the default behaviour (exit by that signal) applies.
      process.kill(process.pid, signal);
    });
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  process.once('beforeExit', () => void shutdown());
}
