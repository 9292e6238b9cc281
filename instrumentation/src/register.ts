/**
 * Side-effect entry: `node --import @routewatch/instrumentation/register app.js`.
 * Registers the ESM loader hook, starts the SDK, flushes on exit. Never crashes the host.
 */
import { diag } from '@opentelemetry/api';
import { readRoutewatchEnv } from './config.js';
import { registerLoaderHook } from './loader-hook.js';
import { registerRoutewatch, tracingAlreadyRegistered } from './sdk.js';
import type { RoutewatchHandle } from './types.js';

/** Upper bound on the time the last export may hold the process at exit or on a signal. */
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

// With the SDK capture off nothing of ours needs the hook: the app's modules load unhooked. Nor
// does it when the app runs its own OpenTelemetry SDK (registerRoutewatch then starts nothing,
// and says why; a second hook would only warn), nor with the SDK disabled.
if (
  sdkCapture &&
  !tracingAlreadyRegistered() &&
  process.env['OTEL_SDK_DISABLED']?.trim().toLowerCase() !== 'true'
) {
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
  /** Flushes and shuts the SDK down; resolves false when that took longer than the bound. */
  const shutdown = (): Promise<boolean> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), SHUTDOWN_TIMEOUT_MS);
      timer.unref();
    });
    return Promise.race([
      handle.shutdown().then(
        () => true,
        (error: unknown) => {
          diag.error('routewatch: shutdown failed', error);
          return true;
        },
      ),
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
  process.once('beforeExit', () => {
    void shutdown().then((finished) => {
      // The app is done; only our export holds the process. An unreachable collector would keep
      // it alive through the exporter's retries and timeout, so the bound ends it, with the exit
      // code the app chose. A healthy export finishes first and the process exits by itself.
      if (!finished) {
        diag.warn(`routewatch: the last export did not finish within ${SHUTDOWN_TIMEOUT_MS} ms`);
        process.exit();
      }
    });
  });
}
