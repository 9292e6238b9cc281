/**
 * Side-effect entry: `node --import @routewatch/instrumentation/register app.js`.
 * Registers the ESM loader hook, starts the SDK, flushes on exit. Never crashes the host.
 */
import { diag } from '@opentelemetry/api';
import { readRoutewatchEnv } from './config.js';
import { registerLoaderHook } from './loader-hook.js';
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

let sdkCapture = true;
try {
  sdkCapture = readRoutewatchEnv(process.env).sdkCapture ?? true;
} catch (error) {
  warnOnce('routewatch: could not read the ROUTEWATCH_* variables', error);
}

// With the SDK capture off nothing of ours needs the hook: the app's modules load unhooked.
if (sdkCapture) {
  try {
    registerLoaderHook();
  } catch (error) {
    warnOnce(
      'routewatch: could not register the ESM loader hook (ESM imports stay unpatched)',
      error,
    );
  }
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
