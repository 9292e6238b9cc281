import type { SilenceView } from '../../analyzer/api-routes.js';
import { tableLayout } from '../../analyzer/text-width.js';
import { formatDuration, isDuration, parseDuration, utcMinute } from '../../server/time.js';
import { MAX_SILENCE_MS } from '../../analyzer/silences.js';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { RemoteError, remote } from '../client.js';

interface SilenceValues {
  cohort?: string;
  route?: string;
  rule?: string;
  for?: string;
  until?: string;
  starts?: string;
  comment?: string;
  all?: boolean;
  ended?: boolean;
  json?: boolean;
  url?: string;
}

const ACTIONS = ['list', 'add', 'end'];

function render(silences: readonly SilenceView[]): string {
  if (silences.length === 0) return 'No silence in force or to come.\n';
  const header = ['id', 'matches', 'from', 'until', 'why'];
  const rows = silences.map((s) => [
    s.id,
    s.scope,
    utcMinute(s.startsAt),
    utcMinute(s.endsAt),
    s.comment,
  ]);
  const { line, rule } = tableLayout(header, rows);
  return `${[line(header), rule, ...rows.map(line)].join('\n')}\n`;
}

export const silenceCommand: Command<SilenceValues> = {
  name: 'silence',
  summary: 'keep the alerts of a cohort, route or rule quiet for a while (list, add, end)',
  usage: `
Usage: routewatch silence [list] [--ended] [--json] [--url URL]
       routewatch silence add (--cohort C | --route R | --rule ID | --all) (--for 4h | --until TIME)
                              [--starts TIME] --comment "who and why" [--json] [--url URL]
       routewatch silence end ID [--url URL]

While a silence is in force, the alerts it matches send no message to any channel. They are
still evaluated, and their transitions recorded (routewatch alerts shows them, marked silenced).
An alert still firing when its silence ends gets its reminder at the next evaluation. A silence
matches a cohort, a route and a rule; each left out matches any (name at least one, or say
--all). At most 30 days, starting within 30 days: to stop watching something for longer, change
the rules file.

Options:
  --cohort C, --route R, --rule ID   what it matches (any when left out)
  --all            every alert (instead of naming a cohort, route or rule)
  --for D          how long it lasts from its start: 30m, 4h, 2d
  --until TIME     when it ends instead: a date or an ISO instant with a zone
  --starts TIME    when it starts (default now): a planned migration, say
  --comment TEXT   who silenced it and why: shown to whoever sees it later (required)
  --ended          list: the silences ended in the last 7 days too
  --json           print the instance's answer as JSON
  --url URL        the routewatch instance
`,
  options: {
    cohort: { type: 'string' },
    route: { type: 'string' },
    rule: { type: 'string' },
    for: { type: 'string' },
    until: { type: 'string' },
    starts: { type: 'string' },
    comment: { type: 'string' },
    all: { type: 'boolean' },
    ended: { type: 'boolean' },
    json: { type: 'boolean' },
    url: { type: 'string' },
  },
  positionals: { min: 0, max: 2, name: 'action and id' },
  async run(values, positionals) {
    const [action = 'list', id] = positionals;
    if (!ACTIONS.includes(action))
      throw new UsageError(
        `unknown action ${JSON.stringify(action)}: use list, add or end (see routewatch silence --help)`,
      );
    const given = (names: (keyof SilenceValues)[]) => names.filter((n) => values[n] !== undefined);
    const addOnly = given(['cohort', 'route', 'rule', 'all', 'for', 'until', 'starts', 'comment']);
    if (action !== 'add' && addOnly.length > 0)
      throw new UsageError(`--${addOnly[0]} is for \`routewatch silence add\`, not \`${action}\``);
    if (action !== 'list' && values.ended)
      throw new UsageError('--ended is for `routewatch silence list`');
    if ((action === 'end') !== (id !== undefined))
      throw new UsageError(
        action === 'end'
          ? 'give the id of the silence to end: routewatch silence end ID (routewatch silence lists them)'
          : `\`routewatch silence ${action}\` takes no id`,
      );
    const instance = remote(values.url);
    if (action === 'list') {
      const answer = (await instance.get(
        `/api/v1/silences${values.ended ? '?ended=true' : ''}`,
      )) as { silences: SilenceView[] };
      process.stdout.write(
        values.json ? `${JSON.stringify(answer, null, 2)}\n` : render(answer.silences),
      );
      return;
    }
    if (action === 'end') {
      const answer = (await instance.delete(`/api/v1/silences/${encodeURIComponent(id!)}`)) as {
        silence: SilenceView;
        ended: boolean;
      };
      process.stdout.write(
        values.json
          ? `${JSON.stringify(answer, null, 2)}\n`
          : answer.ended
            ? `Ended silence ${answer.silence.id} (${answer.silence.scope}).\n`
            : `Silence ${answer.silence.id} had already ended (${utcMinute(answer.silence.endsAt)}).\n`,
      );
      return;
    }
    // add: the checks the instance would make on the shape, said here as usage errors (exit 2).
    if ((values.for === undefined) === (values.until === undefined))
      throw new UsageError(
        'give --for (30m, 4h, 2d) or --until (a date or ISO instant), one of the two',
      );
    if (values.for !== undefined && !isDuration(values.for))
      throw new UsageError(`--for ${values.for}: use a number and a unit (s, m, h, d, w), e.g. 4h`);
    if (values.for !== undefined && parseDuration(values.for) > MAX_SILENCE_MS)
      throw new UsageError(
        `--for ${values.for}: at most ${formatDuration(MAX_SILENCE_MS)}; to stop watching something for longer, change its rules in the rules file`,
      );
    if (values.comment === undefined || values.comment.trim() === '')
      throw new UsageError('--comment is required: say who silenced it and why');
    const matchers = given(['cohort', 'route', 'rule']);
    for (const name of matchers)
      if (String(values[name]).trim() === '')
        throw new UsageError(`--${name} is empty: leave it out to match any ${name}`);
    if (matchers.length === 0 && !values.all)
      throw new UsageError(
        'name a --cohort, --route or --rule to silence, or --all to silence every alert',
      );
    if (matchers.length > 0 && values.all)
      throw new UsageError(`--all silences every alert: give it without --${matchers[0]}`);
    const body = {
      ...(values.cohort !== undefined ? { cohort: values.cohort } : {}),
      ...(values.route !== undefined ? { route: values.route } : {}),
      ...(values.rule !== undefined ? { rule: values.rule } : {}),
      ...(values.all ? { all: true } : {}),
      ...(values.for !== undefined ? { for: values.for } : {}),
      ...(values.until !== undefined ? { until: values.until } : {}),
      ...(values.starts !== undefined ? { starts: values.starts } : {}),
      comment: values.comment,
    };
    // What the instance refuses as a bad value (an unknown rule, an --until past the limit) is a
    // usage error too: exit 2, as for the checks above.
    const answer = (await instance.post('/api/v1/silences', body).catch((error: unknown) => {
      // The API's answer ends with the JSON body it takes: told here as this command's options.
      if (error instanceof RemoteError && error.status === 400)
        throw new UsageError(
          `${(error.detail ?? error.message).replace(/\. Send \{.*$/s, '')} (routewatch silence --help)`,
        );
      throw error;
    })) as { silence: SilenceView; warnings?: string[] };
    for (const warning of answer.warnings ?? []) process.stderr.write(`warning: ${warning}\n`);
    process.stdout.write(
      values.json
        ? `${JSON.stringify(answer, null, 2)}\n`
        : `Silenced ${answer.silence.scope} from ${utcMinute(answer.silence.startsAt)} until ${utcMinute(answer.silence.endsAt)}: id ${answer.silence.id}\n(end it early with: routewatch silence end ${answer.silence.id})\n`,
    );
  },
};
