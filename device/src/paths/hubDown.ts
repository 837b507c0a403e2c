import type { CommandResult, DoorGuard, Logger } from '@doorbell/core'
import type { MeshNode } from '@doorbell/mesh'
import type { RingKeep } from '../camera/snapshotKeep'
import type { QuickRepliesModule } from '../audio/repliesModule'
import type { CloudLinkDeps } from './cloud/cloudLink'
import { serveDirectCommands } from './direct/commands'
import { serveDirectDismissals } from './direct/dismissals'
import { serveKeptReads } from './direct/keptReads'
import { serveRepliesReads } from './direct/repliesReads'
import { takeDismissal, type DismissalOptions } from './dismissal'
import { takeKeptRead, type KeptReadOptions } from './keptRead'
import { repliesReadOptions, takeRepliesRead, type RepliesReadOptions } from './repliesRead'
import { senderLimiter, type SenderLimit } from './senderLimit'

/**
 * What a screen may ask the doorbell itself while the hub is down: read the rings it keeps,
 * dismiss one, read the quick replies it plays, and (on the direct path) send a command outside a
 * call. One handler each, served on the direct path's libp2p node and on the cloud path's KVS
 * channel, so each check exists once (docs/history.md, docs/audio.md, docs/commands.md).
 */
export interface HubDownDeps {
  /** Read when a request comes: the doorbell's pairing, its guard, its kept rings, once started. */
  pairing: () => { homeId: string, zone?: string | undefined }
  guard: () => DoorGuard
  keep: () => RingKeep | null
  replies: Pick<QuickRepliesModule, 'replies'>
  /** Commands, dismissals and reads one screen may send in a window (`commandsPerScreen`). */
  perScreen?: SenderLimit | undefined
  log: Logger
}

export interface HubDownRequests {
  keptReads: () => KeptReadOptions
  dismissals: () => DismissalOptions
  repliesReads: () => RepliesReadOptions
  /** The handlers the cloud path's KVS channel takes (cloudLink.ts), beside its commands. */
  cloud: Required<Pick<CloudLinkDeps, 'dismiss' | 'keptReads' | 'replies'>> & Pick<CloudLinkDeps, 'commandLimit'>
  /** Serves them (and the commands `take` checks) on the mesh's node; resolves to their stop. */
  serveDirect: (node: MeshNode, take: (viewerId: string, payload: string) => Promise<CommandResult>) => Promise<() => Promise<void>>
}

export function hubDownRequests (d: HubDownDeps): HubDownRequests {
  const admit = (): KeptReadOptions['admit'] => async (credential, viewerId, possession) => await d.guard().admit(credential, viewerId, possession)
  const keptReads = (): KeptReadOptions => ({ homeId: d.pairing().homeId, log: d.log.child('kept'), kept: () => d.keep()?.pending() ?? [], admit: admit() })
  const dismissals = (): DismissalOptions => ({ homeId: d.pairing().homeId, log: d.log.child('kept'), dismiss: (ringId, x) => d.keep()?.dismiss(ringId, x) ?? null, admit: admit() })
  // A screen with the hub down reads the replies this doorbell plays, not the list it last saw at the hub.
  const repliesReads = (): RepliesReadOptions => repliesReadOptions({ pairing: d.pairing(), guard: d.guard(), replies: d.replies, log: d.log.child('replies') })
  return {
    keptReads,
    dismissals,
    repliesReads,
    cloud: {
      dismiss: async (request) => await takeDismissal(dismissals(), request, 'cloud'),
      keptReads: async (request, max) => await takeKeptRead(keptReads(), request, 'cloud', max),
      replies: async (request) => await takeRepliesRead(repliesReads(), request, 'cloud'),
      // Each costs a signature check and a log line: at most `commandsPerScreen` per KVS viewer.
      commandLimit: d.perScreen
    },
    async serveDirect (node, take) {
      // One per-screen limit (by libp2p peer) over all four: each costs a signature check and a log line.
      const limiter = senderLimiter({ limit: d.perScreen, log: d.log.child('direct'), what: 'requests on the direct path' })
      const stops: Array<() => Promise<void>> = []
      const stopAll = async (): Promise<void> => { for (const stop of stops.splice(0)) await stop() }
      try {
        stops.push(await serveKeptReads(node, { ...keptReads(), limiter }))
        // A quick reply from a ring banner: the same commands as from the hub.
        stops.push(await serveDirectCommands(node, { homeId: d.pairing().homeId, log: d.log.child('commands'), take, limiter }))
        // …and dismisses a ring; the kept ring carries the dismissal to the hub.
        stops.push(await serveDirectDismissals(node, { ...dismissals(), limiter }))
        stops.push(await serveRepliesReads(node, { ...repliesReads(), limiter }))
      } catch (err) {
        await stopAll()
        throw err
      }
      return stopAll
    }
  }
}
