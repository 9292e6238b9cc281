import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { seededRandom } from './seeded-random.js';

/**
 * The example service's work: which cohort a task belongs to, the route it starts on, and the
 * prompt it sends. All of it is a function of (seed, task index).
 */

export const COHORTS = ['faq', 'extraction', 'policy', 'agentic'] as const;
export type Cohort = (typeof COHORTS)[number];

export const ROUTES = ['small', 'large'] as const;
export type Route = (typeof ROUTES)[number];

/** The routing policy: cheap-first for simple work, large-first where mistakes are expensive. */
export const DEFAULT_PRIMARY_ROUTES: Record<Cohort, Route> = {
  faq: 'small',
  extraction: 'small',
  policy: 'large',
  agentic: 'large',
};

/** Share of traffic per cohort; sums to 1. */
const COHORT_WEIGHTS: Record<Cohort, number> = {
  faq: 0.4,
  extraction: 0.3,
  policy: 0.15,
  agentic: 0.15,
};

export function cohortOf(seed: number, taskIndex: number): Cohort {
  const draw = seededRandom(`${seed}\u0000cohort\u0000${taskIndex}`).next();
  let cumulative = 0;
  for (const cohort of COHORTS) {
    cumulative += COHORT_WEIGHTS[cohort];
    if (draw < cumulative) return cohort;
  }
  return 'agentic';
}

// `task-type:` is how the simulator recognises the kind of work, as a real model would from the
// instructions. The hidden `resolved` field of the replies is not asked for: it stands in for the
// downstream signal (the customer did not come back) a real service would learn later.
const SYSTEM_PROMPTS: Record<Cohort, string> = {
  faq: [
    'You are the support FAQ assistant of Acme Cloud.',
    'task-type: faq',
    'Answer from the help-center articles only.',
    'Reply with JSON: {"answer": string, "confidence": number between 0 and 1}.',
  ].join('\n'),
  extraction: [
    'You extract structured fields from customer emails for Acme Cloud.',
    'task-type: extraction',
    'Reply with JSON: {"order_id": "X-00000", "email": string, "amount_usd": number,',
    '"category": "refund" | "billing" | "shipping" | "account"}.',
  ].join('\n'),
  policy: [
    'You apply the Acme Cloud refund and exception policy.',
    'task-type: policy',
    'Reply with JSON: {"decision": "approve" | "deny" | "escalate", "rationale": string}.',
  ].join('\n'),
  agentic: [
    'You are the Acme Cloud support agent. You can use tools: lookup_order, check_inventory,',
    'issue_refund, update_address.',
    'task-type: agentic',
    'Reply with JSON, either {"action": "call_tool", "tool": string} or',
    '{"action": "final", "answer": string}.',
  ].join('\n'),
};

const FIRST_NAMES = [
  'Ada',
  'Grace',
  'Linus',
  'Barbara',
  'Ken',
  'Margaret',
  'Dennis',
  'Frances',
] as const;
const FAQ_QUESTIONS = [
  'How do I reset my password?',
  'When will I get my refund?',
  'Where is my order? It has not arrived yet.',
  'How can I switch to the annual plan?',
  'How do I turn on two-factor authentication?',
  'Can I add a second admin to my workspace?',
] as const;
const EXTRACTION_ISSUES = [
  'I was charged twice',
  'the package never arrived',
  'I want my money back',
  'I cannot log in to my account',
] as const;
const POLICY_CASES = [
  'asks for a refund 45 days after purchase, outside the 30-day window',
  'asks to waive the early-termination fee after a service outage',
  'asks for a refund on a gift card',
  'asks for a partial refund on an annual plan after 3 months',
] as const;
const AGENT_REQUESTS = [
  'change the delivery address of my order',
  'refund the damaged item from my last order',
  'check whether the replacement part is in stock and order it',
  'cancel the order I placed this morning',
] as const;

/** The messages task `taskIndex` sends; the ticket number makes every task's prompt unique. */
export function promptFor(
  seed: number,
  taskIndex: number,
  cohort: Cohort,
): ChatCompletionMessageParam[] {
  const random = seededRandom(`${seed}\u0000prompt\u0000${taskIndex}`);
  const ticket = `T-${seed}-${taskIndex}`;
  const name = random.pick(FIRST_NAMES);
  let user: string;
  switch (cohort) {
    case 'faq':
      user = `[${ticket}] ${name}: ${random.pick(FAQ_QUESTIONS)}`;
      break;
    case 'extraction': {
      const orderId = `${random.pick(['A', 'B', 'C'] as const)}-${random.int(10000, 99999)}`;
      const amount = (random.int(500, 50000) / 100).toFixed(2);
      user = [
        `[${ticket}] From: ${name.toLowerCase()}.${random.int(1, 999)}@example.com`,
        `Hi, about order ${orderId}: ${random.pick(EXTRACTION_ISSUES)}. The amount was $${amount}.`,
        `Thanks, ${name}`,
      ].join('\n');
      break;
    }
    case 'policy':
      user = `[${ticket}] Customer ${name} (tenure ${random.int(1, 60)} months) ${random.pick(POLICY_CASES)}.`;
      break;
    case 'agentic':
      user = `[${ticket}] ${name}: please ${random.pick(AGENT_REQUESTS)}.`;
      break;
  }
  return [
    { role: 'system', content: SYSTEM_PROMPTS[cohort] },
    { role: 'user', content: user },
  ];
}
