/**
 * Side-effect entry: `node --import @routewatch/instrumentation/register app.js`.
 * Registers the ESM loader hook, starts the SDK, exports what is left at exit. Never crashes the
 * host, and never changes how it exits.
 */
import { diag } from '@opentelemetry/api';
import { createRequire } from 'node:module';
import { readRoutewatchEnv } from './config.js';
import { reportExitExport } from './exit-export.js';
import { registerLoaderHook } from './loader-hook.js';
import { exportUnexportedNow, registerForExitExport, tracingAlreadyRegistered } from './sdk.js';

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
  warnOfProvidersLoadedFirst();
}

try {
  const handle = registerForExitExport();
  if (workersAllowed()) installExitHooks();
  else flushBeforeExit(handle);
} catch (error) {
  warnOnce('routewatch: could not start the instrumentation', error);
}

/**
 * The provider SDKs loaded before this entry (an earlier `--require`, which Node runs first, or an
 * earlier `--import`) are not captured: said, since their calls would otherwise just be missing.
 * CommonJS loads are seen in the require cache; an ES module loaded first leaves no trace here.
 */
function warnOfProvidersLoadedFirst(): void {
  try {
    const cache = createRequire(import.meta.url).cache;
    const early = ['openai', '@anthropic-ai/sdk'].filter((name) => {
      const dir = `${name.replace('/', '[\\\\/]')}`;
      const pattern = new RegExp(`[\\\\/]node_modules[\\\\/]${dir}[\\\\/]`);
      return Object.keys(cache).some((path) => pattern.test(path));
    });
    if (early.length === 0) return;
    const message = `${early.join(' and ')} ${early.length === 1 ? 'was' : 'were'} loaded before @routewatch/instrumentation/register (by an earlier --require or --import), so ${early.length === 1 ? 'its' : 'their'} calls are not captured: give --import @routewatch/instrumentation/register first`;
    diag.warn(`routewatch: ${message}`);
    console.warn(`[routewatch] ${message}`);
  } catch (error) {
    diag.error('routewatch: checking for providers loaded first failed', error);
  }
}

/**
 * The last export (exit-export.ts): at `exit`, synchronously, whatever ended it (the loop empty,
 * `process.exit()`, an uncaught error), and before a signal nobody handles kills the process. A
 * signal the app handles is the app's: it goes on tracing while it drains, and exits when it
 * decides. Nothing runs at `beforeExit`, which an export there would emit again.
 */
function installExitHooks(): void {
  let exported = false;
  const exportRest = (): void => {
    if (exported) return;
    exported = true;
    reportExitExport(exportUnexportedNow(true));
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    // `once` has removed our listener: any listener left is the app's, and it decides. What has
    // ended so far is exported now all the same: an app that cleans up and raises the signal
    // again (signal-exit, which execa and ora load, does) dies by it with no `exit` event. What
    // it ends while it drains goes at exit. Its open streams are its own still.
    if (process.listenerCount(signal) > 0) {
      reportExitExport(exportUnexportedNow(false));
      return;
    }
    // Nobody handles it: the process dies by it, with no `exit` event, once we re-raise it.
    exportRest();
    process.kill(process.pid, signal);
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  process.once('exit', exportRest);
}

/** Whether this process may start a worker: not under the permission model without --allow-worker. */
function workersAllowed(): boolean {
  const { permission } = process as { permission?: { has(scope: string): boolean } };
  try {
    return permission === undefined || permission.has('worker');
  } catch {
    return true;
  }
}

/**
 * Where no worker may post the last export (the permission model without --allow-worker): a
 * flush when the loop first empties, as long as the exporter's own timeout lets it take. It wakes
 * the loop, so the app's own `beforeExit` listeners run once more; `process.exit()` skips it.
 */
function flushBeforeExit(handle: { forceFlush(): Promise<void> }): void {
  process.once('beforeExit', () => void handle.forceFlush());
}
