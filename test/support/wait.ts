/** Polls `check` every 25 ms until it holds; throws, naming `what`, after `ms`. */
export async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  ms = 20_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A Slack incoming-webhook body as a receiver got it: the plain text and the Block Kit blocks. */
export interface SlackBody {
  text: string;
  blocks: { type: string; text?: { text: string } }[];
}
