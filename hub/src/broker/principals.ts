import type { Client } from 'aedes'
import type { Principal } from './gate'

/** Who each connected client is: set by `authenticate`, read by every other hook. */
export type Principals = WeakMap<Client, Principal>
