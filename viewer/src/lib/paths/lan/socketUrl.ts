/**
 * The hub's MQTT WebSocket for a page the hub served: same origin, `wss:` when the page came over
 * HTTPS. The one copy the home, the console, the inspector and the camera node use.
 */
export function hubSocketUrl (at: Pick<Location, 'protocol' | 'host'>, mqttPath = '/mqtt'): string {
  return `${at.protocol === 'https:' ? 'wss:' : 'ws:'}//${at.host}${mqttPath}`
}
