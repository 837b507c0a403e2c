import tls from 'node:tls'

/**
 * Makes this Node process trust `pem` (a CA certificate) on top of its default CAs, for every TLS
 * client that does not pass its own `ca`: node:https (so AWS SDK v3 clients with their default
 * handler), the global fetch and the global WebSocket (both undici inside Node, which is how the
 * KVS WebRTC SDK connects). Returns a function that restores the previous list.
 *
 * Uses tls.setDefaultCACertificates (Node 22.19 / 24.5 and later). A child process is better given
 * NODE_EXTRA_CA_CERTS=<file holding the PEM>, which Node reads once at start-up.
 */
export function trustCa (pem: string): () => void {
  if (typeof tls.setDefaultCACertificates !== 'function') {
    throw new Error(`Node ${process.version} cannot change its trusted CAs at run time: start it with NODE_EXTRA_CA_CERTS instead`)
  }
  const before = tls.getCACertificates('default')
  tls.setDefaultCACertificates([...before, pem])
  return () => tls.setDefaultCACertificates(before)
}
