// npm records no lock entry for an optional, platform-specific dependency whose manifest the
// registry does not serve, and `npm ci` then refuses the lock as out of sync. The registry this
// project is built against serves only chDB's linux-x64 engine package, so the entries below are
// added by hand, each limited to its platform: `npm ci` skips them elsewhere and, on the platform
// they name, tries them as ordinary optional dependencies. Run after every `npm install`:
//   node scripts/fix-lock.mjs
import { readFileSync, writeFileSync } from 'node:fs';

const LOCK = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(LOCK, 'utf8'));

const platformOnly = [
  ['@chdb/lib-darwin-arm64', ['darwin'], ['arm64']],
  ['@chdb/lib-darwin-x64', ['darwin'], ['x64']],
  ['@chdb/lib-linux-arm64-gnu', ['linux'], ['arm64']],
  ['napi-windows-process-start-time', ['win32'], undefined],
];

// The version each dependant asks for, read from the lock itself.
function wantedVersion(name) {
  for (const entry of Object.values(lock.packages)) {
    const range = entry.optionalDependencies?.[name];
    if (range) return range.replace(/^[\^~]/, '');
  }
  return undefined;
}

let added = 0;
for (const [name, os, cpu] of platformOnly) {
  const key = `node_modules/${name}`;
  const version = wantedVersion(name);
  if (lock.packages[key] || !version) continue;
  lock.packages[key] = { version, optional: true, os, ...(cpu ? { cpu } : {}) };
  added++;
}
writeFileSync(LOCK, JSON.stringify(lock, null, 2) + '\n');
console.log(`fix-lock: added ${added} platform-only optional entr${added === 1 ? 'y' : 'ies'}`);
