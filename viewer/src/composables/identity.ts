import { newId } from '@doorbell/core'

/** Who this browser is: a stable id and a name residents recognise ("Kitchen tablet"). */
export interface Identity { viewerId: string, viewerName: string }

export function loadIdentity (storage: Pick<Storage, 'getItem' | 'setItem'>, search: string): Identity {
  const params = new URLSearchParams(search)
  let viewerId = storage.getItem('doorbell.viewerId')
  if (!viewerId || !/^[A-Za-z0-9_-]{1,64}$/.test(viewerId)) {
    viewerId = newId('v')
    storage.setItem('doorbell.viewerId', viewerId)
  }
  const fromQuery = params.get('name')?.trim().slice(0, 64)
  if (fromQuery) storage.setItem('doorbell.viewerName', fromQuery)
  const viewerName = fromQuery || storage.getItem('doorbell.viewerName') || 'This browser'
  return { viewerId, viewerName }
}
