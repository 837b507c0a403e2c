// qlobber ships no types; this is the part of its aedes matcher the broker persistence uses.
declare module 'qlobber/aedes/qlobber-sub.js' {
  export interface SubEntry { clientId: string, topic: string, qos: number, rh?: number, rap?: boolean, nl?: boolean }
  export default class QlobberSub {
    constructor (options: { wildcard_one: string, wildcard_some: string, separator: string })
    readonly subscriptionsCount: number
    add (topic: string, sub: SubEntry): this
    remove (topic: string, sub: { clientId: string, topic: string }): this
    match (topic: string): SubEntry[]
  }
}

declare module 'qlobber' {
  export class QlobberTrue {
    constructor (options: { wildcard_one: string, wildcard_some: string, separator: string, match_empty_levels?: boolean })
    add (topic: string): this
    test (topic: string): boolean
  }
}

declare module 'aedes-persistence/abstract.js' {
  export default function abstractPersistence (o: { test: unknown, persistence: () => unknown, testAsync?: boolean }): void
}
