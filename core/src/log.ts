/** A small structured logger: one line per event, fields as key=value, errors to stderr. */
export interface Logger {
  info: (msg: string, fields?: Record<string, unknown>) => void
  warn: (msg: string, fields?: Record<string, unknown>) => void
  error: (msg: string, fields?: Record<string, unknown>) => void
  child: (scope: string) => Logger
}

const fmt = (fields?: Record<string, unknown>): string =>
  fields === undefined
    ? ''
    : ' ' + Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ')

export function consoleLogger (scope = 'device', quiet = false): Logger {
  const line = (level: string, msg: string, fields?: Record<string, unknown>): string =>
    `${new Date().toISOString()} ${level} [${scope}] ${msg}${fmt(fields)}`
  return {
    info: (msg, fields) => { if (!quiet) console.log(line('info ', msg, fields)) },
    warn: (msg, fields) => { console.warn(line('warn ', msg, fields)) },
    error: (msg, fields) => { console.error(line('error', msg, fields)) },
    child: (sub) => consoleLogger(`${scope}/${sub}`, quiet)
  }
}

/** Collects lines in memory: tests read what a user would have seen in the terminal. */
export function memoryLogger (lines: string[] = [], scope = 'device'): Logger & { lines: string[] } {
  const push = (level: string) => (msg: string, fields?: Record<string, unknown>) => {
    lines.push(`${level} [${scope}] ${msg}${fmt(fields)}`)
  }
  return { lines, info: push('info'), warn: push('warn'), error: push('error'), child: (sub) => memoryLogger(lines, `${scope}/${sub}`) }
}
