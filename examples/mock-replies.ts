import type { BehaviourProfile, BehaviourProfiles, MockModel, TaskType } from './mock-models.js';
import { TASK_TYPES } from './mock-models.js';
import { hashKey, seededRandom } from './seeded-random.js';
import type { SeededRandom } from './seeded-random.js';

/**
 * The pure core of the mock LLM: what a model replies to a request. The reply — content, token
 * counts, error, delay — is a function of (seed, model, messages, profiles, latencyScale) only.
 */

/** A chat message reduced to what the simulation reads. */
export interface MockMessage {
  role: string;
  content: string;
}

export interface MockCompletion {
  kind: 'completion';
  /** Stable id derived from the request hash (`chatcmpl-…` / `msg_…` are added by the server). */
  hash: string;
  /** Unix seconds; derived from the hash so identical requests get identical bodies. */
  created: number;
  content: string;
  usage: { inputTokens: number; outputTokens: number };
  delayMs: number;
}

export interface MockError {
  kind: 'error';
  hash: string;
  status: 429 | 500;
  delayMs: number;
}

export type MockReply = MockCompletion | MockError;

/** The threshold under which the example service treats a faq answer as low confidence. */
export const LOW_CONFIDENCE_THRESHOLD = 0.6;

const TASK_TYPE_LINE = /task-type:\s*([a-z]+)/;

/** The kind of task, from the `task-type:` line of the system prompt; `generic` when absent. */
export function taskTypeOf(messages: readonly MockMessage[]): TaskType {
  for (const message of messages) {
    const match = TASK_TYPE_LINE.exec(message.content);
    const found = TASK_TYPES.find((taskType) => taskType === match?.[1]);
    if (found !== undefined) return found;
  }
  return 'generic';
}

/** Rough token count of the visible prompt: ~4 characters a token plus per-message framing. */
export function promptTokens(messages: readonly MockMessage[]): number {
  return messages.reduce((sum, message) => sum + Math.ceil(message.content.length / 4) + 4, 3);
}

export function decideReply(input: {
  seed: number;
  model: MockModel;
  messages: readonly MockMessage[];
  profiles: BehaviourProfiles;
  latencyScale: number;
}): MockReply {
  const { seed, model, messages, latencyScale } = input;
  const messagesKey = JSON.stringify(messages.map((m) => [m.role, m.content]));
  const hash = hashKey(`${seed}\u0000${model.id}\u0000${messagesKey}`);
  const random = seededRandom(hash);
  const taskType = taskTypeOf(messages);
  const profile = input.profiles[model.tier][taskType];
  const jitter = random.chance(0.03) ? 2.5 + random.next() : 0.7 + 0.6 * random.next();

  const errorDraw = random.next();
  if (errorDraw < profile.rateLimitedRate) {
    return { kind: 'error', hash, status: 429, delayMs: 30 * jitter * latencyScale };
  }
  if (errorDraw < profile.rateLimitedRate + profile.serverErrorRate) {
    return {
      kind: 'error',
      hash,
      status: 500,
      delayMs: model.latency.baseMs * jitter * latencyScale,
    };
  }

  // The hidden context is a property of the prompt, not of the model: both tiers read the same.
  const context = seededRandom(`${seed}\u0000context\u0000${messagesKey}`);
  const inputTokens =
    promptTokens(messages) + context.int(profile.contextTokens[0], profile.contextTokens[1]);
  const outputTokens = random.int(profile.outputTokens[0], profile.outputTokens[1]);
  const content = replyContent(taskType, profile, messages, random, seed);
  const delayMs =
    (model.latency.baseMs + model.latency.perOutputTokenMs * outputTokens) * jitter * latencyScale;
  return {
    kind: 'completion',
    hash,
    created: 1_735_689_600 + (Number.parseInt(hash.slice(0, 8), 16) % 31_536_000),
    content,
    usage: { inputTokens, outputTokens },
    delayMs,
  };
}

