import { z } from 'zod';
import type { Cohort } from './support-tasks.js';

/**
 * The example service's validation gates, one per cohort. A reply that fails its gate is not
 * shown to the user; on a small-first route it triggers the fallback.
 */

/** Below this self-reported confidence a faq answer goes to the large model. */
export const CONFIDENCE_THRESHOLD = 0.6;

const downstream = { resolved: z.boolean().optional() };

const faqReply = z.object({
  answer: z.string().trim().min(1),
  confidence: z.number().min(0).max(1),
  ...downstream,
});

export const extractionReply = z.object({
  order_id: z.string().regex(/^[A-Z]-\d{5}$/),
  email: z.email(),
  amount_usd: z.number().nonnegative(),
  category: z.enum(['refund', 'billing', 'shipping', 'account']),
  ...downstream,
});

const policyReply = z.object({
  decision: z.enum(['approve', 'deny', 'escalate']),
  rationale: z.string().min(1),
  ...downstream,
});

/** One step of an agent run: a tool call or the final answer. */
export const agentStep = z.discriminatedUnion('action', [
  z.object({ action: z.literal('call_tool'), tool: z.string().min(1) }),
  z.object({ action: z.literal('final'), answer: z.string().trim().min(1), ...downstream }),
]);

export interface Verdict {
  valid: boolean;
  /** The hidden downstream signal: the user's problem was solved. False when invalid. */
  resolved: boolean;
  /** Self-reported confidence, when the cohort's replies carry one. */
  confidence?: number;
}

const INVALID: Verdict = { valid: false, resolved: false };

/** The reply content as JSON; undefined (which every schema rejects) when it is not JSON. */
export function parseJson(content: string): unknown {
  try {
    return JSON.parse(content) as unknown;
  } catch {
    return undefined;
  }
}

/** Validate the final reply of an attempt. */
export function validateReply(cohort: Cohort, content: string): Verdict {
  const json = parseJson(content);
  switch (cohort) {
    case 'faq': {
      const reply = faqReply.safeParse(json);
      if (!reply.success) return INVALID;
      return {
        valid: true,
        resolved: reply.data.resolved === true,
        confidence: reply.data.confidence,
      };
    }
    case 'extraction': {
      const reply = extractionReply.safeParse(json);
      return reply.success ? { valid: true, resolved: reply.data.resolved === true } : INVALID;
    }
    case 'policy': {
      const reply = policyReply.safeParse(json);
      return reply.success ? { valid: true, resolved: reply.data.resolved === true } : INVALID;
    }
    case 'agentic': {
      // A tool call is not an answer: validated as the last step, the agent ran out of steps.
      const reply = agentStep.safeParse(json);
      if (!reply.success || reply.data.action !== 'final') return INVALID;
      return { valid: true, resolved: reply.data.resolved === true };
    }
  }
}
