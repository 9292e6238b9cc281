import { register } from 'node:module';

/** The modules the ESM loader hook wraps: only the SDKs we patch, so the rest loads untouched. */
export const HOOKED_MODULES = ['openai', '@anthropic-ai/sdk'] as const;

/**
 * Registers the import-in-the-middle loader hook so `import OpenAI from 'openai'` (and the
 * Anthropic SDK) can be patched; `require` needs no hook. Call it before the app imports the SDKs,
 * e.g. from your own `--import` start-up file. Throws when the hook cannot be registered.
 *
 * The hook is resolved from this package's own `@opentelemetry/instrumentation`, never from the
 * app's node_modules: an older hoisted copy of import-in-the-middle can crash the app at import.
 */
export function registerLoaderHook(): void {
  register('@opentelemetry/instrumentation/hook.mjs', import.meta.url, {
    data: { include: [...HOOKED_MODULES] },
  });
}
