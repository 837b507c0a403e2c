import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { Aedes, type AedesOptions } from 'aedes'
import { memoryLogger } from '@doorbell/core'
import { whenStored } from '../src/broker/ackAfterStore'
import { connectionGuard, type GuardedConnection } from '../src/broker/connectionGuard'
import type { SqlitePersistence } from '../src/broker/persistence/sqlitePersistence'

/** A broker on loopback as the tests of the hub's broker parts start it (guardedBroker.ts). */
export interface GuardedBroker { port: number, url: string, aedes: Aedes, kill: () => void, close: () => Promise<void> }

/**
 * A real Aedes on `persistence`, behind the hub's connection guard, wired as brokerModule wires it
 * (the guard told of each sign-in; a client's QoS 1 PUBACK once its message is stored), on
 * 127.0.0.1. `options`: more of aedes's hooks; `accepted`: each connection once aedes has it
 * (its socket, and the guard's stream that aedes reads). `kill` is a SIGKILL as far as the clients
 * can tell (every connection cut, nothing more written); `close` closes the broker, not the persistence.
 */
export async function startGuardedBroker (persistence: SqlitePersistence, o: { port?: number, options?: Partial<AedesOptions>, accepted?: (conn: GuardedConnection, socket: Socket) => void } = {}): Promise<GuardedBroker> {
  const aedes = await Aedes.createBroker({ persistence: persistence as never, ...o.options })
  const guard = connectionGuard({ maxConnectBytes: 16 * 1024, maxPacketBytes: 256 * 1024, maxPending: 64, proxyProtocol: false }, memoryLogger())
  aedes.on('client', (client) => { guard.signedIn(client.conn) })
  whenStored(aedes, (conn, err) => { if (err === undefined) guard.stored(conn); else guard.notStored(conn, err) }, () => persistence.committed())
  const sockets = new Set<Socket>()
  const server: Server = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    const conn = guard.admit(socket, '127.0.0.1', true)
    if (conn === null) return
    aedes.handle(conn as never)
    o.accepted?.(conn, socket)
  })
  await new Promise<void>((resolve) => server.listen(o.port ?? 0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    aedes,
    kill: () => { server.close(); for (const s of sockets) s.destroy() },
    close: async () => { await new Promise<void>((resolve) => { server.close(() => resolve()); aedes.close() }) }
  }
}

/** Waits until `ok()` holds, checking every 10 ms; throws naming `what` after `ms`. */
export async function until (what: string, ok: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
