import { fromCallback, type EventObject } from 'xstate'
import type { HubClient } from './hubClient'

/**
 * The link machine's `lan` actor: follows the hub connection for the machine's whole life (the
 * hub wins back from any other path) and tells the machine when it is up and when it is lost.
 * The connection itself is the Home's, which also carries the inspector's batches on it.
 */
export function lanPath (hub: Pick<HubClient, 'connected' | 'on'>) {
  return fromCallback<EventObject>(({ sendBack }) => {
    if (hub.connected) sendBack({ type: 'LAN_UP' })
    return hub.on('link', (up) => { sendBack({ type: up ? 'LAN_UP' : 'LAN_DOWN' }) })
  })
}
