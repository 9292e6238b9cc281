/**
 * Where the browser keeps the API token (docs/dashboard.md, "The token"). The page and its assets
 * are public; the data requests carry `Authorization: Bearer <token>`. The token comes from the
 * user, typed into the form the page shows on a 401, or from a `#token=…` fragment, which never
 * reaches the server (browsers do not send fragments) and is removed from the address at once.
 * It is kept in sessionStorage (this tab, until it closes), or in localStorage when the user asks
 * to be remembered on this browser.
 */

const KEY = 'routewatch.token';

function storages(): Storage[] {
  const found: Storage[] = [];
  // Storage can be disabled (privacy settings): the token then lives as long as the page.
  for (const get of [() => window.sessionStorage, () => window.localStorage]) {
    try {
      found.push(get());
    } catch {
      /* unavailable: skipped */
    }
  }
  return found;
}

let inMemory: string | undefined;

export function currentToken(): string | undefined {
  if (inMemory) return inMemory;
  for (const storage of storages()) {
    const token = storage.getItem(KEY);
    if (token) return token;
  }
  return undefined;
}

export function saveToken(token: string, remember: boolean): void {
  forgetToken();
  inMemory = token;
  try {
    (remember ? window.localStorage : window.sessionStorage).setItem(KEY, token);
  } catch {
    /* storage unavailable: kept in memory only */
  }
}

export function forgetToken(): void {
  inMemory = undefined;
  for (const storage of storages()) storage.removeItem(KEY);
}

/**
 * Takes a token from the address's `#token=…` fragment, if any, and removes the fragment from
 * the address (and so from history, bookmarks and shared links).
 */
export function takeTokenFromFragment(): boolean {
  // Split by hand: URLSearchParams reads `+` as a space, and `+` is a token character.
  const parts = window.location.hash.replace(/^#/, '').split('&');
  const at = parts.findIndex((part) => part.startsWith('token='));
  if (at < 0) return false;
  let token: string;
  try {
    token = decodeURIComponent(parts[at]!.slice('token='.length)).trim();
  } catch {
    token = '';
  }
  parts.splice(at, 1);
  const rest = parts.filter((part) => part !== '').join('&');
  if (!token) return false;
  window.history.replaceState(
    window.history.state,
    '',
    `${window.location.pathname}${window.location.search}${rest ? `#${rest}` : ''}`,
  );
  saveToken(token, false);
  return true;
}

/**
 * Whether a token can be sent at all: routewatch's are printable ASCII without spaces
 * (ROUTEWATCH_TOKEN), and a header cannot carry most other characters.
 */
export function isTokenText(token: string): boolean {
  return /^[\x21-\x7e]+$/.test(token);
}
