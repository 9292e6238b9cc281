import { describe, expect, it } from 'vitest';
import { dashboardUrl, queryOfView, viewFromQuery } from '../../analyzer/dashboard-link.js';
import { filterList } from '../../analyzer/filter-list.js';
import { escapeName, isolate, joinNames, splitNames } from '../../analyzer/name-list.js';
import { titleOf } from '../../analyzer/message.js';

describe('the dashboard view in the URL', () => {
  it('reads lists repeated or comma-separated, trimmed and deduplicated, and ignores unknown names', () => {
    const view = viewFromQuery(
      '?window=24h&cohort=faq,%20extraction&cohort=faq&route=small&policy=&unknown=1&bucket=5m',
    );
    expect(view).toEqual({
      window: '24h',
      from: undefined,
      to: undefined,
      cohorts: ['faq', 'extraction'],
      routes: ['small'],
      services: [],
      policies: [],
      bucket: '5m',
    });
  });

  it('writes one canonical query without empty parameters, and reads it back the same', () => {
    const view = viewFromQuery('');
    expect(queryOfView(view).toString()).toBe('');
    const query = queryOfView({
      cohorts: ['b', 'a', 'b'],
      routes: [' small '],
      services: [],
      policies: ['v2'],
      from: '2026-12-01',
      window: '',
      bucket: '1h',
    });
    // A view's names are exact: spaces at the ends are the name's, and written escaped (`\ `).
    expect(query.toString()).toBe(
      'from=2026-12-01&cohort=b%2Ca&route=%5C+small%5C+&policy=v2&bucket=1h',
    );
    expect(queryOfView(viewFromQuery(query)).toString()).toBe(query.toString());
    expect(queryOfView(viewFromQuery(query), { bucket: false }).has('bucket')).toBe(false);
  });

  it('keeps a comma or a backslash inside a name, written \\, and \\\\, both ways', () => {
    const names = ['a,b', 'back\\slash', 'end\\', ',', 'plain'];
    const query = queryOfView({ cohorts: names, routes: ['x,y'] });
    const view = viewFromQuery(query);
    expect(view.cohorts).toEqual(names);
    expect(view.routes).toEqual(['x,y']);
    expect(joinNames(names)).toBe('a\\,b,back\\\\slash,end\\\\,\\,,plain');
    expect(splitNames('a\\,b, c ,,d\\x\\')).toEqual(['a,b', 'c', 'd\\x\\']);
    // The API's filters read the same: ?cohort=a%5C%2Cb&cohort=c,d
    expect(filterList.parse(['a\\,b', 'c,d'])).toEqual(['a,b', 'c', 'd']);
    // A cohort named "a,b" in an alert's link opens that cohort, not cohorts a and b.
    expect(
      viewFromQuery(new URL(dashboardUrl('http://h/', { cohorts: ['a,b'] })).search).cohorts,
    ).toEqual(['a,b']);
  });

  it('keeps white space at the ends of a name when it is escaped, as a link to such a name writes it', () => {
    // A typed list is trimmed; `\ ` keeps a space (tab, …) that trimming would drop.
    expect(splitNames(' faq , \\ spaced\\ ,\\ \\ ,x\\\t')).toEqual([
      'faq',
      ' spaced ',
      '  ',
      'x\t',
    ]);
    expect(splitNames('\\  a')).toEqual(['  a']);
    expect(splitNames('a \\ ')).toEqual(['a  ']);
    // Every name made of the characters that need care reads back as itself, alone and in a list.
    const alphabet = [' ', '\t', ',', '\\', 'a', 'é', '\u3000'];
    const names: string[] = [];
    const grow = (prefix: string, depth: number) => {
      if (prefix !== '') names.push(prefix);
      if (depth > 0) for (const c of alphabet) grow(prefix + c, depth - 1);
    };
    grow('', 4);
    for (const name of names) expect(splitNames(escapeName(name))).toEqual([name]);
    expect(splitNames(joinNames(names, ', '))).toEqual(names);
    // A cohort named " spaced " in an alert's link opens that cohort.
    expect(
      viewFromQuery(new URL(dashboardUrl('http://h/', { cohorts: [' spaced '] })).search).cohorts,
    ).toEqual([' spaced ']);
    expect(filterList.parse(['\\ spaced\\ '])).toEqual([' spaced ']);
  });

  it('isolates a name with right-to-left letters or bidi controls, and leaves the others alone', () => {
    expect(isolate('faq')).toBe('faq');
    expect(isolate('請求書')).toBe('請求書');
    expect(isolate('שאלות')).toBe('\u2068שאלות\u2069');
    expect(isolate('\u202eevil')).toBe('\u2068\u202eevil\u2069');
    // In an alert's title, the figures after a name keep their order.
    expect(titleOf('firing', { kind: 'success_rate_drop' }, '\u202eevil', 'small', '')).toBe(
      '\u2068\u202eevil\u2069 · small: success rate dropped',
    );
  });

  it('links to the dashboard at the public URL, a path prefix kept', () => {
    const view = {
      from: '2026-12-02T08:15:00.000Z',
      cohorts: ['extraction'],
      routes: ['small'],
    };
    expect(dashboardUrl('https://rw.example.com', view)).toBe(
      'https://rw.example.com/?from=2026-12-02T08%3A15%3A00.000Z&cohort=extraction&route=small',
    );
    expect(dashboardUrl('https://example.com/routewatch/', view)).toMatch(
      /^https:\/\/example\.com\/routewatch\/\?from=/,
    );
    expect(dashboardUrl('http://127.0.0.1:4318', {})).toBe('http://127.0.0.1:4318/');
    const read = viewFromQuery(new URL(dashboardUrl('https://rw.example.com', view)).search);
    expect(read).toMatchObject({ from: view.from, cohorts: ['extraction'], routes: ['small'] });
  });
});
