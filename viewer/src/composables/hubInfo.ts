/** What the hub says about itself (`/api/info`), and where its MQTT WebSocket is: one place for every page. */
export interface HubInfo { homeId: string, hubName: string, mqttPath: string, inspect: boolean }

export async function fetchHubInfo (): Promise<HubInfo> {
  const res = await fetch('/api/info')
  if (!res.ok) throw new Error(`HTTP ${res.status}`)
  return await res.json() as HubInfo
}

/** Same origin as the page: wss when the page came over HTTPS. */
export function hubSocketUrl (info: HubInfo, at: Pick<Location, 'protocol' | 'host'> = location): string {
  return `${at.protocol === 'https:' ? 'wss' : 'ws'}://${at.host}${info.mqttPath}`
}
