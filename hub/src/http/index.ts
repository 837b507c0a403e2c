/** The hub's HTTP layer (Fastify): one concern per file; see README.md. */
export { createWebServer, type WebServerOptions } from './server'
export { contentSecurityPolicy, securityHeaders, HSTS } from './headers'
export { isSameOrigin, publicOrigin, publicScheme, type Reached } from './origin'
export { clientAddress, clientAddressOf, isLoopbackAddress, type ClientAddress } from './clientAddress'
export { BodyRefused, DEFAULT_BODY_LIMIT, type ZodBodies } from './bodies'
export { sendCaCertificate, sendJson, sendRateLimited } from './replies'
export { rateLimited } from './rateLimited'
export { attachMqttSocket } from './mqttSocket'