function replyContent(
  taskType: TaskType,
  profile: BehaviourProfile,
  messages: readonly MockMessage[],
  random: SeededRandom,
  seed: number,
): string {
  const invalid = random.chance(profile.invalidRate);
  const resolved = random.chance(profile.resolvedRate);
  const userText = messages.filter((m) => m.role === 'user').at(-1)?.content ?? '';
  switch (taskType) {
    case 'faq':
      return faqReply(invalid, resolved, random.chance(profile.lowConfidenceRate), random);
    case 'extraction':
      return extractionReply(invalid, resolved, userText, random);
    case 'policy':
      return policyReply(invalid, resolved, random);
    case 'agentic':
      return agenticReply(invalid, resolved, messages, random, seed);
    case 'generic':
      return invalid ? '' : `Here is what I found. ${random.pick(ANSWERS)}`;
  }
}

const ANSWERS = [
  'You can reset your password from the sign-in page using "Forgot password".',
  'Refunds are issued to the original payment method within 5 business days.',
  'Orders ship within 24 hours; the tracking link is in your confirmation email.',
  'You can change your plan any time under Settings → Billing.',
  'Two-factor authentication can be enabled under Settings → Security.',
] as const;

function confidence(low: boolean, random: SeededRandom): number {
  const value = low ? 0.2 + 0.39 * random.next() : 0.6 + 0.39 * random.next();
  return Math.round(value * 100) / 100;
}

function faqReply(invalid: boolean, resolved: boolean, low: boolean, random: SeededRandom): string {
  if (invalid) {
    return random.chance(0.5)
      ? JSON.stringify({ answer: '', confidence: confidence(true, random), resolved: false })
      : "I'm sorry, I can't help with that.";
  }
  return JSON.stringify({
    answer: random.pick(ANSWERS),
    confidence: confidence(low, random),
    resolved,
  });
}

const CATEGORIES = ['refund', 'billing', 'shipping', 'account'] as const;

function extractionReply(
  invalid: boolean,
  resolved: boolean,
  userText: string,
  random: SeededRandom,
): string {
  const fields = {
    order_id: /\b([A-Z]-\d{5})\b/.exec(userText)?.[1] ?? `A-${random.int(10000, 99999)}`,
    email: /\b([\w.+-]+@[\w-]+\.[\w.]+)\b/.exec(userText)?.[1] ?? 'customer@example.com',
    amount_usd: Number(/\$(\d+(?:\.\d{1,2})?)/.exec(userText)?.[1] ?? random.int(5, 500)),
    category: random.pick(CATEGORIES),
    resolved,
  };
  if (!invalid) return JSON.stringify(fields);
  switch (random.int(0, 3)) {
    case 0: {
      const { email: _email, ...withoutEmail } = fields;
      return JSON.stringify(withoutEmail);
    }
    case 1:
      return JSON.stringify({ ...fields, amount_usd: `$${fields.amount_usd}` });
    case 2:
      return JSON.stringify({ ...fields, category: 'other' });
    default:
      // Truncated output: the model stopped mid-object.
      return JSON.stringify(fields).slice(0, 30);
  }
}

function policyReply(invalid: boolean, resolved: boolean, random: SeededRandom): string {
  const decision = random.pick(['approve', 'deny', 'escalate'] as const);
  if (invalid) return JSON.stringify({ decision: 'maybe', resolved: false });
  return JSON.stringify({
    decision,
    rationale: `Decision "${decision}" follows section ${random.int(1, 12)} of the refund policy.`,
    resolved,
  });
}

const TOOLS = ['lookup_order', 'check_inventory', 'issue_refund', 'update_address'] as const;

/**
 * An agent run takes 1–3 calls: tool calls until the final answer. How many is a property of the
 * user's request (its first user message), so both tiers need the same number of steps.
 */
function agenticReply(
  invalid: boolean,
  resolved: boolean,
  messages: readonly MockMessage[],
  random: SeededRandom,
  seed: number,
): string {
  const firstUser = messages.find((m) => m.role === 'user')?.content ?? '';
  const steps = seededRandom(`${seed}\u0000steps\u0000${firstUser}`).int(1, 3);
  const done = messages.filter((m) => m.role === 'assistant').length;
  if (done < steps - 1) {
    return JSON.stringify({ action: 'call_tool', tool: random.pick(TOOLS), step: done + 1 });
  }
  if (invalid) return JSON.stringify({ action: 'final' });
  return JSON.stringify({
    action: 'final',
    answer: `Done: ${random.pick(ANSWERS)}`,
    resolved,
  });
}
