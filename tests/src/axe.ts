import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import type { Page } from 'playwright-core'

/**
 * Accessibility checks with axe-core, run inside the page. axe is put into the page through the
 * DevTools protocol (Runtime.evaluate on the page's own CDP session), not through a <script> the
 * page would have to allow: the hub's Content-Security-Policy stays as it is.
 */

/** WCAG 2.0 and 2.1, levels A and AA: what the product promises (docs/operators.md, UX.md). */
export const WCAG_AA = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']

export interface AxeViolation {
  id: string
  impact: string | null
  help: string
  /** Each offending element: its selector and axe's summary of what is wrong. */
  nodes: Array<{ target: string, summary: string }>
}

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')

interface EvaluateReply { result: { value?: unknown }, exceptionDetails?: { text: string, exception?: { description?: string } } }

/** The WCAG 2 A/AA violations on the page as it is now (`include`: only this part of it). */
export async function axeViolations (page: Page, include?: string): Promise<AxeViolation[]> {
  const cdp = await page.context().newCDPSession(page)
  try {
    const evaluate = async (expression: string): Promise<unknown> => {
      const reply = await cdp.send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true }) as unknown as EvaluateReply
      if (reply.exceptionDetails) throw new Error(`axe failed in the page: ${reply.exceptionDetails.exception?.description ?? reply.exceptionDetails.text}`)
      return reply.result.value
    }
    await evaluate(`if (!window.axe) { ${AXE_SOURCE}\n }; true`)
    const context = include ? JSON.stringify({ include: [include] }) : 'document'
    const options = JSON.stringify({ runOnly: { type: 'tag', values: WCAG_AA }, resultTypes: ['violations'] })
    const found = await evaluate(`axe.run(${context}, ${options}).then((r) => r.violations.map((v) => ({
      id: v.id, impact: v.impact ?? null, help: v.help,
      nodes: v.nodes.map((n) => ({ target: n.target.join(' '), summary: n.failureSummary ?? '' }))
    })))`)
    return found as AxeViolation[]
  } finally {
    await cdp.detach().catch(() => {})
  }
}

/** The violations as a person reads them in a failed test. */
export function describeViolations (violations: AxeViolation[]): string {
  return violations.map((v) => `${v.id} (${v.impact ?? 'n/a'}): ${v.help}\n${v.nodes.map((n) => `  ${n.target}: ${n.summary.replace(/\n/g, ' ')}`).join('\n')}`).join('\n')
}
